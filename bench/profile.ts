// Where the ingest time goes: the real `bin/meridian serve` (SQLite, run from its TypeScript so that
// samples name src/ files) under `node --cpu-prof` while the
// closed-loop load runs, then the profile's samples from the first to the last one inside
// ingestWebhook, attributed (a) by self time to a component (SQLite's native calls, Kysely, Fastify,
// pino, Node core, each src/ file) and (b) by inclusive time to our own functions.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeGoogle } from '../test/fakes/google-calendar.ts';
import { runLoad } from './load.ts';
import { ROOT, benchConfig, benchEnv, fmt, node, stop, webhookFactory } from './common.ts';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** better-sqlite3's statement methods: native frames without a script of their own. */
const SQLITE_NATIVE = new Set(['run', 'all', 'get', 'iterate', 'prepare', 'exec', 'pragma']);

function component(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) {
    if (pkg === 'better-sqlite3') return 'better-sqlite3 (JS side)';
    if (pkg === 'kysely') return 'Kysely (query building, compiling, result mapping)';
    if (/^(fastify|@fastify\/|find-my-way|avvio|light-my-request|fast-json-stringify|secure-json-parse|content-type|abstract-logging)/.test(pkg)) return 'Fastify (routing, hooks, body parsing, replies)';
    if (/^(pino|sonic-boom|thread-stream|fast-redact|quick-format-unescaped)/.test(pkg)) return 'pino (logging)';
    if (pkg === 'tsx' || pkg === 'esbuild') return 'tsx (module loading)';
    return `npm: ${pkg}`;
  }
  if (url.startsWith('node:')) return 'Node core (http, streams, crypto, timers)';
  const src = /\/(src\/[^?]+)/.exec(url)?.[1];
  return src ?? (url ? `other: ${url.slice(-60)}` : 'native / V8');
}

/** `skipMs`: leave out this much from the start of the load (lazy module loading, JIT warm-up). */
export function analyse(p: CpuProfile, requests: number, skipMs = 0): string[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number): ProfileNode[] => {
    const s: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) s.push(byId.get(cur)!);
    return s;
  };
  // After its first await the ingest runs on in the pipeline's steps, not under ingestWebhook's own frame.
  const INGEST = new Set(['webhookAnswer', 'ingestWebhook', 'storeDelivery']);
  const inIngest = p.samples.map((id) => stack(id).some((n) => INGEST.has(n.callFrame.functionName)));
  let first = inIngest.indexOf(true);
  const last = inIngest.lastIndexOf(true);
  for (let skipped = 0; first < last && skipped < skipMs; first++) skipped += p.timeDeltas[first] / 1000;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = first; i <= last; i++) {
    const dt = p.timeDeltas[i] / 1000;
    total += dt;
    const s = stack(p.samples[i]);
    const leaf = s[0].callFrame;
    let cat: string;
    if (leaf.functionName === '(idle)') { idle += dt; continue; }
    if (leaf.functionName === '(garbage collector)') cat = 'garbage collection';
    else if (leaf.functionName === '(program)') cat = 'V8 / native (unattributed)';
    // better-sqlite3's native statement calls show as Kysely's driver frame that makes them.
    else if ((!leaf.url && SQLITE_NATIVE.has(leaf.functionName)) || (leaf.functionName === 'executeQuery' && leaf.url.includes('dialect/sqlite/sqlite-driver'))) cat = 'SQLite (statements run natively by better-sqlite3, COMMIT included)';
    else cat = component(s.find((n) => n.callFrame.url)?.callFrame.url ?? '');
    self.set(cat, (self.get(cat) ?? 0) + dt);
    const seen = new Set<string>();
    for (const n of s) {
      const src = /\/(src\/[^?]+)/.exec(n.callFrame.url)?.[1];
      if (!src || !n.callFrame.functionName) continue;
      const key = `${n.callFrame.functionName} (${src})`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const per = (ms: number) => fmt((ms * 1000) / requests, 0);
  const out = [
    `Profiled window ${fmt(total / 1000, 2)} s, CPU busy ${fmt((100 * busy) / total, 0)} % of it (one thread), ${requests} webhooks acknowledged: ${fmt((busy * 1000) / requests, 0)} µs of main-thread CPU per acknowledged webhook (with whatever applying and calendar writing the burst left room for: most of it follows the burst, see the flow table's calendar writes/s).`,
    '',
    '| Component (self time) | ms | % of busy | µs per webhook |',
    '|---|---:|---:|---:|',
  ];
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).filter(([, v]) => v / busy >= 0.005)) out.push(`| ${k} | ${fmt(v, 0)} | ${fmt((100 * v) / busy, 1)} | ${per(v)} |`);
  out.push('', '| Our function (inclusive time: it and everything it calls) | ms | % of busy | µs per webhook |', '|---|---:|---:|---:|');
  for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 22)) out.push(`| ${k} | ${fmt(v, 0)} | ${fmt((100 * v) / busy, 1)} | ${per(v)} |`);
  return out;
}

export async function profileIngest(seconds: number): Promise<string[]> {
  process.stderr.write('profiling the server under load (node --cpu-prof)…\n');
  const g = await startFakeGoogle();
  const dir = mkdtempSync(join(tmpdir(), 'meridian-prof-'));
  const profDir = join(dir, 'prof');
  writeFileSync(join(dir, 'clinic.yaml'), benchConfig(g, 20));
  const server = await node(['--cpu-prof', `--cpu-prof-dir=${profDir}`, 'bin/meridian', 'serve', '--data', dir, '--config', join(dir, 'clinic.yaml'), '--port', '0'], { ...benchEnv(g), MERIDIAN_TSX: '1' });
  const factory = webhookFactory('/webhooks/calendly');
  const warm = await runLoad(server.url, 10, 2, factory);
  const load = await runLoad(server.url, 10, seconds, factory);
  await stop(server.proc);
  await g.close();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return ['(no CPU profile was written)'];
  const keep = process.env.MERIDIAN_BENCH_KEEP_PROFILE;
  const text = readFileSync(join(profDir, file), 'utf8');
  if (keep) writeFileSync(keep, text);
  rmSync(dir, { recursive: true, force: true });
  return [
    `Ingest profile: \`node --cpu-prof bin/meridian serve\` (SQLite), 10 connections, 2 s warm-up left out, then ${seconds} s at ${fmt(load.rps, 0)} webhooks/s while profiled${keep ? ` (profile kept in ${keep})` : ''}.`,
    '',
    ...analyse(JSON.parse(text) as CpuProfile, load.requests, warm.seconds * 1000),
  ];
}

// `node --import tsx bench/profile.ts [seconds]`: only this part.
if (process.argv[1] && join(ROOT, 'bench', 'profile.ts') === process.argv[1]) process.stdout.write(`${(await profileIngest(Number(process.argv[2]) || 5)).join('\n')}\n`);
