// Salesforce CRM target: samples and error mapping, both OAuth flows, Event upsert by external id (one
// record over retries, 300 on duplicates), the patient link only under the data agreement, owners,
// statuses kept (never deleted), the daily-limit pause, read-back, Leads, and the engine path on a temp hub.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey, createVerify } from 'node:crypto';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.ts';
import { connector, eventBody, subjectOf, DEFAULT_EXTERNAL_ID_FIELD } from '../../src/connectors/targets/salesforce/index.ts';
import { jwtAssertion } from '../../src/connectors/targets/salesforce/auth.ts';
import { failureOf, errorsOf, parseLimitInfo, resetUsage, LIMIT_PAUSE_MS } from '../../src/connectors/targets/salesforce/api.ts';
import type { ConnectionContext, TargetEvent } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { staffCancel, staffCreate, staffReschedule } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const sample = (f: string) => JSON.parse(readFileSync(new URL(`../fixtures/samples/salesforce/${f}`, import.meta.url), 'utf8'));

let sf: FakeSalesforce;
before(async () => { sf = await startFakeSalesforce(); });
after(() => sf.close());
beforeEach(() => resetUsage());

function ctx(config: Record<string, unknown> = {}, flow: 'jwt' | 'refresh' = 'jwt', id = 'sf'): ConnectionContext & { saved: Record<string, string> } {
  const c = sf.credentials;
  const secrets: Record<string, string> = flow === 'jwt'
    ? { clientId: c.clientId, username: c.username, privateKey: c.privateKey }
    : { clientId: c.clientId, clientSecret: c.clientSecret, refreshToken: c.refreshToken };
  const saved: Record<string, string> = {};
  return { connectionId: id, config, secrets, baseUrl: sf.loginUrl, fetch, now: () => new Date(), saveSecrets: async (p) => { Object.assign(saved, p); }, saved };
}

let n = 0;
function ev(o: Partial<TargetEvent> = {}): TargetEvent {
  n++;
  return {
    appointmentId: `0f8b3c2e-5a71-4d9e-b2c4-${String(n).padStart(12, '0')}`, revision: 1, title: 'J. R. · Acupuncture', description: 'Acupuncture with Dr Okafor.',
    location: 'Cedar Street Clinic', start: '2027-03-10T16:30:00Z', end: '2027-03-10T17:20:00Z', timeZone: 'America/Denver', status: 'booked', practitionerId: 'okafor', ...o,
  };
}
const eventsFor = (id: string) => sf.records('Event').filter((r) => r[DEFAULT_EXTERNAL_ID_FIELD] === id);

test('samples: limit header, error arrays as typed failures without Salesforce\'s message text, 300 for duplicates', () => {
  assert.deepEqual(parseLimitInfo(sample('limit-info.headers.json')['Sforce-Limit-Info']), { used: 18342, allowed: 100000 });
  const missing = failureOf('create lead', 400, errorsOf(sample('error.response.json')));
  assert.equal(missing.class, 'permanent');
  assert.equal(missing.message, 'Salesforce create lead: HTTP 400 REQUIRED_FIELD_MISSING (LastName)');
  const limit = failureOf('upsert event', 403, errorsOf(sample('error-request-limit.response.json')));
  assert.equal(limit.class, 'throttled');
  assert.ok((limit.retryAfterMs ?? 0) >= LIMIT_PAUSE_MS);
  assert.equal(failureOf('x', 401, [{ errorCode: 'INVALID_SESSION_ID' }]).class, 'auth');
  assert.equal(failureOf('x', 400, [{ errorCode: 'UNABLE_TO_LOCK_ROW' }]).class, 'transient');
  assert.equal(failureOf('x', 404, [{ errorCode: 'ENTITY_IS_DELETED' }]).class, 'gone');
  assert.match(failureOf('x', 300, []).message, /several records/);
});

test('the Event body has the sample\'s shape; the key field stays in the URL; completed is marked in the subject', () => {
  const s = sample('event-upsert.request.json');
  const body = eventBody(ev({ revision: 3 }), { externalIdField: DEFAULT_EXTERNAL_ID_FIELD, revisionField: 'Meridian_Revision__c', statusValues: {}, owners: { okafor: '0055g00000HqT2kAAF' }, leadCompany: 'x', leadSource: 'Web' }, '0035g00000XyZ9aAAB');
  assert.deepEqual(Object.keys(body).sort(), Object.keys(s).sort());
  assert.equal(body.StartDateTime, s.StartDateTime);
  assert.equal(DEFAULT_EXTERNAL_ID_FIELD in body, false);
  assert.equal(subjectOf(ev({ status: 'completed' })), '[Completed] J. R. · Acupuncture');
  assert.equal(subjectOf(ev({ title: 'x'.repeat(300) })).length, 255);
});

test('JWT bearer: RS256 over the sample\'s claims, verifiable with the certificate key', () => {
  const claims = sample('jwt-bearer.claims.json').payload;
  const jwt = jwtAssertion(claims, sf.credentials.privateKey);
  const [h, p, sig] = jwt.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), sample('jwt-bearer.claims.json').header);
  assert.deepEqual(JSON.parse(Buffer.from(p, 'base64url').toString()), claims);
  const pub = createPublicKey(sf.credentials.privateKey);
  assert.ok(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(pub, Buffer.from(sig, 'base64url')));
  assert.ok(!createVerify('RSA-SHA256').update(`${h}.${p}x`).verify(pub, Buffer.from(sig, 'base64url')), 'a changed claim fails');
});

test('without the agreement: one Event per appointment over retries, no person, owner mapped, instance_url from the token', async () => {
  const c = ctx({ owners: { okafor: '0055g00000HqT2kAAF' } });
  const client = connector.client!(c);
  const e = ev();
  const first = await client.upsert(e, undefined);
  assert.ok(first.ok, JSON.stringify(first));
  const again = await client.upsert({ ...e, revision: 2, start: '2027-03-10T18:00:00Z', end: '2027-03-10T18:50:00Z' }, first.value);
  assert.ok(again.ok);
  const retried = await client.upsert({ ...e, revision: 2, start: '2027-03-10T18:00:00Z', end: '2027-03-10T18:50:00Z' }, undefined);
  assert.ok(retried.ok, 'a retry without the link is the same upsert');
  const recs = eventsFor(e.appointmentId);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].StartDateTime, '2027-03-10T18:00:00.000Z');
  assert.equal(recs[0].OwnerId, '0055g00000HqT2kAAF');
  assert.equal(recs[0].WhoId, undefined);
  assert.equal(first.value.remoteId, recs[0].Id);
  assert.equal(c.saved.instanceUrl, sf.url, 'instance_url from the token answer is kept');
  assert.ok(sf.tokenGrants.every((g) => g.grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer'));
  assert.deepEqual(sf.violations, []);
});

test('with the agreement: WhoId is the Contact found by e-mail, else an open Lead, else a Contact created in the same composite call', async () => {
  const client = connector.client!(ctx({ coveredByAgreement: true }));
  const before = sf.requests.length;
  const a = ev({ person: { name: 'Jordan Reyes', email: 'Jordan.Reyes@example.com', phone: '+1 303 555 0142' } });
  const r = await client.upsert(a, undefined);
  assert.ok(r.ok, JSON.stringify(r));
  const made = sf.records('Contact').filter((x) => x.Email === 'jordan.reyes@example.com');
  assert.equal(made.length, 1);
  assert.deepEqual([made[0].FirstName, made[0].LastName, made[0].Phone], ['Jordan', 'Reyes', '+1 303 555 0142']);
  assert.equal(eventsFor(a.appointmentId)[0].WhoId, made[0].Id);
  assert.deepEqual(sf.requests.slice(before).map((q) => q.path.replace(/\/services\/data\/v62\.0/, '')), ['/composite', '/composite'], 'one call to look, one to write both');
  // An update reuses the remembered person: one call.
  const mark = sf.requests.length;
  assert.ok((await client.upsert({ ...a, revision: 2 }, r.value)).ok);
  assert.equal(sf.requests.length - mark, 1);
  // A second appointment for the same person finds the Contact: no second Contact.
  const b = ev({ person: { name: 'Jordan Reyes', email: 'jordan.reyes@example.com' } });
  assert.ok((await client.upsert(b, undefined)).ok);
  assert.equal(sf.records('Contact').filter((x) => x.Email === 'jordan.reyes@example.com').length, 1);
  assert.equal(eventsFor(b.appointmentId)[0].WhoId, made[0].Id);
  // A person known only as a Lead is linked to that Lead.
  const lead = sf.addRecord('Lead', { LastName: 'Novak', Company: 'x', Email: 'ana.novak@example.net', IsConverted: false });
  const c = ev({ person: { name: 'Ana Novak', email: 'ana.novak@example.net' } });
  assert.ok((await client.upsert(c, undefined)).ok);
  assert.equal(eventsFor(c.appointmentId)[0].WhoId, lead.Id);
  assert.deepEqual(sf.violations, []);
});

test('cancelled, no-show and completed stay as Events, marked in the subject and the mapped status field; remove deletes nothing', async () => {
  const client = connector.client!(ctx({ statusField: 'Meridian_Status__c', revisionField: 'Meridian_Revision__c' }));
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok);
  for (const [status, title, value] of [['no_show', '[No-show] J. R. · Acupuncture', 'No-show'], ['completed', 'J. R. · Acupuncture', 'Completed'], ['cancelled', '[Cancelled] J. R. · Acupuncture', 'Cancelled']] as const) {
    assert.ok((await client.upsert({ ...e, status, title, revision: 5 }, r.value)).ok);
    const [rec] = eventsFor(e.appointmentId);
    assert.equal(rec.Meridian_Status__c, value);
    assert.match(String(rec.Subject), status === 'completed' ? /^\[Completed\]/ : /^\[/);
  }
  assert.equal(eventsFor(e.appointmentId)[0].ShowAs, 'Free');
  assert.equal(eventsFor(e.appointmentId)[0].Meridian_Revision__c, 5);
  assert.ok((await client.remove(r.value, e.appointmentId)).ok);
  assert.equal(eventsFor(e.appointmentId).length, 1, 'never deleted');
  // A cancellation does not bring back an Event someone deleted in Salesforce.
  sf.deleteBehindOurBack('Event', r.value.remoteId);
  assert.ok((await client.upsert({ ...e, status: 'cancelled', title: '[Cancelled] x', revision: 6 }, r.value)).ok);
  assert.equal(eventsFor(e.appointmentId).length, 0);
});

test('several Events with the external id: HTTP 300 is a permanent failure for staff, nothing written', async () => {
  const client = connector.client!(ctx());
  const e = ev();
  sf.addRecord('Event', { [DEFAULT_EXTERNAL_ID_FIELD]: e.appointmentId, Subject: 'a' });
  sf.addRecord('Event', { [DEFAULT_EXTERNAL_ID_FIELD]: e.appointmentId, Subject: 'b' });
  const r = await client.upsert(e, undefined);
  assert.ok(!r.ok);
  assert.equal(r.failure.class, 'permanent');
  assert.equal(r.failure.status, 300);
  assert.deepEqual(eventsFor(e.appointmentId).map((x) => x.Subject), ['a', 'b']);
});

test('a field not flagged External ID is refused (404) — the connection names the field', async () => {
  const r = await connector.client!(ctx({ externalIdField: 'Other__c' })).upsert(ev(), undefined);
  assert.ok(!r.ok);
  assert.equal(r.failure.class, 'gone');
  sf.violations.length = 0;
});

test('daily allocation: 403 REQUEST_LIMIT_EXCEEDED and a nearly spent Sforce-Limit-Info both make the connection wait without calling', async () => {
  const client = connector.client!(ctx({}, 'jwt', 'sf-limit'));
  assert.ok((await client.upsert(ev(), undefined)).ok);
  const { used, allowed } = sf.usage;
  sf.usage.used = sf.usage.allowed;
  const r = await client.upsert(ev(), undefined);
  assert.ok(!r.ok);
  assert.equal(r.failure.class, 'throttled');
  assert.ok((r.failure.retryAfterMs ?? 0) >= LIMIT_PAUSE_MS - 1000);
  const calls = sf.requests.length;
  const waiting = await client.upsert(ev(), undefined);
  assert.ok(!waiting.ok && waiting.failure.class === 'throttled');
  assert.equal(sf.requests.length, calls, 'no request spent while waiting');
  // Near the ceiling (96% used), the next write waits too.
  resetUsage();
  Object.assign(sf.usage, { used: Math.floor(allowed * 0.96), allowed });
  assert.ok((await client.upsert(ev(), undefined)).ok);
  const paused = await client.upsert(ev(), undefined);
  assert.ok(!paused.ok && paused.failure.class === 'throttled');
  Object.assign(sf.usage, { used, allowed });
  resetUsage();
});

test('web-server flow: an expired session is refreshed once with the refresh token and the write retried', async () => {
  const c = ctx({}, 'refresh', 'sf-refresh');
  const client = connector.client!(c);
  assert.ok((await client.upsert(ev(), undefined)).ok);
  sf.expireTokens();
  const grants = sf.tokenGrants.length;
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(sf.tokenGrants.length, grants + 1);
  assert.equal(sf.tokenGrants.at(-1)!.grant, 'refresh_token');
  assert.equal(c.saved.instanceUrl, sf.url);
  assert.equal(eventsFor(e.appointmentId).length, 1);
  const bad = connector.client!({ ...ctx({}, 'refresh', 'sf-bad'), secrets: { clientId: 'x', clientSecret: 'y', refreshToken: 'z' } });
  const refused = await bad.upsert(ev(), undefined);
  assert.ok(!refused.ok && refused.failure.class === 'auth');
});

test('inspect: in sync, moved in Salesforce (with the new times), or deleted', async () => {
  const client = connector.client!(ctx());
  const e = ev();
  const r = await client.upsert(e, undefined);
  assert.ok(r.ok);
  assert.deepEqual(await client.inspect!(e, r.value), { ok: true, value: { state: 'in_sync', start: '2027-03-10T16:30:00.000Z', end: '2027-03-10T17:20:00.000Z' } });
  sf.editBehindOurBack('Event', r.value.remoteId, { StartDateTime: '2027-03-11T16:30:00.000Z', EndDateTime: '2027-03-11T17:20:00.000Z' });
  const moved = await client.inspect!(e, r.value);
  assert.ok(moved.ok);
  assert.deepEqual(moved.value, { state: 'changed', start: '2027-03-11T16:30:00.000Z', end: '2027-03-11T17:20:00.000Z' });
  sf.deleteBehindOurBack('Event', r.value.remoteId);
  assert.deepEqual(await client.inspect!(e, r.value), { ok: true, value: { state: 'missing' } });
});

test('leads: upserted by the Lead external-id field (once over retries), or created; LastName and Company always sent', async () => {
  const client = connector.client!(ctx({ leadIdField: 'Meridian_Lead_Id__c', leadCompany: 'Individual patient' }));
  const s = sample('lead-create.request.json');
  const lead = { leadId: s.Meridian_Lead_Id__c, name: 'Ana Novak', email: s.Email, phone: s.Phone, description: s.Description, submittedAt: '2027-03-01T10:00:00Z' };
  const a = await client.upsertLead!(lead);
  const b = await client.upsertLead!(lead);
  assert.ok(a.ok && b.ok);
  assert.equal(a.value.remoteId, b.value.remoteId);
  const rec = sf.records('Lead').filter((x) => x.Meridian_Lead_Id__c === s.Meridian_Lead_Id__c);
  assert.equal(rec.length, 1);
  for (const k of ['FirstName', 'LastName', 'Company', 'Email', 'Phone', 'LeadSource', 'Description']) assert.equal(rec[0][k], s[k], k);
  const plain = await connector.client!(ctx()).upsertLead!({ ...lead, leadId: 'lead-2', name: 'Cher' });
  assert.ok(plain.ok);
  assert.equal(sf.records('Lead').find((x) => x.Id === plain.value.remoteId)?.LastName, 'Cher');
  assert.deepEqual(sf.violations, []);
});

// ------------------------------------------------------------------ engine path

async function clinic(covered: boolean): Promise<{ hub: Hub; close(): Promise<void> }> {
  const dir = tempDir();
  const hub = await configuredHub(`
clinic: { id: c, name: Cedar Clinic, timeZone: America/Denver, targets: [{ connection: sf }] }
locations: [{ id: l, name: Cedar Street }]
services: [{ id: acu, name: Acupuncture, durationMinutes: 50 }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l] }]
connections:
  - id: sf
    platform: salesforce
    baseUrl: ${sf.loginUrl}
    config: { coveredByAgreement: ${covered}, owners: { okafor: "0055g00000HqT2kAAF" } }
    secrets: { clientId: { env: SF_ID }, username: { env: SF_USER }, privateKey: { env: SF_KEY } }
`, { dataDir: dir.dir, env: { SF_ID: sf.credentials.clientId, SF_USER: sf.credentials.username, SF_KEY: sf.credentials.privateKey } });
  return { hub, close: async () => { await hub.store.close(); dir.cleanup(); } };
}

test('engine: a clinic-level Salesforce binding gets one Event per appointment; without the agreement no patient data; a cancel marks it', async () => {
  const { hub, close } = await clinic(false);
  try {
    const a = await staffCreate(hub, { practitionerId: 'okafor', serviceId: 'acu', start: '2027-04-01T16:00:00Z', end: '2027-04-01T16:50:00Z', patient: { name: 'Maya Lindqvist', email: 'maya@example.net' } }, 'test');
    await drain(hub);
    await staffReschedule(hub, a.id, { start: '2027-04-02T16:00:00Z', end: '2027-04-02T16:50:00Z' }, 'test');
    await drain(hub);
    await staffCancel(hub, a.id, 'patient called', 'test');
    await drain(hub);
    const recs = eventsFor(a.id);
    assert.equal(recs.length, 1);
    assert.equal(recs[0].StartDateTime, '2027-04-02T16:00:00.000Z');
    assert.match(String(recs[0].Subject), /^\[Cancelled\] M\. L\. · Acupuncture$/);
    assert.equal(recs[0].WhoId, undefined);
    assert.equal(recs[0].OwnerId, '0055g00000HqT2kAAF');
    assert.ok(!JSON.stringify(recs).includes('Lindqvist') && !JSON.stringify(recs).includes('maya@'), 'no patient data without the agreement');
    const audit = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', a.id).execute();
    assert.ok(!audit.some((x) => x.action === 'target.removed'), 'a CRM record is kept, not removed');
  } finally {
    await close();
  }
});

test('engine: with the agreement the Event is full text and linked to the patient\'s Contact', async () => {
  const { hub, close } = await clinic(true);
  try {
    const a = await staffCreate(hub, { practitionerId: 'okafor', serviceId: 'acu', start: '2027-04-05T16:00:00Z', end: '2027-04-05T16:50:00Z', patient: { name: 'Ines Varga', email: 'ines.varga@example.net' } }, 'test');
    await drain(hub);
    const [rec] = eventsFor(a.id);
    const contact = sf.records('Contact').find((x) => x.Email === 'ines.varga@example.net');
    assert.ok(contact);
    assert.equal(rec.WhoId, contact.Id);
    assert.equal(rec.Subject, 'Ines Varga · Acupuncture');
  } finally {
    await close();
  }
});
