// Busy times from a practitioner's own calendar are conflicts: a personal event over an existing
// booking flags it (audited as a double booking), a staff booking over it is refused with 409
// unless overridden, and our own events never count as busy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, day, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { MeridianError } from '../../src/domain/errors.ts';
import { statusOf } from '../../src/http/errors.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { sweepConnection } from '../../src/engine/sync/sweep.ts';
import { getAppointment } from '../../src/store/repo.ts';

let g: FakeGoogle;
let hub: Hub;

let clinic: GoogleClinic;
before(async () => {
  clinic = await googleClinic({ });
  ({ hub, g } = clinic);
});
after(() => clinic.close());

test('a personal event over a booking flags it; staff cannot book over one without override', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: day(2, 10), end: day(2, 11), patient: { name: 'Ana Silva' } }, 'test');
  await drain(hub);
  g.addTheirs(CAL, { summary: 'Dentist', start: { dateTime: day(2, 10, 30) }, end: { dateTime: day(2, 11, 30) } });
  g.addTheirs(CAL, { summary: 'Free lunch', transparency: 'transparent', start: { dateTime: day(3, 12) }, end: { dateTime: day(3, 13) } });
  const r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  assert.equal(r.busy, 1, 'the transparent event and our own event are not busy');
  const flagged = (await getAppointment(hub.store.db, a.id))!;
  assert.deepEqual(flagged.conflicts, [`busy:google:${day(2, 10, 30)}`]);
  const audit = await hub.store.db.selectFrom('audit').select(['action', 'meta']).where('entity_id', '=', a.id).where('action', '=', 'appointment.double_booked').execute();
  assert.equal(audit.length, 1);
  assert.equal(JSON.parse(audit[0].meta!).source, 'calendar');
  await assert.rejects(
    staffCreate(hub, { practitionerId: 'okafor', start: day(2, 11), end: day(2, 12), patient: { name: 'Ben Ode' } }, 'test'),
    (e: unknown) => e instanceof MeridianError && statusOf(e) === 409 && (e.details!.conflicts as { source: string }[]).some((c) => c.source === 'calendar:google'),
  );
  const forced = await staffCreate(hub, { practitionerId: 'okafor', start: day(2, 11, 30), end: day(2, 12), patient: { name: 'Ben Ode' } }, 'test');
  assert.deepEqual(forced.conflicts, [], 'back-to-back with the personal event is fine');
  // The personal event is cancelled: the next sweep clears the flag.
  const own = g.events(CAL).find((e) => e.summary === 'Dentist')!;
  g.deleteBehindOurBack(CAL, own.id!);
  await sweepConnection(hub, 'google');
  assert.deepEqual((await getAppointment(hub.store.db, a.id))!.conflicts, []);
});
