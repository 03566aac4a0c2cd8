// The outbox worker against the fake Google Calendar, with a controllable clock: Retry-After is
// honoured, a revoked grant parks the connection as needs_reauth until new credentials arrive,
// permanent failures dead-letter, and a dead job can be retried. Calendar jobs carry only ids and
// write the appointment's state at run time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub, Clock } from '../../src/engine/hub/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCancel, staffCreate, staffReschedule } from '../../src/engine/edits/staff.ts';
import { syncTarget } from '../../src/engine/effects/targets.ts';
import { drain, Worker } from '../../src/engine/jobs/worker.ts';
import { saveSecrets, setConnectionStatus } from '../../src/engine/hub/connections.ts';
import { claim, listJobs, retryJob } from '../../src/store/outbox.ts';

let g: FakeGoogle;
let hub: Hub;
let now = new Date('2026-03-01T12:00:00Z');
const clock: Clock = { now: () => now };
const worker = () => new Worker(hub, { backoff: { baseMs: 1000, capMs: 60_000 } });

let clinic: GoogleClinic;
before(async () => {
  clinic = await googleClinic({ clock });
  ({ hub, g } = clinic);
});
after(() => clinic.close());

const advance = (ms: number) => { now = new Date(now.getTime() + ms); };
const jobOf = async (apptId: string) => (await listJobs(hub.store.db, { limit: 1000 })).find((j) => (j.payload as { appointmentId: string }).appointmentId === apptId)!;

test('429 with Retry-After waits exactly as long as Google asked, without using up an attempt', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-02T10:00:00Z', end: '2026-03-02T11:00:00Z', patient: { name: 'Ana Silva' } }, 'test');
  g.fail(1, 429, { 'retry-after': '30' });
  await drain(hub, { worker: worker() });
  let j = await jobOf(a.id);
  assert.equal(j.state, 'pending');
  assert.equal(j.attempts, 0);
  assert.equal(Date.parse(j.runAt) - now.getTime() >= 30_000, true, `run at ${j.runAt}`);
  assert.equal(await drain(hub, { worker: worker() }), 0, 'not before Retry-After');
  advance(30_000);
  await drain(hub, { worker: worker() });
  j = await jobOf(a.id);
  assert.equal(j.state, 'done');
  assert.equal(g.live(CAL).length, 1);
});

test('a job writes the state at run time: two quick moves make one final event, not a replay', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-03T10:00:00Z', end: '2026-03-03T11:00:00Z', patient: { name: 'Ben Ode' } }, 'test');
  await staffReschedule(hub, a.id, { start: '2026-03-03T12:00:00Z', end: '2026-03-03T13:00:00Z' }, 'test');
  await staffReschedule(hub, a.id, { start: '2026-03-03T14:00:00Z', end: '2026-03-03T15:00:00Z' }, 'test');
  const jobs = (await listJobs(hub.store.db, { state: 'pending' })).filter((j) => (j.payload as { appointmentId: string }).appointmentId === a.id);
  assert.equal(jobs.length, 1, 'coalesced into one pending job');
  const writes = g.requests.length;
  await drain(hub, { worker: worker() });
  const ev = g.live(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === a.id);
  assert.equal(ev.length, 1);
  assert.equal(ev[0].start?.dateTime, '2026-03-03T14:00:00Z');
  assert.equal(g.requests.length - writes, 1, 'a single insert');
});

test('a revoked grant parks the connection until new credentials; then the waiting job runs', async () => {
  g.expireTokens();
  await saveSecrets(hub.store.db, hub, 'google', { accessToken: '', expiresAt: '0' });
  hub.env.G_REFRESH = 'revoked-by-the-user';
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-04T10:00:00Z', end: '2026-03-04T11:00:00Z', patient: { name: 'Cy Twombly' } }, 'test');
  await drain(hub, { worker: worker() });
  const conn = await hub.store.db.selectFrom('connection').select(['status', 'last_error']).where('id', '=', 'google').executeTakeFirstOrThrow();
  assert.equal(conn.status, 'needs_reauth');
  assert.match(conn.last_error ?? '', /invalid_grant/);
  const alerts = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', 'google').where('action', '=', 'connection.needs_reauth').execute();
  assert.equal(alerts.length, 1, 'staff are told once');
  let j = await jobOf(a.id);
  assert.equal(j.state, 'pending');
  assert.equal(j.attempts, 0, 'waiting for a human does not use up attempts');
  advance(10 * 60_000);
  await drain(hub, { worker: worker() });
  assert.equal((await jobOf(a.id)).state, 'pending', 'still parked while the connection needs reconnecting');
  hub.env.G_REFRESH = g.credentials.refreshToken;
  await setConnectionStatus(hub, 'google', 'active');
  advance(10 * 60_000);
  await drain(hub, { worker: worker() });
  j = await jobOf(a.id);
  assert.equal(j.state, 'done');
  assert.equal(g.live(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === a.id).length, 1);
});

test('a permanent failure dead-letters at once; retry runs it again', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-05T10:00:00Z', end: '2026-03-05T11:00:00Z', patient: { name: 'Di Prima' } }, 'test');
  g.fail(1, 400);
  await drain(hub, { worker: worker() });
  const j = await jobOf(a.id);
  assert.equal(j.state, 'dead');
  assert.match(j.lastError ?? '', /^permanent: Google Calendar insert: HTTP 400/);
  assert.ok(!(j.lastError ?? '').includes('Di Prima'));
  assert.equal(await retryJob(hub.store.db, j.id, now.toISOString()), true);
  await drain(hub, { worker: worker() });
  assert.equal((await jobOf(a.id)).state, 'done');
});

test('transient failures back off exponentially and dead-letter after the last attempt', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-06T10:00:00Z', end: '2026-03-06T11:00:00Z', patient: { name: 'Ed Ruscha' } }, 'test');
  await hub.store.db.updateTable('job').set({ max_attempts: 3 }).where('state', '=', 'pending').execute();
  g.fail(3, 503);
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    await drain(hub, { worker: worker() });
    const j = await jobOf(a.id);
    if (j.state === 'dead') break;
    delays.push(Date.parse(j.runAt) - now.getTime());
    advance(Date.parse(j.runAt) - now.getTime());
  }
  const j = await jobOf(a.id);
  assert.equal(j.state, 'dead');
  assert.equal(j.attempts, 3);
  assert.equal(delays.length, 2);
  assert.ok(delays[0] <= 1000 && delays[1] <= 2000, `full jitter under the exponential ceiling: ${delays}`);
});

test('a create that reached Google but died before its link was saved is removed when the rerun finds the booking cancelled', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-09T16:00:00Z', end: '2026-03-09T17:00:00Z', patient: { name: 'Cy Lund' } }, 'test');
  const first = await jobOf(a.id);
  // Its first run: Google answers the insert, then the process is killed before the link is recorded,
  // leaving the job running under a lease that lapses.
  assert.equal((await syncTarget(hub, a.id, 'google')).ok, true);
  await hub.store.db.deleteFrom('target_link').where('appointment_id', '=', a.id).execute();
  await hub.store.db.updateTable('job').set({ state: 'running', attempts: 1, locked_by: 'killed-node', locked_until: new Date(now.getTime() - 1000).toISOString() }).where('id', '=', first.id).execute();
  const ours = () => g.live(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === a.id);
  assert.equal(ours().length, 1);
  // The patient cancels before the job runs again.
  await staffCancel(hub, a.id, undefined, 'test');
  await drain(hub, { worker: worker() });
  assert.deepEqual(ours(), [], 'the unrecorded event is gone, not left live in the practitioner\'s calendar');
  const rerun = (await listJobs(hub.store.db, { limit: 1000 })).find((j) => j.id === first.id)!;
  assert.deepEqual([rerun.state, rerun.attempts], ['done', 2]);
  const removed = await hub.store.db.selectFrom('audit').select('action').where('entity_id', '=', a.id).where('action', '=', 'target.removed').execute();
  assert.equal(removed.length, 1, 'the removal is audited');
  assert.deepEqual(g.violations, []);
});

test('a job running past its lease keeps it: no other worker takes it for dead and runs it beside it', async () => {
  const a = await staffCreate(hub, { practitionerId: 'okafor', start: '2026-03-09T07:00:00Z', end: '2026-03-09T07:30:00Z', patient: { name: 'Slow Write' } }, 'test');
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let arrived!: () => void;
  const writing = new Promise<void>((r) => { arrived = r; });
  g.gate = async () => { arrived(); await held; };
  try {
    const run = drain(hub, { worker: new Worker(hub, { leaseMs: 300 }) });
    await writing;
    // The lease as claimed lapses on the clock; the worker, alive, renews it (every 100 ms).
    advance(1_000);
    await new Promise((r) => setTimeout(r, 250));
    const taken = await claim(hub.store.db, hub.store.dialect, 'another-node', 10, now, 300);
    g.gate = undefined;
    release();
    await run;
    assert.deepEqual(taken.map((j) => j.kind), [], 'claimed by another worker while it ran');
  } finally {
    g.gate = undefined;
    release();
  }
  assert.equal((await jobOf(a.id)).state, 'done');
});
