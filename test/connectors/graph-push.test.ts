// Microsoft Graph push (issue 18, connect.md §3.2): subscriptions made, renewed and deleted through the connector
// against the fake, which holds Graph's validation handshake and sends change and lifecycle notifications to a
// small receiver standing in for Meridian's /push route (it answers handshakes with the decoded token, notices
// with 202, and keeps every request so the connector's `push.parse` can read it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { connector } from '../../src/connectors/targets/microsoft-graph/index.ts';
import type { ConnectionContext, PushNotice, TargetClient, WatchRequest, WebhookRequest } from '../../src/connectors/types.ts';
import { MAX_SUBSCRIPTION_MINUTES, startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';

interface Received { req: WebhookRequest; method: string; path: string }

/** Meridian's push route in miniature; paths starting /encoded, /json, /slow, /fail misbehave on purpose. */
async function startReceiver() {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}${req.url}`;
      const r: WebhookRequest = { rawBody: Buffer.concat(chunks), headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), url, now: new Date() };
      const path = new URL(url).pathname;
      received.push({ req: r, method: req.method ?? '', path });
      const token = new URL(url).searchParams.get('validationToken');
      if (token !== null) {
        if (path.startsWith('/slow')) await new Promise((z) => setTimeout(z, 1_500));
        if (path.startsWith('/json')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ validationToken: token }));
        }
        const raw = /validationToken=([^&]*)/.exec(req.url ?? '')![1];
        // What Meridian's route does: answer what parse says.
        const answer = path.startsWith('/encoded') ? raw : (connector.push!.parse(r)[0] as { answer: string }).answer;
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(answer);
      }
      res.writeHead(path.startsWith('/fail') ? 500 : connector.push!.answerStatus ?? 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let m: FakeGraph;
let rx: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  m = await startFakeGraph({ allowHttpNotifications: true, validationTimeoutMs: 1_000, retryDelaysMs: [50, 100] });
  rx = await startReceiver();
});
after(async () => {
  await m.close();
  await rx.close();
});

function client(fake: FakeGraph, mode: 'delegated' | 'application'): TargetClient {
  const ctx: ConnectionContext = {
    connectionId: `graph-push-${mode}`, config: { mode, tokenUrl: fake.tokenUrl },
    secrets: { clientId: fake.credentials.clientId, ...(mode === 'application' ? { clientSecret: fake.credentials.clientSecret } : { refreshToken: fake.credentials.refreshToken }) },
    baseUrl: fake.url, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {},
  };
  return connector.client!(ctx);
}

const DAY = 86_400_000;
let n = 0;
const watchReq = (over: Partial<WatchRequest> = {}): WatchRequest => {
  n++;
  return {
    id: `ch-${n}`, address: `${rx.url}/push/graph/conn-${n}`, lifecycleAddress: `${rx.url}/push/graph/conn-${n}?lifecycle=1`,
    token: `tok-${n}-${'x'.repeat(40)}`, expiration: new Date(Date.now() + 30 * DAY), ...over,
  };
};
const subOf = (id: string) => m.subscriptions().find((s) => s.id === id);
/** Notices parsed from what the receiver got at `path` since index `from`. */
const noticesAt = (path: string, from = 0): PushNotice[] => rx.received.slice(from).filter((r) => r.path === path && r.method === 'POST').flatMap((r) => connector.push!.parse(r.req));
const ev = { subject: 'Lunch', start: { dateTime: '2027-03-11T12:00:00', timeZone: 'UTC' }, end: { dateTime: '2027-03-11T13:00:00', timeZone: 'UTC' } };

test('delegated: watching the default calendar and another one makes subscriptions with the right resource, URLs, clientState and a capped expiry', async () => {
  const c = client(m, 'delegated');
  const req = watchReq();
  const t0 = Date.now();
  const r = await c.watch!(undefined, req);
  assert.ok(r.ok, JSON.stringify(r));
  const s = subOf(r.value.id)!;
  assert.ok(s, 'the fake holds it');
  assert.equal(s.resource, '/me/events');
  assert.equal(s.changeType, 'created,updated,deleted');
  assert.equal(s.notificationUrl, req.address);
  assert.equal(s.lifecycleNotificationUrl, req.lifecycleAddress);
  assert.equal(s.clientState, req.token);
  // 30 days asked; Outlook events allow at most 10,080 minutes: asked a little below that.
  const exp = Date.parse(s.expirationDateTime);
  assert.ok(exp <= t0 + MAX_SUBSCRIPTION_MINUTES * 60_000 + 1_000 && exp > t0 + (MAX_SUBSCRIPTION_MINUTES - 60) * 60_000, s.expirationDateTime);
  assert.equal(r.value.expiration, new Date(exp).toISOString());
  // Both URLs went through the handshake, answered with the decoded token.
  const hs = m.handshakes.filter((h) => h.url === req.address || h.url === req.lifecycleAddress);
  assert.equal(hs.length, 2);
  assert.ok(hs.every((h) => h.ok && h.token.includes(' ') && h.body === h.token), JSON.stringify(hs));

  const other = await c.watch!('AAMkADTreatment-room=', watchReq({ lifecycleAddress: undefined }));
  assert.ok(other.ok, JSON.stringify(other));
  const s2 = subOf(other.value.id)!;
  assert.equal(s2.resource, '/me/calendars/AAMkADTreatment-room=/events');
  assert.equal(s2.lifecycleNotificationUrl, s2.notificationUrl, 'lifecycle notices to the same address when none is named apart');
  assert.deepEqual(m.violations, []);
});

test('application: subscriptions on a mailbox\'s default calendar and on another calendar of it; a shorter wish is kept', async () => {
  const c = client(m, 'application');
  const wanted = new Date(Date.now() + 2 * DAY);
  const a = await c.watch!('okafor@clinic.example', watchReq({ expiration: wanted }));
  assert.ok(a.ok, JSON.stringify(a));
  assert.equal(subOf(a.value.id)!.resource, '/users/okafor@clinic.example/events');
  assert.equal(a.value.expiration, wanted.toISOString());
  const cal = m.addCalendar('nakamura@clinic.example', { name: 'Room 2' });
  const b = await c.watch!(`nakamura@clinic.example/${cal.id}`, watchReq());
  assert.ok(b.ok, JSON.stringify(b));
  assert.equal(subOf(b.value.id)!.resource, `/users/nakamura@clinic.example/calendars/${cal.id}/events`);
  const none = await c.watch!(undefined, watchReq());
  assert.equal(!none.ok && none.failure.class, 'permanent', 'application mode needs a mailbox');
  assert.deepEqual(m.violations, []);
});

test('the handshake is required: an encoded echo, a JSON answer or a slow one refuses the subscription, classified', async () => {
  const c = client(m, 'delegated');
  const before = m.subscriptions().length;
  for (const bad of ['encoded', 'json', 'slow']) {
    const r = await c.watch!(undefined, watchReq({ address: `${rx.url}/${bad}/graph/conn`, lifecycleAddress: undefined }));
    assert.ok(!r.ok, bad);
    assert.equal(r.failure.class, 'permanent', bad);
    assert.equal(r.failure.status, 400, bad);
    assert.match(r.failure.message, /ValidationError/, bad);
    assert.match(r.failure.message, /validationToken/, bad);
  }
  assert.equal(m.subscriptions().length, before, 'nothing was created');
  const problems = m.handshakes.filter((h) => !h.ok).map((h) => h.problem);
  assert.ok(problems.some((p) => /URL-encoded/.test(p!)) && problems.some((p) => /not text\/plain/.test(p!)) && problems.some((p) => /within 1000 ms/.test(p!)), JSON.stringify(problems));
  // A good notification URL with a bad lifecycle URL fails too: both are validated.
  const mixed = await c.watch!(undefined, watchReq({ lifecycleAddress: `${rx.url}/encoded/lifecycle` }));
  assert.equal(!mixed.ok && mixed.failure.class, 'permanent');
  assert.equal(m.subscriptions().length, before);
});

test('refusals before the handshake: plain http without the fake\'s allowance, an over-long token; throttling is classified', async () => {
  const strict = await startFakeGraph();
  try {
    const r = await client(strict, 'delegated').watch!(undefined, watchReq());
    assert.equal(!r.ok && r.failure.class, 'permanent');
    assert.equal(strict.handshakes.length, 0);
  } finally {
    await strict.close();
  }
  const c = client(m, 'delegated');
  const long = await c.watch!(undefined, watchReq({ token: 'k'.repeat(129) }));
  assert.equal(!long.ok && long.failure.class, 'permanent');
  m.fail(1, 429, { 'retry-after': '3' });
  const busy = await c.watch!(undefined, watchReq());
  assert.ok(!busy.ok);
  assert.equal(busy.failure.class, 'throttled');
  assert.equal(busy.failure.retryAfterMs, 3_000);
});

test('an event edited, added or deleted behind our back, or written through the API, notifies: parse reads `changed` with the subscription id and clientState', async () => {
  const c = client(m, 'application');
  const mailbox = 'changes@clinic.example';
  const req = watchReq({ lifecycleAddress: undefined });
  const w = await c.watch!(mailbox, req);
  assert.ok(w.ok, JSON.stringify(w));
  const quiet = await c.watch!(`${mailbox}/${m.addCalendar(mailbox, { name: 'Other' }).id}`, watchReq({ lifecycleAddress: undefined }));
  assert.ok(quiet.ok);
  const path = new URL(req.address).pathname;
  const from = rx.received.length;

  const id = m.addTheirs(mailbox, ev);
  await m.settle();
  m.editBehindOurBack(mailbox, id, { subject: 'Lunch moved' });
  await m.settle();
  const written = await c.upsert({ appointmentId: '7a0d2c44-5b1e-4f3a-9c8d-0e6f1a2b3c4d', revision: 1, calendarId: mailbox, title: 'A. B.', description: '', start: '2027-03-12T10:00:00Z', end: '2027-03-12T11:00:00Z', timeZone: 'UTC', status: 'booked' }, undefined);
  assert.ok(written.ok);
  await m.settle();
  m.deleteBehindOurBack(mailbox, id);
  await m.settle();

  const got = noticesAt(path, from);
  assert.equal(got.length, 4, JSON.stringify(got));
  for (const g of got) {
    assert.equal(g.kind, 'changed');
    assert.equal(g.channelId, w.value.id);
    assert.equal(g.token, req.token);
    assert.match(g.resourceId!, /^Users\/[0-9a-f-]{36}\/Events\//);
  }
  assert.ok(got[0].kind !== 'validation' && got[0].resourceId!.endsWith(`/Events/${id}`));
  const bodies = rx.received.slice(from).filter((r) => r.path === path).map((r) => JSON.parse(r.req.rawBody.toString()).value[0]);
  assert.deepEqual(bodies.map((b) => b.changeType), ['created', 'updated', 'created', 'deleted']);
  assert.equal(bodies[1].resourceData['@odata.type'], '#Microsoft.Graph.Event');
  assert.equal(bodies[1].resourceData.id, id);
  const sent = m.notifications.filter((x) => x.url === req.address);
  assert.ok(sent.length === 4 && sent.every((x) => x.delivered && x.status === 202), JSON.stringify(sent));
  assert.ok(!m.notifications.some((x) => x.url === subOf(quiet.value.id)!.notificationUrl), 'the other calendar\'s subscription heard nothing');
  assert.deepEqual(m.violations, []);
});

test('a batch may mix subscriptions; each item is its own notice', async () => {
  const c = client(m, 'application');
  const address = `${rx.url}/push/graph/shared`;
  const a = await c.watch!('mix-a@clinic.example', watchReq({ address, lifecycleAddress: undefined, token: 'token-a' }));
  const b = await c.watch!('mix-b@clinic.example', watchReq({ address, lifecycleAddress: undefined, token: 'token-b' }));
  assert.ok(a.ok && b.ok);
  const from = rx.received.length;
  m.addTheirs('mix-a@clinic.example', ev);
  m.addTheirs('mix-b@clinic.example', ev);
  await m.settle();
  const posts = rx.received.slice(from).filter((r) => r.path === '/push/graph/shared');
  assert.equal(posts.length, 1, 'bundled into one delivery');
  const got = connector.push!.parse(posts[0].req);
  assert.deepEqual(got.map((g) => g.kind !== 'validation' && [g.channelId, g.token]), [[a.value.id, 'token-a'], [b.value.id, 'token-b']]);
});

test('lifecycle notices go to the lifecycle URL and parse to their kinds; reauthorization is a renewal; removal deletes', async () => {
  const c = client(m, 'delegated');
  const req = watchReq();
  const w = await c.watch!(undefined, req);
  assert.ok(w.ok);
  const path = new URL(req.lifecycleAddress!).pathname;
  const from = rx.received.length;
  for (const e of ['reauthorizationRequired', 'missed'] as const) {
    const sent = await m.lifecycle(w.value.id, e);
    assert.ok(sent.delivered && sent.status === 202 && sent.url === req.lifecycleAddress);
  }
  const renewed = await c.renewWatch!(w.value, new Date(Date.now() + 3 * DAY));
  assert.ok(renewed.ok, 'reauthorizationRequired is answered with a PATCH');
  await m.lifecycle(w.value.id, 'subscriptionRemoved');
  const got = rx.received.slice(from).filter((r) => new URL(r.req.url).searchParams.get('lifecycle') === '1' && r.path === path).flatMap((r) => connector.push!.parse(r.req));
  assert.deepEqual(got, [
    { kind: 'reauthorize', channelId: w.value.id, token: req.token },
    { kind: 'missed', channelId: w.value.id, token: req.token },
    { kind: 'removed', channelId: w.value.id, token: req.token },
  ]);
  assert.equal(subOf(w.value.id), undefined, 'subscriptionRemoved: gone');
  const late = await c.renewWatch!(w.value, new Date(Date.now() + DAY));
  assert.equal(!late.ok && late.failure.class, 'gone', 'a removed subscription cannot be renewed: the engine makes a new one');
});

test('renewWatch extends with PATCH (capped); unwatch deletes, twice is fine; an expired subscription is gone', async () => {
  const c = client(m, 'delegated');
  const w = await c.watch!(undefined, watchReq({ expiration: new Date(Date.now() + DAY) }));
  assert.ok(w.ok);
  const later = await c.renewWatch!(w.value, new Date(Date.now() + 5 * DAY));
  assert.ok(later.ok, JSON.stringify(later));
  assert.equal(later.value.id, w.value.id);
  assert.ok(Date.parse(later.value.expiration) > Date.parse(w.value.expiration));
  assert.equal(subOf(w.value.id)!.expirationDateTime, later.value.expiration);
  const capped = await c.renewWatch!(w.value, new Date(Date.now() + 60 * DAY));
  assert.ok(capped.ok, JSON.stringify(capped));
  assert.ok(Date.parse(capped.value.expiration) <= Date.now() + MAX_SUBSCRIPTION_MINUTES * 60_000);
  assert.ok(m.requests.some((r) => r.method === 'PATCH' && r.path === `/v1.0/subscriptions/${w.value.id}`));

  assert.ok((await c.unwatch!(w.value)).ok);
  assert.equal(subOf(w.value.id), undefined);
  assert.ok((await c.unwatch!(w.value)).ok, '404 on delete is done');

  const x = await c.watch!(undefined, watchReq());
  assert.ok(x.ok);
  m.expireSubscription(x.value.id);
  const r = await c.renewWatch!(x.value, new Date(Date.now() + DAY));
  assert.equal(!r.ok && r.failure.class, 'gone');
  assert.deepEqual(m.violations, []);
});

test('the fake: PATCH cannot add a lifecycle URL, expiry beyond the maximum is refused, 1000 per mailbox, undelivered notices are retried', async () => {
  const fake = await startFakeGraph({ allowHttpNotifications: true, maxSubscriptionsPerMailbox: 2, retryDelaysMs: [20, 20] });
  try {
    fake.acceptToken('test-token');
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${fake.url}/v1.0${path}`, { method, headers: { authorization: 'Bearer test-token', prefer: 'IdType="ImmutableId"', 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };
    const sub = (over: Record<string, unknown> = {}) => ({ changeType: 'created,updated,deleted', notificationUrl: `${rx.url}/fail/graph/x`, resource: '/users/cap@clinic.example/events', expirationDateTime: new Date(Date.now() + DAY).toISOString(), clientState: 's', ...over });
    const tooLong = await call('POST', '/subscriptions', sub({ expirationDateTime: new Date(Date.now() + (MAX_SUBSCRIPTION_MINUTES + 5) * 60_000).toISOString() }));
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.json.error.code, 'InvalidRequest');
    const first = await call('POST', '/subscriptions', sub());
    assert.equal(first.status, 201, JSON.stringify(first.json));
    const add = await call('PATCH', `/subscriptions/${first.json.id}`, { lifecycleNotificationUrl: `${rx.url}/push/graph/life` });
    assert.equal(add.status, 400);
    assert.match(add.json.error.message, /cannot be added/);
    assert.equal((await call('POST', '/subscriptions', sub())).status, 201);
    const third = await call('POST', '/subscriptions', sub());
    assert.equal(third.status, 403, 'the mailbox is full');
    assert.equal((await call('GET', '/subscriptions')).json.value.length, 2);
    // The receiver answers 500 at /fail: Graph tries again.
    fake.addTheirs('cap@clinic.example', ev);
    await fake.settle();
    const sent = fake.notifications;
    assert.ok(sent.length >= 1 && sent.every((x) => !x.delivered && x.status === 500 && x.attempts.length === 3), JSON.stringify(sent));
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('parse: the validation token URL-decoded; garbage and unknown items give no notice', () => {
  const at = (url: string, body = '') => connector.push!.parse({ rawBody: Buffer.from(body), headers: {}, url, now: new Date() });
  const token = 'Validation: Testing client application reachability for subscription Request-Id: 1b2c+3d&e=f';
  assert.deepEqual(at(`https://hub.example/push/graph/c1?validationToken=${encodeURIComponent(token)}`), [{ kind: 'validation', answer: token }]);
  assert.deepEqual(at('https://hub.example/push/graph/c1', 'not json'), []);
  assert.deepEqual(at('https://hub.example/push/graph/c1', ''), []);
  assert.deepEqual(at('https://hub.example/push/graph/c1', 'null'), []);
  assert.deepEqual(at('https://hub.example/push/graph/c1', '{"value": "nope"}'), []);
  assert.deepEqual(at('not a url at all', '{"value": []}'), []);
  const items = [
    null, 7, 'x', {}, { subscriptionId: 5, changeType: 'updated' },
    { subscriptionId: 's1', changeType: 'renamed' },
    { subscriptionId: 's1', lifecycleEvent: 'constructor' },
    { subscriptionId: 's1', lifecycleEvent: '__proto__' },
    { subscriptionId: 's1', lifecycleEvent: 'somethingNew', changeType: 'updated' },
    { subscriptionId: 's2', changeType: 'deleted', clientState: 42, resource: 'Users/u/Events/e' },
  ];
  assert.deepEqual(at('https://hub.example/push/graph/c1', JSON.stringify({ value: items })), [{ kind: 'changed', channelId: 's2', resourceId: 'Users/u/Events/e' }]);
});
