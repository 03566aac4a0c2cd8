// TimeTap contract tests and the unsigned-webhook → read-back → apply path through the engine, against the
// fake API in test/fakes/timetap.ts. The samples in test/fixtures/samples/timetap/ are constructed from the
// docs: webhook-appointment.json is the abbreviated example on TimeTap's "Integrating Webhooks" page (commas
// repaired), get-appointment-10390617.json is that object with the date and status fields the API carries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector, parseRecord, sessionSignature, timetapInstant } from '../../src/connectors/sources/timetap/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { staffCancel, staffReschedule } from '../../src/engine/edits/staff.ts';
import { appointmentOf, startFakeTimeTap, webhookBodyOf, type FakeTimeTap } from '../fakes/timetap.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/timetap/', import.meta.url);
const TOKEN = 'tt-hook-6Qm2vXr9Lp0aZs4Kd8Wn';
const HOOK = `https://hub.example-clinic.test/webhooks/timetap?token=${TOKEN}`;
const webhookBody = readFileSync(new URL('webhook-appointment.json', DIR));
const record = JSON.parse(readFileSync(new URL('get-appointment-10390617.json', DIR), 'utf8'));
const req = (url = HOOK, rawBody = webhookBody): WebhookRequest => ({ rawBody, headers: { 'content-type': 'application/json' }, url, now: new Date('2026-02-03T10:00:00Z') });

test('a webhook is accepted only with the URL token (rotation too); no token configured is a misconfiguration', () => {
  assert.deepEqual(connector.verify(req(), { webhookToken: TOKEN }), { ok: true });
  assert.deepEqual(connector.verify(req(), { webhookToken: 'new-token', webhookTokenPrevious: TOKEN }), { ok: true });
  assert.equal(connector.verify(req(HOOK.replace(/n$/, 'm')), { webhookToken: TOKEN }).ok, false, 'one byte changed');
  assert.equal(connector.verify(req(), { webhookToken: 'another-token-entirely' }).ok, false, 'wrong secret');
  assert.equal(connector.verify(req('https://hub.example-clinic.test/webhooks/timetap'), { webhookToken: TOKEN }).ok, false, 'no token');
  assert.equal(connector.verify(req(`${HOOK}x`), { webhookToken: TOKEN }).ok, false, 'longer token');
  assert.throws(() => connector.verify(req(), {}), ConnectionMisconfigured);
  // TimeTap signs nothing and sends no timestamp, so there is no stale-delivery case to check.
  assert.equal(connector.descriptor.capabilities.signedWebhooks, false);
});

test('the documented webhook body is read for its id only: a change to confirm by reading it back', () => {
  const [c] = connector.parseWebhook(req());
  assert.equal(c.externalId, '10390617');
  assert.equal(c.needsFetch, true);
  assert.deepEqual(c.appointment, {}, 'nothing from the unsigned body is trusted');
  assert.equal(connector.parseWebhook(req(HOOK, Buffer.from(JSON.stringify(record))))[0].externalId, '10390617', 'calendarId spelled as the API does');
  for (const bad of ['not json', '[]', '{"calendarid":"12; drop"}', '{"status":"OPEN"}']) {
    assert.throws(() => connector.parseWebhook(req(HOOK, Buffer.from(bad))), UnreadablePayload, bad);
  }
});

test('a fetched appointment parses in the staff member\'s zone; statuses, end from visitMinutes, missing zone', () => {
  const [c] = parseRecord(record, new Date('2026-02-03T10:00:00Z'));
  assert.equal(c.kind, 'upsert');
  assert.equal(c.occurredAt, '2026-02-03T10:00:00Z');
  assert.deepEqual(c.appointment, {
    start: '2026-02-17T13:00:00Z', end: '2026-02-17T13:45:00Z', timeZone: 'America/New_York', status: 'booked',
    practitionerRef: '42441', practitionerEmail: 'djones2@marshallcollege.edu', serviceRef: '96439', locationRef: '29945',
    patient: { name: 'Jon Snow', email: 'jsnow@castleblack.mil', phone: '+12505550143' },
  });
  assert.equal(parseRecord({ ...record, status: 'CANCELLED' })[0].kind, 'cancel');
  assert.equal(parseRecord({ ...record, status: 'NO_SHOW' })[0].kind, 'no_show');
  assert.equal(parseRecord({ ...record, status: 'COMPLETED' })[0].appointment.status, 'completed');
  assert.throws(() => parseRecord({ ...record, status: 'ARCHIVED' }), UnreadablePayload);
  const { endTime, endDate, ...noEnd } = record;
  assert.equal(parseRecord(noEnd)[0].appointment.end, '2026-02-17T13:45:00Z', 'start + reason.visitMinutes');
  const noZone = { ...record, staff: { professionalId: 42441 } };
  assert.throws(() => parseRecord(noZone), UnreadablePayload);
  assert.equal(parseRecord(noZone, new Date(), 'Europe/Berlin')[0].appointment.start, '2026-02-17T07:00:00Z', 'config.timeZone fallback');
  assert.throws(() => parseRecord({ ...record, startTime: 875 }), UnreadablePayload);
  // Summer time, and 2400 as the end of the day.
  assert.equal(timetapInstant('2026-07-01', 930, 'America/New_York', 'start'), '2026-07-01T13:30:00Z');
  assert.equal(timetapInstant('2026-07-01', 2400, 'America/New_York', 'end'), '2026-07-02T04:00:00Z');
});

test('the session signature is the MD5 hex of API key + private key', () => {
  assert.equal(sessionSignature('20398', 'f3c9d2a1b0e84c7d6a5b4e3f2a1c0d9e'), 'c19669e74725e463228b529b79f919bb');
});

// ---------------------------------------------------------------- against the fake API and the engine

let fake: FakeTimeTap;
let hub: Hub;
const dir = tempDir();
const day = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);
const at = (d: string, hhmm: string) => new Date(`${d}T${hhmm}:00-05:00`).toISOString().replace('.000Z', 'Z');
const D = day(10);
let booking = appointmentOf({ calendarId: 7001, start: at(D, '09:00'), end: at(D, '09:45'), timeZone: 'America/Bogota', patient: { name: 'Nora Bellamy', email: 'nora@example.com' } });
const ctx = (): ConnectionContext => ({
  connectionId: 'direct', config: {}, secrets: { apiKey: fake.apiKey, privateKey: fake.privateKey, webhookToken: TOKEN },
  baseUrl: fake.url, fetch, now: () => new Date(),
});

before(async () => {
  fake = await startFakeTimeTap();
  fake.put(booking);
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/Bogota }
locations: [{ id: centro, name: Centro }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [centro] }]
connections:
  - id: timetap
    platform: timetap
    baseUrl: ${fake.url}
    secrets: { apiKey: { env: TK }, privateKey: { env: TP }, webhookToken: { env: TW } }
    refs: { practitioners: { "42441": reyes } }
`, { dataDir: dir.dir, env: { TK: fake.apiKey, TP: fake.privateKey, TW: TOKEN } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const deliver = (body = webhookBodyOf(booking), url = HOOK) => ingestWebhook(hub, 'timetap', { rawBody: body, headers: { 'content-type': 'application/json' }, url });
const ours = async () => (await listAppointments(hub.store.db, {})).find((a) => a.origin.externalId === '7001')!;

test('through the engine: a delivery is read back, then applied; resends change nothing; edits keep the id; a deletion cancels', async () => {
  assert.equal((await deliver(webhookBodyOf(booking), HOOK.replace(TOKEN, 'guess'))).status, 401);
  const r = await deliver();
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'fetch_queued');
  await drain(hub);
  let a = await ours();
  assert.equal(a.start, at(D, '09:00'));
  assert.equal(a.end, at(D, '09:45'));
  assert.equal(a.timeZone, 'America/Bogota');
  assert.equal(a.practitionerId, 'reyes');
  assert.equal(a.patient.name, 'Nora Bellamy');
  await deliver();
  await drain(hub);
  assert.equal((await ours()).revision, 1, 'the same state read again is a duplicate');

  booking = appointmentOf({ ...booking, calendarId: 7001, start: at(D, '11:00'), end: at(D, '11:45'), timeZone: 'America/Bogota', patient: { name: 'Nora Bellamy', email: 'nora@example.com' } });
  fake.put(booking);
  // A late delivery that still shows the old time: what is applied is what TimeTap holds now.
  await deliver(webhookBodyOf(appointmentOf({ calendarId: 7001, start: at(D, '09:00'), end: at(D, '09:45'), timeZone: 'America/Bogota', patient: { name: 'Nora Bellamy' } })));
  await drain(hub);
  a = await ours();
  assert.equal(a.start, at(D, '11:00'));
  assert.equal((await listAppointments(hub.store.db, {})).length, 1);

  fake.expireSessions();
  fake.remove(7001);
  await deliver();
  await drain(hub);
  assert.equal((await ours()).status, 'cancelled', 'read back as gone: cancelled');
  assert.deepEqual(fake.violations, []);
});

test('a poll pages through the report and applies what the webhooks missed; polling again changes nothing', async () => {
  for (let i = 0; i < 30; i++) {
    const start = at(day(20 + (i % 5)), `${String(8 + (i % 9)).padStart(2, '0')}:00`);
    fake.put(appointmentOf({ calendarId: 8000 + i, start, end: new Date(Date.parse(start) + 30 * 60_000).toISOString(), timeZone: 'America/Bogota', patient: { name: `Missed Webhook ${i}` } }));
  }
  let r = await pollConnection(hub, 'timetap');
  assert.equal(r.listed, 30);
  assert.equal(r.outcomes.created, 30);
  const pages = fake.requests.filter((q) => q.path === '/appointmentList/report').map((q) => q.query.pageNumber);
  assert.deepEqual(pages, ['1', '2']);
  r = await pollConnection(hub, 'timetap');
  assert.deepEqual(r.outcomes, { duplicate: 30 });
  assert.deepEqual(fake.violations, []);
});

test('write-back: a staff cancellation reaches TimeTap without e-mails; a staff move is marked as diverging', async () => {
  const moved = (await listAppointments(hub.store.db, {})).find((a) => a.origin.externalId === '8000')!;
  const later = (t: string) => new Date(Date.parse(t) + 30 * 86_400_000).toISOString();
  await staffReschedule(hub, moved.id, { start: later(moved.start), end: later(moved.end) }, 'staff:test');
  await drain(hub);
  assert.match((await listAppointments(hub.store.db, {})).find((a) => a.id === moved.id)!.diverged ?? '', /TimeTap cannot move a booking/);

  const cancelled = (await listAppointments(hub.store.db, {})).find((a) => a.origin.externalId === '8001')!;
  await staffCancel(hub, cancelled.id, undefined, 'staff:test');
  await drain(hub);
  assert.equal(fake.get(8001)?.status, 'CANCELLED');
  assert.ok(fake.requests.some((q) => q.path === '/appointments/8001/cancel/false/false'));
  assert.deepEqual(fake.violations, []);
});

test('write-back outcomes: what TimeTap cannot do fails permanently; 429 is throttled; an expired session is renewed once', async () => {
  const base = { externalId: '8002', start: '2026-03-01T15:00:00Z', end: '2026-03-01T15:30:00Z', timeZone: 'America/Bogota' };
  for (const status of ['no_show', 'booked'] as const) {
    const r = await connector.writeBack!({ ...base, status }, ctx());
    assert.equal(r.ok ? 'ok' : r.failure.class, 'permanent', status);
  }
  fake.fail(1, 429, { 'retry-after': '7' });
  const throttled = await connector.writeBack!({ ...base, status: 'cancelled' }, ctx());
  assert.deepEqual(throttled.ok ? undefined : [throttled.failure.class, throttled.failure.retryAfterMs], ['throttled', 7000]);
  const tokensBefore = fake.requests.filter((q) => q.path === '/sessionToken').length;
  fake.expireSessions();
  assert.equal((await connector.writeBack!({ ...base, status: 'cancelled' }, ctx())).ok, true);
  assert.equal(fake.requests.filter((q) => q.path === '/sessionToken').length, tokensBefore + 1);
  assert.equal(fake.get(8002)?.status, 'CANCELLED');
  // Wrong credentials are an auth failure, never "the appointment is gone".
  await assert.rejects(connector.fetch!({ platform: 'timetap', externalId: '8003', kind: 'upsert', occurredAt: base.start, needsFetch: true, appointment: {} }, { ...ctx(), connectionId: 'other', secrets: { apiKey: fake.apiKey, privateKey: 'wrong' } }),
    (e: unknown) => e instanceof ConnectorError && e.failure.class === 'auth');
  assert.deepEqual(fake.violations, []);
});
