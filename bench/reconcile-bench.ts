// Reconciliation at scale: N appointments (1k / 10k / 100k, one calendar, six months) with live links,
// compared against the calendar's listing by src/engine/reconcile.ts, titles included (rendered per
// appointment as the connection renders them). Two listings of the same shape:
//  - `http`: the fake Google seeded in bulk (its own process), read through the real Google client
//    (events.list, 2,500 a page): what a clinic's full check costs, HTTP and JSON included;
//  - `in-process`: a TargetClient that generates the slice's CalendarEvents on demand: the cost of the
//    compare itself (store reads, rendering, matching) without HTTP.
// One appointment in 1,000 is deleted, one moved and one orphan added, and the counts are checked.
// Each compare runs in a fresh process (`run`), so its peak memory is its own; the store is seeded by
// another (`seed`), which for `http` also serves the fake.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { openHub, makeLogger, type Hub } from '../src/engine/hub/hub.ts';
import { parseConfig } from '../src/config/load.ts';
import { applyConfig } from '../src/config/apply.ts';
import { fromAppointment } from '../src/store/repo.ts';
import type { Appointment } from '../src/domain/types.ts';
import type { CalendarEvent, TargetClient } from '../src/connectors/types.ts';
import { reconcile } from '../src/engine/sync/reconcile.ts';
import { connectionContext, loadConnection } from '../src/engine/hub/connections.ts';
import { getTarget } from '../src/connectors/registry.ts';
import { NameBook } from '../src/engine/effects/render.ts';
import { ROOT, fmt } from './common.ts';

const CAL = 'p0@bench';
const BASE = Date.UTC(2027, 0, 4);
const WINDOW_MS = 182 * 86_400_000;
const DURATION_MS = 45 * 60_000;
const EVERY = 1000;

/** Appointment i's start, spread evenly over the window. */
const startOf = (i: number, n: number) => BASE + Math.floor((i * WINDOW_MS) / n);
/** The drift planted: i % 1000 = 0 deleted, 1 moved by 30 minutes, 2 gets an orphan copy beside it. */
const drift = (i: number) => i % EVERY;
const expected = (n: number) => ({ missing: Math.ceil(n / EVERY), changed: Math.ceil((n - 1) / EVERY), orphaned: Math.ceil((n - 2) / EVERY) });

const config = (url: string, tokenUrl: string) => `
clinic: { id: bench, name: Bench Clinic, timeZone: America/Chicago }
locations: [{ id: main, name: Main, timeZone: America/Chicago }]
practitioners: [{ id: p0, name: Practitioner 0, locations: [main], targets: [{ connection: google, calendar: "${CAL}" }] }]
connections:
  - id: google
    platform: google-calendar
    baseUrl: ${url}
    config: { tokenUrl: ${tokenUrl} }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`;

function appointment(i: number, n: number): Appointment {
  const start = new Date(startOf(i, n)).toISOString();
  const now = new Date().toISOString();
  return {
    id: randomUUID(), clinicId: 'bench', locationId: 'main', practitionerId: 'p0', patient: { name: 'Bench Patient' },
    start, end: new Date(startOf(i, n) + DURATION_MS).toISOString(), timeZone: 'America/Chicago', status: 'booked',
    origin: { platform: 'calendly', connectionId: 'calendly', externalId: `https://api.calendly.com/scheduled_events/e${i}/invitees/i${i}` },
    revision: 1, conflicts: [], createdAt: now, updatedAt: now,
  };
}

/** The title the connection renders for these appointments (all the same patient, service and practitioner). */
async function titleOf(hub: Hub): Promise<string> {
  const conn = await loadConnection(hub, 'google');
  return (await new NameBook(hub.store.db).render(appointment(0, 1), conn.record)).title;
}

async function seedStore(hub: Hub, n: number, remoteId: (i: number) => string): Promise<void> {
  const at = new Date().toISOString();
  for (let from = 0; from < n; from += 500) {
    const appts = Array.from({ length: Math.min(500, n - from) }, (_, k) => appointment(from + k, n));
    await hub.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('appointment').values(appts.map(fromAppointment)).execute();
      await trx.insertInto('target_link').values(appts.map((a, k) => ({
        appointment_id: a.id, connection_id: 'google', remote_id: remoteId(from + k), calendar_id: CAL, etag: null, generation: 0, data: '{}', revision: 1, state: 'live', updated_at: at,
      }))).execute();
    });
  }
}

/** The listing generated on demand: the events starting or overlapping the window, drift planted. */
function inProcessClient(n: number, title: string): TargetClient {
  const event = (i: number, remoteId: string, shift = 0): CalendarEvent => ({
    remoteId, start: new Date(startOf(i, n) + shift).toISOString(), end: new Date(startOf(i, n) + shift + DURATION_MS).toISOString(),
    title, status: 'confirmed', ours: true, allDay: false, transparent: false, timeZone: 'America/Chicago',
  });
  return {
    upsert: () => { throw new Error('read only'); },
    remove: () => { throw new Error('read only'); },
    async events(w) {
      const out: CalendarEvent[] = [];
      const first = Math.max(0, Math.floor(((w.from.getTime() - DURATION_MS - BASE) * n) / WINDOW_MS));
      for (let i = first; i < n && startOf(i, n) < w.to.getTime(); i++) {
        if (startOf(i, n) + DURATION_MS <= w.from.getTime()) continue;
        if (drift(i) === 0) continue;
        out.push(event(i, `r${i}`, drift(i) === 1 ? 30 * 60_000 : 0));
        if (drift(i) === 2) out.push(event(i, `orphan${i}`));
      }
      return { ok: true, value: out };
    },
  };
}

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;
const hwmMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;

async function child(argv: string[]): Promise<void> {
  const [role, mode, nText, dir] = argv;
  const n = Number(nText);
  const log = makeLogger('silent');
  if (role === 'seed') {
    const { startFakeGoogle } = await import('../test/fakes/google-calendar.ts');
    const g = await startFakeGoogle();
    const env = { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken };
    const hub = await openHub({ dataDir: dir, log, env });
    const c = parseConfig(config(g.url, g.tokenUrl), 'bench.yaml');
    await applyConfig(hub, c.config, c.hash, 'bench');
    const title = await titleOf(hub);
    const ids: string[] = [];
    if (mode === 'http') {
      // The fake names each event (as Google does for events we did not name); the store takes those ids.
      for (let i = 0; i < n; i++) {
        const s = startOf(i, n) + (drift(i) === 1 ? 30 * 60_000 : 0);
        const ev = { summary: title, start: { dateTime: new Date(s).toISOString(), timeZone: 'America/Chicago' }, end: { dateTime: new Date(s + DURATION_MS).toISOString(), timeZone: 'America/Chicago' }, extendedProperties: { private: { meridianAppointmentId: `a${i}` } } };
        ids.push(g.addTheirs(CAL, ev));
        if (drift(i) === 0) g.deleteBehindOurBack(CAL, ids[i]);
        if (drift(i) === 2) g.addTheirs(CAL, { ...ev, extendedProperties: { private: { meridianAppointmentId: `copy${i}` } } });
      }
    }
    await seedStore(hub, n, (i) => (mode === 'http' ? ids[i] : `r${i}`));
    await hub.store.close();
    process.stdout.write(`${JSON.stringify({ ready: true, env, title })}\n`);
    if (mode !== 'http') await g.close();
    return;
  }
  // role === 'run'
  const env = JSON.parse(process.env.BENCH_SEED ?? '{}') as { env: Record<string, string>; title: string };
  const hub = await openHub({ dataDir: dir, log, env: env.env });
  const conn = await loadConnection(hub, 'google');
  const client = mode === 'http' ? getTarget('google-calendar')!.client!(connectionContext(hub, conn)) : inProcessClient(n, env.title);
  const book = new NameBook(hub.store.db);
  global.gc?.();
  const before = rssMb();
  // Heap sampled as each slice is listed (timers may not fire: SQLite calls are synchronous).
  let peakHeap = 0;
  const sample = () => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed); };
  const listing: TargetClient = { ...client, events: async (w, cal) => { sample(); const r = await client.events!(w, cal); sample(); return r; } };
  const compare = (to: number) => reconcile({
    db: hub.store.db, client: listing, connectionId: 'google', calendarId: CAL, window: { from: new Date(BASE), to: new Date(to) },
    expectedTitle: async (a) => (await book.render(a, conn.record)).title,
  });
  // Warm-up over the first hour (modules loaded, token fetched, connection open), then the timed full compare.
  await compare(BASE + 3_600_000);
  const t0 = performance.now();
  const r = await compare(BASE + WINDOW_MS);
  const seconds = (performance.now() - t0) / 1000;
  sample();
  if (!r.ok) throw new Error(r.failure.message);
  const want = expected(n);
  const right = r.value.missing.count === want.missing && r.value.changed.count === want.changed && r.value.orphaned.count === want.orphaned && r.value.checked === n;
  process.stdout.write(`${JSON.stringify({ seconds, before, peak: hwmMb(), peakHeap: peakHeap / 1048576, right, report: { checked: r.value.checked, listed: r.value.listed, missing: r.value.missing.count, changed: r.value.changed.count, orphaned: r.value.orphaned.count }, want })}\n`);
  await hub.store.close();
}

function spawnChild(args: string[], env: NodeJS.ProcessEnv = {}): { proc: ReturnType<typeof spawn>; line: Promise<string> } {
  const prof = args[0] === 'run' && process.env.MERIDIAN_BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MERIDIAN_BENCH_PROFILE_DIR}`] : [];
  const proc = spawn(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', join(ROOT, 'bench', 'reconcile-bench.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const line = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    proc.on('exit', (c) => reject(new Error(`reconcile child ${args.join(' ')} exited ${c}`)));
  });
  return { proc, line };
}

export async function benchReconcile(sizes: number[]): Promise<string[]> {
  const out = [
    '| Reconcile (full compare, titles included; 0.1 % each missing / moved / orphaned, all found) | appointments | time s | µs per appointment | peak RSS MB (RSS before) | peak JS heap MB | listing |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const mode of ['in-process', 'http'] as const) {
    for (const n of sizes) {
      process.stderr.write(`reconcile ${n}, ${mode}…\n`);
      const dir = mkdtempSync(join(tmpdir(), 'meridian-reconcile-'));
      const seeder = spawnChild(['seed', mode, String(n), dir]);
      try {
        const seed = await seeder.line;
        const run = spawnChild(['run', mode, String(n), dir], { BENCH_SEED: seed });
        const r = JSON.parse(await run.line) as { seconds: number; before: number; peak: number; peakHeap: number; right: boolean; report: Record<string, number>; want: Record<string, number> };
        const listing = mode === 'http' ? `fake Google over HTTP (events.list, ${r.report.listed} events)` : `generated in-process (${r.report.listed} events)`;
        out.push(`| ${mode}${r.right ? '' : ` — WRONG COUNTS ${JSON.stringify(r.report)} ≠ ${JSON.stringify(r.want)}`} | ${n} | ${fmt(r.seconds, 2)} | ${fmt((r.seconds * 1e6) / n, 1)} | ${fmt(r.peak, 0)} (${fmt(r.before, 0)}) | ${fmt(r.peakHeap, 0)} | ${listing} |`);
      } finally {
        seeder.proc.kill('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  out.push('', 'Target: 100k in under 10 s and 300 MB, growing linearly (µs per appointment flat across sizes).');
  return out;
}

if (process.argv[1] === join(ROOT, 'bench', 'reconcile-bench.ts')) {
  const a = process.argv.slice(2);
  if (a[0] === 'seed' || a[0] === 'run') await child(a);
  else process.stdout.write(`${(await benchReconcile((a[0] ?? '1000,10000,100000').split(',').map(Number))).join('\n')}\n`);
}
