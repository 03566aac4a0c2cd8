// Appointlet contract tests from the documented webhook sample (and two deliveries constructed from it, see
// the samples' README), the URL-token check, and the engine path: webhook → apply (nothing to fetch: there is
// no API), duplicates, a late delivery, a staff move that diverges, a cancellation, and a refused poll; the
// fake Appointlet records any request Meridian makes, and there must be none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector } from '../../src/connectors/sources/appointlet/index.ts';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type WebhookRequest } from '../../src/connectors/types.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { pollConnection } from '../../src/engine/sync/poll.ts';
import { staffReschedule } from '../../src/engine/edits/staff.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { startFakeAppointlet, type FakeAppointlet } from '../fakes/appointlet.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const DIR = new URL('../fixtures/samples/appointlet/', import.meta.url);
const TOKEN = 'q8VdJ2s0mXrT5yKpL3nB7cWz';
const HOOK = 'https://hub.example-clinic.test/webhooks/appointlet';
const body = (f: string) => readFileSync(new URL(f, DIR));
const req = (f: string, url = `${HOOK}?token=${TOKEN}`): WebhookRequest => ({ rawBody: body(f), headers: { 'content-type': 'application/json' }, url, now: new Date('2024-06-01T00:00:00Z') });
const withBody = (o: unknown): WebhookRequest => ({ ...req('meeting-scheduled.json'), rawBody: Buffer.from(JSON.stringify(o)) });
const sample = JSON.parse(body('meeting-scheduled.json').toString('utf8'));

test('Appointlet signs nothing: the URL token is checked (rotation too); a missing or wrong token, or no token configured, is refused', () => {
  assert.deepEqual(connector.verify(req('meeting-scheduled.json'), { webhookToken: TOKEN }), { ok: true });
  assert.deepEqual(connector.verify(req('meeting-scheduled.json'), { webhookToken: 'new-token', webhookTokenPrevious: TOKEN }), { ok: true });
  assert.equal(connector.verify(req('meeting-scheduled.json', HOOK), { webhookToken: TOKEN }).ok, false, 'no token in the URL');
  assert.equal(connector.verify(req('meeting-scheduled.json', `${HOOK}?token=${TOKEN.slice(0, -1)}x`), { webhookToken: TOKEN }).ok, false, 'one character off');
  assert.equal(connector.verify(req('meeting-scheduled.json', `${HOOK}?token=${TOKEN}x`), { webhookToken: TOKEN }).ok, false, 'longer');
  assert.equal(connector.verify(req('meeting-scheduled.json'), { webhookToken: 'another-clinic' }).ok, false);
  assert.throws(() => connector.verify(req('meeting-scheduled.json'), {}), ConnectionMisconfigured);
  assert.equal(connector.descriptor.capabilities.signedWebhooks, false);
});

test('the documented sample parses to the documented facts', () => {
  const [c] = connector.parseWebhook(req('meeting-scheduled.json'));
  assert.equal(c.externalId, '2751918');
  assert.equal(c.deliveryId, '14224744');
  assert.equal(c.kind, 'upsert');
  assert.equal(c.occurredAt, '2024-05-29T18:56:43.249Z');
  assert.equal(c.needsFetch, false, 'there is no API to fetch from: the delivery carries the meeting');
  assert.deepEqual(c.appointment, {
    start: '2024-06-03T14:00:00Z', end: '2024-06-03T14:30:00Z', status: 'booked',
    practitionerRef: 'Example Meeting Type (Group)', serviceRef: 'Example Meeting Type (Group)', locationRef: '123 Address Street',
  });
});

test('a reschedule keeps the meeting id; a cancellation (or declined request, or a cancelled flag) cancels', () => {
  const [r] = connector.parseWebhook(req('meeting-rescheduled.json'));
  assert.deepEqual([r.externalId, r.kind, r.appointment.start, r.appointment.end, r.replacesExternalId], ['2751918', 'upsert', '2024-06-04T15:30:00Z', '2024-06-04T16:00:00Z', undefined]);
  const [x] = connector.parseWebhook(req('meeting-cancelled.json'));
  assert.deepEqual([x.externalId, x.kind, x.appointment.status, x.deliveryId], ['2751918', 'cancel', 'cancelled', '14225377']);
  assert.equal(connector.parseWebhook(withBody({ ...sample, action: 'Meeting.declined' }))[0].kind, 'cancel');
  assert.equal(connector.parseWebhook(withBody({ ...sample, action: 'Meeting.canceled' }))[0].kind, 'cancel');
  assert.equal(connector.parseWebhook(withBody({ ...sample, action: 'Meeting.approved' }))[0].kind, 'upsert');
  assert.equal(connector.parseWebhook(withBody({ ...sample, entity: { ...sample.entity, cancelled: true } }))[0].kind, 'cancel');
});

test('tags, attendee events and non-booking activities are ignored; unreadable input is refused without patient data', () => {
  for (const action of ['Meeting.tagged', 'Meeting.untagged', 'Attendee.reminded', 'Attendee.scheduled', 'MeetingType.updated', 'Member.created']) {
    assert.deepEqual(connector.parseWebhook(withBody({ ...sample, action })), [], action);
  }
  const bad: unknown[] = [
    'not json', { ...sample, type: 'Booking' }, { ...sample, action: undefined }, { ...sample, action: 'Meeting.exploded' },
    { ...sample, entity: null }, { ...sample, entity: { ...sample.entity, id: 'abc' } }, { ...sample, entity: { ...sample.entity, type: 'Attendee' } },
    { ...sample, entity: { ...sample.entity, start: 'Monday at ten' } }, { ...sample, created_at: undefined },
  ];
  for (const b of bad) {
    const r = typeof b === 'string' ? { ...req('meeting-scheduled.json'), rawBody: Buffer.from(b) } : withBody(b);
    assert.throws(() => connector.parseWebhook(r), UnreadablePayload, JSON.stringify(b).slice(0, 60));
  }
  try {
    connector.parseWebhook(withBody({ ...sample, action: 'Meeting.jane.doe@example.com' }));
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof UnreadablePayload);
    assert.doesNotMatch(err.message, /@example\.com/);
  }
});

let fake: FakeAppointlet;
let hub: Hub;
let now = new Date('2024-05-29T19:00:00Z');
const dir = tempDir();
before(async () => {
  fake = await startFakeAppointlet();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: brooklyn, name: Brooklyn }]
practitioners: [{ id: reyes, name: Dr. Samuel Reyes, locations: [brooklyn] }]
connections:
  - id: appointlet
    platform: appointlet
    baseUrl: ${fake.url}
    secrets: { webhookToken: { env: AT } }
    refs: { practitioners: { "Example Meeting Type (Group)": reyes } }
`, { dataDir: dir.dir, env: { AT: fake.token }, clock: { now: () => now } });
});
after(async () => {
  await hub.store.close();
  await fake.close();
  dir.cleanup();
});

const meeting = { ...sample.entity, cancelled: false };
const send = (action: string, m: typeof meeting, at: string) => {
  const d = fake.delivery(action, m, new Date(at), HOOK);
  return { d, go: () => ingestWebhook(hub, 'appointlet', { rawBody: d.body, headers: d.headers, url: d.url }) };
};

test('through the engine: applied as delivered; duplicates and a late older delivery change nothing; a wrong token is refused', async () => {
  const scheduled = send('Meeting.scheduled', meeting, '2024-05-29T18:56:43Z');
  let r = await scheduled.go();
  assert.equal(r.status, 200);
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'created');
  let [a] = await listAppointments(hub.store.db, {});
  assert.deepEqual([a.start, a.end, a.practitionerId, a.locationId, a.status, a.timeZone], ['2024-06-03T14:00:00Z', '2024-06-03T14:30:00Z', 'reyes', 'brooklyn', 'booked', 'America/New_York']);

  r = await scheduled.go();
  assert.equal(r.body.status, 'duplicate', 'the same activity id');

  const moved = { ...meeting, start: '2024-06-04T15:30:00Z', end: '2024-06-04T16:00:00Z' };
  await send('Meeting.rescheduled', moved, '2024-05-30T09:12:07Z').go();
  // Appointlet retried the first "scheduled" late, as a new delivery: older than what we hold.
  r = await send('Meeting.scheduled', meeting, '2024-05-29T18:56:44Z').go();
  assert.equal((r.body.changes as { outcome: string }[])[0].outcome, 'stale');
  const all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.deepEqual([all[0].start, all[0].revision], ['2024-06-04T15:30:00Z', 2]);

  const forged = fake.delivery('Meeting.cancelled', { ...moved, cancelled: true }, new Date('2024-05-31T00:00:00Z'), HOOK);
  r = await ingestWebhook(hub, 'appointlet', { rawBody: forged.body, headers: forged.headers, url: HOOK });
  assert.equal(r.status, 401);
  assert.equal((await listAppointments(hub.store.db, {}))[0].status, 'booked');
});

test('a staff move cannot be written back: the appointment diverges and Appointlet is never called; its own cancellation still lands', async () => {
  now = new Date('2024-06-01T12:00:00Z');
  let [a] = await listAppointments(hub.store.db, {});
  await staffReschedule(hub, a.id, { start: '2024-06-04T17:00:00Z', end: '2024-06-04T17:30:00Z' }, 'staff:test');
  await drain(hub);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.start, '2024-06-04T17:00:00Z');
  assert.match(a.diverged ?? '', /Appointlet cannot move a booking/);
  const audit = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', a.id).execute();
  assert.ok(audit.some((e) => e.action === 'source.diverged'));

  const r = await send('Meeting.cancelled', { ...meeting, start: '2024-06-04T15:30:00Z', end: '2024-06-04T16:00:00Z', cancelled: true }, '2024-06-02T08:00:00Z').go();
  assert.equal(r.status, 200);
  [a] = await listAppointments(hub.store.db, {});
  assert.equal(a.status, 'cancelled');
  assert.equal(a.diverged, undefined, 'Appointlet told us its state: the two agree again');
  assert.deepEqual(fake.requests, []);
  assert.deepEqual(fake.violations, []);
});

test('a poll is refused as permanent: Appointlet has no API to list meetings', async () => {
  await assert.rejects(pollConnection(hub, 'appointlet'), (err: unknown) => err instanceof ConnectorError && err.failure.class === 'permanent');
  assert.deepEqual(fake.requests, []);
});

test('a connection without its token refuses every delivery', () => {
  const d = fake.delivery('Meeting.scheduled', meeting, new Date(), HOOK);
  assert.throws(() => connector.verify({ rawBody: d.body, headers: d.headers, url: d.url, now: new Date() }, { webhookToken: '' }), ConnectionMisconfigured);
  assert.deepEqual(connector.verify({ rawBody: d.body, headers: d.headers, url: d.url, now: new Date() }, { webhookToken: fake.token }), { ok: true });
});
