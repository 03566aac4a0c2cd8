// Reconciliation: a full compare of the store's live links with a Google calendar's listing (the fake),
// walked in one-day slices so that matches across slices are exercised.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, day, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCancel, staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { reconcile, reconcileConnection, type ReconcileReport } from '../../src/engine/sync/reconcile.ts';
import { connectionContext, loadConnection } from '../../src/engine/hub/connections.ts';
import { getTarget } from '../../src/connectors/registry.ts';
import type { Appointment } from '../../src/domain/types.ts';
import { meridian } from '../helpers.ts';

/** `bin/meridian reconcile …` on the test's store, as staff would run it. */
const cli = (...args: string[]) => meridian(['reconcile', '--data', clinic.dataDir, ...args], { env: clinic.env });

let g: FakeGoogle;
let hub: Hub;
let clinic: GoogleClinic;
const appts: Appointment[] = [];

before(async () => {
  clinic = await googleClinic({ config: 'busyTimes: false' });
  ({ hub, g } = clinic);
  for (let i = 0; i < 6; i++) appts.push(await staffCreate(hub, { practitionerId: 'okafor', start: day(2 + i, 10), end: day(2 + i, 11), patient: { name: `Patient ${i}` } }, 'test'));
  await drain(hub);
});
after(() => clinic.close());

const window = () => ({ from: new Date(day(0, 0)), to: new Date(day(30, 0)) });
const remoteIdOf = async (appointmentId: string) =>
  (await hub.store.db.selectFrom('target_link').select('remote_id').where('appointment_id', '=', appointmentId).executeTakeFirstOrThrow()).remote_id;

async function run(o: { maxIds?: number } = {}): Promise<ReconcileReport> {
  const conn = await loadConnection(hub, 'google');
  const client = getTarget('google-calendar')!.client!(connectionContext(hub, conn));
  const r = await reconcile({ db: hub.store.db, client, connectionId: 'google', calendarId: CAL, window: window(), sliceMs: 86_400_000, ...o });
  assert.ok(r.ok, r.ok ? '' : r.failure.message);
  return r.value;
}

test('a calendar as we wrote it is in sync; practitioners\' own events are none of our business', async () => {
  g.addTheirs(CAL, { summary: 'Lunch', start: { dateTime: day(3, 12) }, end: { dateTime: day(3, 13) } });
  const r = await run();
  assert.deepEqual([r.checked, r.inSync, r.missing.count, r.changed.count, r.orphaned.count], [6, 6, 0, 0, 0]);
  assert.equal(r.listed, 7);
});

test('deleted, moved (also into another slice), retitled and left-behind events are each found', async () => {
  const [deleted, moved, movedFar, retitled, cancelled] = appts;
  g.deleteBehindOurBack(CAL, await remoteIdOf(deleted.id));
  g.editBehindOurBack(CAL, await remoteIdOf(moved.id), { start: { dateTime: day(3, 15) }, end: { dateTime: day(3, 16) } });
  // Four days later: the event sits in a later slice than its appointment, and must not count as missing + orphaned.
  g.editBehindOurBack(CAL, await remoteIdOf(movedFar.id), { start: { dateTime: day(8, 9) }, end: { dateTime: day(8, 10) } });
  g.editBehindOurBack(CAL, await remoteIdOf(retitled.id), { summary: 'Renamed by hand' });
  // Cancelled, but the removal has not run yet: the event is left behind.
  await staffCancel(hub, cancelled.id, undefined, 'test');
  // An event with our markers that no appointment claims (a copy made by hand, say).
  const copy = g.addTheirs(CAL, { summary: 'copy', start: { dateTime: day(20, 9) }, end: { dateTime: day(20, 10) }, extendedProperties: { private: { meridianAppointmentId: 'nobody' } } });

  const times = await run();
  assert.deepEqual(times.missing.ids, [deleted.id]);
  assert.deepEqual(times.changed.ids.sort(), [moved.id, movedFar.id].sort(), 'without titles only times are compared');
  assert.deepEqual(times.orphaned.ids.sort(), [await remoteIdOf(cancelled.id), copy].sort());
  assert.equal(times.inSync, 2);

  const withTitles = await reconcileConnection(hub, 'google', { window: window() });
  assert.ok(withTitles.ok);
  assert.deepEqual(withTitles.value.changed.ids.sort(), [moved.id, movedFar.id, retitled.id].sort());
  assert.deepEqual([withTitles.value.missing.count, withTitles.value.orphaned.count, withTitles.value.inSync, withTitles.value.calendars], [1, 2, 1, 1]);

  const capped = await run({ maxIds: 1 });
  assert.deepEqual([capped.changed.count, capped.changed.ids.length, capped.orphaned.count, capped.orphaned.ids.length], [2, 1, 2, 1], 'ids capped, counts exact');
  assert.deepEqual(g.violations, []);
});

test('`meridian reconcile` reports the drift and exits 3; with --repair the calendar matches again, orphans left alone', async () => {
  // The state the previous test left: one event deleted, two moved, one retitled, one left behind, one copy.
  const [deleted, moved] = appts;
  const found = await cli('--connection', 'google');
  assert.equal(found.code, 3, found.stderr);
  assert.match(found.stdout, /google: 6 appointments in 1 calendar\(s\), 1 in sync; missing 1 \([^)]+\); changed 3 \([^)]+\); orphaned 2/);
  assert.ok(found.stdout.includes(deleted.id));

  const fixed = await cli('--repair');
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /google: repaired 4\n/);
  const after = await reconcileConnection(hub, 'google', { window: window() });
  assert.ok(after.ok);
  assert.deepEqual([after.value.missing.count, after.value.changed.count, after.value.orphaned.count], [0, 0, 2], 'orphans are listed, never deleted');
  const event = g.events(CAL).find((e) => e.extendedProperties?.private?.meridianAppointmentId === moved.id && e.status !== 'cancelled');
  assert.equal(event && new Date(event.start?.dateTime ?? '').toISOString(), new Date(moved.start).toISOString(), 'the moved event is back at the booked time');
  const audits = await hub.store.db.selectFrom('audit').select('entity_id').where('action', '=', 'target.drift_repaired').execute();
  assert.equal(audits.length, 4);

  const bad = await cli('--days', 'soon');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--days must be a whole number/);
  assert.deepEqual(g.violations, []);
});

test('a listing that fails is a failure, never a compare that calls everything missing', async () => {
  g.fail(1, 500);
  const conn = await loadConnection(hub, 'google');
  const client = getTarget('google-calendar')!.client!(connectionContext(hub, conn));
  const r = await reconcile({ db: hub.store.db, client, connectionId: 'google', calendarId: CAL, window: window() });
  assert.equal(r.ok, false);
});
