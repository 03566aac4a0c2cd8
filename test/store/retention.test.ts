// Retention (issue #22), on SQLite and on the PostgreSQL of the machine: rows older and younger than each
// period, in every state; after pruning exactly the old finished ones are gone, work still to do stays,
// the audit log is untouched but for one entry with the counts, and its chain still verifies.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHub, makeLogger, type Hub } from '../../src/engine/hub/hub.ts';
import { appendAudit, verifyAudit } from '../../src/store/audit.ts';
import { lastRetentionRun, RETENTION_BATCH, saveRetentionPolicy } from '../../src/store/retention.ts';
import { pruneRetention } from '../../src/engine/sync/retention.ts';
import { DEFAULT_RETENTION, type RetentionPolicy } from '../../src/domain/retention.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { OPERATIONS_ROUTES } from '../../src/http/routes/operations.ts';
import { BACKENDS, backendFor } from '../helpers.ts';

const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();
const POLICY: RetentionPolicy = { deliveries: '30d', leads: '180d', notifications: '1y', jobs: '30d' };

interface Seeded { deliveries: number; leads: number; notifications: number; jobs: number; kept: Record<string, string[]> }

/** Rows of every state just past and just within each period; returns how many should go, computed here. */
async function seed(hub: Hub): Promise<Seeded> {
  const db = hub.store.db;
  const gone = { deliveries: 0, leads: 0, notifications: 0, jobs: 0 };
  const kept: Record<string, string[]> = { delivery: [], lead: [], notification: [], job: [] };

  const deliveries = [];
  for (const status of ['applied', 'duplicate', 'failed', 'unreadable', 'received', 'fetching']) {
    for (const [age, old] of [[31, true], [29, false]] as const) {
      const id = `d-${status}-${age}`;
      deliveries.push({ id, connection_id: 'c', delivery_id: id, received_at: ago(age), content_type: null, headers: '{}', body: '{"patient":"x"}', status, error: null, change_count: 0, applied_at: null });
      if (old && status !== 'received' && status !== 'fetching') gone.deliveries++;
      else kept.delivery.push(id);
    }
  }
  // More old ones than one batch holds: pruning must loop until the table is clean.
  for (let i = 0; i < RETENTION_BATCH * 2 + 3; i++) {
    deliveries.push({ id: `bulk-${i}`, connection_id: 'c', delivery_id: `bulk-${i}`, received_at: ago(40), content_type: null, headers: '{}', body: '{}', status: 'applied', error: null, change_count: 0, applied_at: ago(40) });
    gone.deliveries++;
  }
  for (let i = 0; i < deliveries.length; i += 200) await db.insertInto('delivery').values(deliveries.slice(i, i + 200)).execute();

  const appointment = (id: string, endAt: string) => ({
    id, clinic_id: 'clinic', location_id: null, practitioner_id: 'p', service_id: null, room_id: null, patient_name: 'Ann', patient_email: null, patient_phone: null,
    patient_tz: null, start_at: new Date(new Date(endAt).getTime() - 3_600_000).toISOString(), end_at: endAt, time_zone: 'UTC', status: 'requested', notes: null,
    origin_platform: 'form', origin_connection_id: 'f', origin_external_id: id, revision: 1, conflicts: '[]', diverged: null, created_at: ago(200), updated_at: ago(200),
  });
  await db.insertInto('appointment').values([appointment('a-past', ago(190)), appointment('a-future', ago(-10))]).execute();
  const leadCases: [string, string | null, boolean][] = [
    ['needs_triage', null, false], ['requested', 'a-future', false], ['requested', 'a-past', true], ['booked', null, true], ['declined', null, true],
  ];
  for (const [status, appt, decided] of leadCases) {
    for (const [age, old] of [[181, true], [179, false]] as const) {
      const id = `l-${status}-${appt ?? 'none'}-${age}`;
      await db.insertInto('lead').values({
        id, clinic_id: 'clinic', connection_id: 'f', platform: 'form', submission_id: id, delivery_row_id: null, submitted_at: ago(age), received_at: ago(age),
        status, appointment_id: appt, patient_name: 'Ann', patient_email: 'ann@example.com', patient_phone: null, service_text: null, service_id: null,
        practitioner_text: null, practitioner_id: null, preferences: '[]', notes: null, triage_reason: null, decided_by: null, decision_reason: null, updated_at: ago(age),
      }).execute();
      if (old && decided) gone.leads++;
      else kept.lead.push(id);
    }
  }

  for (const state of ['sending', 'sent', 'suppressed', 'failed']) {
    for (const [age, old] of [[366, true], [364, false]] as const) {
      const key = `n-${state}-${age}`;
      await db.insertInto('notification').values({
        key, clinic_id: 'clinic', appointment_id: null, audience: 'patient', purpose: 'confirmation', connection_id: null, channel: 'email', address: 'ann@example.com',
        state, reason: null, provider_id: null, delivery_status: null, sequence: null, created_at: ago(age), updated_at: ago(age),
      }).execute();
      if (old && state !== 'sending') gone.notifications++;
      else kept.notification.push(key);
    }
  }

  for (const state of ['pending', 'running', 'done', 'dead']) {
    for (const [age, old] of [[31, true], [29, false]] as const) {
      const id = `j-${state}-${age}`;
      await db.insertInto('job').values({
        id, kind: 'k', payload: '{"patient":"x"}', connection_id: null, dedupe_key: null, state, attempts: 1, max_attempts: 12, run_at: ago(age),
        locked_by: null, locked_until: null, last_error: null, created_at: ago(age), updated_at: ago(age),
      }).execute();
      if (old && (state === 'done' || state === 'dead')) gone.jobs++;
      else kept.job.push(id);
    }
  }
  return { ...gone, kept };
}

async function ids(hub: Hub): Promise<Record<string, string[]>> {
  const db = hub.store.db;
  return {
    delivery: (await db.selectFrom('delivery').select('id').orderBy('id').execute()).map((r) => r.id),
    lead: (await db.selectFrom('lead').select('id').orderBy('id').execute()).map((r) => r.id),
    notification: (await db.selectFrom('notification').select('key').orderBy('key').execute()).map((r) => r.key),
    job: (await db.selectFrom('job').select('id').orderBy('id').execute()).map((r) => r.id),
  };
}

async function clear(hub: Hub): Promise<void> {
  for (const t of ['delivery', 'lead', 'notification', 'job', 'appointment'] as const) await hub.store.db.deleteFrom(t).execute();
}

for (const backend of BACKENDS) {
  describe(`retention on ${backend}`, async () => {
    const b = await backendFor(backend);
    let hub: Hub;
    before(async () => {
      if (b.skip) return;
      hub = await openHub({ dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema, env: {}, clock: { now: () => NOW }, log: makeLogger('silent') });
    });
    after(async () => {
      await hub?.store.close();
      await b.cleanup();
    });
    const t = (name: string, fn: () => Promise<void>) => test(name, { skip: b.skip }, fn);

    t('exactly the old finished rows go; unapplied deliveries, undecided leads and the audit log stay', async () => {
      await saveRetentionPolicy(hub.store.db, POLICY);
      await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, Array.from({ length: 5 }, (_, i) => ({
        at: ago(400), actor: 'test', action: 'x.y', entityType: 'thing', entityId: `e${i}`, after: { patientName: 'Ann' },
      }))));
      const auditBefore = await hub.store.db.selectFrom('audit').selectAll().orderBy('seq').execute();
      const want = await seed(hub);

      const dry = await pruneRetention(hub, { dryRun: true });
      assert.deepEqual(dry.pruned, { deliveries: want.deliveries, leads: want.leads, notifications: want.notifications, jobs: want.jobs });
      assert.equal((await ids(hub)).delivery.length, want.kept.delivery.length + want.deliveries, 'a dry run deletes nothing');
      assert.deepEqual(await lastRetentionRun(hub.store.db), { lastRunAt: undefined, lastPruned: undefined }, 'nor records a run');

      const run = await pruneRetention(hub);
      assert.deepEqual(run.pruned, { deliveries: want.deliveries, leads: want.leads, notifications: want.notifications, jobs: want.jobs });
      const left = await ids(hub);
      for (const k of Object.keys(left)) assert.deepEqual(left[k], [...want.kept[k]].sort(), k);

      const auditAfter = await hub.store.db.selectFrom('audit').selectAll().orderBy('seq').execute();
      assert.deepEqual(auditAfter.slice(0, auditBefore.length), auditBefore, 'earlier audit entries untouched');
      assert.equal(auditAfter.length, auditBefore.length + 1);
      const entry = auditAfter.at(-1)!;
      assert.equal(entry.action, 'retention.pruned');
      assert.deepEqual(JSON.parse(entry.meta!), { deliveries: want.deliveries, leads: want.leads, notifications: want.notifications, jobs: want.jobs, policy: POLICY });
      const v = await verifyAudit(hub.store.db);
      assert.equal(v.ok, true, v.reason);

      assert.deepEqual(await lastRetentionRun(hub.store.db), { lastRunAt: NOW.toISOString(), lastPruned: run.pruned });
      // Nothing left to delete: the run is recorded, the audit log gains nothing.
      const again = await pruneRetention(hub);
      assert.deepEqual(again.pruned, { deliveries: 0, leads: 0, notifications: 0, jobs: 0 });
      assert.equal((await hub.store.db.selectFrom('audit').select('seq').execute()).length, auditAfter.length);

      // The health page shows the policy and the last run.
      const health = OPERATIONS_ROUTES.find((r) => r.path === '/health/connections')!;
      const body = await health.handler({ hub, params: {}, query: {}, body: undefined, actor: 'test' }) as { retention: unknown };
      assert.deepEqual(body.retention, { policy: POLICY, lastRunAt: NOW.toISOString(), lastPruned: { deliveries: 0, leads: 0, notifications: 0, jobs: 0 } });
      await clear(hub);
    });

    t('the server\'s background work applies the policy on its interval', async () => {
      const { startRuntime } = await import('../../src/engine/runtime.ts');
      await saveRetentionPolicy(hub.store.db, POLICY);
      await seed(hub);
      const bulkLeft = async () => (await ids(hub)).delivery.filter((id) => id.startsWith('bulk-')).length;
      const rt = await startRuntime(hub, { workers: 1, sweepMinutes: 0, pruneEveryMs: 30, workerPollMs: 10_000 });
      try {
        // (The inbox started beside it also settles the seeded `received` rows, so only the bulk is counted here.)
        for (let i = 0; i < 200 && (!(await lastRetentionRun(hub.store.db)).lastRunAt || (await bulkLeft()) > 0); i++) await new Promise((r) => setTimeout(r, 25));
      } finally {
        await rt.stop();
      }
      assert.equal((await lastRetentionRun(hub.store.db)).lastRunAt, NOW.toISOString());
      assert.equal(await bulkLeft(), 0);
      await clear(hub);
    });

    t('a period set to off keeps that kind forever', async () => {
      await clear(hub); // independent of what an earlier test left
      await saveRetentionPolicy(hub.store.db, { ...POLICY, leads: 'off', jobs: 'off' });
      const want = await seed(hub);
      const run = await pruneRetention(hub);
      assert.deepEqual(run.pruned, { deliveries: want.deliveries, leads: 0, notifications: want.notifications, jobs: 0 });
      await clear(hub);
    });
  });
}

test('config: retention periods parse, default, and bad ones are refused with a clear message', () => {
  const base = 'clinic:\n  id: c\n  name: C\n  timeZone: Europe/London\n';
  assert.deepEqual(parseConfig(base, 'm.yaml').config.retention, DEFAULT_RETENTION);
  const c = parseConfig(`${base}retention:\n  deliveries: 12h\n  leads: off\n  notifications: 0\n`, 'm.yaml').config;
  assert.deepEqual(c.retention, { deliveries: '12h', leads: 'off', notifications: 'off', jobs: DEFAULT_RETENTION.jobs });
  for (const [bad, field] of [['deliveries: 30 days', 'retention.deliveries'], ['jobs: -1d', 'retention.jobs'], ['leads: 5m', 'retention.leads'], ['forever: 1y', 'retention']]) {
    try {
      parseConfig(`${base}retention:\n  ${bad}\n`, 'm.yaml');
      assert.fail(`accepted ${bad}`);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.issues[0].field, field, bad);
      assert.equal(e.issues[0].line, field === 'retention' ? 5 : 6, bad);
      if (field === 'retention') assert.match(e.issues[0].message, /Unrecognized key: "forever"/);
      else assert.match(e.issues[0].message, /a period like "30d", "12h", "6w" or "1y".*0 \/ "off" to keep forever/);
    }
  }
});
