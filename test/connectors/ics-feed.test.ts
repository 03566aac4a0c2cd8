// The ICS-feed source (src/connectors/shared/feed.ts) and the SimplePractice and Doodle sources built on
// it: parsing generated feeds (a week across the 2026-11-01 change in America/New_York, a recurring
// series with EXDATE, a moved and a cancelled override), every file of the real-world corpus, the
// SimplePractice sample, and reading over HTTP from the fake (test/fakes/ics-server.ts): conditional
// GET with ETag, Basic auth, size bound, and through the engine with pollConnection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { tzlib_get_ical_block } from 'timezones-ical-library';
import { connector } from '../../src/connectors/sources/ics-feed/index.ts';
import { connector as simplepractice } from '../../src/connectors/sources/simplepractice/index.ts';
import { connector as doodle } from '../../src/connectors/sources/doodle/index.ts';
import { parseFeed, FULL_READ_EVERY_MS, MAX_FEED_BYTES, type FeedOptions } from '../../src/connectors/shared/feed.ts';
import { ConnectionMisconfigured, ConnectorError, NotModified, UnreadablePayload, type ConnectionContext } from '../../src/connectors/types.ts';
import type { SourceChange } from '../../src/domain/types.ts';
import { getSource } from '../../src/connectors/registry.ts';
import { openHub, makeLogger } from '../../src/engine/hub/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { tempDir } from '../helpers.ts';
import { startIcsServer, type IcsServer } from '../fakes/ics-server.ts';

const CORPUS = new URL('../fixtures/ics-corpus/', import.meta.url);
const SAMPLE = new URL('../fixtures/samples/simplepractice/generic-subscription-feed.ics', import.meta.url);
const NOW = new Date('2026-10-28T12:00:00Z');
const WINDOW = { from: new Date('2026-10-21T00:00:00Z'), to: new Date('2027-01-26T00:00:00Z') };
const NY = tzlib_get_ical_block('America/New_York')[0];

/** A feed as a calendar app publishes it: the New York VTIMEZONE, then the given VEVENT bodies. */
function feed(...events: string[]): string {
  const body = events.map((e) => `BEGIN:VEVENT\r\n${e.trim().split('\n').map((l) => l.trim()).join('\r\n')}\r\nEND:VEVENT`);
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Test//Feed//EN', 'X-WR-TIMEZONE:America/New_York', NY, ...body, 'END:VCALENDAR', ''].join('\r\n');
}
const booking = (uid: string, day: string, from: string, to: string, extra = '') => `
  UID:${uid}
  DTSTAMP:20261020T100000Z
  LAST-MODIFIED:20261015T080000Z
  DTSTART;TZID=America/New_York:${day}T${from}
  DTEND;TZID=America/New_York:${day}T${to}
  SUMMARY:${uid.toUpperCase()}
  ${extra}`;

/** Oct 29 – Nov 4 2026 at 09:00 New York time, and one at 01:30, the hour that occurs twice on Nov 1. */
const WEEK = ['20261029', '20261030', '20261031', '20261101', '20261102', '20261103', '20261104'].map((d) => booking(`w${d}`, d, '090000', '095000'));
const REPEATED_HOUR = booking('early', '20261101', '013000', '015000');
const SERIES = `
  UID:series-1
  DTSTAMP:20261020T100000Z
  LAST-MODIFIED:20261001T090000Z
  DTSTART;TZID=America/New_York:20261027T100000
  DTEND;TZID=America/New_York:20261027T105000
  RRULE:FREQ=WEEKLY;COUNT=7
  EXDATE;TZID=America/New_York:20261110T100000
  EXDATE:20261208T150000Z
  SUMMARY:K.M.`;
const MOVED = `
  UID:series-1
  RECURRENCE-ID;TZID=America/New_York:20261117T100000
  DTSTAMP:20261020T100000Z
  LAST-MODIFIED:20261012T090000Z
  DTSTART;TZID=America/New_York:20261118T140000
  DTEND;TZID=America/New_York:20261118T145000
  SUMMARY:K.M.`;
const CANCELLED_OCCURRENCE = `
  UID:series-1
  RECURRENCE-ID:20261201T150000Z
  DTSTAMP:20261020T100000Z
  LAST-MODIFIED:20261013T090000Z
  DTSTART;TZID=America/New_York:20261201T100000
  DTEND;TZID=America/New_York:20261201T105000
  STATUS:CANCELLED
  SUMMARY:K.M.`;

const opts = (o: Partial<FeedOptions> = {}): FeedOptions => ({ platform: 'ics-feed', window: WINDOW, ...o });
const byId = (cs: SourceChange[]) => new Map(cs.map((c) => [c.externalId, c]));

test('a week of bookings across the end of daylight time: UTC instants as RFC 5545 resolves New York wall times', () => {
  const { changes, skipped } = parseFeed(feed(...WEEK, REPEATED_HOUR), opts());
  assert.equal(skipped, 0);
  const starts = Object.fromEntries(changes.map((c) => [c.externalId, [c.appointment.start, c.appointment.end]]));
  assert.deepEqual(starts, {
    w20261029: ['2026-10-29T13:00:00Z', '2026-10-29T13:50:00Z'],
    w20261030: ['2026-10-30T13:00:00Z', '2026-10-30T13:50:00Z'],
    w20261031: ['2026-10-31T13:00:00Z', '2026-10-31T13:50:00Z'],
    w20261101: ['2026-11-01T14:00:00Z', '2026-11-01T14:50:00Z'],
    w20261102: ['2026-11-02T14:00:00Z', '2026-11-02T14:50:00Z'],
    w20261103: ['2026-11-03T14:00:00Z', '2026-11-03T14:50:00Z'],
    w20261104: ['2026-11-04T14:00:00Z', '2026-11-04T14:50:00Z'],
    // 01:30 happens twice that night: RFC 5545 takes the first (EDT, -04:00); ical.js alone says 06:30Z.
    early: ['2026-11-01T05:30:00Z', '2026-11-01T05:50:00Z'],
  });
  const c = changes[0];
  assert.deepEqual(
    { kind: c.kind, occurredAt: c.occurredAt, status: c.appointment.status, timeZone: c.appointment.timeZone, patient: c.appointment.patient, needsFetch: c.needsFetch },
    { kind: 'upsert', occurredAt: '2026-10-15T08:00:00Z', status: 'booked', timeZone: 'America/New_York', patient: { name: 'W20261029' }, needsFetch: false },
  );
  assert.deepEqual(parseFeed(feed(...WEEK, REPEATED_HOUR), opts()), { changes, skipped }, 'the same feed gives the same changes');
});

test('a recurring series: the rule expanded, EXDATE left out, a moved occurrence keeps its id, a cancelled one cancels', () => {
  const movedAway = MOVED.replace('20261117T100000', '20261124T100000').replaceAll('20261118T1', '20270302T1');
  const { changes, skipped } = parseFeed(feed(SERIES, MOVED, CANCELLED_OCCURRENCE, movedAway), opts());
  assert.equal(skipped, 0);
  const got = changes.map((c) => [c.externalId, c.kind, c.appointment.start, c.appointment.end, c.occurredAt]).sort((a, b) => String(a[2]).localeCompare(String(b[2])));
  assert.deepEqual(got, [
    ['series-1#2026-10-27T14:00:00Z', 'upsert', '2026-10-27T14:00:00Z', '2026-10-27T14:50:00Z', '2026-10-01T09:00:00Z'],
    ['series-1#2026-11-03T15:00:00Z', 'upsert', '2026-11-03T15:00:00Z', '2026-11-03T15:50:00Z', '2026-10-01T09:00:00Z'],
    // 2026-11-10 is an EXDATE (and 2026-12-08, given in UTC); the 17th moved to the 18th at 14:00 and keeps the id of the 17th
    ['series-1#2026-11-17T15:00:00Z', 'upsert', '2026-11-18T19:00:00Z', '2026-11-18T19:50:00Z', '2026-10-12T09:00:00Z'],
    // 2026-11-24 moved to March 2027, out of the window: not listed at either time
    // the override names its occurrence in UTC while the series is in New York time: matched by instant
    ['series-1#2026-12-01T15:00:00Z', 'cancel', '2026-12-01T15:00:00Z', '2026-12-01T15:50:00Z', '2026-10-13T09:00:00Z'],
  ]);
  assert.equal(byId(changes).get('series-1#2026-12-01T15:00:00Z')?.appointment.status, 'cancelled');
  // A zone the file does not define (ical.js then expands in floating time): a UTC EXDATE still applies.
  const bare = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20261020T100000Z\r\nDTSTART;TZID=Asia/Kolkata:20261027T100000\r\n'
    + 'DTEND;TZID=Asia/Kolkata:20261027T110000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE:20261103T043000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
  assert.deepEqual(parseFeed(bare, opts()).changes.map((c) => c.externalId), ['b#2026-10-27T04:30:00Z', 'b#2026-11-10T04:30:00Z']);
});

test('status, free time, all-day, window, titles and practitioner', () => {
  const text = feed(
    booking('gone', '20261105', '090000', '100000', 'STATUS:CANCELLED'),
    booking('maybe', '20261105', '110000', '120000', 'STATUS:TENTATIVE\nORGANIZER;CN=Dr Lee:mailto:Lee@Clinic.Example'),
    booking('free', '20261105', '130000', '140000', 'TRANSP:TRANSPARENT'),
    'UID:holiday\nDTSTAMP:20261020T100000Z\nDTSTART;VALUE=DATE:20261126\nDTEND;VALUE=DATE:20261127\nSUMMARY:Thanksgiving',
    'UID:untitled\nDTSTAMP:20261020T100000Z\nDTSTART:20261106T150000Z\nDTEND:20261106T160000Z',
    booking('long-ago', '20250105', '090000', '100000'),
    booking('conference', '20261107', '090000', '100000').replace('DTEND;TZID=America/New_York:20261107T100000', 'DTEND;TZID=America/New_York:20261109T170000'),
  );
  const { changes } = parseFeed(text, opts({ practitioner: 'dr-lee' }));
  const m = byId(changes);
  assert.deepEqual([...m.keys()].sort(), ['gone', 'maybe', 'untitled'], 'free, all-day, out-of-window and multi-day events are not appointments');
  assert.deepEqual([m.get('gone')?.kind, m.get('gone')?.appointment.status], ['cancel', 'cancelled']);
  assert.equal(m.get('maybe')?.appointment.status, 'requested');
  assert.equal(m.get('maybe')?.appointment.practitionerRef, 'dr-lee');
  assert.equal(m.get('maybe')?.appointment.practitionerEmail, 'lee@clinic.example');
  assert.equal(m.get('untitled')?.appointment.patient?.name, 'Busy');
  assert.equal(m.get('untitled')?.occurredAt, '2026-10-20T10:00:00Z', 'DTSTAMP when there is no LAST-MODIFIED');
  const unstamped = parseFeed(feed('UID:bare\nDTSTART:20261106T150000Z\nDTEND:20261106T160000Z'), opts({ readAt: NOW })).changes[0];
  assert.equal(unstamped.occurredAt, '2026-10-28T12:00:00Z', 'no stamp at all: the read time');
  assert.equal(m.get('untitled')?.appointment.timeZone, 'America/New_York', 'a UTC event takes the calendar zone (X-WR-TIMEZONE)');
  const named = parseFeed(feed(booking('p', '20261105', '090000', '100000').replace('SUMMARY:P', 'SUMMARY:Session (A.B.)')), opts({ patientPattern: '\\(([^)]+)\\)$' }));
  assert.equal(named.changes[0].appointment.patient?.name, 'A.B.');
});

test('a broken event is skipped and counted; a body that is not iCalendar is unreadable', () => {
  const broken = feed(WEEK[0], 'UID:bad\nDTSTAMP:20261020T100000Z\nDTSTART:2026-11-0', 'DTSTAMP:20261020T100000Z\nDTSTART:20261106T150000Z\nDTEND:20261106T160000Z', WEEK[1]);
  const r = parseFeed(broken, opts());
  assert.deepEqual([r.changes.map((c) => c.externalId), r.skipped], [['w20261029', 'w20261030'], 2]);
  const truncated = feed(WEEK[0]).replace(/END:VEVENT\r\nEND:VCALENDAR\r\n$/, '');
  assert.deepEqual(parseFeed(truncated, opts()).skipped, 1);
  assert.throws(() => parseFeed('<!doctype html><title>Sign in</title>', opts()), UnreadablePayload);
  assert.throws(() => parseFeed('', opts()), UnreadablePayload);
  assert.deepEqual(parseFeed('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n', opts()), { changes: [], skipped: 0 });
});

test('every corpus file is read without throwing; the known-broken events are counted', () => {
  const all = { from: new Date('1990-01-01T00:00:00Z'), to: new Date('2030-01-01T00:00:00Z') };
  const files = readdirSync(CORPUS).filter((f) => f.endsWith('.ics'));
  assert.equal(files.length, 33);
  const skipped: Record<string, number> = {};
  for (const f of files) {
    const r = parseFeed(readFileSync(new URL(f, CORPUS), 'utf8'), { platform: 'ics-feed', window: all });
    for (const c of r.changes) assert.ok(Date.parse(c.appointment.end!) > Date.parse(c.appointment.start!), `${f}: ${c.externalId}`);
    if (r.skipped) skipped[f] = r.skipped;
  }
  assert.deepEqual(skipped, {
    'exchange-cdo-recurring.ics': 1, // RRULE "BYDAY=MO, TU": ical.js refuses the space
    'exchange-owa-2012.ics': 4, // no UID
    'google-aus-holidays.ics': 96, // DATE values without VALUE=DATE
    'google-biweekly-exdate-until.ics': 1, // the same, in an EXDATE
    'plone-unicode-fields.ics': 2, // no UID
    'rfc2446-itip-examples.ics': 13, // iTIP replies without DTSTART
  });
  const google = byId(parseFeed(readFileSync(new URL('google-rrule-exdate-recurrence-id.ics', CORPUS), 'utf8'), { platform: 'ics-feed', window: all }).changes);
  assert.equal(google.size, 8);
  assert.equal(google.get('98765432-ABCD-DCBB-999A-987765432123#2017-06-29T14:00:00Z')?.appointment.start, '2017-07-03T14:00:00Z');
  assert.equal(google.has('98765432-ABCD-DCBB-999A-987765432123#2017-07-06T14:00:00Z'), false, 'EXDATE');
  // Windows zone names, resolved through each file's own VTIMEZONE: +08:00, and Exchange's custom Bangkok zone (+07:00)
  const read = (f: string) => parseFeed(readFileSync(new URL(f, CORPUS), 'utf8'), { platform: 'ics-feed', window: all }).changes;
  assert.equal(read('outlook12-recurring.ics')[0].appointment.start, '2008-10-31T01:30:00Z');
  assert.deepEqual([read('exchange-custom-tz.ics')[0].appointment.start, read('exchange-custom-tz.ics')[0].appointment.timeZone], ['2019-04-30T02:00:00Z', undefined]);
});

test('SimplePractice: the generic subscription sample parses to its documented facts', () => {
  const [c, ...rest] = parseFeed(readFileSync(SAMPLE, 'utf8'), { platform: 'simplepractice', window: { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') } }).changes;
  assert.equal(rest.length, 0);
  assert.deepEqual(
    [c.platform, c.externalId, c.kind, c.appointment.status, c.appointment.start, c.appointment.end, c.appointment.patient],
    ['simplepractice', 'fixture-appt-30001@feed.example-clinic.test', 'upsert', 'booked', '2026-03-05T19:00:00Z', '2026-03-05T19:50:00Z', { name: 'Appointment (J.D.)' }],
  );
  // The sample's README expects the initials alone: what a clinic's `patientPattern` gives.
  const [p] = parseFeed(readFileSync(SAMPLE, 'utf8'), { platform: 'simplepractice', window: { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') }, patientPattern: '\\(([^)]+)\\)$' }).changes;
  assert.deepEqual(p.appointment.patient, { name: 'J.D.' });
});

test('descriptors: polled, complete listings, no webhooks, nothing written back', () => {
  for (const c of [connector, simplepractice, doodle]) {
    assert.deepEqual(c.descriptor.capabilities, { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false });
    assert.equal(c.writeBack, undefined);
    assert.throws(() => c.verify({ rawBody: Buffer.from(''), headers: {}, url: '', now: NOW }, {}), ConnectionMisconfigured);
  }
  assert.deepEqual([connector, simplepractice, doodle].map((c) => c.descriptor.id), ['ics-feed', 'simplepractice', 'doodle']);
});

// ---------------------------------------------------------------- over HTTP

let server: IcsServer;
before(async () => {
  server = await startIcsServer();
});
after(() => server.close());

const ctx = (over: Partial<ConnectionContext> = {}): ConnectionContext => ({
  connectionId: 'feed', config: {}, secrets: {}, baseUrl: '', fetch, now: () => NOW, ...over,
});
async function collect(it: AsyncIterable<SourceChange>): Promise<SourceChange[]> {
  const out: SourceChange[] = [];
  for await (const c of it) out.push(c);
  return out;
}

test('a list polls the feed; an event that leaves the feed is simply no longer listed', async () => {
  server.serve('/cal.ics', feed(...WEEK));
  const c = ctx({ config: { url: server.url('/cal.ics') } });
  const first = await collect(connector.list!(WINDOW, c));
  assert.equal(first.length, 7);
  assert.ok(first.every((x) => x.platform === 'ics-feed'));
  server.serve('/cal.ics', feed(...WEEK.filter((_, i) => i !== 2)));
  const second = await collect(connector.list!(WINDOW, c));
  assert.equal(second.length, 6);
  assert.equal(second.some((x) => x.externalId === 'w20261031'), false);
  assert.deepEqual(server.requests.at(-1)?.headers.accept?.startsWith('text/calendar'), true);
  assert.deepEqual(server.violations, []);
});

test('conditional GET: the ETag and Last-Modified are kept in syncState, a 304 is NotModified, a change is read again', async () => {
  server.serve('/etag.ics', feed(...WEEK));
  const syncState: Record<string, string> = {};
  let now = NOW;
  const c = ctx({ config: { url: server.url('/etag.ics') }, syncState, now: () => now });
  assert.equal((await collect(connector.list!(WINDOW, c))).length, 7);
  assert.match(syncState.etag, /^"[0-9a-f]{16}"$/);
  assert.ok(Date.parse(syncState.lastModified));
  assert.equal(syncState.fullReadAt, NOW.toISOString());
  const firstTag = syncState.etag;
  await assert.rejects(collect(connector.list!(WINDOW, c)), NotModified);
  const asked = server.requests.at(-1)!.headers;
  assert.deepEqual([asked['if-none-match'], asked['if-modified-since']], [firstTag, syncState.lastModified]);
  server.serve('/etag.ics', feed(...WEEK, REPEATED_HOUR));
  assert.equal((await collect(connector.list!(WINDOW, c))).length, 8);
  assert.notEqual(syncState.etag, firstTag);
  // A day later the feed is read in full even if unchanged, so recurring events entering the window appear.
  now = new Date(NOW.getTime() + FULL_READ_EVERY_MS + 1);
  assert.equal((await collect(connector.list!(WINDOW, c))).length, 8);
  assert.equal(server.requests.at(-1)!.headers['if-none-match'], undefined);
  assert.deepEqual(server.violations, []);
});

test('the secret feedUrl wins over config url; Basic auth from secrets or the URL; refusals are classified', async () => {
  server.serve('/private-abc123/basic.ics', feed(WEEK[0]), { basic: { user: 'dr', pass: 'pw' } });
  server.serve('/public.ics', feed(...WEEK));
  const secretUrl = server.url('/private-abc123/basic.ics');
  const withAuth = ctx({ config: { url: server.url('/public.ics') }, secrets: { feedUrl: secretUrl, username: 'dr', password: 'pw' } });
  assert.deepEqual((await collect(connector.list!(WINDOW, withAuth))).map((x) => x.externalId), ['w20261029']);
  const inUrl = ctx({ secrets: { feedUrl: secretUrl.replace('http://', 'http://dr:pw@') } });
  assert.equal((await collect(connector.list!(WINDOW, inUrl))).length, 1);
  const refused = await collect(connector.list!(WINDOW, ctx({ secrets: { feedUrl: secretUrl } }))).catch((e: unknown) => e);
  assert.ok(refused instanceof ConnectorError);
  assert.equal(refused.failure.class, 'auth');
  assert.ok(!refused.message.includes('abc123'), 'the private address stays out of errors');
  const missing = await collect(connector.list!(WINDOW, ctx({ config: { url: server.url('/nothing.ics') } }))).catch((e: unknown) => e);
  assert.equal((missing as ConnectorError).failure.class, 'gone');
  await assert.rejects(collect(connector.list!(WINDOW, ctx())), (e: unknown) => e instanceof ConnectorError && e.failure.class === 'permanent');
  await assert.rejects(collect(connector.list!(WINDOW, ctx({ config: { url: 'ftp://example.test/cal.ics' } }))), ConnectorError);
});

test('an oversized body and a page that is not iCalendar are permanent failures', async () => {
  server.serve('/huge.ics', `BEGIN:VCALENDAR\r\nX-PAD:${'x'.repeat(MAX_FEED_BYTES)}\r\nEND:VCALENDAR\r\n`, { chunked: true });
  server.serve('/login.ics', '<!doctype html><title>Sign in</title>', { contentType: 'text/html' });
  for (const path of ['/huge.ics', '/login.ics']) {
    const err = await collect(connector.list!(WINDOW, ctx({ config: { url: server.url(path) } }))).catch((e: unknown) => e);
    assert.ok(err instanceof ConnectorError, path);
    assert.equal(err.failure.class, 'permanent', path);
  }
});

test('SimplePractice and Doodle list the same feed under their own platform id', async () => {
  server.serve('/sp.ics', readFileSync(SAMPLE, 'utf8'));
  const window = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') };
  const c = ctx({ secrets: { feedUrl: server.url('/sp.ics') } });
  assert.deepEqual((await collect(simplepractice.list!(window, c))).map((x) => [x.platform, x.externalId]), [['simplepractice', 'fixture-appt-30001@feed.example-clinic.test']]);
  assert.deepEqual((await collect(doodle.list!(window, c))).map((x) => x.platform), ['doodle']);
});

// ---------------------------------------------------------------- through the engine

const registered = Boolean(getSource('ics-feed'));
test('through the engine: pollConnection applies the feed into appointments; polling again changes nothing', { skip: registered ? false : 'ics-feed is not in src/connectors/registry.ts yet' }, async () => {
  server.serve('/engine.ics', feed(...WEEK, SERIES, MOVED, booking('gone', '20261105', '090000', '100000', 'STATUS:CANCELLED')));
  const dir = tempDir();
  const hub = await openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: {}, clock: { now: () => NOW } });
  try {
    const c = parseConfig(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: main, name: Main }]
practitioners: [{ id: lee, name: Dr. Lee, locations: [main] }]
connections:
  - id: feed
    platform: ics-feed
    config: { url: "${server.url('/engine.ics')}" }
    refs: { defaultPractitioner: lee }
`, 'test.yaml');
    await applyConfig(hub, c.config, c.hash, 'test');
    const r = await pollConnection(hub, 'feed');
    assert.equal(r.listed, 7 + 5 + 1);
    const appts = await listAppointments(hub.store.db, {});
    assert.equal(appts.length, 13);
    const byExt = new Map(appts.map((a) => [a.origin.externalId, a]));
    assert.equal(byExt.get('w20261101')?.start, '2026-11-01T14:00:00Z');
    assert.equal(byExt.get('w20261101')?.timeZone, 'America/New_York');
    assert.equal(byExt.get('w20261101')?.practitionerId, 'lee');
    assert.equal(byExt.get('series-1#2026-11-17T15:00:00Z')?.start, '2026-11-18T19:00:00Z');
    assert.equal(byExt.get('gone')?.status, 'cancelled');
    assert.equal(byExt.get('w20261029')?.patient.name, 'W20261029');
    // Unchanged feed: the stored ETag is sent back, the 304 becomes NotModified, nothing is applied.
    const again = await pollConnection(hub, 'feed');
    assert.equal(again.notModified, true);
    assert.ok(server.requests.at(-1)!.headers['if-none-match']);
    assert.deepEqual((await listAppointments(hub.store.db, {})).map((a) => a.revision), appts.map(() => 1));
    // A booking moved in the calendar (which stamps it): the next poll moves the appointment.
    const movedLater = booking('w20261104', '20261104', '113000', '122000').replace('LAST-MODIFIED:20261015T080000Z', 'LAST-MODIFIED:20261027T080000Z');
    server.serve('/engine.ics', feed(...WEEK.slice(0, 6), movedLater, SERIES, MOVED));
    await pollConnection(hub, 'feed');
    const moved = (await listAppointments(hub.store.db, {})).find((a) => a.origin.externalId === 'w20261104');
    assert.deepEqual([moved?.start, moved?.end, moved?.revision], ['2026-11-04T16:30:00Z', '2026-11-04T17:20:00Z', 2]);
  } finally {
    await hub.store.close();
    dir.cleanup();
  }
});
