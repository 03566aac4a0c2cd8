// YouCanBookMe contract tests and the token-checked webhook → fetch → apply path through the engine, against
// the fake API (test/fakes/youcanbookme.ts). The samples are constructed, not captured: the webhook bodies are
// our own template (FACTS.md) as YCBM fills it in, and get-booking.json uses the booking fields named in
// FACTS.md (wall-time `startsAt`/`endsAt` + `timeZone`, `answers[{code,string}]`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector, WEBHOOK_TEMPLATES } from '../../src/connectors/sources/youcanbookme/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type ConnectionContext, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { staffReschedule } from '../../src/engine/edits/staff.ts';
import { startFakeYcbm, instantsOf, ycbmRecord, type FakeYcbm, type YcbmRecord } from '../fakes/youcanbookme.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/youcanbookme/', import.meta.url);
const ID = '5b8f3c2e-7d41-4a9e-9c1f-2e6a8d0b4f17';
const TOKEN = 'wh_3f9a1c7e5b2d4f6081a9c3e7b5d2f4a6';
const record: YcbmRecord = JSON.parse(readFileSync(new URL('get-booking.json', DIR), 'utf8'));
const SAMPLES = ['webhook-created.json', 'webhook-rescheduled.json', 'webhook-cancelled.json', 'webhook-no-show.json'];
const req = (f: string, url = `https://meridian.example/webhooks/ycbm?token=${TOKEN}`): WebhookRequest => ({
  rawBody: readFileSync(new URL(f, DIR)), headers: { 'content-type': 'application/json' }, url, now: new Date('2026-02-03T10:00:00Z'),
});
const body = (json: string): WebhookRequest => ({ ...req(SAMPLES[0]), rawBody: Buffer.from(json) });

test('the URL token is checked in constant time; wrong, altered or missing tokens are refused; rotation works', () => {
  const secrets = { webhookToken: TOKEN };
  assert.deepEqual(connector.verify(req(SAMPLES[0]), secrets), { ok: true });
  assert.equal(connector.verify(req(SAMPLES[0], `https://meridian.example/webhooks/ycbm?token=${TOKEN.slice(0, -1)}7`), secrets).ok, false);
  assert.equal(connector.verify(req(SAMPLES[0], 'https://meridian.example/webhooks/ycbm'), secrets).ok, false);
  assert.equal(connector.verify(req(SAMPLES[0]), { webhookToken: 'another-token-entirely' }).ok, false);
  assert.deepEqual(connector.verify(req(SAMPLES[0]), { webhookToken: 'the-new-one', webhookTokenPrevious: TOKEN }), { ok: true });
  assert.throws(() => connector.verify(req(SAMPLES[0]), {}), ConnectionMisconfigured);
  // YCBM sends no signature or timestamp, so there is no signature header and no replay window to test.
});

test('every template body is a change to fetch; reminders are ignored; bad bodies are unreadable without echoing them', () => {
  const kinds = SAMPLES.map((f) => connector.parseWebhook(req(f))[0]);
  assert.deepEqual(kinds.map((c) => c.kind), ['upsert', 'upsert', 'cancel', 'no_show']);
  for (const c of kinds) {
    assert.equal(c.externalId, ID);
    assert.equal(c.needsFetch, true);
  }
  // the documented templates are exactly what the samples are, with the id filled in
  assert.deepEqual(Object.values(WEBHOOK_TEMPLATES).map((t) => t.replace('{ID}', ID)), SAMPLES.map((f) => readFileSync(new URL(f, DIR), 'utf8')));
  assert.deepEqual(connector.parseWebhook(body('{"event":"reminder","bookingId":"x1"}')), []);
  assert.throws(() => connector.parseWebhook(body('{"event":"exploded","bookingId":"x1"}')), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(body('{"event":"created","bookingId":"{ID}"}')), /shorthand code was not filled in/);
  assert.throws(() => connector.parseWebhook(body('{"event":"created"}')), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(body('{"event":"created","bookingId":"a/../b"}')), UnreadablePayload);
  assert.throws(() => connector.parseWebhook(body('event=created&email=nora.bellamy@example.com')), (e: Error) => e instanceof UnreadablePayload && !e.message.includes('nora'));
});

test('a fetched booking: wall times in its zone, team member, service, patient from the answers; states map', () => {
  const [c] = connector.parseRecord!(record);
  assert.equal(c.externalId, ID);
  assert.equal(c.kind, 'upsert');
  assert.equal(c.appointment.status, 'booked');
  assert.equal(c.appointment.start, '2026-02-17T15:00:00Z');
  assert.equal(c.appointment.end, '2026-02-17T15:45:00Z');
  assert.equal(c.appointment.timeZone, 'America/New_York');
  assert.equal(c.appointment.practitionerRef, 'tm-4c1d9e');
  assert.equal(c.appointment.serviceRef, 'at-initial-consult');
  assert.deepEqual(c.appointment.patient, { name: 'Nora Bellamy', email: 'nora.bellamy@example.com', phone: '+1 718 555 0142', timeZone: 'America/New_York' });
  assert.equal(c.occurredAt, '2026-02-03T09:12:44Z');
  const one = (patch: Partial<YcbmRecord> | Record<string, unknown>) => connector.parseRecord!({ ...record, ...patch })[0];
  assert.equal(one({ cancelled: true, cancelledAt: '2026-02-05T08:00:00Z' }).kind, 'cancel');
  assert.equal(one({ cancelled: true, cancelledAt: '2026-02-05T08:00:00Z' }).occurredAt, '2026-02-05T08:00:00Z');
  assert.equal(one({ noShow: true }).kind, 'no_show');
  assert.equal(one({ tentative: 'UNDECIDED' }).appointment.status, 'requested');
  assert.equal(one({ tentative: 'REJECTED' }).kind, 'cancel');
  assert.equal(one({ startsAt: '2026-07-01T09:00:00', endsAt: '2026-07-01T09:30:00' }).appointment.start, '2026-07-01T13:00:00Z'); // EDT
  assert.equal(one({ startsAt: '2026-02-17T15:00:00Z' }).appointment.start, '2026-02-17T15:00:00Z');
  assert.equal(one({ teamMemberId: null }).appointment.practitionerRef, record.profileId);
  assert.throws(() => one({ timeZone: 'Mars/Olympus' }), UnreadablePayload);
  assert.throws(() => one({ endsAt: '2026-02-17T09:00:00' }), UnreadablePayload);
  assert.throws(() => one({ id: undefined }), UnreadablePayload);
});

let fake: FakeYcbm;
let hub: Hub;
const dir = tempDir();
const ctxOf = (f: FakeYcbm, fetchImpl: typeof fetch = fetch): ConnectionContext => ({
  connectionId: 'ycbm', config: {}, secrets: { accountId: f.accountId, apiKey: f.apiKey, webhookToken: TOKEN }, baseUrl: f.url, fetch: fetchImpl, now: () => new Date(),
});
before(async () => {
  fake = await startFakeYcbm();
  fake.put(record);
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: brooklyn, name: Brooklyn }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [brooklyn] }]
connections:
  - id: ycbm
    platform: youcanbookme
    baseUrl: ${fake.url}
    secrets: { accountId: { env: YA }, apiKey: { env: YK }, webhookToken: { env: YT } }
    config: { pollPastDays: 3650, pollFutureDays: 3650 }
    refs: { practitioners: { "tm-4c1d9e": reyes } }
`, { dataDir: dir.dir, env: { YA: fake.accountId, YK: fake.apiKey, YT: TOKEN } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const deliver = (f: string, token = TOKEN) => ingestWebhook(hub, 'ycbm', { rawBody: req(f).rawBody, headers: req(f).headers, url: `/webhooks/ycbm?token=${token}` });
const fetches = () => fake.requests.filter((r) => r.method === 'GET' && r.path === `/v1/bookings/${ID}`).length;

test('through the engine: each delivery is read back before it is applied; reschedules keep the id; staff moves are written back', async () => {
  assert.equal((await deliver(SAMPLES[0], 'wrong-token')).status, 401);
  const r = await deliver(SAMPLES[0]);
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'fetch_queued');
  await drain(hub);
  let [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2026-02-17T15:00:00Z');
  assert.equal(a.practitionerId, 'reyes');
  assert.equal(a.patient.name, 'Nora Bellamy');
  await deliver(SAMPLES[0]); // the same delivery again
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.revision, 1);

  fake.put({ ...fake.get(ID)!, startsAt: '2026-02-18T09:30:00', endsAt: '2026-02-18T10:15:00', rescheduledAt: new Date().toISOString() });
  await deliver(SAMPLES[1]);
  await deliver(SAMPLES[0]); // a late 'created' for the old time reads today's state
  await drain(hub);
  let all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.equal(all[0].start, '2026-02-18T14:30:00Z');

  await staffReschedule(hub, all[0].id, { start: '2026-02-19T16:00:00Z', end: '2026-02-19T16:45:00Z' }, 'staff:test');
  await drain(hub);
  assert.deepEqual(instantsOf(fake.get(ID)!), { start: '2026-02-19T16:00:00Z', end: '2026-02-19T16:45:00Z' });
  assert.equal(fake.get(ID)!.startsAt, '2026-02-19T11:00:00');
  all = await listAppointments(hub.store.db, {});
  assert.equal(all[0].diverged, undefined);

  fake.put({ ...fake.get(ID)!, cancelled: true, cancelledAt: new Date().toISOString() });
  await deliver(SAMPLES[2]);
  await drain(hub);
  all = await listAppointments(hub.store.db, {});
  assert.equal(all[0].status, 'cancelled');
  assert.equal(all[0].start, '2026-02-19T16:00:00Z');
  assert.equal(fetches(), 5); // every accepted delivery, the duplicate and the late one included
  assert.deepEqual(fake.violations, []);
});

test('a poll lists the window and applies what the webhooks missed; polling again changes nothing', async () => {
  fake.put(ycbmRecord({ id: 'missed-0001', start: '2026-02-20T19:00:00Z', end: '2026-02-20T19:30:00Z', timeZone: 'America/New_York', teamMemberId: 'tm-4c1d9e', patient: { name: 'Missed Webhook' } }));
  let r = await pollConnection(hub, 'ycbm');
  assert.equal(r.listed, 2);
  const missed = (await listAppointments(hub.store.db, {})).find((a) => a.patient.name === 'Missed Webhook');
  assert.ok(missed, 'the booking no webhook announced is there');
  assert.equal(missed.start, '2026-02-20T19:00:00Z');
  r = await pollConnection(hub, 'ycbm');
  assert.deepEqual(r.outcomes, { duplicate: 2 });
  assert.deepEqual(fake.violations, []);
});

test('list pages through the cursor and stops; a 429 is a throttled failure with its Retry-After', async () => {
  const f = await startFakeYcbm();
  try {
    for (let i = 0; i < 520; i++) {
      const start = new Date(Date.parse('2026-04-01T08:00:00Z') + Math.floor(i / 4) * 3_600_000).toISOString();
      f.put(ycbmRecord({ id: `bk-${String(i).padStart(4, '0')}`, start, end: new Date(Date.parse(start) + 1_800_000).toISOString(), timeZone: 'Europe/London', patient: { name: 'P Q' } }));
    }
    const window = { from: new Date('2026-03-31T00:00:00Z'), to: new Date('2026-06-01T00:00:00Z') };
    const ids: string[] = [];
    for await (const c of connector.list!(window, ctxOf(f))) ids.push(c.externalId);
    assert.equal(ids.length, 520);
    assert.equal(new Set(ids).size, 520);
    assert.equal(f.requests.length, 2);
    f.throttle(1, 2);
    await assert.rejects(async () => { for await (const _ of connector.list!(window, ctxOf(f))) { /* drain */ } }, (e: unknown) => e instanceof ConnectorError && e.failure.class === 'throttled' && e.failure.retryAfterMs === 2000);
    await assert.rejects(async () => { for await (const _ of connector.list!(window, { ...ctxOf(f), secrets: { ...ctxOf(f).secrets, apiKey: 'ak_wrong' } })) { /* drain */ } }, (e: unknown) => e instanceof ConnectorError && e.failure.class === 'auth');
    assert.equal(f.violations.length, 1); // the wrong key, on purpose
  } finally {
    await f.close();
  }
});

test('write-back: cancel, no-show and move land in YCBM; what it cannot take, or does not keep, is a permanent failure', async () => {
  const f = await startFakeYcbm();
  try {
    const put = (id: string) => f.put(ycbmRecord({ id, start: '2026-05-04T08:00:00Z', end: '2026-05-04T08:30:00Z', timeZone: 'Europe/London', patient: { name: 'Ada Lovelace' } }));
    ['w1', 'w2', 'w3', 'w4'].forEach(put);
    const base = { start: '2026-05-04T08:00:00Z', end: '2026-05-04T08:30:00Z', timeZone: 'Europe/London' };
    assert.deepEqual(await connector.writeBack!({ ...base, externalId: 'w1', status: 'cancelled' }, ctxOf(f)), { ok: true, value: undefined });
    assert.equal(f.get('w1')!.cancelled, true);
    assert.deepEqual(await connector.writeBack!({ ...base, externalId: 'w2', status: 'no_show' }, ctxOf(f)), { ok: true, value: undefined });
    assert.equal(f.get('w2')!.noShow, true);
    const moved = { externalId: 'w3', status: 'booked' as const, start: '2026-05-05T13:00:00Z', end: '2026-05-05T13:45:00Z', timeZone: 'Europe/London' };
    assert.equal((await connector.writeBack!(moved, ctxOf(f))).ok, true);
    assert.equal(f.get('w3')!.startsAt, '2026-05-05T14:00:00'); // BST
    assert.deepEqual(instantsOf(f.get('w3')!), { start: moved.start, end: moved.end });
    const done = await connector.writeBack!({ ...base, externalId: 'w4', status: 'completed' }, ctxOf(f));
    assert.equal(done.ok === false && done.failure.class, 'permanent');
    // a YCBM that answers 200 but keeps the old time must not pass as written
    const liar: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method !== 'PATCH') return res;
      const b = await res.json();
      return new Response(JSON.stringify({ ...b, startsAt: '2026-05-04T09:00:00', endsAt: '2026-05-04T09:30:00' }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const kept = await connector.writeBack!({ ...moved, externalId: 'w4' }, ctxOf(f, liar));
    assert.equal(kept.ok === false && kept.failure.class, 'permanent');
    const gone = await connector.writeBack!({ ...moved, externalId: 'nope' }, ctxOf(f));
    assert.equal(gone.ok === false && gone.failure.class, 'gone');
    assert.deepEqual(f.violations, []);
  } finally {
    await f.close();
  }
});

test('fetch: a cancelled booking the API no longer has is a cancellation; an unknown new booking is gone', async () => {
  const [cancel] = connector.parseWebhook(body('{"event":"cancelled","bookingId":"deleted-1"}'));
  const c = await connector.fetch!(cancel, ctxOf(fake));
  assert.equal(c.kind, 'cancel');
  assert.equal(c.needsFetch, false);
  const [created] = connector.parseWebhook(body('{"event":"created","bookingId":"deleted-1"}'));
  await assert.rejects(connector.fetch!(created, ctxOf(fake)), (e: unknown) => e instanceof ConnectorError && e.failure.class === 'gone');
});
