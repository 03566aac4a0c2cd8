// Outbound webhooks: every delivery is verified with the official `standardwebhooks` package (also during a
// secret rotation); subscriptions get only their event types, minimal payloads unless `includePatient`; a
// failing receiver is retried with the same webhook-id, a 410 stops, the log holds no patient data, a replay
// sends the same id again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { connector, signatureHeader, signingKey } from '../../src/connectors/notify/webhook-out/index.ts';
import type { ConnectionContext } from '../../src/connectors/types.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { staffCancel, staffCreate, staffReschedule } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listOutboundDeliveries, replayOutboundDelivery } from '../../src/engine/effects/webhooks-out.ts';
import { tempDir, configuredHub } from '../helpers.ts';
import { startReceiver, type Receiver, type Received } from '../fakes/webhook-receiver.ts';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const S1 = secret();
const S2 = secret();
const S2_OLD = secret();

/** The official verifier: returns the parsed payload or throws. */
const verified = (r: Received, s: string) => new Webhook(s).verify(r.body, r.headers) as { type: string; timestamp: string; data: Record<string, any> };

test("one key gives exactly the reference library's signature; two keys give two, each verifiable", () => {
  const key = signingKey(S1)!;
  const at = new Date(Math.floor(Date.now() / 1000) * 1000);
  const body = '{"type":"appointment.created","data":{"id":"a1"}}';
  assert.equal(signatureHeader([key], 'msg_1', at.getTime() / 1000, body), new Webhook(S1).sign('msg_1', at, body));
  const both = signatureHeader([signingKey(S2)!, signingKey(S2_OLD)!], 'msg_1', at.getTime() / 1000, body);
  assert.equal(both.split(' ').length, 2);
  const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(at.getTime() / 1000), 'webhook-signature': both };
  for (const s of [S2, S2_OLD]) assert.deepEqual(new Webhook(s).verify(body, headers), JSON.parse(body));
  assert.throws(() => new Webhook(S1).verify(body, headers), /No matching signature/);
  assert.throws(() => new Webhook(S2).verify(body.replace('a1', 'a2'), headers), /No matching signature/, 'a tampered byte');
  for (const bad of ['plain-secret', 'whsec_dG9vIHNob3J0', 'whsec_not base64!']) assert.equal(signingKey(bad), undefined, bad);
});

test('the client: 2xx delivered, 5xx and redirects retried, 429 throttled, 410 stops; a bad secret or URL fails permanently', async () => {
  const r = await startReceiver();
  const ctx = (o: Partial<ConnectionContext> = {}): ConnectionContext => ({ connectionId: 'hook', config: { url: r.url }, secrets: { signingSecret: S1 }, baseUrl: '', fetch, now: () => new Date(), ...o });
  const send = (c = ctx()) => connector.client(c).send({ key: 'msg_abc123', to: {}, text: '', event: { type: 'appointment.created', payload: { timestamp: '2027-02-01T16:00:00.000Z', data: { id: 'a1' } } } });
  const okay = await send();
  assert.deepEqual(okay, { ok: true, value: { status: 204 } });
  assert.deepEqual(verified(r.received[0], S1), { type: 'appointment.created', timestamp: '2027-02-01T16:00:00.000Z', data: { id: 'a1' } });
  assert.equal(r.received[0].headers['webhook-id'], 'msg_abc123');
  r.answerNext(500, 302, 429, 410);
  const classes = [];
  for (let i = 0; i < 4; i++) {
    const x = await send();
    assert.ok(!x.ok);
    classes.push([x.failure.class, x.failure.status, x.failure.retryAfterMs]);
  }
  assert.deepEqual(classes, [['transient', 500, undefined], ['transient', 302, undefined], ['throttled', 429, 1000], ['permanent', 410, undefined]]);
  const noSecret = await send(ctx({ secrets: { signingSecret: 'hunter2' } }));
  assert.ok(!noSecret.ok && noSecret.failure.class === 'permanent' && /whsec_/.test(noSecret.failure.message));
  const noUrl = await send(ctx({ config: {} }));
  assert.ok(!noUrl.ok && noUrl.failure.class === 'permanent');
  assert.equal(r.received.length, 5, 'nothing sent without a valid secret and URL');
  await r.close();
});

test('a subscription names known event types and an http(s) URL', () => {
  const yaml = (config: string) => `
clinic: { id: c, name: Clinic, timeZone: Europe/Berlin }
connections:
  - { id: hook, platform: webhook-out, config: ${config}, secrets: { signingSecret: { env: S }, signingSecretPrevious: { env: SP } } }
`;
  assert.ok(parseConfig(yaml('{ url: "https://tools.example.org/hook", events: [appointment.created, lead.received], includePatient: true }'), 'c.yaml'));
  for (const [bad, field] of [['{ events: [appointment.created] }', 'url'], ['{ url: "ftp://x/y", events: [appointment.created] }', 'url'],
    ['{ url: "https://x.example/y", events: [] }', 'events'], ['{ url: "https://x.example/y", events: [appointment.exploded] }', 'events[0]'],
    ['{ url: "https://x.example/y", events: [appointment.created], includePatient: "yes" }', 'includePatient']]) {
    assert.throws(() => parseConfig(yaml(bad), 'c.yaml'), (e: Error) => e.message.includes(`connections[0].config.${field}`), bad);
  }
});

// ---------------------------------------------------------------- through the engine

let hub: Hub;
let ops: Receiver;
let crm: Receiver;
let offset = 0;
const dir = tempDir();
const patient = { name: 'Maya Lindqvist', email: 'maya.lindqvist@example.net', phone: '+15555550123' };

before(async () => {
  ops = await startReceiver();
  crm = await startReceiver();
  // Near the real clock: the reference verifier allows 5 minutes either side of its own.
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/Chicago }
locations: [{ id: loop, name: Loop }]
practitioners: [{ id: okafor, name: Dr. Ada Okafor, locations: [loop] }]
connections:
  - id: ops
    platform: webhook-out
    config: { url: "${ops.url}", events: [appointment.created, appointment.cancelled] }
    secrets: { signingSecret: { env: S1 } }
  - id: crm
    platform: webhook-out
    config: { url: "${crm.url}", events: [appointment.created, appointment.updated, appointment.cancelled], includePatient: true }
    secrets: { signingSecret: { env: S2 }, signingSecretPrevious: { env: S2_OLD } }
`, { dataDir: dir.dir, env: { S1, S2, S2_OLD }, clock: { now: () => new Date(Date.now() + offset) } });
});
after(async () => {
  await hub.store.close();
  await ops.close();
  await crm.close();
  dir.cleanup();
});

test('changes become signed events for the subscriptions that want them, minimal unless includePatient', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2027-02-01T16:00:00Z', end: '2027-02-01T16:45:00Z', patient }, 'staff:test');
  await drain(hub);
  assert.equal(ops.received.length, 1);
  assert.equal(crm.received.length, 1);
  const o = verified(ops.received[0], S1);
  assert.equal(o.type, 'appointment.created');
  assert.deepEqual({ id: o.data.id, status: o.data.status, start: o.data.start, end: o.data.end, practitionerId: o.data.practitionerId, timeZone: o.data.timeZone },
    { id: a.id, status: 'booked', start: '2027-02-01T16:00:00Z', end: '2027-02-01T16:45:00Z', practitionerId: 'okafor', timeZone: 'America/Chicago' });
  for (const v of Object.values(patient)) assert.ok(!ops.received[0].body.includes(v), 'no patient data by default');
  // Mid-rotation both keys sign: a receiver on either one verifies.
  for (const s of [S2, S2_OLD]) assert.deepEqual(verified(crm.received[0], s).data.patient, patient);

  await staffReschedule(hub, a.id, { start: '2027-02-02T16:00:00Z', end: '2027-02-02T16:45:00Z' }, 'staff:test');
  await drain(hub);
  assert.equal(ops.received.length, 1, 'ops does not subscribe to updates');
  const u = verified(crm.received[1], S2);
  assert.equal(u.type, 'appointment.updated');
  assert.equal(u.data.start, '2027-02-02T16:00:00Z');
  assert.equal(u.data.previous.start, '2027-02-01T16:00:00Z');
  assert.equal(u.data.revision, 2);
});

test('a failing receiver is retried under the same webhook-id until it answers; each attempt is logged', async () => {
  const [a] = (await listOutboundDeliveries(hub.store.db, { connection: 'ops' })).map((d) => d.entityId);
  ops.answerNext(500);
  await staffCancel(hub, a, undefined, 'staff:test');
  await drain(hub);
  assert.equal(ops.received.length, 2);
  let [d] = await listOutboundDeliveries(hub.store.db, { connection: 'ops', limit: 1 });
  assert.equal(d.eventType, 'appointment.cancelled');
  assert.deepEqual([d.status, d.attempts, d.responseCode], ['retrying', 1, 500]);
  assert.match(d.lastError ?? '', /HTTP 500/);
  offset += 5_000; // past the first backoff (at most 2 s)
  await drain(hub);
  assert.equal(ops.received.length, 3);
  const [failed, retried] = ops.received.slice(1);
  assert.equal(retried.headers['webhook-id'], failed.headers['webhook-id']);
  assert.ok(Number(retried.headers['webhook-timestamp']) > Number(failed.headers['webhook-timestamp']), 'a fresh timestamp per attempt');
  assert.equal(verified(retried, S1).type, 'appointment.cancelled');
  [d] = await listOutboundDeliveries(hub.store.db, { connection: 'ops', limit: 1 });
  assert.deepEqual([d.status, d.attempts, d.responseCode], ['delivered', 2, 204]);
  assert.equal(crm.received.length, 3, 'the other subscription got its cancellation once');
});

test('410 Gone stops at once; a replay sends the same id again, freshly signed; the log holds no patient data', async () => {
  ops.answerNext(410);
  const b = await staffCreate(hub, { practitionerId: 'okafor', start: '2027-02-03T16:00:00Z', end: '2027-02-03T16:45:00Z', patient }, 'staff:test');
  await drain(hub);
  const [gone] = await listOutboundDeliveries(hub.store.db, { connection: 'ops', entity: b.id });
  assert.deepEqual([gone.status, gone.attempts, gone.responseCode], ['failed', 1, 410]);
  const job = await hub.store.db.selectFrom('job').select('state').where('kind', '=', 'webhook.deliver').where('payload', 'like', `%${gone.id}%`).executeTakeFirstOrThrow();
  assert.equal(job.state, 'dead');

  const before = ops.received.length;
  offset += 2_000;
  assert.equal((await replayOutboundDelivery(hub, gone.id, 'staff:test'))?.status, 'pending');
  await drain(hub);
  assert.equal(ops.received.length, before + 1);
  const replayed = ops.received.at(-1)!;
  assert.equal(replayed.headers['webhook-id'], gone.id);
  assert.equal(verified(replayed, S1).data.id, b.id);
  const [after] = await listOutboundDeliveries(hub.store.db, { connection: 'ops', entity: b.id });
  assert.deepEqual([after.status, after.attempts, after.responseCode], ['delivered', 2, 204]);
  assert.equal(await replayOutboundDelivery(hub, 'msg_nope', 'staff:test'), undefined);

  const rows = JSON.stringify(await hub.store.db.selectFrom('outbound_delivery').selectAll().execute());
  for (const v of Object.values(patient)) assert.ok(!rows.includes(v), `no ${v} in the delivery log`);
  const actions = (await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', b.id).execute()).map((x) => x.action);
  for (const x of ['webhook.failed', 'webhook.replayed', 'webhook.delivered']) assert.ok(actions.includes(x), `${x} in ${actions.join(', ')}`);
});
