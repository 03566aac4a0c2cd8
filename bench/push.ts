// Calendar push (issue 18): time from a practitioner's own change in their calendar (the Graph fake: an event
// of ours moved behind Meridian's back) to Meridian's reaction (the appointment moved, `twoWay: accept`), with
// push on (Graph change notifications to the real HTTP server, no periodic sweep) and with sweeps only (a sweep
// every SWEEP_SECONDS, no push), in the same run. With the default MERIDIAN_SWEEP_MINUTES=60 the sweeps-only
// wait is on average 30 minutes; the short interval here only makes it measurable.
// Run alone: node --import tsx bench/push.ts
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfig } from '../src/config/apply.ts';
import { parseConfig } from '../src/config/load.ts';
import { staffCreate } from '../src/engine/edits/staff.ts';
import { makeLogger, openHub } from '../src/engine/hub/hub.ts';
import { startRuntime } from '../src/engine/runtime.ts';
import { ensurePush } from '../src/engine/sync/push.ts';
import { buildServer } from '../src/http/server.ts';
import { getAppointment } from '../src/store/repo.ts';
import { startFakeGraph } from '../test/fakes/microsoft-graph.ts';

const PUSH_SAMPLES = 30;
const SWEEP_SAMPLES = 6;
const SWEEP_SECONDS = 12;

interface Stats { n: number; p50: number; p99: number; max: number }

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(s.length * q))];
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

function dayAt(days: number, hour: number): string {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate() + days, hour)).toISOString();
}

async function measure(mode: 'push' | 'sweeps', samples: number): Promise<Stats> {
  const m = await startFakeGraph({ allowHttpNotifications: true });
  const dir = mkdtempSync(join(tmpdir(), 'meridian-push-bench-'));
  const hub = await openHub({ dataDir: dir, log: makeLogger('silent'), env: { MS_ID: m.credentials.clientId, MS_REFRESH: m.credentials.refreshToken, MERIDIAN_PUSH_INSECURE: '1', LOG_LEVEL: 'silent' } });
  const cfg = parseConfig(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
practitioners: [{ id: okafor, name: Dr Okafor, targets: [{ connection: outlook }] }]
connections:
  - { id: outlook, platform: microsoft-graph, baseUrl: ${m.url}, config: { mode: delegated, tokenUrl: ${m.tokenUrl}, twoWay: accept }, secrets: { clientId: { env: MS_ID }, refreshToken: { env: MS_REFRESH } } }
`, 'bench.yaml');
  await applyConfig(hub, cfg.config, cfg.hash, 'bench');
  const app = await buildServer(hub);
  await app.listen({ port: 0, host: '127.0.0.1' });
  hub.publicUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const rt = await startRuntime(hub, { sweepMinutes: mode === 'sweeps' ? SWEEP_SECONDS / 60 : 0, pushCheckMinutes: 0, workerPollMs: 20 });
  const lats: number[] = [];
  try {
    const appt = await staffCreate(hub, { practitionerId: 'okafor', start: dayAt(2, 8), end: dayAt(2, 9), patient: { name: 'Bench Patient' } }, 'bench');
    const deadline = Date.now() + 10_000;
    while (m.events('me').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const eventId = m.events('me')[0].id!;
    if (mode === 'push') await ensurePush(hub, 'outlook');
    for (let i = 0; i < samples; i++) {
      const hour = 9 + (i % 8);
      const start = dayAt(2, hour);
      const t0 = Date.now();
      m.editBehindOurBack('me', eventId, { start: { dateTime: start.slice(0, 19), timeZone: 'UTC' }, end: { dateTime: dayAt(2, hour + 1).slice(0, 19), timeZone: 'UTC' } });
      const until = Date.now() + (mode === 'sweeps' ? SWEEP_SECONDS * 3000 : 30_000);
      for (;;) {
        const a = await getAppointment(hub.store.db, appt.id);
        if (a && Date.parse(a.start) === Date.parse(start)) break;
        if (Date.now() > until) throw new Error(`${mode}: no reaction within ${until - t0} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
      lats.push(Date.now() - t0);
      // Let the write-back of the accepted move settle before the next change.
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    await rt.stop();
    await app.close();
    await hub.store.close();
    await m.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return stats(lats);
}

export async function pushBenchRows(): Promise<string[]> {
  const push = await measure('push', PUSH_SAMPLES);
  const sweeps = await measure('sweeps', SWEEP_SAMPLES);
  const f = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);
  return [
    `| Change in a practitioner's calendar → Meridian's reaction (Graph fake, SQLite; appointment moved, twoWay accept) | samples | p50 | p99 | max |`,
    '|---|---:|---:|---:|---:|',
    `| push on (change notification → one coalesced read of that calendar), no periodic sweep | ${push.n} | ${f(push.p50)} | ${f(push.p99)} | ${f(push.max)} |`,
    `| sweeps only, every ${SWEEP_SECONDS} s (each change waits for the next sweep; the default interval is 60 min: 30 min on average) | ${sweeps.n} | ${f(sweeps.p50)} | ${f(sweeps.p99)} | ${f(sweeps.max)} |`,
    `| ratio sweeps-only / push, p50 (at the default interval it would be about ${Math.round(1_800_000 / Math.max(1, push.p50))}×) | | ${(sweeps.p50 / Math.max(1, push.p50)).toFixed(0)}× | | |`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${(await pushBenchRows()).join('\n')}\n`);
