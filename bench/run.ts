// npm run bench — Meridian beside a plain Node http server, measured in the same run on loopback.
//  1. Durable webhook ingest: signed Calendly webhooks, throughput and p50/p99 acknowledgement latency
//     at 10 and 50 concurrent connections. Meridian verifies, parses, applies, audits and enqueues the
//     calendar job in one committed transaction before it answers; the baseline only verifies the
//     signature and answers.
//  2. Webhook → calendar write latency against the fake Google Calendar: Meridian (durable queue,
//     worker) beside the baseline writing to the calendar API inline before answering.
// Options: --seconds N (default 5), --pg (also run Meridian on the PostgreSQL of MERIDIAN_TEST_PG).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { getSource } from '../src/connectors/registry.ts';
import { startFakeGoogle, type FakeGoogle } from '../test/fakes/google-calendar.ts';
import { runLoad, type LoadResult, type Req } from './load.ts';
import { benchTargets } from './targets.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const SECONDS = Number(args[args.indexOf('--seconds') + 1]) || 5;
const WITH_PG = args.includes('--pg');
const PG_URL = process.env.MERIDIAN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEY = `bench-${randomBytes(8).toString('hex')}`;
const HOST = 'https://api.calendly.com/users/bench-host';
const calendly = getSource('calendly')!;

function start(cmd: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, cmd, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1].replace('localhost', '127.0.0.1'), proc });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    proc.on('exit', (c) => reject(new Error(`${cmd.join(' ')} exited ${c}: ${out}`)));
  });
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (p.exitCode !== null) return r();
    p.once('exit', () => r());
    p.kill('SIGTERM');
  });
}

/** A fresh, validly signed booking webhook every call (unique ids: nothing is deduplicated away). */
function webhookFactory(path: string): () => Req {
  let n = 0;
  return () => {
    n++;
    const start = new Date(Date.UTC(2027, 0, 1, 8) + (n % 5000) * 3_600_000).toISOString();
    const end = new Date(Date.parse(start) + 45 * 60_000).toISOString();
    const s = calendly.sampleWebhook!({ event: 'created', bookingId: randomUUID(), start, end, timeZone: 'America/Chicago', patient: { name: 'Bench Patient', email: 'p@example.org' }, hostRef: HOST }, { signingKey: KEY }, new Date());
    return { path, headers: s.headers, body: s.rawBody };
  };
}

function config(g: FakeGoogle, practitioners: number): string {
  const ps = Array.from({ length: practitioners }, (_, i) => `  - { id: p${i}, name: Practitioner ${i}, locations: [main], targets: [{ connection: google, calendar: "p${i}@bench" }] }`).join('\n');
  return `
clinic: { id: bench, name: Bench Clinic, timeZone: America/Chicago }
locations: [{ id: main, name: Main, timeZone: America/Chicago }]
practitioners:
${ps}
connections:
  - id: calendly
    platform: calendly
    secrets: { signingKey: { env: BENCH_KEY } }
    refs: { defaultPractitioner: p0, practitioners: { "${HOST}": p0 } }
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl} }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`;
}

interface Row { what: string; meridian: LoadResult; plain: LoadResult }

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');

async function latencyRun(url: string, g: FakeGoogle, idOf: (res: Record<string, any>, externalId: string) => string, n: number): Promise<{ p50: number; p99: number; max: number }> {
  const make = webhookFactory('/webhooks/calendly');
  const lats: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = make();
    const externalId = JSON.parse(r.body.toString()).payload.uri as string;
    const t0 = Date.now();
    const res = await fetch(`${url}${r.path}`, { method: 'POST', headers: r.headers, body: new Uint8Array(r.body) });
    const id = idOf(await res.json() as Record<string, any>, externalId);
    const deadline = Date.now() + 10_000;
    let at: number | undefined;
    while (!at && Date.now() < deadline) {
      at = g.requests.find((q) => q.method === 'POST' && q.body?.extendedProperties?.private?.meridianAppointmentId === id)?.at;
      if (!at) await new Promise((res2) => setTimeout(res2, 1));
    }
    lats.push((at ?? Date.now()) - t0);
    await new Promise((res2) => setTimeout(res2, 20));
  }
  lats.sort((a, b) => a - b);
  return { p50: lats[Math.floor(n * 0.5)], p99: lats[Math.min(n - 1, Math.floor(n * 0.99))], max: lats[n - 1] };
}

async function main(): Promise<void> {
  const g = await startFakeGoogle();
  const tok = await (await fetch(g.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: g.credentials.refreshToken, client_id: g.credentials.clientId, client_secret: g.credentials.clientSecret }) })).json() as { access_token: string };
  const plainEnv = { SECRET: KEY, PLATFORM: 'calendly' };
  const backends: { name: string; env: NodeJS.ProcessEnv }[] = [{ name: 'SQLite', env: {} }];
  if (WITH_PG) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    backends.push({ name: 'PostgreSQL', env: { DATABASE_URL: PG_URL, MERIDIAN_PG_SCHEMA: schema } });
  }
  process.stdout.write(`Meridian benchmark — ${cpus().length} cores, Node ${process.version}, ${SECONDS}s per load run, loopback\n\n`);
  const rows: Row[] = [];
  const latencies: string[] = [];
  for (const be of backends) {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-'));
    writeFileSync(join(dir, 'clinic.yaml'), config(g, 20));
    const env = { ...be.env, BENCH_KEY: KEY, G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken };
    const meridian = await start(['bin/meridian', 'serve', '--data', dir, '--config', join(dir, 'clinic.yaml'), '--port', '0'], env);
    const plain = await start(['--import', 'tsx', 'bench/plain-server.ts'], plainEnv);
    try {
      for (const c of [10, 50]) {
        process.stderr.write(`ingest, ${be.name}, ${c} connections…\n`);
        const m = await runLoad(meridian.url, c, SECONDS, webhookFactory('/webhooks/calendly'));
        const p = await runLoad(plain.url, c, SECONDS, webhookFactory('/webhooks/calendly'));
        if (m.errors || Object.keys(m.statuses).some((s) => s !== '200')) process.stderr.write(`  meridian answers: ${JSON.stringify(m.statuses)} errors ${m.errors}\n`);
        rows.push({ what: `ingest ${be.name}, ${c} conn`, meridian: m, plain: p });
      }
      // Let the worker drain the calendar writes the load runs queued before measuring latency.
      process.stderr.write(`draining calendar jobs, ${be.name}…\n`);
      const drainStart = Date.now();
      for (;;) {
        const res = await fetch(`${meridian.url}/metrics`);
        const text = await res.text();
        const pending = Number(/meridian_jobs\{state="pending"\} (\d+)/.exec(text)?.[1] ?? 0) + Number(/meridian_jobs\{state="running"\} (\d+)/.exec(text)?.[1] ?? 0);
        if (pending === 0 || Date.now() - drainStart > 300_000) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const drained = (Date.now() - drainStart) / 1000;
      process.stderr.write(`webhook → calendar latency, ${be.name}…\n`);
      const ml = await latencyRun(meridian.url, g, (res) => res.changes?.[0]?.appointmentId, 100);
      latencies.push(`| webhook → Google write, Meridian on ${be.name} (durable queue + worker) | ${fmt(ml.p50, 0)} | ${fmt(ml.p99, 0)} | ${fmt(ml.max, 0)} |`);
      latencies.push(`| (backlog of calendar writes after the load runs drained in ${fmt(drained)} s) | | | |`);
    } finally {
      await stop(meridian.proc);
      await stop(plain.proc);
      rmSync(dir, { recursive: true, force: true });
      if (be.env.MERIDIAN_PG_SCHEMA) {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`drop schema if exists ${be.env.MERIDIAN_PG_SCHEMA} cascade`);
        await c.end();
      }
    }
  }
  const inline = await start(['--import', 'tsx', 'bench/plain-server.ts'], { ...plainEnv, CALENDAR_URL: `${g.url}/calendar/v3/calendars/plain%40bench/events?sendUpdates=none`, TOKEN: tok.access_token });
  // The plain server sends the fake's token it is given.
  const pl = await latencyRun(inline.url, g, (_res, externalId) => externalId, 100);
  await stop(inline.proc);

  const out: string[] = [];
  out.push('| Run | Meridian req/s | plain req/s | ratio | Meridian p50 / p99 ms | plain p50 / p99 ms |');
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    out.push(`| ${r.what} | ${fmt(r.meridian.rps, 0)} | ${fmt(r.plain.rps, 0)} | ${fmt(r.meridian.rps / r.plain.rps, 2)} | ${fmt(r.meridian.p50, 2)} / ${fmt(r.meridian.p99, 2)} | ${fmt(r.plain.p50, 2)} / ${fmt(r.plain.p99, 2)} |`);
  }
  out.push('');
  out.push('| Webhook → calendar write (100 sequential webhooks) | p50 ms | p99 ms | max ms |');
  out.push('|---|---:|---:|---:|');
  out.push(...latencies);
  out.push(`| webhook → Google write, plain server writing inline (no queue, no retry, nothing stored) | ${fmt(pl.p50, 0)} | ${fmt(pl.p99, 0)} | ${fmt(pl.max, 0)} |`);
  process.stderr.write('calendar target writes…\n');
  const targets = await benchTargets(200);
  out.push('');
  out.push('| Target write (create then move; 4 in flight unless said) | writes/s | HTTP round trips per write |');
  out.push('|---|---:|---:|');
  for (const t of targets) out.push(`| ${t.target} | ${fmt(t.writes / t.seconds, 0)} | ${t.requestsPerWrite === undefined ? '–' : fmt(t.requestsPerWrite, 2)} |`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (g.violations.length) process.stdout.write(`\nfake Google saw ${g.violations.length} spec violations, first: ${g.violations[0]}\n`);
  await g.close();
}

await main();
