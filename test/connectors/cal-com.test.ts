// Cal.com: signature (hex, optional `sha256=`), the documented payload, and a reschedule (new uid with
// rescheduleUid) stitched into one appointment through the engine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connector } from '../../src/connectors/sources/cal-com/index.ts';
import { ConnectionMisconfigured, type WebhookRequest } from '../../src/connectors/types.ts';
import { openHub, makeLogger, type Hub } from '../../src/engine/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { ingestWebhook } from '../../src/engine/ingest.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { tempDir } from '../helpers.ts';

const SECRET = 'cal-sample-secret';
/** The example payload of Cal.com's webhook documentation, trimmed. */
const created = {
  triggerEvent: 'BOOKING_CREATED', createdAt: '2026-05-24T09:30:00.538Z',
  payload: {
    type: '60min', title: '60min between Pro Example and John Doe', startTime: '2026-05-25T09:30:00Z', endTime: '2026-05-25T10:30:00Z',
    organizer: { id: 5, name: 'Pro Example', email: 'pro@example.com', timeZone: 'Asia/Kolkata' },
    attendees: [{ email: 'john.doe@example.com', name: 'John Doe', timeZone: 'Asia/Kolkata' }],
    location: 'Calcom HQ', eventTypeId: 7, uid: 'bFJeNb2uX8ANpT3JL5EfXw', status: 'ACCEPTED', length: 60, bookingId: 91,
  },
};
const signed = (body: unknown, secret = SECRET, prefix = ''): WebhookRequest => {
  const raw = Buffer.from(JSON.stringify(body));
  return { rawBody: raw, headers: { 'x-cal-signature-256': prefix + createHmac('sha256', secret).update(raw).digest('hex') }, url: '', now: new Date() };
};

test('signature: hex HMAC of the body, with or without sha256=; a missing secret is misconfigured', () => {
  assert.deepEqual(connector.verify(signed(created), { webhookSecret: SECRET }), { ok: true });
  assert.deepEqual(connector.verify(signed(created, SECRET, 'sha256='), { webhookSecret: SECRET }), { ok: true });
  assert.equal(connector.verify(signed(created, 'other'), { webhookSecret: SECRET }).ok, false);
  assert.equal(connector.verify({ ...signed(created), headers: { 'x-cal-signature-256': 'no-secret-provided' } }, { webhookSecret: SECRET }).ok, false);
  assert.throws(() => connector.verify(signed(created), {}), ConnectionMisconfigured);
});

test('the documented payload parses; meetings and forms are not bookings', () => {
  const [c] = connector.parseWebhook(signed(created));
  assert.deepEqual([c.externalId, c.kind, c.appointment.status, c.appointment.start, c.appointment.end], ['bFJeNb2uX8ANpT3JL5EfXw', 'upsert', 'booked', '2026-05-25T09:30:00Z', '2026-05-25T10:30:00Z']);
  assert.equal(c.appointment.practitionerEmail, 'pro@example.com');
  assert.equal(c.appointment.patient?.name, 'John Doe');
  assert.deepEqual(connector.parseWebhook(signed({ ...created, triggerEvent: 'MEETING_ENDED' })), []);
  assert.equal(connector.parseWebhook(signed({ ...created, triggerEvent: 'BOOKING_REQUESTED' }))[0].appointment.status, 'requested');
});

let hub: Hub;
const dir = tempDir();
before(async () => {
  hub = await openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: { CS: SECRET } });
  const c = parseConfig(`
clinic: { id: c, name: Clinic, timeZone: Asia/Kolkata }
locations: [{ id: hq, name: HQ }]
practitioners: [{ id: pro, name: Pro Example, email: pro@example.com, locations: [hq] }]
connections:
  - id: cal
    platform: cal-com
    secrets: { webhookSecret: { env: CS } }
`, 'test.yaml');
  await applyConfig(hub, c.config, c.hash, 'test');
});
after(async () => {
  await hub.store.close();
  dir.cleanup();
});

test('through the engine: the organizer e-mail finds the practitioner; a reschedule keeps one appointment; cancel', async () => {
  const send = (b: unknown) => { const r = signed(b); return ingestWebhook(hub, 'cal', { rawBody: r.rawBody, headers: r.headers, url: '' }); };
  assert.equal((await send(created)).status, 200);
  const moved = { triggerEvent: 'BOOKING_RESCHEDULED', createdAt: '2026-05-24T12:00:00Z', payload: { ...created.payload, uid: 'newUid123', rescheduleUid: 'bFJeNb2uX8ANpT3JL5EfXw', startTime: '2026-05-26T09:30:00Z', endTime: '2026-05-26T10:30:00Z' } };
  await send(moved);
  let all = await listAppointments(hub.store.db, {});
  assert.equal(all.length, 1);
  assert.deepEqual([all[0].practitionerId, all[0].start, all[0].origin.externalId], ['pro', '2026-05-26T09:30:00Z', 'newUid123']);
  await send({ triggerEvent: 'BOOKING_CANCELLED', createdAt: '2026-05-25T08:00:00Z', payload: { ...moved.payload, cancellationReason: 'ill' } });
  all = await listAppointments(hub.store.db, {});
  assert.equal(all[0].status, 'cancelled');
});
