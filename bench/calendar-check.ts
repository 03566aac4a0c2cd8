// The quick calendar check (issue 18) on a real Radicale: what one check costs for a calendar of N of our
// events (200 and 1,000 by default) — wall time and HTTP requests per check — beside the full sweep of the same
// calendar, measured in the same run on the same store:
//  - full sweep without a token (the compare by listing a sweep makes when it has no token): the baseline;
//  - the hourly sweep with its token, nothing changed (it still reads the busy times);
//  - quick check, nothing changed (the collection's sync-token, one PROPFIND);
//  - quick check, one event moved by another CalDAV client (sync-token, REPORT, read-back, repair, busy times);
//  - quick check after a restart (discovery again, then the REPORT);
//  - the sync-collection REPORT with the current token alone: the request the PROPFIND saves.
// `npm run bench -- --only calendar-check [--sizes 200,1000] [--repeats 20]`; also part of `npm run bench`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccount, makeCalendar } from 'tsdav';
import { openHub, makeLogger, type Hub } from '../src/engine/hub/hub.ts';
import { parseConfig } from '../src/config/load.ts';
import { applyConfig } from '../src/config/apply.ts';
import { staffCreate } from '../src/engine/edits/staff.ts';
import { drain } from '../src/engine/jobs/worker.ts';
import { sweepConnection } from '../src/engine/sync/sweep.ts';
import { connectionContext, loadConnection } from '../src/engine/hub/connections.ts';
import { collectionSyncToken, forgetSession, syncCollection } from '../src/connectors/targets/caldav/dav.ts';
import { getMeta, putMeta } from '../src/store/repo.ts';
import { radicaleMissing, startRadicale, type Radicale } from '../test/fakes/radicale.ts';
import { fmt } from './common.ts';

interface Measure { ms: number[]; requests: number[] }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const compact = (t: string) => new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');

/** Day `d` from today at `h`:`m` UTC. */
function at(d: number, h: number, m = 0): string {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate() + d, h, m)).toISOString();
}

async function benchSize(rad: Radicale, n: number, repeats: number): Promise<string[]> {
  const auth = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
  const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: auth });
  const path = `bench-${n}`;
  // A connection per size: discovery is cached per connection (ten minutes), and this calendar is new.
  const id = `dav${n}`;
  await makeCalendar({ url: `${account.homeUrl}${path}/`, headers: auth, props: { 'd:displayname': `Bench ${n}` } });
  const dir = mkdtempSync(join(tmpdir(), 'meridian-check-bench-'));
  let requests = 0;
  const counting: typeof fetch = (input, init) => {
    requests++;
    return globalThis.fetch(input, init);
  };
  const hub: Hub = await openHub({ dataDir: dir, log: makeLogger('silent'), env: { DAV_USER: rad.username, DAV_PASS: rad.password }, fetch: counting });
  const c = parseConfig(`
clinic: { id: bench, name: Bench Clinic, timeZone: Europe/London }
locations: [{ id: main, name: Main }]
practitioners: [{ id: p0, name: Practitioner 0, locations: [main], targets: [{ connection: ${id}, calendar: "Bench ${n}" }] }]
connections:
  - id: ${id}
    platform: caldav
    baseUrl: ${rad.url}
    secrets: { username: { env: DAV_USER }, password: { env: DAV_PASS } }
`, 'bench.yaml');
  await applyConfig(hub, c.config, c.hash, 'bench');
  try {
    process.stderr.write(`calendar check: writing ${n} events to Radicale…\n`);
    // Ten 45-minute appointments a day from tomorrow: 1,000 span 100 days (the busy refresh reads 60 of them).
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const d = 1 + Math.floor(i / 10);
      const h = 8 + (i % 10);
      ids.push((await staffCreate(hub, { practitionerId: 'p0', start: at(d, h), end: at(d, h, 45), patient: { name: `Patient ${i}` } }, 'bench')).id);
    }
    await drain(hub);
    const tokenKey = `sync-token:${id}:Bench ${n}`;
    const measure = async (times: number, before: () => Promise<void>, fn: () => Promise<unknown>, after?: () => Promise<void>): Promise<Measure> => {
      const m: Measure = { ms: [], requests: [] };
      for (let i = 0; i < times; i++) {
        await before();
        const r0 = requests;
        const t0 = performance.now();
        const r = await fn();
        m.ms.push(performance.now() - t0);
        m.requests.push(requests - r0);
        if (r && typeof r === 'object' && 'failure' in r) throw new Error(`calendar check bench: ${JSON.stringify(r)}`);
        await after?.();
      }
      return m;
    };
    const nothing = async () => {};
    const sweep = () => sweepConnection(hub, id);
    const quick = () => sweepConnection(hub, id, { quick: true });
    process.stderr.write(`calendar check: measuring ${n} events…\n`);
    // Warm up (discovery cached, token stored), then check that the calendar is in sync as seeded.
    const warm = await sweep();
    if ('failure' in warm) throw new Error(warm.failure);
    if (warm.drift.in_sync !== n) throw new Error(`calendar check bench: the seeded calendar is not in sync: ${JSON.stringify(warm)}`);
    const sweeps = Math.max(3, Math.floor(repeats / 4));
    const noToken = () => putMeta(hub.store.db, tokenKey, '');
    // One event moved by another client before each check (not timed); the quick check after it (our repair
    // read back, in sync) is not timed either.
    let k = 0;
    const moveOne = async () => {
      const href = `${account.homeUrl}${path}/meridian-${ids[(k++ * 37) % Math.min(n, 400)]}.ics`;
      const cur = await fetch(href, { headers: auth });
      const [head, event] = (await cur.text()).split('BEGIN:VEVENT');
      const body = `${head}BEGIN:VEVENT${event.replace(/^DTSTART[;:][^\r\n]*/m, `DTSTART:${compact(at(90, 6))}`).replace(/^DTEND[;:][^\r\n]*/m, `DTEND:${compact(at(90, 7))}`)}`;
      const put = await fetch(href, { method: 'PUT', headers: { ...auth, 'content-type': 'text/calendar; charset=utf-8', 'if-match': cur.headers.get('etag') ?? '' }, body });
      if (!put.ok) throw new Error(`moving an event: HTTP ${put.status}`);
    };
    let repaired = 0;
    const counted = (fn: typeof quick) => async () => {
      const r = await fn();
      if (!('failure' in r)) repaired += r.repaired;
      return r;
    };
    const settle = async () => { await quick(); };
    const fullQuiet = await measure(sweeps, noToken, sweep);
    const fullMoved = await measure(sweeps, async () => { await moveOne(); await noToken(); }, counted(sweep), settle);
    const hourlyQuiet = await measure(sweeps, nothing, sweep);
    const hourlyMoved = await measure(sweeps, moveOne, counted(sweep), settle);
    const quickQuiet = await measure(repeats, nothing, quick);
    const quickMoved = await measure(repeats, moveOne, counted(quick), settle);
    if (repaired !== 2 * sweeps + repeats) throw new Error(`calendar check bench: ${repaired} of ${2 * sweeps + repeats} moved events restored`);
    const conn = await loadConnection(hub, id);
    const restart = await measure(sweeps, async () => forgetSession(connectionContext(hub, conn)), quick);
    const calUrl = `${account.homeUrl}${path}/`;
    const token = (await getMeta(hub.store.db, tokenKey)) ?? '';
    const reportAlone = await measure(repeats, nothing, () => syncCollection(connectionContext(hub, conn), calUrl, token));
    const propfindAlone = await measure(repeats, nothing, () => collectionSyncToken(connectionContext(hub, conn), calUrl));
    const row = (what: string, m: Measure, full: Measure, hourly: Measure) =>
      `| ${n} | ${what} | ${fmt(median(m.ms), 1)} | ${fmt(Math.min(...m.ms), 1)}–${fmt(Math.max(...m.ms), 1)} | ${fmt(median(m.requests), 0)} | ${fmt(median(m.ms) / median(full.ms), 2)} | ${fmt(median(m.ms) / median(hourly.ms), 2)} |`;
    return [
      row('full sweep, no token (compare by listing, busy times), nothing changed', fullQuiet, fullQuiet, hourlyQuiet),
      row('hourly sweep, token kept, nothing changed (busy times read)', hourlyQuiet, fullQuiet, hourlyQuiet),
      row('**quick check, nothing changed**', quickQuiet, fullQuiet, hourlyQuiet),
      row('quick check after a restart (discovery, then the REPORT), nothing changed', restart, fullQuiet, hourlyQuiet),
      row('the sync-token PROPFIND alone (the request a quiet quick check makes)', propfindAlone, fullQuiet, hourlyQuiet),
      row('sync-collection REPORT alone, current token (what the PROPFIND replaces)', reportAlone, fullQuiet, hourlyQuiet),
      row('full sweep, no token, one event moved by another client (restored)', fullMoved, fullMoved, hourlyMoved),
      row('hourly sweep, token kept, one event moved (restored)', hourlyMoved, fullMoved, hourlyMoved),
      row('**quick check, one event moved** (read back, restored, busy times)', quickMoved, fullMoved, hourlyMoved),
    ];
  } finally {
    await hub.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCalendarCheck(sizes = [200, 1000], repeats = 20): Promise<string[]> {
  let missing: string | undefined;
  try {
    missing = radicaleMissing();
  } catch (e) {
    missing = (e as Error).message;
  }
  const head = ['| Calendar check on Radicale: events | check | ms per check (median) | min–max ms | HTTP requests per check | time ÷ full sweep (same state) | time ÷ hourly sweep (same state) |', '|---:|---|---:|---:|---:|---:|---:|'];
  if (missing) return [...head, `| – | not measured: ${missing} | | | | | |`];
  const rad = await startRadicale();
  const out = [...head];
  try {
    for (const n of sizes) out.push(...(await benchSize(rad, n, repeats)));
  } finally {
    await rad.stop();
  }
  out.push('', `Median of ${repeats} quick checks per row (sweeps and restarts: ${Math.max(3, Math.floor(repeats / 4))}); "full sweep" = a sweep without a sync token (its first, or after the token expired); "hourly sweep" = the periodic sweep with its token (MERIDIAN_SWEEP_MINUTES); the quick check runs every MERIDIAN_CHECK_MINUTES (5). Radicale ${spawnSync('radicale', ['--version'], { encoding: 'utf8' }).stdout.trim()} on loopback, SQLite store, checks run in-process (sweepConnection), requests counted at the hub's fetch.`);
  return out;
}
