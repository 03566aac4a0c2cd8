// The import graph check CI runs (npm run check:imports): no import loop between the files of src/engine
// (type-only imports included: a loop through types still ties the files together), and each room of the
// engine imports only from the rooms before it (src/engine/README.md). Also reports loops elsewhere in src.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const SRC = join(ROOT, 'src');
/** The engine's rooms in order: a room may import from those before it, never from one after it. */
const ROOMS = ['hub', 'effects', 'appointments', 'inbound', 'edits', 'sync', 'jobs', 'connect'];
/** Files directly in src/engine: above every room (runtime.ts), imported by nothing in the engine. */
const TOP = 'top';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'ui' && dir === SRC ? [] : files(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push(resolve(dirname(file), m[1] ?? m[2]));
  return out;
}

const all = files(SRC);
const graph = new Map(all.map((f) => [f, importsOf(f).filter((t) => all.includes(t))]));
const rel = (f: string) => relative(ROOT, f);

/** Strongly connected components with more than one file (or a file importing itself): the loops. */
function loops(nodes: string[]): string[][] {
  const inSet = new Set(nodes);
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!inSet.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(c.sort());
    }
  };
  for (const n of nodes) if (!idx.has(n)) visit(n);
  return out;
}

const ENGINE = join(SRC, 'engine');
const roomOf = (f: string): string | undefined => {
  if (!f.startsWith(ENGINE + '/')) return undefined;
  const parts = relative(ENGINE, f).split('/');
  return parts.length === 1 ? TOP : parts[0];
};
const rank = (room: string) => (room === TOP ? ROOMS.length : ROOMS.indexOf(room));

const problems: string[] = [];
const engineFiles = all.filter((f) => roomOf(f) !== undefined);
for (const c of loops(engineFiles)) problems.push(`import loop in src/engine: ${c.map(rel).join(' → ')}`);
for (const f of engineFiles) {
  const from = roomOf(f)!;
  if (from !== TOP && rank(from) < 0) problems.push(`${rel(f)}: room "${from}" is not in the list of rooms (scripts/check-imports.ts, src/engine/README.md)`);
  for (const t of graph.get(f) ?? []) {
    const to = roomOf(t);
    if (to === undefined || to === from) continue;
    if (rank(to) > rank(from)) problems.push(`${rel(f)} (room ${from}) imports ${rel(t)} (room ${to}, which comes after it)`);
  }
}
// Below the engine: src/domain and src/store never import the engine, the HTTP layer or the CLI.
for (const f of all) {
  const r = relative(SRC, f).split('/')[0];
  if (r !== 'domain' && r !== 'store') continue;
  for (const t of graph.get(f) ?? []) {
    const tr = relative(SRC, t).split('/')[0];
    if (['engine', 'http', 'cli', 'config'].includes(tr) || (r === 'domain' && tr === 'store')) problems.push(`${rel(f)} (src/${r}) imports ${rel(t)}`);
  }
}
const elsewhere = loops(all.filter((f) => roomOf(f) === undefined));

const edges = engineFiles.reduce((n, f) => n + (graph.get(f) ?? []).length, 0);
process.stdout.write(`checked ${all.length} files in src (${engineFiles.length} in src/engine, ${edges} imports between them)\n`);
for (const c of elsewhere) process.stdout.write(`note: import loop outside the engine: ${c.map(rel).join(' → ')}\n`);
if (problems.length) {
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stderr.write(`${problems.length} problem(s)\n`);
  process.exit(1);
}
process.stdout.write('no import loop in src/engine; every room imports only from the rooms before it\n');
