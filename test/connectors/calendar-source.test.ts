// calendar-source: a Google, Graph or CalDAV calendar read as a booking source, against the Google and Graph
// fakes (which check requests against the official specs) and a real Radicale; then through the engine's poll.
// Every calendar is seeded alike: a booking, one of our own events, an all-day event, a free one, a cancelled
// one and one across the 2026-11-01 America/New_York change (01:30 EDT → 02:30 EST is two hours).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount, createObject, fetchCalendars, makeCalendar } from 'tsdav';
import { tzlib_get_ical_block } from 'timezones-ical-library';
import { connector, changeOf } from '../../src/connectors/sources/calendar-source/index.ts';
import { PROP_APPOINTMENT } from '../../src/connectors/targets/microsoft-graph/index.ts';
import { ConnectionMisconfigured, ConnectorError, type ConnectionContext, type CalendarEvent } from '../../src/connectors/types.ts';
import type { SourceChange } from '../../src/domain/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { tempDir, configuredHub } from '../helpers.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';
import { radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';

const WINDOW = { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-30T00:00:00Z') };
const NY = 'America/New_York';
const EDITED = '2026-09-01T10:00:00Z';

/** What every calendar should list: the booking, the cancelled one, the one across the DST change. */
const EXPECTED = [
  { kind: 'upsert', start: '2026-10-20T14:00:00Z', end: '2026-10-20T14:50:00Z', name: 'J. R.' },
  { kind: 'cancel', start: '2026-10-22T15:00:00Z', end: '2026-10-22T16:00:00Z' },
  { kind: 'upsert', start: '2026-11-01T05:30:00Z', end: '2026-11-01T07:30:00Z', name: 'Busy' },
];

async function listAll(ctx: ConnectionContext): Promise<SourceChange[]> {
  const out: SourceChange[] = [];
  for await (const c of connector.list!(WINDOW, ctx)) out.push(c);
  return out.sort((a, b) => a.appointment.start!.localeCompare(b.appointment.start!));
}

function assertListed(changes: SourceChange[], practitionerRef: string) {
  assert.deepEqual(changes.map((c) => ({ kind: c.kind, start: c.appointment.start, end: c.appointment.end, ...(c.kind === 'upsert' ? { name: c.appointment.patient?.name } : {}) })), EXPECTED);
  for (const c of changes) {
    assert.equal(c.platform, 'calendar-source');
    assert.equal(c.appointment.practitionerRef, practitionerRef);
    assert.equal(c.occurredAt, EDITED, 'occurredAt is the calendar\'s own stamp');
    assert.equal(c.needsFetch, false);
  }
  assert.equal(new Set(changes.map((c) => c.externalId)).size, 3);
}

const ctxFor = (over: Partial<ConnectionContext>): ConnectionContext => ({
  connectionId: 'cal-src', config: {}, secrets: {}, baseUrl: '', fetch: globalThis.fetch, now: () => new Date('2026-10-15T12:00:00Z'), ...over,
});

test('polled, never posted to; nothing written back; the auth fields are the calendar platforms\' union', () => {
  const d = connector.descriptor;
  assert.deepEqual({ ...d.capabilities }, { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false });
  assert.equal(connector.writeBack, undefined);
  assert.throws(() => connector.verify({ rawBody: Buffer.from(''), headers: {}, url: '', now: new Date() }, {}), (e: Error) => e instanceof ConnectionMisconfigured && /polled/.test(e.message));
  assert.deepEqual(d.auth.map((f) => f.key).sort(), ['accessToken', 'clientId', 'clientSecret', 'password', 'refreshToken', 'username']);
  assert.ok(d.auth.every((f) => f.secret && !f.required));
  assert.match(d.fidelity, /SimplePractice/);
  assert.match(d.fidelity, /Jane/);
});

test('a connection without its platform or its platform\'s required secrets is refused before any request', async () => {
  let requests = 0;
  const fetch = (async () => { requests++; return new Response('{}'); }) as typeof globalThis.fetch;
  const refused = async (ctx: ConnectionContext, re: RegExp) => {
    await assert.rejects(listAll(ctx), (e: Error) => e instanceof ConnectorError && e.failure.class === 'permanent' && re.test(e.message));
  };
  await refused(ctxFor({ fetch }), /calendarPlatform must be one of google-calendar, microsoft-graph, caldav/);
  await refused(ctxFor({ fetch, config: { calendarPlatform: 'zoho-calendar' } }), /calendarPlatform/);
  await refused(ctxFor({ fetch, config: { calendarPlatform: 'google-calendar' }, secrets: { clientId: 'x' } }), /lacks clientSecret, refreshToken/);
  await refused(ctxFor({ fetch, config: { calendarPlatform: 'caldav' }, secrets: { username: 'u' } }), /lacks password/);
  assert.equal(requests, 0);
});

test('events that are not bookings are left out; titles can be ignored; the e-mail of a lone attendee', () => {
  const e: CalendarEvent = { remoteId: 'r1', start: '2026-10-20T14:00:00Z', end: '2026-10-20T14:50:00Z', title: ' J. R. ', status: 'confirmed', ours: false, allDay: false, transparent: false, attendees: ['jr@example.com'] };
  const s = { calendar: 'okafor@clinic', ignoreTitles: new Set(['lunch']) };
  const now = new Date('2026-10-15T12:00:00Z');
  for (const skip of [{ ours: true }, { allDay: true }, { transparent: true }, { title: ' LUNCH' }]) assert.equal(changeOf({ ...e, ...skip }, s, now), undefined, JSON.stringify(skip));
  const c = changeOf(e, s, now)!;
  assert.deepEqual(c.appointment.patient, { name: 'J. R.', email: 'jr@example.com' });
  assert.equal(c.occurredAt, '2026-10-15T12:00:00Z', 'no stamp: the read time');
  assert.equal(changeOf({ ...e, attendees: ['a@x', 'b@x'] }, s, now)!.appointment.patient?.email, undefined);
  assert.equal(changeOf({ ...e, title: '' }, { ...s, practitioner: 'dr-okafor' }, now)!.appointment.practitionerRef, 'dr-okafor');
});

// ---------------------------------------------------------------- Google

const CAL = 'okafor@clinic';
const ourId = '0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66';

function seedGoogle(g: FakeGoogle) {
  const at = (dateTime: string) => ({ dateTime, timeZone: NY });
  g.addTheirs(CAL, { summary: 'J. R.', start: at('2026-10-20T10:00:00-04:00'), end: at('2026-10-20T10:50:00-04:00'), updated: EDITED, attendees: [{ email: 'jr@example.com' }, { email: CAL, self: true }] });
  g.addTheirs(CAL, { summary: 'L. C. · Acupuncture', start: at('2026-10-21T09:00:00-04:00'), end: at('2026-10-21T09:45:00-04:00'), updated: EDITED, extendedProperties: { private: { meridianAppointmentId: ourId } } });
  g.addTheirs(CAL, { summary: 'Conference', start: { date: '2026-10-23' }, end: { date: '2026-10-24' }, updated: EDITED });
  g.addTheirs(CAL, { summary: 'Focus time', start: at('2026-10-23T13:00:00-04:00'), end: at('2026-10-23T14:00:00-04:00'), transparency: 'transparent', updated: EDITED });
  g.addTheirs(CAL, { summary: 'M. K.', status: 'cancelled', start: at('2026-10-22T11:00:00-04:00'), end: at('2026-10-22T12:00:00-04:00'), updated: EDITED });
  g.addTheirs(CAL, { summary: 'Busy', start: at('2026-11-01T01:30:00-04:00'), end: at('2026-11-01T02:30:00-05:00'), updated: EDITED });
  g.addTheirs(CAL, { summary: 'Outside', start: at('2027-01-20T10:00:00-05:00'), end: at('2027-01-20T11:00:00-05:00'), updated: EDITED });
}

test('Google: events.list over the window, every page, singleEvents and deleted ones, into the right changes', async () => {
  const g = await startFakeGoogle();
  try {
    seedGoogle(g);
    g.pageSize(2);
    const changes = await listAll(ctxFor({ config: { calendarPlatform: 'google-calendar', calendar: CAL, tokenUrl: g.tokenUrl }, secrets: { ...g.credentials }, baseUrl: g.url }));
    assertListed(changes, CAL);
    assert.equal(changes[0].appointment.timeZone, NY);
    assert.equal(changes[0].appointment.patient?.email, 'jr@example.com', 'the calendar\'s own address is not the patient\'s');
    const lists = g.requests.filter((r) => r.method === 'GET');
    assert.ok(lists.length >= 3, 'the pages were followed');
    for (const r of lists) {
      assert.equal(r.path, `/calendar/v3/calendars/${encodeURIComponent(CAL)}/events`);
      assert.deepEqual([r.query.singleEvents, r.query.showDeleted, r.query.timeMin, r.query.timeMax], ['true', 'true', WINDOW.from.toISOString(), WINDOW.to.toISOString()]);
    }
    assert.deepEqual(g.violations, []);
  } finally {
    await g.close();
  }
});

test('Google: a refused token is an auth failure, a 429 is throttled', async () => {
  const g = await startFakeGoogle();
  try {
    const ctx = ctxFor({ config: { calendarPlatform: 'google-calendar', tokenUrl: g.tokenUrl }, secrets: { ...g.credentials, refreshToken: 'revoked' }, baseUrl: g.url });
    await assert.rejects(listAll(ctx), (e: Error) => e instanceof ConnectorError && e.failure.class === 'auth');
    g.fail(1, 429, { 'retry-after': '7' });
    await assert.rejects(listAll({ ...ctx, secrets: { ...g.credentials } }), (e: Error) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 7000);
  } finally {
    await g.close();
  }
});

// ---------------------------------------------------------------- Microsoft Graph

test('Graph: calendarView in UTC, every @odata.nextLink, into the right changes', async () => {
  const m = await startFakeGraph();
  try {
    const at = (dateTime: string, timeZone = NY) => ({ dateTime, timeZone });
    const their = (ev: Record<string, unknown>) => m.addTheirs('me', { lastModifiedDateTime: EDITED, originalStartTimeZone: NY, ...ev });
    their({ subject: 'J. R.', start: at('2026-10-20T10:00:00.0000000'), end: at('2026-10-20T10:50:00.0000000'), attendees: [{ emailAddress: { address: 'jr@example.com' }, type: 'required' }] });
    their({ subject: 'L. C.', start: at('2026-10-21T09:00:00.0000000'), end: at('2026-10-21T09:45:00.0000000'), singleValueExtendedProperties: [{ id: PROP_APPOINTMENT, value: ourId }] });
    their({ subject: 'Conference', isAllDay: true, start: at('2026-10-23T00:00:00.0000000'), end: at('2026-10-24T00:00:00.0000000') });
    their({ subject: 'Focus time', showAs: 'free', start: at('2026-10-23T13:00:00.0000000'), end: at('2026-10-23T14:00:00.0000000') });
    their({ subject: 'M. K.', isCancelled: true, start: at('2026-10-22T11:00:00.0000000'), end: at('2026-10-22T12:00:00.0000000') });
    their({ subject: 'Busy', start: at('2026-11-01T05:30:00.0000000', 'UTC'), end: at('2026-11-01T02:30:00.0000000') });
    m.pageSize(2);
    const changes = await listAll(ctxFor({
      config: { calendarPlatform: 'microsoft-graph', tokenUrl: m.tokenUrl, practitioner: 'okafor-outlook' },
      secrets: { clientId: m.credentials.clientId, refreshToken: m.credentials.refreshToken }, baseUrl: m.url,
    }));
    assertListed(changes, 'okafor-outlook');
    assert.equal(changes[0].appointment.patient?.email, 'jr@example.com');
    assert.equal(changes[0].appointment.timeZone, NY);
    const views = m.requests.filter((r) => r.path.startsWith('/v1.0/me/calendarView?'));
    assert.equal(views.length, 3, 'six events in pages of two');
    assert.deepEqual(m.violations, []);
  } finally {
    await m.close();
  }
});

// ---------------------------------------------------------------- CalDAV (Radicale)

const skip = radicaleMissing();

function ics(body: string[]): string {
  const vtz = String(tzlib_get_ical_block(NY)[0]);
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//test//calendar-source//EN', vtz, 'BEGIN:VEVENT', ...body, 'DTSTAMP:20260901T100000Z', 'LAST-MODIFIED:20260901T100000Z', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
}

describe('CalDAV against Radicale', { skip }, () => {
  let rad: Radicale;
  before(async () => {
    rad = await startRadicale();
    const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers });
    await makeCalendar({ url: `${account.homeUrl}synced/`, headers, props: { 'd:displayname': 'Synced', 'c:supported-calendar-component-set': { 'c:comp': { _attributes: { name: 'VEVENT' } } } } });
    const cal = (await fetchCalendars({ account, headers })).find((c) => c.url.endsWith('/synced/'))!;
    const put = async (name: string, lines: string[]) => {
      const r = await createObject({ url: `${cal.url}${name}.ics`, data: ics([`UID:${name}@test`, ...lines]), headers: { ...headers, 'content-type': 'text/calendar; charset=utf-8' } });
      assert.ok(r.ok, `${name}: ${r.status}`);
    };
    await put('jr', ['SUMMARY:J. R.', `DTSTART;TZID=${NY}:20261020T100000`, `DTEND;TZID=${NY}:20261020T105000`, 'ATTENDEE:mailto:jr@example.com']);
    await put('ours', ['SUMMARY:L. C.', `DTSTART;TZID=${NY}:20261021T090000`, `DTEND;TZID=${NY}:20261021T094500`, `X-MERIDIAN-APPOINTMENT-ID:${ourId}`]);
    await put('allday', ['SUMMARY:Conference', 'DTSTART;VALUE=DATE:20261023', 'DTEND;VALUE=DATE:20261024']);
    await put('free', ['SUMMARY:Focus time', `DTSTART;TZID=${NY}:20261023T130000`, `DTEND;TZID=${NY}:20261023T140000`, 'TRANSP:TRANSPARENT']);
    await put('cancelled', ['SUMMARY:M. K.', `DTSTART;TZID=${NY}:20261022T110000`, `DTEND;TZID=${NY}:20261022T120000`, 'STATUS:CANCELLED']);
    await put('dst', ['SUMMARY:Busy', `DTSTART;TZID=${NY}:20261101T013000`, `DTEND;TZID=${NY}:20261101T023000`]);
    await put('outside', ['SUMMARY:Outside', `DTSTART;TZID=${NY}:20270120T100000`, `DTEND;TZID=${NY}:20270120T110000`]);
  });
  after(() => rad?.stop());

  const ctx = (password = rad.password) => ctxFor({ connectionId: `cal-src-${password}`, config: { calendarPlatform: 'caldav', calendar: 'Synced' }, secrets: { username: rad.username, password }, baseUrl: rad.url });

  test('calendar-query over the window into the right changes', async () => {
    const changes = await listAll(ctx());
    assertListed(changes, 'Synced');
    assert.match(changes[0].externalId, /\/synced\/jr\.ics$/);
    assert.equal(changes[0].appointment.patient?.email, 'jr@example.com');
  });

  test('a recurring event is listed once per occurrence in the window, without its excluded dates', async () => {
    const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}`, 'content-type': 'text/calendar; charset=utf-8' };
    const cal = `${rad.url}/${rad.username}/synced/`;
    const r = await createObject({ url: `${cal}weekly.ics`, data: ics(['UID:weekly@test', 'SUMMARY:A. B.', `DTSTART;TZID=${NY}:20261026T090000`, `DTEND;TZID=${NY}:20261026T093000`, 'RRULE:FREQ=WEEKLY;COUNT=4', `EXDATE;TZID=${NY}:20261109T090000`]), headers });
    assert.ok(r.ok, String(r.status));
    const weekly = (await listAll(ctx())).filter((c) => c.appointment.patient?.name === 'A. B.');
    // Monday 09:00 New York: EDT on 26 Oct, EST on 2 and 16 Nov (9 Nov excluded).
    assert.deepEqual(weekly.map((c) => c.appointment.start), ['2026-10-26T13:00:00Z', '2026-11-02T14:00:00Z', '2026-11-16T14:00:00Z']);
    assert.equal(new Set(weekly.map((c) => c.externalId)).size, 3);
  });

  test('a wrong password is an auth failure', async () => {
    await assert.rejects(listAll(ctx('wrong')), (e: Error) => e instanceof ConnectorError && e.failure.class === 'auth');
  });
});

// ---------------------------------------------------------------- through the engine

describe('through the engine: polls into appointments', () => {
  let g: FakeGoogle;
  let hub: Hub;
  const dir = tempDir();
  before(async () => {
    g = await startFakeGoogle();
    seedGoogle(g);
    hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: l, name: Main }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l] }]
connections:
  - id: simplepractice
    platform: calendar-source
    baseUrl: ${g.url}
    config: { calendarPlatform: google-calendar, calendar: "${CAL}", tokenUrl: ${g.tokenUrl}, ignoreTitles: [Outside] }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
    refs: { practitioners: { "${CAL}": okafor } }
`, { dataDir: dir.dir, clock: { now: () => new Date('2026-10-15T12:00:00Z') },
      env: { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken } });
  });
  after(async () => {
    await hub.store.close();
    await g.close();
    dir.cleanup();
  });

  const live = async () => (await listAppointments(hub.store.db, {})).filter((a) => a.status === 'booked').map((a) => [a.start, a.end, a.patient.name, a.practitionerId]).sort();

  test('the bookings become appointments; polling again changes nothing; a removed event is cancelled', async () => {
    let r = await pollConnection(hub, 'simplepractice');
    assert.equal(r.listed, 3);
    assert.deepEqual(await live(), [
      ['2026-10-20T14:00:00Z', '2026-10-20T14:50:00Z', 'J. R.', 'okafor'],
      ['2026-11-01T05:30:00Z', '2026-11-01T07:30:00Z', 'Busy', 'okafor'],
    ]);
    r = await pollConnection(hub, 'simplepractice');
    assert.equal(r.outcomes.duplicate, 3, JSON.stringify(r.outcomes));
    // The platform removes a booking from the calendar (Google then lists it as cancelled).
    const dst = g.live(CAL).find((e) => e.summary === 'Busy')!;
    g.editBehindOurBack(CAL, dst.id!, { status: 'cancelled', updated: '2026-10-15T11:00:00Z' });
    r = await pollConnection(hub, 'simplepractice');
    assert.equal(r.outcomes.cancelled, 1, JSON.stringify(r.outcomes));
    assert.deepEqual((await live()).map((a) => a[2]), ['J. R.']);
    assert.deepEqual(g.violations, []);
  });

  test('an event that vanishes from the listing is cancelled by absence', async () => {
    g.addTheirs(CAL, { summary: 'N. P.', start: { dateTime: '2026-10-27T10:00:00-04:00' }, end: { dateTime: '2026-10-27T11:00:00-04:00' }, updated: EDITED });
    // Moved far beyond the poll window (90 days): no longer listed at all.
    const jr = g.live(CAL).find((e) => e.summary === 'J. R.')!;
    g.editBehindOurBack(CAL, jr.id!, { start: { dateTime: '2027-03-01T10:00:00-05:00' }, end: { dateTime: '2027-03-01T11:00:00-05:00' } });
    const r = await pollConnection(hub, 'simplepractice');
    assert.equal(r.held, undefined);
    assert.equal(r.outcomes.cancelled, 1, JSON.stringify(r.outcomes));
    assert.deepEqual((await live()).map((a) => a[2]), ['N. P.']);
  });
});
