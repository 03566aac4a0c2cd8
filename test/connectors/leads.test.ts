// Lead-form connectors: signature vectors (computed with openssl from each tool's documented scheme over
// the sample bytes, see test/fixtures/samples/leads/README.md), tampered bytes, wrong and missing
// secrets, and what each sample normalizes to.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { meridian, tempDir } from '../helpers.ts';
import { ConnectionMisconfigured, UnreadablePayload, type WebhookRequest } from '../../src/connectors/types.ts';
import { getLeadForm, allDescriptors } from '../../src/connectors/registry.ts';
import { defaultField } from '../../src/connectors/leads/mapping.ts';

const sample = (f: string) => readFileSync(new URL(`../fixtures/samples/leads/${f}`, import.meta.url));
const NOW = new Date('2026-03-04T12:10:00Z');
const req = (rawBody: Buffer, headers: Record<string, string> = {}, url = '/leads/c'): WebhookRequest => ({ rawBody, headers, url, now: NOW });
const tamper = (b: Buffer) => {
  const c = Buffer.from(b);
  const i = c.indexOf('Tuesday') >= 0 ? c.indexOf('Tuesday') : c.indexOf('Massage') >= 0 ? c.indexOf('Massage') : 20;
  c[i] ^= 0x20; // one letter's case
  return c;
};

const typeform = getLeadForm('typeform')!;
const tally = getLeadForm('tally')!;
const jotform = getLeadForm('jotform')!;
const leadForm = getLeadForm('lead-form')!;

test('every lead form is registered with an honest descriptor', () => {
  const ids = allDescriptors().filter((d) => d.role === 'lead-form').map((d) => d.id);
  assert.deepEqual(ids, ['lead-form', 'typeform', 'jotform', 'tally']);
  assert.equal(jotform.descriptor.capabilities.signedWebhooks, false);
  assert.equal(typeform.descriptor.capabilities.signedWebhooks, true);
});

// ---------------------------------------------------------------- Typeform

const TF_BODY = sample('typeform-form-response.json');
const TF_SECRET = { webhookSecret: 'tf_secret_9c1d2e' };
const TF_SIG = 'sha256=lGgWyx1XbclKvWNzC2pahgOG9UUUWoQFBg6WAPWQPbc=';

test('Typeform: the documented signature verifies; a tampered byte, another secret or no header do not', () => {
  assert.deepEqual(typeform.verify(req(TF_BODY, { 'typeform-signature': TF_SIG }), TF_SECRET), { ok: true });
  assert.equal(typeform.verify(req(tamper(TF_BODY), { 'typeform-signature': TF_SIG }), TF_SECRET).ok, false);
  assert.equal(typeform.verify(req(TF_BODY, { 'typeform-signature': TF_SIG }), { webhookSecret: 'other' }).ok, false);
  assert.equal(typeform.verify(req(TF_BODY, {}), TF_SECRET).ok, false);
  assert.equal(typeform.verify(req(TF_BODY, { 'typeform-signature': TF_SIG.slice(7) }), TF_SECRET).ok, false, 'the sha256= prefix is part of the scheme');
  assert.deepEqual(typeform.verify(req(TF_BODY, { 'typeform-signature': TF_SIG }), { webhookSecret: 'new', webhookSecretPrevious: TF_SECRET.webhookSecret }), { ok: true });
  assert.throws(() => typeform.verify(req(TF_BODY, { 'typeform-signature': TF_SIG }), {}), ConnectionMisconfigured);
});

test('Typeform: a response normalizes by question title, the answer types and refs', () => {
  const lead = typeform.parseLead(req(TF_BODY), {});
  assert.deepEqual(lead, {
    submissionId: 'a3a12ec67a1365927098a606107fac15', submittedAt: '2026-03-04T11:58:41Z', deliveryId: '01HQ7XK2M9W3V5R8T4Y6Z1A2B3',
    name: 'Maya Chen', email: 'maya.chen@example.com', phone: '+16175550123', service: 'Acupuncture', practitioner: 'No preference',
    preferences: [{ text: 'Tuesday afternoon' }], notes: 'Lower back pain since January.',
  });
  // A mapping by ref wins over the title rules.
  assert.equal(typeform.parseLead(req(TF_BODY), { fields: { notes: 'ignore', when: 'notes' } }).notes, 'Tuesday afternoon');
  assert.throws(() => typeform.parseLead(req(Buffer.from('{"event_type":"form_response"}')), {}), UnreadablePayload);
  assert.throws(() => typeform.parseLead(req(Buffer.from('not json')), {}), UnreadablePayload);
});

// ---------------------------------------------------------------- Tally

const TALLY_BODY = sample('tally-form-response.json');
const TALLY_SECRET = { signingSecret: 'tally_signing_5b7a' };
const TALLY_SIG = 'm8CtkoqHmUeTyqvAqVvgVB3L5eRRjYJjKYQcocy2reM=';

test('Tally: base64 HMAC of the body verifies; tampering, another secret, no header and no secret do not', () => {
  assert.deepEqual(tally.verify(req(TALLY_BODY, { 'tally-signature': TALLY_SIG }), TALLY_SECRET), { ok: true });
  assert.equal(tally.verify(req(tamper(TALLY_BODY), { 'tally-signature': TALLY_SIG }), TALLY_SECRET).ok, false);
  assert.equal(tally.verify(req(TALLY_BODY, { 'tally-signature': TALLY_SIG }), { signingSecret: 'x' }).ok, false);
  assert.equal(tally.verify(req(TALLY_BODY, {}), TALLY_SECRET).ok, false);
  assert.throws(() => tally.verify(req(TALLY_BODY, { 'tally-signature': TALLY_SIG }), {}), ConnectionMisconfigured);
});

test('Tally: first + last name, option ids to texts, a date question as a date, the birth date ignored', () => {
  const lead = tally.parseLead(req(TALLY_BODY), {});
  assert.deepEqual(lead, {
    submissionId: '2wgx4n', submittedAt: '2026-03-04T12:01:08Z', deliveryId: 'a4cb511e-d513-4fa5-baee-b815d718dfd1',
    name: 'Jonas Berg', email: 'jonas.berg@example.com', phone: '+16175550188', service: 'Massage',
    preferences: [{ date: '2026-03-12' }, { text: 'Mornings' }, { text: 'Evenings' }],
  });
  assert.throws(() => tally.parseLead(req(Buffer.from('{"eventType":"OTHER","data":{}}')), {}), UnreadablePayload);
});

// ---------------------------------------------------------------- Jotform

const JF_BODY = sample('jotform-submission.multipart');
const JF_HEADERS = { 'content-type': 'multipart/form-data; boundary=------------------------J1JNT4vbVO4FCC1qLG4HSv' };
const JF_SECRET = { webhookToken: 'jt_9f8e7d6c5b4a' };

test('Jotform (unsigned): only the URL token vouches; a wrong or missing token is refused', () => {
  assert.deepEqual(jotform.verify(req(JF_BODY, JF_HEADERS, '/leads/jf?token=jt_9f8e7d6c5b4a'), JF_SECRET), { ok: true });
  assert.equal(jotform.verify(req(JF_BODY, JF_HEADERS, '/leads/jf?token=jt_9f8e7d6c5b4b'), JF_SECRET).ok, false);
  assert.equal(jotform.verify(req(JF_BODY, JF_HEADERS, '/leads/jf'), JF_SECRET).ok, false);
  assert.throws(() => jotform.verify(req(JF_BODY, JF_HEADERS, '/leads/jf?token=jt_9f8e7d6c5b4a'), {}), ConnectionMisconfigured);
});

test('Jotform: rawRequest answers by field name (composite name and phone), receive time as submission time', () => {
  // Jotform names "Type of treatment" `typeOf`: too few words to guess, so the clinic maps it.
  assert.equal(jotform.parseLead(req(JF_BODY, JF_HEADERS), {}).service, undefined);
  const lead = jotform.parseLead(req(JF_BODY, JF_HEADERS), { fields: { typeOf: 'service' } });
  assert.deepEqual(lead, {
    submissionId: '6084250982513018472', submittedAt: '2026-03-04T12:10:00Z',
    name: 'Priya Nair', email: 'priya.nair@example.com', phone: '(617) 555-0142', service: 'Acupuncture', practitioner: 'Dr Okafor',
    preferences: [{ text: 'next Monday 3pm' }], notes: 'First visit.',
  });
  // The same fields form-encoded parse the same way.
  const fields = new URLSearchParams({ submissionID: '42', rawRequest: JSON.stringify({ q3_fullName: { first: 'A', last: 'B' }, q8_whenWould: 'Friday' }) });
  const l2 = jotform.parseLead(req(Buffer.from(fields.toString()), { 'content-type': 'application/x-www-form-urlencoded' }), {});
  assert.equal(l2.name, 'A B');
  assert.deepEqual(l2.preferences, [{ text: 'Friday' }]);
  assert.throws(() => jotform.parseLead(req(Buffer.from('submissionID=1'), { 'content-type': 'application/x-www-form-urlencoded' }), {}), UnreadablePayload);
});

// ---------------------------------------------------------------- plain lead form

const LF_BODY = sample('lead-form-website.json');
const LF_SIG = 'sha256=2e1f79a14ae2b7eb513e3428ad6f5b914024433a734edfde0babbcdbf0538e44';

test('lead-form: hex HMAC in X-Meridian-Signature, or the URL token; tampering and a bad token are refused', () => {
  const h = { 'content-type': 'application/json', 'x-meridian-signature': LF_SIG };
  assert.deepEqual(leadForm.verify(req(LF_BODY, h), { signingSecret: 'lf_secret_77aa' }), { ok: true });
  assert.equal(leadForm.verify(req(tamper(LF_BODY), h), { signingSecret: 'lf_secret_77aa' }).ok, false);
  assert.equal(leadForm.verify(req(LF_BODY, { 'x-meridian-signature': 'sha256=00' }), { signingSecret: 'lf_secret_77aa' }).ok, false);
  assert.equal(leadForm.verify(req(LF_BODY, {}), { signingSecret: 'lf_secret_77aa' }).ok, false);
  assert.deepEqual(leadForm.verify(req(LF_BODY, {}, '/leads/web?token=tok123'), { webhookToken: 'tok123' }), { ok: true });
  assert.equal(leadForm.verify(req(LF_BODY, {}, '/leads/web?token=tok124'), { webhookToken: 'tok123' }).ok, false);
  assert.throws(() => leadForm.verify(req(LF_BODY, h), {}), ConnectionMisconfigured);
});

test('lead-form: our own names, structured and worded preferences; a form post; an id from the bytes', () => {
  const lead = leadForm.parseLead(req(LF_BODY, { 'content-type': 'application/json' }), {});
  assert.deepEqual(lead, {
    submissionId: 'web-2026-03-04-0042', submittedAt: '2026-03-04T12:05:00Z', name: 'Ana Souza', email: 'ana.souza@example.com',
    phone: '+16175550199', service: 'acupuncture', practitioner: 'Okafor',
    preferences: [{ text: 'weekday mornings after 10' }, { date: '2026-03-13', from: '09:00', to: '11:00' }], notes: 'Referred by Dr Lee.',
  });
  const form = Buffer.from('name=Li+Wei&service=Massage&preferredTimes=Friday+evening&preferredTimes=Saturday');
  const l2 = leadForm.parseLead(req(form, { 'content-type': 'application/x-www-form-urlencoded' }), {});
  assert.deepEqual(l2.preferences, [{ text: 'Friday evening' }, { text: 'Saturday' }]);
  assert.match(l2.submissionId, /^[0-9a-f]{32}$/);
  assert.equal(leadForm.parseLead(req(form, { 'content-type': 'application/x-www-form-urlencoded' }), {}).submissionId, l2.submissionId, 'the same bytes, the same id');
  assert.throws(() => leadForm.parseLead(req(Buffer.from('{"email":"x@example.com"}'), { 'content-type': 'application/json' }), {}), /name/);
  assert.throws(() => leadForm.parseLead(req(Buffer.from('x'), { 'content-type': 'text/plain' }), {}), UnreadablePayload);
});

test('default label rules', () => {
  const cases: [string, string | undefined][] = [
    ['Full name', 'name'], ['E-mail address', 'email'], ['Mobile', 'phone'], ['Surname', 'lastName'],
    ['Which practitioner would you like to see?', 'practitioner'], ['Practitioner name', 'practitioner'],
    ['When are you available?', 'preferredTimes'], ['Type of treatment', 'service'], ['Date of birth', 'ignore'],
    ['Reason for your visit', 'notes'], ['Favourite colour', undefined],
  ];
  for (const [label, want] of cases) assert.equal(defaultField(label), want, label);
});

// ---------------------------------------------------------------- through the CLI: bin/meridian parse-webhook

const SAMPLES = fileURLToPath(new URL('../fixtures/samples/leads/', import.meta.url));
const cliDir = tempDir('meridian-lead-cli-');
after(() => cliDir.cleanup());
const CLINIC = join(cliDir.dir, 'clinic.yaml');
writeFileSync(CLINIC, `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago }
services:
  - { id: acupuncture, name: Acupuncture, durationMinutes: 45 }
  - { id: massage, name: Massage, durationMinutes: 60 }
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, services: [acupuncture] }
  - { id: lee, name: Dr. Sam Lee, services: [massage] }
connections:
  - id: web-jotform
    platform: jotform
    config: { fields: { typeOf: service }, searchWeeks: 2 }
    secrets: { webhookToken: { env: LEAD_CLI_JF_TOKEN } }
  - id: website
    platform: lead-form
    secrets: { signingSecret: { env: LEAD_CLI_LF_SECRET } }
`);
const parse = (platform: string, body: string, args: string[]) =>
  meridian(['parse-webhook', '--platform', platform, '--body', body, '--now', NOW.toISOString(), ...args]);
const json = (r: { stdout: string }) => JSON.parse(r.stdout) as { verified: boolean; lead: Record<string, any> | null; read?: Record<string, any>; reason?: string; error?: string };
const header = (k: string, v: string) => ['--header', `${k}: ${v}`];

test('parse-webhook --platform typeform: verified as Typeform signs, the lead, its times in the zone asked for', async () => {
  const r = await parse('typeform', join(SAMPLES, 'typeform-form-response.json'), [...header('Typeform-Signature', TF_SIG), '--secret', TF_SECRET.webhookSecret, '--zone', 'America/New_York']);
  assert.equal(r.code, 0, r.stderr);
  const o = json(r);
  assert.equal(o.verified, true);
  assert.deepEqual([o.lead!.name, o.lead!.email, o.lead!.phone, o.lead!.service, o.lead!.practitioner], ['Maya Chen', 'maya.chen@example.com', '+16175550123', 'Acupuncture', 'No preference']);
  assert.equal(o.read!.timeZone, 'America/New_York');
  assert.equal(o.read!.config, null);
  assert.equal(o.read!.service.resolved, undefined, 'no configuration: nothing resolved');
  assert.equal(o.read!.practitioner.noPreference, true);
  // "Tuesday afternoon", read in New York (EDT from 8 March), within the 4 weeks after the 2-hour notice.
  const p = o.read!.preferredTimes;
  assert.deepEqual([p.from, p.to, p.durationMinutes], ['2026-03-04T14:10:00Z', '2026-04-01T14:10:00Z', 60]);
  assert.deepEqual(p.windows[0], { start: '2026-03-10T16:00:00Z', end: '2026-03-10T21:00:00Z', local: { start: '2026-03-10T12:00-04:00[America/New_York]', end: '2026-03-10T17:00-04:00[America/New_York]' } });
  assert.equal(p.windows.length, 4);
  // A wrong secret is refused (exit 3), as the server refuses it.
  const bad = await parse('typeform', join(SAMPLES, 'typeform-form-response.json'), [...header('Typeform-Signature', TF_SIG), '--secret', 'not-the-secret']);
  assert.equal(bad.code, 3);
  assert.deepEqual([json(bad).verified, json(bad).lead, json(bad).reason], [false, null, 'signature does not match']);
});

test('parse-webhook --platform tally: verified and read; the zone defaults to UTC without a configuration', async () => {
  const r = await parse('tally', join(SAMPLES, 'tally-form-response.json'), [...header('Tally-Signature', TALLY_SIG), '--secret', TALLY_SECRET.signingSecret]);
  assert.equal(r.code, 0, r.stderr);
  const o = json(r);
  assert.deepEqual([o.lead!.name, o.lead!.service, o.lead!.preferences], ['Jonas Berg', 'Massage', [{ date: '2026-03-12' }, { text: 'Mornings' }, { text: 'Evenings' }]]);
  assert.equal(o.read!.timeZone, 'UTC');
  assert.ok(o.read!.preferredTimes.windows.some((w: { start: string }) => w.start.startsWith('2026-03-12T')), JSON.stringify(o.read!.preferredTimes));
  // With the clinic's configuration: the clinic's zone and its service.
  const c = json(await parse('tally', join(SAMPLES, 'tally-form-response.json'), ['--config', CLINIC, ...header('Tally-Signature', TALLY_SIG), '--secret', TALLY_SECRET.signingSecret]));
  assert.equal(c.read!.timeZone, 'America/Chicago');
  assert.deepEqual(c.read!.service, { text: 'Massage', id: 'massage', name: 'Massage', durationMinutes: 60, resolved: true });
  assert.equal(c.read!.preferredTimes.durationMinutes, 60);
  assert.equal((await parse('tally', join(SAMPLES, 'tally-form-response.json'), [...header('Tally-Signature', TALLY_SIG), '--secret', 'x'])).code, 3);
});

test('parse-webhook --platform jotform: the URL token vouches; the connection\'s fields mapping and horizon from --config', async () => {
  const args = (token: string) => ['--config', CLINIC, '--url', `https://meridian.example.com/leads/web-jotform?token=${token}`, '--secret', JF_SECRET.webhookToken, ...header('Content-Type', JF_HEADERS['content-type'])];
  const r = await parse('jotform', join(SAMPLES, 'jotform-submission.multipart'), args(JF_SECRET.webhookToken));
  assert.equal(r.code, 0, r.stderr);
  const o = json(r);
  assert.deepEqual([o.lead!.name, o.lead!.email, o.lead!.service, o.lead!.practitioner], ['Priya Nair', 'priya.nair@example.com', 'Acupuncture', 'Dr Okafor'], 'typeOf mapped to the service by the connection');
  assert.equal(o.read!.connection, 'web-jotform');
  assert.deepEqual(o.read!.service, { text: 'Acupuncture', id: 'acupuncture', name: 'Acupuncture', durationMinutes: 45, resolved: true });
  assert.deepEqual(o.read!.practitioner, { text: 'Dr Okafor', id: 'okafor', name: 'Dr. Ada Okafor', offersService: true, resolved: true });
  const p = o.read!.preferredTimes;
  assert.equal(p.to, '2026-03-18T14:10:00Z', 'searchWeeks: 2 of the connection');
  assert.equal(p.durationMinutes, 45);
  // "next Monday 3pm" in Chicago (CDT from 8 March).
  assert.equal(p.windows[0].local.start, '2026-03-09T15:00-05:00[America/Chicago]');
  assert.equal(p.windows[0].start, '2026-03-09T20:00:00Z');
  const wrong = await parse('jotform', join(SAMPLES, 'jotform-submission.multipart'), args('jt_guess'));
  assert.equal(wrong.code, 3);
  assert.equal(json(wrong).verified, false);
  // The token in the URL is all that vouches: without --secret the command cannot check it (usage, exit 2).
  const none = await parse('jotform', join(SAMPLES, 'jotform-submission.multipart'), ['--url', '/leads/web-jotform?token=jt_9f8e7d6c5b4a']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--secret/);
});

test('parse-webhook --platform lead-form: signed or by URL token; an unreadable body exits 4; bad options exit 2', async () => {
  const lf = join(SAMPLES, 'lead-form-website.json');
  const signedArgs = ['--config', CLINIC, '--secret', 'lf_secret_77aa', ...header('Content-Type', 'application/json'), ...header('X-Meridian-Signature', LF_SIG)];
  const r = await parse('lead-form', lf, signedArgs);
  assert.equal(r.code, 0, r.stderr);
  const o = json(r);
  assert.deepEqual([o.lead!.name, o.lead!.phone, o.read!.connection, o.read!.service.id, o.read!.practitioner.id], ['Ana Souza', '+16175550199', 'website', 'acupuncture', 'okafor']);
  // Weekday mornings after 10 in the clinic's zone (CST, then CDT from 8 March); the structured preference of 13 March,
  // 09:00–11:00, joins that morning's window.
  const windows = o.read!.preferredTimes.windows as { start: string; end: string; local: { start: string } }[];
  assert.deepEqual(windows[0], { start: '2026-03-04T16:00:00Z', end: '2026-03-04T18:00:00Z', local: { start: '2026-03-04T10:00-06:00[America/Chicago]', end: '2026-03-04T12:00-06:00[America/Chicago]' } });
  assert.ok(windows.some((w) => w.start === '2026-03-13T14:00:00Z' && w.end === '2026-03-13T17:00:00Z' && w.local.start === '2026-03-13T09:00-05:00[America/Chicago]'), JSON.stringify(windows));
  assert.deepEqual(o.read!.preferredTimes.unread, []);
  // --zone wins over the configuration's clinic.
  const tokyo = json(await parse('lead-form', lf, [...signedArgs, '--zone', 'Asia/Tokyo']));
  assert.ok(tokyo.read!.preferredTimes.windows.some((w: { start: string }) => w.start === '2026-03-13T00:00:00Z'));
  // The URL token instead of a signature.
  const byToken = await parse('lead-form', lf, ['--url', '/leads/website?token=tok123', '--secret', 'tok123', ...header('Content-Type', 'application/json')]);
  assert.equal(byToken.code, 0, byToken.stderr);
  assert.equal((await parse('lead-form', lf, ['--url', '/leads/website?token=tok124', '--secret', 'tok123'])).code, 3);
  assert.equal((await parse('lead-form', lf, [...signedArgs.slice(0, 2), '--secret', 'other', ...signedArgs.slice(4)])).code, 3);
  // Verified, but not a lead: exit 4 with the reason.
  const body = join(cliDir.dir, 'no-name.json');
  const raw = '{"email":"x@example.com","preferredTimes":["Friday"]}';
  writeFileSync(body, raw);
  const sig = `sha256=${createHmac('sha256', 'lf_secret_77aa').update(raw).digest('hex')}`;
  const unreadable = await parse('lead-form', body, ['--secret', 'lf_secret_77aa', ...header('Content-Type', 'application/json'), ...header('X-Meridian-Signature', sig)]);
  assert.equal(unreadable.code, 4);
  assert.deepEqual([json(unreadable).verified, json(unreadable).lead], [true, null]);
  assert.match(json(unreadable).error!, /name/);
  const notJson = join(cliDir.dir, 'not-json.txt');
  writeFileSync(notJson, 'not json');
  const tfSig = `sha256=${createHmac('sha256', TF_SECRET.webhookSecret).update('not json').digest('base64')}`;
  const tf = await parse('typeform', notJson, ['--secret', TF_SECRET.webhookSecret, ...header('Typeform-Signature', tfSig)]);
  assert.equal(tf.code, 4);
  assert.match(json(tf).error!, /not JSON/);
  // Usage: an unknown zone, a connection of another platform, --zone for a booking platform.
  assert.equal((await parse('lead-form', lf, [...signedArgs, '--zone', 'Mars/Olympus'])).code, 2);
  assert.equal((await parse('lead-form', lf, [...signedArgs, '--connection', 'web-jotform'])).code, 2);
  assert.equal((await parse('calendly', lf, ['--zone', 'UTC'])).code, 2);
});
