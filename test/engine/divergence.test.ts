// Staff edits of a platform's booking: written back where the platform's API can take them, else the
// appointment is marked as diverging (and staff can list those); a refusal by the platform marks it
// too; a newer state from the platform, or a successful write-back, ends the divergence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { getSource } from '../../src/connectors/registry.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { staffCancel, staffReschedule, staffSetStatus } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { getAppointment, listAppointments } from '../../src/store/repo.ts';
import type { SampleBooking } from '../../src/connectors/types.ts';
import { tempDir, configuredHub } from '../helpers.ts';

const KEY = 'divergence-signing-key';
const TOKEN = 'divergence-pat';
const HOST = 'https://api.calendly.com/users/host-1';
const calendly = getSource('calendly')!;
const dir = tempDir();
let hub: Hub;
let server: http.Server;
let answer = 403;
const cancellations: string[] = [];

before(async () => {
  // Calendly's cancellation endpoint: `answer` decides whether it takes the write.
  server = http.createServer((rq, rs) => {
    if (rq.headers.authorization !== `Bearer ${TOKEN}`) return rs.writeHead(401).end('{"title":"Unauthenticated"}');
    const m = /^\/scheduled_events\/([^/]+)\/cancellation$/.exec(rq.url ?? '');
    if (rq.method === 'POST' && m) {
      cancellations.push(m[1]);
      return rs.writeHead(answer, { 'content-type': 'application/json' }).end(answer === 201 ? '{"resource":{"canceled_by":"clinic"}}' : '{"title":"Permission Denied","message":"You do not have permission"}');
    }
    rs.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: l, name: Main }]
practitioners: [{ id: reyes, name: Dr Reyes, locations: [l] }]
connections:
  - id: calendly
    platform: calendly
    baseUrl: http://127.0.0.1:${(server.address() as { port: number }).port}
    secrets: { signingKey: { env: CK }, personalAccessToken: { env: CT } }
    refs: { practitioners: { "${HOST}": reyes } }
`, { dataDir: dir.dir, env: { CK: KEY, CT: TOKEN } });
});
after(async () => {
  await hub.store.close();
  server.close();
  dir.cleanup();
});

async function book(s: Partial<SampleBooking> & Pick<SampleBooking, 'event' | 'bookingId'>, now = new Date()): Promise<string> {
  const { rawBody, headers } = calendly.sampleWebhook!({ start: '2027-03-02T15:00:00Z', end: '2027-03-02T16:00:00Z', timeZone: 'America/New_York', patient: { name: 'Ines Duarte' }, hostRef: HOST, ...s }, { signingKey: KEY }, now);
  const r = await ingestWebhook(hub, 'calendly', { rawBody, headers, url: '' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.changes as { appointmentId: string }[])[0].appointmentId;
}
const actions = async (id: string) => (await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', id).orderBy('seq').execute()).map((r) => r.action);
const writeBackJobs = async () => (await hub.store.db.selectFrom('job').select('id').where('kind', '=', 'source.writeback').execute()).length;

test('a move the platform cannot take marks the appointment as diverging at once, without a write-back job', async () => {
  const id = await book({ event: 'created', bookingId: randomUUID() });
  const moved = await staffReschedule(hub, id, { start: '2027-03-02T17:00:00Z', end: '2027-03-02T18:00:00Z' }, 'staff:test');
  assert.match(moved.diverged ?? '', /^Calendly cannot move a booking through its API/);
  assert.equal((await getAppointment(hub.store.db, id))!.diverged, moved.diverged, 'stored');
  assert.equal(await writeBackJobs(), 0);
  assert.ok((await actions(id)).includes('source.diverged'));
  assert.deepEqual((await listAppointments(hub.store.db, { diverged: true })).map((a) => a.id), [id]);
});

test('a cancellation the platform refuses marks it diverging; a newer state from the platform ends that', async () => {
  const booking = randomUUID();
  const id = await book({ event: 'created', bookingId: booking, start: '2027-03-03T15:00:00Z', end: '2027-03-03T16:00:00Z' });
  answer = 403;
  await staffCancel(hub, id, undefined, 'staff:test');
  assert.equal((await getAppointment(hub.store.db, id))!.diverged, undefined, 'pending the write-back');
  await drain(hub);
  assert.equal(cancellations.length, 1);
  assert.match((await getAppointment(hub.store.db, id))!.diverged ?? '', /^Calendly refused the change: HTTP 403/);
  // Restoring a cancelled booking is nothing Calendly's API can do.
  const rebooked = await staffSetStatus(hub, id, 'booked', 'staff:test');
  assert.match(rebooked.diverged ?? '', /cannot restore a cancelled booking/);
  // The patient cancels in Calendly: the platform's own newer state wins and the two agree again.
  await book({ event: 'canceled', bookingId: booking, start: '2027-03-03T15:00:00Z', end: '2027-03-03T16:00:00Z' }, new Date(Date.now() + 1000));
  const a = (await getAppointment(hub.store.db, id))!;
  assert.equal(a.status, 'cancelled');
  assert.equal(a.diverged, undefined);
});

test('a cancellation the platform takes is written back and leaves no divergence', async () => {
  const id = await book({ event: 'created', bookingId: randomUUID(), start: '2027-03-04T15:00:00Z', end: '2027-03-04T16:00:00Z' });
  answer = 201;
  const before = cancellations.length;
  await staffCancel(hub, id, 'patient called', 'staff:test');
  await drain(hub);
  assert.equal(cancellations.length, before + 1);
  assert.equal((await getAppointment(hub.store.db, id))!.diverged, undefined);
  const trail = await actions(id);
  assert.ok(trail.includes('source.written_back') && !trail.includes('source.diverged'), trail.join(', '));
});
