// SimplyBook.me contract tests from the samples (URL token, ids-only callbacks, company-local times), and
// the engine path against the JSON-RPC fake: callback → getBookingDetails → apply, a poll with getBookings,
// and staff edits written back with editBook / cancelBooking.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector } from '../../src/connectors/sources/simplybook/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { staffCancel, staffReschedule, staffSetStatus } from '../../src/engine/edits/staff.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { SimplyBookFake } from '../fakes/simplybook.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/simplybook/', import.meta.url);
const TOKEN = 'sb-url-token-5e1f0c7a9d';
const HOOK = `https://hub.example-clinic.test/webhooks/simplybook?token=${TOKEN}`;
const ZONE = 'America/New_York';
const sample = (f: string) => readFileSync(new URL(f, DIR));
const req = (f: string, url = HOOK): WebhookRequest => ({ rawBody: sample(f), headers: { 'content-type': 'application/json' }, url, now: new Date('2026-03-20T15:00:00Z') });
const secrets = { webhookToken: TOKEN };

test('the URL token is checked in constant time; wrong, missing and rotated tokens; no token configured is refused', () => {
  assert.deepEqual(connector.verify(req('callback-create.json'), secrets), { ok: true });
  assert.equal(connector.verify(req('callback-create.json', HOOK.replace(TOKEN, `${TOKEN.slice(0, -1)}e`)), secrets).ok, false, 'one byte changed');
  assert.equal(connector.verify(req('callback-create.json', 'https://hub.example-clinic.test/webhooks/simplybook'), secrets).ok, false, 'no token');
  assert.equal(connector.verify(req('callback-create.json'), { webhookToken: 'another-token-entirely' }).ok, false);
  assert.deepEqual(connector.verify(req('callback-create.json'), { webhookToken: 'new-token', webhookTokenPrevious: TOKEN }), { ok: true });
  assert.throws(() => connector.verify(req('callback-create.json'), {}), ConnectionMisconfigured);
});

test('a callback for another company is refused even with the right token', () => {
  assert.deepEqual(connector.verify(req('callback-create.json'), secrets, { companyLogin: 'MeridianClinic' }), { ok: true });
  assert.equal(connector.verify(req('callback-create.json'), secrets, { companyLogin: 'otherclinic' }).ok, false);
});

test('callbacks are ids only: a change to fetch; reminders are ignored; garbage is unreadable', () => {
  for (const [f, kind] of [['callback-create.json', 'upsert'], ['callback-change.json', 'upsert'], ['callback-cancel.json', 'cancel']]) {
    const [c] = connector.parseWebhook(req(f));
    assert.deepEqual([c.externalId, c.kind, c.needsFetch, c.appointment], ['2262', kind, true, {}], f);
  }
  assert.deepEqual(connector.parseWebhook(req('callback-notify.json')), []);
  const bad = (body: string) => () => connector.parseWebhook({ ...req('callback-create.json'), rawBody: Buffer.from(body) });
  assert.throws(bad('{"booking_id":"1","notification_type":"exploded"}'), UnreadablePayload);
  assert.throws(bad('{"notification_type":"create"}'), UnreadablePayload);
  assert.throws(bad('{"booking_id":"1; drop","notification_type":"create"}'), UnreadablePayload);
  assert.throws(bad('not json'), UnreadablePayload);
});

test('records: company-local wall times become UTC in the company zone; statuses map', () => {
  const details = JSON.parse(sample('get-booking-details-2262.json').toString());
  const [c] = connector.parseRecord!({ timeZone: ZONE, record: details });
  assert.equal(c.externalId, '2262');
  assert.equal(c.kind, 'upsert');
  assert.equal(c.appointment.status, 'booked');
  assert.equal(c.appointment.start, '2026-03-30T14:00:00Z', 'EDT is UTC-4 on 30 March');
  assert.equal(c.appointment.end, '2026-03-30T15:00:00Z');
  assert.equal(c.appointment.timeZone, ZONE);
  assert.deepEqual([c.appointment.practitionerRef, c.appointment.serviceRef], ['3', '7']);
  assert.deepEqual(c.appointment.patient, { name: 'Nora Bellamy', email: 'nora.bellamy@example.com', phone: '+15551234567' });
  assert.equal(connector.parseRecord!({ timeZone: 'Europe/Berlin', record: details })[0].appointment.start, '2026-03-30T08:00:00Z', 'CEST is UTC+2');
  assert.equal(connector.parseRecord!({ timeZone: ZONE, record: { ...details, is_confirmed: '0' } })[0].kind, 'cancel');
  const pending = connector.parseRecord!({ timeZone: ZONE, record: { ...details, is_confirmed: '0', approve_status: 'new' } })[0];
  assert.deepEqual([pending.kind, pending.appointment.status], ['upsert', 'requested']);
  const rows = connector.parseRecord!({ timeZone: ZONE, record: JSON.parse(sample('get-bookings.json').toString()) });
  assert.deepEqual(rows.map((r) => [r.externalId, r.kind, r.appointment.start]), [['2262', 'upsert', '2026-03-30T14:00:00Z'], ['2263', 'cancel', '2026-03-31T20:30:00Z']]);
  assert.deepEqual(rows[0].appointment, c.appointment, 'a list row and the details of the same booking are the same change');
  assert.throws(() => connector.parseRecord!(details), UnreadablePayload, 'no zone: the wall times cannot be placed');
  assert.throws(() => connector.parseRecord!({ timeZone: ZONE, record: { ...details, start_date_time: '2026-03-30T10:00:00Z' } }), UnreadablePayload);
});

// ---------------------------------------------------------------- through the engine, against the fake

const fake = new SimplyBookFake({ company: 'meridianclinic', login: 'frontdesk', password: 'pw-7Yq2' });
// Reads are ordered by when Meridian made them (SimplyBook.me has no modified stamp): the clock moves.
let tick = 0;
const clock = { now: () => new Date(Date.parse('2026-03-20T15:00:00Z') + 1000 * tick++) };
let hub: Hub;
const dir = tempDir();
const booking = {
  id: '2262', eventId: '7', unitId: '3', clientId: '41', clientName: 'Nora Bellamy', clientEmail: 'nora.bellamy@example.com',
  start: '2026-03-30 10:00:00', end: '2026-03-30 11:00:00', confirmed: true, additional: { a1b2c3: '1' },
};
before(async () => {
  await fake.start();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: brooklyn, name: Brooklyn }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [brooklyn] }]
connections:
  - id: sb
    platform: simplybook
    baseUrl: ${fake.baseUrl}
    config: { companyLogin: MeridianClinic, timeZone: ${ZONE} }
    secrets: { webhookToken: { env: SBT }, userLogin: { env: SBL }, userPassword: { env: SBP } }
    refs: { practitioners: { "3": reyes } }
`, { dataDir: dir.dir, env: { SBT: TOKEN, SBL: 'frontdesk', SBP: 'pw-7Yq2' }, clock });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const deliver = (f: string) => ingestWebhook(hub, 'sb', { rawBody: sample(f), headers: { 'content-type': 'application/json' }, url: `/webhooks/sb?token=${TOKEN}` });

test('through the engine: a callback is confirmed by reading the booking back, then applied; a reschedule keeps the id', async () => {
  fake.bookings.set('2262', { ...booking });
  const r = await deliver('callback-create.json');
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'fetch_queued');
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.deepEqual([a.start, a.end, a.practitionerId, a.timeZone, a.patient.name], ['2026-03-30T14:00:00Z', '2026-03-30T15:00:00Z', 'reyes', ZONE, 'Nora Bellamy']);
  await deliver('callback-create.json'); // the same callback again
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.revision, 1);
  fake.bookings.get('2262')!.start = '2026-03-31 09:30:00';
  fake.bookings.get('2262')!.end = '2026-03-31 10:30:00';
  await deliver('callback-change.json');
  await drain(hub);
  const all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.equal(all[0].start, '2026-03-31T13:30:00Z');
  assert.deepEqual(fake.violations, []);
});

test('a forged callback (no token) is refused before anything is read', async () => {
  const before = fake.calls.length;
  const r = await ingestWebhook(hub, 'sb', { rawBody: sample('callback-cancel.json'), headers: {}, url: '/webhooks/sb' });
  assert.equal(r.status, 401);
  await drain(hub);
  assert.equal(fake.calls.length, before);
});

test('a poll lists the window (company-local dates) and applies what callbacks missed; polling again changes nothing', async () => {
  fake.bookings.set('2270', { ...booking, id: '2270', clientId: '42', clientName: 'Missed Callback', start: '2026-04-02 16:00:00', end: '2026-04-02 16:45:00', additional: {} });
  let r = await pollConnection(hub, 'sb');
  assert.equal(r.listed, 2);
  const missed = (await listAppointments(hub.store.db, {})).find((x) => x.patient.name === 'Missed Callback');
  assert.equal(missed?.start, '2026-04-02T20:00:00Z');
  r = await pollConnection(hub, 'sb');
  assert.deepEqual(r.outcomes, { duplicate: 2 });
  assert.deepEqual(fake.violations, []);
});

test('staff reschedules and cancellations are written back (editBook keeps service, provider, client, intake answers)', async () => {
  const a = (await listAppointments(hub.store.db, {})).find((x) => x.origin.externalId === '2262')!;
  await staffReschedule(hub, a.id, { start: '2026-04-01T18:00:00Z', end: '2026-04-01T19:00:00Z' }, 'staff:test');
  await drain(hub);
  assert.deepEqual([fake.bookings.get('2262')!.start, fake.bookings.get('2262')!.end], ['2026-04-01 14:00:00', '2026-04-01 15:00:00']);
  const moved = (await listAppointments(hub.store.db, {})).find((x) => x.id === a.id)!;
  assert.equal(moved.diverged ?? null, null);
  await staffCancel(hub, a.id, undefined, 'staff:test');
  await drain(hub);
  assert.equal(fake.bookings.get('2262')!.confirmed, false);
  assert.deepEqual(fake.violations, []);
});

test('a no-show cannot be written: the appointment is marked as diverging', async () => {
  const a = (await listAppointments(hub.store.db, {})).find((x) => x.origin.externalId === '2270')!;
  const after = await staffSetStatus(hub, a.id, 'no_show', 'staff:test');
  assert.match(after.diverged ?? '', /SimplyBook\.me cannot mark a no-show/);
});

test('writeBack directly: a throttled answer is classified; wrong credentials are an auth failure; no-show is permanent', async () => {
  const ctx = (over: Partial<ConnectionContext> = {}): ConnectionContext => ({
    connectionId: 'sb', config: { companyLogin: 'meridianclinic', timeZone: ZONE }, secrets: { userLogin: 'frontdesk', userPassword: 'pw-7Yq2' },
    baseUrl: fake.baseUrl, fetch, now: () => new Date(), ...over,
  });
  const w = { externalId: '2270', start: '2026-04-02T20:00:00Z', end: '2026-04-02T20:45:00Z', timeZone: ZONE };
  fake.throttleNext = 1;
  const throttled = await connector.writeBack!({ ...w, status: 'cancelled' }, ctx());
  assert.equal(throttled.ok, false);
  if (!throttled.ok) assert.deepEqual([throttled.failure.class, throttled.failure.retryAfterMs], ['throttled', 2000]);
  const denied = await connector.writeBack!({ ...w, status: 'cancelled' }, ctx({ secrets: { userLogin: 'frontdesk', userPassword: 'wrong' } }));
  assert.equal(!denied.ok && denied.failure.class, 'auth');
  const noShow = await connector.writeBack!({ ...w, status: 'no_show' }, ctx());
  assert.equal(!noShow.ok && noShow.failure.class, 'permanent');
  await assert.rejects(connector.fetch!({ platform: 'simplybook', externalId: '2270', kind: 'upsert', occurredAt: '2026-03-20T15:00:00Z', needsFetch: true, appointment: {} }, ctx({ config: { companyLogin: 'meridianclinic' } })),
    (e: unknown) => e instanceof ConnectorError && e.failure.class === 'permanent', 'no company zone configured');
  assert.deepEqual(fake.violations, []);
});
