// Issue 17 through the real HTTP server (buildServer + inject) on a temp SQLite hub: connections made and
// removed in the app, credentials checked before they are stored (a real SMTP server, the Twilio fake),
// the webhook URL and steps of a platform that cannot subscribe, and what a removed connection no longer does.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { createUser } from '../../src/http/auth.ts';
import { buildServer } from '../../src/http/server.ts';
import { loadConnection, storedSecrets } from '../../src/engine/hub/connections.ts';
import { createConnection } from '../../src/engine/connect/connections.ts';
import { platformDirectory, saveCheckedCredentials, testConnection } from '../../src/engine/connect/probe.ts';
import { reconcileSubscriptions } from '../../src/engine/connect/webhooks.ts';
import { startFakeCalendly, type FakeCalendly } from '../fakes/calendly.ts';
import { configuredHub, tempDir } from '../helpers.ts';
import { startSmtpSink, type SmtpSink } from '../fakes/smtp-sink.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';
import { startFakeYcbm } from '../fakes/youcanbookme.ts';

const PW = 'correct horse battery staple';
const CLINIC = `
clinic: { id: lotus, name: Lotus Clinic, timeZone: Europe/London }
practitioners:
  - { id: ada, name: Dr. Ada Okafor, email: ada@lotus.example }
connections:
  - { id: feed, platform: ics-publish }
`;

describe('connections made in the app', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  let smtp: SmtpSink;
  let twilio: FakeTwilio;
  let cookie = '';
  let csrf = '';
  before(async () => {
    smtp = await startSmtpSink({ auth: { user: 'clinic', pass: 'smtp-password-1' } });
    twilio = await startFakeTwilio();
    hub = await configuredHub(CLINIC, { dataDir: tmp.dir, publicUrl: 'https://meridian.lotus.example' });
    await createUser(hub, { email: 'owner@lotus.example', role: 'owner', password: PW }, 'test');
    app = await buildServer(hub);
    const r = await app.inject({ method: 'POST', url: '/auth/login', headers: { host: 'meridian.lotus.example' }, payload: { email: 'owner@lotus.example', password: PW } });
    assert.equal(r.statusCode, 200, r.body);
    cookie = String(r.headers['set-cookie']).split(';')[0];
    csrf = r.json().csrf;
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    await smtp.close();
    await twilio.close();
    tmp.cleanup();
  });

  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => app.inject({
    method, url: `/api/v1${url}`, headers: { cookie, 'x-csrf-token': csrf, host: 'meridian.lotus.example', origin: 'https://meridian.lotus.example' }, ...(payload !== undefined ? { payload: payload as object } : {}),
  });
  const secretsOf = async (id: string) => storedSecrets(hub, (await hub.store.db.selectFrom('connection').select('secrets_enc').where('id', '=', id).executeTakeFirstOrThrow()).secrets_enc);

  test('an unknown platform is refused with a suggestion', async () => {
    const r = await call('POST', '/connections', { platform: 'calendy', name: 'Bookings' });
    assert.equal(r.statusCode, 422);
    assert.match(r.json().message, /no platform "calendy" \(did you mean calendly\?\)/);
  });

  test('SMTP credentials are tried against the server before they are stored', async () => {
    const made = await call('POST', '/connections', { platform: 'email', name: 'Clinic mail', config: { from: 'Lotus <desk@lotus.example>', host: '127.0.0.1', port: smtp.port, requireTLS: false, user: 'clinic' } });
    assert.equal(made.statusCode, 201, made.body);
    const id = made.json().id as string;
    assert.equal(id, 'clinic-mail');
    const wrong = await call('PUT', `/connections/${id}/credentials`, { password: 'not-the-password' });
    assert.equal(wrong.statusCode, 422, wrong.body);
    assert.equal(wrong.json().code, 'credentials_refused');
    assert.match(wrong.json().message, /refused these credentials/);
    assert.deepEqual(await secretsOf(id), {}, 'nothing is stored when the server refuses');
    const right = await call('PUT', `/connections/${id}/credentials`, { password: 'smtp-password-1' });
    assert.equal(right.statusCode, 200, right.body);
    assert.equal(right.json().checked, true);
    assert.equal((await secretsOf(id)).password, 'smtp-password-1');
    assert.ok(smtp.logins.includes('clinic'));
    assert.ok(!right.body.includes('smtp-password-1'), 'the value never comes back');
    const audit = await hub.store.db.selectFrom('audit').selectAll().where('action', '=', 'connection.secrets_stored').where('entity_id', '=', id).execute();
    assert.equal(audit.length, 1);
    assert.ok(!String(audit[0].meta).includes('smtp-password-1'));
  });

  test('a connection\'s settings are described by its platform and checked before they are stored', async () => {
    const email = (await call('GET', '/platforms')).json().items.find((p: { id: string }) => p.id === 'email');
    assert.deepEqual(email.configFields.map((f: { key: string }) => f.key).slice(0, 4), ['from', 'host', 'port', 'user']);
    const was = (await call('GET', '/connections')).json().items.find((c: { id: string }) => c.id === 'clinic-mail').config;
    const bad = await call('PATCH', '/connections/clinic-mail', { config: { ...was, from: 'not an address', port: 'x' } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(bad.json().code, 'invalid_request');
    const issues = bad.json().details.issues as { field: string; message: string }[];
    assert.deepEqual(issues.map((i) => i.field).sort(), ['config.from', 'config.port']);
    assert.match(issues.find((i) => i.field === 'config.from')!.message, /needs `config.from`/);
    assert.deepEqual((await call('GET', '/connections')).json().items.find((c: { id: string }) => c.id === 'clinic-mail').config, was, 'nothing stored');
    const good = await call('PATCH', '/connections/clinic-mail', { config: { ...was, from: 'Lotus Clinic <hello@lotus.example>', replyTo: 'desk@lotus.example' } });
    assert.equal(good.statusCode, 200, good.body);
    assert.deepEqual(good.json().config, { ...was, from: 'Lotus Clinic <hello@lotus.example>', replyTo: 'desk@lotus.example' });
    const stored = (await call('GET', '/connections')).json().items.find((c: { id: string }) => c.id === 'clinic-mail').config;
    assert.equal(stored.from, 'Lotus Clinic <hello@lotus.example>');
    assert.equal(stored.port, smtp.port, 'keys the change did not name are kept');
    const hook = await call('POST', '/connections', { platform: 'webhook-out', name: 'Practice tools' });
    const refused = await call('PATCH', `/connections/${hook.json().id}`, { config: { url: 'ftp://x', events: ['appointment.created', 'appointment.exploded'] } });
    assert.equal(refused.statusCode, 400, refused.body);
    assert.deepEqual(refused.json().details.issues.map((i: { field: string }) => i.field).sort(), ['config.events.1', 'config.url']);
  });

  test('SMS credentials are tried by reading the account, and an unknown key is refused', async () => {
    const made = await call('POST', '/connections', { platform: 'sms', name: 'Texts', baseUrl: twilio.url, config: { from: '+15551230000' } });
    const id = made.json().id as string;
    const unknown = await call('PUT', `/connections/${id}/credentials`, { apiKey: 'x' });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json().message, /no credential called apiKey/);
    const wrong = await call('PUT', `/connections/${id}/credentials`, { accountSid: twilio.credentials.accountSid, authToken: 'wrong-token' });
    assert.equal(wrong.statusCode, 422, wrong.body);
    const right = await call('PUT', `/connections/${id}/credentials`, { ...twilio.credentials });
    assert.equal(right.statusCode, 200, right.body);
    assert.match(right.json().message, /Checked: signed in as Clinic account/);
    assert.equal(twilio.messages.length, 0, 'checking sends nothing');
  });

  test('an API key with no directory to read is tried with a one-day listing (YouCanBookMe), then stored', async () => {
    const ycbm = await startFakeYcbm();
    try {
      const id = (await call('POST', '/connections', { platform: 'youcanbookme', name: 'YCBM', baseUrl: ycbm.url })).json().id as string;
      const wrong = await call('PUT', `/connections/${id}/credentials`, { accountId: ycbm.accountId, apiKey: 'ak_not-the-key' });
      assert.equal(wrong.statusCode, 422, wrong.body);
      assert.deepEqual(await secretsOf(id), {});
      const right = await call('PUT', `/connections/${id}/credentials`, { accountId: ycbm.accountId, apiKey: ycbm.apiKey });
      assert.equal(right.statusCode, 200, right.body);
      assert.match(right.json().message, /Checked: read bookings from YouCanBookMe/);
      // Its webhook is set by hand: the URL carries the token Meridian made, with the steps and the template.
      const hook = (await call('GET', `/connections/${id}/webhook`)).json();
      assert.equal(hook.mode, 'manual');
      assert.match(hook.url, new RegExp(`/webhooks/${id}\\?token=`));
      assert.ok(hook.steps.length >= 2 && hook.steps.some((x: string) => x.includes(hook.url)), JSON.stringify(hook.steps));
    } finally {
      await ycbm.close();
    }
  });

  test('a lead form shows its URL with a token and waits for the first delivery, then is receiving', async () => {
    const made = await call('POST', '/connections', { platform: 'lead-form', name: 'Website form' });
    const id = made.json().id as string;
    const before = (await call('GET', `/connections/${id}/webhook`)).json();
    assert.equal(before.mode, 'manual');
    assert.equal(before.state, 'waiting');
    const url = new URL(before.url);
    assert.equal(url.origin + url.pathname, `https://meridian.lotus.example/leads/${id}`);
    const token = url.searchParams.get('token')!;
    assert.ok(token.length >= 24, 'an unguessable token was generated and stored');
    assert.equal((await secretsOf(id)).webhookToken, token);
    const posted = await app.inject({ method: 'POST', url: `/leads/${id}?token=${token}`, headers: { host: 'meridian.lotus.example' }, payload: { name: 'Pat Lee', email: 'pat@example.com', preferredTimes: 'Tuesday morning' } });
    assert.ok(posted.statusCode < 300, posted.body);
    const after = (await call('GET', `/connections/${id}/webhook`)).json();
    assert.equal(after.state, 'receiving');
    assert.ok(after.lastDeliveryAt);
    // The Connections page says the same from the health answer.
    const row = (await call('GET', '/health/connections')).json().items.find((c: { id: string }) => c.id === id);
    assert.deepEqual({ mode: row.webhook.mode, state: row.webhook.state }, { mode: 'manual', state: 'receiving' });
  });

  test('Test connection says in words what works and what to do next', async () => {
    const r = await call('POST', '/connections/clinic-mail/test');
    assert.equal(r.statusCode, 200, r.body);
    const credentials = r.json().checks.find((c: { id: string }) => c.id === 'credentials');
    assert.equal(credentials.ok, true);
    assert.match(credentials.message, /accepted Meridian's credentials/);
  });

  test('a removed connection disappears, keeps its history, and refuses deliveries; a provisioned one cannot be removed here', async () => {
    const made = await call('POST', '/connections', { platform: 'lead-form', name: 'Old form' });
    const id = made.json().id as string;
    const hook = (await call('GET', `/connections/${id}/webhook`)).json();
    const removed = await call('DELETE', `/connections/${id}`);
    assert.equal(removed.statusCode, 200, removed.body);
    const list = (await call('GET', '/connections')).json().items.map((c: { id: string }) => c.id);
    assert.ok(!list.includes(id));
    assert.deepEqual(await secretsOf(id), {}, 'its credentials are deleted');
    const late = await app.inject({ method: 'POST', url: new URL(hook.url).pathname + new URL(hook.url).search, headers: { host: 'meridian.lotus.example' }, payload: { name: 'Late Lead' } });
    assert.equal(late.statusCode, 404, late.body);
    const again = await call('POST', '/connections', { id, platform: 'lead-form', name: 'Again' });
    assert.equal(again.statusCode, 409);
    const provisioned = await call('DELETE', '/connections/feed');
    assert.equal(provisioned.statusCode, 409);
    assert.match(provisioned.json().message, /provisioned by/, provisioned.body);
  });

  test('OAuth needs the provider\'s app first, and a browser session', async () => {
    const providers = (await call('GET', '/oauth/providers')).json();
    assert.equal(providers.redirectUri, 'https://meridian.lotus.example/oauth/callback');
  });
});

describe('a Calendly account connected with its token: directory suggestions, and the subscription follows the public URL', () => {
  const tmp = tempDir();
  let hub: Hub;
  let calendly: FakeCalendly;
  before(async () => {
    calendly = await startFakeCalendly({ plan: 'paid' });
    hub = await configuredHub(CLINIC, { dataDir: tmp.dir, publicUrl: 'https://old.lotus.example' });
    await createConnection(hub, { id: 'bookings', platform: 'calendly', name: 'Bookings', baseUrl: calendly.url }, 'test');
  });
  after(async () => {
    await hub.store.close();
    await calendly.close();
    tmp.cleanup();
  });

  test('storing the token is checked by reading the account, and subscribes its bookings with a key Meridian made', async () => {
    await assert.rejects(saveCheckedCredentials(hub, 'bookings', { personalAccessToken: 'not-the-token' }, 'test'), (e: Error) => /refused these credentials/.test(e.message));
    assert.equal(calendly.webhookSubscriptions().length, 0, 'nothing made with refused credentials');
    const saved = await saveCheckedCredentials(hub, 'bookings', { personalAccessToken: calendly.token }, 'test');
    assert.equal(saved.checked, true);
    const hooks = calendly.webhookSubscriptions();
    assert.equal(hooks.length, 1);
    assert.equal(hooks[0].callback_url, 'https://old.lotus.example/webhooks/bookings');
    const key = (await loadConnection(hub, 'bookings')).secrets.signingKey;
    assert.equal(hooks[0].signing_key, key, 'the key Calendly signs with is the one stored');
  });

  test('staff and event types come with the practitioner and service they look like', async () => {
    const ada = calendly.addUser({ uri: 'https://api.calendly.com/users/ada-okafor', name: 'Ada Okafor', email: 'ada@lotus.example' });
    calendly.addUser({ uri: 'https://api.calendly.com/users/someone-else', name: 'Someone Else', email: 'else@lotus.example' });
    const dir = await platformDirectory(hub, 'bookings');
    assert.ok(dir.staff.some((s) => s.ref === ada.uri && s.email === 'ada@lotus.example'));
    assert.equal(dir.suggestions.practitioners[ada.uri as string], 'ada', 'matched by e-mail');
    assert.equal(Object.values(dir.suggestions.practitioners).filter((p) => p === 'ada').length, 1);
  });

  test('a new public URL: at start the subscription is made again for it, the old one removed, a new key stored', async () => {
    const before = (await loadConnection(hub, 'bookings')).secrets.signingKey;
    hub.publicUrl = 'https://meridian.lotus.example';
    assert.equal(await reconcileSubscriptions(hub), 1);
    const hooks = calendly.webhookSubscriptions();
    assert.equal(hooks.length, 1, 'one subscription, not two');
    assert.equal(hooks[0].callback_url, 'https://meridian.lotus.example/webhooks/bookings');
    const after = (await loadConnection(hub, 'bookings')).secrets.signingKey;
    assert.notEqual(after, before);
    assert.equal(hooks[0].signing_key, after);
    assert.equal(await reconcileSubscriptions(hub), 0, 'nothing to do the second time');
    const test = await testConnection(hub, 'bookings');
    assert.equal(test.checks.find((c) => c.id === 'subscription')?.ok, true, JSON.stringify(test.checks));
    calendly.disable(hooks[0].uri as string);
    const again = await testConnection(hub, 'bookings');
    const sub = again.checks.find((c) => c.id === 'subscription')!;
    assert.equal(sub.ok, false);
    assert.match(sub.next ?? '', /Re-create/);
  });
});
