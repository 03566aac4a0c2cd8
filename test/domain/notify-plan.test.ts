// Pure notification planning: what to tell an audience given what it was told, quiet hours in the
// patient's zone across daylight-saving changes, reminder and follow-up plans, rules per service, templates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  durationMs, fill, inQuietHours, nextSequence, noticeFor, outsideQuietHours, planTimed, quietEnd, rulesFor, snapshotFor, templateFor,
  timedSuppression, unknownPlaceholders, PATIENT_VARS, type NotificationSettings, type Told,
} from '../../src/domain/notify-plan.ts';
import type { Appointment } from '../../src/domain/types.ts';

const appt = (o: Partial<Appointment> = {}): Appointment => ({
  id: 'a1', clinicId: 'c', practitionerId: 'p1', patient: { name: 'Ana Novak', email: 'ana@example.net' },
  start: '2027-03-12T09:00:00Z', end: '2027-03-12T10:00:00Z', timeZone: 'Europe/Berlin', status: 'booked',
  origin: { platform: 'manual', connectionId: 'manual', externalId: 'a1' }, revision: 1, conflicts: [], createdAt: '', updatedAt: '', ...o,
});
const told = (a: Appointment, state: 'booked' | 'cancelled' = 'booked', sequence = 1): Told => ({
  state, start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId, sequence,
});
const ms = (iso: string) => Date.parse(iso);
const iso = (n: number) => new Date(n).toISOString();

test('the notice is the difference between what was told and what is true now', () => {
  const a = appt();
  assert.equal(noticeFor(undefined, snapshotFor(a, 'patient', undefined)), 'confirmation');
  assert.equal(noticeFor(told(a), snapshotFor(a, 'patient', told(a))), undefined, 'same as told: nothing');
  const moved = appt({ start: '2027-03-12T13:00:00Z', end: '2027-03-12T14:00:00Z' });
  assert.equal(noticeFor(told(a), snapshotFor(moved, 'patient', told(a))), 'change');
  const cancelled = appt({ status: 'cancelled' });
  assert.equal(noticeFor(told(a), snapshotFor(cancelled, 'patient', told(a))), 'cancellation');
  assert.equal(noticeFor(undefined, snapshotFor(cancelled, 'patient', undefined)), undefined, 'never told, now cancelled: nothing');
  assert.equal(noticeFor(told(a, 'cancelled'), snapshotFor(a, 'patient', told(a, 'cancelled'))), 'confirmation', 'rebooked after a cancellation');
  assert.equal(noticeFor(undefined, snapshotFor(appt({ status: 'requested' }), 'patient', undefined)), undefined, 'a request is not a booking');
  assert.equal(noticeFor(told(a), snapshotFor(appt({ status: 'completed' }), 'patient', told(a))), undefined, 'the follow-ups take over');
});

test('a practitioner taken off an appointment is told it is cancelled for them; the new one gets a confirmation', () => {
  const a = appt();
  const moved = appt({ practitionerId: 'p2' });
  assert.equal(noticeFor(told(a), snapshotFor(moved, 'practitioner:p1', told(a))), 'cancellation');
  assert.equal(noticeFor(undefined, snapshotFor(moved, 'practitioner:p2', undefined)), 'confirmation');
  assert.equal(snapshotFor(moved, 'practitioner:p1', told(a))!.start, a.start, 'their cancellation names the time they knew');
});

test('the iTIP sequence only rises', () => {
  assert.equal(nextSequence(undefined, 1), 1);
  assert.equal(nextSequence(told(appt(), 'booked', 5), 3), 6);
  assert.equal(nextSequence(told(appt(), 'booked', 2), 7), 7);
});

const LONDON = 'Europe/London';
const Q = { from: '21:00', to: '08:00' };

test('quiet hours across the spring change (Europe/London, 28 Mar 2027: 01:00 GMT becomes 02:00 BST)', () => {
  // 07:30 BST on the change day is quiet; a follow-up waits for 08:00 BST = 07:00Z, not 08:00Z.
  assert.equal(inQuietHours(ms('2027-03-28T06:30:00Z'), LONDON, Q), true);
  assert.equal(iso(quietEnd(ms('2027-03-28T06:30:00Z'), LONDON, Q)), '2027-03-28T07:00:00.000Z');
  // The night before the change started at 21:00 GMT: a reminder moves to 20:59 GMT.
  assert.equal(iso(outsideQuietHours(ms('2027-03-28T06:30:00Z'), LONDON, Q, 'earlier')), '2027-03-27T20:59:00.000Z');
  // Just past 08:00 BST is not quiet, the same UTC time a day earlier (07:05 GMT) is.
  assert.equal(inQuietHours(ms('2027-03-28T07:05:00Z'), LONDON, Q), false);
  assert.equal(inQuietHours(ms('2027-03-27T07:05:00Z'), LONDON, Q), true);
});

test('quiet hours across the autumn change and a quiet end inside the skipped hour', () => {
  // 31 Oct 2027: 02:00 BST becomes 01:00 GMT. 23:30 BST on the 30th waits for 08:00 GMT on the 31st.
  assert.equal(iso(quietEnd(ms('2027-10-30T22:30:00Z'), LONDON, Q)), '2027-10-31T08:00:00.000Z');
  assert.equal(iso(outsideQuietHours(ms('2027-10-31T06:00:00Z'), LONDON, Q, 'later')), '2027-10-31T08:00:00.000Z');
  // Quiet until 01:30, which does not exist on 28 Mar 2027: it ends when the clocks reach 02:30 BST (01:30Z).
  const gap = { from: '22:00', to: '01:30' };
  assert.equal(iso(quietEnd(ms('2027-03-28T00:30:00Z'), LONDON, gap)), '2027-03-28T01:30:00.000Z');
  assert.equal(inQuietHours(ms('2027-03-28T01:30:00Z'), LONDON, gap), false);
  // Quiet hours inside one day (no midnight) work too.
  assert.equal(inQuietHours(ms('2027-06-01T12:30:00Z'), LONDON, { from: '13:00', to: '14:00' }), true);
  assert.equal(inQuietHours(ms('2027-06-01T13:30:00Z'), LONDON, { from: '13:00', to: '14:00' }), false);
});

const SETTINGS: NotificationSettings = {
  channel: ['email'], graceMinutes: 3, quietHours: Q,
  reminders: [{ before: '48h' }, { before: '2h', channel: ['sms', 'email'] }],
  followUps: [{ kind: 'thank_you', after: '2h', link: 'https://x.example/book' }, { kind: 'no_show', after: '1h' }],
  services: { consult: { reminders: [{ id: 'eve', before: '1d' }], changes: false } },
};

test('reminders and follow-ups are planned in the patient\'s zone, moved out of quiet hours the right way', () => {
  // A 08:30 BST visit the day after the spring change, patient in London: the 2 h reminder (06:30 BST) is
  // quiet, so it moves to 20:59 BST the evening before. 48 h are exact hours across the change: 07:30 GMT
  // on the 27th (not 08:30), also quiet, so 20:59 GMT on the 26th.
  const a = appt({ start: '2027-03-29T07:30:00Z', end: '2027-03-29T08:30:00Z', timeZone: LONDON, patient: { name: 'Ana', timeZone: LONDON } });
  const plan = planTimed(a, rulesFor(SETTINGS, undefined), ms('2027-03-20T00:00:00Z'));
  assert.deepEqual(plan.map((p) => [p.ruleId, iso(p.runAt)]), [
    ['reminder-48h', '2027-03-26T20:59:00.000Z'],
    ['reminder-2h', '2027-03-28T19:59:00.000Z'],
    ['thank_you-2h', '2027-03-29T10:30:00.000Z'],
  ]);
  // Planned late: a reminder whose time has passed is left out; a follow-up goes now, or not at all days later.
  const late = planTimed(a, rulesFor(SETTINGS, undefined), ms('2027-03-29T06:00:00Z'));
  assert.deepEqual(late.map((p) => p.ruleId), ['thank_you-2h']);
  assert.deepEqual(planTimed(appt({ status: 'cancelled' }), rulesFor(SETTINGS, undefined), ms('2027-03-01T00:00:00Z')), []);
  const noShow = planTimed(appt({ status: 'no_show' }), rulesFor(SETTINGS, undefined), ms('2027-03-12T10:30:00Z'));
  assert.deepEqual(noShow.map((p) => [p.ruleId, iso(p.runAt)]), [['no_show-1h', '2027-03-12T11:00:00.000Z']]);
  assert.deepEqual(planTimed(appt({ status: 'no_show' }), rulesFor(SETTINGS, undefined), ms('2027-03-20T00:00:00Z')), [], 'days late: not at all');
});

test('a service overrides the clinic rules key by key', () => {
  const r = rulesFor(SETTINGS, 'consult');
  assert.deepEqual(r.reminders, [{ id: 'eve', before: '1d', channel: ['email'] }]);
  assert.equal(r.changes, false);
  assert.equal(r.confirmations, true);
  assert.equal(r.followUps.length, 2, 'not overridden: the clinic\'s');
  assert.deepEqual(rulesFor(SETTINGS, 'other').reminders.map((x) => [x.id, x.channel]), [['reminder-48h', ['email']], ['reminder-2h', ['sms', 'email']]]);
  assert.equal(durationMs('90m'), 5_400_000);
  assert.throws(() => durationMs('soon'));
});

test('at send time a reminder must fit the appointment as it is', () => {
  const p = { kind: 'reminder' as const, start: '2027-03-12T09:00:00Z', end: '2027-03-12T10:00:00Z' };
  const t = ms('2027-03-11T09:00:00Z');
  assert.equal(timedSuppression(p, appt(), t), undefined);
  assert.equal(timedSuppression(p, appt({ start: '2027-03-12T11:00:00Z', end: '2027-03-12T12:00:00Z' }), t), 'the appointment was moved');
  assert.equal(timedSuppression(p, appt({ status: 'cancelled' }), t), 'the appointment is cancelled');
  assert.equal(timedSuppression(p, undefined, t), 'the appointment no longer exists');
  assert.equal(timedSuppression(p, appt(), ms('2027-03-12T09:30:00Z')), 'the appointment has already started');
  const f = { kind: 'thank_you' as const, start: p.start, end: p.end };
  assert.equal(timedSuppression(f, appt({ status: 'completed' }), ms('2027-03-12T12:00:00Z')), undefined);
  assert.equal(timedSuppression(f, appt({ status: 'no_show' }), ms('2027-03-12T12:00:00Z')), 'the appointment is no_show');
});

test('templates in the clinic\'s language, with placeholders; unknown placeholders are named', () => {
  const de = fill(templateFor('confirmation', 'de'), { 'patient.name': 'Ana Novak', service: 'Massage', practitioner: 'Dr. Vogel', when: 'Fr., 12. März 2027', clinic: 'Lindenhof' }, PATIENT_VARS);
  assert.equal(de.subject, 'Termin bestätigt: Massage, Fr., 12. März 2027');
  assert.match(de.text, /^Guten Tag Ana Novak,/);
  assert.ok(!/\{\{/.test(de.text), 'no placeholder left');
  assert.equal(templateFor('reminder', 'pt').subject, templateFor('reminder', 'en').subject, 'English when the language has no built-in set');
  assert.deepEqual(unknownPlaceholders({ subject: '{{when}}', text: '{{patient.email}} {{notes}}' }, PATIENT_VARS), ['notes', 'patient.email']);
  const custom = templateFor('reminder', 'en', { reminder: { subject: 'See you {{date}}', text: 'x' } });
  assert.equal(custom.subject, 'See you {{date}}');
});
