// Bookafy contract tests (samples built from the documented fields; see the samples' README), the URL-token
// check, and the unsigned webhook → read back → apply path through the engine against the fake API,
// a poll, and write-back (move, cancel, refused no-show, throttling).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector, bookafyDateTime } from '../../src/connectors/sources/bookafy/index.ts';
import { ConnectionMisconfigured, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { startFakeBookafy, type FakeBookafy } from '../fakes/bookafy.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/bookafy/', import.meta.url);
const sample = (f: string) => readFileSync(new URL(f, DIR));
const listed = JSON.parse(sample('list-appointments.json').toString());
const TOKEN = 'tok_3Jq9xV2mPbL7sW1rZcY8';
const req = (body: Buffer, url = `https://meridian.example/webhooks/bookafy?token=${TOKEN}`): WebhookRequest => ({
  rawBody: body, headers: { 'content-type': 'application/json' }, url, now: new Date('2026-03-01T10:00:00Z'),
});

test('the URL token admits a delivery; a wrong, altered or missing token is refused; no token configured is a misconfiguration', () => {
  const r = req(sample('webhook-appointment-created.json'));
  assert.deepEqual(connector.verify(r, { webhookToken: TOKEN }), { ok: true });
  assert.deepEqual(connector.verify(r, { webhookToken: 'old-one', webhookTokenPrevious: TOKEN }), { ok: true }, 'rotation');
  assert.equal(connector.verify({ ...r, url: r.url.replace(/Y8$/, 'Y9') }, { webhookToken: TOKEN }).ok, false, 'one byte changed');
  assert.equal(connector.verify(r, { webhookToken: 'someone-else' }).ok, false);
  assert.equal(connector.verify({ ...r, url: 'https://meridian.example/webhooks/bookafy' }, { webhookToken: TOKEN }).ok, false);
  assert.throws(() => connector.verify(r, {}), ConnectionMisconfigured);
});

test('a delivery is only a hint: the appointment id to read back; customer events are ignored; junk is unreadable', () => {
  const [c] = connector.parseWebhook(req(sample('webhook-appointment-created.json')));
  assert.equal(c.externalId, '884120');
  assert.equal(c.needsFetch, true);
  assert.equal(c.kind, 'upsert');
  assert.deepEqual(c.appointment, { practitionerRef: '5123', serviceRef: '77' }, 'no times or patient are taken from an unsigned body');
  assert.equal(connector.parseWebhook(req(Buffer.from('{"event":"appointment_cancelled","appointment":{"id":7}}')))[0].kind, 'cancel');
  assert.deepEqual(connector.parseWebhook(req(sample('webhook-customer-updated.json'))), []);
  assert.throws(() => connector.parseWebhook(req(Buffer.from('event=appointment_created&id=1'))), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(req(Buffer.from('{"event":"appointment_created","appointment":{"id":"abc"}}'))), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(req(Buffer.from('{"event":"appointment_created"}'))), UnreadablePayload);
});

test('listed appointments parse: UTC times, staff and service refs, patient, notes; inactive is cancelled; a Rails zone label is not used', () => {
  const [a, b] = connector.parseRecord!(listed);
  assert.equal(a.externalId, '884120');
  assert.equal(a.kind, 'upsert');
  assert.deepEqual(
    { start: a.appointment.start, end: a.appointment.end, status: a.appointment.status, p: a.appointment.practitionerRef, s: a.appointment.serviceRef, tz: a.appointment.timeZone },
    { start: '2026-03-10T14:00:00Z', end: '2026-03-10T14:45:00Z', status: 'booked', p: '5123', s: '77', tz: undefined },
  );
  assert.deepEqual(a.appointment.patient, { name: 'Nora Bellamy', email: 'nora.bellamy@example.com' });
  assert.equal(a.appointment.notes, 'First visit, lower back');
  assert.equal(b.kind, 'cancel');
  assert.equal(b.appointment.status, 'cancelled');
  const one = listed.response.appointment[0];
  const [d] = connector.parseRecord!({ ...one, appointment_end_time: undefined, duration: '30', time_zone: 'America/New_York' });
  assert.equal(d.appointment.end, '2026-03-10T14:30:00Z');
  assert.equal(d.appointment.timeZone, 'America/New_York');
  assert.throws(() => connector.parseRecord!({ ...one, appointment_start_time: '2026-03-10T14:00:00' }), (e: Error) => e instanceof UnreadablePayload && /offset/.test(e.message));
  assert.throws(() => connector.parseRecord!({ ...one, id: undefined }), (e: Error) => e instanceof UnreadablePayload && !e.message.includes('Nora'));
});

test('update times are UTC dates and 12-hour clock times', () => {
  assert.deepEqual(bookafyDateTime('2026-03-10T00:05:00Z'), ['2026-03-10', '12:05 AM']);
  assert.deepEqual(bookafyDateTime('2026-03-10T12:30:00Z'), ['2026-03-10', '12:30 PM']);
  assert.deepEqual(bookafyDateTime('2026-03-10T14:05:00Z'), ['2026-03-10', '02:05 PM']);
});

let fake: FakeBookafy;
let hub: Hub;
const dir = tempDir();
const base = { ...listed.response.appointment[0], id: 884120, user_id: 5123 };
before(async () => {
  fake = await startFakeBookafy();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: brooklyn, name: Brooklyn }]
practitioners: [{ id: park, name: Dr. Lena Park, locations: [brooklyn] }, { id: ortiz, name: Sam Ortiz, locations: [brooklyn] }]
connections:
  - id: bookafy
    platform: bookafy
    baseUrl: ${fake.url}
    secrets: { apiKey: { env: BK }, webhookToken: { env: BT } }
    refs: { practitioners: { "5123": park, "5124": ortiz } }
`, { dataDir: dir.dir, env: { BK: fake.apiKey, BT: TOKEN } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const deliver = (body: Buffer, token = TOKEN) => ingestWebhook(hub, 'bookafy', { rawBody: body, headers: { 'content-type': 'application/json' }, url: `https://meridian.example/webhooks/bookafy?token=${token}` });
const created = sample('webhook-appointment-created.json');

test('through the engine: a delivery is read back before it is applied; a repeat changes nothing; a move keeps the id', async () => {
  assert.equal((await deliver(created, 'guess')).status, 401);
  fake.put(base);
  const r = await deliver(created);
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'fetch_queued');
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-03-10T14:00:00Z');
  assert.equal(a.practitionerId, 'park');
  assert.equal(a.patient.name, 'Nora Bellamy');
  await deliver(created); // the same delivery again (Bookafy sends no delivery id): same state read back
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.revision, 1);
  fake.put({ ...base, appointment_start_time: '2026-03-12T16:00:00Z', appointment_end_time: '2026-03-12T16:45:00Z' });
  await deliver(Buffer.from('{"event":"appointment_updated","appointment":{"id":884120}}'));
  await drain(hub);
  const all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1, 'a move keeps the id');
  assert.equal(all[0].start, '2026-03-12T16:00:00Z');
  assert.equal(fake.requests.filter((q) => q.path === '/staff_members').length, 3, 'one read-back per delivery');
  assert.deepEqual(fake.violations, []);
});

const inDays = (d: number, minutes = 0) => new Date(Math.floor(Date.now() / 86_400_000 + d) * 86_400_000 + minutes * 60_000).toISOString();

test('a poll lists the window (each staff member, every page), applies what no webhook announced and is idempotent', async () => {
  // The second staff member has 30 appointments beyond the window, listed newest first: the one inside is on page 2.
  for (let i = 0; i < 30; i++) fake.put({ ...base, id: 990000 + i, user_id: 5124, appointment_start_time: inDays(200 + i), appointment_end_time: inDays(200 + i, 30) });
  fake.put({ ...base, id: 884131, user_id: 5124, appointment_start_time: inDays(-2), appointment_end_time: inDays(-2, 30) });
  fake.put({ ...base, id: 884130, appointment_start_time: inDays(3, 60), appointment_end_time: inDays(3, 90), customer: { customer_detail_hstore: { name: 'Missed Webhook' } } });
  const reads = () => fake.requests.filter((q) => q.path === '/appointments').length;
  const before = reads();
  let r = await pollConnection(hub, 'bookafy');
  assert.equal(reads() - before, 3, 'one page for the first staff member, two for the second');
  assert.equal(r.listed, 2, 'only the window (the March appointment is outside it)');
  const now = await listAppointments(hub.store.db, {});
  assert.equal(now.find((a) => a.patient.name === 'Missed Webhook')?.start, inDays(3, 60).replace('.000Z', 'Z'));
  assert.equal(now.find((a) => a.origin.externalId === '884131')?.practitionerId, 'ortiz');
  r = await pollConnection(hub, 'bookafy');
  assert.deepEqual(r.outcomes, { duplicate: 2 });
  assert.deepEqual(fake.violations, []);
});

const ctx = (): ConnectionContext => ({ connectionId: 'bookafy', config: {}, secrets: { apiKey: fake.apiKey }, baseUrl: fake.url, fetch, now: () => new Date() });

test('write-back: a move is sent as UTC date and times, a cancel deletes, a no-show is refused, throttling is classified', async () => {
  const w = { externalId: '884130', start: '2026-03-05T19:30:00Z', end: '2026-03-05T20:15:00Z', timeZone: 'America/New_York', status: 'booked' as const };
  assert.deepEqual(await connector.writeBack!(w, ctx()), { ok: true, value: undefined });
  const moved = fake.get(884130)!;
  assert.deepEqual([moved.appointment_start_time, moved.appointment_end_time], ['2026-03-05T19:30:00.000Z', '2026-03-05T20:15:00.000Z']);
  const noShow = await connector.writeBack!({ ...w, status: 'no_show' }, ctx());
  assert.equal(!noShow.ok && noShow.failure.class, 'permanent');
  fake.fail(1, 429, { 'retry-after': '7' });
  const throttled = await connector.writeBack!({ ...w, status: 'cancelled' }, ctx());
  assert.equal(!throttled.ok && throttled.failure.class, 'throttled');
  assert.equal(!throttled.ok && throttled.failure.retryAfterMs, 7000);
  assert.deepEqual(await connector.writeBack!({ ...w, status: 'cancelled' }, ctx()), { ok: true, value: undefined });
  assert.equal(fake.get(884130), undefined);
  assert.ok(fake.deleted(884130));
  const again = await connector.writeBack!({ ...w, status: 'cancelled' }, ctx());
  assert.equal(!again.ok && again.failure.class, 'gone');
  assert.deepEqual(fake.violations, []);
});

test('an appointment deleted in Bookafy reads back as cancelled', async () => {
  const before = fake.get(884120)!;
  const res = await fetch(`${fake.url}/appointments/884120`, { method: 'DELETE', headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body: `appointment%5Buser_id%5D=${before.user_id}` });
  assert.equal(res.status, 200);
  await deliver(Buffer.from('{"event":"appointment_cancelled","appointment":{"id":884120}}'));
  await drain(hub);
  const a = (await listAppointments(hub.store.db, {})).find((x) => x.origin.externalId === '884120');
  assert.equal(a?.status, 'cancelled');
  assert.deepEqual(fake.violations, []);
});
