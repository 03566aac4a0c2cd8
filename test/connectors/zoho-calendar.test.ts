// Zoho Calendar target against the fake: eventdata rules, etag-guarded update and delete, the
// description marker that makes a retried create find its event, and data-centre hosts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { calendarHostFor, connector, marker, zohoTime } from '../../src/connectors/targets/zoho-calendar/index.ts';
import type { ConnectionContext, TargetClient, TargetEvent } from '../../src/connectors/types.ts';
import { startFakeZoho, type FakeZoho } from '../fakes/zoho-calendar.ts';

let z: FakeZoho;
before(async () => {
  z = await startFakeZoho();
});
after(() => z.close());

const client = (over: Record<string, string> = {}): TargetClient => {
  const ctx: ConnectionContext = {
    connectionId: 'zoho', config: { accountsServer: z.accountsServer }, secrets: { ...z.credentials, ...over },
    baseUrl: z.url, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {},
  };
  return connector.client!(ctx);
};
const ev = (over: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: '7a2d9c41-3e8b-4f06-a5d2-91c4e0b7f3a8', revision: 1, title: 'A. N. · Massage', description: 'Therapeutic massage.',
  location: 'Lindenhof', start: '2027-03-12T09:00:00Z', end: '2027-03-12T10:00:00Z', timeZone: 'Europe/Berlin', status: 'booked', ...over,
});
const ours = (id: string) => z.events('default-cal').filter((e) => e.description?.includes(marker(id)));

test('hosts follow the data centre of the OAuth callback; times are GMT', () => {
  assert.equal(calendarHostFor('https://accounts.zoho.eu'), 'https://calendar.zoho.eu');
  assert.equal(calendarHostFor('https://accounts.zoho.com.au'), 'https://calendar.zoho.com.au');
  assert.equal(calendarHostFor(undefined), 'https://calendar.zoho.com');
  assert.equal(zohoTime('2027-03-12T09:00:00Z'), '20270312T090000Z');
});

test('create, update with the latest etag, and delete; the default calendar is found', async () => {
  const c = client();
  const r = await c.upsert(ev(), undefined);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(ours(ev().appointmentId)[0].dateandtime, { timezone: 'Europe/Berlin', start: '20270312T090000Z', end: '20270312T100000Z' });
  const moved = await c.upsert(ev({ revision: 2, start: '2027-03-12T13:00:00Z', end: '2027-03-12T14:00:00Z' }), r.value);
  assert.ok(moved.ok, JSON.stringify(moved));
  assert.equal(ours(ev().appointmentId).length, 1);
  assert.equal(ours(ev().appointmentId)[0].dateandtime.start, '20270312T130000Z');
  assert.ok((await c.remove(moved.value, ev().appointmentId)).ok);
  assert.equal(ours(ev().appointmentId).length, 0);
  assert.ok((await c.remove(moved.value, ev().appointmentId)).ok, 'already gone is done');
  assert.deepEqual(z.violations, []);
});

test('an edit behind our back changes the etag: we read the latest and write ours', async () => {
  const c = client();
  const r = await c.upsert(ev({ appointmentId: '11111111-3e8b-4f06-a5d2-91c4e0b7f3a8' }), undefined);
  assert.ok(r.ok);
  z.editBehindOurBack('default-cal', r.value.remoteId, { title: 'edited in Zoho' });
  const again = await c.upsert(ev({ appointmentId: '11111111-3e8b-4f06-a5d2-91c4e0b7f3a8', revision: 2 }), r.value);
  assert.ok(again.ok, JSON.stringify(again));
  assert.equal(ours('11111111-3e8b-4f06-a5d2-91c4e0b7f3a8')[0].title, 'A. N. · Massage');
  assert.deepEqual(z.violations, []);
});

test('a create that errs after succeeding is found by its marker, never duplicated', async () => {
  const c = client();
  const id = '22222222-3e8b-4f06-a5d2-91c4e0b7f3a8';
  z.failAfterCreate(1);
  const first = await c.upsert(ev({ appointmentId: id }), undefined);
  assert.equal(!first.ok && first.failure.class, 'transient');
  const retry = await c.upsert(ev({ appointmentId: id, revision: 2 }), undefined);
  assert.ok(retry.ok, JSON.stringify(retry));
  assert.equal(ours(id).length, 1);
});

test('deleted by hand: the next write creates it again; 429 is throttled; a bad grant is auth', async () => {
  const c = client();
  const id = '33333333-3e8b-4f06-a5d2-91c4e0b7f3a8';
  const r = await c.upsert(ev({ appointmentId: id }), undefined);
  assert.ok(r.ok);
  z.deleteBehindOurBack('default-cal', r.value.remoteId);
  const back = await c.upsert(ev({ appointmentId: id, revision: 2 }), r.value);
  assert.ok(back.ok);
  assert.equal(ours(id).length, 1);
  z.fail(1, 429, { 'retry-after': '20' });
  const t = await c.upsert(ev({ appointmentId: id, revision: 3 }), back.value);
  assert.equal(!t.ok && t.failure.class, 'throttled');
  const bad = await client({ refreshToken: 'revoked' }).upsert(ev({ appointmentId: '44444444-3e8b-4f06-a5d2-91c4e0b7f3a8' }), undefined);
  assert.equal(!bad.ok && bad.failure.class, 'auth');
});

test('busy times: the user\'s own events in the window, not ours', async () => {
  const c = client();
  assert.ok((await c.upsert(ev({ appointmentId: '55555555-3e8b-4f06-a5d2-91c4e0b7f3a8', start: '2027-06-01T09:00:00Z', end: '2027-06-01T10:00:00Z' }), undefined)).ok);
  z.addTheirs('default-cal', { title: 'Dentist', dateandtime: { timezone: 'Europe/Berlin', start: '20270601T130000+0200', end: '20270601T140000+0200' } });
  const r = await c.busy!({ from: new Date('2027-05-31T00:00:00Z'), to: new Date('2027-06-02T00:00:00Z') }, undefined);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value, [{ start: '2027-06-01T11:00:00Z', end: '2027-06-01T12:00:00Z' }]);
});
