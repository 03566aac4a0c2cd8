// End to end through the real `bin/meridian serve`: a Calendly booking (the e2e driver's fake Calendly and
// signed webhooks) becomes a Standard Webhooks delivery to the clinic's own receiver, verified with the
// official `standardwebhooks` package; a receiver that fails is retried until it answers; a replay sends the
// same webhook-id again. And the fake Twilio's signed delivery status and replies reach /notify/<connection>
// (TwiML answer), while a callback with a bad signature is refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { connector as sms } from '../../src/connectors/notify/sms/index.ts';
import { backendFor } from '../helpers.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';
import { startReceiver, type Receiver, type Received } from '../fakes/webhook-receiver.ts';
import calendly from './sources/calendly.ts';
import type { E2EBooking, E2EDelivery, SourceFake } from './sources/driver.ts';
import { apiClient, createKey, serve, eventually, type Served } from './serve.ts';

const HOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FLAKY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('outbound webhooks and SMS callbacks through the real server', async () => {
  const b = await backendFor('sqlite');
  let srv: Served;
  let api: ReturnType<typeof apiClient>;
  let cal: SourceFake;
  let hooks: Receiver;
  let flaky: Receiver;
  let twilio: FakeTwilio;

  before(async () => {
    cal = await calendly.start();
    hooks = await startReceiver();
    flaky = await startReceiver();
    twilio = await startFakeTwilio();
    const env: NodeJS.ProcessEnv = {
      E2E_CAL_SIGNING: cal.connection.secrets.signingKey, E2E_CAL_PAT: cal.connection.secrets.personalAccessToken,
      E2E_HOOK: HOOK_SECRET, E2E_FLAKY: FLAKY_SECRET, E2E_TW_SID: twilio.credentials.accountSid, E2E_TW_TOKEN: twilio.credentials.authToken,
    };
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago }
locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, email: dr.okafor@lotusclinic.example, locations: [lakeview] }
connections:
  - id: calendly
    platform: calendly
    baseUrl: ${JSON.stringify(cal.connection.baseUrl)}
    config: ${JSON.stringify(cal.connection.config)}
    secrets: { signingKey: { env: E2E_CAL_SIGNING }, personalAccessToken: { env: E2E_CAL_PAT } }
    refs: { practitioners: { ${JSON.stringify(cal.practitionerRef)}: okafor } }
  - id: ops-hooks
    platform: webhook-out
    config: { url: "${hooks.url}", events: [appointment.created, appointment.cancelled] }
    secrets: { signingSecret: { env: E2E_HOOK } }
  - id: flaky-hooks
    platform: webhook-out
    config: { url: "${flaky.url}", events: [appointment.created] }
    secrets: { signingSecret: { env: E2E_FLAKY } }
  - id: sms
    platform: sms
    baseUrl: ${twilio.url}
    config: { from: "${twilio.from}" }
    secrets: { accountSid: { env: E2E_TW_SID }, authToken: { env: E2E_TW_TOKEN } }
`);
    const common = ['--data', b.dataDir, '--config', cfg];
    srv = await serve(['serve', ...common], env);
    api = apiClient(srv.url, await createKey(common, env));
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
    await cal?.close();
    await hooks?.close();
    await flaky?.close();
    await twilio?.close();
    await b.cleanup();
  });

  const post = (d: E2EDelivery) => fetch(d.url, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
  const verified = (r: Received, secret: string) => new Webhook(secret).verify(r.body, r.headers) as { type: string; data: Record<string, any> };
  const deliveries = async (connection: string) => (await api('GET', `/outbound-deliveries?connection=${connection}`)).body.items as Record<string, any>[];

  test('a Calendly booking reaches the receivers as signed events; a failing receiver is retried; a replay resends the same id', async () => {
    const booking: E2EBooking = { id: randomUUID(), start: '2027-03-01T16:00:00Z', end: '2027-03-01T16:45:00Z', timeZone: 'America/Chicago', patient: { name: 'Maya Lindqvist', email: 'maya.e2e@example.net' } };
    flaky.answerNext(503);
    cal.hold(booking, 'booked');
    const res = await post(cal.webhook('created', booking, new Date(), `${srv.url}/webhooks/calendly`));
    assert.equal(res.status, 200, await res.text());

    await eventually(() => hooks.received.length === 1, 15_000, 'the event at the receiver');
    const event = verified(hooks.received[0], HOOK_SECRET);
    assert.equal(event.type, 'appointment.created');
    assert.equal(event.data.practitionerId, 'okafor');
    assert.equal(event.data.start, booking.start);
    assert.equal(event.data.source.platform, 'calendly');
    assert.ok(!hooks.received[0].body.includes('Lindqvist') && !hooks.received[0].body.includes('maya.e2e'), 'no patient data by default');
    assert.throws(() => verified(hooks.received[0], FLAKY_SECRET), 'another subscription\'s secret does not verify it');

    // The flaky receiver answered 503 first: the worker retries the same delivery.
    await eventually(() => flaky.received.length === 2, 15_000, 'the retry');
    assert.deepEqual(flaky.received.map((r) => r.answered), [503, 204]);
    assert.equal(flaky.received[1].headers['webhook-id'], flaky.received[0].headers['webhook-id']);
    assert.equal(verified(flaky.received[1], FLAKY_SECRET).data.id, event.data.id);
    const [logged] = await eventually(async () => { const d = await deliveries('flaky-hooks'); return d[0]?.status === 'delivered' && d; }, 5_000, 'the log');
    assert.deepEqual([logged.attempts, logged.responseCode, logged.eventType], [2, 204, 'appointment.created']);
    assert.equal(logged.data, undefined, 'the log lists no bodies');

    const [first] = await deliveries('ops-hooks');
    const replay = await api('POST', `/outbound-deliveries/${first.id}/replay`);
    assert.equal(replay.status, 202, JSON.stringify(replay.body));
    await eventually(() => hooks.received.length === 2, 15_000, 'the replay');
    assert.equal(hooks.received[1].headers['webhook-id'], first.id);
    assert.deepEqual(verified(hooks.received[1], HOOK_SECRET).data, event.data);
    assert.equal((await api('POST', '/outbound-deliveries/msg_unknown/replay')).status, 404);
    const doc = await fetch(`${srv.url}/api/v1/openapi.json`).then((r) => r.json()) as { paths: Record<string, unknown> };
    assert.ok(doc.paths['/api/v1/outbound-deliveries'] && doc.paths['/api/v1/outbound-deliveries/{id}/replay'], 'both routes are in the OpenAPI document');
  });

  test("the fake Twilio's signed status callback and replies are accepted with TwiML; a bad signature gets 401", async () => {
    const inbound = `${srv.url}/notify/sms`;
    // A message sent the way the server sends it, so Twilio holds our StatusCallback for it.
    const ctx = { connectionId: 'sms', config: { from: twilio.from }, secrets: { ...twilio.credentials }, baseUrl: twilio.url, fetch, now: () => new Date(), inboundUrl: inbound };
    const sent = await sms.client(ctx).send({ key: 'e2e-1', to: { phone: '+15555550123' }, text: 'Your visit is tomorrow at 10:00. Reply C to confirm, X to cancel.' });
    assert.ok(sent.ok, JSON.stringify(sent));
    const status = await twilio.sendStatus(sent.value.providerId!, 'delivered');
    assert.equal(status.status, 200, status.body);
    assert.match(status.contentType ?? '', /^text\/xml/);
    assert.match(status.body, /<Response\/>$/);

    const stop = await twilio.sendReply('+15555550177', 'STOP', inbound);
    assert.equal(stop.status, 200, stop.body);
    const audit = (await api('GET', '/audit?limit=200')).body.items as { action: string; meta?: Record<string, unknown> }[];
    assert.ok(audit.some((a) => a.action === 'notify.opted_out'), 'the STOP reached the notification engine');

    const forged = await twilio.sendReply('+15555550123', 'X', inbound, { signWith: 'not-the-auth-token' });
    assert.equal(forged.status, 401);
    assert.equal(JSON.parse(forged.body).code, 'bad_signature');
    const unsigned = await fetch(inbound, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'From=%2B15555550123&Body=X' });
    assert.equal(unsigned.status, 401);
    assert.equal((await fetch(`${srv.url}/notify/ops-hooks`, { method: 'POST', body: 'x' })).status, 404, 'a connection without callbacks has no endpoint');
    assert.deepEqual(twilio.violations, []);
  });
});
