// Calendar push (issue 18) through the real HTTP server (buildServer on a port) with the in-process engine
// (runtime: worker, no periodic sweeps, so only push can make anything happen): a practitioner's own move in
// Outlook (the Graph fake sends its change notification to Meridian's URL after the validation handshake) makes
// the appointment follow (`twoWay: accept`) or the event come back (the default `restore`); a personal event over
// a booking raises the double-booking flag; forged, replayed and stale notifications are refused and change
// nothing; a burst becomes one read; a lifecycle notice renews the channel; removing the connection stops it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { startRuntime, type Runtime } from '../../src/engine/runtime.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { ensurePush, pushStatus, stopPush } from '../../src/engine/sync/push.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { localToUtc } from '../../src/domain/time.ts';
import { configuredHub, tempDir } from '../helpers.ts';
import { eventually } from './serve.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';
import { startFakeGoogle } from '../fakes/google-calendar.ts';

function day(days: number, hour: number, minute = 0): string {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate() + days, hour, minute)).toISOString();
}

async function clinic(policy: 'accept' | 'restore') {
  const m = await startFakeGraph({ allowHttpNotifications: true });
  const dir = tempDir();
  const hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l], targets: [{ connection: outlook }] }]
connections:
  - id: outlook
    platform: microsoft-graph
    baseUrl: ${m.url}
    config: { mode: delegated, tokenUrl: ${m.tokenUrl}${policy === 'accept' ? ', twoWay: accept' : ''} }
    secrets: { clientId: { env: MS_ID }, refreshToken: { env: MS_REFRESH } }
`, { dataDir: dir.dir, env: { MS_ID: m.credentials.clientId, MS_REFRESH: m.credentials.refreshToken, MERIDIAN_PUSH_INSECURE: '1', LOG_LEVEL: 'silent' } });
  const app: FastifyInstance = await buildServer(hub);
  await app.listen({ port: 0, host: '127.0.0.1' });
  hub.publicUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  // Background work as `serve` runs it, but no periodic sweep or push check: what happens here is push's doing.
  const rt: Runtime = await startRuntime(hub, { sweepMinutes: 0, pushCheckMinutes: 0, workerPollMs: 50 });
  return {
    m, hub, app,
    async close() {
      await rt.stop();
      await app.close();
      await hub.store.close();
      await m.close();
      dir.cleanup();
    },
  };
}

const reads = (m: FakeGraph) => m.requests.filter((r) => r.method === 'GET' && /delta|calendarView|\/events\//.test(r.path)).length;

describe('Microsoft 365 push, twoWay: accept', () => {
  let c: Awaited<ReturnType<typeof clinic>>;
  let apptId = '';
  let eventId = '';
  before(async () => {
    c = await clinic('accept');
    const a = await staffCreate(c.hub, { practitionerId: 'okafor', start: day(2, 10), end: day(2, 11), patient: { name: 'Pat Lee' } }, 'test');
    apptId = a.id;
    await eventually(() => c.m.events('me').length === 1, 10_000, 'the event in Outlook');
    eventId = c.m.events('me')[0].id!;
  });
  after(() => c.close());

  test('a channel is opened through the validation handshake and shown live with its expiry', async () => {
    const r = await ensurePush(c.hub, 'outlook');
    assert.equal(r.opened, 1);
    const subs = c.m.subscriptions();
    assert.equal(subs.length, 1);
    assert.equal(subs[0].notificationUrl, `${c.hub.publicUrl}/push/graph/outlook`);
    assert.ok(subs[0].clientState && subs[0].clientState.length >= 32, 'a secret clientState');
    const status = await pushStatus(c.hub, 'outlook', 'microsoft-graph');
    assert.ok(status.mode === 'push');
    assert.equal(status.on, true);
    assert.equal(status.calendars?.[0].state, 'live');
    assert.equal(status.calendars?.[0].expiresAt, new Date(subs[0].expirationDateTime!).toISOString());
    assert.equal((await ensurePush(c.hub, 'outlook')).opened, 0, 'nothing to do while it is live');
  });

  test('the practitioner moves the event in Outlook: the appointment follows within seconds', async () => {
    const t0 = Date.now();
    c.m.editBehindOurBack('me', eventId, { start: { dateTime: day(2, 14).replace('Z', ''), timeZone: 'UTC' }, end: { dateTime: day(2, 15).replace('Z', ''), timeZone: 'UTC' } });
    await eventually(async () => Date.parse((await getAppointment(c.hub.store.db, apptId))?.start ?? '') === Date.parse(day(2, 14)), 10_000, 'the appointment moved');
    assert.ok(Date.now() - t0 < 10_000);
    const audit = await c.hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', apptId).where('action', '=', 'target.change_accepted').execute();
    assert.equal(audit.length, 1);
  });

  test('a personal event placed over a booking raises the double-booking flag', async () => {
    const other = await staffCreate(c.hub, { practitionerId: 'okafor', start: day(3, 9), end: day(3, 10), patient: { name: 'Sam Ortiz' } }, 'test');
    await eventually(() => c.m.events('me').length === 2, 10_000, 'its event in Outlook');
    c.m.addTheirs('me', { subject: 'Dentist', start: { dateTime: day(3, 9, 30).replace('Z', ''), timeZone: 'UTC' }, end: { dateTime: day(3, 10, 30).replace('Z', ''), timeZone: 'UTC' } });
    await eventually(async () => ((await getAppointment(c.hub.store.db, other.id))?.conflicts.length ?? 0) > 0, 10_000, 'flagged as a double booking');
  });

  test('forged, replayed-as-stale and unknown notifications are refused and change nothing', async () => {
    const url = `${c.hub.publicUrl}/push/graph/outlook`;
    const sub = c.m.subscriptions()[0];
    const before = await getAppointment(c.hub.store.db, apptId);
    const jobs = async () => Number((await c.hub.store.db.selectFrom('job').select((eb) => eb.fn.countAll().as('n')).where('kind', '=', 'target.sweep').executeTakeFirstOrThrow()).n);
    const jobsBefore = await jobs();
    const body = (clientState: string, subscriptionId = sub.id) => JSON.stringify({ value: [{ subscriptionId, clientState, changeType: 'updated', resource: `me/events/${eventId}`, subscriptionExpirationDateTime: sub.expirationDateTime, tenantId: 't', resourceData: { id: eventId } }] });
    const post = (b: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
    assert.equal((await post(body('not-the-client-state'))).status, 401, 'a wrong clientState');
    assert.equal((await post(body(sub.clientState!, 'no-such-subscription'))).status, 401, 'an unknown subscription');
    assert.equal((await post('{"value": "nonsense"}')).status, 400);
    assert.equal((await fetch(`${c.hub.publicUrl}/push/google/outlook`, { method: 'POST' })).status, 404, 'not this connection\'s kind of push');
    assert.equal(await jobs(), jobsBefore, 'nothing queued');
    assert.deepEqual(await getAppointment(c.hub.store.db, apptId), before);
    // A genuine notice for a channel Meridian stopped: stale, refused.
    await c.hub.store.db.updateTable('push_channel').set({ state: 'stopped' }).where('id', '=', sub.id).execute();
    assert.equal((await post(body(sub.clientState!))).status, 410);
    assert.equal(await jobs(), jobsBefore);
    await c.hub.store.db.updateTable('push_channel').set({ state: 'active' }).where('id', '=', sub.id).execute();
  });

  test('a burst of notices for one calendar becomes one read', async () => {
    await eventually(async () => Number((await c.hub.store.db.selectFrom('job').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'pending').executeTakeFirstOrThrow()).n) === 0, 10_000, 'quiet');
    const readsBefore = reads(c.m);
    const sub = c.m.subscriptions()[0];
    const note = JSON.stringify({ value: [{ subscriptionId: sub.id, clientState: sub.clientState, changeType: 'updated', resource: `me/events/${eventId}`, tenantId: 't', resourceData: { id: eventId } }] });
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${c.hub.publicUrl}/push/graph/outlook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: note })));
    assert.ok(answers.every((a) => a.status === 202), answers.map((a) => a.status).join(','));
    const sweeps = await c.hub.store.db.selectFrom('job').select(['id', 'state']).where('kind', '=', 'target.sweep').where('dedupe_key', 'like', '%:calendar:%').where('state', '=', 'pending').execute();
    assert.equal(sweeps.length, 1, '20 notices, one pending read');
    await eventually(async () => (await c.hub.store.db.selectFrom('job').select('id').where('id', '=', sweeps[0].id).where('state', '=', 'done').executeTakeFirst()) !== undefined, 10_000, 'the read done');
    assert.ok(reads(c.m) - readsBefore <= 3, `one read of the calendar's changes (${reads(c.m) - readsBefore} requests)`);
  });

  test('a lifecycle notice (reauthorizationRequired) renews the channel; removing the connection stops it', async () => {
    const sub = c.m.subscriptions()[0];
    const before = sub.expirationDateTime;
    await c.hub.store.db.updateTable('push_channel').set({ expires_at: new Date(Date.now() + 3_600_000).toISOString() }).where('id', '=', sub.id).execute();
    c.m.lifecycle(sub.id, 'reauthorizationRequired');
    await eventually(async () => {
      const row = await c.hub.store.db.selectFrom('push_channel').select('expires_at').where('id', '=', sub.id).executeTakeFirst();
      return row !== undefined && Date.parse(row.expires_at) > Date.now() + 86_400_000;
    }, 10_000, 'renewed');
    assert.ok(c.m.subscriptions()[0].expirationDateTime! >= before!);
    assert.equal(await stopPush(c.hub, 'outlook'), 1);
    assert.equal(c.m.subscriptions().length, 0, 'deleted at Graph');
  });
});

describe('Microsoft 365 push, the default policy (restore)', () => {
  let c: Awaited<ReturnType<typeof clinic>>;
  before(async () => {
    c = await clinic('restore');
  });
  after(() => c.close());

  test('the practitioner moves our event: it is put back as booked, and the appointment stays', async () => {
    const a = await staffCreate(c.hub, { practitionerId: 'okafor', start: day(2, 10), end: day(2, 11), patient: { name: 'Pat Lee' } }, 'test');
    await eventually(() => c.m.events('me').length === 1, 10_000, 'the event in Outlook');
    assert.equal((await ensurePush(c.hub, 'outlook')).opened, 1);
    const ev = c.m.events('me')[0];
    c.m.editBehindOurBack('me', ev.id!, { start: { dateTime: day(2, 16).replace('Z', ''), timeZone: 'UTC' }, end: { dateTime: day(2, 17).replace('Z', ''), timeZone: 'UTC' } });
    await eventually(() => {
      const now = c.m.events('me').find((x) => x.id === ev.id);
      return now !== undefined && Date.parse(localToUtc(now.start!.dateTime!.slice(0, 19), now.start!.timeZone!)) === Date.parse(a.start);
    }, 10_000, 'the event put back');
    assert.equal((await getAppointment(c.hub.store.db, a.id))?.start, a.start);
  });
});

describe('push needs a public https URL', () => {
  test('with an http public URL push is off, and the page says why', async () => {
    const dir = tempDir();
    const m = await startFakeGraph();
    const hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
practitioners: [{ id: okafor, name: Dr Okafor, targets: [{ connection: outlook }] }]
connections:
  - { id: outlook, platform: microsoft-graph, baseUrl: ${m.url}, config: { mode: delegated, tokenUrl: ${m.tokenUrl} }, secrets: { clientId: { env: MS_ID }, refreshToken: { env: MS_REFRESH } } }
`, { dataDir: dir.dir, publicUrl: 'http://meridian.local:7400', env: { MS_ID: m.credentials.clientId, MS_REFRESH: m.credentials.refreshToken, LOG_LEVEL: 'silent' } });
    try {
      assert.deepEqual(await ensurePush(hub, 'outlook'), { opened: 0, renewed: 0, stopped: 0 });
      assert.equal(m.subscriptions().length, 0);
      const s = await pushStatus(hub, 'outlook', 'microsoft-graph');
      assert.ok(s.mode === 'push');
      assert.equal(s.on, false);
      assert.match(s.why ?? '', /not https/);
    } finally {
      await hub.store.close();
      await m.close();
      dir.cleanup();
    }
  });
});

describe('Google Calendar push (events.watch)', () => {
  const CAL = 'okafor@clinic';
  test('sync first; a move followed; a replayed, forged or stale notification refused and nothing queued', async () => {
    const g = await startFakeGoogle({ allowHttpPush: true });
    const dir = tempDir();
    const hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
practitioners: [{ id: okafor, name: Dr Okafor, targets: [{ connection: google, calendar: "${CAL}" }] }]
connections:
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl}, twoWay: accept }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`, { dataDir: dir.dir, env: { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken, MERIDIAN_PUSH_INSECURE: '1', LOG_LEVEL: 'silent' } });
    const app = await buildServer(hub);
    await app.listen({ port: 0, host: '127.0.0.1' });
    hub.publicUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const rt = await startRuntime(hub, { sweepMinutes: 0, pushCheckMinutes: 0, workerPollMs: 50 });
    try {
      const a = await staffCreate(hub, { practitionerId: 'okafor', start: day(2, 10), end: day(2, 11), patient: { name: 'Pat Lee' } }, 'test');
      await eventually(() => g.live(CAL).length === 1, 10_000, 'the event in Google');
      assert.equal((await ensurePush(hub, 'google')).opened, 1);
      const ch = g.channels()[0];
      assert.equal(ch.address, `${hub.publicUrl}/push/google/google`);
      await g.pushesSettled();
      const sync = g.notifications.find((n) => n.headers['X-Goog-Resource-State'] === 'sync');
      assert.equal(sync?.status, 200, 'the sync message is acknowledged');
      // The practitioner drags the event in Google: the appointment follows.
      const ev = g.live(CAL)[0];
      g.editBehindOurBack(CAL, ev.id!, { start: { dateTime: day(2, 15) }, end: { dateTime: day(2, 16) } });
      await eventually(async () => Date.parse((await getAppointment(hub.store.db, a.id))?.start ?? '') === Date.parse(day(2, 15)), 10_000, 'the appointment moved');
      await g.pushesSettled();
      const jobs = async () => Number((await hub.store.db.selectFrom('job').select((eb) => eb.fn.countAll().as('n')).where('kind', '=', 'target.sweep').executeTakeFirstOrThrow()).n);
      const before = await jobs();
      const last = [...g.notifications].reverse().find((n) => n.headers['X-Goog-Resource-State'] === 'exists')!;
      const post = (h: Record<string, string>) => fetch(`${hub.publicUrl}/push/google/google`, { method: 'POST', headers: h });
      assert.equal((await post(last.headers)).status, 409, 'a replayed notification (same message number)');
      assert.equal((await post({ ...last.headers, 'X-Goog-Channel-Token': 'forged', 'X-Goog-Message-Number': '999' })).status, 401, 'a wrong token');
      assert.equal((await post({ ...last.headers, 'X-Goog-Channel-ID': 'another-channel', 'X-Goog-Message-Number': '999' })).status, 401, 'an unknown channel');
      await hub.store.db.updateTable('push_channel').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', ch.id).execute();
      assert.equal((await post({ ...last.headers, 'X-Goog-Message-Number': '1000' })).status, 410, 'a channel past its expiry');
      assert.equal(await jobs(), before, 'none of them queued a read');
      // The expired channel is replaced at the next check (new first, old stopped).
      const r = await ensurePush(hub, 'google');
      assert.equal(r.opened, 1);
      assert.equal(g.channels().length, 1);
      assert.notEqual(g.channels()[0].id, ch.id);
    } finally {
      await rt.stop();
      await app.close();
      await hub.store.close();
      await g.close();
      dir.cleanup();
    }
  });
});
