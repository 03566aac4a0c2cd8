// Cal.com: signature (hex, optional `sha256=`), the documented payload, a reschedule (new uid with
// rescheduleUid) stitched into one appointment through the engine, the API v2 booking record, and fetch,
// polling and write-back against the fake Cal.com API (test/fakes/cal-com.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connector } from '../../src/connectors/sources/cal-com/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { startFakeCalCom, type CalBooking, type FakeCalCom } from '../fakes/cal-com.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const SECRET = 'cal-sample-secret';
const VECTOR = 'd3c822233d408432b0af316f2ab7dc682a49c6f87e7c6ab39a967ee1c53a19d4';
/** The example payload of Cal.com's webhook documentation, trimmed. */
const created = {
  triggerEvent: 'BOOKING_CREATED', createdAt: '2026-05-24T09:30:00.538Z',
  payload: {
    type: '60min', title: '60min between Pro Example and John Doe', startTime: '2026-05-25T09:30:00Z', endTime: '2026-05-25T10:30:00Z',
    organizer: { id: 5, name: 'Pro Example', email: 'pro@example.com', timeZone: 'Asia/Kolkata' },
    attendees: [{ email: 'john.doe@example.com', name: 'John Doe', timeZone: 'Asia/Kolkata' }],
    location: 'Calcom HQ', eventTypeId: 7, uid: 'bFJeNb2uX8ANpT3JL5EfXw', status: 'ACCEPTED', length: 60, bookingId: 91,
  },
};
const signed = (body: unknown, secret = SECRET, prefix = ''): WebhookRequest => {
  const raw = Buffer.from(JSON.stringify(body));
  return { rawBody: raw, headers: { 'x-cal-signature-256': prefix + createHmac('sha256', secret).update(raw).digest('hex') }, url: '', now: new Date() };
};

test('signature: hex HMAC of the body, with or without sha256=; a missing secret is misconfigured', () => {
  assert.deepEqual(connector.verify(signed(created), { webhookSecret: SECRET }), { ok: true });
  assert.deepEqual(connector.verify(signed(created, SECRET, 'sha256='), { webhookSecret: SECRET }), { ok: true });
  assert.equal(connector.verify(signed(created, 'other'), { webhookSecret: SECRET }).ok, false);
  assert.equal(connector.verify({ ...signed(created), headers: { 'x-cal-signature-256': 'no-secret-provided' } }, { webhookSecret: SECRET }).ok, false);
  assert.throws(() => connector.verify(signed(created), {}), ConnectionMisconfigured);
  const r = signed(created);
  const tampered = Buffer.from(r.rawBody);
  tampered[tampered.indexOf('John')] ^= 1;
  assert.equal(connector.verify({ ...r, rawBody: tampered }, { webhookSecret: SECRET }).ok, false, 'one flipped byte');
  assert.equal(connector.verify({ ...r, headers: {} }, { webhookSecret: SECRET }).ok, false, 'no header');
  assert.deepEqual(connector.verify(r, { webhookSecret: 'rotated', webhookSecretPrevious: SECRET }), { ok: true }, 'the previous secret during rotation');
  // A fixed vector (computed once with Node's crypto): secret `test_cal_secret`, body `{"triggerEvent":"PING"}`.
  const vector = Buffer.from('{"triggerEvent":"PING"}');
  assert.equal(createHmac('sha256', 'test_cal_secret').update(vector).digest('hex'), VECTOR);
  assert.deepEqual(connector.verify({ rawBody: vector, headers: { 'x-cal-signature-256': VECTOR }, url: '', now: new Date() }, { webhookSecret: 'test_cal_secret' }), { ok: true });
});

test('the documented payload parses; meetings and forms are not bookings', () => {
  const [c] = connector.parseWebhook(signed(created));
  assert.deepEqual([c.externalId, c.kind, c.appointment.status, c.appointment.start, c.appointment.end], ['bFJeNb2uX8ANpT3JL5EfXw', 'upsert', 'booked', '2026-05-25T09:30:00Z', '2026-05-25T10:30:00Z']);
  assert.equal(c.appointment.practitionerEmail, 'pro@example.com');
  assert.equal(c.appointment.patient?.name, 'John Doe');
  assert.deepEqual(connector.parseWebhook(signed({ ...created, triggerEvent: 'MEETING_ENDED' })), []);
  assert.equal(connector.parseWebhook(signed({ ...created, triggerEvent: 'BOOKING_REQUESTED' }))[0].appointment.status, 'requested');
  for (const bad of ['not json', '{"triggerEvent":"BOOKING_CREATED"}', JSON.stringify({ ...created, payload: { ...created.payload, startTime: 'soon' } })]) {
    assert.throws(() => connector.parseWebhook({ ...signed(created), rawBody: Buffer.from(bad) }), (e: unknown) => e instanceof UnreadablePayload && !/John/.test((e as Error).message));
  }
  const [cancel] = connector.parseWebhook(signed({ ...created, triggerEvent: 'BOOKING_CANCELLED' }));
  assert.deepEqual([cancel.kind, cancel.needsFetch], ['cancel', true], 'a cancellation is read back to find its chain');
});

const sample = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/samples/cal-com/${name}`, import.meta.url), 'utf8'));

test('BOOKING_NO_SHOW_UPDATED (the documented examples): marked is a no-show, unmarked its undo; no times, read back', () => {
  const [marked] = connector.parseWebhook(signed(sample('webhook-booking-no-show-updated.json')));
  assert.deepEqual(marked, {
    platform: 'cal-com', externalId: '5vQFqxDFMjdgKGMijqtqRw', kind: 'no_show', occurredAt: '2025-12-01T12:34:34.774Z', needsFetch: true,
    appointment: { status: 'no_show' },
  });
  const [unmarked] = connector.parseWebhook(signed(sample('webhook-booking-no-show-unmarked.json')));
  assert.deepEqual([unmarked.externalId, unmarked.kind, unmarked.appointment, unmarked.needsFetch], ['5vQFqxDFMjdgKGMijqtqRw', 'upsert', { status: 'booked' }, true]);
  assert.equal(unmarked.appointment.start, undefined, 'no times: the appointment keeps its own');
  const env = sample('webhook-booking-no-show-updated.json');
  // Several attendees in one mark: the first listed decides until the read-back.
  const many = { ...env, payload: { ...env.payload, message: 'no_show_updated', attendees: [{ email: 'a@example.com', noShow: false }, { email: 'b@example.com', noShow: true }] } };
  assert.equal(connector.parseWebhook(signed(many))[0].kind, 'upsert');
  assert.deepEqual(connector.parseWebhook(signed({ ...env, payload: { ...env.payload, attendees: [] } })), [], 'no attendee marked: nothing to change');
  assert.throws(() => connector.parseWebhook(signed({ ...env, payload: { ...env.payload, bookingUid: undefined } })), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(signed({ ...env, createdAt: 'later' })), UnreadablePayload);
});

test('an API v2 booking (the docs example) parses to the documented facts; statuses and absences map', () => {
  const rec = JSON.parse(readFileSync(new URL('../fixtures/samples/cal-com/get-booking-response.json', import.meta.url), 'utf8'));
  const [c] = connector.parseRecord!(rec);
  assert.deepEqual([c.externalId, c.kind, c.appointment.status, c.appointment.start, c.appointment.end], ['booking_uid_123', 'upsert', 'booked', '2024-08-13T15:30:00Z', '2024-08-13T16:30:00Z']);
  assert.deepEqual([c.appointment.practitionerRef, c.appointment.serviceRef, c.replacesExternalId, c.occurredAt], ['jane100@example.com', '1', 'previous_uid_123', '2024-08-13T15:30:00Z']);
  assert.deepEqual(c.appointment.patient, { name: 'John Doe', email: 'john@example.com', phone: '+1234567890', timeZone: 'America/New_York' });
  const kinds = (over: Record<string, unknown>) => connector.parseRecord!({ ...rec.data, ...over })[0];
  assert.deepEqual([kinds({ status: 'pending' }).appointment.status, kinds({ status: 'cancelled' }).kind, kinds({ status: 'rejected' }).kind], ['requested', 'cancel', 'cancel']);
  assert.equal(kinds({ attendees: [{ ...rec.data.attendees[0], absent: true }] }).kind, 'no_show');
  assert.throws(() => kinds({ status: 'exploded' }), UnreadablePayload);
  assert.throws(() => kinds({ uid: '' }), UnreadablePayload);
});

let hub: Hub;
const dir = tempDir();
let fake: FakeCalCom;
before(async () => {
  fake = await startFakeCalCom();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Asia/Kolkata }
locations: [{ id: hq, name: HQ }]
practitioners: [{ id: pro, name: Pro Example, email: pro@example.com, locations: [hq] }]
connections:
  - id: cal
    platform: cal-com
    secrets: { webhookSecret: { env: CS } }
  - id: calapi
    platform: cal-com
    baseUrl: ${fake.url}
    secrets: { webhookSecret: { env: CS }, apiKey: { env: CK } }
    refs: { practitioners: { "host@clinic.example": pro } }
`, { dataDir: dir.dir, env: { CS: SECRET, CK: fake.apiKey } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

test('through the engine: the organizer e-mail finds the practitioner; a reschedule keeps one appointment; cancel', async () => {
  const send = (b: unknown) => { const r = signed(b); return ingestWebhook(hub, 'cal', { rawBody: r.rawBody, headers: r.headers, url: '' }); };
  assert.equal((await send(created)).status, 200);
  const moved = { triggerEvent: 'BOOKING_RESCHEDULED', createdAt: '2026-05-24T12:00:00Z', payload: { ...created.payload, uid: 'newUid123', rescheduleUid: 'bFJeNb2uX8ANpT3JL5EfXw', startTime: '2026-05-26T09:30:00Z', endTime: '2026-05-26T10:30:00Z' } };
  await send(moved);
  let all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.deepEqual([all[0].practitionerId, all[0].start, all[0].origin.externalId], ['pro', '2026-05-26T09:30:00Z', 'newUid123']);
  await send({ triggerEvent: 'BOOKING_CANCELLED', createdAt: '2026-05-25T08:00:00Z', payload: { ...moved.payload, cancellationReason: 'ill' } });
  // Read back first (needsFetch); without an API key the signed content is applied as it came.
  await drain(hub);
  all = await listAppointments(hub.store.db, {});
  assert.equal(all[0].status, 'cancelled');
});

test('through the engine without an API key: a no-show and its undo change only the status; an unknown booking is not invented', async () => {
  const send = (b: unknown) => { const r = signed(b); return ingestWebhook(hub, 'cal', { rawBody: r.rawBody, headers: r.headers, url: '' }); };
  const uid = 'noShowNoKey0000000001';
  const payload = { ...created.payload, uid, startTime: '2026-05-27T09:30:00Z', endTime: '2026-05-27T10:30:00Z' };
  assert.equal((await send({ ...created, createdAt: '2026-05-24T10:00:00Z', payload })).status, 200);
  const mine = async () => (await listAppointments(hub.store.db, {})).filter((a) => a.origin.externalId === uid);
  const before = (await mine())[0];
  const mark = (noShow: boolean, at: string, bookingUid = uid) => send({
    triggerEvent: 'BOOKING_NO_SHOW_UPDATED', createdAt: at,
    payload: { message: `john.doe@example.com ${noShow ? 'marked' : 'unmarked'} as no-show`, attendees: [{ email: 'john.doe@example.com', noShow }], bookingUid, bookingId: 91 },
  });
  await mark(true, '2026-05-27T11:00:00Z');
  await drain(hub);
  let now = (await mine())[0];
  assert.equal(now.status, 'no_show');
  assert.deepEqual([now.start, now.end, now.practitionerId, now.patient.name, now.timeZone], [before.start, before.end, before.practitionerId, before.patient.name, before.timeZone]);
  await mark(false, '2026-05-27T11:05:00Z');
  await drain(hub);
  now = (await mine())[0];
  assert.equal(now.status, 'booked', 'the undo');
  assert.deepEqual([now.start, now.end, now.practitionerId, now.patient.name], [before.start, before.end, before.practitionerId, before.patient.name]);
  // A mark for a booking Meridian never saw, and no API key to read it: nothing is created.
  const count = (await listAppointments(hub.store.db, {})).length;
  await mark(true, '2026-05-27T11:10:00Z', 'neverSeen000000000001');
  await mark(false, '2026-05-27T11:15:00Z', 'neverSeen000000000002');
  await drain(hub);
  assert.equal((await listAppointments(hub.store.db, {})).length, count, 'no appointment invented');
});

// ------------------------------------------------------------------ API v2 against the fake

const day = (d: number, h = 9) => new Date(Date.UTC(2026, 11, d, h)).toISOString();
function booking(uid: string, start: string, over: Partial<CalBooking> = {}): CalBooking {
  return {
    id: Math.floor(Math.random() * 1e6), uid, title: 'Acupuncture between Host and Mara Lind', status: 'accepted', start, end: new Date(Date.parse(start) + 3_600_000).toISOString(), duration: 60,
    hosts: [{ id: 5, name: 'Dr. Host', email: 'host@clinic.example', timeZone: 'Europe/Berlin' }],
    attendees: [{ name: 'Mara Lind', email: 'mara@example.org', timeZone: 'Europe/Berlin', absent: false }],
    eventTypeId: 7, eventType: { id: 7, slug: 'acupuncture' }, location: 'Room 2', absentHost: false, createdAt: day(1), updatedAt: day(1), ...over,
  };
}
const ctx = (secrets: Record<string, string> = { webhookSecret: SECRET, apiKey: fake.apiKey }): ConnectionContext => ({ connectionId: 'calapi', config: {}, secrets, baseUrl: fake.url, fetch, now: () => new Date() });
const wb = (externalId: string, start: string, status: 'booked' | 'cancelled' | 'no_show', minutes = 60) =>
  connector.writeBack!({ externalId, start, end: new Date(Date.parse(start) + minutes * 60_000).toISOString(), timeZone: 'Europe/Berlin', status }, ctx());

test('write-back: a move is a new Cal.com booking; later writes follow the chain from the uid Meridian knows; no-show and cancel', async () => {
  fake.put(booking('wbA', day(10)));
  assert.deepEqual(await wb('wbA', day(11), 'booked'), { ok: true, value: undefined });
  const head = fake.latest('wbA')!;
  assert.notEqual(head.uid, 'wbA');
  assert.deepEqual([head.start, head.rescheduledFromUid, fake.booking('wbA')!.status], [day(11), 'wbA', 'cancelled']);
  const reschedules = () => fake.requests.filter((r) => r.path.endsWith('/reschedule')).length;
  assert.ok((await wb('wbA', day(11), 'booked')).ok, 'a retried write');
  assert.equal(reschedules(), 1, 'the retry finds the booking already there and writes nothing');
  const longer = await wb('wbA', day(12), 'booked', 90);
  assert.equal(!longer.ok && longer.failure.class, 'permanent', 'Cal.com keeps the event type length');
  assert.ok((await wb('wbA', day(11), 'no_show')).ok);
  assert.equal(fake.latest('wbA')!.attendees[0].absent, true);
  assert.ok((await wb('wbA', day(11), 'booked')).ok, 'un-marking the no-show');
  assert.equal(fake.latest('wbA')!.attendees[0].absent, false);
  assert.ok((await wb('wbA', day(11), 'cancelled')).ok);
  assert.equal(fake.latest('wbA')!.status, 'cancelled');
  const cancels = fake.requests.filter((r) => r.path.endsWith('/cancel')).length;
  assert.ok((await wb('wbA', day(11), 'cancelled')).ok);
  assert.equal(fake.requests.filter((r) => r.path.endsWith('/cancel')).length, cancels, 'already cancelled: nothing sent');
  const reopen = await wb('wbA', day(13), 'booked');
  assert.equal(!reopen.ok && reopen.failure.class, 'permanent');
  const gone = await wb('nope', day(13), 'cancelled');
  assert.equal(!gone.ok && gone.failure.class, 'gone');
  const denied = await connector.writeBack!({ externalId: 'wbA', start: day(11), end: day(11, 10), timeZone: 'Europe/Berlin', status: 'cancelled' }, ctx({ apiKey: 'cal_wrong' }));
  assert.equal(!denied.ok && denied.failure.class, 'auth');
  assert.deepEqual(fake.violations, []);
});

test('through the engine: a cancellation of a booking Meridian moved is read back and finds the appointment; a poll stitches reschedules', async () => {
  const send = (b: unknown) => { const r = signed(b); return ingestWebhook(hub, 'calapi', { rawBody: r.rawBody, headers: r.headers, url: '' }); };
  fake.put(booking('engA', day(15)));
  const payload = { uid: 'engA', startTime: day(15), endTime: day(15, 10), organizer: { name: 'Dr. Host', email: 'host@clinic.example', timeZone: 'Europe/Berlin' }, attendees: [{ name: 'Mara Lind', email: 'mara@example.org', timeZone: 'Europe/Berlin' }], eventTypeId: 7, status: 'ACCEPTED' };
  assert.equal((await send({ triggerEvent: 'BOOKING_CREATED', createdAt: day(2), payload })).status, 200);
  const mine = async () => (await listAppointments(hub.store.db, {})).filter((a) => a.origin.connectionId === 'calapi');
  assert.equal((await mine()).length, 1);
  // A staff move written back: Cal.com makes a new uid that Meridian never hears of …
  assert.ok((await wb('engA', day(16), 'booked')).ok);
  const moved = fake.latest('engA')!;
  fake.put({ ...moved, status: 'cancelled', cancellationReason: 'ill', updatedAt: new Date().toISOString() });
  // … and then the patient cancels it: the cancellation is read back and names the booking it came from.
  await send({ triggerEvent: 'BOOKING_CANCELLED', createdAt: new Date().toISOString(), payload: { ...payload, uid: moved.uid, startTime: moved.start, endTime: moved.end, cancellationReason: 'ill' } });
  await drain(hub);
  let all = await mine();
  assert.equal(all.length, 1, 'no second appointment for the new uid');
  assert.deepEqual([all[0].status, all[0].origin.externalId], ['cancelled', moved.uid]);
  // A poll: a patient reschedule the webhooks missed (old booking cancelled with rescheduledToUid, new one
  // pointing back) becomes one moved appointment, never a cancelled one.
  const soon = new Date(Date.now() + 3 * 86_400_000);
  const at = (h: number) => new Date(Date.UTC(soon.getUTCFullYear(), soon.getUTCMonth(), soon.getUTCDate(), h)).toISOString().replace('.000Z', 'Z');
  fake.put(booking('pollA', at(9), { status: 'cancelled', rescheduledToUid: 'pollB' }));
  fake.put(booking('pollB', at(11), { rescheduledFromUid: 'pollA' }));
  fake.put(booking('pollC', at(14)));
  const r = await pollConnection(hub, 'calapi');
  assert.ok(r.listed >= 3);
  all = await mine();
  const p = all.find((a) => a.origin.externalId === 'pollB');
  assert.ok(p, 'the moved booking is there');
  assert.deepEqual([p.status, p.start, p.revision], ['booked', at(11), 1]);
  assert.ok(all.find((a) => a.origin.externalId === 'pollC'));
  assert.equal(all.filter((a) => a.origin.externalId === 'pollA').length, 0);
  const again = await pollConnection(hub, 'calapi');
  assert.equal(again.outcomes.applied ?? 0, 0, 'polling again changes nothing');
  assert.deepEqual(fake.violations, []);
});

test('through the engine with an API key: a no-show is read back (absent attendee) and so is its undo, even when the booking\'s updatedAt stays', async () => {
  const send = (b: unknown) => { const r = signed(b); return ingestWebhook(hub, 'calapi', { rawBody: r.rawBody, headers: r.headers, url: '' }); };
  const created1 = '2026-12-02T08:00:00.000Z';
  fake.put(booking('nsA', day(18), { createdAt: created1, updatedAt: created1 }));
  const payload = { uid: 'nsA', startTime: day(18), endTime: day(18, 10), organizer: { name: 'Dr. Host', email: 'host@clinic.example', timeZone: 'Europe/Berlin' }, attendees: [{ name: 'Mara Lind', email: 'mara@example.org', timeZone: 'Europe/Berlin' }], eventTypeId: 7, status: 'ACCEPTED' };
  assert.equal((await send({ triggerEvent: 'BOOKING_CREATED', createdAt: '2026-12-02T08:00:00.412Z', payload })).status, 200);
  const mine = async () => (await listAppointments(hub.store.db, {})).filter((a) => a.origin.externalId === 'nsA');
  const mark = async (absent: boolean, at: string) => {
    // Cal.com changes the attendee, not the booking: its updatedAt stays at creation.
    const b = fake.booking('nsA')!;
    fake.put({ ...b, attendees: [{ ...b.attendees[0], absent }] });
    await send({ triggerEvent: 'BOOKING_NO_SHOW_UPDATED', createdAt: at, payload: { message: 'x', attendees: [{ email: 'mara@example.org', noShow: absent }], bookingUid: 'nsA', bookingId: b.id } });
    await drain(hub);
  };
  await mark(true, '2026-12-18T11:00:00.000Z');
  assert.equal((await mine())[0].status, 'no_show');
  assert.ok(fake.requests.some((r) => r.method === 'GET' && r.path === '/v2/bookings/nsA'), 'read back');
  await mark(false, '2026-12-18T11:05:00.000Z');
  const [a] = await mine();
  assert.deepEqual([a.status, Date.parse(a.start), a.practitionerId], ['booked', Date.parse(day(18)), 'pro']);
  assert.deepEqual(fake.violations, []);
});

test('the fake enforces Cal.com\'s rules; 429 is throttled with Retry-After', async () => {
  const call = (method: string, path: string, body?: unknown, version = '2024-08-13') => fetch(`${fake.url}${path}`, { method, headers: { authorization: `Bearer ${fake.apiKey}`, 'cal-api-version': version, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  fake.put(booking('ruleA', day(20)));
  assert.equal((await call('GET', '/bookings/ruleA', undefined, '2023-01-01')).status, 200);
  assert.equal((await call('POST', '/bookings/ruleA/reschedule', { start: day(21), end: day(21, 10) })).status, 400);
  assert.equal((await call('GET', '/bookings?take=500')).status, 400);
  assert.equal(fake.violations.length, 3, fake.violations.join('\n'));
  fake.violations.length = 0;
  await call('POST', '/bookings/ruleA/cancel', {});
  assert.equal((await call('POST', '/bookings/ruleA/reschedule', { start: day(21) })).status, 400, 'a cancelled booking cannot be moved');
  assert.equal(fake.violations.length, 0, 'that is Cal.com refusing, not Meridian breaking a rule');
  fake.fail(1, 429, { 'retry-after': '60' });
  await assert.rejects(connector.fetch!({ platform: 'cal-com', externalId: 'ruleA', kind: 'cancel', occurredAt: day(1), needsFetch: true, appointment: {} }, ctx()),
    (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 60_000);
});
