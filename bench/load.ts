// A small closed-loop HTTP load generator: N keep-alive connections, each sending its next request
// as soon as the previous answer arrives, for a fixed time. Latency percentiles from every request.
import http from 'node:http';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
}

export interface Req {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function runLoad(base: string, connections: number, seconds: number, next: () => Req): Promise<LoadResult> {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const one = (r: Req) =>
    new Promise<number>((resolve) => {
      const t0 = performance.now();
      const req = http.request({ host: url.hostname, port: url.port, path: r.path, method: 'POST', agent, headers: { ...r.headers, 'content-length': String(r.body.length) } }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
          resolve(performance.now() - t0);
        });
      });
      req.on('error', () => {
        errors++;
        resolve(-1);
      });
      req.end(r.body);
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const ms = await one(next());
      if (ms >= 0) lat.push(ms);
    }
  }));
  const took = (performance.now() - started) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { requests: lat.length, errors, seconds: took, rps: lat.length / took, p50: percentile(lat, 50), p99: percentile(lat, 99), statuses };
}
