// npm run bench -- --peers: one run on loopback, every figure a ratio to the baseline of the same run.
//  1. The webhook → map → calendar-API flow: the plain Node baseline, Meridian (durable, its normal
//     config: SQLite with synchronous = FULL, PostgreSQL with synchronous_commit as the server has it, labelled) and — when installed — Node-RED and n8n, against the same fake
//     Google. Closed loop (10 connections): acknowledgements/s, p50/p99 acknowledgement latency; the
//     calendar writes that followed (Meridian writes after answering, from its outbox); peak memory of
//     the server's process tree. Open loop at 100 bookings/s: webhook-to-calendar-write p50/p99.
//  2. Reconciliation of 1k / 10k / 100k appointments (bench/reconcile-bench.ts).
//  3. Cold start (process start to /readyz answering) and idle memory of the real `bin/meridian serve`.
//  4. Where the ingest time goes: node --cpu-prof on the server under load (bench/profile.ts).
// Options: --seconds N (closed-loop run length, default 5), --rate N (open loop, default 100/s),
// --no-pg, --skip reconcile,cold,profile,peers, --sizes 1000,10000,100000.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startFakeGoogle, type FakeGoogle } from '../test/fakes/google-calendar.ts';
import { pgUnavailable, PG_URL } from '../test/helpers.ts';
import { runLoad, type LoadResult, type Req } from './load.ts';
import { openLoop } from './open-loop.ts';
import { INSTALL_HINT, startN8n, startNodeRed } from './peer-flows.ts';
import { KEY, benchConfig, benchEnv, fakeToken, pgDurability, fmt, freePort, node, sampleRss, sleep, stop, treeRssMb, webhookFactory, type Started } from './common.ts';
import { benchReconcile } from './reconcile-bench.ts';
import { profileIngest } from './profile.ts';

interface Flow {
  name: string;
  /** Where its calendar writes go (one calendar per flow, so they can be counted). */
  calendar?: string;
  server: Started;
  webhookPath: string;
  readyMs?: number;
  /** What ties a delivery to its calendar write: `keyOf` of the request, `writeKey` of the event body. */
  keyOf(req: Req, answer: string): string | undefined;
  writeKey?(event: Record<string, any>): string | undefined;
  close(): Promise<void>;
}

interface FlowRow {
  name: string;
  load: LoadResult;
  writesPerSecond?: number;
  writeP50?: number;
  writeP99?: number;
  ackP99Open?: number;
  peakMb: number;
  note?: string;
}

const externalIdOf = (req: Req) => JSON.parse(req.body.toString()).payload.uri as string;
const eventsPath = (calendar: string) => `/calendar/v3/calendars/${encodeURIComponent(calendar)}/events`;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

const markerOf = (event: Record<string, any>) => event?.extendedProperties?.private?.meridianAppointmentId as string | undefined;
/** Meridian answers a delivery before it knows the appointment's id under load: tie them by start instead. */
const startOfRequest = (req: Req) => String(Date.parse(JSON.parse(req.body.toString()).payload.scheduled_event.start_time));
const startOfEvent = (event: Record<string, any>) => (event?.start?.dateTime ? String(Date.parse(event.start.dateTime)) : undefined);

/** Calendar inserts on `calendar` recorded by the fake since index `from`: write key → time it arrived. */
function writesSince(g: FakeGoogle, calendar: string, from: number, key: (event: any) => string | undefined = markerOf): Map<string, number> {
  const path = eventsPath(calendar);
  const out = new Map<string, number>();
  for (let i = from; i < g.requests.length; i++) {
    const q = g.requests[i];
    const id = q.method === 'POST' && q.path === path ? key(q.body) : undefined;
    if (id && !out.has(id)) out.set(id, q.at);
  }
  return out;
}

async function measure(g: FakeGoogle, f: Flow, seconds: number, rate: number): Promise<FlowRow> {
  process.stderr.write(`${f.name}: closed loop, 10 connections, ${seconds}s…\n`);
  const peak = sampleRss(f.server.proc.pid!);
  const mark = g.requests.length;
  const t0 = Date.now();
  const load = await runLoad(f.server.url, 10, seconds, webhookFactory(f.webhookPath));
  const row: FlowRow = { name: f.name, load, peakMb: 0 };
  const acked = (statuses: Record<string, number>) => (statuses['200'] ?? 0) + (statuses['202'] ?? 0);
  if (load.errors || Object.keys(load.statuses).some((s) => s !== '200' && s !== '202')) row.note = `answers ${JSON.stringify(load.statuses)}, errors ${load.errors}`;
  if (f.calendar) {
    // Every acknowledged delivery becomes one calendar write; Meridian's happen after it answered.
    const want = acked(load.statuses);
    let writes = writesSince(g, f.calendar, mark);
    for (const deadline = Date.now() + 300_000; writes.size < want && Date.now() < deadline; writes = writesSince(g, f.calendar, mark)) await sleep(250);
    const last = Math.max(...writes.values());
    row.writesPerSecond = writes.size / ((last - t0) / 1000);
    const queued = load.statuses['202'] ?? 0;
    if (queued) row.note = [row.note, `${queued} of ${want} answered 202 before their apply; the last calendar write ${fmt((last - t0) / 1000 - seconds, 1)} s after the load ended`].filter(Boolean).join('; ');
    if (writes.size < want) row.note = [row.note, `${want - writes.size} acknowledged deliveries never reached the calendar in 300 s`].filter(Boolean).join('; ');
    process.stderr.write(`${f.name}: open loop, ${rate}/s for 10s…\n`);
    const openMark = g.requests.length;
    const open = await openLoop(f.server.url, rate, 10, webhookFactory(f.webhookPath));
    const keys = open.sent.filter((s) => s.status === 200 || s.status === 202).map((s) => ({ key: f.keyOf(s.req, s.body), at: s.at }));
    let seen = writesSince(g, f.calendar, openMark, f.writeKey);
    for (const deadline = Date.now() + 60_000; keys.some((k) => k.key && !seen.has(k.key)) && Date.now() < deadline; seen = writesSince(g, f.calendar, openMark, f.writeKey)) await sleep(100);
    const lat = keys.map((k) => (k.key && seen.has(k.key) ? seen.get(k.key)! - k.at : Infinity)).sort((a, b) => a - b);
    row.writeP50 = percentile(lat, 50);
    row.writeP99 = percentile(lat, 99);
    row.ackP99Open = percentile(open.sent.map((s) => s.ackMs).sort((a, b) => a - b), 99);
    const failed = open.sent.length - keys.length + open.errors;
    if (failed || open.lateMs > 50) row.note = [row.note, failed ? `${failed} of ${Math.round(rate * 10)} not answered 2xx` : '', open.lateMs > 50 ? `sender fell ${fmt(open.lateMs, 0)} ms behind schedule` : ''].filter(Boolean).join('; ');
  }
  row.peakMb = peak.stop();
  return row;
}

async function meridianFlow(g: FakeGoogle, name: string, dir: string, dbEnv: NodeJS.ProcessEnv, prefix: string): Promise<Flow> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'clinic.yaml'), benchConfig(g, 20, prefix));
  const server = await node(['bin/meridian', 'serve', '--data', dir, '--config', join(dir, 'clinic.yaml'), '--port', '0'], { ...dbEnv, ...benchEnv(g) });
  return {
    name, calendar: `${prefix}p0@bench`, server, webhookPath: '/webhooks/calendly',
    keyOf: (req) => startOfRequest(req), writeKey: startOfEvent,
    close: () => stop(server.proc),
  };
}

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`drop schema if exists ${schema} cascade`);
  await c.end();
}

async function flowTable(g: FakeGoogle, seconds: number, rate: number, withPg: boolean): Promise<string[]> {
  const token = await fakeToken(g);
  const scratch = mkdtempSync(join(tmpdir(), 'meridian-peers-'));
  const rows: FlowRow[] = [];
  const notes: string[] = [];
  const ready: string[] = [];
  const run = async (make: () => Promise<Flow | { missing: string }>) => {
    let f: Flow | { missing: string };
    try {
      f = await make();
    } catch (e) {
      notes.push(`skipped: ${(e as Error).message.slice(0, 300)}`);
      return;
    }
    if ('missing' in f) return void notes.push(`skipped: ${f.missing}`);
    try {
      if (f.readyMs !== undefined) ready.push(`${f.name} ${fmt(f.readyMs / 1000, 2)} s to its first webhook answered, ${fmt(treeRssMb(f.server.proc.pid!), 0)} MB resident then`);
      rows.push(await measure(g, f, seconds, rate));
    } finally {
      await f.close();
    }
  };
  const plainFlow = async (name: string, calendar?: string): Promise<Flow> => {
    const env: NodeJS.ProcessEnv = { SECRET: KEY, PLATFORM: 'calendly', ...(calendar ? { CALENDAR_URL: `${g.url}${eventsPath(calendar)}?sendUpdates=none`, TOKEN: token } : {}) };
    const server = await node(['--import', 'tsx', 'bench/plain-server.ts'], env);
    return { name, calendar, server, webhookPath: '/webhooks/calendly', keyOf: (req) => externalIdOf(req), close: () => stop(server.proc) };
  };
  await run(() => plainFlow('plain Node, verify only (the ingest baseline)'));
  await run(() => plainFlow('plain Node, verify + map + inline write (the flow baseline)', 'plain@bench'));
  await run(() => meridianFlow(g, 'Meridian, SQLite (durable: synchronous=FULL)', join(scratch, 'sqlite'), {}, 'sqlite-'));
  if (withPg) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    try {
      const label = await pgDurability(PG_URL);
      await run(() => meridianFlow(g, `Meridian, PostgreSQL (${label})`, join(scratch, 'pg'), { DATABASE_URL: PG_URL, MERIDIAN_PG_SCHEMA: schema }, 'pg-'));
    } finally {
      await dropSchema(schema);
    }
  } else notes.push('skipped: Meridian on PostgreSQL (not reachable, or --no-pg)');
  const peerFlow = (start: typeof startNodeRed, calendar: string) => async (): Promise<Flow | { missing: string }> => {
    const probe = webhookFactory('');
    const p = await start({ calendarUrl: `${g.url}${eventsPath(calendar)}?sendUpdates=none`, token, dir: scratch, probe });
    if ('missing' in p) return p;
    const base = new URL(p.webhookUrl);
    return { name: `${p.name} ${p.version}`, calendar, server: { ...p.started, url: base.origin }, webhookPath: base.pathname, readyMs: p.readyMs, keyOf: (req) => externalIdOf(req), close: () => stop(p.started.proc) };
  };
  await run(peerFlow(startNodeRed, 'nodered@bench'));
  await run(peerFlow(startN8n, 'n8n@bench'));
  rmSync(scratch, { recursive: true, force: true });

  const base = rows.find((r) => r.name.includes('flow baseline'));
  const ingestBase = rows.find((r) => r.name.includes('ingest baseline'));
  const ratio = (v: number | undefined, b: number | undefined, d = 2) => (v !== undefined && b ? fmt(v / b, d) : '–');
  const out = [
    `| Flow (webhook → map → calendar API; ${seconds} s closed loop, 10 connections) | acks/s | ×base | ack p50 / p99 ms | ×base p50 / p99 | calendar writes/s | ×base | write p50 / p99 ms at ${rate}/s (open loop) | ×base p99 | peak MB | ×base |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(`| ${r.name}${r.note ? ` (${r.note})` : ''} | ${fmt(r.load.rps, 0)} | ${ratio(r.load.rps, base?.load.rps)} | ${fmt(r.load.p50, 1)} / ${fmt(r.load.p99, 1)} | ${ratio(r.load.p50, base?.load.p50, 1)} / ${ratio(r.load.p99, base?.load.p99, 1)} | ${fmt(r.writesPerSecond, 0)} | ${ratio(r.writesPerSecond, base?.writesPerSecond)} | ${r.writeP50 === undefined ? '–' : `${fmt(r.writeP50, 0)} / ${fmt(r.writeP99, 0)}`} | ${ratio(r.writeP99, base?.writeP99, 1)} | ${fmt(r.peakMb, 0)} | ${ratio(r.peakMb, base?.peakMb, 1)} |`);
  }
  const durable = rows.filter((r) => r.name.startsWith('Meridian'));
  const peer = (n: string) => rows.find((r) => r.name.startsWith(n));
  out.push('');
  out.push('| Issue target (same run) | measured | target |');
  out.push('|---|---:|---:|');
  for (const m of durable) {
    const db = `${m.name.includes('SQLite') ? 'SQLite' : 'PostgreSQL'}${m.name.includes('NOT durable') ? ' (NOT durable: synchronous_commit=off)' : ''}`;
    // "The plain baseline" is read two ways: the equivalent flow (verify, map, calendar write) and, stricter,
    // a server that only checks the signature. Both are shown.
    out.push(`| durable ingest ${db} ÷ plain flow baseline (the equivalent flow) | ${ratio(m.load.rps, base?.load.rps)} | ≥ 0.5 |`);
    out.push(`| durable ingest ${db} ÷ plain verify-only | ${ratio(m.load.rps, ingestBase?.load.rps)} | ≥ 0.5 |`);
    out.push(`| durable ingest ${db} ÷ n8n | ${peer('n8n') ? ratio(m.load.rps, peer('n8n')!.load.rps, 1) : 'n8n not installed'} | ≥ 50 |`);
    out.push(`| durable ingest ${db} ÷ Node-RED | ${peer('Node-RED') ? ratio(m.load.rps, peer('Node-RED')!.load.rps, 1) : 'Node-RED not installed'} | ≥ 3 |`);
    out.push(`| webhook → calendar write p99 at ${rate}/s, ${db} | ${fmt(m.writeP99, 0)} ms | < 250 ms |`);
  }
  if (ready.length) out.push('', ...ready.map((r) => `- ${r}`));
  if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
  return out;
}

export async function main(args: string[]): Promise<void> {
  const opt = (name: string, d: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
  const seconds = Number(opt('--seconds', '5'));
  const rate = Number(opt('--rate', '100'));
  const skip = new Set(opt('--skip', '').split(',').filter(Boolean));
  const sizes = opt('--sizes', '1000,10000,100000').split(',').map(Number);
  const pgWhy = args.includes('--no-pg') ? '--no-pg' : await pgUnavailable();
  const out: string[] = [`Meridian peer benchmark — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, loopback; load generator and fake Google share one process`, `Command: npm run bench -- ${args.join(' ')}`, ''];
  const print = (lines: string[]) => { out.push(...lines, ''); process.stdout.write(`${lines.join('\n')}\n\n`); };
  if (!skip.has('peers')) {
    const g = await startFakeGoogle();
    print(await flowTable(g, seconds, rate, !pgWhy));
    if (g.violations.length) print([`fake Google saw ${g.violations.length} spec violations, first: ${g.violations[0]}`]);
    await g.close();
  }
  if (!skip.has('reconcile')) print(await benchReconcile(sizes));
  if (!skip.has('cold')) print(await coldStart(!pgWhy));
  if (!skip.has('profile')) print(await profileIngest(seconds));
  if (pgWhy) process.stderr.write(`PostgreSQL not measured: ${pgWhy}\n`);
  process.stderr.write(`peers are found in MERIDIAN_BENCH_NODE_RED / MERIDIAN_BENCH_N8N, bench/peers or ~/meridian-peers; to install: ${INSTALL_HINT}\n`);
}

/** Process start to /readyz answering 200, for a fresh data folder (migrations) and restarts; then RSS after 5 s idle. */
async function coldStart(withPg: boolean): Promise<string[]> {
  const g = await startFakeGoogle();
  const out = ['| Cold start: `bin/meridian serve` spawned → /readyz 200 | first start (fresh store: migrations, config) ms | restarts ms (median of 5, min–max) | RSS after 5 s idle MB |', '|---|---:|---:|---:|'];
  const backends: { name: string; env: NodeJS.ProcessEnv; schema?: string }[] = [{ name: 'SQLite', env: {} }];
  if (withPg) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    backends.push({ name: 'PostgreSQL', env: { DATABASE_URL: PG_URL, MERIDIAN_PG_SCHEMA: schema }, schema });
  }
  for (const be of backends) {
    process.stderr.write(`cold start, ${be.name}…\n`);
    const dir = mkdtempSync(join(tmpdir(), 'meridian-cold-'));
    writeFileSync(join(dir, 'clinic.yaml'), benchConfig(g, 20));
    const times: number[] = [];
    let idle = NaN;
    try {
      for (let i = 0; i < 6; i++) {
        const port = await freePort();
        const t0 = performance.now();
        const proc = spawn(process.execPath, ['bin/meridian', 'serve', '--data', dir, '--config', join(dir, 'clinic.yaml'), '--port', String(port)], { env: { ...process.env, LOG_LEVEL: 'warn', ...be.env, ...benchEnv(g) }, stdio: 'ignore' });
        for (;;) {
          const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
          if (ok) break;
          if (performance.now() - t0 > 30_000 || proc.exitCode !== null) throw new Error(`meridian did not become ready (exit ${proc.exitCode})`);
          await sleep(5);
        }
        times.push(performance.now() - t0);
        if (i === 5) {
          await sleep(5000);
          idle = treeRssMb(proc.pid!);
        }
        await stop(proc);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (be.schema) await dropSchema(be.schema);
    }
    const restarts = times.slice(1).sort((a, b) => a - b);
    out.push(`| ${be.name} | ${fmt(times[0], 0)} | ${fmt(restarts[2], 0)} (${fmt(restarts[0], 0)}–${fmt(restarts[4], 0)}) | ${fmt(idle, 0)} |`);
  }
  out.push('', 'Targets: cold start < 1 s, idle memory < 150 MB.');
  await g.close();
  return out;
}
