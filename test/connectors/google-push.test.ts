// Google Calendar push (issue 18): events.watch / channels.stop through the connector, against the fake, which
// checks both against the discovery document and sends notifications the way Google does. A small node:http
// receiver stands in for Meridian's `/push/google/<connection>` route and reads each request with `push.parse`.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { connector } from '../../src/connectors/targets/google-calendar/index.ts';
import type { ConnectionContext, PushNotice, TargetClient, TargetEvent, WatchChannel, WebhookRequest } from '../../src/connectors/types.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';

const CAL = 'okafor@clinic.example';
const HOUR = 60 * 60 * 1000;

let g: FakeGoogle;
/** Added to the fake's clock (channels expire by it). */
let skew = 0;
let receiver: { url: string; received: WebhookRequest[]; answer: number; close(): Promise<void> };

/** Meridian's push route, reduced to what the connector sees: lower-cased headers and the raw body. */
async function startMeridian(): Promise<typeof receiver> {
  const received: WebhookRequest[] = [];
  const self = { url: '', received, answer: 200, close: () => new Promise<void>((r) => server.close(() => r())) };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
      received.push({ rawBody: Buffer.concat(chunks), headers, url: `http://127.0.0.1${req.url}`, now: new Date() });
      res.writeHead(self.answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  self.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/push/google/google-main`;
  return self;
}

function client(fake = g): TargetClient {
  const ctx: ConnectionContext = {
    connectionId: 'google-main',
    config: { tokenUrl: fake.tokenUrl },
    secrets: { ...fake.credentials },
    baseUrl: fake.url,
    fetch: globalThis.fetch,
    now: () => new Date(),
  };
  return connector.client!(ctx);
}

const parse = (r: WebhookRequest): PushNotice[] => connector.push!.parse(r);

const event = (over: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: randomUUID(), revision: 1, calendarId: CAL, title: 'L. C. · Acupuncture', description: 'Acupuncture.',
  start: '2026-02-20T15:00:00Z', end: '2026-02-20T15:45:00Z', timeZone: 'America/Chicago', status: 'booked', ...over,
});

async function watch(c: TargetClient, over: { id?: string; token?: string; expiration?: Date; address?: string } = {}, calendarId: string | null = CAL): Promise<WatchChannel> {
  const r = await c.watch!(calendarId ?? undefined, {
    id: over.id ?? randomUUID(), address: over.address ?? receiver.url, token: over.token ?? 'tok-secret',
    expiration: over.expiration ?? new Date(Date.now() + HOUR),
  });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

before(async () => {
  g = await startFakeGoogle({ allowHttpPush: true, now: () => Date.now() + skew });
});
after(() => g.close());
beforeEach(async () => {
  skew = 0;
  await g.pushesSettled();
  receiver = await startMeridian();
});
afterEach(async () => {
  await g.pushesSettled();
  await receiver.close().catch(() => undefined);
});

test('the connector offers push at /push/google and no renewal (Google has none)', () => {
  assert.equal(connector.push?.path, 'google');
  const c = client();
  assert.equal(typeof c.watch, 'function');
  assert.equal(typeof c.unwatch, 'function');
  assert.equal(c.renewWatch, undefined);
});

test('watch answers a channel and the fake holds it with our address, token and expiration; the first message is sync', async () => {
  const id = randomUUID();
  const wanted = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * HOUR);
  const ch = await watch(client(), { id, token: 'tok-1', expiration: wanted });
  assert.equal(ch.id, id);
  assert.ok(ch.resourceId);
  assert.equal(ch.expiration, wanted.toISOString());

  const sent = g.requests.find((r) => r.method === 'POST' && r.path.endsWith('/events/watch'));
  assert.equal(sent?.path, `/calendar/v3/calendars/${encodeURIComponent(CAL)}/events/watch`);
  assert.deepEqual(sent?.body, { id, type: 'web_hook', address: receiver.url, token: 'tok-1', expiration: String(wanted.getTime()) });

  const held = g.channels().find((c) => c.id === id);
  assert.ok(held);
  assert.equal(held.address, receiver.url);
  assert.equal(held.token, 'tok-1');
  assert.equal(held.type, 'web_hook');
  assert.equal(held.expiration, wanted.getTime());
  assert.equal(held.resourceId, ch.resourceId);

  await g.pushesSettled();
  assert.equal(receiver.received.length, 1);
  const first = receiver.received[0];
  assert.equal(first.rawBody.length, 0, 'no body');
  assert.equal(first.headers['x-goog-resource-state'], 'sync');
  assert.equal(first.headers['x-goog-channel-expiration'], wanted.toUTCString());
  assert.match(first.headers['x-goog-resource-uri'], /\/calendar\/v3\/calendars\/.+\/events/);
  assert.deepEqual(parse(first), [{ kind: 'sync', channelId: id, token: 'tok-1', resourceId: ch.resourceId, messageNumber: 1 }]);
  assert.equal(g.notifications.find((n) => n.channelId === id)?.status, 200, 'the answer is recorded');
  assert.deepEqual(g.violations, []);
  assert.ok((await client().unwatch!(ch)).ok);
});

test('without a calendar the primary one is watched, and a too-long expiration is cut to the fake\'s cap', async () => {
  const ch = await watch(client(), { expiration: new Date(Date.now() + 30 * 24 * HOUR) }, null);
  assert.ok(g.requests.some((r) => r.path === '/calendar/v3/calendars/primary/events/watch'));
  const life = Date.parse(ch.expiration) - Date.now();
  assert.ok(life <= 7 * 24 * HOUR && life > 7 * 24 * HOUR - 60_000, `capped at a week, got ${life} ms`);
  // 'primary' is the account's primary calendar: a change made under its address is heard.
  await g.pushesSettled();
  g.addTheirs(CAL, { summary: 'Lunch', start: { dateTime: '2026-02-21T12:00:00Z' }, end: { dateTime: '2026-02-21T13:00:00Z' } });
  await g.pushesSettled();
  assert.deepEqual(receiver.received.map((r) => r.headers['x-goog-resource-state']), ['sync', 'exists']);
  assert.ok((await client().unwatch!(ch)).ok);
  assert.deepEqual(g.violations, []);
});

test('an event edited behind our back gives an exists notification that parse reads as changed; sent after, not during, the change', async () => {
  const c = client();
  const w = await c.upsert(event(), undefined);
  assert.ok(w.ok);
  const ch = await watch(c, { token: 'tok-edit' });
  await g.pushesSettled();

  const before = g.notifications.length;
  g.editBehindOurBack(CAL, w.value.remoteId, { summary: 'Moved by the practitioner' });
  assert.equal(g.notifications.length, before, 'nothing is sent inside the change itself');
  await g.pushesSettled();

  assert.equal(receiver.received.length, 2);
  const n = receiver.received[1];
  assert.equal(n.headers['x-goog-resource-state'], 'exists');
  assert.equal(n.headers['x-goog-channel-id'], ch.id);
  assert.equal(n.headers['x-goog-resource-id'], ch.resourceId);
  assert.deepEqual(parse(n), [{ kind: 'changed', channelId: ch.id, token: 'tok-edit', resourceId: ch.resourceId, messageNumber: 2 }]);

  // Our own writes through the API and deletions are heard too; numbers keep rising.
  assert.ok((await c.upsert(event({ title: 'again' }), undefined)).ok);
  g.deleteBehindOurBack(CAL, w.value.remoteId);
  await g.pushesSettled();
  assert.deepEqual(receiver.received.slice(2).map((r) => [r.headers['x-goog-resource-state'], Number(r.headers['x-goog-message-number'])]), [['exists', 3], ['not_exists', 4]]);
  assert.deepEqual(parse(receiver.received[3]).map((x) => x.kind), ['changed']);
  // A change to another calendar says nothing on this channel.
  g.addTheirs('nakamura@clinic.example', { summary: 'x', start: { dateTime: '2026-02-21T12:00:00Z' }, end: { dateTime: '2026-02-21T13:00:00Z' } });
  await g.pushesSettled();
  assert.equal(receiver.received.length, 4);
  assert.ok((await c.unwatch!(ch)).ok);
  assert.deepEqual(g.violations, []);
});

test('unwatch stops the channel (nothing more is sent) and a second unwatch succeeds', async () => {
  const c = client();
  const ch = await watch(c);
  await g.pushesSettled();
  const stop = await c.unwatch!(ch);
  assert.ok(stop.ok, JSON.stringify(stop));
  const sent = g.requests.filter((r) => r.path === '/calendar/v3/channels/stop').at(-1);
  assert.deepEqual(sent?.body, { id: ch.id, resourceId: ch.resourceId });
  assert.equal(g.channels().some((x) => x.id === ch.id), false);

  g.pushNow(CAL);
  g.addTheirs(CAL, { summary: 'Errand', start: { dateTime: '2026-02-22T12:00:00Z' }, end: { dateTime: '2026-02-22T13:00:00Z' } });
  await g.pushesSettled();
  assert.equal(receiver.received.length, 1, 'only the sync message');

  const again = await c.unwatch!(ch);
  assert.ok(again.ok, 'already gone is success');
  assert.deepEqual(g.violations, []);
});

test('an expired channel sends nothing (expireChannel, or the fake clock passing its expiration)', async () => {
  const c = client();
  const a = await watch(c);
  const b = await watch(c, { expiration: new Date(Date.now() + HOUR) });
  await g.pushesSettled();
  assert.equal(receiver.received.length, 2);

  g.expireChannel(a.id);
  g.pushNow(CAL);
  await g.pushesSettled();
  assert.deepEqual(receiver.received.slice(2).map((r) => r.headers['x-goog-channel-id']), [b.id]);

  skew = 2 * HOUR;
  g.pushNow(CAL);
  await g.pushesSettled();
  assert.equal(receiver.received.length, 3);
  assert.equal(g.channels().some((x) => x.id === a.id || x.id === b.id), false);
  // Stopping an expired channel: Google no longer knows it, which is success.
  assert.ok((await c.unwatch!(a)).ok);
  assert.ok((await c.unwatch!(b)).ok);
  assert.deepEqual(g.violations, []);
});

test('a receiver that fails is recorded with its answer status', async () => {
  receiver.answer = 503;
  const ch = await watch(client());
  await g.pushesSettled();
  assert.equal(g.notifications.filter((n) => n.channelId === ch.id).at(-1)?.status, 503);
  await receiver.close();
  g.pushNow(CAL);
  await g.pushesSettled();
  const last = g.notifications.filter((n) => n.channelId === ch.id).at(-1);
  assert.equal(last?.status, 0);
  assert.ok(last?.error);
  assert.ok((await client().unwatch!(ch)).ok);
});

test('a channel id used before is refused as permanent', async () => {
  const id = randomUUID();
  const c = client();
  const ch = await watch(c, { id });
  const r = await c.watch!(CAL, { id, address: receiver.url, token: 't', expiration: new Date(Date.now() + HOUR) });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.failure.class, 'permanent');
  assert.ok((await c.unwatch!(ch)).ok);
});

test('a non-https address is refused by Google (the fake without the test option): permanent, with a clear message', async () => {
  const strict = await startFakeGoogle();
  try {
    const r = await client(strict).watch!(CAL, { id: randomUUID(), address: receiver.url, token: 't', expiration: new Date(Date.now() + HOUR) });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.failure.class, 'permanent');
    assert.equal(r.failure.status, 400);
    assert.match(r.failure.message, /https/);
    assert.match(r.failure.message, /public URL/);
    assert.deepEqual(strict.channels(), []);
    await strict.pushesSettled();
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(strict.violations, []);
  } finally {
    await strict.close();
  }
});

test('watch and stop failures are classified like the connector\'s other calls', async () => {
  const c = client();
  g.fail(1, 429, { 'retry-after': '3' });
  const throttled = await c.watch!(CAL, { id: randomUUID(), address: receiver.url, token: 't', expiration: new Date(Date.now() + HOUR) });
  assert.equal(!throttled.ok && throttled.failure.class, 'throttled');
  g.fail(1, 503);
  const transient = await c.watch!(CAL, { id: randomUUID(), address: receiver.url, token: 't', expiration: new Date(Date.now() + HOUR) });
  assert.equal(!transient.ok && transient.failure.class, 'transient');
  const ch = await watch(c);
  g.fail(1, 500);
  const stop = await c.unwatch!(ch);
  assert.equal(!stop.ok && stop.failure.class, 'transient');
  assert.equal(g.channels().some((x) => x.id === ch.id), true, 'still live after a failed stop');
  assert.ok((await c.unwatch!(ch)).ok);

  const noAuth = connector.client!({ connectionId: 'x', config: {}, secrets: {}, baseUrl: g.url, fetch: globalThis.fetch, now: () => new Date() });
  const auth = await noAuth.watch!(CAL, { id: randomUUID(), address: receiver.url, token: 't', expiration: new Date(Date.now() + HOUR) });
  assert.equal(!auth.ok && auth.failure.class, 'auth');
  assert.deepEqual(g.violations, []);
});

test('parse ignores garbage and never throws', () => {
  const req = (headers: Record<string, string>): WebhookRequest => ({ rawBody: Buffer.from('{"not":"google"}'), headers, url: 'https://m.example/push/google/x', now: new Date() });
  assert.deepEqual(parse(req({})), []);
  assert.deepEqual(parse(req({ 'x-goog-resource-state': 'exists' })), [], 'no channel id');
  assert.deepEqual(parse(req({ 'x-goog-channel-id': '   ', 'x-goog-resource-state': 'exists' })), []);
  assert.deepEqual(parse(req({ 'x-goog-channel-id': 'c1', 'x-goog-resource-state': 'deleted-ish' })), [], 'unknown state');
  assert.deepEqual(parse(req({ 'x-goog-channel-id': 'c1' })), [], 'no state');
  assert.deepEqual(parse(req({ 'x-goog-channel-id': 'c1', 'x-goog-resource-state': 'not_exists', 'x-goog-message-number': 'many' })), [{ kind: 'changed', channelId: 'c1' }]);
  assert.deepEqual(parse(req({ 'x-goog-channel-id': 'c1', 'x-goog-resource-state': 'sync', 'x-goog-message-number': '1' })), [{ kind: 'sync', channelId: 'c1', messageNumber: 1 }]);
  assert.deepEqual(parse({ rawBody: Buffer.alloc(0), headers: undefined as unknown as Record<string, string>, url: '', now: new Date() }), []);
  assert.deepEqual(parse(undefined as unknown as WebhookRequest), []);
});
