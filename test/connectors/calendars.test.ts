// The account's calendars (`calendars()`, to pick each practitioner's calendar from) and the CRMs' `ping()`
// (the connect room's "Test connection"): listing, pagination, writable flags, owners, that a listed id
// really addresses its calendar (an upsert with it lands there), and a refused token classified `auth`.
// Google and Graph against fakes checked against the official specs; CalDAV against a real Radicale and the
// iCloud fake; Zoho, Salesforce and HubSpot against their fakes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount, fetchCalendarObjects, fetchCalendars, makeCalendar } from 'tsdav';
import { connector as google } from '../../src/connectors/targets/google-calendar/index.ts';
import { connector as graph, PROP_APPOINTMENT } from '../../src/connectors/targets/microsoft-graph/index.ts';
import { connector as caldav } from '../../src/connectors/targets/caldav/index.ts';
import { connector as zoho, marker } from '../../src/connectors/targets/zoho-calendar/index.ts';
import { connector as salesforce } from '../../src/connectors/targets/salesforce/index.ts';
import { resetUsage } from '../../src/connectors/targets/salesforce/api.ts';
import { connector as hubspot } from '../../src/connectors/targets/hubspot/index.ts';
import { resetWindows } from '../../src/connectors/targets/hubspot/api.ts';
import type { CalendarInfo, ConnectionContext, TargetClient, TargetConnector, TargetEvent, WriteOutcome } from '../../src/connectors/types.ts';
import { startFakeGoogle } from '../fakes/google-calendar.ts';
import { ME_ADDRESS, startFakeGraph } from '../fakes/microsoft-graph.ts';
import { startFakeICloud } from '../fakes/icloud.ts';
import { OWNER_RIGHTS, radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';
import { startFakeZoho } from '../fakes/zoho-calendar.ts';
import { startFakeSalesforce } from '../fakes/salesforce.ts';
import { startFakeHubSpot } from '../fakes/hubspot.ts';

function clientOf(c: TargetConnector, ctx: Partial<ConnectionContext> & Pick<ConnectionContext, 'baseUrl' | 'secrets'>): TargetClient {
  return c.client!({ connectionId: `c-${Math.random().toString(36).slice(2)}`, config: {}, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {}, ...ctx });
}

let n = 0;
function ev(over: Partial<TargetEvent> = {}): TargetEvent {
  n++;
  return {
    appointmentId: `6d1f0c3a-8b2e-4c57-9a1d-${String(n).padStart(12, '0')}`, revision: 1, title: 'L. C. · Acupuncture', description: 'Acupuncture.',
    location: 'Lakeview', start: '2027-04-06T15:00:00Z', end: '2027-04-06T15:45:00Z', timeZone: 'America/Chicago', status: 'booked', ...over,
  };
}

function listed(r: WriteOutcome<CalendarInfo[]>): CalendarInfo[] {
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}
const byName = (cals: CalendarInfo[], name: string) => {
  const c = cals.find((x) => x.name === name);
  assert.ok(c, `${name} in ${cals.map((x) => x.name).join(', ')}`);
  return c;
};
const failureClass = (r: WriteOutcome<unknown>) => (r.ok ? 'ok' : r.failure.class);

// ---------------------------------------------------------------- Google Calendar

describe('Google Calendar calendars()', () => {
  let g: Awaited<ReturnType<typeof startFakeGoogle>>;
  before(async () => { g = await startFakeGoogle(); });
  after(() => g.close());
  const client = (secrets: Record<string, string> = {}) => clientOf(google, { config: { tokenUrl: g.tokenUrl }, baseUrl: g.url, secrets: { ...g.credentials, ...secrets } });

  test('every page of calendarList, with writable flags, the primary calendar, names, owners and zones', async () => {
    g.pageSize(2);
    const cals = listed(await client().calendars!());
    g.pageSize(Infinity);
    assert.equal(g.requests.filter((r) => r.path === '/calendar/v3/users/me/calendarList').length, 3, 'five calendars in pages of two');
    assert.equal(cals.length, 5);
    assert.deepEqual(cals[0], { id: 'okafor@clinic.example', name: 'okafor@clinic.example', primary: true, writable: true, owner: 'okafor@clinic.example', timeZone: 'America/Chicago' });
    const room = byName(cals, 'Lakeview treatment room');
    assert.equal(room.writable, true);
    assert.equal(room.owner, 'okafor@clinic.example', 'dataOwner of a secondary calendar');
    assert.equal(room.primary, undefined);
    const shared = byName(cals, 'Dr. Nakamura');
    assert.deepEqual(shared, { id: 'nakamura@clinic.example', name: 'Dr. Nakamura', writable: true, owner: 'nakamura@clinic.example', timeZone: 'America/Denver' }, 'summaryOverride, writer access, the colleague as owner');
    const holidays = byName(cals, 'Holidays in United States');
    assert.equal(holidays.writable, false);
    assert.equal(holidays.owner, undefined, 'a group calendar has no person as owner');
    assert.equal(byName(cals, 'Front desk').writable, false, 'free/busy only');
    assert.deepEqual(g.violations, []);
  });

  test('a listed id addresses its calendar: the event lands there; a read-only one refuses the write', async () => {
    const c = client();
    const cals = listed(await c.calendars!());
    for (const cal of cals.filter((x) => x.writable)) {
      const e = ev({ calendarId: cal.id });
      const r = await c.upsert(e, undefined);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.calendarId, cal.id);
      assert.equal(g.live(cal.id).filter((x) => x.extendedProperties?.private?.meridianAppointmentId === e.appointmentId).length, 1, cal.name);
    }
    const ro = await c.upsert(ev({ calendarId: byName(cals, 'Holidays in United States').id }), undefined);
    assert.equal(failureClass(ro), 'permanent');
    assert.deepEqual(g.violations, []);
  });

  test('a revoked grant is auth; a grant without the calendar-list scope is auth too (connect again)', async () => {
    assert.equal(failureClass(await client({ refreshToken: 'revoked' }).calendars!()), 'auth');
    const c = client();
    assert.ok((await c.calendars!()).ok);
    g.fail(1, 403);
    const r = await c.calendars!();
    assert.equal(failureClass(r), 'auth');
    assert.match(!r.ok ? r.failure.message : '', /insufficientPermissions.*connect again/);
    g.fail(1, 503);
    assert.equal(failureClass(await c.calendars!()), 'transient');
    // An expired access token is refreshed once and the listing goes on.
    g.expireTokens();
    assert.ok((await c.calendars!()).ok);
  });
});

// ---------------------------------------------------------------- Microsoft Graph

describe('Microsoft Graph calendars()', () => {
  let m: Awaited<ReturnType<typeof startFakeGraph>>;
  before(async () => { m = await startFakeGraph(); });
  after(() => m.close());
  const delegated = (secrets: Record<string, string> = {}) =>
    clientOf(graph, { config: { mode: 'delegated', tokenUrl: m.tokenUrl }, baseUrl: m.url, secrets: { clientId: m.credentials.clientId, refreshToken: m.credentials.refreshToken, ...secrets } });
  const application = (config: Record<string, unknown>, secrets: Record<string, string> = {}) =>
    clientOf(graph, { config: { mode: 'application', tokenUrl: m.tokenUrl, ...config }, baseUrl: m.url, secrets: { clientId: m.credentials.clientId, clientSecret: m.credentials.clientSecret, ...secrets } });
  const ours = (events: Record<string, any>[], id: string) => events.filter((e) => e.singleValueExtendedProperties?.some((p: { id: string; value: string }) => p.id === PROP_APPOINTMENT && p.value === id));

  test('delegated: /me/calendars, every @odata.nextLink, canEdit as writable, the owner\'s address', async () => {
    m.pageSize(2);
    const cals = listed(await delegated().calendars!());
    m.pageSize(Infinity);
    assert.equal(m.requests.filter((r) => r.path.startsWith('/v1.0/me/calendars?')).length, 3, 'five calendars in pages of two');
    assert.equal(cals.length, 5);
    assert.deepEqual(cals[0], { id: 'AAMkADefault-me', name: 'Calendar', primary: true, writable: true, owner: ME_ADDRESS });
    assert.equal(byName(cals, 'Treatment room').writable, true);
    assert.deepEqual(byName(cals, 'Dr. Nakamura'), { id: 'AAMkADShared-nakamura', name: 'Dr. Nakamura', writable: true, owner: 'nakamura@clinic.example' });
    assert.equal(byName(cals, 'United States holidays').writable, false);
    assert.equal(byName(cals, 'Front desk').writable, false);
    assert.deepEqual(m.violations, []);
  });

  test('delegated: a listed id addresses its calendar (own, shared, default) for create, update, read-back and delete', async () => {
    const c = delegated();
    const cals = listed(await c.calendars!());
    for (const name of ['Treatment room', 'Dr. Nakamura', 'Calendar']) {
      const cal = byName(cals, name);
      const e = ev({ calendarId: cal.id });
      const made = await c.upsert(e, undefined);
      assert.ok(made.ok, JSON.stringify(made));
      assert.equal(ours(m.calendarEvents('me', cal.id), e.appointmentId).length, 1, `${name}: created there`);
      if (!cal.primary) assert.equal(ours(m.events('me'), e.appointmentId).length, 0, `${name}: not in the default calendar`);
      const moved = await c.upsert({ ...e, revision: 2, start: '2027-04-07T15:00:00Z', end: '2027-04-07T15:45:00Z' }, made.value);
      assert.ok(moved.ok, JSON.stringify(moved));
      assert.equal(ours(m.calendarEvents('me', cal.id), e.appointmentId)[0].start.dateTime, '2027-04-07T10:00:00');
      const seen = await c.inspect!({ ...e, revision: 2, start: '2027-04-07T15:00:00Z', end: '2027-04-07T15:45:00Z' }, moved.value);
      assert.deepEqual(seen.ok && seen.value.state, 'in_sync');
      assert.ok((await c.remove(moved.value, e.appointmentId)).ok);
      assert.equal(ours(m.calendarEvents('me', cal.id), e.appointmentId).length, 0, `${name}: removed`);
    }
    const ro = await c.upsert(ev({ calendarId: byName(cals, 'United States holidays').id }), undefined);
    assert.equal(failureClass(ro), 'permanent', 'canEdit false: 403 ErrorAccessDenied');
    assert.deepEqual(m.violations, []);
  });

  test('application: the configured mailboxes\' calendars; the default one is the mailbox, the others <mailbox>/<id>', async () => {
    const room = m.addCalendar('okafor@clinic.example', { name: 'Clinic appointments' });
    m.addCalendar('okafor@clinic.example', { name: 'Board room (read)', canEdit: false });
    const c = application({ mailboxes: ['okafor@clinic.example', 'nakamura@clinic.example'] });
    const cals = listed(await c.calendars!());
    assert.deepEqual(cals.map((x) => x.id), ['okafor@clinic.example', `okafor@clinic.example/${room.id}`, `okafor@clinic.example/${m.calendars('okafor@clinic.example')[2].id}`, 'nakamura@clinic.example']);
    assert.deepEqual(cals[0], { id: 'okafor@clinic.example', name: 'Calendar', primary: true, writable: true, owner: 'okafor@clinic.example' });
    assert.equal(byName(cals, 'Board room (read)').writable, false);
    assert.ok(m.tokenRequests.some((t) => t.grant === 'client_credentials'));
    // Each listed id writes where it says.
    const inRoom = ev({ calendarId: `okafor@clinic.example/${room.id}` });
    const r1 = await c.upsert(inRoom, undefined);
    assert.ok(r1.ok, JSON.stringify(r1));
    assert.equal(ours(m.calendarEvents('okafor@clinic.example', room.id), inRoom.appointmentId).length, 1);
    assert.equal(ours(m.events('okafor@clinic.example'), inRoom.appointmentId).length, 0);
    const inDefault = ev({ calendarId: 'nakamura@clinic.example' });
    assert.ok((await c.upsert(inDefault, undefined)).ok);
    assert.equal(ours(m.events('nakamura@clinic.example'), inDefault.appointmentId).length, 1);
    // Moving the binding to another calendar of the mailbox writes there.
    const moved = await c.upsert({ ...inRoom, calendarId: 'okafor@clinic.example', revision: 2 }, r1.value);
    assert.ok(moved.ok, JSON.stringify(moved));
    assert.equal(ours(m.events('okafor@clinic.example'), inRoom.appointmentId).length, 1);
    // Without configured mailboxes: the credentials are proved, nothing to list.
    assert.deepEqual(listed(await application({}).calendars!()), []);
    assert.deepEqual(m.violations, []);
  });

  test('a refused refresh token or client secret is auth', async () => {
    assert.equal(failureClass(await delegated({ refreshToken: 'revoked' }).calendars!()), 'auth');
    assert.equal(failureClass(await application({ mailboxes: ['okafor@clinic.example'] }, { clientSecret: 'wrong' }).calendars!()), 'auth');
    assert.equal(failureClass(await application({}, { clientSecret: 'wrong' }).calendars!()), 'auth');
    const c = delegated();
    m.fail(1, 429, { 'retry-after': '3' });
    const r = await c.calendars!();
    assert.equal(failureClass(r), 'throttled');
    assert.equal(!r.ok && r.failure.retryAfterMs, 3000);
  });
});

// ---------------------------------------------------------------- CalDAV: Radicale

const HOLIDAYS_READ_ONLY = ['[holidays]', 'user: .+', 'collection: {user}/holidays', 'permissions: r', OWNER_RIGHTS].join('\n');

describe('CalDAV calendars() against Radicale', { skip: radicaleMissing() }, () => {
  let rad: Radicale;
  const headers = () => ({ authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` });
  before(async () => {
    rad = await startRadicale({ rights: OWNER_RIGHTS });
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: headers() });
    const make = (slug: string, name: string, comp: string) => makeCalendar({
      url: `${account.homeUrl}${slug}/`, headers: headers(),
      props: { 'd:displayname': name, 'c:supported-calendar-component-set': { 'c:comp': { _attributes: { name: comp } } } },
    });
    await make('appointments', 'Appointments', 'VEVENT');
    await make('holidays', 'Holidays', 'VEVENT');
    await make('tasks', 'Tasks', 'VTODO');
    // Holidays becomes read-only for its owner (Radicale reads its rights file on every request).
    rad.setRights(HOLIDAYS_READ_ONLY);
  });
  after(() => rad?.stop());
  const client = (password = rad.password) => clientOf(caldav, { connectionId: `rad-${password}`, config: { uidDomain: 'clinic.example' }, baseUrl: rad.url, secrets: { username: rad.username, password } });

  test('event calendars of the home with their paths; writable from current-user-privilege-set', async () => {
    const cals = listed(await client().calendars!());
    assert.deepEqual(cals.map((c) => c.name).sort(), ['Appointments', 'Holidays'], 'the VTODO list is left out');
    assert.deepEqual(byName(cals, 'Appointments'), { id: '/practitioner/appointments/', name: 'Appointments', writable: true });
    assert.equal(byName(cals, 'Holidays').writable, false);
  });

  test('a listed id addresses its calendar; the read-only one refuses', async () => {
    const c = client();
    const cals = listed(await c.calendars!());
    const e = ev({ calendarId: byName(cals, 'Appointments').id });
    const r = await c.upsert(e, undefined);
    assert.ok(r.ok, JSON.stringify(r));
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: headers() });
    const cal = (await fetchCalendars({ account, headers: headers() })).find((x) => x.url.endsWith('/appointments/'))!;
    const objects = await fetchCalendarObjects({ calendar: cal, headers: headers() });
    assert.equal(objects.filter((o) => String(o.data).includes(`X-MERIDIAN-APPOINTMENT-ID:${e.appointmentId}`)).length, 1);
    assert.equal(failureClass(await c.upsert(ev({ calendarId: byName(cals, 'Holidays').id }), undefined)), 'permanent');
  });

  test('a wrong password is auth', async () => {
    assert.equal(failureClass(await client('wrong').calendars!()), 'auth');
  });
});

// ---------------------------------------------------------------- CalDAV: iCloud

describe('CalDAV calendars() against the iCloud fake', () => {
  let c: Awaited<ReturnType<typeof startFakeICloud>>;
  before(async () => { c = await startFakeICloud(); });
  after(() => c.close());
  const client = (password = c.appPassword) => clientOf(caldav, { connectionId: `icloud-${password}`, baseUrl: c.url, secrets: { username: c.appleId, password } });

  test('discovery through the partition host: own calendars with the Apple ID as owner, the shared one read-only, no reminders', async () => {
    const cals = listed(await client().calendars!());
    assert.deepEqual(cals.map((x) => x.name), ['Home', 'Work', 'Family']);
    assert.deepEqual(cals[0], { id: '/1234567890/calendars/home/', name: 'Home', writable: true, owner: c.appleId, timeZone: 'America/Denver' });
    const family = byName(cals, 'Family');
    assert.equal(family.writable, false);
    assert.equal(family.owner, undefined, 'another Apple ID\'s calendar');
    assert.equal(family.timeZone, 'America/Los_Angeles');
  });

  test('a listed id addresses its calendar; writing into the read-only share is refused', async () => {
    const cl = client();
    const cals = listed(await cl.calendars!());
    const e = ev({ calendarId: byName(cals, 'Work').id });
    const r = await cl.upsert(e, undefined);
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.value.remoteId.startsWith(`${c.partitionUrl}/1234567890/calendars/work/`), r.value.remoteId);
    assert.equal(c.objects('work').filter((o) => o.ics.includes(e.appointmentId)).length, 1);
    assert.equal(failureClass(await cl.upsert(ev({ calendarId: byName(cals, 'Family').id }), undefined)), 'permanent');
    assert.equal(c.objects('family-shared').length, 0);
  });

  test('a wrong app-specific password is auth', async () => {
    assert.equal(failureClass(await client('not-it').calendars!()), 'auth');
  });
});

// ---------------------------------------------------------------- Zoho Calendar

describe('Zoho Calendar calendars()', () => {
  let z: Awaited<ReturnType<typeof startFakeZoho>>;
  before(async () => { z = await startFakeZoho(); });
  after(() => z.close());
  const client = (over: Record<string, string> = {}) => clientOf(zoho, { config: { accountsServer: z.accountsServer }, baseUrl: z.url, secrets: { ...z.credentials, ...over } });

  test('own and shared calendars with their uids, the default one, privileges as writable, zones', async () => {
    const cals = listed(await client().calendars!());
    assert.equal(cals.length, 5);
    assert.deepEqual(cals[0], { id: 'default-cal', name: 'Ada Okafor', primary: true, writable: true, timeZone: 'America/Chicago' });
    assert.equal(byName(cals, 'Treatment room').writable, true);
    assert.equal(byName(cals, 'Dr. Nakamura').writable, true, 'shared with write access');
    assert.equal(byName(cals, 'US Holidays').writable, false);
    assert.equal(byName(cals, 'Front desk').writable, false, 'free/busy only');
    assert.ok(z.requests.some((r) => r.path === '/api/v1/calendars'), 'all categories, not only own');
    assert.deepEqual(z.violations, []);
  });

  test('a listed id addresses its calendar; a read-only one refuses', async () => {
    const c = client();
    const cals = listed(await c.calendars!());
    for (const name of ['Treatment room', 'Dr. Nakamura']) {
      const cal = byName(cals, name);
      const e = ev({ calendarId: cal.id });
      const r = await c.upsert(e, undefined);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(z.events(cal.id).filter((x) => x.description?.includes(marker(e.appointmentId))).length, 1, name);
      assert.equal(z.events('default-cal').filter((x) => x.description?.includes(marker(e.appointmentId))).length, 0);
    }
    assert.equal(failureClass(await c.upsert(ev({ calendarId: byName(cals, 'US Holidays').id }), undefined)), 'permanent');
    assert.deepEqual(z.violations, []);
  });

  test('a refused refresh token is auth', async () => {
    assert.equal(failureClass(await client({ refreshToken: '1000.revoked' }).calendars!()), 'auth');
  });
});

// ---------------------------------------------------------------- CRMs: ping

describe('Salesforce ping()', () => {
  let sf: Awaited<ReturnType<typeof startFakeSalesforce>>;
  before(async () => { sf = await startFakeSalesforce(); resetUsage(); });
  after(() => sf.close());
  const client = (secrets: Record<string, string>, id = 'sf-ping') => clientOf(salesforce, { connectionId: id, baseUrl: sf.loginUrl, secrets });

  test('one read of the version\'s resources with the JWT or the refresh-token session; the org host as account', async () => {
    const c = sf.credentials;
    const sessions: Record<string, string>[] = [{ clientId: c.clientId, username: c.username, privateKey: c.privateKey }, { clientId: c.clientId, clientSecret: c.clientSecret, refreshToken: c.refreshToken }];
    for (const secrets of sessions) {
      const before = sf.requests.length;
      const r = await client(secrets).ping!();
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.account, new URL(sf.url).host);
      assert.deepEqual(sf.requests.slice(before).map((q) => `${q.method} ${q.path}`), ['GET /services/data/v62.0/']);
    }
    assert.deepEqual(sf.violations, []);
  });

  test('a refused grant or session is auth; an expired session is renewed once', async () => {
    const c = sf.credentials;
    assert.equal(failureClass(await client({ clientId: c.clientId, clientSecret: c.clientSecret, refreshToken: 'revoked' }, 'sf-revoked').ping!()), 'auth');
    assert.equal(failureClass(await client({ clientId: c.clientId, username: 'someone@else.example', privateKey: c.privateKey }, 'sf-user').ping!()), 'auth');
    const live = client({ clientId: c.clientId, username: c.username, privateKey: c.privateKey }, 'sf-renew');
    assert.ok((await live.ping!()).ok);
    sf.expireTokens();
    assert.ok((await live.ping!()).ok, 'INVALID_SESSION_ID → a new assertion → the read again');
    // A stale access token that cannot be renewed: the session is refused.
    const stale = client({ clientId: c.clientId, accessToken: 'expired', instanceUrl: sf.url }, 'sf-stale');
    assert.equal(failureClass(await stale.ping!()), 'auth');
  });
});

describe('HubSpot ping()', () => {
  let hs: Awaited<ReturnType<typeof startFakeHubSpot>>;
  before(async () => { hs = await startFakeHubSpot(); resetWindows(); });
  after(() => hs.close());
  const client = (secrets: Record<string, string>, id = 'hs-ping') => clientOf(hubspot, { connectionId: id, baseUrl: hs.url, secrets });

  test('a one-meeting read with the private-app token or an OAuth session, asking for no patient data', async () => {
    const tokens: Record<string, string>[] = [{ privateAppToken: hs.privateAppToken }, { ...hs.oauth }];
    for (const secrets of tokens) {
      const before = hs.requests.length;
      const r = await client(secrets).ping!();
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(hs.requests.slice(before).map((q) => `${q.method} ${q.path}`), ['GET /crm/v3/objects/meetings?limit=1&properties=hs_object_id&archived=false']);
    }
    assert.equal(hs.searches, 0);
    assert.deepEqual(hs.violations, []);
  });

  test('a refused token is auth; throttling is throttled', async () => {
    assert.equal(failureClass(await client({ privateAppToken: 'pat-na1-revoked' }).ping!()), 'auth');
    assert.equal(failureClass(await client({ ...hs.oauth, refreshToken: 'revoked' }, 'hs-revoked').ping!()), 'auth');
    hs.perTenSeconds = 0;
    const r = await client({ privateAppToken: hs.privateAppToken }, 'hs-throttled').ping!();
    hs.perTenSeconds = 100;
    assert.equal(failureClass(r), 'throttled');
  });
});
