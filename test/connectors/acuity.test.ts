// Acuity contract tests from the samples, and the ids-only webhook → fetch → apply path through the
// engine, polling and write-back against the fake Acuity API (test/fakes/acuity.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector } from '../../src/connectors/sources/acuity/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { tempDir, configuredHub } from '../helpers.ts';
import { startFakeAcuity, type AcuityAppointment, type FakeAcuity } from '../fakes/acuity.ts';

const DIR = new URL('../fixtures/samples/acuity/', import.meta.url);
const KEY = 'acuity-sample-api-key-7f3c9d';
const SIGS: Record<string, string> = {
  'webhook-static-scheduled.txt': 'QalVP8RSW4fMXXwC2bLO+stFWLexYgWG6UCflZ5G6iA=',
  'webhook-static-canceled.txt': '85tKjHq/shNk8iWnlRG8L9wdLqWztfA1YYQ/WvKcjQE=',
  'webhook-dynamic-rescheduled.txt': 'AnGCY8dPy09N1ac7N4QW4YoAxnjDXZI/PqnWvvlcNOo=',
};
const record = JSON.parse(readFileSync(new URL('get-appointment-1284401937.json', DIR), 'utf8'));
const req = (f: string): WebhookRequest => ({ rawBody: readFileSync(new URL(f, DIR)), headers: { 'x-acuity-signature': SIGS[f], 'content-type': 'application/x-www-form-urlencoded' }, url: '', now: new Date('2026-02-03T10:00:00Z') });

test('every sample verifies with the API key; tampering, wrong keys and a missing key are refused', () => {
  for (const f of Object.keys(SIGS)) assert.deepEqual(connector.verify(req(f), { apiKey: KEY }), { ok: true }, f);
  const r = req('webhook-static-scheduled.txt');
  assert.equal(connector.verify({ ...r, rawBody: Buffer.from(r.rawBody.toString().replace('1284401937', '1284401938')) }, { apiKey: KEY }).ok, false);
  assert.equal(connector.verify(r, { apiKey: 'other' }).ok, false);
  assert.equal(connector.verify({ ...r, headers: {} }, { apiKey: KEY }).ok, false);
  assert.throws(() => connector.verify(r, {}), ConnectionMisconfigured);
  // the facts file's own vector
  const body = Buffer.from('action=scheduled&id=42&calendarID=7&appointmentTypeID=9');
  assert.deepEqual(connector.verify({ ...r, rawBody: body, headers: { 'x-acuity-signature': '8Gr7XVny6jI8WJ0sj6d9+of+xtJl2EWAr39gwrjy7Fg=' } }, { apiKey: 'test_acuity_api_key' }), { ok: true });
});

test('webhooks (static and dynamic) are ids only: a change to fetch', () => {
  for (const f of Object.keys(SIGS)) {
    const [c] = connector.parseWebhook(req(f));
    assert.equal(c.externalId, '1284401937');
    assert.equal(c.needsFetch, true);
    assert.equal(c.kind, f.includes('canceled') ? 'cancel' : 'upsert');
  }
  assert.throws(() => connector.parseWebhook({ ...req('webhook-static-scheduled.txt'), rawBody: Buffer.from('action=exploded&id=1') }), UnreadablePayload);
  assert.deepEqual(connector.parseWebhook({ ...req('webhook-static-scheduled.txt'), rawBody: Buffer.from('action=order.completed&id=5') }), []);
});

test('the fetched appointment parses to the documented facts; canceled and no-show records map', () => {
  const [c] = connector.parseRecord!(record);
  assert.equal(c.externalId, '1284401937');
  assert.equal(c.kind, 'upsert');
  assert.equal(c.appointment.status, 'booked');
  assert.equal(c.appointment.start, '2026-02-17T15:00:00Z');
  assert.equal(c.appointment.end, '2026-02-17T16:00:00Z');
  assert.equal(c.appointment.timeZone, 'America/New_York');
  assert.equal(c.appointment.practitionerRef, '8841203');
  assert.equal(c.appointment.patient?.name, 'Nora Bellamy');
  assert.equal(c.appointment.patient?.email, 'nora.bellamy@example.com');
  assert.equal(connector.parseRecord!({ ...record, canceled: true })[0].kind, 'cancel');
  assert.equal(connector.parseRecord!({ ...record, canceled: true, noShow: true })[0].kind, 'no_show');
});

let fake: FakeAcuity;
let hub: Hub;
const dir = tempDir();
const missed: AcuityAppointment = { ...record, id: 1284409999, datetime: '2026-02-20T14:00:00-0500', firstName: 'Missed', lastName: 'Webhook' };
const fetches = () => fake.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/appointments/1284401937').length;
before(async () => {
  fake = await startFakeAcuity({ userId: '19088731', apiKey: KEY });
  fake.hold(record);
  fake.hold(missed);
  const base = fake.url;
  // The samples are in February 2026: the hub's clock sits before them so the poll window holds them.
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: brooklyn, name: Brooklyn }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [brooklyn] }]
connections:
  - id: acuity
    platform: acuity
    baseUrl: ${base}
    secrets: { apiKey: { env: AK }, userId: { env: AU } }
    refs: { practitioners: { "8841203": reyes } }
`, { dataDir: dir.dir, env: { AK: KEY, AU: '19088731' }, clock: { now: () => new Date('2026-02-10T12:00:00Z') } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const deliver = (f: string) => ingestWebhook(hub, 'acuity', { rawBody: req(f).rawBody, headers: req(f).headers, url: '' });

test('through the engine: a delivery is confirmed by reading the appointment back, then applied; a reschedule keeps the id', async () => {
  const r = await deliver('webhook-static-scheduled.txt');
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'fetch_queued');
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-17T15:00:00Z');
  assert.equal(a.practitionerId, 'reyes');
  // Acuity sends `changed` too: the same state fetched again changes nothing.
  await deliver('webhook-static-scheduled.txt');
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.revision, 1);
  fake.hold({ ...record, datetime: '2026-02-18T09:30:00-0500' });
  await deliver('webhook-dynamic-rescheduled.txt');
  await drain(hub);
  const all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.equal(all[0].start, '2026-02-18T14:30:00Z');
  fake.hold({ ...record, datetime: '2026-02-18T09:30:00-0500', canceled: true });
  await deliver('webhook-static-canceled.txt');
  await drain(hub);
  assert.equal((await listAppointments(hub.store.db, {}))[0].status, 'cancelled');
  assert.equal(fetches(), 4);
  assert.deepEqual(fake.violations, []);
});

test('a poll lists the window and applies what the webhooks missed; polling again changes nothing', async () => {
  let r = await pollConnection(hub, 'acuity');
  assert.equal(r.listed, 2);
  const missed = (await listAppointments(hub.store.db, {})).find((a) => a.patient.name === 'Missed Webhook');
  assert.ok(missed, 'the booking no webhook announced is there');
  assert.equal(missed.start, '2026-02-20T19:00:00Z');
  r = await pollConnection(hub, 'acuity');
  assert.deepEqual(r.outcomes, { duplicate: 2 });
  const conn = await hub.store.db.selectFrom('connection').select('last_sync_at').where('id', '=', 'acuity').executeTakeFirstOrThrow();
  assert.ok(conn.last_sync_at);
});

const ctx = (secrets: Record<string, string> = { apiKey: KEY, userId: '19088731' }): ConnectionContext => ({
  connectionId: 'acuity', config: {}, secrets, baseUrl: fake.url, fetch, now: () => new Date('2026-02-10T12:00:00Z'),
});

test('write-back against the fake: a move keeps the id (admin mode), cancel, no-show; refusals are classified', async () => {
  fake.hold({ ...record, id: 1284405555 });
  const move = await connector.writeBack!({ externalId: '1284405555', start: '2026-03-02T15:00:00Z', end: '2026-03-02T16:00:00Z', timeZone: 'America/New_York', status: 'booked' }, ctx());
  assert.deepEqual(move, { ok: true, value: undefined });
  assert.equal(fake.get(1284405555)?.datetime, '2026-03-02T10:00:00-0500');
  const put = fake.requests.at(-1)!;
  assert.deepEqual([put.method, put.path, put.query.admin], ['PUT', '/api/v1/appointments/1284405555/reschedule', 'true']);
  assert.ok((await connector.writeBack!({ externalId: '1284405555', start: '2026-03-02T15:00:00Z', end: '2026-03-02T16:00:00Z', timeZone: 'America/New_York', status: 'cancelled' }, ctx())).ok);
  assert.deepEqual([fake.get(1284405555)?.canceled, fake.get(1284405555)?.noShow], [true, undefined]);
  assert.equal(fake.requests.at(-1)!.query.noEmail, 'true', 'Acuity does not e-mail the patient about a clinic-side change');
  fake.hold({ ...record, id: 1284406666 });
  assert.ok((await connector.writeBack!({ externalId: '1284406666', start: '2026-02-17T15:00:00Z', end: '2026-02-17T16:00:00Z', timeZone: 'America/New_York', status: 'no_show' }, ctx())).ok);
  assert.deepEqual([fake.get(1284406666)?.canceled, fake.get(1284406666)?.noShow], [true, true]);
  const gone = await connector.writeBack!({ externalId: '999', start: '2026-03-02T15:00:00Z', end: '2026-03-02T16:00:00Z', timeZone: 'America/New_York', status: 'booked' }, ctx());
  assert.equal(!gone.ok && gone.failure.class, 'gone');
  const denied = await connector.writeBack!({ externalId: '1284405555', start: '2026-03-02T15:00:00Z', end: '2026-03-02T16:00:00Z', timeZone: 'America/New_York', status: 'booked' }, ctx({ apiKey: 'wrong', userId: '19088731' }));
  assert.equal(!denied.ok && denied.failure.class, 'auth');
  assert.deepEqual(fake.violations, []);
});

test('a 429 from Acuity is a throttled failure carrying Retry-After', async () => {
  fake.fail(1, 429, { 'retry-after': '3' });
  await assert.rejects(connector.fetch!({ platform: 'acuity', externalId: '1284401937', kind: 'upsert', occurredAt: '2026-02-10T12:00:00Z', needsFetch: true, appointment: {} }, ctx()),
    (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 3000);
});
