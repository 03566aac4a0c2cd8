// CalDAV target against a real Radicale: create, update, retried create, hand edits, delete, a
// resource name taken by someone else, wrong password, and daylight-saving times read back.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount, fetchCalendarObjects, fetchCalendars, makeCalendar, createObject, type DAVCalendar } from 'tsdav';
import { connector } from '../../src/connectors/targets/caldav/index.ts';
import { parseCalendar } from '../../src/connectors/shared/icalendar.ts';
import type { ConnectionContext, TargetClient, TargetEvent } from '../../src/connectors/types.ts';
import { radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';

const skip = radicaleMissing();

describe('CalDAV against Radicale', { skip }, () => {
  let rad: Radicale;
  let cal: DAVCalendar;
  const headers = () => ({ authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` });

  before(async () => {
    rad = await startRadicale();
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: headers() });
    await makeCalendar({
      url: `${account.homeUrl}appointments/`, headers: headers(),
      props: { 'd:displayname': 'Appointments', 'c:supported-calendar-component-set': { 'c:comp': { _attributes: { name: 'VEVENT' } } } },
    });
    cal = (await fetchCalendars({ account, headers: headers() })).find((c) => c.url.endsWith('/appointments/'))!;
    assert.ok(cal);
  });
  after(() => rad?.stop());

  const client = (password = rad.password): TargetClient => {
    const ctx: ConnectionContext = {
      connectionId: `icloud-${password}`, config: { uidDomain: 'clinic.example' }, secrets: { username: rad.username, password },
      baseUrl: rad.url, fetch: globalThis.fetch, now: () => new Date('2026-03-01T12:00:00Z'),
    };
    return connector.client!(ctx);
  };
  const event = (over: Partial<TargetEvent> = {}): TargetEvent => ({
    appointmentId: '0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66', revision: 1, calendarId: 'Appointments', title: 'J. R. · Acupuncture',
    description: 'Acupuncture with Dr. Okafor.', location: 'Cedar Street', start: '2027-03-10T16:30:00Z', end: '2027-03-10T17:20:00Z',
    timeZone: 'America/Denver', status: 'booked', ...over,
  });
  const stored = async () => (await fetchCalendarObjects({ calendar: cal, headers: headers() })).map((o) => ({ ...o, parsed: parseCalendar(o.data as string) }));
  const ours = async (id: string) => (await stored()).filter((o) => o.parsed.events.some((e) => e.x['X-MERIDIAN-APPOINTMENT-ID'] === id));

  test('create writes one valid object: our UID and ids, a VTIMEZONE, DTEND, no METHOD', async () => {
    const r = await client().upsert(event(), undefined);
    assert.ok(r.ok, JSON.stringify(r));
    assert.match(r.value.remoteId, /\/appointments\/meridian-0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66\.ics$/);
    assert.ok(r.value.etag);
    const [o] = await ours(event().appointmentId);
    const text = o.data as string;
    assert.doesNotMatch(text, /^METHOD:/m);
    assert.match(text, /BEGIN:VTIMEZONE\r\nTZID:America\/Denver/);
    assert.match(text, /DTSTART;TZID=America\/Denver:20270310T093000/);
    assert.match(text, /DTEND;TZID=America\/Denver:20270310T102000/);
    assert.match(text, /CLASS:PRIVATE/);
    const [ev] = o.parsed.events;
    assert.equal(ev.uid, 'meridian-0f8b3c2e-5a71-4d9e-b2c4-7e13a9d05f66@clinic.example');
    assert.equal(ev.start, '2027-03-10T16:30:00Z');
    assert.equal(ev.x['X-MERIDIAN-REVISION'], '1');
  });

  test('update moves it in place with a higher SEQUENCE; a retried create becomes an update', async () => {
    const c = client();
    const first = (await ours(event().appointmentId))[0];
    const link = { remoteId: first.url, etag: first.etag, generation: 0, calendarId: 'Appointments', data: { calendarUrl: cal.url } };
    const r = await c.upsert(event({ revision: 2, start: '2027-03-11T16:30:00Z', end: '2027-03-11T17:20:00Z' }), link);
    assert.ok(r.ok, JSON.stringify(r));
    let all = await ours(event().appointmentId);
    assert.equal(all.length, 1);
    assert.equal(all[0].parsed.events[0].start, '2027-03-11T16:30:00Z');
    assert.equal(all[0].parsed.events[0].sequence, 2);
    // The worker lost the link (crash after the PUT): create again → 412 → ours → update.
    const again = await c.upsert(event({ revision: 3, title: 'moved again' }), undefined);
    assert.ok(again.ok, JSON.stringify(again));
    all = await ours(event().appointmentId);
    assert.equal(all.length, 1);
    assert.equal(all[0].parsed.events[0].summary, 'moved again');
  });

  test('a hand edit makes our etag stale: the write re-reads and restores the appointment', async () => {
    const c = client();
    const [o] = await ours(event().appointmentId);
    const edited = (o.data as string).replace(/SUMMARY:[^\r\n]*/, 'SUMMARY:edited by hand');
    const put = await fetch(o.url, { method: 'PUT', headers: { ...headers(), 'content-type': 'text/calendar', 'if-match': o.etag! }, body: edited });
    assert.ok(put.ok);
    const r = await c.upsert(event({ revision: 4, title: 'J. R. · Acupuncture' }), { remoteId: o.url, etag: o.etag, generation: 0, calendarId: 'Appointments', data: { calendarUrl: cal.url } });
    assert.ok(r.ok, JSON.stringify(r));
    const [now] = await ours(event().appointmentId);
    assert.equal(now.parsed.events[0].summary, 'J. R. · Acupuncture');
    assert.notEqual(r.value.etag, o.etag);
  });

  test('delete removes it; deleting again is success', async () => {
    const c = client();
    const [o] = await ours(event().appointmentId);
    const link = { remoteId: o.url, etag: o.etag, generation: 0 };
    assert.ok((await c.remove(link, event().appointmentId)).ok);
    assert.equal((await ours(event().appointmentId)).length, 0);
    assert.ok((await c.remove(link, event().appointmentId)).ok);
  });

  test('an unrecorded create (answer lost) is found at its deterministic href and removed; nothing there, or not ours, is left', async () => {
    const c = client();
    const id = '5d1e7a90-3b2c-4f8e-9a61-2c7b4e0d9f13';
    const r = await c.upsert(event({ appointmentId: id }), undefined);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal((await ours(id)).length, 1);
    const removed = await c.removeUnrecorded!(id, 'Appointments', 0);
    assert.deepEqual(removed, { ok: true, value: true });
    assert.equal((await ours(id)).length, 0);
    assert.deepEqual(await c.removeUnrecorded!(id, 'Appointments', 0), { ok: true, value: false }, 'nothing there');
    // Someone else's object at that href is not ours to delete.
    const href = `${cal.url}meridian-${id}.ics`;
    const theirs = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//them//EN\r\nBEGIN:VEVENT\r\nUID:theirs-1@example.org\r\nDTSTAMP:20260301T120000Z\r\nDTSTART:20270312T090000Z\r\nDTEND:20270312T100000Z\r\nSUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    assert.ok((await fetch(href, { method: 'PUT', headers: { ...headers(), 'content-type': 'text/calendar' }, body: theirs })).ok);
    assert.deepEqual(await c.removeUnrecorded!(id, 'Appointments', 0), { ok: true, value: false });
    assert.equal((await fetch(href, { headers: headers() })).status, 200, 'their object is still there');
    await fetch(href, { method: 'DELETE', headers: headers() });
  });

  test('our resource name held by someone else moves to the next generation', async () => {
    const id = '11111111-2222-4333-8444-555555555555';
    const foreign = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\nUID:someone-else\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270101T100000Z\r\nDTEND:20270101T110000Z\r\nSUMMARY:theirs\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    const made = await createObject({ url: `${cal.url}meridian-${id}.ics`, data: foreign, headers: { ...headers(), 'content-type': 'text/calendar' } });
    assert.ok(made.ok);
    const r = await client().upsert(event({ appointmentId: id }), undefined);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.generation, 1);
    assert.match(r.value.remoteId, new RegExp(`meridian-${id}-g1\\.ics$`));
    const theirs = (await stored()).find((o) => o.parsed.events[0].uid === 'someone-else');
    assert.equal(theirs?.parsed.events[0].summary, 'theirs', 'the other object is untouched');
  });

  test('busy times: events that are not ours, in the window', async () => {
    const c = client();
    await c.upsert(event({ appointmentId: '44444444-2222-4333-8444-555555555555', start: '2027-01-01T12:00:00Z', end: '2027-01-01T13:00:00Z' }), undefined);
    const r = await c.busy!({ from: new Date('2026-12-31T00:00:00Z'), to: new Date('2027-01-02T00:00:00Z') }, 'Appointments');
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value, [{ start: '2027-01-01T10:00:00Z', end: '2027-01-01T11:00:00Z' }], 'the foreign event only');
  });

  test('sync-collection: a token, then only what changed (deleted included); a bogus token means start again', async () => {
    const c = client();
    const first = await c.changes!('Appointments', undefined);
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal(first.value.full, true);
    assert.ok(first.value.token);
    const made = await c.upsert(event({ appointmentId: '77777777-2222-4333-8444-555555555555' }), undefined);
    assert.ok(made.ok);
    const next = await c.changes!('Appointments', first.value.token);
    assert.ok(next.ok);
    assert.deepEqual([next.value.full, next.value.changed], [false, [made.value.remoteId]]);
    assert.ok((await c.remove(made.value, '77777777-2222-4333-8444-555555555555')).ok);
    const gone = await c.changes!('Appointments', next.value.token);
    assert.ok(gone.ok);
    assert.deepEqual(gone.value.changed, [made.value.remoteId], 'a removed member is reported too');
    const bogus = await c.changes!('Appointments', 'http://radicale.org/ns/sync/not-a-token');
    assert.ok(bogus.ok, JSON.stringify(bogus));
    assert.equal(bogus.value.full, true);
  });

  test('the repeated hour is stored unambiguously and reads back as the same instant', async () => {
    const id = '22222222-2222-4333-8444-555555555555';
    const r = await client().upsert(event({ appointmentId: id, start: '2026-11-01T07:30:00Z', end: '2026-11-01T08:30:00Z' }), undefined);
    assert.ok(r.ok);
    const [o] = await ours(id);
    assert.equal(o.parsed.events[0].start, '2026-11-01T07:30:00Z');
    assert.equal(o.parsed.events[0].end, '2026-11-01T08:30:00Z');
  });

  test('a wrong password is an auth failure; an unknown calendar is a permanent one', async () => {
    const bad = await client('wrong').upsert(event({ appointmentId: '33333333-2222-4333-8444-555555555555' }), undefined);
    assert.equal(!bad.ok && bad.failure.class, 'auth');
    const none = await client().upsert(event({ appointmentId: '33333333-2222-4333-8444-555555555555', calendarId: 'Holidays' }), undefined);
    assert.equal(!none.ok && none.failure.class, 'permanent');
    assert.match(!none.ok ? none.failure.message : '', /no calendar "Holidays"/);
  });
});
