// Crash safety of the real `bin/meridian serve`, on SQLite and on PostgreSQL: a seeded stream of signed
// webhooks from several booking platforms (new bookings, duplicates, reschedules, late deliveries,
// cancellations) and staff edits through the API, while the process is SIGKILLed at random moments and
// restarted on the same data. At the end every acknowledged delivery is applied, Google holds exactly one
// event per live appointment at the right time and none for a cancelled one, staff edits reached the
// platforms, no job is stuck, nothing was written twice, no reminder is pending for a dead state, and
// `meridian audit verify` passes. What patients receive holds too: each notice arrives once by e-mail or
// SMS and each appointment event once at the clinic's webhook receiver (a copy only where a kill cut a send
// between the provider's answer and its record), no audit entry is written twice, and at least one kill
// lands while the process has a write in flight (the killer holds a write at its fake and kills its sender).
// The default run kills 3 times per store; `npm run test:long` (MERIDIAN_LONG=1) kills 24 times.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, BACKENDS } from '../helpers.ts';
import {
  Cluster, LONG, Node, Stream, Traffic, acksJustBeforeKills, auditVerify, createKey, findProblems, missingStaffEdits, seedFor, seeded,
  sleep, startRig, unappliedAcks, type Findings, type Rig,
} from './faults.ts';
import { doubledAudit, messageReport } from './messages.ts';

const KILLS = LONG ? 24 : 3;
const MIN_BOOKINGS = LONG ? 120 : 16;

for (const backend of BACKENDS) {
  describe(`crash safety on ${backend}: SIGKILL at random moments under a stream of webhooks and staff edits`, async () => {
    const b = await backendFor(backend);
    let rig: Rig;
    let node: Node;
    let common: string[];
    let storeEnv: NodeJS.ProcessEnv;

    before(async () => {
      if (b.skip) return;
      rig = await startRig(b.dataDir);
      common = ['--data', b.dataDir, '--config', rig.configFile];
      storeEnv = { ...rig.env, ...(b.databaseUrl ? { DATABASE_URL: b.databaseUrl, MERIDIAN_PG_SCHEMA: b.pgSchema } : {}) };
      node = new Node('meridian', ['serve', ...common], storeEnv);
      await node.start();
    });
    after(async () => {
      await node?.stop();
      await rig?.close();
      await b.cleanup();
    });

    test(`${KILLS} kills: nothing acknowledged is lost, nothing is written twice`, { skip: b.skip, timeout: LONG ? 900_000 : 120_000 }, async () => {
      const seed = seedFor(`crash on ${backend}`);
      const rand = seeded(seed);
      const cluster = new Cluster([node], rig.writes);
      const traffic = new Traffic(cluster);
      traffic.apiKey = await createKey(common, storeEnv);
      const stream = new Stream(rig, traffic, seeded(seed ^ 0x5eed), backend);
      const t0 = Date.now();

      // The killer: a random pause (0.3–2.5 s of work), then the next write the process sends (to Google, the
      // SMTP server, the SMS provider or the webhook receiver; 2 s at most) is held at its fake while the
      // process is SIGKILLed, then acted on; restart on the same data; again.
      let killing = true;
      const killer = (async () => {
        try {
          for (let k = 0; k < KILLS; k++) {
            await sleep(300 + rand() * 2200);
            const held = await rig.writes.catchWrite((pid) => pid === node.pid, 2_000);
            try {
              await cluster.kill(node, true, held?.release);
            } finally {
              held?.release();
            }
          }
        } finally {
          killing = false;
        }
      })();
      await Promise.all([stream.run({ min: MIN_BOOKINGS, parallel: 6, more: () => killing }), killer]);
      const streamed = Date.now() - t0;

      // Work the last kill interrupted finishes within a lease or two; then everything must hold.
      let last: Findings | undefined;
      const settled = Date.now();
      while (Date.now() - settled < 60_000) {
        last = await findProblems(rig, traffic, stream.expected, { kills: KILLS });
        if (last.problems.length === 0) break;
        await sleep(500);
      }
      const settleMs = Date.now() - settled;
      assert.deepEqual(last!.problems, [], 'the end state after the kills');
      assert.deepEqual(await unappliedAcks(traffic), [], 'every acknowledged delivery is applied');
      assert.deepEqual(await missingStaffEdits(traffic, stream.expected), [], 'every acknowledged staff edit is recorded');
      assert.deepEqual(rig.g.violations, [], 'Google fake: requests breaking its rules');
      for (const [name, p] of rig.platforms) assert.deepEqual(p.fake.violations, [], `${name} fake: requests breaking its rules`);

      const messages = await messageReport(rig.channels, (m, p) => traffic.api(m, p), cluster.kills);
      const doubled = doubledAudit(await traffic.auditLog());
      assert.deepEqual(messages.problems, [], 'each notice arrives once');
      assert.deepEqual(rig.channels.twilio.violations, [], 'SMS fake: requests breaking its rules');
      assert.ok(messages.counts.email > 0 && messages.counts.sms > 0 && messages.counts.webhooks > 0, `messages sent: ${JSON.stringify(messages.counts)}`);
      assert.deepEqual(doubled, [], 'no audit entry written twice');
      assert.ok(cluster.killsMidWrite.length >= 1, `no kill landed with a write in flight: ${JSON.stringify(cluster.kills)}`);

      assert.equal(await node.stop(), 0, 'clean shutdown on SIGTERM');
      const verified = await auditVerify(common, storeEnv);
      assert.match(verified, /audit chain intact: \d+ entries/, verified);

      const endings = stream.expected.reduce<Record<string, number>>((m, e) => ({ ...m, [e.ending]: (m[e.ending] ?? 0) + 1 }), {});
      console.log(`# crash on ${backend}: ${cluster.kills.length} kills in ${(streamed / 1000).toFixed(1)} s; ${stream.expected.length} bookings (${JSON.stringify(endings)}); `
        + `${traffic.acks.length} deliveries acknowledged (${traffic.acks.filter((a) => a.body.status === 'queued').length} of them before their apply, 202; ${acksJustBeforeKills(traffic, cluster)} less than 1 s before a kill), ${traffic.unanswered} requests unanswered and sent again; `
        + `${last!.googleWrites} Google writes, ${last!.surplusWrites} redone after a kill; `
        + `${messages.counts.email} e-mails, ${messages.counts.sms} SMS, ${messages.counts.webhooks} webhooks (sent again after a kill cut their record: ${JSON.stringify(messages.resent)}; cut and then no longer due: ${JSON.stringify(messages.unrecorded)}); `
        + `${cluster.killsMidWrite.length} of ${cluster.kills.length} kills with a write in flight (${cluster.kills.map((k) => k.inFlight.join(' + ') || 'none').join('; ')}); settled in ${(settleMs / 1000).toFixed(1)} s; restarts took ${node.startMs.slice(1).join(', ')} ms`);
      assert.ok(cluster.kills.length === KILLS);
    });
  });
}
