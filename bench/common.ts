// What every bench mode shares: starting and stopping servers, signed Calendly webhooks, the bench
// clinic's configuration, and reading a process tree's memory from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomUUID, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { getSource } from '../src/connectors/registry.ts';
import type { FakeGoogle } from '../test/fakes/google-calendar.ts';
import type { Req } from './load.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const KEY = `bench-${randomBytes(8).toString('hex')}`;
export const HOST = 'https://api.calendly.com/users/bench-host';
const calendly = getSource('calendly')!;

export interface Started { url: string; proc: ChildProcess; startedAt: number }

/** Spawn a server and resolve when it prints `listening on <url>` (or `ready` matches its output). */
export function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv, o: { ready?: RegExp; url?: string; cwd?: string; timeoutMs?: number } = {}): Promise<Started> {
  const startedAt = performance.now();
  const proc = spawn(cmd, argv, { cwd: o.cwd ?? ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${cmd} did not start in time: ${out.slice(-2000)}`)); }, o.timeoutMs ?? 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.length > 100_000) out = out.slice(-50_000);
      const m = (o.ready ?? /listening on (http:\/\/\S+)/).exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        proc.stdout!.resume();
        resolve({ url: o.url ?? m[1].replace('localhost', '127.0.0.1'), proc, startedAt });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); if (o.ready) onData(Buffer.alloc(0)); });
    proc.on('exit', (c) => { clearTimeout(timer); reject(new Error(`${cmd} ${argv.join(' ')} exited ${c}: ${out.slice(-2000)}`)); });
  });
}

export const node = (argv: string[], env: NodeJS.ProcessEnv, o?: Parameters<typeof start>[3]) => start(process.execPath, argv, env, o);

export function stop(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.once('exit', () => { clearTimeout(t); r(); });
    p.kill(signal);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Shared by every factory of a run, so that no two bookings of a run overlap (double bookings are another cost). */
let booked = 0;

/** A fresh, validly signed booking webhook every call (unique ids: nothing is deduplicated away). */
export function webhookFactory(path: string): () => Req {
  return () => {
    const n = ++booked;
    const start = new Date(Date.UTC(2027, 0, 1, 8) + n * 3_600_000).toISOString();
    const end = new Date(Date.parse(start) + 45 * 60_000).toISOString();
    const s = calendly.sampleWebhook!({ event: 'created', bookingId: randomUUID(), start, end, timeZone: 'America/Chicago', patient: { name: 'Bench Patient', email: 'p@example.org' }, hostRef: HOST }, { signingKey: KEY }, new Date());
    return { path, headers: s.headers, body: s.rawBody };
  };
}

/** The bench clinic: `practitioners` practitioners writing to `<calendarPrefix>p<i>@bench` on the fake Google. */
export function benchConfig(g: FakeGoogle, practitioners: number, calendarPrefix = ''): string {
  const ps = Array.from({ length: practitioners }, (_, i) => `  - { id: p${i}, name: Practitioner ${i}, locations: [main], targets: [{ connection: google, calendar: "${calendarPrefix}p${i}@bench" }] }`).join('\n');
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

/**
 * Every Meridian the bench starts runs in the durable setting (SQLite synchronous = FULL, the default), whatever
 * the shell's MERIDIAN_SQLITE_SYNC says: the rows labelled "durable" are measured fsynced.
 */
export const benchEnv = (g: FakeGoogle): NodeJS.ProcessEnv => ({ MERIDIAN_SQLITE_SYNC: 'full', BENCH_KEY: KEY, G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken });

/**
 * How a Meridian row on PostgreSQL is labelled: "durable" only when the server commits with
 * synchronous_commit on (Meridian never changes it; the server, database or role could).
 */
export async function pgDurability(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const v = String((await c.query<{ synchronous_commit: string }>('show synchronous_commit')).rows[0]?.synchronous_commit);
    return v === 'off' ? 'NOT durable: synchronous_commit=off on this server' : `durable: synchronous_commit=${v}`;
  } finally {
    await c.end();
  }
}

/** An access token the fake accepts, for servers that call the calendar API directly. */
export async function fakeToken(g: FakeGoogle): Promise<string> {
  const res = await fetch(g.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: g.credentials.refreshToken, client_id: g.credentials.clientId, client_secret: g.credentials.clientSecret }) });
  return ((await res.json()) as { access_token: string }).access_token;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The process and all its descendants (n8n and npx start children). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(root);
  return out;
}

/** Resident memory of a process tree now, in MB. */
export function treeRssMb(root: number): number {
  return processTree(root).reduce((s, p) => s + statusKb(p, 'VmRSS'), 0) / 1024;
}

/**
 * Samples a process tree's resident memory every `everyMs` until stopped; returns the peak in MB. The
 * tree is re-read only every 2 s (walking /proc is slow, and this runs in the load generator's process).
 */
export function sampleRss(root: number, everyMs = 100): { stop(): number } {
  let pids = processTree(root);
  let listed = Date.now();
  const now = () => {
    if (Date.now() - listed > 2000) { pids = processTree(root); listed = Date.now(); }
    return pids.reduce((s, p) => s + statusKb(p, 'VmRSS'), 0) / 1024;
  };
  let peak = now();
  const t = setInterval(() => { peak = Math.max(peak, now()); }, everyMs);
  return { stop: () => { clearInterval(t); return Math.max(peak, treeRssMb(root)); } };
}

export const fmt = (n: number | undefined, d = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : '–');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
