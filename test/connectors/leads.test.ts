// Lead-form connectors: signature vectors (computed with openssl from each tool's documented scheme over
// the sample bytes, see test/fixtures/samples/leads/README.md), tampered bytes, wrong and missing
// secrets, and what each sample normalizes to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
