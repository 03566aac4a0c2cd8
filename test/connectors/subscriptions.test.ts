// Webhook subscriptions made through the platforms' APIs (issue 17), against the fakes: create → the fake holds
// exactly one subscription with the URL, the events and the signing key Meridian stored; a delivery the fake signs
// with that key verifies with the connector's own `verify` and parses; check → inactive once the platform
// disables it; remove → gone (and removing again is still success); each platform's refusals in words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector as calendly } from '../../src/connectors/sources/calendly/index.ts';
import { EVENTS as CALENDLY_EVENTS } from '../../src/connectors/sources/calendly/subscriptions.ts';
import { connector as square } from '../../src/connectors/sources/square/index.ts';
import { connector as acuity } from '../../src/connectors/sources/acuity/index.ts';
import { EVENTS as ACUITY_EVENTS } from '../../src/connectors/sources/acuity/subscriptions.ts';
import { connector as calCom } from '../../src/connectors/sources/cal-com/index.ts';
import { TRIGGERS } from '../../src/connectors/sources/cal-com/subscriptions.ts';
import type { ConnectionContext, SourceConnector, WebhookSubscriptions, WriteOutcome } from '../../src/connectors/types.ts';
import { startFakeCalendly } from '../fakes/calendly.ts';
import { startFakeSquare } from '../fakes/square.ts';
import { startFakeAcuity, ACUITY_WEBHOOK_LIMIT } from '../fakes/acuity.ts';
import { startFakeCalCom } from '../fakes/cal-com.ts';

const samples = new URL('../fixtures/samples/', import.meta.url);
const ctxOf = (baseUrl: string, secrets: Record<string, string>, config: Record<string, unknown> = {}): ConnectionContext => ({
  connectionId: 'clinic-main', config, secrets, baseUrl, fetch, now: () => new Date(),
});
function value<T>(o: WriteOutcome<T>): T {
  if (!o.ok) assert.fail(`expected success, got ${o.failure.class}: ${o.failure.message}`);
  return o.value;
}
function failure<T>(o: WriteOutcome<T>) {
  assert.equal(o.ok, false, 'expected a failure');
  return (o as { ok: false; failure: { class: string; message: string } }).failure;
}
const subs = (c: SourceConnector): WebhookSubscriptions => {
  assert.ok(c.subscriptions, `${c.descriptor.id} has subscriptions`);
  return c.subscriptions;
};

// ------------------------------------------------------------------ Calendly

test('Calendly: create subscribes the URL to the parsed events with a signing key Meridian generated, and that key verifies deliveries', async () => {
  const fake = await startFakeCalendly();
  try {
    const ctx = ctxOf(fake.url, { personalAccessToken: fake.token });
    const url = 'https://meridian.example/webhooks/clinic-main';
    const made = value(await subs(calendly).create(ctx, url));
    const held = fake.webhookSubscriptions();
    assert.equal(held.length, 1);
    assert.equal(held[0].uri, made.remoteId);
    assert.equal(held[0].callback_url, url);
    assert.deepEqual(held[0].events, CALENDLY_EVENTS);
    assert.equal(held[0].scope, 'user');
    assert.equal(held[0].user, fake.me.uri);
    const key = made.secrets?.signingKey;
    assert.ok(key && key.length >= 43, 'a strong signing key');
    assert.equal(held[0].signing_key, key);
    assert.deepEqual(subs(calendly).events, CALENDLY_EVENTS);

    // Every subscribed event is one the parser reads.
    const sample = JSON.parse(readFileSync(new URL('calendly/invitee-created.json', samples), 'utf8'));
    for (const event of CALENDLY_EVENTS) {
      const body = JSON.stringify({ ...sample, event });
      const t = Math.floor(Date.now() / 1000);
      const req = { rawBody: Buffer.from(body), headers: fake.signedDelivery(made.remoteId, body, t), url, now: new Date(t * 1000) };
      assert.deepEqual(calendly.verify(req, made.secrets!), { ok: true }, event);
      assert.equal(calendly.parseWebhook(req).length, 1, `${event} parses`);
    }

    assert.deepEqual(value(await subs(calendly).check(ctx, made.remoteId)), { active: true, url });
    fake.disable(made.remoteId);
    const checked = value(await subs(calendly).check(ctx, made.remoteId));
    assert.equal(checked.active, false);
    assert.match(checked.detail ?? '', /disabled/);

    value(await subs(calendly).remove(ctx, made.remoteId));
    assert.equal(fake.webhookSubscriptions().length, 0);
    value(await subs(calendly).remove(ctx, made.remoteId)); // already gone is success
    assert.equal(value(await subs(calendly).check(ctx, made.remoteId)).active, false);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('Calendly: an organization connection subscribes the organization; a URL already subscribed is replaced, never doubled', async () => {
  const fake = await startFakeCalendly();
  try {
    const ctx = ctxOf(fake.url, { accessToken: fake.token }, { organization: fake.organization });
    const url = 'https://meridian.example/webhooks/clinic-main';
    const first = value(await subs(calendly).create(ctx, url));
    const second = value(await subs(calendly).create(ctx, url));
    const held = fake.webhookSubscriptions();
    assert.equal(held.length, 1);
    assert.equal(held[0].uri, second.remoteId);
    assert.notEqual(first.remoteId, second.remoteId);
    assert.equal(held[0].scope, 'organization');
    assert.equal(held[0].signing_key, second.secrets?.signingKey);
    assert.notEqual(first.secrets?.signingKey, second.secrets?.signingKey);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('Calendly: a free plan is refused permanently, saying a paid plan is needed; a plain member may not subscribe an organization', async () => {
  const free = await startFakeCalendly({ plan: 'free' });
  const member = await startFakeCalendly({ role: 'user' });
  try {
    const f = failure(await subs(calendly).create(ctxOf(free.url, { personalAccessToken: free.token }), 'https://meridian.example/webhooks/c'));
    assert.equal(f.class, 'permanent');
    assert.match(f.message, /paid Calendly plan/);
    assert.equal(free.webhookSubscriptions().length, 0);
    const g = failure(await subs(calendly).create(ctxOf(member.url, { personalAccessToken: member.token }, { organization: member.organization }), 'https://meridian.example/webhooks/c'));
    assert.equal(g.class, 'permanent');
    assert.match(g.message, /admin/);
    const none = failure(await subs(calendly).create(ctxOf(member.url, {}), 'https://meridian.example/webhooks/c'));
    assert.equal(none.class, 'auth');
  } finally {
    await free.close();
    await member.close();
  }
});

// ------------------------------------------------------------------ Square

test('Square: the application token subscribes the exact URL to booking events; Square\'s signature key verifies its deliveries', async () => {
  const fake = await startFakeSquare();
  try {
    const ctx = ctxOf(fake.url, { accessToken: fake.accessToken, applicationToken: fake.applicationToken });
    const url = 'https://meridian.example/webhooks/clinic-main';
    const made = value(await subs(square).create(ctx, url));
    const held = fake.webhookSubscriptions();
    assert.equal(held.length, 1);
    assert.equal(held[0].id, made.remoteId);
    assert.equal(held[0].notification_url, url);
    assert.deepEqual(held[0].event_types, ['booking.created', 'booking.updated']);
    assert.equal(made.secrets?.signatureKey, held[0].signature_key);

    const body = readFileSync(new URL('square/booking-created.json', samples), 'utf8');
    const delivery = fake.signedDelivery(made.remoteId, body);
    const req = { rawBody: Buffer.from(body), headers: delivery.headers, url: delivery.url, now: new Date() };
    assert.deepEqual(square.verify(req, made.secrets!, { notificationUrl: url }), { ok: true });
    assert.deepEqual(square.verify(req, made.secrets!), { ok: true }, 'the URL Square posted to');
    assert.equal(square.verify({ ...req, url: `${url}/` }, made.secrets!).ok, false, 'a URL that differs by one byte does not verify');
    assert.equal(square.parseWebhook(req).length, 1);

    assert.deepEqual(value(await subs(square).check(ctx, made.remoteId)), { active: true, url });
    fake.disableSubscription(made.remoteId);
    const checked = value(await subs(square).check(ctx, made.remoteId));
    assert.equal(checked.active, false);
    assert.match(checked.detail ?? '', /disabled/);

    value(await subs(square).remove(ctx, made.remoteId));
    assert.equal(fake.webhookSubscriptions().length, 0);
    value(await subs(square).remove(ctx, made.remoteId));
    assert.equal(value(await subs(square).check(ctx, made.remoteId)).active, false);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('Square: the seller\'s OAuth token is refused for subscriptions, and no application token is an auth failure in words', async () => {
  const fake = await startFakeSquare();
  try {
    const url = 'https://meridian.example/webhooks/clinic-main';
    const seller = failure(await subs(square).create(ctxOf(fake.url, { accessToken: fake.accessToken, applicationToken: fake.accessToken }), url));
    assert.equal(seller.class, 'auth');
    assert.match(seller.message, /personal access token/);
    const missing = failure(await subs(square).create(ctxOf(fake.url, { accessToken: fake.accessToken }), url));
    assert.equal(missing.class, 'auth');
    assert.match(missing.message, /applicationToken/);
    assert.equal(fake.webhookSubscriptions().length, 0);
    assert.ok(square.descriptor.auth.some((a) => a.key === 'applicationToken' && a.secret && !a.required && a.help));
  } finally {
    await fake.close();
  }
});

// ------------------------------------------------------------------ Acuity

test('Acuity: one webhook per parsed event, kept together as one remote id; deliveries signed with the API key verify; removal takes all', async () => {
  const fake = await startFakeAcuity();
  try {
    const ctx = ctxOf(fake.url, { ...fake.credentials });
    const url = 'https://meridian.example/webhooks/clinic-main';
    const made = value(await subs(acuity).create(ctx, url));
    assert.equal(made.secrets, undefined, 'Acuity signs with the API key the connection already has');
    const held = fake.webhooks();
    assert.deepEqual(held.map((h) => h.event), ACUITY_EVENTS);
    assert.ok(held.every((h) => h.target === url));
    assert.deepEqual(JSON.parse(made.remoteId), held.map((h) => String(h.id)));

    for (const event of ACUITY_EVENTS) {
      const body = `action=${event}&id=1284401937&calendarID=8841203&appointmentTypeID=55120931`;
      const req = { rawBody: Buffer.from(body), headers: fake.signedDelivery(body), url, now: new Date() };
      assert.deepEqual(acuity.verify(req, { apiKey: fake.credentials.apiKey }), { ok: true });
      assert.equal(acuity.parseWebhook(req).length, 1, `${event} parses`);
    }

    // A retried create reuses what is there instead of spending more of the 25.
    assert.equal(value(await subs(acuity).create(ctx, url)).remoteId, made.remoteId);
    assert.equal(fake.webhooks().length, ACUITY_EVENTS.length);

    assert.deepEqual(value(await subs(acuity).check(ctx, made.remoteId)), { active: true, url });
    fake.dropWebhook(held[2].id);
    const checked = value(await subs(acuity).check(ctx, made.remoteId));
    assert.equal(checked.active, false);
    assert.match(checked.detail ?? '', /1 of the 4/);

    value(await subs(acuity).remove(ctx, made.remoteId));
    assert.equal(fake.webhooks().length, 0);
    value(await subs(acuity).remove(ctx, made.remoteId));
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('Acuity: the 26th webhook fails; Meridian says so in words and leaves nothing half-made', async () => {
  const fake = await startFakeAcuity();
  try {
    const ctx = ctxOf(fake.url, { ...fake.credentials });
    // The fake's own rule first: 25 are accepted, the 26th is refused with 400.
    const auth = { authorization: `Basic ${Buffer.from(`${fake.credentials.userId}:${fake.credentials.apiKey}`).toString('base64')}`, 'content-type': 'application/json' };
    for (let i = 0; i < ACUITY_WEBHOOK_LIMIT - 2; i++) {
      const r = await fetch(`${fake.url}/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ target: `https://other.example/hook/${i}`, event: 'appointment.scheduled' }) });
      assert.equal(r.status, 200);
    }
    // 23 in use: Meridian's 4 would make 27. Refused before anything is created.
    const f = failure(await subs(acuity).create(ctx, 'https://meridian.example/webhooks/clinic-main'));
    assert.equal(f.class, 'permanent');
    assert.match(f.message, /at most 25 webhooks/);
    assert.equal(fake.webhooks().length, ACUITY_WEBHOOK_LIMIT - 2);
    for (let i = 0; i < 2; i++) {
      await fetch(`${fake.url}/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ target: `https://other.example/more/${i}`, event: 'appointment.canceled' }) });
    }
    const r26 = await fetch(`${fake.url}/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ target: 'https://other.example/26', event: 'appointment.changed' }) });
    assert.equal(r26.status, 400);
    assert.equal(fake.webhooks().length, ACUITY_WEBHOOK_LIMIT);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('Acuity: a limit reached while creating (another tool raced us) undoes what was made', async () => {
  const fake = await startFakeAcuity();
  try {
    const ctx = ctxOf(fake.url, { ...fake.credentials });
    const auth = { authorization: `Basic ${Buffer.from(`${fake.credentials.userId}:${fake.credentials.apiKey}`).toString('base64')}`, 'content-type': 'application/json' };
    for (let i = 0; i < ACUITY_WEBHOOK_LIMIT - 4; i++) {
      await fetch(`${fake.url}/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ target: `https://other.example/hook/${i}`, event: 'appointment.scheduled' }) });
    }
    // Room for exactly 4 when Meridian counts; another tool takes one just after the count.
    let raced = false;
    const racing: typeof fetch = async (input, init) => {
      if (!raced && init?.method === 'POST') {
        raced = true;
        await fetch(`${fake.url}/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ target: 'https://other.example/racer', event: 'appointment.changed' }) });
      }
      return fetch(input, init);
    };
    const f = failure(await subs(acuity).create({ ...ctx, fetch: racing }, 'https://meridian.example/webhooks/clinic-main'));
    assert.equal(f.class, 'permanent');
    assert.match(f.message, /at most 25 webhooks/);
    assert.equal(fake.webhooks().filter((h) => h.target.startsWith('https://meridian.example')).length, 0);
  } finally {
    await fake.close();
  }
});

// ------------------------------------------------------------------ Cal.com

test('Cal.com: create subscribes the booking triggers with a secret Meridian generated; that secret verifies deliveries', async () => {
  const fake = await startFakeCalCom();
  try {
    const ctx = ctxOf(fake.url, { apiKey: fake.apiKey });
    const url = 'https://meridian.example/webhooks/clinic-main';
    const made = value(await subs(calCom).create(ctx, url));
    const held = fake.webhooks();
    assert.equal(held.length, 1);
    assert.equal(String(held[0].id), made.remoteId);
    assert.equal(held[0].subscriberUrl, url);
    assert.deepEqual(held[0].triggers, TRIGGERS);
    assert.equal(held[0].active, true);
    assert.equal(held[0].payloadTemplate, null, 'the default payload, which the parser reads');
    assert.ok(made.secrets?.webhookSecret && made.secrets.webhookSecret.length >= 43);
    assert.equal(held[0].secret, made.secrets.webhookSecret);

    for (const trigger of TRIGGERS) {
      const body = JSON.stringify({
        triggerEvent: trigger, createdAt: '2026-05-24T09:30:00.538Z',
        payload: trigger === 'BOOKING_NO_SHOW_UPDATED'
          ? { message: 'john@example.com marked as no-show', attendees: [{ email: 'john@example.com', noShow: true }], bookingUid: 'bFJeNb2uX8ANpT3JL5EfXw', bookingId: 91 }
          : { uid: 'bFJeNb2uX8ANpT3JL5EfXw', startTime: '2026-05-25T09:30:00Z', endTime: '2026-05-25T10:30:00Z', organizer: { name: 'Dr. Mei Lin', email: fake.me.email }, attendees: [{ name: 'John Doe', email: 'john@example.com' }], eventTypeId: 7 },
      });
      const req = { rawBody: Buffer.from(body), headers: fake.signedDelivery(made.remoteId, body), url, now: new Date() };
      assert.deepEqual(calCom.verify(req, made.secrets), { ok: true });
      assert.equal(calCom.parseWebhook(req).length, 1, `${trigger} parses`);
    }

    assert.deepEqual(value(await subs(calCom).check(ctx, made.remoteId)), { active: true, url });
    fake.switchOff(made.remoteId);
    assert.equal(value(await subs(calCom).check(ctx, made.remoteId)).active, false);

    value(await subs(calCom).remove(ctx, made.remoteId));
    assert.equal(fake.webhooks().length, 0);
    value(await subs(calCom).remove(ctx, made.remoteId));
    assert.equal(value(await subs(calCom).check(ctx, made.remoteId)).active, false);
    assert.equal(failure(await subs(calCom).create(ctxOf(fake.url, {}), url)).class, 'auth');
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

// ------------------------------------------------------------------ set by hand

test('platforms that cannot be subscribed through their API say what to paste where: 2–4 plain steps with {url}', async () => {
  const { getConnector } = await import('../../src/connectors/registry.ts');
  const { WEBHOOK_TEMPLATES } = await import('../../src/connectors/sources/youcanbookme/index.ts');
  const manual = ['youcanbookme', 'timetap', 'bookafy', 'simplybook', 'appointlet', 'jane', 'jotform', 'typeform', 'tally', 'lead-form', 'hubspot'];
  for (const id of manual) {
    const d = getConnector(id)?.descriptor;
    assert.ok(d?.manualWebhook, `${id} has manualWebhook`);
    const { steps } = d.manualWebhook;
    assert.ok(steps.length >= 2 && steps.length <= 4, `${id}: 2–4 steps`);
    assert.equal(steps.filter((s) => s.includes('{url}')).length, 1, `${id}: one step names {url}`);
    for (const s of steps) assert.ok(s.length > 20 && s.length < 300 && !/\n/.test(s), `${id}: a short plain sentence: ${s}`);
  }
  const ycbm = getConnector('youcanbookme')!.descriptor.manualWebhook!;
  for (const body of Object.values(WEBHOOK_TEMPLATES)) assert.ok(ycbm.template?.includes(body), 'the YouCanBookMe payloads the parser expects');
  for (const id of ['calendly', 'square', 'acuity', 'cal-com']) {
    assert.ok((getConnector(id) as SourceConnector).subscriptions, `${id} subscribes through its API`);
  }
});

test('the fakes refuse what the platforms refuse: an undocumented event or field (Calendly, by its OpenAPI schema), a writable signature key (Square)', async () => {
  const c = await startFakeCalendly();
  const s = await startFakeSquare();
  try {
    const post = (url: string, token: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const base = { url: 'https://meridian.example/w', organization: c.organization, user: c.me.uri, scope: 'user' };
    assert.equal((await post(`${c.url}/webhook_subscriptions`, c.token, { ...base, events: ['invitee.rescheduled'] })).status, 400);
    assert.equal((await post(`${c.url}/webhook_subscriptions`, c.token, { ...base, events: ['invitee.created'], signing_secret: 'x' })).status, 400);
    assert.equal((await post(`${c.url}/webhook_subscriptions`, c.token, { ...base, events: ['invitee.created'], scope: 'team' })).status, 400);
    assert.equal(c.violations.length, 3);
    assert.equal(c.webhookSubscriptions().length, 0);
    const sub = { event_types: ['booking.created'], notification_url: 'https://meridian.example/w', signature_key: 'mine' };
    const r = await post(`${s.url}/v2/webhooks/subscriptions`, s.applicationToken, { idempotency_key: 'k1', subscription: sub }, { 'square-version': '2025-08-20' });
    assert.equal(r.status, 400);
    const plain = await post(`${s.url}/v2/webhooks/subscriptions`, s.applicationToken, { idempotency_key: 'k2', subscription: { ...sub, signature_key: undefined, notification_url: 'http://meridian.example/w' } }, { 'square-version': '2025-08-20' });
    assert.equal(plain.status, 400, 'HTTPS only');
    assert.equal(s.webhookSubscriptions().length, 0);
  } finally {
    await c.close();
    await s.close();
  }
});
