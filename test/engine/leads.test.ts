// The lead-form trigger end to end on a temp SQLite hub with the fake Google Calendar: a Typeform lead
// for "Tuesday afternoon, acupuncture" becomes a requested appointment on the first free Tuesday
// afternoon slot of an acupuncturist (skipping a taken one); a duplicate changes nothing; nothing fits →
// needs triage; confirm → booked and in Google; decline → cancelled. Also through the HTTP server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { listLeads } from '../../src/engine/inbound/leads.ts';
import { leadAnswer as ingestLead } from '../../src/http/inbound.ts';
import { confirmLead, declineLead } from '../../src/engine/edits/leads.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { MeridianError } from '../../src/domain/errors.ts';
import { statusOf } from '../../src/http/errors.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { createApiKey } from '../../src/engine/hub/apikeys.ts';
import { buildServer } from '../../src/http/server.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const CAL = 'okafor@clinic';
const NOW = new Date('2026-03-04T17:00:00Z'); // Wed 4 Mar 2026, 12:00 in New York
const TF_SECRET = 'tf_secret_9c1d2e';
const TF_BODY = readFileSync(new URL('../fixtures/samples/leads/typeform-form-response.json', import.meta.url));
const sign = (body: Buffer | string) => `sha256=${createHmac('sha256', TF_SECRET).update(body).digest('base64')}`;

let hub: Hub;
let g: FakeGoogle;
let dir: ReturnType<typeof tempDir>;

before(async () => {
  g = await startFakeGoogle();
  dir = tempDir();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York, hours: { mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"], thu: ["09:00-17:00"], fri: ["09:00-17:00"] } }
locations: [{ id: l, name: Main }]
services:
  - { id: acu, name: Acupuncture, durationMinutes: 60 }
  - { id: massage, name: Massage, durationMinutes: 45 }
practitioners:
  - { id: okafor, name: Dr Okafor, locations: [l], services: [acu], targets: [{ connection: google, calendar: "${CAL}" }], hours: { tue: ["09:00-12:00", "13:00-17:00"], thu: ["13:00-17:00"] } }
  - { id: ng, name: Dr Ng, locations: [l], services: [acu], hours: { tue: ["08:00-12:00"] } }
  - { id: lee, name: Sam Lee, locations: [l], services: [massage] }
connections:
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl} }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
  - { id: tf, platform: typeform, secrets: { webhookSecret: { env: TF_SECRET } } }
  - { id: web, platform: lead-form, secrets: { webhookToken: { env: WEB_TOKEN } }, config: { searchWeeks: 2 } }
`, { dataDir: dir.dir, clock: { now: () => NOW },
    env: { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken, TF_SECRET, WEB_TOKEN: 'web-token-123' } });
});
after(async () => {
  await hub.store.close();
  await g.close();
  dir.cleanup();
});

const typeformLead = (body: Buffer | string = TF_BODY, headers: Record<string, string> = {}) =>
  ingestLead(hub, 'tf', { rawBody: Buffer.from(body), headers: { 'content-type': 'application/json', 'typeform-signature': sign(body), ...headers }, url: '/leads/tf' });
const webLead = (body: object) =>
  ingestLead(hub, 'web', { rawBody: Buffer.from(JSON.stringify(body)), headers: { 'content-type': 'application/json' }, url: '/leads/web?token=web-token-123' });
const count = async (table: 'appointment' | 'lead') => Number((await hub.store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

let firstLead: string;
let firstAppointment: string;

test('"Tuesday afternoon, acupuncture" becomes a requested appointment on the first free Tuesday-afternoon slot', async () => {
  // 13:00–14:00 on Tue 10 Mar is taken: the slot is 14:00 New York time (EDT since Sun 8 Mar), Dr Okafor
  // (Dr Ng offers acupuncture but works Tuesday mornings only).
  await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-10T17:00:00Z', end: '2026-03-10T18:00:00Z', patient: { name: 'Earlier Patient' } }, 'test');
  const out = await typeformLead();
  assert.equal(out.status, 200, JSON.stringify(out.body));
  assert.equal(out.body.leadStatus, 'requested');
  const appt = (await getAppointment(hub.store.db, out.body.appointmentId as string))!;
  assert.equal(appt.status, 'requested');
  assert.equal(appt.practitionerId, 'okafor');
  assert.equal(appt.serviceId, 'acu');
  assert.equal(appt.start, '2026-03-10T18:00:00Z');
  assert.equal(appt.end, '2026-03-10T19:00:00Z');
  assert.equal(appt.timeZone, 'America/New_York');
  assert.deepEqual(appt.origin, { platform: 'typeform', connectionId: 'tf', externalId: 'a3a12ec67a1365927098a606107fac15' });
  assert.deepEqual(appt.conflicts, []);
  assert.equal(appt.patient.email, 'maya.chen@example.com');
  const [lead] = await listLeads(hub, { status: 'requested' });
  assert.equal(lead.appointmentId, appt.id);
  assert.equal(lead.service.id, 'acu');
  const audit = await hub.store.db.selectFrom('audit').select(['action', 'meta']).where('entity_id', '=', lead.id).execute();
  assert.deepEqual(audit.map((a) => a.action), ['lead.received']);
  assert.ok(!audit[0].meta!.includes('maya'), 'no contact data in the event');
  firstLead = lead.id;
  firstAppointment = appt.id;
});

test('a re-delivered submission changes nothing (same delivery, or the same response under a new event id)', async () => {
  const [appts, leads] = [await count('appointment'), await count('lead')];
  assert.equal((await typeformLead()).body.status, 'duplicate');
  const again = TF_BODY.toString().replace('01HQ7XK2M9W3V5R8T4Y6Z1A2B3', '01HQ7XK2M9W3V5R8T4Y6Z1A2B4');
  assert.equal((await typeformLead(again)).body.status, 'duplicate');
  assert.equal(await count('appointment'), appts);
  assert.equal(await count('lead'), leads);
});

test('a tampered or unsigned delivery is refused before anything is stored', async () => {
  const deliveries = Number((await hub.store.db.selectFrom('delivery').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const tampered = TF_BODY.toString().replace('Maya', 'Maja');
  const out = await ingestLead(hub, 'tf', { rawBody: Buffer.from(tampered), headers: { 'typeform-signature': sign(TF_BODY) }, url: '/leads/tf' });
  assert.equal(out.status, 401);
  assert.equal((await ingestLead(hub, 'tf', { rawBody: TF_BODY, headers: {}, url: '/leads/tf' })).status, 401);
  assert.equal((await ingestLead(hub, 'google', { rawBody: TF_BODY, headers: {}, url: '/leads/google' })).status, 404, 'a calendar is no lead form');
  assert.equal(Number((await hub.store.db.selectFrom('delivery').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), deliveries);
});

test('nothing fits → the lead waits for staff triage, with no appointment', async () => {
  const appts = await count('appointment');
  const out = await webLead({ submissionId: 'w1', name: 'Li Wei', service: 'massage', preferredTimes: 'Sunday morning' });
  assert.equal(out.body.leadStatus, 'needs_triage');
  assert.equal(out.body.triageReason, 'no free slot matches the preferred times');
  const unknown = await webLead({ submissionId: 'w2', name: 'Jo Kim', service: 'reiki', preferredTimes: 'Monday' });
  assert.equal(unknown.body.triageReason, 'the service asked for is not one of the clinic\'s');
  assert.equal(await count('appointment'), appts);
  const triage = await listLeads(hub, { status: 'needs_triage' });
  assert.deepEqual(triage.map((l) => l.submissionId).sort(), ['w1', 'w2']);
  assert.equal(triage.find((l) => l.submissionId === 'w1')!.service.id, 'massage');
});

test('confirm → booked, and the event appears in the practitioner\'s Google calendar', async () => {
  const r = await confirmLead(hub, firstLead, {}, 'staff:desk');
  assert.equal(r.lead.status, 'booked');
  assert.equal(r.appointment.status, 'booked');
  await drain(hub);
  const ev = g.live(CAL).find((e) => e.extendedProperties?.private?.meridianAppointmentId === firstAppointment);
  assert.ok(ev, 'event written');
  assert.equal(ev.status, 'confirmed');
  assert.equal(new Date(ev.start!.dateTime!).toISOString(), '2026-03-10T18:00:00.000Z');
  assert.deepEqual(g.violations, []);
  await assert.rejects(confirmLead(hub, firstLead, {}, 'staff:desk'), (e: unknown) => e instanceof MeridianError && statusOf(e) === 409);
});

test('staff place a triaged lead themselves; a double booking is refused unless overridden', async () => {
  const lead = (await listLeads(hub, { status: 'needs_triage' })).find((l) => l.submissionId === 'w1')!;
  await assert.rejects(confirmLead(hub, lead.id, {}, 'staff:desk'), (e: unknown) => e instanceof MeridianError && e.code === 'placement_needed');
  await assert.rejects(confirmLead(hub, lead.id, { practitionerId: 'okafor', start: '2026-03-10T18:30:00Z' }, 'staff:desk'), (e: unknown) => e instanceof MeridianError && e.code === 'double_booking');
  const r = await confirmLead(hub, lead.id, { practitionerId: 'lee', start: '2026-03-09T14:00:00Z' }, 'staff:desk');
  assert.equal(r.appointment.end, '2026-03-09T14:45:00Z', 'the service\'s 45 minutes');
  assert.equal(r.appointment.origin.platform, 'lead-form');
  assert.equal((await getAppointment(hub.store.db, r.appointment.id))!.status, 'booked');
});

test('decline → the requested appointment is cancelled with the reason', async () => {
  const out = await webLead({ submissionId: 'w3', name: 'Ana Souza', service: 'Acupuncture', practitioner: 'Dr Ng', preferredTimes: ['next Tuesday morning'] });
  assert.equal(out.body.leadStatus, 'requested');
  const appt = (await getAppointment(hub.store.db, out.body.appointmentId as string))!;
  assert.equal(appt.practitionerId, 'ng', 'the preferred practitioner');
  assert.equal(appt.start, '2026-03-10T12:00:00Z', '08:00 New York time: the start of both the morning and Dr Ng\'s hours');
  const lead = await declineLead(hub, out.body.lead as string, 'patient booked elsewhere', 'staff:desk');
  assert.equal(lead.status, 'declined');
  const cancelled = (await getAppointment(hub.store.db, appt.id))!;
  assert.equal(cancelled.status, 'cancelled');
  assert.match(cancelled.notes ?? '', /Declined: patient booked elsewhere/);
});

test('through the HTTP server: POST /leads/:connectionId, then the leads API', async () => {
  const app = await buildServer(hub);
  try {
    const body = TF_BODY.toString().replace('a3a12ec67a1365927098a606107fac15', 'b3a12ec67a1365927098a606107fac16').replace('01HQ7XK2M9W3V5R8T4Y6Z1A2B3', '01HQ7XK2M9W3V5R8T4Y6Z1A2C9');
    const bad = await app.inject({ method: 'POST', url: '/leads/tf', payload: body, headers: { 'content-type': 'application/json', 'typeform-signature': sign(TF_BODY) } });
    assert.equal(bad.statusCode, 401);
    const res = await app.inject({ method: 'POST', url: '/leads/tf', payload: body, headers: { 'content-type': 'application/json', 'typeform-signature': sign(body) } });
    assert.equal(res.statusCode, 200, res.body);
    const { lead, appointmentId } = res.json() as { lead: string; appointmentId: string };
    assert.equal((await getAppointment(hub.store.db, appointmentId))!.start, '2026-03-10T19:00:00Z', 'the next free Tuesday-afternoon hour');
    const { key } = await createApiKey(hub, 'desk', ['write']);
    const auth = { authorization: `Bearer ${key}` };
    const list = await app.inject({ method: 'GET', url: '/api/v1/leads?status=requested', headers: auth });
    assert.deepEqual((list.json() as { items: { id: string }[] }).items.map((l) => l.id), [lead]);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/leads?status=nonsense', headers: auth })).statusCode, 400);
    const declined = await app.inject({ method: 'POST', url: `/api/v1/leads/${lead}/decline`, headers: auth, payload: { reason: 'duplicate patient' } });
    assert.equal(declined.statusCode, 200, declined.body);
    const again = await app.inject({ method: 'POST', url: `/api/v1/leads/${lead}/confirm`, headers: auth, payload: {} });
    assert.equal(again.statusCode, 409);
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, unknown> };
    assert.ok(doc.paths['/api/v1/leads/{id}/confirm']);
  } finally {
    await app.close();
  }
});
