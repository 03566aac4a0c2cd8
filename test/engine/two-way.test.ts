// Two-way edits with policy `accept`: a practitioner who moves or deletes one of our events in their
// own Google Calendar makes a staff edit; our own writes read back are never fed back in; a title
// edited by hand is restored (the text is ours).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, day, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { sweepConnection } from '../../src/engine/sync/sweep.ts';
import { getAppointment } from '../../src/store/repo.ts';

let g: FakeGoogle;
let hub: Hub;

let clinic: GoogleClinic;
before(async () => {
  clinic = await googleClinic({ config: 'twoWay: accept' });
  ({ hub, g } = clinic);
});
after(() => clinic.close());

const inFuture = (days: number, hour: number) => day(days, hour);
const eventOf = (id: string) => g.events(CAL).find((e) => e.extendedProperties?.private?.meridianAppointmentId === id)!;

test('a practitioner moving our event in their calendar reschedules the appointment, once', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: inFuture(3, 10), end: inFuture(3, 11), patient: { name: 'Ana Silva' } }, 'test');
  await drain(hub);
  const ev = eventOf(a.id);
  g.editBehindOurBack(CAL, ev.id!, { start: { dateTime: inFuture(4, 14), timeZone: 'Europe/London' }, end: { dateTime: inFuture(4, 15), timeZone: 'Europe/London' } });
  const r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  assert.equal(r.accepted, 1);
  const moved = (await getAppointment(hub.store.db, a.id))!;
  assert.equal(moved.start, inFuture(4, 14).replace('.000Z', 'Z'));
  assert.equal(moved.revision, 2);
  const audit = await hub.store.db.selectFrom('audit').select(['action', 'actor']).where('entity_id', '=', a.id).execute();
  assert.ok(audit.some((x) => x.action === 'appointment.rescheduled' && x.actor === 'target:google'));
  await drain(hub);
  const writes = g.requests.length;
  const again = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in again));
  assert.deepEqual([again.accepted, again.repaired, again.drift.in_sync], [0, 0, 1], 'our own write read back is not a change');
  assert.equal(g.requests.filter((q) => q.method !== 'GET').length, g.requests.slice(0, writes).filter((q) => q.method !== 'GET').length);
});

test('a title edited by hand is restored; an event deleted by hand cancels the appointment', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: inFuture(5, 10), end: inFuture(5, 11), patient: { name: 'Ben Ode' } }, 'test');
  await drain(hub);
  g.editBehindOurBack(CAL, eventOf(a.id).id!, { summary: 'lunch' });
  let r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  assert.equal(r.repaired, 1);
  assert.equal(eventOf(a.id).summary, 'B. O. · Appointment');
  g.deleteBehindOurBack(CAL, eventOf(a.id).id!);
  r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  assert.equal(r.accepted, 1);
  assert.equal((await getAppointment(hub.store.db, a.id))!.status, 'cancelled');
});
