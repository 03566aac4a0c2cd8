// Microsoft Graph target against the fake, which checks every request against the official OpenAPI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connector, eventBody, PROP_APPOINTMENT } from '../../src/connectors/targets/microsoft-graph/index.ts';
import type { ConnectionContext, TargetClient, TargetEvent } from '../../src/connectors/types.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';

let m: FakeGraph;
before(async () => {
  m = await startFakeGraph({ latencyMs: 15 });
});
after(() => m.close());

function client(mode: 'delegated' | 'application', over: Record<string, string> = {}, config: Record<string, unknown> = {}): TargetClient {
  const ctx: ConnectionContext = {
    connectionId: `graph-${mode}-${Object.values(over).join()}-${JSON.stringify(config)}`, config: { mode, tokenUrl: m.tokenUrl, ...config },
    secrets: { clientId: m.credentials.clientId, ...(mode === 'application' ? { clientSecret: m.credentials.clientSecret } : { refreshToken: m.credentials.refreshToken }), ...over },
    baseUrl: m.url, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {},
  };
  return connector.client!(ctx);
}

const ev = (over: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: '4c6e91aa-2f0b-4e55-9d3a-8b71c0e2a914', revision: 1, title: 'M. K. · Naturopathy', description: 'Naturopathy consult.',
  location: 'Cedar Street', start: '2027-03-11T21:00:00Z', end: '2027-03-11T22:00:00Z', timeZone: 'America/Denver', status: 'booked', ...over,
});
/** The POST body our connector sends for an appointment (without its transactionId). */
const eventBodyFor = (appointmentId: string) => eventBody(ev({ appointmentId }));
const ours = (mailbox: string, id: string) => m.events(mailbox).filter((e) => e.singleValueExtendedProperties?.some((p: { id: string; value: string }) => p.id === PROP_APPOINTMENT && p.value === id));

test('delegated: create, move and delete one event in /me, with wall time + IANA zone and no attendees', async () => {
  const c = client('delegated');
  const r = await c.upsert(ev(), undefined);
  assert.ok(r.ok, JSON.stringify(r));
  let [e] = ours('me', ev().appointmentId);
  assert.deepEqual(e.start, { dateTime: '2027-03-11T14:00:00', timeZone: 'America/Denver' });
  assert.equal(e.transactionId, `mrd-${ev().appointmentId}-r0`);
  assert.deepEqual(e.attendees, []);
  assert.equal(e.sensitivity, 'private');
  const moved = await c.upsert(ev({ revision: 2, start: '2027-03-12T21:00:00Z', end: '2027-03-12T22:00:00Z' }), r.value);
  assert.ok(moved.ok);
  [e] = ours('me', ev().appointmentId);
  assert.equal(e.start.dateTime, '2027-03-12T14:00:00');
  assert.equal(ours('me', ev().appointmentId).length, 1);
  assert.ok((await c.remove(moved.value, ev().appointmentId)).ok);
  assert.ok((await c.remove(moved.value, ev().appointmentId)).ok, '404 on delete is done');
  assert.equal(ours('me', ev().appointmentId).length, 0);
  assert.deepEqual(m.violations, []);
});

test('application: one connection writes each practitioner\'s mailbox with client credentials', async () => {
  const c = client('application');
  const a = await c.upsert(ev({ appointmentId: '11111111-2222-4333-8444-000000000001', calendarId: 'okafor@clinic.example' }), undefined);
  const b = await c.upsert(ev({ appointmentId: '11111111-2222-4333-8444-000000000002', calendarId: 'nakamura@clinic.example' }), undefined);
  assert.ok(a.ok && b.ok);
  assert.equal(ours('okafor@clinic.example', '11111111-2222-4333-8444-000000000001').length, 1);
  assert.equal(ours('nakamura@clinic.example', '11111111-2222-4333-8444-000000000002').length, 1);
  assert.ok(m.tokenRequests.some((t) => t.grant === 'client_credentials'));
  const none = await c.upsert(ev({ appointmentId: '11111111-2222-4333-8444-000000000003' }), undefined);
  assert.equal(!none.ok && none.failure.class, 'permanent', 'application mode needs a mailbox');
  assert.deepEqual(m.violations, []);
});

/** A create Graph carries out while its answer errs: we hear a transient failure. Returns the client. */
async function lostCreate(id: string) {
  const c = client('delegated');
  m.failAfterCreate(1);
  const first = await c.upsert(ev({ appointmentId: id }), undefined);
  assert.equal(!first.ok && first.failure.class, 'transient');
  return c;
}

test('a create that errs after succeeding is found again, never duplicated', async () => {
  const id = '22222222-2222-4333-8444-000000000001';
  const c = await lostCreate(id);
  const retry = await c.upsert(ev({ appointmentId: id, revision: 2 }), undefined);
  assert.ok(retry.ok, JSON.stringify(retry));
  assert.equal(ours('me', id).length, 1);
});

test('a create whose answer was lost is found by our property and removed when the booking must not exist', async () => {
  const id = '22222222-2222-4333-8444-000000000009';
  const c = await lostCreate(id);
  assert.equal(ours('me', id).length, 1, 'Graph made it though we never heard');
  assert.deepEqual(await c.removeUnrecorded!(id, undefined, 0), { ok: true, value: true });
  assert.equal(ours('me', id).length, 0);
  assert.deepEqual(await c.removeUnrecorded!(id, undefined, 0), { ok: true, value: false }, 'nothing left to remove');
  assert.deepEqual(m.violations, []);
});

test('an event deleted by hand is created again on the next update; a hand edit does not block ours', async () => {
  const c = client('delegated');
  const id = '33333333-2222-4333-8444-000000000001';
  const r = await c.upsert(ev({ appointmentId: id }), undefined);
  assert.ok(r.ok);
  m.deleteBehindOurBack('me', r.value.remoteId);
  const again = await c.upsert(ev({ appointmentId: id, revision: 2 }), r.value);
  assert.ok(again.ok, JSON.stringify(again));
  assert.equal(ours('me', id).length, 1);
  const stale = { ...again.value, etag: 'W/"0"' };
  const over = await c.upsert(ev({ appointmentId: id, revision: 3, title: 'ours wins' }), stale);
  assert.ok(over.ok, JSON.stringify(over));
  assert.equal(ours('me', id)[0].subject, 'ours wins');
});

test('429 is throttled with Retry-After; never more than 4 requests in flight per mailbox', async () => {
  const c = client('application');
  m.fail(1, 429, { 'retry-after': '12' });
  const r = await c.upsert(ev({ appointmentId: '44444444-2222-4333-8444-000000000000', calendarId: 'busy@clinic.example' }), undefined);
  assert.equal(!r.ok && r.failure.class, 'throttled');
  assert.equal(!r.ok && r.failure.retryAfterMs, 12_000);
  const many = await Promise.all(Array.from({ length: 12 }, (_, i) => c.upsert(ev({ appointmentId: `44444444-2222-4333-8444-0000000000${String(i + 10)}`, calendarId: 'busy@clinic.example' }), undefined)));
  assert.ok(many.every((x) => x.ok), JSON.stringify(many.find((x) => !x.ok)));
  assert.ok(m.maxInFlight('busy@clinic.example') <= 4, `in flight: ${m.maxInFlight('busy@clinic.example')}`);
  assert.ok(m.maxInFlight('busy@clinic.example') >= 2, 'requests do run in parallel');
});

test('a revoked refresh token is an auth failure', async () => {
  const r = await client('delegated', { refreshToken: 'revoked' }).upsert(ev({ appointmentId: '55555555-2222-4333-8444-000000000000' }), undefined);
  assert.equal(!r.ok && r.failure.class, 'auth');
});

test('busy times: the mailbox\'s own events in the window, not ours, not free', async () => {
  const c = client('application');
  const mbx = 'free-busy@clinic.example';
  assert.ok((await c.upsert(ev({ appointmentId: '66666666-2222-4333-8444-000000000001', calendarId: mbx, start: '2027-05-03T09:00:00Z', end: '2027-05-03T10:00:00Z' }), undefined)).ok);
  m.addTheirs(mbx, { subject: 'Dentist', start: { dateTime: '2027-05-03T11:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2027-05-03T12:00:00.0000000', timeZone: 'UTC' } });
  m.addTheirs(mbx, { subject: 'Focus', showAs: 'free', start: { dateTime: '2027-05-03T13:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2027-05-03T14:00:00.0000000', timeZone: 'UTC' } });
  m.addTheirs(mbx, { subject: 'Next month', start: { dateTime: '2027-06-03T13:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2027-06-03T14:00:00.0000000', timeZone: 'UTC' } });
  const r = await c.busy!({ from: new Date('2027-05-01T00:00:00Z'), to: new Date('2027-05-10T00:00:00Z') }, mbx);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value, [{ start: '2027-05-03T11:00:00Z', end: '2027-05-03T12:00:00Z' }]);
  assert.deepEqual(m.violations, []);
});

test('delta: a first round (paged) gives a token; then only changes, deletions included; 410 starts again', async () => {
  const c = client('application');
  const mbx = 'delta@clinic.example';
  const a = await c.upsert(ev({ appointmentId: '77777777-2222-4333-8444-000000000001', calendarId: mbx }), undefined);
  const b = await c.upsert(ev({ appointmentId: '77777777-2222-4333-8444-000000000002', calendarId: mbx }), undefined);
  assert.ok(a.ok && b.ok);
  const first = await c.changes!(mbx, undefined);
  assert.ok(first.ok, JSON.stringify(first));
  assert.equal(first.value.full, true);
  assert.deepEqual(first.value.changed.sort(), [a.value.remoteId, b.value.remoteId].sort());
  const quiet = await c.changes!(mbx, first.value.token);
  assert.ok(quiet.ok);
  assert.deepEqual([quiet.value.full, quiet.value.changed], [false, []]);
  m.deleteBehindOurBack(mbx, a.value.remoteId);
  const after = await c.changes!(mbx, quiet.value.token);
  assert.ok(after.ok);
  assert.deepEqual(after.value.changed, [a.value.remoteId]);
  m.expireDeltaTokens();
  const again = await c.changes!(mbx, after.value.token);
  assert.ok(again.ok);
  assert.equal(again.value.full, true);
  assert.deepEqual(m.violations, []);
});

test('$batch: concurrent writes to one mailbox share round trips (≤ 20 per batch); off, each is its own', async () => {
  const run = async (mbx: string, config: Record<string, unknown>) => {
    const c = client('application', {}, config);
    const before = m.roundTrips;
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => c.upsert(ev({ appointmentId: `88888888-2222-4333-8444-${String(i).padStart(12, '0')}`, calendarId: mbx }), undefined)));
    assert.ok(rs.every((r) => r.ok), JSON.stringify(rs.find((r) => !r.ok)));
    assert.equal(m.events(mbx).length, 40);
    return m.roundTrips - before;
  };
  const batches = m.batches.length;
  const batched = await run('batch-on@clinic.example', {});
  const plain = await run('batch-off@clinic.example', { batch: false });
  assert.equal(plain, 80, 'lookup + create per event');
  assert.ok(batched <= 8, `batched round trips: ${batched}`);
  assert.ok(m.batches.slice(batches).every((n) => n <= 20));
  assert.deepEqual(m.violations, []);
});

test('$batch: a throttled inner request is throttled alone', async () => {
  const c = client('application');
  const mbx = 'batch-429@clinic.example';
  m.fail(1, 429, { 'retry-after': '9' });
  const rs = await Promise.all([1, 2, 3].map((i) => c.upsert(ev({ appointmentId: `99999999-2222-4333-8444-00000000000${i}`, calendarId: mbx }), undefined)));
  const throttled = rs.filter((r) => !r.ok);
  assert.equal(throttled.length, 1);
  assert.equal(!throttled[0].ok && throttled[0].failure.class, 'throttled');
  assert.equal(!throttled[0].ok && throttled[0].failure.retryAfterMs, 9000);
  assert.equal(m.events(mbx).length, 2);
});

// ------------------------------------------------------------ the fake as strict as Graph (issue 19, item 5)

/** An application token from the fake's identity endpoint, for raw requests. */
async function appToken(): Promise<string> {
  const r = await fetch(m.tokenUrl, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: m.credentials.clientId, client_secret: m.credentials.clientSecret, scope: 'https://graph.microsoft.com/.default' }),
  });
  return ((await r.json()) as { access_token: string }).access_token;
}
const raw = async (method: string, path: string, body?: unknown) => fetch(`${m.url}/v1.0${path}`, {
  method, body: body === undefined ? undefined : JSON.stringify(body),
  headers: { authorization: `Bearer ${await appToken()}`, prefer: 'IdType="ImmutableId"', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
});
const OTHER_PROP = 'String {0c6b6f4e-1d2a-4b3c-9e8f-7a6b5c4d3e2f} Name TheirBookingTool';

test('the fake: a 5th concurrent request to one mailbox is refused 429 ApplicationThrottled with Retry-After', async () => {
  const mbx = 'strict-429@clinic.example';
  const token = await appToken();
  const get = () => fetch(`${m.url}/v1.0/users/${mbx}/events`, { headers: { authorization: `Bearer ${token}`, prefer: 'IdType="ImmutableId"' } });
  const answers = await Promise.all(Array.from({ length: 6 }, get));
  const refused = answers.filter((r) => r.status === 429);
  assert.equal(answers.filter((r) => r.status === 200).length, 4, 'four are served at once (latency 15 ms each)');
  assert.equal(refused.length, 2);
  assert.equal(refused[0].headers.get('retry-after'), '1');
  assert.equal(((await refused[0].json()) as { error: { code: string } }).error.code, 'ApplicationThrottled');
  assert.equal(m.throttled(mbx), 2);
  assert.equal((await get()).status, 200, 'served again once the others are done');
});

test('the fake: a lookup filter must name the property id; the id and value are matched as Graph matches them; properties only as expanded', async () => {
  const mbx = 'strict-filter@clinic.example';
  const value = 'a0b1c2d3-0000-4000-8000-000000000001';
  const mine = await (await raw('POST', `/users/${mbx}/calendar/events`, { ...eventBodyFor(value), transactionId: 'strict-f1' })).json() as { id: string; singleValueExtendedProperties?: unknown };
  assert.equal(mine.singleValueExtendedProperties, undefined, 'a create answers without extended properties unless expanded');
  const theirs = m.addTheirs(mbx, { subject: 'Theirs', start: { dateTime: '2027-03-11T09:00:00', timeZone: 'UTC' }, end: { dateTime: '2027-03-11T10:00:00', timeZone: 'UTC' }, singleValueExtendedProperties: [{ id: OTHER_PROP, value }] });
  const find = async (filter: string) => {
    const r = await raw('GET', `/users/${mbx}/events?$filter=${encodeURIComponent(filter)}&$select=id,subject`);
    return { status: r.status, ids: r.status === 200 ? ((await r.json()) as { value: { id: string }[] }).value.map((e) => e.id) : [] };
  };
  const violations = m.violations.length;
  assert.deepEqual(await find(`singleValueExtendedProperties/Any(ep: ep/id eq '${PROP_APPOINTMENT}' and ep/value eq '${value.toUpperCase()}')`), { status: 200, ids: [mine.id] }, 'ours only; the value case-insensitively');
  assert.deepEqual(await find(`singleValueExtendedProperties/Any(ep: ep/id eq '${OTHER_PROP}' and ep/value eq '${value}')`), { status: 200, ids: [theirs] });
  assert.deepEqual(await find(`singleValueExtendedProperties/Any(ep: ep/id eq '${PROP_APPOINTMENT.replace('MeridianAppointmentId', 'meridianappointmentid')}' and ep/value eq '${value}')`), { status: 200, ids: [] }, 'the name is case-sensitive');
  assert.equal((await find(`singleValueExtendedProperties/Any(ep: ep/value eq '${value}')`)).status, 400, 'a value without the property id is refused');
  assert.equal((await find(`singleValueExtendedProperties/Any(ep: ep/id eq 'MeridianAppointmentId' and ep/value eq '${value}')`)).status, 400, 'a bare name is no property id');
  assert.equal(m.violations.length - violations, 2, m.violations.slice(violations).join('\n'));
  m.violations.length = violations;
  const plain = (await (await raw('GET', `/users/${mbx}/events/${mine.id}`)).json()) as Record<string, unknown>;
  assert.equal(plain.singleValueExtendedProperties, undefined);
  const expanded = (await (await raw('GET', `/users/${mbx}/events/${mine.id}?$expand=${encodeURIComponent(`singleValueExtendedProperties($filter=id eq '${PROP_APPOINTMENT}')`)}`)).json()) as Record<string, unknown>;
  assert.deepEqual(expanded.singleValueExtendedProperties, [{ id: PROP_APPOINTMENT, value }], 'only the property named, not MeridianRevision');
});

test('the fake: a transactionId is recognised for a while, then forgotten (a second POST makes a second event)', async () => {
  const mbx = 'strict-txn@clinic.example';
  const body = { ...eventBodyFor('a0b1c2d3-0000-4000-8000-000000000002'), transactionId: 'strict-t1' };
  const a = (await (await raw('POST', `/users/${mbx}/calendar/events`, body)).json()) as { id: string };
  const b = (await (await raw('POST', `/users/${mbx}/calendar/events`, body)).json()) as { id: string };
  assert.equal(b.id, a.id, 'a retried POST within the memory is the same event');
  m.forgetTransactionIds();
  const c = (await (await raw('POST', `/users/${mbx}/calendar/events`, body)).json()) as { id: string };
  assert.notEqual(c.id, a.id);
  assert.equal(m.events(mbx).length, 2);
  const short = await startFakeGraph({ transactionIdMemoryMs: 30 });
  try {
    const token = await fetch(short.tokenUrl, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: short.credentials.clientId, client_secret: short.credentials.clientSecret, scope: 'https://graph.microsoft.com/.default' }) }).then((r) => r.json() as Promise<{ access_token: string }>);
    const post = () => fetch(`${short.url}/v1.0/users/${mbx}/calendar/events`, { method: 'POST', headers: { authorization: `Bearer ${token.access_token}`, prefer: 'IdType="ImmutableId"', 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await post();
    await new Promise((r) => setTimeout(r, 60));
    await post();
    assert.equal(short.events(mbx).length, 2, 'past transactionIdMemoryMs the id is forgotten by itself');
  } finally {
    await short.close();
  }
});

test('a lost create retried after Graph forgot its transactionId is found by our property id: one event, never two', async () => {
  const id = '22222222-2222-4333-8444-000000000077';
  const c = await lostCreate(id);
  m.forgetTransactionIds();
  const retry = await c.upsert(ev({ appointmentId: id, revision: 2 }), undefined);
  assert.ok(retry.ok, JSON.stringify(retry));
  assert.equal(ours('me', id).length, 1);
  assert.equal(ours('me', id)[0].id, retry.value.remoteId, 'the retry updated the event Graph made, by its id');
  assert.equal(ours('me', id)[0].singleValueExtendedProperties.find((p: { id: string }) => p.id !== PROP_APPOINTMENT).value, '2', 'and wrote the new revision into it');
  assert.deepEqual(m.violations, []);
});

test('removeUnrecorded finds only our property: an event of theirs holding the same value under another property id is left alone', async () => {
  const id = '22222222-2222-4333-8444-000000000078';
  const c = client('delegated');
  const theirs = m.addTheirs('me', { subject: 'Booked elsewhere', start: { dateTime: '2027-03-11T09:00:00', timeZone: 'UTC' }, end: { dateTime: '2027-03-11T10:00:00', timeZone: 'UTC' }, singleValueExtendedProperties: [{ id: OTHER_PROP, value: id }] });
  assert.deepEqual(await c.removeUnrecorded!(id, undefined, 0), { ok: true, value: false });
  assert.ok(m.events('me').some((e) => e.id === theirs), 'theirs is still there');
  const made = await c.upsert(ev({ appointmentId: id }), undefined);
  assert.ok(made.ok, JSON.stringify(made));
  assert.notEqual(made.value.remoteId, theirs, 'the lookup before a create did not take theirs for ours');
  assert.deepEqual(await c.removeUnrecorded!(id, undefined, 0), { ok: true, value: true });
  assert.deepEqual([ours('me', id).length, m.events('me').some((e) => e.id === theirs)], [0, true]);
  assert.deepEqual(m.violations, []);
});

test('many concurrent writes to one mailbox, batched: never more than 4 requests in Graph at once, none refused', async () => {
  const mbx = 'strict-many@clinic.example';
  const c = client('application');
  const rs = await Promise.all(Array.from({ length: 70 }, (_, i) => c.upsert(ev({ appointmentId: `aaaaaaaa-2222-4333-8444-${String(i).padStart(12, '0')}`, calendarId: mbx }), undefined)));
  assert.ok(rs.every((r) => r.ok), JSON.stringify(rs.find((r) => !r.ok)));
  assert.equal(m.events(mbx).length, 70);
  assert.equal(m.throttled(mbx), 0, 'no request was refused for mailbox concurrency');
  assert.ok(m.maxInFlight(mbx) <= 4, `in flight: ${m.maxInFlight(mbx)}`);
  assert.equal(m.maxInFlight(mbx), 4, 'and the four places are used');
  assert.deepEqual(m.violations, []);
});

test('a 429 for mailbox concurrency (another node on the same mailbox) is throttled with Graph\'s Retry-After, and the retry succeeds', async () => {
  const mbx = 'strict-shared@clinic.example';
  // Another Meridian node (another gate) keeps the mailbox busy: four slow reads of its own.
  const slow = await startFakeGraph({ latencyMs: 200, throttleRetryAfterSeconds: 3 });
  try {
    const ctx = (connectionId: string): ConnectionContext => ({
      connectionId, config: { mode: 'application', tokenUrl: slow.tokenUrl, batch: false },
      secrets: { clientId: slow.credentials.clientId, clientSecret: slow.credentials.clientSecret }, baseUrl: slow.url, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {},
    });
    const other = connector.client!(ctx('node-b'));
    const ours1 = connector.client!(ctx('node-a'));
    await Promise.all([ours1.calendars!(), other.calendars!()]); // tokens first: the write below starts while the other node's reads are in flight
    const busy = Array.from({ length: 4 }, () => other.events!({ from: new Date('2027-03-01T00:00:00Z'), to: new Date('2027-03-02T00:00:00Z') }, mbx));
    await new Promise((r) => setTimeout(r, 50));
    const r = await ours1.upsert(ev({ appointmentId: 'bbbbbbbb-2222-4333-8444-000000000001', calendarId: mbx }), undefined);
    assert.equal(!r.ok && r.failure.class, 'throttled');
    assert.equal(!r.ok && r.failure.retryAfterMs, 3000, 'Graph\'s Retry-After, for the worker to wait (throttling spends no attempt)');
    await Promise.all(busy);
    const again = await ours1.upsert(ev({ appointmentId: 'bbbbbbbb-2222-4333-8444-000000000001', calendarId: mbx }), undefined);
    assert.ok(again.ok, JSON.stringify(again));
    assert.equal(slow.events(mbx).length, 1);
  } finally {
    await slow.close();
  }
});
