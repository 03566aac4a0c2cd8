// Open-loop load: requests leave at a fixed rate whatever the server does (a slow answer does not delay
// the next request, so queueing shows in the latencies instead of hiding in a lower send rate). Each
// request's latency counts from the moment it was scheduled to leave.
import http from 'node:http';
import type { Req } from './load.ts';

export interface Sent {
  /** Epoch ms the request was scheduled to leave. */
  at: number;
  status: number;
  ackMs: number;
  body: string;
  req: Req;
}

export async function openLoop(base: string, perSecond: number, seconds: number, next: () => Req): Promise<{ sent: Sent[]; errors: number; lateMs: number }> {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(perSecond * seconds);
  const gap = 1000 / perSecond;
  const sent: Sent[] = [];
  const pending: Promise<void>[] = [];
  let errors = 0;
  let lateMs = 0;
  const t0 = performance.now() + 20;
  const epoch0 = Date.now() + 20;
  for (let i = 0; i < total; i++) {
    const due = t0 + i * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lateMs = Math.max(lateMs, performance.now() - due);
    const r = next();
    const at = epoch0 + i * gap;
    pending.push(new Promise<void>((resolve) => {
      const req = http.request({ host: url.hostname, port: url.port, path: `${url.pathname.replace(/\/$/, '')}${r.path}`, method: 'POST', agent, headers: { ...r.headers, 'content-length': String(r.body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          sent.push({ at, status: res.statusCode ?? 0, ackMs: Date.now() - at, body: Buffer.concat(chunks).toString(), req: r });
          resolve();
        });
      });
      req.on('error', () => { errors++; resolve(); });
      req.end(r.body);
    }));
  }
  await Promise.all(pending);
  agent.destroy();
  return { sent, errors, lateMs };
}
