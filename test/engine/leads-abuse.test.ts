// A public lead form's abuse (issue #22): with the `?token=` visible in a website's page anyone can post
// leads. Bodies are capped (413, nothing stored); what one contact, one client and one form may hold is
// limited (past it the lead waits for staff with no slot); a filled honeypot is answered like a success but
// kept declined; a hosted challenge is verified with the provider (a fake siteverify on 127.0.0.1); staff
// clear a flood with one decline-all. Also: an e-mail with CR/LF is not kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { leadAnswer } from '../../src/http/inbound.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { createApiKey } from '../../src/engine/hub/apikeys.ts';
import { buildServer } from '../../src/http/server.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const NOW = new Date('2026-03-04T17:00:00Z');
let hub: Hub;
let dir: ReturnType<typeof tempDir>;
let verifier: Server;
const verifyCalls: URLSearchParams[] = [];

before(async () => {
  // A fake Turnstile siteverify: the token "good" passes, anything else fails.
  verifier = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      verifyCalls.push(form);
      const ok = form.get('secret') === 'turnstile-secret' && form.get('response') === 'good';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(ok ? { success: true } : { success: false, 'error-codes': ['invalid-input-response'] }));
    });
  });
  await new Promise<void>((r) => verifier.listen(0, '127.0.0.1', r));
  const verifyUrl = `http://127.0.0.1:${(verifier.address() as AddressInfo).port}/siteverify`;
  dir = tempDir();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York, hours: { mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"], thu: ["09:00-17:00"], fri: ["09:00-17:00"] } }
locations: [{ id: l, name: Main }]
services:
  - { id: acu, name: Acupuncture, durationMinutes: 60 }
practitioners:
  - { id: okafor, name: Dr Okafor, locations: [l], services: [acu] }
connections:
  - { id: web, platform: lead-form, secrets: { webhookToken: { env: WEB_TOKEN } } }
  - { id: tight, platform: lead-form, secrets: { webhookToken: { env: WEB_TOKEN } }, config: { maxBodyBytes: 2000, honeypot: fax, limits: { perClientPerDay: 2, perFormPerDay: 3 } } }
  - id: gated
    platform: lead-form
    secrets: { webhookToken: { env: WEB_TOKEN }, challengeSecret: { env: TS_SECRET } }
    config: { challenge: { provider: turnstile, verifyUrl: "${verifyUrl}" } }
`, { dataDir: dir.dir, clock: { now: () => NOW }, env: { WEB_TOKEN: 'tok', TS_SECRET: 'turnstile-secret' } });
});
after(async () => {
  await hub.store.close();
  await new Promise((r) => verifier.close(r));
  dir.cleanup();
});

let n = 0;
const post = (conn: string, body: Record<string, unknown>, client = '198.51.100.7') =>
  leadAnswer(hub, conn, { rawBody: Buffer.from(JSON.stringify({ submissionId: `s${++n}`, name: `Patient ${n}`, service: 'Acupuncture', preferredTimes: 'Tuesday', ...body })), headers: { 'content-type': 'application/json' }, url: `/leads/${conn}?token=tok`, client });
const leadRow = (id: string) => hub.store.db.selectFrom('lead').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const count = async (table: 'appointment' | 'lead' | 'delivery') => Number((await hub.store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

test('a body above the form\'s limit is answered 413 with the limit, and nothing is stored', async () => {
  const before = [await count('delivery'), await count('lead')];
  const big = await post('web', { notes: 'x'.repeat(17 * 1024) });
  assert.equal(big.status, 413);
  assert.equal(big.body.code, 'body_too_large');
  assert.deepEqual(big.body.details, { limitBytes: 16384 });
  const configured = await post('tight', { notes: 'x'.repeat(2100) });
  assert.equal(configured.status, 413);
  assert.deepEqual(configured.body.details, { limitBytes: 2000 });
  assert.deepEqual([await count('delivery'), await count('lead')], before);
  // Over HTTP, a megabyte is refused by the route itself before it reaches the engine.
  const app = await buildServer(hub);
  try {
    const res = await app.inject({ method: 'POST', url: '/leads/web?token=tok', payload: JSON.stringify({ name: 'x', notes: 'x'.repeat(1024 * 1024) }), headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 'body_too_large');
    const small = await app.inject({ method: 'POST', url: '/leads/web?token=tok', payload: JSON.stringify({ name: 'x', notes: 'x'.repeat(20_000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(small.statusCode, 413);
    assert.deepEqual(small.json().details, { limitBytes: 16384 });
  } finally {
    await app.close();
  }
  assert.deepEqual([await count('delivery'), await count('lead')], before);
});

test('one contact holds at most 2 requested appointments: the third lead waits for staff with no slot', async () => {
  const outs = [];
  for (let i = 0; i < 3; i++) outs.push(await post('web', { email: 'flood@example.com' }, `203.0.113.${i}`));
  assert.deepEqual(outs.map((o) => o.body.leadStatus), ['requested', 'requested', 'needs_triage']);
  const third = await leadRow(outs[2].body.lead as string);
  assert.equal(third.appointment_id, null);
  assert.match(third.triage_reason ?? '', /limit reached: 2 requested appointments already wait for this e-mail or phone/);
  assert.equal(third.patient_email, 'flood@example.com', 'the lead itself is kept');
  const byPhone = [await post('web', { phone: '+15550100' }), await post('web', { phone: '+15550100' }), await post('web', { phone: '+15550100' })];
  assert.deepEqual(byPhone.map((o) => o.body.leadStatus), ['requested', 'requested', 'needs_triage']);
});

test('one client address and one form hold a limited number a day', async () => {
  const fromOne = [];
  for (let i = 0; i < 3; i++) fromOne.push(await post('tight', { email: `c${i}@example.com` }, '192.0.2.50'));
  assert.deepEqual(fromOne.map((o) => o.body.leadStatus), ['requested', 'requested', 'needs_triage']);
  assert.match(fromOne[2].body.triageReason as string, /from this client address/);
  assert.equal((await leadRow(fromOne[0].body.lead as string)).client_address, '192.0.2.50');
  // The form's own limit (3 a day): one more from elsewhere fits, the next does not.
  assert.equal((await post('tight', { email: 'd1@example.com' }, '192.0.2.51')).body.leadStatus, 'requested');
  const over = await post('tight', { email: 'd2@example.com' }, '192.0.2.52');
  assert.equal(over.body.leadStatus, 'needs_triage');
  assert.match(over.body.triageReason as string, /from this form in the last day \(at most 3\)/);
  assert.equal((await leadRow(over.body.lead as string)).appointment_id, null);
});

test('a filled honeypot is answered like a success but kept declined, with no appointment', async () => {
  const appts = await count('appointment');
  const out = await post('web', { email: 'bot@example.com', website: 'http://spam.example' });
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, { status: 'accepted', lead: out.body.lead, leadStatus: 'needs_triage' });
  const row = await leadRow(out.body.lead as string);
  assert.equal(row.status, 'declined');
  assert.equal(row.decision_reason, 'honeypot');
  assert.equal(row.appointment_id, null);
  assert.equal(await count('appointment'), appts);
  // The field is configurable: on `tight` it is `fax`, and `website` is an ordinary answer.
  const hit = await post('tight', { fax: 'x' }, '192.0.2.99');
  assert.equal((await leadRow(hit.body.lead as string)).status, 'declined');
  const form = await leadAnswer(hub, 'web', { rawBody: Buffer.from('name=Bot&service=Acupuncture&website=x'), headers: { 'content-type': 'application/x-www-form-urlencoded' }, url: '/leads/web?token=tok' });
  assert.equal((await leadRow(form.body.lead as string)).status, 'declined', 'form-encoded too');
});

test('a hosted challenge is verified with the provider: a failing token is refused and nothing stored', async () => {
  const before = [await count('delivery'), await count('lead')];
  const bad = await post('gated', { 'cf-turnstile-response': 'forged' });
  assert.equal(bad.status, 403);
  assert.equal(bad.body.code, 'challenge_failed');
  const none = await post('gated', {});
  assert.equal(none.status, 403);
  assert.deepEqual([await count('delivery'), await count('lead')], before);
  assert.equal(verifyCalls.length, 1, 'no token: the provider is not even asked');
  const good = await post('gated', { 'cf-turnstile-response': 'good' }, '198.51.100.77');
  assert.equal(good.status, 200, JSON.stringify(good.body));
  assert.equal(good.body.leadStatus, 'requested');
  const call = verifyCalls.at(-1)!;
  assert.deepEqual([call.get('secret'), call.get('response'), call.get('remoteip')], ['turnstile-secret', 'good', '198.51.100.77']);
});

test('an e-mail with CR/LF (or a list) from a form is not kept', async () => {
  const out = await post('web', { email: 'a@b.example\r\nBcc: x@y' });
  assert.equal(out.status, 200);
  const row = await leadRow(out.body.lead as string);
  assert.equal(row.patient_email, null);
  assert.ok(!JSON.stringify(row).includes('Bcc'));
  const appt = (await getAppointment(hub.store.db, row.appointment_id!))!;
  assert.equal(appt.patient.email, undefined);
  const list = await post('web', { email: 'a@b.example, c@d.example' });
  assert.equal((await leadRow(list.body.lead as string)).patient_email, null);
});

test('staff clear a flood in one action: POST /api/v1/leads/decline-all', async () => {
  const flood = [];
  for (let i = 0; i < 3; i++) flood.push(await post('web', { email: 'again@example.com' }, `203.0.113.${50 + i}`));
  const other = await post('web', { email: 'real@example.com' });
  const app = await buildServer(hub);
  try {
    const { key } = await createApiKey(hub, 'desk', ['write']);
    const auth = { authorization: `Bearer ${key}` };
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/leads/decline-all', headers: auth, payload: { reason: 'all of them?' } })).statusCode, 400, 'a filter is required');
    const res = await app.inject({ method: 'POST', url: '/api/v1/leads/decline-all', headers: auth, payload: { contact: 'AGAIN@example.com', reason: 'flood' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().declined, 3);
    for (const o of flood) {
      const row = await leadRow(o.body.lead as string);
      assert.equal(row.status, 'declined');
      assert.equal(row.decision_reason, 'flood');
      if (row.appointment_id) assert.equal((await getAppointment(hub.store.db, row.appointment_id))!.status, 'cancelled');
    }
    assert.equal((await leadRow(other.body.lead as string)).status, 'requested', 'other contacts untouched');
    const byForm = await app.inject({ method: 'POST', url: '/api/v1/leads/decline-all', headers: auth, payload: { connectionId: 'tight', since: '2026-03-04T00:00:00Z', reason: 'flood' } });
    assert.ok(byForm.json().declined >= 4, byForm.body);
    const open = await hub.store.db.selectFrom('lead').select('id').where('connection_id', '=', 'tight').where('status', 'in', ['requested', 'needs_triage']).execute();
    assert.deepEqual(open, []);
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, unknown> };
    assert.ok(doc.paths['/api/v1/leads/decline-all']);
  } finally {
    await app.close();
  }
});
