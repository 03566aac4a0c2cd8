// Square contract tests from the samples (signature over URL + body, versions, statuses), the event
// bodies validated against Square's official OpenAPI, and webhook → customer fetch → apply through the
// engine, where a late lower version never overwrites a newer one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { connector } from '../../src/connectors/sources/square/index.ts';
import { ConnectionMisconfigured, type WebhookRequest } from '../../src/connectors/types.ts';
import { openHub, makeLogger, type Hub } from '../../src/engine/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { ingestWebhook } from '../../src/engine/ingest.ts';
import { drain } from '../../src/engine/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { tempDir } from '../helpers.ts';

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

let server: http.Server;
let current: Record<string, unknown>;
let hub: Hub;
const dir = tempDir();
before(async () => {
  const customer = readFileSync(new URL('get-customer-response.json', DIR), 'utf8');
  server = http.createServer((rq, rs) => {
    if (rq.headers.authorization !== 'Bearer sq-token' || !rq.headers['square-version']) return rs.writeHead(401).end('{"errors":[{"category":"AUTHENTICATION_ERROR"}]}');
    if (rq.url === '/v2/bookings/q3w9e2r7t1y5u8') return rs.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ booking: current }));
    if (rq.url === '/v2/customers/G6H8J2K4L6M8N0P2Q4R6S8T0V2') return rs.writeHead(200, { 'content-type': 'application/json' }).end(customer);
    rs.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hub = await openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: { SK: KEY, ST: 'sq-token' } });
  const c = parseConfig(`
clinic: { id: c, name: Clinic, timeZone: America/Los_Angeles }
locations: [{ id: pearl, name: Pearl District }]
practitioners: [{ id: kim, name: Dr. Kim, locations: [pearl] }]
connections:
  - id: square
    platform: square
    baseUrl: http://127.0.0.1:${(server.address() as { port: number }).port}
    config: { notificationUrl: "${URL_}" }
    secrets: { signatureKey: { env: SK }, accessToken: { env: ST } }
    refs: { practitioners: { TMq8Wv2Xb4Nc6Zd1: kim } }
`, 'test.yaml');
  await applyConfig(hub, c.config, c.hash, 'test');
});
after(async () => {
  await hub.store.close();
  server.close();
  dir.cleanup();
});

const body = (f: string) => JSON.parse(readFileSync(new URL(f, DIR), 'utf8')).data.object.booking;
const deliver = (f: string) => ingestWebhook(hub, 'square', { rawBody: req(f).rawBody, headers: req(f).headers, url: 'http://proxy-rewritten.invalid/x' });

test('through the engine: the patient is fetched; a late lower version changes nothing; event ids dedupe', async () => {
  current = body('booking-updated-rescheduled.json');
  assert.equal((await deliver('booking-updated-rescheduled.json')).status, 200);
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-19T18:30:00Z');
  assert.equal(a.patient.name, 'Hannah Osei');
  assert.equal(a.patient.email, 'hannah.osei@example.com');
  // Version 0 arrives late (a Square retry): it must not move the appointment back.
  current = body('booking-created.json');
  await deliver('booking-created.json');
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-19T18:30:00Z');
  // The same event again is a duplicate delivery.
  const dup = await deliver('booking-updated-rescheduled.json');
  assert.equal(dup.body.status, 'duplicate');
  current = body('booking-updated-cancelled-by-seller.json');
  await deliver('booking-updated-cancelled-by-seller.json');
  await drain(hub);
  assert.equal((await listAppointments(hub.store.db, {}))[0].status, 'cancelled');
});
