// End to end through the real `bin/meridian serve` process: signed Calendly webhooks in (new,
// reschedule pair out of order, duplicate, late, cancel), Google Calendar (the fake) and the ICS feed
// out, the staff API with its double-booking guard, and the audit chain checked by the CLI — which
// must fail after a row is edited by hand. Runs on SQLite and on PostgreSQL.
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import SQLite from 'better-sqlite3';
import { getSource } from '../../src/connectors/registry.ts';
import type { SampleBooking } from '../../src/connectors/types.ts';
import { parseCalendar } from '../../src/connectors/shared/icalendar.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';
import { startFakeZoho, type FakeZoho } from '../fakes/zoho-calendar.ts';
import { BACKENDS, backendFor } from '../helpers.ts';
import { createAccount, fetchCalendarObjects, fetchCalendars, makeCalendar, type DAVCalendar } from 'tsdav';
import { radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';
import { ROOT, serve, eventually, type Served } from './serve.ts';

const run = promisify(execFile);
const calendly = getSource('calendly')!;
const SIGNING_KEY = `e2e-${randomUUID()}`;
const HOST = 'https://api.calendly.com/users/0c5b9a7e-3f1d-4a2b-9e8c-5d6f7a8b9c0d';
const CAL = 'okafor@lotusclinic.example';
const MAILBOX = 'ada.okafor@lotusclinic.example';

// The CalDAV checks need Radicale. Without it they are skipped visibly outside CI (each shows as a skipped
// subtest with the reason), and fail under CI=true saying what is missing; the rest of the suite runs either way.
let davSkip: string | undefined;
let davFail: string | undefined;
try {
  davSkip = radicaleMissing();
} catch (e) {
  davFail = (e as Error).message;
}
const withDav = !davSkip && !davFail;
/** A CalDAV check of the current test, as a subtest of its own: skipped or failed as said above. */
const dav = (ctx: TestContext, fn: () => Promise<unknown>) => ctx.test('the CalDAV target (Radicale)', { skip: davSkip }, async () => {
  if (davFail) assert.fail(`${davFail}: the CalDAV checks cannot run`);
  await fn();
});

function config(g: FakeGoogle, rad: Radicale | undefined, ms: FakeGraph, z: FakeZoho): string {
  return `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago, targets: [{ connection: feeds }] }
locations:
  - { id: lakeview, name: Lakeview, timeZone: America/Chicago, rooms: [{ id: room-1, name: Room 1 }] }
services:
  - { id: acupuncture, name: Acupuncture, durationMinutes: 45 }
practitioners:
  - id: okafor
    name: Dr. Ada Okafor
    email: dr.okafor@lotusclinic.example
    locations: [lakeview]
    targets: [{ connection: google, calendar: "${CAL}" }, ${rad ? '{ connection: icloud, calendar: Appointments }, ' : ''}{ connection: m365, calendar: "${MAILBOX}" }, { connection: outlook }, { connection: zoho }, { connection: feeds }]
connections:
  - id: calendly
    platform: calendly
    secrets: { signingKey: { env: E2E_CALENDLY_KEY } }
    refs:
      practitioners: { "${HOST}": okafor }
      services: { "https://api.calendly.com/event_types/acu": acupuncture }
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl} }
    secrets: { clientId: { env: E2E_G_ID }, clientSecret: { env: E2E_G_SECRET }, refreshToken: { env: E2E_G_REFRESH } }
${rad ? `  - id: icloud
    platform: caldav
    baseUrl: ${rad.url}
    secrets: { username: { env: E2E_DAV_USER }, password: { env: E2E_DAV_PASS } }
` : ''}  - id: m365
    platform: microsoft-graph
    baseUrl: ${ms.url}
    config: { mode: application, tokenUrl: ${ms.tokenUrl} }
    secrets: { clientId: { env: E2E_MS_ID }, clientSecret: { env: E2E_MS_SECRET } }
  - id: outlook
    platform: microsoft-graph
    baseUrl: ${ms.url}
    config: { mode: delegated, tokenUrl: ${ms.tokenUrl}, twoWay: accept }
    secrets: { clientId: { env: E2E_MS_ID }, refreshToken: { env: E2E_MS_REFRESH } }
  - id: zoho
    platform: zoho-calendar
    baseUrl: ${z.url}
    config: { accountsServer: ${z.accountsServer} }
    secrets: { clientId: { env: E2E_Z_ID }, clientSecret: { env: E2E_Z_SECRET }, refreshToken: { env: E2E_Z_REFRESH } }
  - id: feeds
    platform: ics-publish
`;
}

for (const backend of BACKENDS) {
  describe(`end to end on ${backend}`, async () => {
    const b = await backendFor(backend);
    // Without Radicale the CalDAV target is left out of the clinic, and its checks are skipped (failed under CI).
    let g: FakeGoogle;
    let ms: FakeGraph;
    let z: FakeZoho;
    let rad: Radicale;
    let davCal: DAVCalendar;
    let srv: Served;
    let apiKey: string;
    const common: string[] = [];
    const env: NodeJS.ProcessEnv = {};

    before(async () => {
      if (b.skip) return;
      g = await startFakeGoogle();
      ms = await startFakeGraph();
      z = await startFakeZoho();
      if (withDav) {
        rad = await startRadicale();
        const davHeaders = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
        const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers: davHeaders });
        await makeCalendar({ url: `${account.homeUrl}appointments/`, headers: davHeaders, props: { 'd:displayname': 'Appointments' } });
        davCal = (await fetchCalendars({ account, headers: davHeaders })).find((c) => c.url.endsWith('/appointments/'))!;
      }
      const cfg = join(b.dataDir, 'clinic.yaml');
      writeFileSync(cfg, config(g, withDav ? rad : undefined, ms, z));
      common.push('--data', b.dataDir, '--config', cfg);
      Object.assign(env, {
        E2E_CALENDLY_KEY: SIGNING_KEY, E2E_DAV_USER: rad?.username, E2E_DAV_PASS: rad?.password, E2E_G_ID: g.credentials.clientId, E2E_G_SECRET: g.credentials.clientSecret, E2E_G_REFRESH: g.credentials.refreshToken,
        E2E_MS_ID: ms.credentials.clientId, E2E_MS_SECRET: ms.credentials.clientSecret, E2E_MS_REFRESH: ms.credentials.refreshToken,
        E2E_Z_ID: z.credentials.clientId, E2E_Z_SECRET: z.credentials.clientSecret, E2E_Z_REFRESH: z.credentials.refreshToken,
        ...(b.databaseUrl ? { DATABASE_URL: b.databaseUrl, MERIDIAN_PG_SCHEMA: b.pgSchema } : {}),
      });
      srv = await serve(['serve', ...common], env);
      const k = await run(process.execPath, ['bin/meridian', 'keys', 'create', 'e2e', '--scope', 'admin', ...common], { cwd: ROOT, env: { ...process.env, ...env } });
      apiKey = k.stdout.split('\n')[0].trim();
      assert.match(apiKey, /^mer_/);
    });
    after(async () => {
      if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
      await g?.close();
      await ms?.close();
      await z?.close();
      await rad?.stop();
      await b.cleanup();
    });
    const t = (name: string, fn: (ctx: TestContext) => Promise<void>) => test(name, { skip: b.skip }, fn);

    const send = async (s: Omit<SampleBooking, 'timeZone'>, now = new Date()) => {
      const { rawBody, headers } = calendly.sampleWebhook!({ hostRef: HOST, serviceRef: 'https://api.calendly.com/event_types/acu', timeZone: 'America/New_York', ...s }, { signingKey: SIGNING_KEY }, now);
      const res = await fetch(`${srv.url}/webhooks/calendly`, { method: 'POST', headers, body: new Uint8Array(rawBody) });
      return { status: res.status, body: await res.json() as Record<string, any> };
    };
    const api = async (method: string, path: string, body?: unknown, key = apiKey) => {
      const res = await fetch(`${srv.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      return { status: res.status, body: await res.json() as Record<string, any> };
    };
    /** What Radicale itself holds for an appointment, read back over CalDAV. */
    const inRadicale = async (apptId: string) => {
      const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
      return (await fetchCalendarObjects({ calendar: davCal, headers })).map((o) => parseCalendar(o.data as string).events[0]).filter((e) => e.x['X-MERIDIAN-APPOINTMENT-ID'] === apptId);
    };
    /** Our events for an appointment in each Graph mailbox and in Zoho: [application mailbox, delegated /me, zoho]. */
    const elsewhere = (apptId: string) => {
      const inGraph = (mbx: string) => ms.events(mbx).filter((e) => e.singleValueExtendedProperties?.some((p: { value: string }) => p.value === apptId));
      return { m365: inGraph(MAILBOX), outlook: inGraph('me'), zoho: z.events('default-cal').filter((e) => e.description?.includes(`mrd-${apptId}`)) };
    };
    const mine = (apptId: string) => g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === apptId);
    const feed = async () => {
      const feeds = (await api('GET', '/feeds')).body.items as { scope: string; scopeId: string; path: string }[];
      const f = feeds.find((x) => x.scope === 'practitioner' && x.scopeId === 'okafor')!;
      const res = await fetch(`${srv.url}${f.path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/calendar/);
      return parseCalendar(await res.text()).events;
    };

    const A = randomUUID();
    const B = randomUUID();
    const patient = { name: 'Liam Carter', email: 'liam.carter@example.net' };
    let apptId = '';

    t('a signed new booking becomes one Google event and one feed entry, at the minimal privacy level', async (ctx) => {
      const r = await send({ event: 'created', bookingId: A, start: '2026-12-10T15:00:00Z', end: '2026-12-10T15:45:00Z', patient });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.changes[0].outcome, 'created');
      apptId = r.body.changes[0].appointmentId;
      await eventually(() => mine(apptId).length === 1, 15_000, 'the Google event');
      const [ev] = mine(apptId);
      assert.equal(ev.start?.dateTime, '2026-12-10T15:00:00Z');
      assert.equal(ev.start?.timeZone, 'America/Chicago', 'the location\'s zone, not the invitee\'s');
      assert.equal(ev.summary, 'L. C. · Acupuncture');
      assert.ok(!JSON.stringify(ev).includes('Liam') && !JSON.stringify(ev).includes('liam.carter'), 'no patient name or e-mail in the calendar');
      const entries = await feed();
      const entry = entries.find((e) => e.uid.startsWith(apptId))!;
      assert.equal(entry.start, '2026-12-10T15:00:00Z');
      const there = await eventually(() => { const e = elsewhere(apptId); return e.m365.length === 1 && e.outlook.length === 1 && e.zoho.length === 1 && e; }, 15_000, 'the Graph (both modes) and Zoho events');
      assert.deepEqual(there.m365[0].start, { dateTime: '2026-12-10T09:00:00', timeZone: 'America/Chicago' });
      assert.equal(there.zoho[0].dateandtime.start, '20261210T150000Z');
      assert.deepEqual(ms.violations, []);
      assert.deepEqual(z.violations, []);
      await dav(ctx, async () => {
        const [obj] = await eventually(async () => (await inRadicale(apptId)).length === 1 && inRadicale(apptId), 15_000, 'the CalDAV object');
        assert.equal(obj.start, '2026-12-10T15:00:00Z');
        assert.equal(obj.summary, 'L. C. · Acupuncture');
      });
      assert.equal(entry.summary, 'L. C. · Acupuncture');
      assert.deepEqual(g.violations, []);
    });

    t('a reschedule pair arriving new-half first moves the same event; the late cancel changes nothing', async (ctx) => {
      const writesBefore = g.requests.filter((r) => r.method !== 'GET').length;
      const neu = await send({ event: 'created', bookingId: B, replaces: A, start: '2026-12-11T18:30:00Z', end: '2026-12-11T19:15:00Z', patient });
      assert.equal(neu.body.changes[0].appointmentId, apptId, 'stitched into the same appointment');
      const old = await send({ event: 'canceled', bookingId: A, replacedBy: B, start: '2026-12-10T15:00:00Z', end: '2026-12-10T15:45:00Z', patient });
      assert.equal(old.status, 200);
      assert.equal(old.body.changes[0].outcome, 'superseded');
      const ev = await eventually(() => mine(apptId).find((e) => e.start?.dateTime === '2026-12-11T18:30:00Z' && e.status === 'confirmed'), 15_000, 'the moved event');
      assert.equal(mine(apptId).length, 1, 'still exactly one event');
      assert.equal(ev.id, mine(apptId)[0].id);
      const writes = g.requests.filter((r) => r.method !== 'GET').length - writesBefore;
      assert.equal(writes, 1, 'one PATCH for the move');
      const moved = await eventually(() => { const e = elsewhere(apptId); return e.m365[0]?.start?.dateTime === '2026-12-11T12:30:00' && e.outlook[0]?.start?.dateTime === '2026-12-11T12:30:00' && e.zoho[0]?.dateandtime.start === '20261211T183000Z' && e; }, 15_000, 'moved in Graph and Zoho');
      assert.deepEqual([moved.m365.length, moved.outlook.length, moved.zoho.length], [1, 1, 1], 'moved in place, never duplicated');
      await dav(ctx, async () => {
        await eventually(async () => (await inRadicale(apptId)).some((e) => e.start === '2026-12-11T18:30:00Z'), 15_000, 'the CalDAV object moved');
        assert.equal((await inRadicale(apptId)).length, 1, 'still one CalDAV object');
      });
      const appt = (await api('GET', `/appointments/${apptId}`)).body;
      assert.equal(appt.status, 'booked');
      assert.equal(appt.revision, 2);
    });

    t('duplicates and out-of-order deliveries change nothing', async () => {
      const writesBefore = g.requests.filter((r) => r.method !== 'GET').length;
      const dup = await send({ event: 'created', bookingId: B, replaces: A, start: '2026-12-11T18:30:00Z', end: '2026-12-11T19:15:00Z', patient }, new Date(Date.now() + 1000));
      assert.equal(dup.status, 200);
      assert.equal(dup.body.changes[0].outcome, 'duplicate');
      const late = await send({ event: 'created', bookingId: A, start: '2026-12-10T15:00:00Z', end: '2026-12-10T15:45:00Z', patient }, new Date(Date.now() - 60_000));
      assert.equal(late.body.changes[0].outcome, 'superseded');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(g.requests.filter((r) => r.method !== 'GET').length, writesBefore, 'no calendar writes');
      const list = (await api('GET', '/appointments?from=2026-12-01T00:00:00Z&to=2027-01-01T00:00:00Z')).body.items;
      assert.equal(list.length, 1);
    });

    t('bad signatures, unknown connections and unreadable deliveries are answered distinctly', async () => {
      const { rawBody, headers } = calendly.sampleWebhook!({ event: 'created', bookingId: randomUUID(), start: '2026-12-12T15:00:00Z', end: '2026-12-12T16:00:00Z', timeZone: 'UTC', patient }, { signingKey: 'wrong' }, new Date());
      const bad = await fetch(`${srv.url}/webhooks/calendly`, { method: 'POST', headers, body: new Uint8Array(rawBody) });
      assert.equal(bad.status, 401);
      assert.equal((await bad.json() as { code: string }).code, 'bad_signature');
      const unknown = await fetch(`${srv.url}/webhooks/nope`, { method: 'POST', headers, body: new Uint8Array(rawBody) });
      assert.equal(unknown.status, 404);
      const { createHmac } = await import('node:crypto');
      const ts = Math.floor(Date.now() / 1000);
      const junk = '{"event":"invitee.created","payload":{"uri":"not-a-uri"}}';
      const sig = createHmac('sha256', SIGNING_KEY).update(`${ts}.${junk}`).digest('hex');
      const kept = await fetch(`${srv.url}/webhooks/calendly`, { method: 'POST', headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${ts},v1=${sig}` }, body: junk });
      assert.equal(kept.status, 202);
      const d = (await api('GET', '/deliveries?status=unreadable')).body.items;
      assert.equal(d.length, 1);
      assert.ok(!('body' in d[0]), 'bodies are not listed');
    });

    t('staff booking over an existing appointment is refused with 409 and the conflicting ids, unless overridden', async () => {
      const body = { practitionerId: 'okafor', start: '2026-12-11T18:45:00Z', end: '2026-12-11T19:30:00Z', patient: { name: 'Ana Silva' }, serviceId: 'acupuncture' };
      const r = await api('POST', '/appointments', body);
      assert.equal(r.status, 409);
      assert.equal(r.body.code, 'double_booking');
      assert.deepEqual(r.body.details.conflicts.map((c: { id: string }) => c.id), [apptId]);
      const forced = await api('POST', '/appointments', { ...body, override: true });
      assert.equal(forced.status, 201, JSON.stringify(forced.body));
      assert.deepEqual(forced.body.conflicts, [apptId]);
      await eventually(() => mine(forced.body.id).length === 1, 15_000, 'the staff booking in Google');
      const bad = await api('POST', '/appointments', { ...body, start: 'tomorrow' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'invalid_request');
      const cancel = await api('POST', `/appointments/${forced.body.id}/cancel`, {});
      assert.equal(cancel.status, 200);
      await eventually(() => mine(forced.body.id).every((e) => e.status === 'cancelled'), 15_000, 'the staff booking removed');
      const ro = (await run(process.execPath, ['bin/meridian', 'keys', 'create', 'viewer', '--scope', 'read', ...common], { cwd: ROOT, env: { ...process.env, ...env } })).stdout.split('\n')[0].trim();
      assert.equal((await api('POST', '/appointments', body, ro)).status, 403);
      assert.equal((await api('GET', '/appointments', undefined, 'mer_nope')).status, 401);
    });

    t('events deleted or edited by hand are restored by the drift sweep, and the repair is audited', async (ctx) => {
      const [gev] = mine(apptId).filter((e) => e.status === 'confirmed');
      g.deleteBehindOurBack(CAL, gev.id!);
      if (withDav) {
          const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
          const [obj] = (await fetchCalendarObjects({ calendar: davCal, headers })).filter((o) => (o.data as string).includes(apptId));
          const edited = (obj.data as string).replace(/SUMMARY:[^\r\n]*/, 'SUMMARY:moved by hand');
          assert.ok((await fetch(obj.url, { method: 'PUT', headers: { ...headers, 'content-type': 'text/calendar', 'if-match': obj.etag! }, body: edited })).ok);
      }
      ms.deleteBehindOurBack(MAILBOX, elsewhere(apptId).m365[0].id);
      z.deleteBehindOurBack('default-cal', elsewhere(apptId).zoho[0].uid);
      for (const c of withDav ? ['google', 'icloud', 'm365', 'zoho'] : ['google', 'm365', 'zoho']) assert.equal((await api('POST', `/connections/${c}/sweep`)).status, 202);
      await eventually(() => { const e = elsewhere(apptId); return e.m365.length === 1 && e.zoho.length === 1; }, 15_000, 'restored in Graph and Zoho');
      await eventually(() => mine(apptId).some((e) => e.status === 'confirmed' && e.start?.dateTime === '2026-12-11T18:30:00Z'), 15_000, 'the Google event restored');
      await dav(ctx, () => eventually(async () => (await inRadicale(apptId)).some((e) => e.summary === 'L. C. · Acupuncture'), 15_000, 'the CalDAV object restored'));
      const repairs = await eventually(async () => {
        const items = (await api('GET', `/audit?entity=${apptId}&action=target.drift_repaired`)).body.items as { meta: { target: string; drift: string } }[];
        return items.length >= (withDav ? 4 : 3) && items;
      }, 15_000, 'the repairs audited');
      assert.deepEqual(repairs.map((r) => `${r.meta.target}:${r.meta.drift}`).sort(), withDav ? ['google:missing', 'icloud:changed', 'm365:missing', 'zoho:missing'] : ['google:missing', 'm365:missing', 'zoho:missing']);
      const m = await (await fetch(`${srv.url}/metrics`)).text();
      assert.match(m, /meridian_target_drift_total\{platform="google-calendar",kind="missing"\} 1/);
    });

    t('two-way: the practitioner moves the event in Outlook; every calendar follows, and nothing loops', async () => {
      const [ours] = elsewhere(apptId).outlook;
      ms.events('me').find((e) => e.id === ours.id)!.start = { dateTime: '2026-12-11T14:00:00', timeZone: 'America/Chicago' };
      Object.assign(ms.events('me').find((e) => e.id === ours.id)!, { end: { dateTime: '2026-12-11T14:45:00', timeZone: 'America/Chicago' }, '@odata.etag': 'W/"hand"' });
      assert.equal((await api('POST', '/connections/outlook/sweep')).status, 202);
      await eventually(async () => (await api('GET', `/appointments/${apptId}`)).body.start === '2026-12-11T20:00:00Z', 15_000, 'the appointment moved by the practitioner');
      await eventually(() => mine(apptId).some((e) => e.status === 'confirmed' && e.start?.dateTime === '2026-12-11T20:00:00Z'), 15_000, 'Google followed');
      await eventually(() => elsewhere(apptId).zoho[0]?.dateandtime.start === '20261211T200000Z', 15_000, 'Zoho followed');
      const trail = (await api('GET', `/appointments/${apptId}/audit`)).body.items as { action: string; actor: string }[];
      assert.ok(trail.some((x) => x.action === 'appointment.rescheduled' && x.actor === 'target:outlook'));
      // A second sweep finds our own writes only: no change is fed back in.
      const revision = (await api('GET', `/appointments/${apptId}`)).body.revision;
      assert.equal((await api('POST', '/connections/outlook/sweep')).status, 202);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await api('GET', `/appointments/${apptId}`)).body.revision, revision);
    });

    t('a revoked Google grant parks its writes; new credentials make them happen, nothing is lost', async () => {
      g.revokeGrant(true);
      const booked = await api('POST', '/appointments', { practitionerId: 'okafor', start: '2026-12-14T16:00:00Z', end: '2026-12-14T16:45:00Z', patient: { name: 'Ruth Ade' }, serviceId: 'acupuncture' });
      assert.equal(booked.status, 201);
      await eventually(async () => (await api('GET', '/connections')).body.items.find((c: { id: string; status: string }) => c.id === 'google')?.status === 'needs_reauth', 15_000, 'google needs reconnecting');
      assert.equal(mine(booked.body.id).length, 0);
      // The connection is marked before the worker puts the job back to wait: give it that moment.
      const parked = async () => (await api('GET', '/jobs?state=pending')).body.items.filter((j: { payload: { appointmentId?: string; targetId?: string } }) => j.payload.appointmentId === booked.body.id && j.payload.targetId === 'google');
      await eventually(async () => (await parked()).length === 1, 15_000, 'the write waits, it is not dropped');
      g.revokeGrant(false);
      assert.equal((await api('PUT', '/connections/google/secrets', { accessToken: 'reconnected' })).status, 200);
      await eventually(() => mine(booked.body.id).length === 1, 15_000, 'the parked write happened after reconnecting');
      assert.equal((await api('POST', `/appointments/${booked.body.id}/cancel`, {})).status, 200);
    });

    t('a patient cancellation removes the Google event and marks the feed entry cancelled', async (ctx) => {
      const r = await send({ event: 'canceled', bookingId: B, start: '2026-12-11T18:30:00Z', end: '2026-12-11T19:15:00Z', patient }, new Date(Date.now() + 2000));
      assert.equal(r.body.changes[0].outcome, 'updated');
      assert.equal((await api('GET', `/appointments/${apptId}`)).body.status, 'cancelled');
      await eventually(() => mine(apptId).every((e) => e.status === 'cancelled'), 15_000, 'the event deleted');
      await eventually(() => { const e = elsewhere(apptId); return e.m365.length + e.outlook.length + e.zoho.length === 0; }, 15_000, 'deleted in Graph and Zoho');
      await dav(ctx, () => eventually(async () => (await inRadicale(apptId)).length === 0, 15_000, 'the CalDAV object deleted'));
      const entry = (await feed()).find((e) => e.uid.startsWith(apptId))!;
      assert.equal(entry.status, 'CANCELLED');
      assert.equal(entry.sequence, 4, 'created, rescheduled (Calendly), moved (Outlook), cancelled');
      assert.deepEqual(g.violations, []);
      const jobs = (await api('GET', '/jobs')).body.counts;
      assert.equal(jobs.dead, 0);
    });

    t('every step is in the audit log; audit verify passes, and fails after a hand edit', async () => {
      // The worker audits a calendar write just after making it: wait for the last one.
      const trail = await eventually(async () => {
        const actions = (await api('GET', `/appointments/${apptId}/audit`)).body.items.map((i: { action: string }) => i.action) as string[];
        return actions.includes('target.removed') && actions;
      }, 15_000, 'target.removed in the audit log');
      for (const a of ['appointment.created', 'appointment.rebooked', 'appointment.cancelled', 'target.created', 'target.updated', 'target.removed']) {
        assert.ok(trail.includes(a) || (a === 'appointment.rebooked' && trail.includes('appointment.updated')), `${a} in ${trail.join(', ')}`);
      }
      const cliEnv = { ...process.env, ...env };
      const ok = await run(process.execPath, ['bin/meridian', 'audit', 'verify', ...common], { cwd: ROOT, env: cliEnv });
      assert.match(ok.stdout, /intact/);
      const api2 = (await api('GET', '/audit/verify')).body;
      assert.equal(api2.ok, true);
      // Hand edit: change what an entry says happened.
      if (backend === 'sqlite') {
        const db = new SQLite(join(b.dataDir, 'meridian.db'));
        db.prepare("update audit set actor = 'someone-else' where seq = 3").run();
        db.close();
      } else {
        const c = new pg.Client({ connectionString: b.databaseUrl });
        await c.connect();
        await c.query(`update ${b.pgSchema}.audit set actor = 'someone-else' where seq = 3`);
        await c.end();
      }
      await assert.rejects(run(process.execPath, ['bin/meridian', 'audit', 'verify', ...common], { cwd: ROOT, env: cliEnv }), (e: { code: number; stderr: string }) => e.code === 1 && /BROKEN at entry 3/.test(e.stderr));
    });

    t('health, readiness, metrics and the OpenAPI document answer', async () => {
      assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${srv.url}/readyz`)).status, 200);
      const m = await (await fetch(`${srv.url}/metrics`)).text();
      assert.match(m, /meridian_webhooks_total\{platform="calendly",outcome="accepted"\}/);
      assert.ok(!m.includes('Liam'), 'no patient data in metrics');
      const doc = await (await fetch(`${srv.url}/api/v1/openapi.json`)).json() as { openapi: string; paths: Record<string, unknown> };
      assert.equal(doc.openapi, '3.1.0');
      assert.ok(doc.paths['/api/v1/appointments/{id}/reschedule']);
      const locs = (await api('GET', '/locations')).body.items;
      assert.deepEqual(locs.map((l: { id: string; rooms: { id: string }[] }) => [l.id, l.rooms.map((r) => r.id)]), [['lakeview', ['room-1']]]);
      assert.equal((await api('GET', '/services')).body.items[0].durationMinutes, 45);
      // Every documented route refuses a caller without a key.
      for (const [path, methods] of Object.entries(doc.paths)) {
        for (const method of Object.keys(methods as object)) {
          const res = await fetch(`${srv.url}${path.replace(/\{id\}/g, 'x')}`, { method: method.toUpperCase(), headers: { 'content-type': 'application/json' }, body: method === 'get' ? undefined : '{}' });
          assert.equal(res.status, 401, `${method} ${path}`);
        }
      }
      assert.ok(!srv.output().includes('Liam'), 'no patient data in logs');
      assert.ok(!srv.output().includes(SIGNING_KEY), 'no secrets in logs');
    });
  });
}
