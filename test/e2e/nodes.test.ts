// Several Meridian processes on the machine's PostgreSQL (one shared schema): three `bin/meridian serve`
// share a seeded stream of signed webhooks from several platforms (round-robin) and staff edits, and the
// jobs they cause; one process is SIGKILLed mid-work — the one polling the feed, while its poll is in flight
// (the feed answers slowly), with webhook jobs of its own running — and stays down. The end checks of the crash suite hold, each job's effect happened once (Google
// writes and platform write-backs per appointment), the jobs were shared out, and the feed connection
// polled every 3 s was polled once per interval in all — before, across and after the kill. The victim is
// killed while it also has a write in flight (held at its fake: Google, SMTP, SMS or the webhook receiver);
// each notice reaches the patient once, each appointment event the receiver once, no audit entry is doubled.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { backendFor, PG_URL } from '../helpers.ts';
import { startIcsServer, type IcsServer } from '../fakes/ics-server.ts';
import {
  CAL, Cluster, LONG, Node, Stream, Traffic, acksJustBeforeKills, auditVerify, createKey, findProblems, missingStaffEdits, seedFor, seeded,
  sleep, startRig, unappliedAcks, type Findings, type Rig,
} from './faults.ts';
import { doubledAudit, messageReport } from './messages.ts';

const NODES = 3;
const INTERVAL_S = 3;
/** How long the feed takes to answer: the next poll is planned when one ends, so polls come every interval + this. */
const FEED_DELAY_S = 1;
const MIN_BOOKINGS = LONG ? 120 : 20;
/** How long the feed's polls are watched at least (intervals), the kill somewhere in the first half. */
const WATCH_S = LONG ? 90 : 24;

const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** The feed behind a slow front: each poll is in flight for a second (a moment to kill the process polling). */
async function slowFront(target: string, delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    setTimeout(() => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host')) as Record<string, string>;
      fetch(target, { method: req.method, headers }).then(async (r) => {
        res.writeHead(r.status, Object.fromEntries(r.headers));
        res.end(Buffer.from(await r.arrayBuffer()));
      }, () => res.writeHead(502).end());
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/okafor.ics`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** The process running a feed poll now (its node id starts with its pid), if one is. */
async function pollingPid(schema: string): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    const r = await c.query<{ locked_by: string }>(`select locked_by from job where kind = 'source.poll' and state = 'running'`);
    return r.rows[0] ? Number(r.rows[0].locked_by.split('-')[0]) : undefined;
  } finally {
    await c.end();
  }
}

/** A practitioner's published calendar with two visits next week (polled as a booking source). */
function feedBody(now: number): { ics: string; visits: { uid: string; start: string; end: string }[] } {
  const day = Math.floor(now / 86_400_000) * 86_400_000;
  const visits = [1, 2].map((n) => ({ uid: `feed-visit-${n}@clinic.example`, start: iso(day + (6 + n) * 86_400_000 + 15 * 3_600_000), end: iso(day + (6 + n) * 86_400_000 + 16 * 3_600_000) }));
  const ics = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Clinic//Feed//EN',
    ...visits.flatMap((v) => ['BEGIN:VEVENT', `UID:${v.uid}`, `DTSTAMP:${stamp(now)}`, `DTSTART:${stamp(Date.parse(v.start))}`, `DTEND:${stamp(Date.parse(v.end))}`, 'SUMMARY:Visit', 'END:VEVENT']),
    'END:VCALENDAR', ''].join('\r\n');
  return { ics, visits };
}

describe(`${NODES} processes on one PostgreSQL: webhooks round-robin, shared jobs, one SIGKILLed mid-work`, async () => {
  const b = await backendFor('postgres');
  let rig: Rig;
  let feeds: IcsServer;
  let front: Awaited<ReturnType<typeof slowFront>>;
  let visits: { uid: string; start: string; end: string }[];
  const nodes: Node[] = [];
  let storeEnv: NodeJS.ProcessEnv;
  let common: string[];

  before(async () => {
    if (b.skip) return;
    feeds = await startIcsServer();
    const feed = feedBody(Date.now());
    visits = feed.visits;
    feeds.serve('/okafor.ics', feed.ics);
    front = await slowFront(feeds.url('/okafor.ics'), FEED_DELAY_S * 1000);
    rig = await startRig(b.dataDir, `
  - id: feed
    platform: ics-feed
    config: { practitioner: okafor, pollMinutes: ${INTERVAL_S / 60} }
    secrets: { feedUrl: { env: E2E_FEED } }
    refs: { practitioners: { okafor: okafor } }
`);
    storeEnv = { ...rig.env, DATABASE_URL: b.databaseUrl, MERIDIAN_PG_SCHEMA: b.pgSchema, E2E_FEED: front.url };
    common = ['--data', join(b.dataDir, 'n0'), '--config', rig.configFile];
    for (let i = 0; i < NODES; i++) nodes.push(new Node(`node${i}`, ['serve', '--data', join(b.dataDir, `n${i}`), '--config', rig.configFile], storeEnv));
    // The first migrates the shared schema; the others then start together.
    await nodes[0].start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await rig?.close();
    await front?.close();
    await feeds?.close();
    await b.cleanup();
  });

  test('nothing lost, each effect once, each poll once per interval', { skip: b.skip, timeout: LONG ? 600_000 : 120_000 }, async () => {
    const seed = seedFor('several nodes');
    const rand = seeded(seed);
    const cluster = new Cluster(nodes, rig.writes);
    const traffic = new Traffic(cluster);
    traffic.apiKey = await createKey(common, storeEnv);
    const stream = new Stream(rig, traffic, seeded(seed ^ 0x5eed), 'nodes');
    const watchFrom = Date.now();

    // Kill one process mid-work: after a random pause, the one polling the feed, while its poll is in flight
    // and a write it sent is held at its fake (the next write from whichever process polls then).
    let victim: Node | undefined;
    let killedAt = 0;
    const killer = (async () => {
      await sleep(2_000 + rand() * (WATCH_S * 500 - 2_000));
      const giveUp = Date.now() + 30_000;
      while (!victim) {
        if (Date.now() > giveUp) {
          // No write from the polling process came (the assertion on kills mid-write says so): kill it anyway.
          const pid = await pollingPid(b.pgSchema!);
          victim = nodes.find((n) => n.up && n.pid === pid);
          if (!victim) await sleep(100);
          continue;
        }
        const held = await rig.writes.catchWrite(async (pid) => (await pollingPid(b.pgSchema!)) === pid, 2_000);
        if (!held) continue;
        victim = nodes.find((n) => n.up && n.pid === held.pid);
        if (!victim) held.release();
        else {
          try {
            await cluster.kill(victim, false, held.release);
          } finally {
            held.release();
          }
        }
      }
      if (!cluster.kills.length) await cluster.kill(victim, false);
      killedAt = Date.now();
    })();
    await Promise.all([stream.run({ min: MIN_BOOKINGS, parallel: 6, more: () => killedAt === 0 }), killer]);
    const streamed = Date.now() - watchFrom;

    let last: Findings | undefined;
    const settled = Date.now();
    while (Date.now() - settled < 60_000) {
      last = await findProblems(rig, traffic, stream.expected, { kills: 1 });
      if (last.problems.length === 0) break;
      await sleep(500);
    }
    const settleMs = Date.now() - settled;
    assert.deepEqual(last!.problems, [], 'the end state after the kill');
    assert.deepEqual(await unappliedAcks(traffic), [], 'every acknowledged delivery is applied');
    assert.deepEqual(await missingStaffEdits(traffic, stream.expected), [], 'every acknowledged staff edit is recorded');

    // Each write-back happened once per staff edit (one more at most, redone after the kill).
    let writeBacks = 0;
    for (const e of stream.expected.filter((x) => x.staffActions.length && rig.platforms.get(x.platform)!.driver.writesCancel)) {
      const items = (await traffic.api('GET', `/appointments/${e.appointmentId}/audit`)).body.items as { action: string }[];
      const n = items.filter((x) => x.action === 'source.written_back').length;
      writeBacks += n;
      assert.ok(n <= e.staffActions.length + 1, `${e.email}: ${n} write-backs for ${e.staffActions.length} staff edits`);
    }

    // The feed's visits: one Google event each, at the feed's times.
    const now = Date.now();
    const fromFeed = ((await traffic.api('GET', `/appointments?from=${iso(now)}&to=${iso(now + 30 * 86_400_000)}`)).body.items as Record<string, any>[]).filter((a) => a.origin.connectionId === 'feed');
    assert.deepEqual(fromFeed.map((a) => [a.start, a.end, a.status]).sort(), visits.map((v) => [v.start, v.end, 'booked']).sort());
    for (const a of fromFeed) {
      const ours = rig.g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === a.id);
      assert.equal(ours.length, 1, `one Google event for the feed's visit ${a.start}`);
      assert.equal(ours[0].start?.dateTime, a.start);
    }

    // The jobs were shared: more than one process wrote to Google.
    const writers = new Set(((await traffic.api('GET', '/audit?action=target.*&actor=worker:*&limit=1000')).body.items as { actor: string }[]).map((x) => x.actor));
    assert.ok(writers.size >= 2, `calendar writes by ${writers.size} process(es)`);
    const done = (await traffic.api('GET', '/jobs?state=done&limit=1000')).body.items as { attempts: number; kind: string }[];
    const redone = done.filter((j) => j.attempts > 1).length;

    // Each interval polled the feed once in all, across the kill too (a job the dead process held comes back after its lease).
    const watchMs = Math.max(0, watchFrom + WATCH_S * 1000 - Date.now());
    await sleep(watchMs);
    const at = feeds.requests.filter((r) => r.path === '/okafor.ics' && r.at >= watchFrom).map((r) => r.at);
    const seconds = (Date.now() - watchFrom) / 1000;
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    // Polls come every interval + the feed's answer time + up to a tenth of the interval of jitter.
    const period = INTERVAL_S + FEED_DELAY_S + INTERVAL_S / 10;
    const said = `${at.length} polls in ${seconds.toFixed(1)} s at ${INTERVAL_S} s; gaps ${gaps.join(', ')} ms`;
    assert.ok(at.length >= Math.floor(seconds / period) - 2 && at.length <= Math.ceil(seconds / INTERVAL_S) + 1, said);
    assert.ok(gaps.every((g) => g >= INTERVAL_S * 500), `polls too close together: ${said}`);
    // Across the kill: the poll the dead process held runs again once its job lease (3 s) lapses.
    assert.ok(gaps.every((g) => g <= (period + 3 + FEED_DELAY_S) * 1000 + 1000), `a poll was missed: ${said}`);
    assert.deepEqual(feeds.violations, []);
    assert.deepEqual(rig.g.violations, [], 'Google fake: requests breaking its rules');
    for (const [name, p] of rig.platforms) assert.deepEqual(p.fake.violations, [], `${name} fake: requests breaking its rules`);

    const messages = await messageReport(rig.channels, (m, p) => traffic.api(m, p), cluster.kills);
    const doubled = doubledAudit(await traffic.auditLog());
    assert.deepEqual(messages.problems, [], 'each notice arrives once');
    assert.deepEqual(rig.channels.twilio.violations, [], 'SMS fake: requests breaking its rules');
    assert.ok(messages.counts.email > 0 && messages.counts.sms > 0 && messages.counts.webhooks > 0, `messages sent: ${JSON.stringify(messages.counts)}`);
    assert.deepEqual(doubled, [], 'no audit entry written twice');
    assert.equal(cluster.killsMidWrite.length, 1, `the kill landed with no write in flight: ${JSON.stringify(cluster.kills)}`);

    for (const n of nodes) if (n.up) assert.equal(await n.stop(), 0, `${n.name}: clean shutdown on SIGTERM`);
    const verified = await auditVerify(common, storeEnv);
    assert.match(verified, /audit chain intact: \d+ entries/, verified);

    console.log(`# several nodes: ${NODES} processes, ${victim!.name} killed while polling ${((killedAt - watchFrom) / 1000).toFixed(1)} s in; ${stream.expected.length} bookings in ${(streamed / 1000).toFixed(1)} s; `
      + `${traffic.acks.length} deliveries acknowledged (${traffic.acks.filter((a) => a.body.status === 'queued').length} of them before their apply, 202; ${acksJustBeforeKills(traffic, cluster)} less than 1 s before the kill), ${traffic.unanswered} unanswered and sent again; `
      + `${last!.googleWrites} Google writes (${last!.surplusWrites} redone), ${writeBacks} write-backs; `
      + `${messages.counts.email} e-mails, ${messages.counts.sms} SMS, ${messages.counts.webhooks} webhooks (sent again after the kill cut their record: ${JSON.stringify(messages.resent)}; cut and then no longer due: ${JSON.stringify(messages.unrecorded)}); killed with in flight: ${cluster.kills[0].inFlight.join(' + ') || 'nothing'}; calendar writes by ${writers.size} processes; ${redone} jobs ran more than once; `
      + `${at.length} feed polls in ${seconds.toFixed(1)} s, gaps ${Math.min(...gaps)}–${Math.max(...gaps)} ms; settled in ${(settleMs / 1000).toFixed(1)} s; starts took ${nodes.map((n) => n.startMs.join('/')).join(', ')} ms`);
  });
});
