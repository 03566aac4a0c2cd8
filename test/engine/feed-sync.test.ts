// A practitioner's calendar feed as a booking source, through the engine into the Google fake: a week of
// bookings arrives once (in the schedule and in the calendar), an unchanged feed is a 304 and writes
// nothing, a booking that leaves the feed is cancelled and leaves the calendar, and a feed that comes
// back empty is held for staff instead of wiping the week.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listHeld, pollConnection } from '../../src/engine/sync/poll.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { startIcsServer, type IcsServer } from '../fakes/ics-server.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const CAL = 'lee@clinic.example';
const dir = tempDir();
let hub: Hub;
let g: FakeGoogle;
let feeds: IcsServer;

/** Monday of next week, 00:00 local New York date (as YYYYMMDD plus n days). */
function dayStamp(n: number): string {
  const d = new Date(Date.now() + (7 - new Date().getUTCDay() + 1 + n) * 86_400_000);
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

function feed(uids: number[]): string {
  const events = uids.map((i) => [
    'BEGIN:VEVENT', `UID:visit-${i}@practice.example`, 'DTSTAMP:20261101T120000Z', 'LAST-MODIFIED:20261101T120000Z',
    `DTSTART;TZID=America/New_York:${dayStamp(i % 5)}T${String(9 + Math.floor(i / 5)).padStart(2, '0')}0000`,
    `DTEND;TZID=America/New_York:${dayStamp(i % 5)}T${String(9 + Math.floor(i / 5)).padStart(2, '0')}4500`,
    `SUMMARY:Client ${String.fromCharCode(65 + i)}.`, 'END:VEVENT',
  ].join('\r\n'));
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//practice//EN', ...events, 'END:VCALENDAR', ''].join('\r\n');
}

before(async () => {
  g = await startFakeGoogle();
  feeds = await startIcsServer();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: l, name: Main }]
practitioners: [{ id: lee, name: Sam Lee, locations: [l], targets: [{ connection: google, calendar: "${CAL}" }] }]
connections:
  - id: lee-feed
    platform: ics-feed
    config: { practitioner: lee }
    secrets: { feedUrl: { env: FEED } }
    refs: { practitioners: { lee: lee } }
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl} }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`, { dataDir: dir.dir,
    env: { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken, FEED: feeds.url('/lee.ics') } });
});
after(async () => {
  await hub.store.close();
  await g.close();
  await feeds.close();
  dir.cleanup();
});

const ours = () => g.events(CAL).filter((e) => e.status !== 'cancelled');
const writes = () => g.requests.filter((r) => r.method !== 'GET').length;

test('a week of bookings from a feed arrives in the schedule and the calendar exactly once', async () => {
  feeds.serve('/lee.ics', feed([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  const r = await pollConnection(hub, 'lee-feed');
  assert.equal(r.outcomes.created, 10);
  await drain(hub);
  assert.equal(ours().length, 10);
  const w = writes();
  // The same feed again: a 304, nothing applied, nothing written.
  const again = await pollConnection(hub, 'lee-feed');
  assert.equal(again.notModified, true);
  await drain(hub);
  assert.equal(writes(), w);
  assert.equal((await listAppointments(hub.store.db, {})).length, 10);
  assert.deepEqual(g.violations, []);
});

test('a booking that leaves the feed is cancelled and leaves the calendar', async () => {
  feeds.serve('/lee.ics', feed([0, 1, 2, 3, 4, 5, 6, 7, 8]));
  const r = await pollConnection(hub, 'lee-feed');
  assert.equal(r.outcomes.cancelled, 1);
  await drain(hub);
  assert.equal(ours().length, 9);
  const gone = (await listAppointments(hub.store.db, { status: ['cancelled'] })).map((a) => a.origin.externalId);
  assert.deepEqual(gone, ['visit-9@practice.example']);
});

test('a feed that comes back empty is held for approval; the week stays', async () => {
  feeds.serve('/lee.ics', feed([]));
  const r = await pollConnection(hub, 'lee-feed');
  assert.deepEqual([r.held?.cancellations, r.held?.upcoming], [9, 9]);
  await drain(hub);
  assert.equal(ours().length, 9, 'nothing removed from the calendar');
  assert.equal((await listAppointments(hub.store.db, { status: ['booked'] })).length, 9);
  assert.equal((await listHeld(hub, 'pending')).length, 1);
  // The feed comes back whole: the hold is superseded and nothing was lost.
  feeds.serve('/lee.ics', feed([0, 1, 2, 3, 4, 5, 6, 7, 8]));
  await pollConnection(hub, 'lee-feed');
  assert.equal((await listHeld(hub, 'pending')).length, 0);
  assert.equal((await listHeld(hub, 'superseded')).length, 1);
});
