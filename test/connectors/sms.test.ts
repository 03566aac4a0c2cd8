// SMS notifier: X-Twilio-Signature vectors from Twilio's documentation, parsing of delivery statuses and
// replies, and sends against the fake Twilio API (test/fakes/twilio.ts), including 429 and 21610.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { connector } from '../../src/connectors/notify/sms/index.ts';
import { ConnectionMisconfigured, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';

// Twilio's worked example (webhooks security page; FACTS.md): token 12345, this URL and these params.
const DOC_URL = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const DOC_TOKEN = '12345';
// Written out of order on purpose: the signature sorts the names.
const DOC_BODY = 'To=%2B18005551212&CallSid=CA1234567890ABCDE&Digits=1234&From=%2B12349013030&Caller=%2B12349013030';
const DOC_SIG = '0/KCTR6DLpKmkAf8muzZqo1nDgQ=';
const form = 'application/x-www-form-urlencoded';
const docReq = (over: Partial<WebhookRequest> = {}): WebhookRequest => ({
  rawBody: Buffer.from(DOC_BODY), headers: { 'x-twilio-signature': DOC_SIG, 'content-type': form }, url: DOC_URL, now: new Date(), ...over,
});

test("Twilio's documented signature verifies; a tampered byte, a wrong token, another URL and a missing header do not", () => {
  const verify = (r: WebhookRequest, secrets: Record<string, string> = { authToken: DOC_TOKEN }) => connector.verifyInbound!(r, secrets);
  assert.deepEqual(verify(docReq()), { ok: true });
  assert.equal(verify(docReq({ rawBody: Buffer.from(DOC_BODY.replace('Digits=1234', 'Digits=1235')) })).ok, false, 'tampered byte');
  assert.equal(verify(docReq(), { authToken: '12346' }).ok, false, 'wrong token');
  assert.equal(verify(docReq({ url: 'https://mycompany.com/myapp.php?foo=1&bar=3' })).ok, false, 'another URL');
  assert.equal(verify(docReq({ headers: { 'content-type': form } })).ok, false, 'missing header');
  assert.equal(verify(docReq({ headers: { 'x-twilio-signature': `${DOC_SIG.slice(0, -2)}A=`, 'content-type': form } })).ok, false, 'altered signature');
  assert.equal(verify(docReq({ headers: { 'x-twilio-signature': DOC_SIG, 'content-type': 'application/json' } })).ok, false, 'not a form body');
  assert.throws(() => verify(docReq(), {}), ConnectionMisconfigured);
  // While a secondary token is promoted, callbacks signed with either verify.
  assert.deepEqual(verify(docReq(), { authToken: 'new-token', authTokenPrevious: DOC_TOKEN }), { ok: true });
});

test("twilio-php's documented vector, and a URL signed with the default port spelled out, verify too", () => {
  const body = 'CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212';
  assert.deepEqual(connector.verifyInbound!(docReq({ rawBody: Buffer.from(body), headers: { 'x-twilio-signature': 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' } }), { authToken: DOC_TOKEN }), { ok: true });
  // Twilio's validator accepts the URL with and without the port (its signing is inconsistent about it);
  // this signature is over https://mycompany.com:443/myapp.php?foo=1&bar=2 (computed with node:crypto by hand).
  assert.deepEqual(connector.verifyInbound!(docReq({ headers: { 'x-twilio-signature': 'EpDEmp1PyjDYp77YxYU3GILBWzE=', 'content-type': form } }), { authToken: DOC_TOKEN }), { ok: true });
});

const cb = (params: Record<string, string>): WebhookRequest => ({ rawBody: Buffer.from(new URLSearchParams(params).toString()), headers: {}, url: '', now: new Date() });

test('parseInbound: delivery statuses (with their error code) and replies; anything else is unreadable', () => {
  const sid = 'SM1234567890abcdef1234567890abcdef';
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, MessageStatus: 'delivered', SmsStatus: 'delivered', To: '+15555550123' })), [{ kind: 'status', providerId: sid, status: 'delivered' }]);
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, MessageStatus: 'undelivered', ErrorCode: '30003' })), [{ kind: 'status', providerId: sid, status: 'undelivered', error: 'Twilio error 30003: unreachable destination handset' }]);
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, MessageStatus: 'failed', ErrorCode: '30010' })), [{ kind: 'status', providerId: sid, status: 'failed', error: 'Twilio error 30010' }]);
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, MessageStatus: 'accepted' }))[0], { kind: 'status', providerId: sid, status: 'queued' });
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, MessageStatus: 'partially_delivered' })), []);
  assert.deepEqual(connector.parseInbound!(cb({ MessageSid: sid, SmsStatus: 'received', From: '+15555550123', To: '+15005550006', Body: ' c ' })), [{ kind: 'reply', providerId: sid, from: '+15555550123', text: ' c ' }]);
  assert.throws(() => connector.parseInbound!(cb({ MessageStatus: 'sent' })), UnreadablePayload);
  assert.throws(() => connector.parseInbound!(cb({ AccountSid: 'AC1' })), UnreadablePayload);
});

test('the connection config needs a sender in a valid form', () => {
  const yaml = (config: string) => `
clinic: { id: c, name: Clinic, timeZone: Europe/Berlin }
connections:
  - { id: sms, platform: sms, config: ${config}, secrets: { accountSid: { env: SID }, authToken: { env: TOK } } }
`;
  assert.ok(parseConfig(yaml('{ from: "+4915112345678" }'), 'c.yaml'));
  assert.ok(parseConfig(yaml('{ messagingServiceSid: MG0123456789abcdef0123456789abcdef }'), 'c.yaml'));
  for (const bad of ['{}', '{ from: "015112345678" }', '{ messagingServiceSid: MG12 }']) {
    assert.throws(() => parseConfig(yaml(bad), 'c.yaml'), (e: Error) => /connections\[0\]\.config\.(from|messagingServiceSid)/.test(e.message), bad);
  }
});

let fake: FakeTwilio;
before(async () => {
  fake = await startFakeTwilio();
});
after(() => fake.close());

const ctx = (o: Partial<ConnectionContext> = {}): ConnectionContext => ({
  connectionId: 'sms', config: { from: fake.from }, secrets: { ...fake.credentials }, baseUrl: fake.url, fetch, now: () => new Date(),
  inboundUrl: 'https://meridian.example.org/notify/sms', ...o,
});
const message = (phone = '+15555550123') => ({ key: 'appt-1:3:reminder:patient', to: { name: 'Maya Lindqvist', phone }, text: 'Reminder: acupuncture tomorrow at 10:00. Reply C to confirm, X to cancel.' });

test('send: one form-encoded, authenticated request with the status callback; the provider id comes back', async () => {
  const r = await connector.client(ctx()).send(message('+1 (555) 555-0123'));
  assert.ok(r.ok, JSON.stringify(r));
  const sent = fake.messages.at(-1)!;
  assert.equal(r.value.providerId, sent.sid);
  assert.equal(r.value.status, 201);
  assert.equal(sent.to, '+15555550123', 'spacing and brackets removed');
  assert.equal(sent.from, fake.from);
  assert.equal(sent.statusCallback, 'https://meridian.example.org/notify/sms');
  assert.match(sent.body, /Reply C to confirm/);
  const viaService = await connector.client(ctx({ config: { messagingServiceSid: 'MG0123456789abcdef0123456789abcdef' }, inboundUrl: undefined })).send(message());
  assert.ok(viaService.ok);
  assert.equal(fake.messages.at(-1)!.messagingServiceSid, 'MG0123456789abcdef0123456789abcdef');
  assert.equal(fake.messages.at(-1)!.statusCallback, undefined, 'no public URL known: no status callback');
  assert.deepEqual(fake.violations, []);
});

test('send: 429 is throttled with Retry-After; 21610 (STOP) is permanent and names no number; bad numbers and credentials fail clearly', async () => {
  fake.throttle(1, 7);
  const throttled = await connector.client(ctx()).send(message());
  assert.ok(!throttled.ok);
  assert.equal(throttled.failure.class, 'throttled');
  assert.equal(throttled.failure.retryAfterMs, 7000);
  assert.ok((await connector.client(ctx()).send(message())).ok, 'the next attempt goes through');

  fake.optOut('+15555550199');
  const stopped = await connector.client(ctx()).send(message('+15555550199'));
  assert.ok(!stopped.ok);
  assert.equal(stopped.failure.class, 'permanent');
  assert.match(stopped.failure.message, /opted out.*STOP.*21610/);
  assert.ok(!stopped.failure.message.includes('555'), 'the number Twilio echoes is not kept');

  const before = fake.messages.length;
  const noNumber = await connector.client(ctx()).send(message('0151 1234'));
  assert.ok(!noNumber.ok && noNumber.failure.class === 'permanent' && /E\.164/.test(noNumber.failure.message));
  assert.equal(fake.messages.length, before, 'nothing was sent for a number that is not E.164');

  const wrong = await connector.client(ctx({ secrets: { ...fake.credentials, authToken: 'not-it' } })).send(message());
  assert.ok(!wrong.ok && wrong.failure.class === 'auth');
  const noSender = await connector.client(ctx({ config: {} })).send(message());
  assert.ok(!noSender.ok && noSender.failure.class === 'permanent');
  fake.violations.splice(0); // the wrong token above is a rule break on purpose
});

test("the fake's signed callbacks verify with the connector against the URL they were posted to", async () => {
  const got: WebhookRequest[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ rawBody: Buffer.concat(chunks), headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), url: `http://127.0.0.1:${(srv.address() as { port: number }).port}${req.url}`, now: new Date() });
      res.writeHead(200, { 'content-type': 'text/xml' }).end('<Response/>');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/notify/sms`;
  const r = await connector.client(ctx({ inboundUrl: url })).send(message());
  assert.ok(r.ok);
  await fake.sendStatus(r.value.providerId!, 'delivered');
  await fake.sendReply('+15555550123', 'X', url);
  srv.close();
  assert.equal(got.length, 2);
  for (const g of got) assert.deepEqual(connector.verifyInbound!(g, { authToken: fake.credentials.authToken }), { ok: true });
  assert.deepEqual(connector.parseInbound!(got[0]), [{ kind: 'status', providerId: r.value.providerId, status: 'delivered' }]);
  assert.equal((connector.parseInbound!(got[1])[0] as { text: string }).text, 'X');
});
