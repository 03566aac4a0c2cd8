// iCloud quirks (targets.md §3) against a fake that enforces what Radicale does not: discovery to an
// account partition host, app-specific password, DTEND required, one UID per account.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connector } from '../../src/connectors/targets/caldav/index.ts';
import type { ConnectionContext, TargetClient, TargetEvent } from '../../src/connectors/types.ts';
import { startFakeICloud, type FakeICloud } from '../fakes/icloud.ts';

let c: FakeICloud;
before(async () => {
  c = await startFakeICloud();
});
after(() => c.close());

const client = (password = c.appPassword): TargetClient => {
  const ctx: ConnectionContext = {
    connectionId: `icloud-${password}`, config: {}, secrets: { username: c.appleId, password },
    baseUrl: c.url, fetch: globalThis.fetch, now: () => new Date(),
  };
  return connector.client!(ctx);
};
const ev = (over: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: '0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66', revision: 1, calendarId: 'Home', title: 'J. R. · Acupuncture', description: 'x',
  start: '2027-03-10T16:30:00Z', end: '2027-03-10T17:20:00Z', timeZone: 'America/Denver', status: 'booked', ...over,
});

test('discovery follows the account to its partition host; writes land there', async () => {
  const r = await client().upsert(ev(), undefined);
  assert.ok(r.ok, JSON.stringify(r));
  assert.ok(r.value.remoteId.startsWith(`${c.partitionUrl}/`), r.value.remoteId);
  assert.equal(c.objects('home').length, 1);
  assert.ok(c.requests.some((q) => q.host === 'partition' && q.method === 'PUT'));
  assert.ok(!c.requests.some((q) => q.host === 'main' && q.method === 'PUT'), 'nothing is written to the discovery host');
});

test('the fake does refuse an event without DTEND (our objects always carry one)', async () => {
  const href = `${c.partitionUrl}/1234567890/calendars/home/no-dtend.ics`;
  const body = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\nUID:no-dtend\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270101T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
  const res = await fetch(href, { method: 'PUT', headers: { authorization: `Basic ${Buffer.from(`${c.appleId}:${c.appPassword}`).toString('base64')}`, 'if-none-match': '*' }, body });
  assert.equal(res.status, 404);
  assert.match(c.objects('home')[0].ics, /^DTEND;TZID=America\/Denver:20270310T102000/m);
});

test('the same UID in another calendar of the account is refused (403 no-uid-conflict): a new generation is used', async () => {
  const r = await client().upsert(ev({ calendarId: 'Work' }), undefined);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.generation, 1);
  assert.equal(c.objects('work').length, 1);
  assert.match(c.objects('work')[0].ics, /UID:meridian-0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66-g1@/);
});

test('a wrong or revoked app-specific password is an auth failure', async () => {
  const r = await client('not-the-app-password').upsert(ev({ appointmentId: '11111111-5a71-4d9e-b2c4-7e13a9d05f66' }), undefined);
  assert.equal(!r.ok && r.failure.class, 'auth');
});
