// HubSpot CRM target: webhook signature vectors (v3, from the samples: good, tampered, wrong secret, missing,
// stale), which events name our meetings, sample bodies against the schema, meetings found again by the stored
// id (never a search), outcomes, contacts by e-mail only under the data agreement, rate limits, OAuth refresh,
// read-back, leads, and the engine path: a meeting moved or cancelled in HubSpot comes back through its webhook.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHmac, randomUUID } from 'node:crypto';
import { startFakeHubSpot, validate, type FakeHubSpot } from '../fakes/hubspot.ts';
import { connector, meetingProperties } from '../../src/connectors/targets/hubspot/index.ts';
import { changedMeetingIds, signedUri, verifyHubSpot } from '../../src/connectors/targets/hubspot/webhook.ts';
import { failureOf, resetWindows } from '../../src/connectors/targets/hubspot/api.ts';
import { ConnectionMisconfigured, UnreadablePayload, type ConnectionContext, type TargetEvent, type WebhookRequest } from '../../src/connectors/types.ts';
import { openHub, makeLogger, type Hub } from '../../src/engine/hub/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { leadAnswer as ingestLead, webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { tempDir } from '../helpers.ts';

const sample = (f: string) => JSON.parse(readFileSync(new URL(`../fixtures/samples/hubspot/${f}`, import.meta.url), 'utf8'));
const vectors = sample('webhook-signature.vectors.json');

let hs: FakeHubSpot;
before(async () => { hs = await startFakeHubSpot(); });
after(() => hs.close());
beforeEach(() => resetWindows());

// ------------------------------------------------------------------ webhooks

const vectorReq = (o: { body?: string; headers?: Record<string, string>; now?: number; url?: string } = {}): WebhookRequest => ({
  rawBody: Buffer.from(o.body ?? vectors.body),
  headers: o.headers ?? Object.fromEntries(Object.entries(vectors.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v])),
  url: o.url ?? vectors.uri,
  now: new Date(o.now ?? Number(vectors.headers['X-HubSpot-Request-Timestamp']) + 1_000),
});
const secret = { clientSecret: vectors.clientSecret };

test('v3 signature vectors: valid, tampered byte, wrong secret, missing header, stale and future timestamps, rotation, no secret', () => {
  assert.deepEqual(verifyHubSpot(vectorReq(), secret), { ok: true });
  const tampered = vectors.body.replace('90411', '90412');
  assert.equal(verifyHubSpot(vectorReq({ body: tampered }), secret).ok, false);
  assert.equal(verifyHubSpot(vectorReq(), { clientSecret: `${vectors.clientSecret}x` }).ok, false);
  assert.equal(verifyHubSpot(vectorReq({ url: vectors.uri.replace('clinic-7', 'clinic-8') }), secret).ok, false, 'the URI is signed');
  const { 'x-hubspot-signature-v3': _s, ...noSig } = vectorReq().headers;
  assert.match((verifyHubSpot(vectorReq({ headers: noSig }), secret) as { reason: string }).reason, /missing/);
  const { 'x-hubspot-request-timestamp': _t, ...noTs } = vectorReq().headers;
  assert.equal(verifyHubSpot(vectorReq({ headers: noTs }), secret).ok, false);
  const ts = Number(vectors.headers['X-HubSpot-Request-Timestamp']);
  assert.match((verifyHubSpot(vectorReq({ now: ts + 300_001 }), secret) as { reason: string }).reason, /5-minute/);
  assert.equal(verifyHubSpot(vectorReq({ now: ts + 299_000 }), secret).ok, true, 'inside the window');
  assert.equal(verifyHubSpot(vectorReq({ now: ts - 301_000 }), secret).ok, false, 'too far in the future');
  assert.equal(verifyHubSpot(vectorReq(), { clientSecret: 'rotated', clientSecretPrevious: vectors.clientSecret }).ok, true);
  assert.throws(() => verifyHubSpot(vectorReq(), {}), ConnectionMisconfigured);
});

test('the URI is signed with HubSpot\'s listed escapes decoded', () => {
  assert.equal(signedUri('https://h.example/webhooks/hs%3Aa%2Cb?x=%40y%3Bz%20'), 'https://h.example/webhooks/hs:a,b?x=@y;z%20');
  const url = 'https://h.example/webhooks/hs?who=a%40b.example';
  const ts = String(Date.now());
  const sig = createHmac('sha256', 's').update(`POST${signedUri(url)}[]${ts}`).digest('base64');
  assert.ok(verifyHubSpot({ rawBody: Buffer.from('[]'), url, now: new Date(), headers: { 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': ts } }, { clientSecret: 's' }).ok);
});

test('only meeting events (object type 0-47) name changes; other events are ignored; unreadable bodies refused', () => {
  assert.deepEqual(changedMeetingIds(vectorReq()), [], 'the sample is a contact property change');
  const body = JSON.stringify([
    { eventId: 1, subscriptionType: 'object.propertyChange', objectTypeId: '0-47', objectId: 71130854122, propertyName: 'hs_meeting_start_time', propertyValue: '1804760400000', occurredAt: 1 },
    { eventId: 2, subscriptionType: 'object.deletion', objectTypeId: '0-47', objectId: 71130854123, occurredAt: 2 },
    { eventId: 3, subscriptionType: 'object.propertyChange', objectTypeId: '0-1', objectId: 90411, occurredAt: 3 },
  ]);
  assert.deepEqual(changedMeetingIds(vectorReq({ body })), ['71130854122', '71130854123']);
  assert.throws(() => changedMeetingIds(vectorReq({ body: '{"not":"an array"}' })), UnreadablePayload);
  assert.throws(() => changedMeetingIds(vectorReq({ body: 'nope' })), UnreadablePayload);
});

// ------------------------------------------------------------------ bodies

test('sample request bodies validate against the schema; a number as a property value does not', () => {
  assert.ok(validate.create(sample('meeting-create.request.json')), JSON.stringify(validate.create.errors));
  assert.ok(validate.update(sample('meeting-update.request.json')));
  assert.ok(validate.batchUpsert(sample('contacts-batch-upsert.request.json')));
  assert.ok(validate.search(sample('meeting-search-by-our-id.request.json')));
  assert.ok(validate.search(sample('contact-search-by-email.request.json')));
  assert.ok(!validate.create({ properties: { hs_timestamp: 1 }, associations: [] }), 'values are strings');
  assert.ok(!validate.create({ properties: {} }), 'associations are required');
});

test('meeting properties follow the sample (all strings); a moved booking is RESCHEDULED; statuses map to outcomes', () => {
  const s = sample('meeting-create.request.json').properties;
  const e: TargetEvent = { appointmentId: s.meridian_appointment_id, revision: 1, title: s.hs_meeting_title, description: s.hs_meeting_body, location: s.hs_meeting_location, start: '2027-03-10T16:30:00Z', end: '2027-03-10T17:20:00Z', timeZone: 'America/Denver', status: 'booked' };
  assert.deepEqual(meetingProperties(e, { owner: '81234567', idProperty: 'meridian_appointment_id', bookedStart: e.start }), s);
  const moved = sample('meeting-update.request.json').properties;
  const m = meetingProperties({ ...e, start: '2027-03-10T18:00:00Z', end: '2027-03-10T18:50:00Z' }, { bookedStart: e.start });
  for (const k of Object.keys(moved)) assert.equal(m[k], moved[k], k);
  assert.equal(meetingProperties({ ...e, status: 'cancelled' }, {}).hs_meeting_outcome, 'CANCELED');
  assert.equal(meetingProperties({ ...e, status: 'no_show' }, {}).hs_meeting_outcome, 'NO_SHOW');
  assert.equal(meetingProperties({ ...e, status: 'completed' }, {}).hs_meeting_outcome, 'COMPLETED');
});

test('a 429 waits per its policy: the 10-second window, or an hour for the daily limit', () => {
  const h = new Headers({ 'x-hubspot-ratelimit-interval-milliseconds': '10000' });
  const ten = failureOf('create meeting', 429, sample('error-429.response.json'), undefined, h);
  assert.deepEqual([ten.class, ten.retryAfterMs], ['throttled', 10_000]);
  assert.equal(failureOf('x', 429, { ...sample('error-429.response.json'), policyName: 'DAILY' }).retryAfterMs, 3_600_000);
  const conflict = failureOf('create contact', 409, sample('error-409-contact-exists.response.json'));
  assert.equal(conflict.class, 'conflict');
  assert.ok(!conflict.message.includes('90411'), 'HubSpot\'s message text is not carried');
});

// ------------------------------------------------------------------ client against the fake

function ctx(config: Record<string, unknown> = {}, secrets?: Record<string, string>, id = 'hs'): ConnectionContext {
  return { connectionId: id, config, secrets: secrets ?? { privateAppToken: hs.privateAppToken }, baseUrl: hs.url, fetch, now: () => new Date(), saveSecrets: async () => {} };
}
const ev = (o: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: randomUUID(), revision: 1, title: 'J. R. · Acupuncture', description: 'Acupuncture with Dr Okafor.', location: 'Room 2',
  start: '2027-03-10T16:30:00Z', end: '2027-03-10T17:20:00Z', timeZone: 'America/Denver', status: 'booked', practitionerId: 'okafor', ...o,
});
const meetingOf = (id: string) => hs.meetings().filter((m) => m.properties.meridian_appointment_id === id);

test('without the agreement: one meeting, no contact, found again by its stored id (never searched), outcomes, nothing archived', async () => {
  const client = connector.client!(ctx({ owners: { okafor: '81234567' } }));
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok, JSON.stringify(r));
  let [m] = meetingOf(e.appointmentId);
  assert.deepEqual(m.associations, []);
  assert.equal(m.properties.hubspot_owner_id, '81234567');
  assert.equal(hs.contacts().length, 0);
  const moved = await client.upsert({ ...e, revision: 2, start: '2027-03-11T16:30:00Z', end: '2027-03-11T17:20:00Z' }, r.value);
  assert.ok(moved.ok);
  [m] = meetingOf(e.appointmentId);
  assert.equal(m.properties.hs_meeting_outcome, 'RESCHEDULED');
  assert.equal(m.properties.hs_meeting_start_time, '2027-03-11T16:30:00.000Z');
  const cancelled = await client.upsert({ ...e, revision: 3, status: 'cancelled', title: '[Cancelled] J. R. · Acupuncture' }, moved.value);
  assert.ok(cancelled.ok);
  assert.ok((await client.remove(cancelled.value, e.appointmentId)).ok);
  assert.equal(meetingOf(e.appointmentId).length, 1);
  assert.equal(meetingOf(e.appointmentId)[0].properties.hs_meeting_outcome, 'CANCELED');
  assert.equal(meetingOf(e.appointmentId)[0].archived, false);
  assert.equal(hs.searches, 0, 'never searched');
  assert.deepEqual(hs.violations, []);
});

test('with the agreement: the contact is upserted by e-mail and associated (type 200); the same person again is the same contact', async () => {
  const client = connector.client!(ctx({ coveredByAgreement: true }));
  const a = ev({ person: { name: 'Jordan Reyes', email: 'Jordan.Reyes@example.com', phone: '+1 303 555 0142' } });
  const r = await client.upsert(a, undefined);
  assert.ok(r.ok, JSON.stringify(r));
  const contact = hs.contacts().find((c) => c.properties.email === 'jordan.reyes@example.com')!;
  assert.deepEqual([contact.properties.firstname, contact.properties.lastname, contact.properties.phone], ['Jordan', 'Reyes', '+1 303 555 0142']);
  assert.deepEqual(meetingOf(a.appointmentId)[0].associations, [contact.id]);
  const b = ev({ person: { name: 'Jordan Reyes', email: 'jordan.reyes@example.com' } });
  assert.ok((await client.upsert(b, undefined)).ok);
  assert.equal(hs.contacts().filter((c) => c.properties.email === 'jordan.reyes@example.com').length, 1);
  assert.deepEqual(meetingOf(b.appointmentId)[0].associations, [contact.id]);
  assert.deepEqual(hs.violations, []);
});

test('a meeting deleted in HubSpot is written again for a live appointment, but not brought back to say it was cancelled', async () => {
  const client = connector.client!(ctx());
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok);
  hs.archiveBehindOurBack(r.value.remoteId);
  const again = await client.upsert({ ...e, revision: 2 }, r.value);
  assert.ok(again.ok);
  assert.notEqual(again.value.remoteId, r.value.remoteId);
  hs.archiveBehindOurBack(again.value.remoteId);
  const cancel = await client.upsert({ ...e, revision: 3, status: 'cancelled' }, again.value);
  assert.ok(cancel.ok);
  assert.equal(meetingOf(e.appointmentId).filter((m) => !m.archived).length, 0);
});

test('rate limit: a spent 10-second window makes the next write wait without calling; a 429 is throttled with the window', async () => {
  const client = connector.client!(ctx({}, undefined, 'hs-limit'));
  await new Promise((r) => setTimeout(r, 10_100));
  hs.perTenSeconds = 2;
  try {
    assert.ok((await client.upsert(ev(), undefined)).ok);
    assert.ok((await client.upsert(ev(), undefined)).ok);
    const calls = hs.requests.length;
    const waiting = await client.upsert(ev(), undefined);
    assert.ok(!waiting.ok);
    assert.equal(waiting.failure.class, 'throttled');
    assert.ok((waiting.failure.retryAfterMs ?? 0) > 0 && (waiting.failure.retryAfterMs ?? 0) <= 10_000);
    assert.equal(hs.requests.length, calls, 'no request while the window is spent');
    resetWindows();
    const refused = await client.upsert(ev(), undefined);
    assert.ok(!refused.ok);
    assert.deepEqual([refused.failure.class, refused.failure.retryAfterMs], ['throttled', 10_000]);
    assert.equal(hs.rateLimited, 1);
  } finally {
    hs.perTenSeconds = 100;
    resetWindows();
  }
});

test('OAuth: tokens from the refresh token, refreshed once when refused; a bad grant is an auth failure', async () => {
  const client = connector.client!(ctx({}, { ...hs.oauth }));
  assert.ok((await client.upsert(ev(), undefined)).ok);
  hs.expireTokens();
  assert.ok((await connector.client!(ctx({}, { ...hs.oauth, accessToken: 'stale', expiresAt: String(Date.now() + 3_600_000) })).upsert(ev(), undefined)).ok, 'a refused token is refreshed and the call retried');
  const bad = await connector.client!(ctx({}, { ...hs.oauth, refreshToken: 'wrong' })).upsert(ev(), undefined);
  assert.ok(!bad.ok && bad.failure.class === 'auth');
  const none = await connector.client!(ctx({}, {})).upsert(ev(), undefined);
  assert.ok(!none.ok && none.failure.class === 'auth');
});

test('inspect: in sync, moved in HubSpot, cancelled in HubSpot (missing), deleted (missing)', async () => {
  const client = connector.client!(ctx());
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok);
  assert.equal((await client.inspect!(e, r.value) as { value: { state: string } }).value.state, 'in_sync');
  hs.editBehindOurBack(r.value.remoteId, { hs_meeting_start_time: '2027-03-12T15:00:00.000Z', hs_meeting_end_time: '2027-03-12T15:50:00.000Z' });
  assert.deepEqual(await client.inspect!(e, r.value), { ok: true, value: { state: 'changed', start: '2027-03-12T15:00:00.000Z', end: '2027-03-12T15:50:00.000Z' } });
  hs.editBehindOurBack(r.value.remoteId, { hs_meeting_outcome: 'CANCELED' });
  assert.deepEqual(await client.inspect!(e, r.value), { ok: true, value: { state: 'missing' } });
  hs.archiveBehindOurBack(r.value.remoteId);
  assert.deepEqual(await client.inspect!(e, r.value), { ok: true, value: { state: 'missing' } });
});

test('leads become contacts by e-mail (once); a lead without e-mail is refused for staff', async () => {
  const client = connector.client!(ctx());
  const lead = { leadId: 'l1', name: 'Ana Novak', email: 'ana.novak@example.net', phone: '+49 30 5550 1823', description: 'x', submittedAt: '2027-03-01T10:00:00Z' };
  const a = await client.upsertLead!(lead);
  const b = await client.upsertLead!(lead);
  assert.ok(a.ok && b.ok);
  assert.equal(a.value.remoteId, b.value.remoteId);
  assert.equal(hs.contacts().filter((c) => c.properties.email === 'ana.novak@example.net').length, 1);
  const none = await client.upsertLead!({ ...lead, email: undefined });
  assert.ok(!none.ok && none.failure.class === 'permanent');
});

// ------------------------------------------------------------------ engine path

test('engine: a meeting moved, then cancelled, in HubSpot comes back through its signed webhook under `twoWay: accept`; a lead becomes a contact', async () => {
  const dir = tempDir();
  const hub: Hub = await openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: { HS_TOKEN: hs.privateAppToken, HS_SECRET: 'app-secret', LF_SECRET: 'lf-secret' } });
  try {
    const c = parseConfig(`
clinic: { id: c, name: Cedar Clinic, timeZone: America/Denver, targets: [{ connection: hs }], hours: { mon: ["08:00-18:00"], tue: ["08:00-18:00"], wed: ["08:00-18:00"], thu: ["08:00-18:00"], fri: ["08:00-18:00"] } }
locations: [{ id: l, name: Cedar Street }]
services: [{ id: acu, name: Acupuncture, durationMinutes: 50 }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l], services: [acu] }]
connections:
  - id: hs
    platform: hubspot
    baseUrl: ${hs.url}
    config: { coveredByAgreement: true, twoWay: accept }
    secrets: { privateAppToken: { env: HS_TOKEN }, clientSecret: { env: HS_SECRET } }
  - id: form
    platform: lead-form
    secrets: { signingSecret: { env: LF_SECRET } }
`, 'test.yaml');
    await applyConfig(hub, c.config, c.hash, 'test');
    const start = new Date(Date.now() + 3 * 86_400_000);
    start.setUTCHours(16, 0, 0, 0);
    const at = (d: number, h: number) => new Date(start.getTime() + d * 86_400_000 + h * 3_600_000).toISOString();
    const a = await staffCreate(hub, { practitionerId: 'okafor', serviceId: 'acu', start: at(0, 0), end: at(0, 1), patient: { name: 'Ines Varga', email: 'ines.varga@example.net' }, override: true }, 'test');
    await drain(hub);
    const [m] = meetingOf(a.id);
    assert.ok(m, 'meeting written');
    assert.equal(m.properties.hs_meeting_title, 'Ines Varga · Acupuncture', 'full text under the agreement');
    const url = 'http://meridian.test/webhooks/hs';
    const change = (type: string, prop?: string) => [{ eventId: Math.floor(Math.random() * 1e9), subscriptionId: 1, portalId: 7713005, appId: 5512, occurredAt: Date.now(), subscriptionType: type, attemptNumber: 0, objectId: Number(m.id), objectTypeId: '0-47', ...(prop ? { propertyName: prop } : {}), changeSource: 'CRM' }];

    // Our own write echoed back changes nothing.
    let d = hs.webhook(change('object.propertyChange', 'hs_meeting_title'), url, 'app-secret');
    let out = await ingestWebhook(hub, 'hs', { rawBody: d.body, headers: d.headers, url });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal(out.body.checks, 1);
    await drain(hub);
    assert.equal((await getAppointment(hub.store.db, a.id))!.revision, 1);

    // A wrong signature is refused.
    d = hs.webhook(change('object.propertyChange'), url, 'not-the-secret');
    assert.equal((await ingestWebhook(hub, 'hs', { rawBody: d.body, headers: d.headers, url })).status, 401);

    // Moved in HubSpot → rescheduled in Meridian, once.
    hs.editBehindOurBack(m.id, { hs_meeting_start_time: at(1, 2), hs_meeting_end_time: at(1, 3), hs_timestamp: at(1, 2) });
    d = hs.webhook(change('object.propertyChange', 'hs_meeting_start_time'), url, 'app-secret');
    out = await ingestWebhook(hub, 'hs', { rawBody: d.body, headers: d.headers, url });
    assert.equal(out.status, 200);
    await drain(hub);
    let appt = (await getAppointment(hub.store.db, a.id))!;
    assert.equal(Date.parse(appt.start), Date.parse(at(1, 2)));
    assert.equal(appt.revision, 2);
    assert.equal(meetingOf(a.id)[0].properties.hs_meeting_outcome, 'RESCHEDULED');

    // Cancelled in HubSpot → cancelled in Meridian; the meeting stays, CANCELED.
    hs.editBehindOurBack(m.id, { hs_meeting_outcome: 'CANCELED' });
    d = hs.webhook(change('object.propertyChange', 'hs_meeting_outcome'), url, 'app-secret');
    await ingestWebhook(hub, 'hs', { rawBody: d.body, headers: d.headers, url });
    await drain(hub);
    appt = (await getAppointment(hub.store.db, a.id))!;
    assert.equal(appt.status, 'cancelled');
    assert.equal(meetingOf(a.id).length, 1);
    assert.equal(meetingOf(a.id)[0].properties.hs_meeting_outcome, 'CANCELED');
    const actors = (await hub.store.db.selectFrom('audit').select(['action', 'actor']).where('entity_id', '=', a.id).execute());
    assert.ok(actors.some((x) => x.action === 'appointment.rescheduled' && x.actor === 'target:hs'));
    assert.ok(actors.some((x) => x.action === 'appointment.cancelled' && x.actor === 'target:hs'));

    // A lead from the clinic's form becomes a HubSpot contact.
    const body = Buffer.from(JSON.stringify({ submissionId: 's-1', name: 'Ana Novak', email: 'ana.lead@example.net', phone: '+49 30 5550 1823', service: 'Acupuncture', preferredTimes: 'any weekday morning' }));
    const sig = createHmac('sha256', 'lf-secret').update(body).digest('hex');
    const lr = await ingestLead(hub, 'form', { rawBody: body, headers: { 'content-type': 'application/json', 'x-meridian-signature': `sha256=${sig}` }, url: 'http://meridian.test/leads/form' });
    assert.equal(lr.status, 200, JSON.stringify(lr.body));
    await drain(hub);
    assert.equal(hs.contacts().filter((x) => x.properties.email === 'ana.lead@example.net').length, 1);
    assert.equal(hs.searches, 0);
    assert.deepEqual(hs.violations, []);
  } finally {
    await hub.store.close();
    dir.cleanup();
  }
});
