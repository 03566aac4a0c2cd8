// End to end through the real `bin/meridian serve`: staff book, move and cancel an appointment through the
// REST API and the patient's mailbox (a real SMTP server) receives a confirmation, a change notice and a
// cancellation, each an iMIP message updating the same calendar entry; the messages log and opt-outs are
// served by the API; a hub without a mail server writes the messages as .eml files into its data folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { itipOf, startSmtpSink, type SmtpSink } from '../fakes/smtp-sink.ts';
import { tempDir } from '../helpers.ts';
import { ROOT, eventually, serve, type Served } from './serve.ts';

const run = promisify(execFile);
const PATIENT = 'mara.lind@example.net';

function config(smtpPort: number | undefined): string {
  return `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago }
locations: [{ id: lakeview, name: Lakeview, address: "2900 N Broadway, Chicago, IL" }]
services: [{ id: acupuncture, name: Acupuncture, durationMinutes: 45 }]
practitioners: [{ id: okafor, name: Dr. Ada Okafor, locations: [lakeview] }]
connections:
  - id: mail
    platform: email
    config: { from: "Lotus Integrative Health <appointments@lotus.example>"${smtpPort ? `, host: 127.0.0.1, port: ${smtpPort}, requireTLS: false` : ''} }
notifications:
  channel: mail
  graceMinutes: 0
  reminders: [{ before: 48h }]
  staff: { emails: [frontdesk@lotus.example] }
`;
}

async function start(dir: string, smtpPort: number | undefined): Promise<{ srv: Served; api: (m: string, p: string, b?: unknown) => Promise<any> }> {
  const cfg = join(dir, 'clinic.yaml');
  writeFileSync(cfg, config(smtpPort));
  const common = ['--data', dir, '--config', cfg];
  const srv = await serve(['serve', ...common]);
  const key = (await run(process.execPath, ['bin/meridian', 'keys', 'create', 'e2e', '--scope', 'admin', ...common], { cwd: ROOT })).stdout.split('\n')[0].trim();
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${srv.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const json = await res.json() as any;
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return { srv, api };
}

const inDays = (d: number, hourUtc: number) => {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate() + d, hourUtc)).toISOString();
};

let smtp: SmtpSink;
let dir: { dir: string; cleanup(): void };
let srv: Served;
let api: (m: string, p: string, b?: unknown) => Promise<any>;
before(async () => {
  smtp = await startSmtpSink();
  dir = tempDir();
  ({ srv, api } = await start(dir.dir, smtp.port));
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await smtp.close();
  dir.cleanup();
});

test('book, move, cancel through the API: the patient gets three iMIP messages for one calendar entry', async () => {
  const a = await api('POST', '/appointments', {
    practitionerId: 'okafor', serviceId: 'acupuncture', start: inDays(5, 15), end: inDays(5, 16), patient: { name: 'Mara Lind', email: PATIENT },
  });
  const mails = async (n: number) => eventually(async () => {
    await smtp.settle();
    const m = smtp.to(PATIENT);
    return m.length >= n ? m : undefined;
  }, 20_000, `${n} message(s) to the patient`);
  await mails(1);
  await api('POST', `/appointments/${a.id}/reschedule`, { start: inDays(6, 17), end: inDays(6, 18) });
  await mails(2);
  await api('POST', `/appointments/${a.id}/cancel`, {});
  const got = await mails(3);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(smtp.to(PATIENT).length, 3, 'nothing more (no reminder for the cancelled visit)');
  const inv = got.map((m) => itipOf(m.mail)!);
  assert.deepEqual(inv.map((i) => i.method), ['REQUEST', 'REQUEST', 'CANCEL']);
  assert.equal(new Set(inv.map((i) => i.uid)).size, 1);
  assert.ok(inv[0].sequence < inv[1].sequence && inv[1].sequence < inv[2].sequence);
  assert.equal(inv[1].tzid, 'America/Chicago');
  assert.equal(inv[1].start, new Date(inDays(6, 17)).toISOString());
  const log = await api('GET', `/notifications?appointment=${a.id}`);
  assert.deepEqual(log.items.map((r: any) => `${r.purpose}:${r.state}`).reverse(), ['confirmation:sent', 'change:sent', 'cancellation:sent']);
  assert.ok(log.items.every((r: any) => r.to === 'm…@example.net'), 'addresses masked');
  const audit = await api('GET', `/appointments/${a.id}/audit`);
  assert.equal(audit.items.filter((e: any) => e.action === 'notify.sent').length, 3);
  assert.ok(!srv.output().includes(PATIENT), 'the address is in no log line');
});

test('an opt-out through the API stops the next message at once', async () => {
  await api('POST', '/opt-outs', { address: 'Quiet.Patient@example.net' });
  const list = await api('GET', '/opt-outs');
  assert.deepEqual(list.items.map((o: any) => o.address), ['q…@example.net']);
  const a = await api('POST', '/appointments', { practitionerId: 'okafor', start: inDays(7, 15), end: inDays(7, 16), patient: { name: 'Q P', email: 'quiet.patient@example.net' } });
  const log = await eventually(async () => (await api('GET', `/notifications?appointment=${a.id}`)).items.find((r: any) => r.state === 'suppressed'), 15_000, 'the suppression');
  assert.equal(log.reason, 'the recipient opted out');
  await smtp.settle();
  assert.equal(smtp.to('quiet.patient@example.net').length, 0);
  const settings = await api('GET', '/notification-settings');
  assert.equal(settings.items[0].notifications.graceMinutes, 0);
});

test('without a mail server, messages are .eml files in the data folder', async () => {
  const d = tempDir();
  const s = await start(d.dir, undefined);
  try {
    await s.api('POST', '/appointments', { practitionerId: 'okafor', start: inDays(5, 15), end: inDays(5, 16), patient: { name: 'Mara Lind', email: PATIENT } });
    const files = await eventually(() => existsSync(join(d.dir, 'mail')) && readdirSync(join(d.dir, 'mail')).filter((f) => f.endsWith('.eml')), 15_000, 'an .eml file');
    assert.equal(files.length, 1);
  } finally {
    assert.equal(await s.srv.stop(), 0);
    d.cleanup();
  }
});
