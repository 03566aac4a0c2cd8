// Calendly contract tests from the published samples: signatures, parsing to the documented facts,
// the reschedule pair, the webhook schema, the `meridian parse-webhook` command's exit codes, and list,
// fetch and write-back against the fake Calendly API (test/fakes/calendly.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { connector } from '../../src/connectors/sources/calendly/index.ts';
import { sampleInviteeUri } from '../../src/connectors/sources/calendly/sample.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import { startFakeCalendly, type FakeCalendly } from '../fakes/calendly.ts';
import { meridian } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/calendly/', import.meta.url);
const KEY = 'calendly-sample-signing-key-b61e04';
const SAMPLES: Record<string, string> = {
  'invitee-created.json': 't=1770655268,v1=98bc1364d44e77bde35797e4fcb943db50133ce527378613eb5a8c085ba85642',
  'invitee-canceled-rescheduled.json': 't=1770930346,v1=cbfa8210a11331424e5a163592efbb6785a2c366ebe3f6ed6c73421b959ab6ad',
  'invitee-created-after-reschedule.json': 't=1770930346,v1=bd60fc62c49ddadb9566d8ad114519b1592df4fbc52b74b8cffa2306d20f851a',
  'invitee-no-show-created.json': 't=1771875131,v1=26e135706deb71ee344aef8551d6e840da64c01700d1319c69edd826ca8c3b6b',
};
const FIRST = 'https://api.calendly.com/scheduled_events/6e1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b/invitees/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const SECOND = 'https://api.calendly.com/scheduled_events/7f2b3c4d-5e6f-4a71-9b8c-0d1e2f3a4b5c/invitees/2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e';

function req(file: string, over: Partial<WebhookRequest> = {}): WebhookRequest {
  const header = SAMPLES[file];
  const t = Number(/t=(\d+)/.exec(header)![1]);
  return { rawBody: readFileSync(new URL(file, DIR)), headers: { 'calendly-webhook-signature': header, 'content-type': 'application/json' }, url: '', now: new Date(t * 1000), ...over };
}

test('every sample verifies with the documented key, header and time', () => {
  for (const f of Object.keys(SAMPLES)) assert.deepEqual(connector.verify(req(f), { signingKey: KEY }), { ok: true }, f);
});

test('tampered bodies, wrong keys, stale or future timestamps and malformed headers are rejected', () => {
  const r = req('invitee-created.json');
  const tampered = Buffer.from(r.rawBody.toString().replace('Liam', 'Liem'));
  assert.equal(connector.verify({ ...r, rawBody: tampered }, { signingKey: KEY }).ok, false);
  assert.equal(connector.verify(r, { signingKey: 'other-key' }).ok, false);
  assert.equal(connector.verify({ ...r, now: new Date(r.now.getTime() + 181_000) }, { signingKey: KEY }).ok, false);
  assert.equal(connector.verify({ ...r, now: new Date(r.now.getTime() - 181_000) }, { signingKey: KEY }).ok, false);
  assert.equal(connector.verify({ ...r, now: new Date(r.now.getTime() + 179_000) }, { signingKey: KEY }).ok, true);
  for (const h of ['', 'v1=abc', 't=abc,v1=00', 't=1770655268', 't=1770655268,v1=zz', KEY]) {
    const out = connector.verify({ ...r, headers: { 'calendly-webhook-signature': h } }, { signingKey: KEY });
    assert.equal(out.ok, false, `header "${h}"`);
  }
  assert.equal(connector.verify({ ...r, headers: {} }, { signingKey: KEY }).ok, false);
});

test('a connection without its signing key is misconfigured, never a bypass; the previous key works during rotation', () => {
  assert.throws(() => connector.verify(req('invitee-created.json'), {}), ConnectionMisconfigured);
  assert.deepEqual(connector.verify(req('invitee-created.json'), { signingKey: 'new-key', signingKeyPrevious: KEY }), { ok: true });
});

test('the facts vector: the docs test vector signs as documented', () => {
  const body = '{"event":"invitee.created","payload":{"uri":"https://api.calendly.com/scheduled_events/E1/invitees/I1"}}';
  assert.equal(createHmac('sha256', 'test_calendly_signing_key').update(`1767225600.${body}`).digest('hex'), 'cc4faf8ad8fe98aa2f430b079ed0b85fe9142f35744967cdfeaf18b4f1761323');
  const r: WebhookRequest = { rawBody: Buffer.from(body), headers: { 'calendly-webhook-signature': 't=1767225600,v1=cc4faf8ad8fe98aa2f430b079ed0b85fe9142f35744967cdfeaf18b4f1761323' }, url: '', now: new Date(1767225600_000) };
  assert.deepEqual(connector.verify(r, { signingKey: 'test_calendly_signing_key' }), { ok: true });
});

test('invitee.created parses to the documented facts', () => {
  const [c] = connector.parseWebhook(req('invitee-created.json'));
  assert.equal(c.platform, 'calendly');
  assert.equal(c.kind, 'upsert');
  assert.equal(c.externalId, FIRST);
  assert.equal(c.appointment.status, 'booked');
  assert.equal(c.appointment.start, '2026-02-20T15:00:00Z');
  assert.equal(c.appointment.end, '2026-02-20T15:45:00Z');
  assert.equal(c.appointment.practitionerRef, 'https://api.calendly.com/users/0c5b9a7e-3f1d-4a2b-9e8c-5d6f7a8b9c0d');
  assert.equal(c.appointment.practitionerEmail, 'dr.okafor@lotusclinic.example');
  assert.equal(c.appointment.patient?.name, 'Liam Carter');
  assert.equal(c.appointment.patient?.email, 'liam.carter@example.net');
  assert.equal(c.appointment.timeZone, 'America/Chicago');
  assert.equal(c.needsFetch, false);
  assert.match(c.occurredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.equal(c.replacesExternalId, undefined);
});

test('a reschedule pair: the old invitee cancelled, the new one replacing it', () => {
  const [old] = connector.parseWebhook(req('invitee-canceled-rescheduled.json'));
  assert.equal(old.kind, 'cancel');
  assert.equal(old.externalId, FIRST);
  assert.equal(old.appointment.status, 'cancelled');
  const [neu] = connector.parseWebhook(req('invitee-created-after-reschedule.json'));
  assert.equal(neu.kind, 'upsert');
  assert.equal(neu.externalId, SECOND);
  assert.equal(neu.replacesExternalId, FIRST);
  assert.equal(neu.appointment.start, '2026-02-23T18:30:00Z');
  assert.equal(neu.appointment.end, '2026-02-23T19:15:00Z');
  assert.match(neu.appointment.notes ?? '', /Lower back pain/);
});

test('a no-show is a no_show change for the same invitee', () => {
  const [c] = connector.parseWebhook(req('invitee-no-show-created.json'));
  assert.equal(c.kind, 'no_show');
  assert.equal(c.externalId, SECOND);
  assert.equal(c.appointment.status, 'no_show');
});

test('non-booking events are ignored; unreadable ones are reported without patient data', () => {
  const r = req('invitee-created.json');
  assert.deepEqual(connector.parseWebhook({ ...r, rawBody: Buffer.from('{"event":"routing_form_submission.created","payload":{}}') }), []);
  assert.deepEqual(connector.parseWebhook({ ...r, rawBody: Buffer.from('{"event":"toString","payload":{}}') }), []);
  for (const body of ['not json', '{}', '{"event":"invitee.created"}', '{"event":"invitee.created","payload":{"uri":"x","name":"Liam Carter"}}']) {
    assert.throws(() => connector.parseWebhook({ ...r, rawBody: Buffer.from(body) }), (e: unknown) => e instanceof UnreadablePayload && !/Liam/.test((e as Error).message), body);
  }
  const bad = r.rawBody.toString().replace('"start_time": "2026-02-20T15:00:00.000000Z"', '"start_time": "soon"');
  assert.throws(() => connector.parseWebhook({ ...r, rawBody: Buffer.from(bad) }), UnreadablePayload);
});

test('the samples and our own sample webhooks validate against Calendly\'s webhook schema', () => {
  const ajv = new Ajv2020Module.default({ strict: false, allErrors: true });
  addFormatsModule.default(ajv);
  const schema = JSON.parse(readFileSync(new URL('../fixtures/specs/calendly-v2/calendly-webhooks.schema.json', import.meta.url), 'utf8'));
  const validate = ajv.compile(schema);
  // The spec predates invitee_no_show.* events, so those are checked by our own tests only.
  for (const f of ['invitee-created.json', 'invitee-canceled-rescheduled.json', 'invitee-created-after-reschedule.json']) {
    assert.ok(validate(JSON.parse(readFileSync(new URL(f, DIR), 'utf8'))), `${f}: ${ajv.errorsText(validate.errors)}`);
  }
  const now = new Date('2026-12-01T10:00:00Z');
  const s = connector.sampleWebhook!({ event: 'created', bookingId: '9f8e7d6c-5b4a-4321-8fed-cba987654321', start: '2026-12-02T16:00:00Z', end: '2026-12-02T16:45:00Z', timeZone: 'America/Chicago', patient: { name: 'Jordan Rivera', email: 'j@example.org' } }, { signingKey: 'k' }, now);
  assert.ok(validate(JSON.parse(s.rawBody.toString())), ajv.errorsText(validate.errors));
  assert.deepEqual(connector.verify({ rawBody: s.rawBody, headers: s.headers, url: '', now }, { signingKey: 'k' }), { ok: true });
  const [c] = connector.parseWebhook({ rawBody: s.rawBody, headers: s.headers, url: '', now });
  assert.equal(c.externalId, sampleInviteeUri('9f8e7d6c-5b4a-4321-8fed-cba987654321'));
  assert.equal(c.appointment.start, '2026-12-02T16:00:00Z');
});

test('parseRecord reads API invitees (one, wrapped, or a list)', () => {
  const env = JSON.parse(readFileSync(new URL('invitee-created.json', DIR), 'utf8'));
  const one = connector.parseRecord!(env.payload);
  assert.equal(one[0].externalId, FIRST);
  assert.equal(one[0].kind, 'upsert');
  const list = connector.parseRecord!({ collection: [env.payload, { ...env.payload, status: 'canceled' }] });
  assert.deepEqual(list.map((c) => c.kind), ['upsert', 'cancel']);
  assert.throws(() => connector.parseRecord!(42), UnreadablePayload);
});

const cli = (args: string[]) => meridian(args);

test('meridian parse-webhook and parse-record: output and exit codes 0, 3, 4, 2', async () => {
  const body = new URL('invitee-created.json', DIR).pathname;
  const base = ['parse-webhook', '--platform', 'calendly', '--body', body, '--header', `Calendly-Webhook-Signature: ${SAMPLES['invitee-created.json']}`];
  const good = await cli([...base, '--secret', KEY, '--now', '2026-02-09T16:41:08Z']);
  assert.equal(good.code, 0, good.stderr);
  const out = JSON.parse(good.stdout);
  assert.equal(out.verified, true);
  assert.equal(out.changes[0].externalId, FIRST);
  assert.equal(out.changes[0].appointment.start, '2026-02-20T15:00:00Z');
  assert.equal((await cli([...base, '--secret', 'wrong', '--now', '2026-02-09T16:41:08Z'])).code, 3);
  assert.equal((await cli([...base, '--secret', KEY])).code, 3, 'outside the replay window today');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/meridian-cli-');
  const junk = `${dir}/junk.json`;
  writeFileSync(junk, 'not json');
  const t = 1770655268;
  const sig = createHmac('sha256', KEY).update(`${t}.not json`).digest('hex');
  const unreadable = await cli(['parse-webhook', '--platform', 'calendly', '--body', junk, '--header', `Calendly-Webhook-Signature: t=${t},v1=${sig}`, '--secret', KEY, '--now', new Date(t * 1000).toISOString()]);
  assert.equal(unreadable.code, 4);
  assert.equal(JSON.parse(unreadable.stdout).verified, true);
  assert.equal((await cli(['parse-webhook', '--platform', 'nope', '--body', body])).code, 2);
  assert.equal((await cli(['parse-webhook', '--platform', 'calendly'])).code, 2);
  assert.equal((await cli([...base])).code, 2, 'no --secret for a signed platform');
  const rec = await cli(['parse-record', '--platform', 'calendly', '--body', body]);
  assert.equal(rec.code, 4, 'a webhook envelope is not an API record');
  writeFileSync(`${dir}/rec.json`, JSON.stringify(JSON.parse(readFileSync(body, 'utf8')).payload));
  const ok = await cli(['parse-record', '--platform', 'calendly', '--body', `${dir}/rec.json`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).changes[0].externalId, FIRST);
});

// ------------------------------------------------------------------ against the fake Calendly API

const HOST = 'https://api.calendly.com/users/0c5b9a7e-3f1d-4a2b-9e8c-5d6f7a8b9c0d';
const ORG = 'https://api.calendly.com/organizations/5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
/** An invitee as the API holds it, made from our own signed sample (same shape as the webhook payload). */
function apiInvitee(bookingId: string, start: string, end: string): Record<string, unknown> {
  const s = connector.sampleWebhook!({ event: 'created', bookingId, start, end, timeZone: 'America/Chicago', patient: { name: 'Jordan Rivera', email: 'j@example.org' }, hostRef: HOST }, { signingKey: 'k' }, new Date());
  return JSON.parse(s.rawBody.toString()).payload;
}
const ctxFor = (fake: FakeCalendly, config: Record<string, unknown> = { organization: ORG }): ConnectionContext => ({
  connectionId: 'calendly', config, secrets: { personalAccessToken: fake.token }, baseUrl: fake.url, fetch, now: () => new Date(),
});

test('list pages through scheduled events and their invitees; every answer validates against Calendly\'s schema', async () => {
  const fake = await startFakeCalendly();
  try {
    const ids = Array.from({ length: 103 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    ids.forEach((id, i) => fake.put(apiInvitee(id, new Date(Date.UTC(2026, 11, 2, 8) + i * 3_600_000).toISOString(), new Date(Date.UTC(2026, 11, 2, 8, 45) + i * 3_600_000).toISOString())));
    const seen: string[] = [];
    for await (const c of connector.list!({ from: new Date('2026-12-01T00:00:00Z'), to: new Date('2026-12-31T00:00:00Z') }, ctxFor(fake))) seen.push(c.externalId);
    assert.equal(seen.length, 103, 'the second page of events is read too');
    assert.equal(seen[0], sampleInviteeUri(ids[0]));
    assert.ok(fake.requests.some((r) => r.path.includes('page_token=100')));
    await assert.rejects(async () => { for await (const _ of connector.list!({ from: new Date(), to: new Date() }, ctxFor(fake, {}))) void _; }, ConnectionMisconfigured);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('the fake refuses a second cancel as Calendly does: 403 "Event is already canceled" (the spec\'s message)', async () => {
  const fake = await startFakeCalendly();
  try {
    const id = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
    const uri = sampleInviteeUri(id);
    fake.put(apiInvitee(id, '2026-12-04T16:00:00Z', '2026-12-04T16:45:00Z'));
    const cancel = () => fetch(`${fake.url}${new URL(uri).pathname.replace(/\/invitees\/[^/]+$/, '')}/cancellation`, {
      method: 'POST', headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'x' }),
    });
    const first = await cancel();
    assert.equal(first.status, 201);
    const second = await cancel();
    assert.equal(second.status, 403);
    assert.deepEqual(await second.json(), { title: 'Permission Denied', message: 'Event is already canceled' });
    assert.deepEqual(fake.violations, [], 'a repeated cancel is the platform refusing, not a malformed request');
  } finally {
    await fake.close();
  }
});

test('a cancel write-back retried after a crash (Calendly: 403 already canceled) is success; other 403s still fail', async () => {
  const fake = await startFakeCalendly();
  try {
    const id = '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e';
    const uri = sampleInviteeUri(id);
    const eventUri = uri.slice(0, uri.indexOf('/invitees/'));
    fake.put(apiInvitee(id, '2026-12-05T16:00:00Z', '2026-12-05T16:45:00Z'));
    const req = { externalId: uri, start: '2026-12-05T16:00:00Z', end: '2026-12-05T16:45:00Z', timeZone: 'America/Chicago', status: 'cancelled' as const };
    const first = await connector.writeBack!(req, ctxFor(fake));
    assert.ok(first.ok, JSON.stringify(first));
    // The process died before it recorded the write-back: the job runs again.
    const again = await connector.writeBack!(req, ctxFor(fake));
    assert.deepEqual(again, { ok: true, value: undefined }, 'already cancelled is where the write-back wanted the event');
    const cancels = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/cancellation'));
    assert.equal(cancels.length, 2, 'the second cancel did reach Calendly (and was refused)');
    assert.equal(fake.event(eventUri)?.status, 'canceled');
    assert.equal(fake.event(eventUri)?.cancellation.reason, 'Cancelled by the clinic', 'the first cancellation stands');
    // A 403 on an event that is not cancelled (not allowed, event in the past) stays a failure.
    const otherId = '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f';
    fake.put(apiInvitee(otherId, '2026-12-06T16:00:00Z', '2026-12-06T16:45:00Z'));
    fake.fail(1, 403);
    const refused = await connector.writeBack!({ ...req, externalId: sampleInviteeUri(otherId) }, ctxFor(fake));
    assert.equal(!refused.ok && refused.failure.status, 403);
    assert.equal(!refused.ok && refused.failure.class, 'permanent');
    assert.equal(fake.invitee(sampleInviteeUri(otherId))?.status, 'active');
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

test('fetch reads the invitee and its event; write-back cancels the event, marks a no-show, refuses a move', async () => {
  const fake = await startFakeCalendly();
  try {
    const id = '9f8e7d6c-5b4a-4321-8fed-cba987654321';
    const uri = sampleInviteeUri(id);
    fake.put(apiInvitee(id, '2026-12-02T16:00:00Z', '2026-12-02T16:45:00Z'));
    const full = await connector.fetch!({ platform: 'calendly', externalId: uri, kind: 'upsert', occurredAt: '2026-12-01T10:00:00Z', needsFetch: true, appointment: {} }, ctxFor(fake));
    assert.deepEqual([full.appointment.start, full.appointment.end, full.appointment.practitionerRef, full.appointment.patient?.name], ['2026-12-02T16:00:00Z', '2026-12-02T16:45:00Z', HOST, 'Jordan Rivera']);
    const req = { externalId: uri, start: '2026-12-02T16:00:00Z', end: '2026-12-02T16:45:00Z', timeZone: 'America/Chicago' };
    assert.ok((await connector.writeBack!({ ...req, status: 'no_show' }, ctxFor(fake))).ok);
    assert.ok(fake.invitee(uri)?.no_show, 'the invitee carries a no-show');
    const move = await connector.writeBack!({ ...req, start: '2026-12-03T16:00:00Z', end: '2026-12-03T16:45:00Z', status: 'booked' }, ctxFor(fake));
    assert.equal(!move.ok && move.failure.class, 'permanent');
    assert.ok((await connector.writeBack!({ ...req, status: 'cancelled' }, ctxFor(fake))).ok);
    assert.equal(fake.invitee(uri)?.status, 'canceled');
    assert.equal(fake.event(uri.slice(0, uri.indexOf('/invitees/')))?.status, 'canceled');
    const [after] = connector.parseRecord!({ invitee: fake.invitee(uri), event: fake.event(uri.slice(0, uri.indexOf('/invitees/'))) });
    assert.equal(after.kind, 'cancel');
    const unknown = await connector.writeBack!({ ...req, externalId: sampleInviteeUri('11111111-2222-4333-8444-555555555555'), status: 'no_show' }, ctxFor(fake));
    assert.equal(!unknown.ok && unknown.failure.class, 'gone');
    const denied = await connector.writeBack!({ ...req, status: 'no_show' }, { ...ctxFor(fake), secrets: { personalAccessToken: 'wrong' } });
    assert.equal(!denied.ok && denied.failure.class, 'auth');
    fake.fail(1, 429, { 'retry-after': '60' });
    await assert.rejects(connector.fetch!({ platform: 'calendly', externalId: uri, kind: 'upsert', occurredAt: '2026-12-01T10:00:00Z', needsFetch: true, appointment: {} }, ctxFor(fake)),
      (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 60_000);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});
