// npm run bench — Meridian beside a plain Node http server, measured in the same run on loopback.
//  1. Durable webhook ingest: signed Calendly webhooks, throughput and p50/p99 acknowledgement latency
//     at 10 and 50 concurrent connections. Meridian verifies, parses, applies, audits and enqueues the
//     calendar job in one committed transaction before it answers (durable: on SQLite synchronous = FULL,
//     every commit fsynced, set explicitly by benchEnv; on PostgreSQL synchronous_commit as the server has
//     it, printed); the baseline only verifies the signature and answers.
//  2. Webhook → calendar write latency against the fake Google Calendar: Meridian (durable queue,
//     worker) beside the baseline writing to the calendar API inline before answering.
//  3. The web app: the week view of 20 practitioners with 1,000 appointments in Chromium (bench/ui.ts).
//  4. Calendar push: a practitioner's change in their calendar → Meridian's reaction, push on vs sweeps only (bench/push.ts).
// Options: --seconds N (default 5), --pg (also run Meridian on the PostgreSQL of MERIDIAN_TEST_PG).
//  4. The quick calendar check on Radicale (200 and 1,000 events) beside the full sweep (bench/calendar-check.ts).
// --peers: the comparison with Node-RED and n8n, reconciliation, cold start and the ingest profile (bench/peers.ts).
// --only calendar-check [--sizes 200,1000] [--repeats 20]: that case alone (a minute or two).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startFakeGoogle, type FakeGoogle } from '../test/fakes/google-calendar.ts';
import { runLoad, type LoadResult } from './load.ts';
import { benchTargets } from './targets.ts';
import { benchCalendarCheck } from './calendar-check.ts';
import { KEY, benchConfig, benchEnv, fakeToken, fmt, pgDurability, node, stop, webhookFactory } from './common.ts';

const args = process.argv.slice(2);
const SECONDS = Number(args[args.indexOf('--seconds') + 1]) || 5;
const WITH_PG = args.includes('--pg');
const PG_URL = process.env.MERIDIAN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Row { what: string; meridian: LoadResult; plain: LoadResult }

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
  const tok = { access_token: await fakeToken(g) };
  const plainEnv = { SECRET: KEY, PLATFORM: 'calendly' };
  // `durability` names the commit setting each Meridian row is measured in (benchEnv sets SQLite's FULL).
  const backends: { name: string; durability: string; env: NodeJS.ProcessEnv }[] = [{ name: 'SQLite', durability: 'durable: synchronous=FULL', env: {} }];
  if (WITH_PG) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    backends.push({ name: 'PostgreSQL', durability: await pgDurability(PG_URL), env: { DATABASE_URL: PG_URL, MERIDIAN_PG_SCHEMA: schema } });
  }
  process.stdout.write(`Meridian benchmark — ${cpus().length} cores, Node ${process.version}, ${SECONDS}s per load run, loopback\n\n`);
  const rows: Row[] = [];
  const latencies: string[] = [];
  for (const be of backends) {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-'));
    writeFileSync(join(dir, 'clinic.yaml'), benchConfig(g, 20));
    const env = { ...be.env, ...benchEnv(g) };
    const meridian = await node(['bin/meridian', 'serve', '--data', dir, '--config', join(dir, 'clinic.yaml'), '--port', '0'], env);
    const plain = await node(['--import', 'tsx', 'bench/plain-server.ts'], plainEnv);
    try {
      for (const c of [10, 50]) {
        process.stderr.write(`ingest, ${be.name}, ${c} connections…\n`);
        const m = await runLoad(meridian.url, c, SECONDS, webhookFactory('/webhooks/calendly'));
        const p = await runLoad(plain.url, c, SECONDS, webhookFactory('/webhooks/calendly'));
        if (m.errors || Object.keys(m.statuses).some((s) => s !== '200')) process.stderr.write(`  meridian answers: ${JSON.stringify(m.statuses)} errors ${m.errors}\n`);
        rows.push({ what: `ingest ${be.name} (${be.durability}), ${c} conn`, meridian: m, plain: p });
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
      latencies.push(`| webhook → Google write, Meridian on ${be.name} (${be.durability}; queue + worker) | ${fmt(ml.p50, 0)} | ${fmt(ml.p99, 0)} | ${fmt(ml.max, 0)} |`);
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
  const inline = await node(['--import', 'tsx', 'bench/plain-server.ts'], { ...plainEnv, CALENDAR_URL: `${g.url}/calendar/v3/calendars/plain%40bench/events?sendUpdates=none`, TOKEN: tok.access_token });
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
  process.stderr.write('web app week view…\n');
  out.push('', ...(await (await import('./ui.ts')).uiBenchRows()));
  process.stderr.write('quick calendar check on Radicale…\n');
  out.push('', ...(await benchCalendarCheck()));
  process.stderr.write('calendar push…\n');
  out.push('', ...(await (await import('./push.ts')).pushBenchRows()));
  process.stdout.write(`${out.join('\n')}\n`);
  if (g.violations.length) process.stdout.write(`\nfake Google saw ${g.violations.length} spec violations, first: ${g.violations[0]}\n`);
  await g.close();
}

// `--peers`: Meridian beside the plain baseline, Node-RED and n8n; reconciliation; cold start (bench/peers.ts).
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
if (only === 'calendar-check') {
  const sizes = (opt('--sizes') ?? '200,1000').split(',').map(Number).filter((x) => x > 0);
  const lines = await benchCalendarCheck(sizes, Number(opt('--repeats')) || 20);
  process.stdout.write(`Meridian benchmark — quick calendar check, ${cpus().length} cores, Node ${process.version}\nCommand: npm run bench -- ${args.join(' ')}\n\n${lines.join('\n')}\n`);
} else if (only !== undefined) {
  process.stderr.write(`--only: unknown case "${only}" (known: calendar-check)\n`);
  process.exitCode = 2;
} else if (args.includes('--peers')) await (await import('./peers.ts')).main(args);
else await main();
