// End to end through the real `bin/meridian serve`: a Calendly booking (its e2e driver: fake API + signed
// webhooks) lands in both CRMs bound at clinic level — exactly one Salesforce Event on the patient's Contact and
// one HubSpot meeting associated with their contact — a reschedule updates both, a cancellation marks both
// (nothing deleted); a lead from the clinic's form becomes a Salesforce Lead and a HubSpot contact; a HubSpot
// webhook with a bad signature is refused; `meridian platforms` lists both CRMs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac, randomUUID } from 'node:crypto';
import calendly from './sources/calendly.ts';
import type { E2EBooking, E2EDelivery, SourceFake } from './sources/driver.ts';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.ts';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot.ts';
import { backendFor } from '../helpers.ts';
import { ROOT, apiClient, createKey, serve, eventually, type Served } from './serve.ts';

const run = promisify(execFile);

describe('CRM targets end to end through the real server', async () => {
  const b = await backendFor('sqlite');
  let sf: FakeSalesforce;
  let hs: FakeHubSpot;
  let cal: SourceFake;
  let srv: Served;
  let api: ReturnType<typeof apiClient>;
  const env: NodeJS.ProcessEnv = {};

  before(async () => {
    sf = await startFakeSalesforce();
    hs = await startFakeHubSpot();
    cal = await calendly.start();
    Object.assign(env, {
      E2E_SF_ID: sf.credentials.clientId, E2E_SF_USER: sf.credentials.username, E2E_SF_KEY: sf.credentials.privateKey,
      E2E_HS_TOKEN: hs.privateAppToken, E2E_HS_SECRET: 'hubspot-app-secret', E2E_LF_SECRET: 'form-secret',
      ...Object.fromEntries(Object.entries(cal.connection.secrets).map(([k, v]) => [`E2E_CAL_${k.toUpperCase()}`, v])),
    });
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago, targets: [{ connection: salesforce }, { connection: hubspot }] }
locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]
services: [{ id: acupuncture, name: Acupuncture, durationMinutes: 45 }]
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, email: dr.okafor@lotusclinic.example, locations: [lakeview], services: [acupuncture] }
connections:
  - id: salesforce
    platform: salesforce
    baseUrl: ${sf.loginUrl}
    config: { coveredByAgreement: true, owners: { okafor: "0055g00000HqT2kAAF" }, statusField: Meridian_Status__c, leadIdField: Meridian_Lead_Id__c }
    secrets: { clientId: { env: E2E_SF_ID }, username: { env: E2E_SF_USER }, privateKey: { env: E2E_SF_KEY } }
  - id: hubspot
    platform: hubspot
    baseUrl: ${hs.url}
    config: { coveredByAgreement: true, owners: { okafor: "81234567" }, twoWay: accept }
    secrets: { privateAppToken: { env: E2E_HS_TOKEN }, clientSecret: { env: E2E_HS_SECRET } }
  - id: form
    platform: lead-form
    secrets: { signingSecret: { env: E2E_LF_SECRET } }
  - id: calendly
    platform: calendly
    baseUrl: ${JSON.stringify(cal.connection.baseUrl)}
    config: ${JSON.stringify(cal.connection.config ?? {})}
    secrets: { ${Object.keys(cal.connection.secrets).map((k) => `${k}: { env: E2E_CAL_${k.toUpperCase()} }`).join(', ')} }
    refs:
      practitioners: { ${JSON.stringify(cal.practitionerRef)}: okafor }
      services: { ${JSON.stringify(cal.serviceRef)}: acupuncture }
`);
    const common = ['--data', b.dataDir, '--config', cfg];
    srv = await serve(['serve', ...common], env);
    api = apiClient(srv.url, await createKey(common, env));
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
    await cal?.close();
    await sf?.close();
    await hs?.close();
    await b.cleanup();
  });

  const post = async (d: E2EDelivery) => {
    const res = await fetch(d.url, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
  const sfEvents = (id: string) => sf.records('Event').filter((r) => r.Meridian_Appointment_Id__c === id);
  const meetings = (id: string) => hs.meetings().filter((m) => m.properties.meridian_appointment_id === id);

  test('a booking is one Event and one meeting on the right person; a reschedule updates both; a cancellation marks both', async () => {
    const hook = `${srv.url}/webhooks/calendly`;
    const booking: E2EBooking = { id: randomUUID(), start: '2027-02-02T16:00:00Z', end: '2027-02-02T16:45:00Z', timeZone: 'America/Chicago', patient: { name: 'Maya Lindqvist', email: 'maya.lindqvist@example.net', phone: '+15555550123' } };
    cal.hold(booking, 'booked');
    const first = cal.webhook('created', booking, new Date(Date.now() - 5_000), hook);
    assert.equal((await post(first)).status, 200);
    const appt = await eventually(async () => ((await api('GET', '/appointments?from=2027-01-01T00:00:00Z&to=2027-12-31T00:00:00Z')).body.items as Record<string, any>[]).find((a) => a.origin.connectionId === 'calendly'), 15_000, 'the appointment');
    await eventually(() => sfEvents(appt.id).length === 1 && meetings(appt.id).length === 1, 15_000, 'the Event and the meeting');
    assert.equal((await post(first)).status, 200, 'a duplicate delivery');

    const contact = sf.records('Contact').find((c) => c.Email === 'maya.lindqvist@example.net');
    assert.ok(contact, 'a Contact for the patient');
    const [event] = sfEvents(appt.id);
    assert.equal(event.WhoId, contact.Id);
    assert.equal(event.OwnerId, '0055g00000HqT2kAAF');
    assert.equal(event.StartDateTime, '2027-02-02T16:00:00.000Z');
    const hsContact = hs.contacts().find((c) => c.properties.email === 'maya.lindqvist@example.net');
    assert.ok(hsContact, 'a HubSpot contact for the patient');
    assert.deepEqual(meetings(appt.id)[0].associations, [hsContact.id]);
    assert.equal(meetings(appt.id)[0].properties.hubspot_owner_id, '81234567');

    const moved = { ...booking, start: '2027-02-03T20:00:00Z', end: '2027-02-03T20:45:00Z' };
    cal.hold(moved, 'booked');
    assert.equal((await post(cal.webhook('rescheduled', moved, new Date(), hook))).status, 200);
    await eventually(() => sfEvents(appt.id)[0]?.StartDateTime === '2027-02-03T20:00:00.000Z' && meetings(appt.id)[0]?.properties.hs_meeting_start_time === '2027-02-03T20:00:00.000Z', 15_000, 'both moved');
    assert.equal(meetings(appt.id)[0].properties.hs_meeting_outcome, 'RESCHEDULED');

    cal.hold(moved, 'cancelled');
    assert.equal((await post(cal.webhook('canceled', moved, new Date(), hook))).status, 200);
    await eventually(() => sfEvents(appt.id)[0]?.Meridian_Status__c === 'Cancelled' && meetings(appt.id)[0]?.properties.hs_meeting_outcome === 'CANCELED', 15_000, 'both marked cancelled');
    assert.match(String(sfEvents(appt.id)[0].Subject), /^\[Cancelled\]/);
    assert.equal(sfEvents(appt.id).length, 1, 'one Event over the whole cycle');
    assert.equal(meetings(appt.id).length, 1, 'one meeting over the whole cycle');
    assert.equal(meetings(appt.id)[0].archived, false);
    assert.equal(sf.records('Contact').filter((c) => c.Email === 'maya.lindqvist@example.net').length, 1);
    assert.equal(hs.searches, 0, 'HubSpot was never searched');
    const actions = ((await api('GET', `/appointments/${appt.id}/audit`)).body.items as { action: string }[]).map((x) => x.action);
    assert.ok(actions.includes('target.created') && actions.includes('target.updated') && !actions.includes('target.removed'), actions.join(', '));
  });

  test('a lead from the clinic\'s form becomes a Salesforce Lead and a HubSpot contact', async () => {
    const body = Buffer.from(JSON.stringify({ submissionId: `sub-${randomUUID()}`, name: 'Ana Novak', email: 'ana.novak@example.net', phone: '+49 30 5550 1823', service: 'Acupuncture', notes: 'Asked about cupping.', preferredTimes: 'weekday mornings' }));
    const sig = createHmac('sha256', 'form-secret').update(body).digest('hex');
    const r = await post({ url: `${srv.url}/leads/form`, headers: { 'content-type': 'application/json', 'x-meridian-signature': `sha256=${sig}` }, body });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const lead = await eventually(() => sf.records('Lead').find((l) => l.Email === 'ana.novak@example.net'), 15_000, 'the Salesforce Lead');
    assert.deepEqual([lead.FirstName, lead.LastName, lead.Meridian_Lead_Id__c], ['Ana', 'Novak', r.body.lead]);
    assert.match(String(lead.Description), /Notes: Asked about cupping\./, 'full text under the agreement');
    await eventually(() => hs.contacts().some((c) => c.properties.email === 'ana.novak@example.net'), 15_000, 'the HubSpot contact');
  });

  test('a HubSpot webhook with a bad signature is refused; nothing the platforms forbid was sent; platforms lists both CRMs', async () => {
    const url = `${srv.url}/webhooks/hubspot`;
    const d = hs.webhook([{ eventId: 1, subscriptionType: 'object.propertyChange', objectTypeId: '0-47', objectId: 1, occurredAt: Date.now() }], url, 'wrong-secret');
    assert.equal((await post(d)).status, 401);
    const ok = hs.webhook([{ eventId: 2, subscriptionType: 'object.propertyChange', objectTypeId: '0-47', objectId: 1, occurredAt: Date.now() }], url, 'hubspot-app-secret');
    const accepted = await post(ok);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(accepted.body.checks, 0, 'a meeting that is not ours is none of our business');
    assert.deepEqual(sf.violations, []);
    assert.deepEqual(hs.violations, []);
    assert.deepEqual(cal.violations, []);
    const p = await run(process.execPath, ['bin/meridian', 'platforms', '--json'], { cwd: ROOT });
    const byId = new Map((JSON.parse(p.stdout) as { id: string; kind?: string; capabilities: Record<string, boolean> }[]).map((x) => [x.id, x]));
    for (const id of ['salesforce', 'hubspot']) {
      assert.equal(byId.get(id)?.kind, 'crm');
      assert.equal(byId.get(id)?.capabilities.push, true);
      assert.equal(byId.get(id)?.capabilities.freeBusy, false);
    }
  });
});
