// The quick calendar check (issue 18): calendars that do not push (CalDAV / iCloud, Zoho) are asked every few
// minutes what changed since the last look. Nothing changed: one request per calendar (CalDAV: the collection's
// sync-token, no REPORT), no read-back, no busy refresh, nothing written. A practitioner's own move of one of
// our events is picked up (restored under `restore`, taken over under `accept`), and a personal event over a
// booking flags it — against a real Radicale (edits made through CalDAV as another client would) and the Zoho
// fake. The runtime schedules the check only for calendars that are not served by push.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount, makeCalendar } from 'tsdav';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { sweepConnection, type SweepReport } from '../../src/engine/sync/sweep.ts';
import { getAppointment, getMeta, putMeta } from '../../src/store/repo.ts';
import { needsQuickCheck } from '../../src/engine/runtime.ts';
import { getTarget } from '../../src/connectors/registry.ts';
import { calendarCheckJob, sweepJob } from '../../src/domain/jobs.ts';
import { zohoTime } from '../../src/connectors/targets/zoho-calendar/index.ts';
import { syncTokenProperty } from '../../src/connectors/targets/caldav/dav.ts';
import { radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';
import { startFakeZoho, type FakeZoho } from '../fakes/zoho-calendar.ts';
import { configuredHub, tempDir } from '../helpers.ts';
import { day } from './google-clinic.ts';

const skip = radicaleMissing();

/** Every HTTP request the hub sends (method and URL), as it leaves for the server. */
const sent: { method: string; url: string }[] = [];
const counting: typeof fetch = (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  sent.push({ method: (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(), url });
  return globalThis.fetch(input, init);
};

async function quick(hub: Hub, connection: string): Promise<SweepReport> {
  const r = await sweepConnection(hub, connection, { quick: true });
  assert.ok(!('failure' in r), JSON.stringify(r));
  return r;
}

const auditCount = async (hub: Hub) => Number((await hub.store.db.selectFrom('audit').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
const startOf = async (hub: Hub, id: string) => (await getAppointment(hub.store.db, id))!.start;

describe('quick calendar check against Radicale', { skip }, () => {
  let rad: Radicale;
  let hub: Hub;
  let dir: ReturnType<typeof tempDir>;
  let home: string;
  const auth = () => ({ authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` });

  before(async () => {
    rad = await startRadicale();
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: auth() });
    home = account.homeUrl!;
    for (const [path, name] of [['appointments', 'Appointments'], ['accepting', 'Accepting']]) {
      await makeCalendar({ url: `${home}${path}/`, headers: auth(), props: { 'd:displayname': name } });
    }
    dir = tempDir();
    hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners:
  - { id: okafor, name: Dr Okafor, locations: [l], targets: [{ connection: dav, calendar: Appointments }] }
  - { id: nakamura, name: Dr Nakamura, locations: [l], targets: [{ connection: dav-accept, calendar: Accepting }] }
connections:
  - id: dav
    platform: caldav
    baseUrl: ${rad.url}
    secrets: { username: { env: DAV_USER }, password: { env: DAV_PASS } }
  - id: dav-accept
    platform: caldav
    baseUrl: ${rad.url}
    config: { twoWay: accept }
    secrets: { username: { env: DAV_USER }, password: { env: DAV_PASS } }
`, { dataDir: dir.dir, env: { DAV_USER: rad.username, DAV_PASS: rad.password }, fetch: counting });
  });
  after(async () => {
    await hub?.store.close();
    await rad?.stop();
    dir?.cleanup();
  });

  /** What the hub sends during `fn`. */
  async function requestsOf<T>(fn: () => Promise<T>): Promise<{ value: T; requests: string[] }> {
    const from = sent.length;
    const value = await fn();
    return { value, requests: sent.slice(from).map((r) => `${r.method} ${new URL(r.url).pathname}`) };
  }

  /** Another CalDAV client (the practitioner's phone) moves the object to new times. */
  async function moveAsAnotherClient(calendarPath: string, appointmentId: string, start: string, end: string): Promise<void> {
    const href = `${home}${calendarPath}/meridian-${appointmentId}.ics`;
    const cur = await fetch(href, { headers: auth() });
    assert.equal(cur.status, 200);
    // The VEVENT's times (the VTIMEZONE before it has DTSTARTs of its own).
    const [head, event] = (await cur.text()).split('BEGIN:VEVENT');
    const ics = `${head}BEGIN:VEVENT${event.replace(/^DTSTART[;:][^\r\n]*/m, `DTSTART:${zohoTime(start)}`).replace(/^DTEND[;:][^\r\n]*/m, `DTEND:${zohoTime(end)}`)}`;
    const put = await fetch(href, { method: 'PUT', headers: { ...auth(), 'content-type': 'text/calendar; charset=utf-8', 'if-match': cur.headers.get('etag')! }, body: ics });
    assert.ok(put.ok, `PUT ${put.status}`);
  }

  async function storedStart(calendarPath: string, appointmentId: string): Promise<string | undefined> {
    const text = await (await fetch(`${home}${calendarPath}/meridian-${appointmentId}.ics`, { headers: auth() })).text();
    return /^DTSTART[^\r\n]*/m.exec(text.split('BEGIN:VEVENT')[1] ?? '')?.[0];
  }

  test('nothing changed: one PROPFIND per calendar, no REPORT, no read-back, no busy refresh, nothing written', async () => {
    const a = await staffCreate(hub, { practitionerId: 'okafor', start: day(2, 10), end: day(2, 11), patient: { name: 'Ana Silva' } }, 'test');
    await staffCreate(hub, { practitionerId: 'okafor', start: day(3, 10), end: day(3, 11), patient: { name: 'Ben Ode' } }, 'test');
    await drain(hub);
    // The first check has no token: the calendar is checked in full (as a sweep would) and the token kept.
    const first = await quick(hub, 'dav');
    assert.deepEqual(first.calendars, { asked: 1, changed: 1 });
    assert.equal(first.checked, 2);
    assert.equal(first.busy, 0);
    const audits = await auditCount(hub);
    const before = (await hub.store.db.selectFrom('target_link').selectAll().orderBy('appointment_id').execute());
    const { value: r, requests } = await requestsOf(() => quick(hub, 'dav'));
    assert.deepEqual(requests, ['PROPFIND /practitioner/appointments/'], 'only the collection\'s sync-token is read');
    assert.deepEqual(r.calendars, { asked: 1, changed: 0 });
    assert.deepEqual([r.checked, r.repaired, r.accepted, r.busy], [0, 0, 0, undefined]);
    assert.equal(await auditCount(hub), audits, 'nothing audited');
    assert.deepEqual(await hub.store.db.selectFrom('target_link').selectAll().orderBy('appointment_id').execute(), before, 'no link touched');
    assert.equal(await startOf(hub, a.id), day(2, 10).replace('.000Z', 'Z'));
  });

  test('restore (default): a move made in the calendar by another client is put back at the next quick check', async () => {
    const a = await staffCreate(hub, { practitionerId: 'okafor', start: day(4, 9), end: day(4, 10), patient: { name: 'Cleo Ma' } }, 'test');
    await drain(hub);
    await quick(hub, 'dav');
    const original = await storedStart('appointments', a.id);
    await moveAsAnotherClient('appointments', a.id, day(5, 15), day(5, 16));
    assert.notEqual(await storedStart('appointments', a.id), original);
    const { value: r, requests } = await requestsOf(() => quick(hub, 'dav'));
    assert.deepEqual([r.checked, r.repaired, r.accepted], [1, 1, 0], JSON.stringify(r));
    assert.deepEqual(r.drift, { changed: 1 });
    assert.equal(r.busy, 0, 'the calendar changed: its busy times were read again');
    assert.deepEqual(requests.slice(0, 2), ['PROPFIND /practitioner/appointments/', 'REPORT /practitioner/appointments/'], 'sync-token differs: the REPORT, on the URL known (no discovery)');
    assert.deepEqual([...new Set(requests.filter((q) => q.startsWith('GET ')))], [`GET /practitioner/appointments/meridian-${a.id}.ics`], 'only the moved event is read back');
    // Written back: the PUT with our stale etag meets 412, the object is read again and written.
    assert.deepEqual([...new Set(requests.filter((q) => q.startsWith('PUT ')))], [`PUT /practitioner/appointments/meridian-${a.id}.ics`], 'and written back');
    assert.equal(await storedStart('appointments', a.id), original, 'the event is back at the appointment\'s time');
    assert.equal(await startOf(hub, a.id), day(4, 9).replace('.000Z', 'Z'), 'the appointment did not move');
    const audit = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', a.id).where('action', '=', 'target.drift_repaired').execute();
    assert.equal(audit.length, 1);
    // Our repair changed the collection: the next check reads that one event back (as ours, in sync), then quiet.
    const echo = await quick(hub, 'dav');
    assert.deepEqual([echo.checked, echo.repaired, echo.drift.in_sync], [1, 0, 1]);
    const { value: quiet, requests: q2 } = await requestsOf(() => quick(hub, 'dav'));
    assert.deepEqual([quiet.checked, q2.length], [0, 1]);
  });

  test('accept: a move made in the calendar moves the appointment at the next quick check', async () => {
    const a = await staffCreate(hub, { practitionerId: 'nakamura', start: day(6, 9), end: day(6, 10), patient: { name: 'Dara Ng' } }, 'test');
    await drain(hub);
    await quick(hub, 'dav-accept');
    await moveAsAnotherClient('accepting', a.id, day(7, 14), day(7, 15));
    const r = await quick(hub, 'dav-accept');
    assert.deepEqual([r.checked, r.accepted, r.repaired], [1, 1, 0], JSON.stringify(r));
    const moved = (await getAppointment(hub.store.db, a.id))!;
    assert.equal(moved.start, day(7, 14).replace('.000Z', 'Z'));
    assert.equal(moved.end, day(7, 15).replace('.000Z', 'Z'));
    const audit = await hub.store.db.selectFrom('audit').select(['action', 'actor']).where('entity_id', '=', a.id).execute();
    assert.ok(audit.some((x) => x.action === 'appointment.rescheduled' && x.actor === 'target:dav-accept'));
    assert.ok(audit.some((x) => x.action === 'target.change_accepted'));
  });

  test('a token the server no longer knows: the sync-token differs, the REPORT answers 403, the calendar is checked in full', async () => {
    await quick(hub, 'dav');
    const key = 'sync-token:dav:Appointments';
    await putMeta(hub.store.db, key, 'http://radicale.org/ns/sync/0000000000000000000000000000000000000000000000000000000000000000');
    const { value: r, requests } = await requestsOf(() => quick(hub, 'dav'));
    assert.deepEqual(requests.slice(0, 3), ['PROPFIND /practitioner/appointments/', 'REPORT /practitioner/appointments/', 'REPORT /practitioner/appointments/'], 'sync-token differs → REPORT → 403 → REPORT without a token');
    assert.deepEqual(r.calendars, { asked: 1, changed: 1 });
    assert.ok(r.checked >= 3 && r.drift.in_sync === r.checked, JSON.stringify(r));
    assert.match((await getMeta(hub.store.db, key)) ?? '', /^http:\/\/radicale\.org\/ns\/sync\/[0-9a-f]{64}$/);
    assert.notEqual(await getMeta(hub.store.db, key), 'http://radicale.org/ns/sync/0000000000000000000000000000000000000000000000000000000000000000');
    assert.equal((await requestsOf(() => quick(hub, 'dav'))).requests.length, 1, 'quiet again');
  });

  test('a personal event placed over a booking raises the double-booking flag at the quick check', async () => {
    const a = await staffCreate(hub, { practitionerId: 'okafor', start: day(8, 10), end: day(8, 11), patient: { name: 'Eve Lu' } }, 'test');
    await drain(hub);
    await quick(hub, 'dav');
    await quick(hub, 'dav');
    const personal = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Phone//EN', 'BEGIN:VEVENT', 'UID:dentist-1@phone.example', `DTSTAMP:${zohoTime(new Date().toISOString())}`,
      `DTSTART:${zohoTime(day(8, 10, 30))}`, `DTEND:${zohoTime(day(8, 11, 30))}`, 'SUMMARY:Dentist', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
    const put = await fetch(`${home}appointments/dentist-1.ics`, { method: 'PUT', headers: { ...auth(), 'content-type': 'text/calendar; charset=utf-8', 'if-none-match': '*' }, body: personal });
    assert.equal(put.status, 201);
    const r = await quick(hub, 'dav');
    assert.deepEqual([r.checked, r.busy], [0, 1], 'not ours: nothing read back; one busy block');
    assert.deepEqual((await getAppointment(hub.store.db, a.id))!.conflicts, [`busy:dav:${day(8, 10, 30)}`]);
    const flagged = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', a.id).where('action', '=', 'appointment.double_booked').execute();
    assert.equal(flagged.length, 1);
  });
});

describe('quick calendar check against the Zoho fake', () => {
  let z: FakeZoho;
  let hub: Hub;
  let dir: ReturnType<typeof tempDir>;
  const ROOM = 'b2f7c1e0a9d34c56room';

  before(async () => {
    z = await startFakeZoho();
    dir = tempDir();
    const secrets = '{ clientId: { env: Z_ID }, clientSecret: { env: Z_SECRET }, refreshToken: { env: Z_REFRESH } }';
    hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners:
  - { id: lee, name: Dr Lee, locations: [l], targets: [{ connection: zoho, calendar: default-cal }] }
  - { id: park, name: Dr Park, locations: [l], targets: [{ connection: zoho-accept, calendar: ${ROOM} }] }
connections:
  - id: zoho
    platform: zoho-calendar
    baseUrl: ${z.url}
    config: { accountsServer: ${z.accountsServer} }
    secrets: ${secrets}
  - id: zoho-accept
    platform: zoho-calendar
    baseUrl: ${z.url}
    config: { accountsServer: ${z.accountsServer}, twoWay: accept }
    secrets: ${secrets}
`, { dataDir: dir.dir, env: { Z_ID: z.credentials.clientId, Z_SECRET: z.credentials.clientSecret, Z_REFRESH: z.credentials.refreshToken } });
  });
  after(async () => {
    await hub?.store.close();
    await z?.close();
    dir?.cleanup();
  });

  const uidOf = (cal: string, appointmentId: string) => z.events(cal).find((e) => e.description?.includes(`mrd-${appointmentId}`))!.uid;
  async function requestsOf<T>(fn: () => Promise<T>): Promise<{ value: T; requests: typeof z.requests }> {
    const from = z.requests.length;
    const value = await fn();
    return { value, requests: z.requests.slice(from) };
  }

  test('nothing changed: the range listing only (31-day slices), no read-back, no busy refresh, nothing written', async () => {
    await staffCreate(hub, { practitionerId: 'lee', start: day(2, 10), end: day(2, 11), patient: { name: 'Ana Silva' } }, 'test');
    await staffCreate(hub, { practitionerId: 'lee', start: day(40, 10), end: day(40, 11), patient: { name: 'Ben Ode' } }, 'test');
    await drain(hub);
    const first = await quick(hub, 'zoho');
    assert.deepEqual(first.calendars, { asked: 1, changed: 1 });
    assert.equal(first.checked, 2, 'no token yet: every event of the calendar is checked');
    const audits = await auditCount(hub);
    const { value: r, requests } = await requestsOf(() => quick(hub, 'zoho'));
    assert.deepEqual([r.checked, r.repaired, r.busy], [0, 0, undefined]);
    assert.deepEqual(r.calendars, { asked: 1, changed: 0 });
    assert.ok(requests.every((q) => q.method === 'GET' && /\/calendars\/default-cal\/events\?range=/.test(q.path)), JSON.stringify(requests));
    assert.equal(requests.length, 6, 'six 31-day slices cover the horizon');
    assert.equal(await auditCount(hub), audits);
    assert.deepEqual(z.violations, []);
  });

  test('restore: an event moved in Zoho is put back; accept: the appointment moves', async () => {
    const a = await staffCreate(hub, { practitionerId: 'lee', start: day(4, 9), end: day(4, 10), patient: { name: 'Cleo Ma' } }, 'test');
    const b = await staffCreate(hub, { practitionerId: 'park', start: day(5, 9), end: day(5, 10), patient: { name: 'Dara Ng' } }, 'test');
    await drain(hub);
    await quick(hub, 'zoho');
    await quick(hub, 'zoho-accept');
    const uid = uidOf('default-cal', a.id);
    z.editBehindOurBack('default-cal', uid, { dateandtime: { start: zohoTime(day(6, 15)), end: zohoTime(day(6, 16)), timezone: 'Europe/London' } });
    const { value: r, requests } = await requestsOf(() => quick(hub, 'zoho'));
    assert.deepEqual([r.checked, r.repaired, r.accepted], [1, 1, 0], JSON.stringify(r));
    assert.equal(requests.filter((q) => q.method === 'PUT').length, 1);
    assert.equal(z.events('default-cal').find((e) => e.uid === uid)!.dateandtime.start, zohoTime(day(4, 9)), 'put back');
    assert.equal(await startOf(hub, a.id), day(4, 9).replace('.000Z', 'Z'));

    z.editBehindOurBack(ROOM, uidOf(ROOM, b.id), { dateandtime: { start: zohoTime(day(7, 14)), end: zohoTime(day(7, 15)), timezone: 'Europe/London' } });
    const accepted = await quick(hub, 'zoho-accept');
    assert.deepEqual([accepted.checked, accepted.accepted], [1, 1], JSON.stringify(accepted));
    assert.equal(await startOf(hub, b.id), day(7, 14).replace('.000Z', 'Z'));
    assert.deepEqual(z.violations, []);
  });

  test('a personal event over a booking flags it at the quick check; deleting it clears the flag', async () => {
    const a = await staffCreate(hub, { practitionerId: 'lee', start: day(9, 10), end: day(9, 11), patient: { name: 'Eve Lu' } }, 'test');
    await drain(hub);
    await quick(hub, 'zoho');
    await quick(hub, 'zoho');
    const theirs = z.addTheirs('default-cal', { title: 'Dentist', dateandtime: { start: zohoTime(day(9, 10, 30)), end: zohoTime(day(9, 11, 30)), timezone: 'Europe/London' } });
    const r = await quick(hub, 'zoho');
    assert.equal(r.checked, 0, 'not ours: nothing read back');
    assert.ok((r.busy ?? 0) >= 1);
    assert.deepEqual((await getAppointment(hub.store.db, a.id))!.conflicts, [`busy:zoho:${day(9, 10, 30)}`]);
    z.deleteBehindOurBack('default-cal', theirs);
    const cleared = await quick(hub, 'zoho');
    assert.deepEqual(cleared.calendars, { asked: 1, changed: 1 }, 'a deletion is a change too');
    assert.deepEqual((await getAppointment(hub.store.db, a.id))!.conflicts, []);
    assert.deepEqual(z.violations, []);
  });
});

test('the sync-token property is read from a 200 propstat only, whatever the prefixes', () => {
  const ok = '<d:multistatus xmlns:d="DAV:"><d:response><d:href>/c/</d:href><d:propstat><d:prop><d:sync-token>https://s.example/sync/7?a=1&amp;b=2</d:sync-token></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>';
  assert.equal(syncTokenProperty(ok), 'https://s.example/sync/7?a=1&b=2');
  const missing = '<multistatus xmlns="DAV:"><response><href>/c/</href><propstat><prop><sync-token/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>';
  assert.equal(syncTokenProperty(missing), undefined);
  const emptyIn404 = '<multistatus xmlns="DAV:"><response><href>/c/</href><propstat><prop><sync-token>x</sync-token></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>';
  assert.equal(syncTokenProperty(emptyIn404), undefined);
});

describe('which connections get the quick check', () => {
  test('calendar targets that read changes and do not push; never feeds, CRMs or unknown platforms', () => {
    assert.equal(needsQuickCheck('caldav'), true);
    assert.equal(needsQuickCheck('zoho-calendar'), true);
    assert.equal(needsQuickCheck('ics-publish'), false);
    assert.equal(needsQuickCheck('hubspot'), false);
    assert.equal(needsQuickCheck('salesforce'), false);
    assert.equal(needsQuickCheck('calendly'), false, 'a source');
    assert.equal(needsQuickCheck('no-such-platform'), false);
    // Google and Graph leave the quick check once their connectors push.
    for (const p of ['google-calendar', 'microsoft-graph']) {
      const real = getTarget(p)!;
      assert.equal(needsQuickCheck(p), !real.push);
      const pushing = { ...real, push: { path: p, parse: () => [] } };
      assert.equal(needsQuickCheck(p, () => pushing), false);
      assert.equal(needsQuickCheck(p, () => ({ ...real, push: undefined })), true);
    }
  });

  test('the quick check has its own dedupe key beside the full sweep', () => {
    assert.deepEqual(calendarCheckJob('dav'), { kind: 'target.sweep', payload: { connectionId: 'dav', quick: true }, dedupeKey: 'target.sweep:dav:quick', maxAttempts: 3 });
    assert.notEqual(calendarCheckJob('dav').dedupeKey, sweepJob('dav').dedupeKey);
  });
});
