// Setmore contract tests from the sample, and the poll (refresh-token auth, DD-MM-YYYY dates, cursor paging,
// filtering by instant) against the fake API in test/fakes/setmore.ts, then through the engine on a temp hub.
// The sample (test/fixtures/samples/setmore/) is the documented list answer; see its README.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector, parseRecord, queryDates, setmoreDate } from '../../src/connectors/sources/setmore/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type ListWindow } from '../../src/connectors/types.ts';
import type { SourceChange } from '../../src/domain/types.ts';
import { getSource } from '../../src/connectors/registry.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { appointmentOf, startFakeSetmore, STAFF_KEY, type FakeSetmore } from '../fakes/setmore.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const sample = JSON.parse(readFileSync(new URL('../fixtures/samples/setmore/appointments-list-response.json', import.meta.url), 'utf8'));
const NOW = new Date('2026-02-20T12:00:00Z');

test('the sample list answer parses to the documented facts', () => {
  const [c, ...rest] = parseRecord(sample, NOW);
  assert.equal(rest.length, 0);
  assert.equal(c.externalId, 'a7c1e5f2-3b9d-4e6a-8c0f-1d2e3f4a5b6c');
  assert.equal(c.kind, 'upsert');
  assert.equal(c.needsFetch, false);
  assert.equal(c.appointment.status, 'booked');
  assert.equal(c.appointment.start, '2026-02-24T17:00:00Z');
  assert.equal(c.appointment.end, '2026-02-24T18:00:00Z');
  assert.equal(c.appointment.practitionerRef, 'r4f2a8c6e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9-d');
  assert.equal(c.appointment.serviceRef, 's2b4d6f8a0c1e3f5a7b9d1f3a5c7e9b1d3f5a7c9');
  assert.deepEqual(c.appointment.patient, { name: 'Owen Fairweather', email: 'owen.fairweather@example.com' });
  assert.equal(c.occurredAt, '2026-02-20T12:00:00Z', 'no stamp at Setmore: the read time');
  // The same appointment as a bare object or a list parses the same.
  assert.deepEqual(parseRecord(sample.data.appointments[0], NOW), [c]);
});

test('minutes-only UTC times, the DST edge, a missing end_time and unreadable records', () => {
  const a = sample.data.appointments[0];
  // 07:30Z on 8 March 2026 is 03:30 EDT, half an hour after New York's clocks jumped: UTC times need no zone.
  const [dst] = parseRecord({ ...a, start_time: '2026-03-08T07:30Z', end_time: '2026-03-08T08:30Z' });
  assert.deepEqual([dst.appointment.start, dst.appointment.end], ['2026-03-08T07:30:00Z', '2026-03-08T08:30:00Z']);
  const { end_time: _, ...noEnd } = a;
  assert.equal(parseRecord({ ...noEnd, duration: 45 })[0].appointment.end, '2026-02-24T17:45:00Z');
  assert.throws(() => parseRecord({ ...a, key: undefined }), UnreadablePayload);
  assert.throws(() => parseRecord({ ...a, start_time: 'tomorrow' }), UnreadablePayload);
  assert.throws(() => parseRecord({ ...noEnd, duration: 0 }), UnreadablePayload);
  try {
    parseRecord({ ...a, start_time: 'Owen Fairweather' });
  } catch (e) {
    assert.ok(!(e as Error).message.includes('Owen'), 'no record content in the error');
  }
});

test('query dates are DD-MM-YYYY: the window\'s UTC dates widened by a day each side', () => {
  assert.equal(setmoreDate(new Date('2026-03-08T07:30:00Z')), '08-03-2026');
  assert.equal(setmoreDate(new Date('2026-12-31T23:59:59Z')), '31-12-2026');
  assert.deepEqual(queryDates({ from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-08T07:30:00Z') }), { startDate: '28-02-2026', endDate: '09-03-2026' });
  assert.deepEqual(queryDates({ from: new Date('2026-12-31T22:00:00Z'), to: new Date('2027-01-01T01:00:00Z') }), { startDate: '30-12-2026', endDate: '02-01-2027' });
});

test('Setmore is polled: no webhooks, complete listings, no write-back', () => {
  assert.throws(() => connector.verify({ rawBody: Buffer.from('{}'), headers: {}, url: '', now: NOW }, {}), (e: unknown) => e instanceof ConnectionMisconfigured && /polled/.test((e as Error).message));
  assert.throws(() => connector.parseWebhook({ rawBody: Buffer.from('{}'), headers: {}, url: '', now: NOW }), UnreadablePayload);
  assert.deepEqual(connector.descriptor.capabilities, { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false });
  assert.equal(connector.writeBack, undefined);
  assert.equal(connector.fetch, undefined);
});

// ---------------------------------------------------------------- against the fake

let fake: FakeSetmore;

let connections = 0;
const ctxFor = (over: Partial<ConnectionContext> = {}): ConnectionContext => ({
  connectionId: `setmore-${++connections}`, config: {}, secrets: { refreshToken: fake.refreshToken }, baseUrl: fake.url, fetch, now: () => NOW, ...over,
});
const collect = async (w: ListWindow, ctx: ConnectionContext) => {
  const out: SourceChange[] = [];
  for await (const c of connector.list!(w, ctx)) out.push(c);
  return out;
};
const WINDOW: ListWindow = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-10T00:00:00Z') };
const appt = (key: string, start: string, minutes = 60, staffKey?: string) =>
  appointmentOf({ key, start, end: new Date(Date.parse(start) + minutes * 60_000).toISOString(), patient: { name: `Patient ${key}`, email: `${key}@example.net` }, staffKey });
const listCalls = () => fake.requests.filter((r) => r.path === '/bookingapi/appointments');

test('a listing pages by cursor, asks in DD-MM-YYYY with customer details, and keeps only the window\'s instants', async () => {
  fake.requests.length = 0;
  for (const [k, s] of [['m1', '2026-03-01T09:00:00Z'], ['m2', '2026-03-03T15:00:00Z'], ['m3', '2026-03-08T07:30:00Z'], ['m4', '2026-03-09T23:00:00Z'], ['m5', '2026-03-05T10:00:00Z']] as const) fake.put(appt(k, s));
  // On the widened days: asked for, listed by Setmore, but outside the window's instants.
  fake.put(appt('edge-before', '2026-02-28T23:00:00Z'));
  fake.put(appt('edge-after', '2026-03-10T00:30:00Z'));
  const got = await collect(WINDOW, ctxFor());
  assert.deepEqual(got.map((c) => c.externalId).sort(), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.equal(got.find((c) => c.externalId === 'm3')?.appointment.start, '2026-03-08T07:30:00Z');
  const calls = listCalls();
  assert.equal(calls.length, 5, '7 appointments in pages of 2, then an empty page');
  assert.ok(calls.every((r) => r.query.startDate === '28-02-2026' && r.query.endDate === '11-03-2026' && r.query.customerDetails === 'true' && r.query.staff_key === undefined));
  assert.equal(calls[0].query.cursor, undefined);
  assert.ok(calls.slice(1).every((r) => r.query.cursor), 'every later page asks with the cursor it was given');
  assert.deepEqual(fake.violations, []);
});

test('staff_key narrows the listing when configured', async () => {
  fake.put(appt('other-staff', '2026-03-04T10:00:00Z', 30, 'r-someone-else-d'));
  fake.requests.length = 0;
  const got = await collect(WINDOW, ctxFor({ config: { staffKey: STAFF_KEY } }));
  assert.ok(!got.some((c) => c.externalId === 'other-staff'));
  assert.ok(listCalls().every((r) => r.query.staff_key === STAFF_KEY));
  assert.ok((await collect(WINDOW, ctxFor())).some((c) => c.externalId === 'other-staff'));
  fake.remove('other-staff');
});

test('the access token is minted once, reused, and minted again a minute before it expires', async () => {
  let now = NOW.getTime();
  const ctx = ctxFor({ now: () => new Date(now) });
  fake.expiresIn = 120;
  const before = fake.tokensIssued();
  await collect(WINDOW, ctx);
  await collect(WINDOW, ctx);
  assert.equal(fake.tokensIssued() - before, 1, 'one token for two polls of several pages');
  now += 61_000; // 59 s left: too close to expiry to start a poll with
  fake.requests.length = 0;
  await collect(WINDOW, ctx);
  assert.equal(fake.tokensIssued() - before, 2);
  assert.equal(fake.requests[0].path, '/o/oauth2/token', 'refreshed before the list call, not after a refusal');
  assert.equal(fake.requests[0].query.refreshToken, '[redacted]');
  fake.expiresIn = 3600;
});

test('a refused access token is re-minted once; a refused refresh token is an auth failure', async () => {
  const ctx = ctxFor();
  await collect(WINDOW, ctx);
  fake.expireTokens();
  fake.requests.length = 0;
  const got = await collect(WINDOW, ctx);
  assert.equal(got.length, 5);
  assert.deepEqual(fake.requests.slice(0, 3).map((r) => r.path), ['/bookingapi/appointments', '/o/oauth2/token', '/bookingapi/appointments']);
  await assert.rejects(collect(WINDOW, ctxFor({ secrets: { refreshToken: 'r1/revoked' } })), (e: unknown) => e instanceof ConnectorError && e.failure.class === 'auth');
  await assert.rejects(collect(WINDOW, ctxFor({ secrets: {} })), (e: unknown) => e instanceof ConnectorError && e.failure.class === 'auth');
  assert.deepEqual(fake.violations, []);
});

test('a 429 is a throttled failure carrying Retry-After; a cursor that repeats stops the poll', async () => {
  const ctx = ctxFor();
  await collect(WINDOW, ctx);
  fake.fail(1, 429, { 'retry-after': '7' });
  await assert.rejects(collect(WINDOW, ctx), (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 7000);
  const looping: typeof fetch = async (url) => new Response(JSON.stringify(String(url).includes('/o/oauth2/token')
    ? { response: true, data: { token: { access_token: 'a', expires_in: 3600 } } }
    : { response: true, data: { appointments: [sample.data.appointments[0]], cursor: 'same' } }), { headers: { 'content-type': 'application/json' } });
  await assert.rejects(collect({ from: new Date('2026-02-20T00:00:00Z'), to: new Date('2026-03-01T00:00:00Z') }, ctxFor({ fetch: looping })), /cursor repeats/);
});

// ---------------------------------------------------------------- through the engine

const registered = Boolean(getSource('setmore'));
const SKIP = registered ? false : 'setmore is not in src/connectors/registry.ts yet';
let hub: Hub;
const dir = tempDir();
before(async () => {
  fake = await startFakeSetmore();
  if (!registered) return;
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: main, name: Main }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [main] }]
connections:
  - id: setmore
    platform: setmore
    baseUrl: ${fake.url}
    secrets: { refreshToken: { env: SM_REFRESH } }
    refs: { practitioners: { "${STAFF_KEY}": reyes } }
`, { dataDir: dir.dir, env: { SM_REFRESH: fake.refreshToken }, clock: { now: () => new Date('2026-03-02T12:00:00Z') } });
});
after(async () => {
  await hub?.store.close();
  await fake.close();
  dir.cleanup();
});

test('a poll through the engine applies the listing; again changes nothing; an appointment no longer listed is cancelled', { skip: SKIP }, async () => {
  let r = await pollConnection(hub, 'setmore');
  assert.ok(r.listed >= 5, JSON.stringify(r));
  const all = await listAppointments(hub.store.db, {});
  const m3 = all.find((a) => a.origin.externalId === 'm3');
  assert.ok(m3);
  assert.equal(m3.start, '2026-03-08T07:30:00Z');
  assert.equal(m3.practitionerId, 'reyes');
  assert.equal(m3.patient.name, 'Patient m3');
  assert.equal(m3.status, 'booked');
  r = await pollConnection(hub, 'setmore');
  assert.deepEqual(Object.keys(r.outcomes), ['duplicate']);
  // Setmore marks no cancellation: an upcoming appointment that is no longer listed was cancelled.
  fake.remove('m5');
  r = await pollConnection(hub, 'setmore');
  assert.equal(r.outcomes.cancelled, 1, JSON.stringify(r));
  const after = await listAppointments(hub.store.db, {});
  assert.equal(after.find((a) => a.origin.externalId === 'm5')?.status, 'cancelled');
  assert.equal(after.find((a) => a.origin.externalId === 'm3')?.status, 'booked');
  assert.deepEqual(fake.violations, []);
});
