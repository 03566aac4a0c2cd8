// Notifications through the engine with a controlled clock, the real `email` notifier and a real SMTP
// server: the "done when" (book, move twice within a minute, cancel: one confirmation, one change
// notice, one cancellation, all updating one calendar entry, and no reminder), a kept appointment's
// reminders and follow-up, suppression with reasons, consent, SMS-style replies through recordInbound,
// practitioner and staff notices, and a property: no reminder for a state the appointment has left, and
// every still-valid reminder exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { openHub, makeLogger, type Clock, type Hub } from '../../src/engine/hub/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { staffCancel, staffCreate, staffReschedule, staffSetStatus } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { optOut } from '../../src/engine/effects/notify.ts';
import { NOTIFY_TIMED } from '../../src/domain/jobs.ts';
import { recordInbound } from '../../src/engine/edits/replies.ts';
import { listJobs, type Job } from '../../src/store/outbox.ts';
import { durationMs } from '../../src/domain/notify-plan.ts';
import type { Appointment } from '../../src/domain/types.ts';
import { tempDir } from '../helpers.ts';
import { itipOf, startSmtpSink, type SmtpSink } from '../fakes/smtp-sink.ts';

const PATIENT = 'ana.novak@example.net';
const VOGEL = 'vogel@lindenhof.example';
const OFFICE = 'office@lindenhof.example';
let now = new Date('2027-03-02T16:15:00Z');
const clock: Clock = { now: () => now };
let hub: Hub;
let smtp: SmtpSink;
let dir: { dir: string; cleanup(): void };

before(async () => {
  smtp = await startSmtpSink();
  dir = tempDir();
  hub = await openHub({ dataDir: dir.dir, clock, log: makeLogger('silent'), env: {} });
  await applyYaml(REMINDERS);
});

const REMINDERS = '[{ before: 48h }, { before: 2h }]';
async function applyYaml(reminders: string): Promise<void> {
  const c = parseConfig(`
clinic: { id: praxis, name: Lindenhof Praxis, timeZone: Europe/Berlin, language: en }
locations: [{ id: main, name: Lindenhof, address: "Lindenstrasse 14, 10969 Berlin" }]
services: [{ id: massage, name: Massage therapy }, { id: consult, name: Consultation }]
practitioners:
  - { id: vogel, name: Dr. Anke Vogel, email: ${VOGEL}, locations: [main] }
  - { id: brandt, name: Jonas Brandt, locations: [main] }
connections:
  - id: mail
    platform: email
    config: { from: "Lindenhof Praxis <termine@lindenhof.example>", host: 127.0.0.1, port: ${smtp.port}, requireTLS: false }
  - id: sms
    platform: sms
    config: { from: "+15005550006" }
notifications:
  channel: [mail]
  reminders: ${reminders}
  followUps: [{ kind: thank_you, after: 2h, link: "https://lindenhof.example/book" }, { kind: no_show, after: 1h, link: "https://lindenhof.example/book" }]
  services:
    consult: { reminders: [{ id: day-before, before: 1d }], followUps: [] }
  practitioners: { notify: true, privacy: minimal }
  staff: { emails: [${OFFICE}] }
`, 'test.yaml');
  await applyConfig(hub, c.config, c.hash, 'test');
}
after(async () => {
  await hub.store.close();
  await smtp.close();
  dir.cleanup();
});

const at = (iso: string) => { now = new Date(iso); };
const advance = (ms: number) => { now = new Date(now.getTime() + ms); };

/** Let time pass to `until` with a worker that runs every job the moment it is due. */
async function runUntil(until: Date | string): Promise<void> {
  const end = new Date(until).getTime();
  for (;;) {
    await drain(hub);
    const next = await hub.store.db.selectFrom('job').select('run_at').where('state', '=', 'pending').orderBy('run_at').limit(1).executeTakeFirst();
    if (!next || Date.parse(next.run_at) > end) break;
    now = new Date(Math.max(now.getTime(), Date.parse(next.run_at)));
  }
  now = new Date(Math.max(now.getTime(), end));
  await smtp.settle();
}

const mailsTo = (address: string, since = 0) => smtp.to(address).slice(since);
const audits = async (id: string, action: string) => (await hub.store.db.selectFrom('audit').select(['meta']).where('entity_id', '=', id).where('action', '=', action).orderBy('seq').execute()).map((r) => JSON.parse(r.meta ?? '{}') as Record<string, unknown>);

async function book(start: string, o: Partial<{ service: string; email: string; phone: string; practitioner: string; minutes: number }> = {}): Promise<Appointment> {
  return staffCreate(hub, {
    practitionerId: o.practitioner ?? 'vogel', start, end: new Date(Date.parse(start) + (o.minutes ?? 60) * 60_000).toISOString(), serviceId: o.service ?? 'massage',
    patient: { name: 'Ana Novak', email: o.email === '' ? undefined : (o.email ?? PATIENT), phone: o.phone }, override: true,
  }, 'staff:test');
}

test('book, move twice within a minute, cancel: one confirmation, one change notice, one cancellation, one calendar entry, no reminder', async () => {
  at('2027-03-02T16:15:00Z');
  const before = mailsTo(PATIENT).length;
  const a = await book('2027-03-12T09:00:00Z');
  await runUntil('2027-03-02T16:25:00Z');
  await staffReschedule(hub, a.id, { start: '2027-03-12T10:00:00Z', end: '2027-03-12T11:00:00Z', override: true }, 'staff:test');
  advance(30_000);
  await staffReschedule(hub, a.id, { start: '2027-03-12T13:00:00Z', end: '2027-03-12T14:00:00Z', override: true }, 'staff:test');
  await runUntil('2027-03-08T12:00:00Z');
  await staffCancel(hub, a.id, undefined, 'staff:test');
  await runUntil('2027-03-13T12:00:00Z');

  const mails = mailsTo(PATIENT, before);
  assert.deepEqual(mails.map((m) => m.mail.subject?.split(':')[0]), ['Appointment confirmed', 'Appointment moved', 'Appointment cancelled']);
  const invites = mails.map((m) => itipOf(m.mail)!);
  assert.deepEqual(invites.map((i) => i.method), ['REQUEST', 'REQUEST', 'CANCEL']);
  assert.equal(new Set(invites.map((i) => i.uid)).size, 1, 'the same calendar entry throughout');
  assert.match(invites[0].uid, /^meridian-.+@lindenhof\.example$/);
  assert.ok(invites[0].sequence < invites[1].sequence && invites[1].sequence < invites[2].sequence, `sequences ${invites.map((i) => i.sequence)}`);
  assert.equal(invites[2].status, 'CANCELLED');
  // Times in the appointment's zone, with its VTIMEZONE: 14:00 in Berlin is 13:00Z.
  assert.equal(invites[1].tzid, 'Europe/Berlin');
  assert.equal(invites[1].localStart, '2027-03-12T14:00:00');
  assert.equal(invites[1].start, '2027-03-12T13:00:00.000Z');
  assert.ok(invites.every((i) => i.hasVtimezone));
  assert.equal(invites[0].organizer, 'mailto:termine@lindenhof.example');
  assert.deepEqual(invites[0].attendees.map((x) => x.toLowerCase()), [`mailto:${PATIENT}`]);
  assert.equal(mails[0].mail.from?.value[0].address, 'termine@lindenhof.example', 'ORGANIZER is the sender');
  assert.match(mails[1].mail.text ?? '', /Now: Fri, 12 Mar 2027, 14:00–15:00 \(Europe\/Berlin\)/);
  assert.match(mails[1].mail.text ?? '', /Before: Fri, 12 Mar 2027, 10:00–11:00/);
  assert.ok(!mails.some((m) => /Reminder/.test(m.mail.subject ?? '')), 'no reminder for a cancelled visit');
  const sent = await audits(a.id, 'notify.sent');
  assert.deepEqual(sent.filter((m) => m.audience === 'patient').map((m) => m.purpose), ['confirmation', 'change', 'cancellation']);
  const pendingTimed = (await listJobs(hub.store.db, { state: 'pending', limit: 1000 })).filter((j) => j.kind === NOTIFY_TIMED && j.payload.appointmentId === a.id);
  assert.equal(pendingTimed.length, 0, 'the cancellation withdrew every reminder and follow-up');

  // The practitioner has no connected calendar: their own notices, with invitations, at the minimal privacy level.
  const theirs = smtp.inbox.filter((m) => m.envelopeTo.includes(VOGEL) && itipOf(m.mail)?.uid === invites[0].uid);
  assert.deepEqual(theirs.map((m) => itipOf(m.mail)!.method), ['REQUEST', 'REQUEST', 'CANCEL']);
  assert.ok(theirs.every((m) => !/Ana Novak/.test(`${m.mail.subject} ${m.mail.text}`)), 'no patient name at minimal privacy');
  assert.match(theirs[0].mail.subject ?? '', /A\. N\./);
});

test('a kept appointment gets each reminder once, then its follow-up after it ends', async () => {
  at('2027-04-01T08:00:00Z');
  const since = mailsTo(PATIENT).length;
  const a = await book('2027-04-06T08:00:00Z');
  await runUntil('2027-04-07T12:00:00Z');
  const mails = mailsTo(PATIENT, since);
  assert.deepEqual(mails.map((m) => m.mail.subject?.split(':')[0]), ['Appointment confirmed', 'Reminder', 'Reminder', 'Thank you for your visit']);
  const sent = (await audits(a.id, 'notify.sent')).filter((m) => m.audience === 'patient');
  assert.deepEqual(sent.map((m) => m.purpose), ['confirmation', 'reminder', 'reminder', 'thank_you']);
  // 48 h and 2 h before 10:00 Berlin (08:00Z); the thank-you 2 h after the end. Quiet hours are not set here.
  const times = mails.map((m) => m.mail.date!.toISOString());
  assert.deepEqual(times.slice(1), ['2027-04-04T08:00:00.000Z', '2027-04-06T06:00:00.000Z', '2027-04-06T11:00:00.000Z']);
  assert.match(mails[3].mail.text ?? '', /https:\/\/lindenhof\.example\/book/);
  assert.equal(itipOf(mails[1].mail), undefined, 'a reminder is not a calendar change');
});

test('a moved appointment: the old reminder is withdrawn, the new one goes at the new time; a stale job is suppressed with the reason', async () => {
  at('2027-05-01T08:00:00Z');
  const since = mailsTo(PATIENT).length;
  const a = await book('2027-05-05T08:00:00Z');
  await runUntil('2027-05-01T09:00:00Z');
  await staffReschedule(hub, a.id, { start: '2027-05-06T08:00:00Z', end: '2027-05-06T09:00:00Z', override: true }, 'staff:test');
  await runUntil('2027-05-01T10:00:00Z');
  // A reminder job claimed before the move and run after it (a worker mid-flight) must not be sent.
  const { runTimed } = await import('../../src/engine/effects/notify.ts');
  at('2027-05-03T08:00:00Z');
  const r = await runTimed(hub, { id: 'stale', kind: NOTIFY_TIMED, payload: { appointmentId: a.id, ruleId: 'reminder-48h', kind: 'reminder', start: '2027-05-05T08:00:00Z', end: '2027-05-05T09:00:00Z' }, state: 'running', attempts: 1, maxAttempts: 12, runAt: now.toISOString(), createdAt: now.toISOString(), updatedAt: now.toISOString() });
  assert.deepEqual(r, { ok: true, note: 'suppressed: the appointment was moved' });
  const suppressed = await audits(a.id, 'notify.suppressed');
  assert.ok(suppressed.some((m) => m.purpose === 'reminder' && m.reason === 'the appointment was moved'));
  await runUntil('2027-05-06T08:30:00Z');
  const subjects = mailsTo(PATIENT, since).map((m) => `${m.mail.subject?.split(':')[0]} ${m.mail.date!.toISOString()}`);
  assert.deepEqual(subjects, [
    'Appointment confirmed 2027-05-01T08:03:00.000Z',
    'Appointment moved 2027-05-01T09:03:00.000Z',
    'Reminder 2027-05-04T08:00:00.000Z',
    'Reminder 2027-05-06T06:00:00.000Z',
  ]);
});

test('moved away and back within the grace period: nothing is sent, and the audit says why', async () => {
  at('2027-06-01T08:00:00Z');
  const a = await book('2027-06-20T08:00:00Z');
  await runUntil('2027-06-01T08:10:00Z');
  const since = mailsTo(PATIENT).length;
  await staffReschedule(hub, a.id, { start: '2027-06-21T08:00:00Z', end: '2027-06-21T09:00:00Z', override: true }, 'staff:test');
  advance(20_000);
  await staffReschedule(hub, a.id, { start: '2027-06-20T08:00:00Z', end: '2027-06-20T09:00:00Z', override: true }, 'staff:test');
  await runUntil('2027-06-01T09:00:00Z');
  assert.equal(mailsTo(PATIENT, since).length, 0);
  const s = await audits(a.id, 'notify.suppressed');
  assert.ok(s.some((m) => m.reason === 'back to what the patient was last told'));
});

test('a service overrides the clinic rules; a patient without e-mail is suppressed with the reason; an opt-out holds at once', async () => {
  at('2027-07-01T08:00:00Z');
  const OPTED = 'leo.quiet@example.net';
  const c = await book('2027-07-10T08:00:00Z', { service: 'consult', email: OPTED });
  const reminders = (await listJobs(hub.store.db, { state: 'pending', limit: 1000 })).filter((j): j is Job<typeof NOTIFY_TIMED> => j.kind === NOTIFY_TIMED && j.payload.appointmentId === c.id);
  assert.deepEqual(reminders.map((j) => [j.payload.ruleId, j.runAt]), [['day-before', '2027-07-09T08:00:00.000Z']]);
  const nomail = await book('2027-07-11T08:00:00Z', { email: '' });
  await runUntil('2027-07-01T09:00:00Z');
  assert.ok((await audits(nomail.id, 'notify.suppressed')).some((m) => m.purpose === 'confirmation' && m.reason === 'no address for any channel'));
  await optOut(hub, 'Leo.Quiet@Example.net ', 'staff', 'staff:test');
  // The same opt-out again (a request retried after its answer was lost) changes nothing and is audited once.
  await optOut(hub, 'leo.quiet@example.net', 'staff', 'staff:test');
  const optedOut = await hub.store.db.selectFrom('audit').select('seq').where('action', '=', 'notify.opted_out').execute();
  assert.equal(optedOut.length, 1, 'one audit entry for one opt-out');
  await staffReschedule(hub, c.id, { start: '2027-07-10T09:00:00Z', end: '2027-07-10T10:00:00Z', override: true }, 'staff:test');
  await runUntil('2027-07-10T12:00:00Z');
  assert.deepEqual(mailsTo(OPTED).map((m) => m.mail.subject?.split(':')[0]), ['Appointment confirmed'], 'nothing after the opt-out');
  const s = await audits(c.id, 'notify.suppressed');
  assert.deepEqual(s.map((m) => `${m.purpose}: ${m.reason}`), ['change: the recipient opted out', 'reminder: the recipient opted out']);
});

test('SMS-style replies through recordInbound: C confirms, X cancels through the engine (staff told), STOP opts out; statuses are stored', async () => {
  at('2027-08-01T08:00:00Z');
  const phone = '+4915112345678';
  const a = await book('2027-08-10T08:00:00Z', { phone });
  // As if the SMS notifier had texted the patient (the reply is matched by their number).
  await hub.store.db.insertInto('notification').values({
    key: `reminder:${a.id}:x`, clinic_id: 'praxis', appointment_id: a.id, audience: 'patient', purpose: 'reminder', connection_id: 'sms', channel: 'sms',
    address: phone, state: 'sent', reason: null, provider_id: 'SM123', delivery_status: null, sequence: null, created_at: now.toISOString(), updated_at: now.toISOString(),
  }).execute();
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'status', providerId: 'SM123', status: 'delivered' }]), [{ kind: 'status', outcome: 'status_saved', appointmentId: a.id }]);
  const row = await hub.store.db.selectFrom('notification').select('delivery_status').where('provider_id', '=', 'SM123').executeTakeFirstOrThrow();
  assert.equal(row.delivery_status, 'delivered');
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'reply', from: '+49 151 12345678', text: ' c ' }]), [{ kind: 'reply', outcome: 'confirmed', appointmentId: a.id }]);
  assert.equal((await audits(a.id, 'appointment.patient_confirmed')).length, 1);
  const officeBefore = mailsTo(OFFICE).length;
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'reply', from: phone, text: 'X' }]), [{ kind: 'reply', outcome: 'cancelled', appointmentId: a.id }]);
  const cancelled = await hub.store.db.selectFrom('audit').select(['actor']).where('entity_id', '=', a.id).where('action', '=', 'appointment.cancelled').executeTakeFirstOrThrow();
  assert.equal(cancelled.actor, 'patient:sms');
  await runUntil('2027-08-01T09:00:00Z');
  const office = mailsTo(OFFICE, officeBefore);
  assert.ok(office.some((m) => /A patient cancelled by reply/.test(m.mail.subject ?? '')), 'staff are told');
  assert.ok(office.every((m) => !/Ana|Novak|\+49/.test(`${m.mail.subject} ${m.mail.text}`)), 'no patient data in staff mail');
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'reply', from: phone, text: 'STOP' }]), [{ kind: 'reply', outcome: 'opted_out' }]);
  const opted = await hub.store.db.selectFrom('notify_optout').selectAll().where('address', 'like', '+%').execute();
  assert.deepEqual(opted.map((o) => [o.address, o.channel]), [[phone, 'sms']]);
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'reply', from: phone, text: 'START' }]), [{ kind: 'reply', outcome: 'opted_in' }]);
  assert.deepEqual(await recordInbound(hub, 'sms', [{ kind: 'reply', from: '+10000000000', text: 'C' }]), [{ kind: 'reply', outcome: 'unmatched' }]);
});

test('a no-show gets the no-show follow-up, not the thank-you', async () => {
  at('2027-09-01T08:00:00Z');
  const since = mailsTo(PATIENT).length;
  const a = await book('2027-09-02T08:00:00Z');
  await runUntil('2027-09-02T09:30:00Z');
  await staffSetStatus(hub, a.id, 'no_show', 'staff:test');
  await runUntil('2027-09-03T12:00:00Z');
  const subjects = mailsTo(PATIENT, since).map((m) => m.mail.subject);
  assert.ok(subjects.includes('We missed you today'));
  assert.ok(!subjects.includes('Thank you for your visit'));
});

test('property: no reminder for a state the appointment has left, and every still-valid reminder exactly once', async () => {
  const start0 = Date.parse('2028-01-10T10:00:00Z');
  const op = fc.oneof(
    fc.record({ t: fc.constant('move' as const), hours: fc.integer({ min: -30, max: 60 }) }),
    fc.record({ t: fc.constant('cancel' as const) }),
    fc.record({ t: fc.constant('rebook' as const) }),
    fc.record({ t: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 36 * 60 }) }),
  );
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
    const base = Date.parse('2028-01-01T00:00:00Z') + run++ * 30 * 86_400_000;
    at(new Date(base).toISOString());
    let a = await book(new Date(base + (start0 - Date.parse('2028-01-01T00:00:00Z'))).toISOString());
    /** Every state the appointment was in, from when. */
    const history: { from: number; status: string; start: string }[] = [{ from: now.getTime(), status: a.status, start: a.start }];
    const note = () => history.push({ from: now.getTime(), status: a.status, start: a.start });
    for (const o of ops) {
      if (o.t === 'wait') await runUntil(new Date(now.getTime() + o.minutes * 60_000));
      else if (o.t === 'cancel' && a.status === 'booked') { a = await staffCancel(hub, a.id, undefined, 'staff:test'); note(); }
      else if (o.t === 'rebook' && a.status === 'cancelled') { a = await staffSetStatus(hub, a.id, 'booked', 'staff:test', true); note(); }
      else if (o.t === 'move' && a.status === 'booked') {
        const s = Date.parse(a.start) + o.hours * 3_600_000;
        if (s > now.getTime()) { a = await staffReschedule(hub, a.id, { start: new Date(s).toISOString(), end: new Date(s + 3_600_000).toISOString(), override: true }, 'staff:test'); note(); }
      }
    }
    const lastChange = history.at(-1)!.from;
    await runUntil(new Date(Date.parse(a.end) + 86_400_000));
    const sent = await hub.store.db.selectFrom('notification').select(['key', 'updated_at']).where('appointment_id', '=', a.id).where('purpose', '=', 'reminder').where('state', '=', 'sent').execute();
    for (const r of sent) {
      const forStart = r.key.split(':').slice(3).join(':');
      const t = Date.parse(r.updated_at);
      const state = history.filter((h) => h.from <= t).at(-1)!;
      assert.equal(state.status, 'booked', `reminder ${r.key} sent while ${state.status}`);
      assert.equal(state.start, forStart, `reminder for ${forStart} sent while the visit was at ${state.start}`);
      assert.ok(t < Date.parse(forStart), 'before the visit');
    }
    if (a.status === 'booked') {
      for (const rule of ['reminder-48h', 'reminder-2h']) {
        const due = Date.parse(a.start) - durationMs(rule.slice('reminder-'.length));
        const key = `reminder:${a.id}:${rule}:${a.start}`;
        const n = sent.filter((r) => r.key === key).length;
        if (due >= lastChange) assert.equal(n, 1, `${key} (due ${new Date(due).toISOString()}) sent ${n} times`);
        else assert.ok(n <= 1);
      }
    }
  }), { numRuns: 25 });
});

test('a reminder rule added to the configuration reaches bookings already made; removing it withdraws them', async () => {
  at('2027-10-01T08:00:00Z');
  const a = await book('2027-10-20T08:00:00Z');
  const timed = async () => (await listJobs(hub.store.db, { state: 'pending', limit: 1000 })).filter((j): j is Job<typeof NOTIFY_TIMED> => j.kind === NOTIFY_TIMED && j.payload.appointmentId === a.id).map((j) => j.payload.ruleId).sort();
  assert.deepEqual(await timed(), ['reminder-2h', 'reminder-48h', 'thank_you-2h']);
  await applyYaml('[{ before: 48h }, { before: 2h }, { before: 7d }]');
  assert.deepEqual(await timed(), ['reminder-2h', 'reminder-48h', 'reminder-7d', 'thank_you-2h']);
  await applyYaml(REMINDERS);
  assert.deepEqual(await timed(), ['reminder-2h', 'reminder-48h', 'thank_you-2h']);
});
