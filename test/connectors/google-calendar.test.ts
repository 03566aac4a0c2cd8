// Google Calendar target against the fake, which checks every request against Google's discovery document.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector } from '../../src/connectors/targets/google-calendar/index.ts';
import { eventIdFor } from '../../src/connectors/targets/google-calendar/event-id.ts';
import type { ConnectionContext, TargetClient, TargetEvent } from '../../src/connectors/types.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';

let g: FakeGoogle;
let saved: Record<string, string>[];
const CAL = 'okafor@clinic.example';

function client(secrets: Partial<Record<string, string>> = {}): TargetClient {
  const ctx: ConnectionContext = {
    connectionId: 'google-main',
    config: { tokenUrl: g.tokenUrl },
    secrets: { ...g.credentials, ...secrets } as Record<string, string>,
    baseUrl: g.url,
    fetch: globalThis.fetch,
    now: () => new Date(),
    saveSecrets: async (p) => void saved.push(p),
  };
  return connector.client!(ctx);
}

const event = (over: Partial<TargetEvent> = {}): TargetEvent => ({
  appointmentId: '0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66', revision: 1, calendarId: CAL, title: 'L. C. · Acupuncture',
  description: 'Acupuncture with Dr. Okafor.', location: 'Lakeview', start: '2026-02-20T15:00:00Z', end: '2026-02-20T15:45:00Z',
  timeZone: 'America/Chicago', status: 'booked', ...over,
});

before(async () => {
  g = await startFakeGoogle();
});
after(() => g.close());
beforeEach(() => {
  saved = [];
});

test('the event id follows the published vector', () => {
  const v = JSON.parse(readFileSync(new URL('../fixtures/samples/google-calendar/event-id-derivation.vector.json', import.meta.url), 'utf8'));
  const uuid = v.appointmentId ?? v.input?.appointmentId ?? v.uuid ?? '0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66';
  const expected = v.eventId ?? v.expected?.eventId ?? v.output ?? '1u5jobiqe56ptcm4fo9qjk2vco';
  assert.equal(eventIdFor(uuid), expected);
  assert.equal(eventIdFor('0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66'), '1u5jobiqe56ptcm4fo9qjk2vco');
  assert.equal(eventIdFor('0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66', 2), '1u5jobiqe56ptcm4fo9qjk2vcog2');
});

test('create then update keeps one event, with our ids private and nobody e-mailed', async () => {
  const c = client();
  const a = await c.upsert(event(), undefined);
  assert.ok(a.ok, JSON.stringify(a));
  assert.equal(a.value.remoteId, '1u5jobiqe56ptcm4fo9qjk2vco');
  const b = await c.upsert(event({ revision: 2, start: '2026-02-23T18:30:00Z', end: '2026-02-23T19:15:00Z' }), a.value);
  assert.ok(b.ok);
  const live = g.live(CAL);
  assert.equal(live.length, 1);
  assert.equal(live[0].start?.dateTime, '2026-02-23T18:30:00Z');
  assert.equal(live[0].start?.timeZone, 'America/Chicago');
  assert.deepEqual(live[0].extendedProperties?.private, { meridianAppointmentId: event().appointmentId, meridianRevision: '2', meridianConnectionId: 'google-main' });
  assert.equal(live[0].attendees, undefined);
  const writes = g.requests.filter((r) => r.method !== 'GET');
  assert.ok(writes.length >= 2 && writes.every((r) => r.query.sendUpdates === 'none'));
  assert.equal(saved.length, 1, 'the refreshed token was saved (encrypted by the engine)');
  assert.deepEqual(g.violations, []);
});

test('a retried create that meets 409 becomes an update of the same event', async () => {
  const id = '11111111-2222-4333-8444-555555555555';
  const c = client();
  assert.ok((await c.upsert(event({ appointmentId: id }), undefined)).ok);
  // The worker crashed before saving the link: it creates again.
  const again = await c.upsert(event({ appointmentId: id, revision: 2, title: 'moved' }), undefined);
  assert.ok(again.ok, JSON.stringify(again));
  const mine = g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === id);
  assert.equal(mine.length, 1);
  assert.equal(mine[0].summary, 'moved');
});

test('delete is idempotent; a deleted event is restored (or a new generation used) when the appointment returns', async () => {
  const id = '22222222-2222-4333-8444-555555555555';
  const c = client();
  const made = await c.upsert(event({ appointmentId: id }), undefined);
  assert.ok(made.ok);
  assert.ok((await c.remove(made.value, id)).ok);
  assert.ok((await c.remove(made.value, id)).ok, '410 on a deleted event is success');
  assert.equal(g.live(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === id).length, 0);
  // Rebooked: insert meets 409 (Google remembers the id), the event is restored in place.
  const back = await c.upsert(event({ appointmentId: id, revision: 3 }), undefined);
  assert.ok(back.ok);
  assert.equal(back.value.generation, 0);
  assert.equal(g.live(CAL).filter((e) => e.id === eventIdFor(id)).length, 1);
  // Deleted in Google's UI and not restorable: the next generation id.
  g.deleteBehindOurBack(CAL, eventIdFor(id));
  g.refuseRestore(CAL, eventIdFor(id));
  const gen = await c.upsert(event({ appointmentId: id, revision: 4 }), back.value);
  assert.ok(gen.ok, JSON.stringify(gen));
  assert.equal(gen.value.generation, 1);
  assert.equal(gen.value.remoteId, `${eventIdFor(id)}g1`);
  assert.equal(g.live(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === id).length, 1);
  assert.deepEqual(g.violations, []);
});

test('429 is throttled with Retry-After; 500 is transient; 400 is permanent', async () => {
  const c = client();
  g.fail(1, 429, { 'retry-after': '7' });
  const r = await c.upsert(event({ appointmentId: '33333333-2222-4333-8444-555555555555' }), undefined);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.failure.class, 'throttled');
  assert.equal(!r.ok && r.failure.retryAfterMs, 7000);
  g.fail(1, 500);
  const t = await c.upsert(event({ appointmentId: '33333333-2222-4333-8444-555555555555' }), undefined);
  assert.equal(!t.ok && t.failure.class, 'transient');
  g.fail(1, 400);
  const p = await c.upsert(event({ appointmentId: '33333333-2222-4333-8444-555555555555' }), undefined);
  assert.equal(!p.ok && p.failure.class, 'permanent');
  assert.ok(!p.ok && !p.failure.message.includes('L. C.'), 'no event text in errors');
});

test('an expired token is refreshed once for many concurrent writes; a revoked grant is an auth failure', async () => {
  const c = client();
  assert.ok((await c.upsert(event({ appointmentId: '44444444-2222-4333-8444-555555555550' }), undefined)).ok);
  g.expireTokens();
  const before = g.tokenRequests;
  const ids = [1, 2, 3, 4, 5].map((i) => `44444444-2222-4333-8444-55555555555${i}`);
  const rs = await Promise.all(ids.map((id) => c.upsert(event({ appointmentId: id }), undefined)));
  assert.ok(rs.every((r) => r.ok), JSON.stringify(rs));
  assert.equal(g.tokenRequests - before, 1, 'single-flight refresh');
  const revoked = client({ refreshToken: 'revoked' });
  const r = await revoked.upsert(event({ appointmentId: '55555555-2222-4333-8444-555555555555' }), undefined);
  assert.equal(!r.ok && r.failure.class, 'auth');
});

test('daylight-saving edges are sent as instants with the IANA zone', async () => {
  const c = client();
  // 01:30 on the fall-back night in New York happens twice: the second (EST) one.
  const r = await c.upsert(event({ appointmentId: '66666666-2222-4333-8444-555555555555', start: '2026-11-01T06:30:00Z', end: '2026-11-01T07:30:00Z', timeZone: 'America/New_York' }), undefined);
  assert.ok(r.ok);
  const ev = g.events(CAL).find((e) => e.id === r.value.remoteId)!;
  assert.equal(ev.start?.dateTime, '2026-11-01T06:30:00Z');
  assert.equal(ev.start?.timeZone, 'America/New_York');
  assert.deepEqual(g.violations, []);
});
