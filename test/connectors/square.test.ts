// Square contract tests from the samples (signature over URL + body, versions, statuses), the event
// bodies validated against Square's official OpenAPI, webhook → customer fetch → apply through the
// engine, where a late lower version never overwrites a newer one, and polling and write-back against
// the fake Square (test/fakes/square.ts), which checks every request against the same OpenAPI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { connector, listRanges, MAX_LIST_RANGE_MS } from '../../src/connectors/sources/square/index.ts';
import { ConnectionMisconfigured, ConnectorError, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { tempDir, configuredHub } from '../helpers.ts';
import { startFakeSquare, MAX_LIST_RANGE_MS as FAKE_MAX_RANGE_MS, type FakeSquare } from '../fakes/square.ts';

const DIR = new URL('../fixtures/samples/square/', import.meta.url);
const KEY = 'square-sample-signature-key-4d8a1f';
const URL_ = 'https://hub.example-clinic.test/webhooks/conn_square_demo';
const SIGS: Record<string, string> = {
  'booking-created.json': 'CSi4FG6tSjHbyPFUdrVvD1ITAtaDR8ApI1ScGJRtDb0=',
  'booking-updated-rescheduled.json': 'GziwqmB6ZBRwiGKQC+3aIneMfH/HwujcV7IO+N7jF0E=',
  'booking-updated-cancelled-by-seller.json': 'UGqHTyWRlknytauzLmlISJEJdOOqlu8QKYhoglDmtBE=',
};
const req = (f: string, url = URL_): WebhookRequest => ({ rawBody: readFileSync(new URL(f, DIR)), headers: { 'x-square-hmacsha256-signature': SIGS[f] }, url, now: new Date() });

test('signatures cover the registered URL + body; config.notificationUrl wins over the request URL', () => {
  for (const f of Object.keys(SIGS)) assert.deepEqual(connector.verify(req(f), { signatureKey: KEY }), { ok: true }, f);
  const behindProxy = req('booking-created.json', 'http://hub.example-clinic.test/webhooks/conn_square_demo');
  assert.equal(connector.verify(behindProxy, { signatureKey: KEY }).ok, false, 'the scheme changed by a proxy breaks the signature');
  assert.deepEqual(connector.verify(behindProxy, { signatureKey: KEY }, { notificationUrl: URL_ }), { ok: true });
  assert.equal(connector.verify(req('booking-created.json'), { signatureKey: 'other' }).ok, false);
  assert.throws(() => connector.verify(req('booking-created.json'), {}), ConnectionMisconfigured);
  const vector: WebhookRequest = { rawBody: Buffer.from('{"type":"booking.created","event_id":"e-1"}'), headers: { 'x-square-hmacsha256-signature': 'bEs5BcalKhZypI/6RDyuUm2atISigsuAcPfVXwnhm5U=' }, url: 'https://example.test/webhooks/square', now: new Date() };
  assert.deepEqual(connector.verify(vector, { signatureKey: 'test_square_signature_key' }), { ok: true });
});

test('events parse to the documented facts: id from the booking, version, event id, end from the segments', () => {
  const [c0] = connector.parseWebhook(req('booking-created.json'));
  assert.equal(c0.externalId, 'q3w9e2r7t1y5u8');
  assert.equal(c0.deliveryId, '0f5c2d6e-7a31-4b9e-a2c4-61d0e3f8b7a9');
  assert.equal(c0.version, 0);
  assert.equal(c0.appointment.start, '2026-02-18T22:00:00Z');
  assert.equal(c0.appointment.end, '2026-02-18T23:15:00Z');
  assert.equal(c0.appointment.practitionerRef, 'TMq8Wv2Xb4Nc6Zd1');
  assert.equal(c0.needsFetch, true, 'the patient is not in the payload');
  const [c1] = connector.parseWebhook(req('booking-updated-rescheduled.json'));
  assert.deepEqual([c1.version, c1.appointment.start, c1.appointment.end, c1.kind], [1, '2026-02-19T18:30:00Z', '2026-02-19T19:45:00Z', 'upsert']);
  const [c2] = connector.parseWebhook(req('booking-updated-cancelled-by-seller.json'));
  assert.deepEqual([c2.version, c2.kind, c2.appointment.status], [2, 'cancel', 'cancelled']);
});

test('the sample events validate against Square\'s official OpenAPI', () => {
  const spec = JSON.parse(readFileSync(new URL('../fixtures/specs/square-bookings/square-bookings.openapi.json', import.meta.url), 'utf8'));
  const denull = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(denull);
    if (!x || typeof x !== 'object') return x;
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'nullable') o[k] = denull(v);
    if ((x as { nullable?: boolean }).nullable && typeof o.type === 'string') o.type = [o.type, 'null'];
    return o;
  };
  const ajv = new Ajv2020Module.default({ strict: false, allErrors: true });
  addFormatsModule.default(ajv);
  ajv.addSchema({ $id: 'sq', components: denull(spec.components) });
  for (const [f, schema] of [['booking-created.json', 'BookingCreatedEvent'], ['booking-updated-rescheduled.json', 'BookingUpdatedEvent'], ['booking-updated-cancelled-by-seller.json', 'BookingUpdatedEvent']]) {
    const v = ajv.compile({ $ref: `sq#/components/schemas/${schema}` });
    assert.ok(v(JSON.parse(readFileSync(new URL(f, DIR), 'utf8'))), `${f}: ${ajv.errorsText(v.errors)}`);
  }
});

let fake: FakeSquare;
let hub: Hub;
const dir = tempDir();
before(async () => {
  fake = await startFakeSquare({ accessToken: 'sq-token' });
  fake.customer(JSON.parse(readFileSync(new URL('get-customer-response.json', DIR), 'utf8')).customer);
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/Los_Angeles }
locations: [{ id: pearl, name: Pearl District }]
practitioners: [{ id: kim, name: Dr. Kim, locations: [pearl] }]
connections:
  - id: square
    platform: square
    baseUrl: ${fake.url}
    config: { notificationUrl: "${URL_}" }
    secrets: { signatureKey: { env: SK }, accessToken: { env: ST } }
    refs: { practitioners: { TMq8Wv2Xb4Nc6Zd1: kim } }
`, { dataDir: dir.dir, env: { SK: KEY, ST: 'sq-token' } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const body = (f: string) => JSON.parse(readFileSync(new URL(f, DIR), 'utf8')).data.object.booking;
const deliver = (f: string) => ingestWebhook(hub, 'square', { rawBody: req(f).rawBody, headers: req(f).headers, url: 'http://proxy-rewritten.invalid/x' });

test('through the engine: the patient is fetched; a late lower version changes nothing; event ids dedupe', async () => {
  fake.put(body('booking-updated-rescheduled.json'));
  assert.equal((await deliver('booking-updated-rescheduled.json')).status, 200);
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-19T18:30:00Z');
  assert.equal(a.patient.name, 'Hannah Osei');
  assert.equal(a.patient.email, 'hannah.osei@example.com');
  // Version 0 arrives late (a Square retry): it must not move the appointment back.
  fake.put(body('booking-created.json'));
  await deliver('booking-created.json');
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-19T18:30:00Z');
  // The same event again is a duplicate delivery.
  const dup = await deliver('booking-updated-rescheduled.json');
  assert.equal(dup.body.status, 'duplicate');
  fake.put(body('booking-updated-cancelled-by-seller.json'));
  await deliver('booking-updated-cancelled-by-seller.json');
  await drain(hub);
  assert.equal((await listAppointments(hub.store.db, {}))[0].status, 'cancelled');
  assert.deepEqual(fake.violations, []);
});

const ctx = (): ConnectionContext => ({ connectionId: 'square', config: {}, secrets: { accessToken: 'sq-token' }, baseUrl: fake.url, fetch, now: () => new Date() });
const seed = (id: string, start: string) => fake.put({ ...body('booking-created.json'), id, start_at: start, version: undefined, status: 'ACCEPTED' });

test('write-back: a move and a cancel carry the current version and validate against the OpenAPI; a no-show is refused', async () => {
  const b0 = seed('wb1', '2026-03-03T17:00:00Z');
  const move = await connector.writeBack!({ externalId: 'wb1', start: '2026-03-04T17:00:00Z', end: '2026-03-04T18:15:00Z', timeZone: 'America/Los_Angeles', status: 'booked' }, ctx());
  assert.deepEqual(move, { ok: true, value: undefined });
  const b1 = fake.booking('wb1')!;
  assert.deepEqual([b1.start_at, b1.version], ['2026-03-04T17:00:00Z', b0.version + 1]);
  const put = fake.requests.find((r) => r.method === 'PUT')!;
  assert.equal(put.body.booking.version, b0.version, 'the update names the version it read');
  assert.ok((await connector.writeBack!({ externalId: 'wb1', start: b1.start_at, end: '2026-03-04T18:15:00Z', timeZone: 'America/Los_Angeles', status: 'cancelled' }, ctx())).ok);
  assert.equal(fake.booking('wb1')!.status, 'CANCELLED_BY_SELLER');
  const noShow = await connector.writeBack!({ externalId: 'wb1', start: b1.start_at, end: '2026-03-04T18:15:00Z', timeZone: 'America/Los_Angeles', status: 'no_show' }, ctx());
  assert.equal(!noShow.ok && noShow.failure.class, 'permanent');
  assert.deepEqual(fake.violations, []);
});

test('the fake enforces Square\'s rules: a stale version is 409 VERSION_MISMATCH, read-only fields and unknown parameters are violations', async () => {
  seed('wb2', '2026-03-05T17:00:00Z');
  const v = fake.booking('wb2')!.version;
  const call = (method: string, path: string, b?: unknown) => fetch(`${fake.url}${path}`, { method, headers: { authorization: 'Bearer sq-token', 'square-version': '2025-08-20', 'content-type': 'application/json' }, body: b === undefined ? undefined : JSON.stringify(b) });
  const stale = await call('PUT', '/v2/bookings/wb2', { idempotency_key: 'k-stale', booking: { version: v - 1 < 0 ? v + 5 : v - 1, start_at: '2026-03-06T17:00:00Z' } });
  assert.equal(stale.status, 409);
  assert.equal(((await stale.json()) as { errors: { code: string }[] }).errors[0].code, 'VERSION_MISMATCH');
  const cancelStale = await call('POST', '/v2/bookings/wb2/cancel', { idempotency_key: 'k-c', booking_version: v + 7 });
  assert.equal(cancelStale.status, 409);
  assert.equal(fake.violations.length, 0, 'a stale version is Square refusing, not Meridian breaking a rule');
  assert.equal((await call('PUT', '/v2/bookings/wb2', { idempotency_key: 'k-ro', booking: { version: v, status: 'ACCEPTED' } })).status, 400);
  assert.equal((await call('GET', '/v2/bookings?since=yesterday')).status, 400);
  assert.equal((await call('PUT', '/v2/bookings/wb2', { booking: { version: v, start_at: '2026-03-06T17:00:00Z', colour: 'red' } })).status, 400);
  assert.equal(fake.violations.length, 3, fake.violations.join('\n'));
  fake.violations.length = 0;
});

test('a stale version seen by the connector is a conflict (retried with a fresh read); a 429 is throttled', async () => {
  seed('wb3', '2026-03-07T17:00:00Z');
  // Someone changes the booking between Meridian's read and its write: the fake answers 409.
  const realFetch = ctx().fetch;
  let sneaked = false;
  const racing: typeof fetch = async (input, init) => {
    if (init?.method === 'PUT' && !sneaked) {
      sneaked = true;
      fake.put({ ...fake.booking('wb3')!, version: undefined, customer_note: 'changed in the dashboard' });
    }
    return realFetch(input, init);
  };
  const r = await connector.writeBack!({ externalId: 'wb3', start: '2026-03-08T17:00:00Z', end: '2026-03-08T18:15:00Z', timeZone: 'America/Los_Angeles', status: 'booked' }, { ...ctx(), fetch: racing });
  assert.equal(!r.ok && r.failure.class, 'conflict');
  assert.equal(fake.booking('wb3')!.start_at, '2026-03-07T17:00:00Z');
  fake.fail(1, 429, { 'retry-after': '2' });
  await assert.rejects(connector.fetch!({ platform: 'square', externalId: 'wb3', kind: 'upsert', occurredAt: '2026-03-01T00:00:00Z', needsFetch: true, appointment: {} }, ctx()),
    (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 2000);
  assert.deepEqual(fake.violations, []);
});

test('a poll lists the start window through the engine and every answer validates', async () => {
  for (let i = 0; i < 3; i++) seed(`poll${i}`, new Date(Date.now() + (i + 1) * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
  const seen: string[] = [];
  for await (const c of connector.list!({ from: new Date(), to: new Date(Date.now() + 30 * 86_400_000) }, ctx())) seen.push(c.externalId);
  assert.deepEqual(seen.filter((id) => id.startsWith('poll')).sort(), ['poll0', 'poll1', 'poll2']);
  const r = await pollConnection(hub, 'square');
  assert.ok(r.listed >= 3);
  assert.deepEqual(fake.violations, []);
});

test('the fake refuses a ListBookings range over 31 days (400 INVALID_TIME_RANGE), as Square does; 31 days is served', async () => {
  const list = (min: string, max: string) => fetch(`${fake.url}/v2/bookings?${new URLSearchParams({ start_at_min: min, start_at_max: max })}`, { headers: { authorization: 'Bearer sq-token', 'square-version': '2025-08-20' } });
  const before = fake.violations.length;
  const ok31 = await list('2026-05-01T00:00:00Z', '2026-06-01T00:00:00Z');
  assert.equal(ok31.status, 200);
  const tooLong = await list('2026-05-01T00:00:00Z', '2026-06-01T00:00:01Z');
  assert.equal(tooLong.status, 400);
  const e = ((await tooLong.json()) as { errors: { category: string; code: string; field: string }[] }).errors[0];
  assert.deepEqual([e.category, e.code, e.field], ['INVALID_REQUEST_ERROR', 'INVALID_TIME_RANGE', 'start_at_max']);
  assert.equal((await list('2026-05-02T00:00:00Z', '2026-05-01T00:00:00Z')).status, 400, 'an inverted range is refused too');
  assert.equal(fake.violations.length - before, 2, fake.violations.join('\n'));
  fake.violations.length = before;
  assert.equal(FAKE_MAX_RANGE_MS, MAX_LIST_RANGE_MS, 'the connector keeps within the range the fake enforces');
});

test('a poll window longer than 31 days is read as consecutive ranges of at most 31 days, each booking once', async () => {
  const from = new Date('2027-01-01T00:00:00Z');
  const to = new Date('2027-04-08T00:00:00Z'); // 97 days: Meridian's default 7 days back + 90 ahead
  const ranges = listRanges({ from, to });
  assert.deepEqual(ranges.map((r) => [r.min.toISOString(), r.max.toISOString()]), [
    ['2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
    ['2027-02-01T00:00:00.000Z', '2027-03-04T00:00:00.000Z'],
    ['2027-03-04T00:00:00.000Z', '2027-04-04T00:00:00.000Z'],
    ['2027-04-04T00:00:00.000Z', '2027-04-08T00:00:00.000Z'],
  ]);
  // Bookings early, on a range boundary (both neighbouring ranges hold it), in the middle and near the end.
  const starts = { lr0: '2027-01-02T17:00:00Z', lr1: '2027-02-01T00:00:00Z', lr2: '2027-03-15T17:00:00Z', lr3: '2027-04-07T17:00:00Z' };
  for (const [id, at] of Object.entries(starts)) seed(id, at);
  const mark = fake.requests.length;
  const seen: string[] = [];
  for await (const c of connector.list!({ from, to }, ctx())) seen.push(c.externalId);
  assert.deepEqual(seen.filter((id) => id.startsWith('lr')), ['lr0', 'lr1', 'lr2', 'lr3'], 'every booking of the window, the boundary one once');
  const calls = fake.requests.slice(mark).filter((r) => r.method === 'GET' && r.path.startsWith('/v2/bookings?'));
  assert.equal(calls.length, 4);
  for (const c of calls) {
    const q = new URL(c.path, 'http://x').searchParams;
    assert.ok(Date.parse(q.get('start_at_max')!) - Date.parse(q.get('start_at_min')!) <= 31 * 86_400_000, c.path);
  }
  assert.deepEqual(fake.violations, []);
});
