// The `email` notifier against a real SMTP server (smtp-server): the iMIP layout of the reference samples
// (test/fixtures/samples/imip, parsed with mailparser and ical.js), SMTP login, failures by class without
// the recipient's address, and the embedded file transport.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { connector, parseSender } from '../../src/connectors/notify/email/index.ts';
import { ConnectionMisconfigured, type ConnectionContext, type Invitation, type OutboundMessage } from '../../src/connectors/types.ts';
import { itipOf, parseItip, startSmtpSink, type SmtpSink } from '../fakes/smtp-sink.ts';
import { tempDir } from '../helpers.ts';

const SAMPLES = new URL('../fixtures/samples/imip/', import.meta.url);
const sample = (f: string) => readFileSync(new URL(f, SAMPLES));
const STAMP = new Date('2027-03-02T16:15:00Z');
const FROM = 'Lindenhof Praxis <termine@lindenhof-praxis.example>';

let smtp: SmtpSink;
let authed: SmtpSink;
before(async () => {
  smtp = await startSmtpSink();
  authed = await startSmtpSink({ auth: { user: 'praxis', pass: 's3cret' } });
});
after(async () => {
  await smtp.close();
  await authed.close();
});

const ctx = (config: Record<string, unknown>, secrets: Record<string, string> = {}, dataDir?: string): ConnectionContext => ({
  connectionId: 'mail', config: { from: FROM, ...config }, secrets, baseUrl: '', fetch, now: () => STAMP, dataDir,
});
const smtpConfig = (s: SmtpSink, extra: Record<string, unknown> = {}) => ({ host: '127.0.0.1', port: s.port, requireTLS: false, ...extra });

// The invitation of the samples' first message (01-invite): 10:00–11:00 Europe/Berlin on 12 March 2027.
const invite: Invitation = {
  method: 'REQUEST', uid: 'meridian-7a2d9c41-3e8b-4f06-a5d2-91c4e0b7f3a8', sequence: 0, start: '2027-03-12T09:00:00Z', end: '2027-03-12T10:00:00Z',
  timeZone: 'Europe/Berlin', summary: 'Massage therapy - Lindenhof Praxis', location: 'Lindenhof Praxis, Lindenstrasse 14, 10969 Berlin',
  description: 'Your massage therapy appointment with Dr. Anke Vogel.',
};
const message = (o: Partial<OutboundMessage> = {}): OutboundMessage => ({
  key: 'confirmation:7a2d9c41:patient:0', to: { name: 'Ana Novak', email: 'ana.novak@example.net' },
  subject: 'Appointment confirmed: Massage therapy, Fri 12 Mar 2027 10:00', text: 'Your appointment is booked for Friday 12 March 2027, 10:00-11:00 (Berlin time).',
  html: '<p>Your appointment is booked for Friday 12 March 2027, 10:00-11:00 (Berlin time).</p>', invitation: invite, ...o,
});

/** The MIME tree as "type(children)" from the raw message, e.g. multipart/mixed(multipart/alternative(...),application/ics). */
function mimeTree(raw: string): string[] {
  return [...raw.matchAll(/^Content-Type:\s*([^;\r\n]+)(?:;[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)?/gim)].map((m) => m[0].replace(/\r?\n[ \t]+/g, ' '));
}

test('the reference samples: one UID, SEQUENCE 0 → 1 → 2, REQUEST, REQUEST, CANCEL, times in Berlin', async () => {
  const parsed = await Promise.all(['01-invite.eml', '02-reschedule.eml', '03-cancel.eml'].map(async (f) => itipOf(await simpleParser(sample(f)))!));
  assert.deepEqual(parsed.map((p) => [p.method, p.sequence]), [['REQUEST', 0], ['REQUEST', 1], ['CANCEL', 2]]);
  assert.equal(new Set(parsed.map((p) => p.uid)).size, 1);
  assert.equal(parsed[0].start, '2027-03-12T09:00:00.000Z');
  assert.deepEqual(parseItip(sample('03-cancel.ics').toString()).status, 'CANCELLED');
});

test('an invitation goes out in the samples\' layout: text/calendar with method as an alternative body, plus invite.ics', async () => {
  const client = connector.client(ctx(smtpConfig(smtp)));
  const r = await client.send(message());
  assert.ok(r.ok, JSON.stringify(r));
  await smtp.settle();
  const got = smtp.to('ana.novak@example.net').at(-1)!;
  const raw = got.raw.toString();
  const ours = mimeTree(raw).map((l) => l.split(';')[0].replace(/^Content-Type:\s*/i, '').toLowerCase());
  const theirs = mimeTree(sample('01-invite.eml').toString()).map((l) => l.split(';')[0].replace(/^Content-Type:\s*/i, '').toLowerCase());
  assert.deepEqual(ours, theirs, 'multipart/mixed > multipart/alternative (text/plain, text/html, text/calendar) + application/ics');
  assert.match(raw, /Content-Type: text\/calendar; charset=utf-8; method=REQUEST/i);
  assert.equal((raw.match(/BEGIN:VCALENDAR/g) ?? []).length <= 2, true, 'the object once as the alternative and once as the attachment, no more');
  const ours2 = itipOf(got.mail)!;
  const ref = itipOf(await simpleParser(sample('01-invite.eml')))!;
  for (const k of ['method', 'uid', 'sequence', 'status', 'tzid', 'localStart', 'start', 'end', 'organizer'] as const) assert.deepEqual(ours2[k], ref[k], k);
  assert.equal(ours2.hasVtimezone, true);
  assert.deepEqual(ours2.attendees.map((a) => a.toLowerCase()), ['mailto:ana.novak@example.net']);
  assert.match(raw, /RSVP=FALSE/);
  assert.equal(got.mail.from?.value[0].address, 'termine@lindenhof-praxis.example', 'ORGANIZER matches From');
  assert.equal(got.mail.messageId, r.ok ? r.value.providerId : undefined);
  assert.match(got.mail.headers.get('auto-submitted') as string, /auto-generated/);
  const calendarPart = (got.mail.attachments ?? []).find((a) => a.contentType === 'text/calendar');
  assert.ok(calendarPart, 'mailparser sees the calendar part');
});

test('a cancellation is METHOD:CANCEL with STATUS:CANCELLED, the same UID and a higher SEQUENCE; a retried key keeps its Message-ID', async () => {
  const client = connector.client(ctx(smtpConfig(smtp)));
  const cancel = message({ key: 'cancellation:7a2d9c41:patient:2', subject: 'Appointment cancelled', invitation: { ...invite, method: 'CANCEL', sequence: 2 } });
  const a = await client.send(cancel);
  const b = await client.send(cancel);
  assert.ok(a.ok && b.ok);
  assert.equal(a.value.providerId, b.value.providerId);
  await smtp.settle();
  const got = itipOf(smtp.to('ana.novak@example.net').at(-1)!.mail)!;
  assert.deepEqual([got.method, got.status, got.sequence], ['CANCEL', 'CANCELLED', 2]);
  assert.equal(got.uid, 'meridian-7a2d9c41-3e8b-4f06-a5d2-91c4e0b7f3a8@lindenhof-praxis.example');
  assert.match(smtp.to('ana.novak@example.net').at(-1)!.raw.toString(), /method=CANCEL/i);
});

test('SMTP login with the stored password; a refused login is an auth failure', async () => {
  const ok = await connector.client(ctx(smtpConfig(authed, { user: 'praxis' }), { password: 's3cret' })).send(message({ invitation: undefined }));
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.deepEqual(authed.logins, ['praxis']);
  const bad = await connector.client(ctx(smtpConfig(authed, { user: 'praxis' }), { password: 'wrong' })).send(message({ invitation: undefined }));
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.failure.class, 'auth');
});

test('failures by class, never quoting the recipient: 5xx permanent, 4xx transient, no server transient', async () => {
  const client = connector.client(ctx(smtpConfig(smtp)));
  smtp.refuse(1, 550);
  const perm = await client.send(message());
  smtp.refuse(1, 451);
  const temp = await client.send(message());
  const down = await connector.client(ctx({ host: '127.0.0.1', port: 1, requireTLS: false })).send(message());
  const classes = [perm, temp, down].map((r) => (r.ok ? 'ok' : r.failure.class));
  assert.deepEqual(classes, ['permanent', 'transient', 'transient']);
  for (const r of [perm, temp, down]) if (!r.ok) assert.ok(!/ana|novak|example\.net/i.test(r.failure.message), r.failure.message);
  const noAddress = await client.send(message({ to: { phone: '+4915112345678' } }));
  assert.equal(noAddress.ok ? 'ok' : noAddress.failure.class, 'permanent');
});

test('STARTTLS is required by default: a server without it is refused before anything is sent', async () => {
  const r = await connector.client(ctx({ host: '127.0.0.1', port: smtp.port })).send(message());
  assert.equal(r.ok, false);
});

test('without a host, each message is an .eml file in the data folder (readable by the owner only)', async () => {
  const d = tempDir();
  try {
    const r = await connector.client(ctx({}, {}, d.dir)).send(message());
    assert.ok(r.ok);
    const files = readdirSync(join(d.dir, 'mail'));
    assert.equal(files.length, 1);
    assert.match(files[0], /\.eml$/);
    const path = join(d.dir, 'mail', files[0]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const mail = await simpleParser(readFileSync(path));
    assert.equal(mail.subject, message().subject);
    assert.equal(itipOf(mail)!.method, 'REQUEST');
  } finally {
    d.cleanup();
  }
});

test('the sender is required and checked', () => {
  assert.throws(() => connector.client({ ...ctx({}), config: {} }), ConnectionMisconfigured);
  assert.deepEqual(parseSender('"Lotus Clinic" <a@lotus.example>'), { email: 'a@lotus.example', name: 'Lotus Clinic' });
  assert.deepEqual(parseSender('a@lotus.example'), { email: 'a@lotus.example' });
  assert.deepEqual(connector.checkConfig!({ from: 'nobody', port: 70000 }).map((i) => i.key), ['from', 'port']);
  assert.deepEqual(connector.checkConfig!({ from: FROM }), []);
});
