// Periodic synchronisation through the engine, against a platform whose listing is complete (Bookafy:
// its cancel is a delete, so a booking no longer listed was cancelled): cancellation by absence, the
// mass-change safety valve (held for approval, approved or rejected by staff), one poll at a time across
// processes (the lease), and the scheduler's one pending poll per connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { decideHeld, listHeld, pollConnection, runPollJob, schedulePolls } from '../../src/engine/sync/poll.ts';
import { SOURCE_POLL } from '../../src/domain/jobs.ts';
import { listAppointments } from '../../src/store/repo.ts';
import { startFakeBookafy, type FakeBookafy } from '../fakes/bookafy.ts';
import { tempDir, configuredHub } from '../helpers.ts';
import type { Job } from '../../src/store/outbox.ts';

const inDays = (d: number, minutes = 0) => new Date(Math.floor(Date.now() / 86_400_000 + d) * 86_400_000 + 15 * 3_600_000 + minutes * 60_000).toISOString();

async function clinic(config = ''): Promise<{ hub: Hub; fake: FakeBookafy; close(): Promise<void> }> {
  const fake = await startFakeBookafy();
  const dir = tempDir();
  const hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: l, name: Main }]
practitioners: [{ id: park, name: Dr. Lena Park, locations: [l] }]
connections:
  - id: bookafy
    platform: bookafy
    baseUrl: ${fake.url}
    config: { ${config} }
    secrets: { apiKey: { env: BK }, webhookToken: { env: BT } }
    refs: { practitioners: { "5123": park } }
`, { dataDir: dir.dir, env: { BK: fake.apiKey, BT: 'tok' } });
  return { hub, fake, close: async () => { await hub.store.close(); await fake.close(); dir.cleanup(); } };
}

function book(fake: FakeBookafy, n: number): void {
  for (let i = 0; i < n; i++) {
    fake.put({
      id: 700 + i, user_id: 5123, service_id: 77, is_active: true, appointment_start_time: inDays(1 + i), appointment_end_time: inDays(1 + i, 45),
      customer: { customer_detail_hstore: { name: `Patient ${i}`, email: `p${i}@example.net` } },
    });
  }
}

const live = async (hub: Hub) => (await listAppointments(hub.store.db, { status: ['booked'] })).map((a) => a.origin.externalId).sort();
const audit = async (hub: Hub, action: string) => hub.store.db.selectFrom('audit').select('meta').where('action', '=', action).execute();

test('a booking no longer listed is cancelled; a listing that would cancel too much is held, and staff approve it', async () => {
  const { hub, fake, close } = await clinic();
  try {
    book(fake, 6);
    let r = await pollConnection(hub, 'bookafy');
    assert.equal(r.outcomes.created, 6);
    fake.remove(700);
    r = await pollConnection(hub, 'bookafy');
    assert.equal(r.outcomes.cancelled, 1, 'one patient cancelled: applied at once');
    assert.equal(r.held, undefined);
    assert.deepEqual(await live(hub), ['701', '702', '703', '704', '705']);

    // Three of the five remaining vanish at once: 3 ≥ the minimum and 60 % > 20 % — held, nothing cancelled.
    for (const id of [701, 702, 703]) fake.remove(id);
    r = await pollConnection(hub, 'bookafy');
    assert.ok(r.held, 'held for approval');
    assert.deepEqual([r.held.cancellations, r.held.upcoming], [3, 5]);
    assert.deepEqual(await live(hub), ['701', '702', '703', '704', '705'], 'nothing cancelled yet');
    // Another poll finds the same: the one pending hold is refreshed, not duplicated.
    const again = await pollConnection(hub, 'bookafy');
    assert.equal(again.held?.id, r.held.id);
    const [held] = await listHeld(hub, 'pending');
    assert.equal((await listHeld(hub, 'pending')).length, 1);
    assert.equal(held.connectionId, 'bookafy');
    assert.deepEqual(held.summary.appointments.map((a) => a.start).sort(), [inDays(2), inDays(3), inDays(4)].map((s) => s.replace('.000Z', 'Z')));
    assert.ok(!JSON.stringify(held).includes('Patient'), 'no patient data in the preview');
    assert.equal((await audit(hub, 'poll.held')).length, 2);

    const d = await decideHeld(hub, held.id, 'approve', 'staff:front-desk');
    assert.deepEqual(d, { status: 'approved', outcomes: { updated: 3 } });
    assert.deepEqual(await live(hub), ['704', '705']);
    await assert.rejects(decideHeld(hub, held.id, 'reject', 'staff:front-desk'), (e: { code: string }) => e.code === 'already_decided');
    assert.equal((await audit(hub, 'poll.hold_approved')).length, 1);
  } finally {
    await close();
  }
});

test('an empty listing never wipes the schedule; a rejected set is not held again; a small change afterwards is applied', async () => {
  const { hub, fake, close } = await clinic();
  try {
    book(fake, 2);
    await pollConnection(hub, 'bookafy');
    // Only two upcoming: below the minimum, but a listing with nothing live left is always held.
    fake.remove(700);
    fake.remove(701);
    let r = await pollConnection(hub, 'bookafy');
    assert.deepEqual([r.held?.cancellations, r.held?.upcoming], [2, 2]);
    assert.deepEqual(await live(hub), ['700', '701']);
    await decideHeld(hub, r.held!.id, 'reject', 'staff:owner');
    r = await pollConnection(hub, 'bookafy');
    assert.equal((await listHeld(hub, 'pending')).length, 0, 'the same set is not held again once rejected');
    assert.deepEqual(await live(hub), ['700', '701'], 'and still not applied');
    // The first booking comes back at the platform: one of two missing is no mass change, so it is applied.
    book(fake, 1);
    r = await pollConnection(hub, 'bookafy');
    assert.equal(r.held, undefined);
    assert.equal(r.outcomes.cancelled, 1);
    assert.deepEqual(await live(hub), ['700']);
  } finally {
    await close();
  }
});

test('a share of 1 and a higher minimum let a clinic relax the valve', async () => {
  const { hub, fake, close } = await clinic('holdCancellationsShare: 1, holdCancellationsMinimum: 10');
  try {
    book(fake, 5);
    await pollConnection(hub, 'bookafy');
    for (const id of [700, 701, 702, 703]) fake.remove(id);
    const r = await pollConnection(hub, 'bookafy');
    assert.equal(r.held, undefined);
    assert.equal(r.outcomes.cancelled, 4);
  } finally {
    await close();
  }
});

test('one poll per connection at a time across processes; the scheduler keeps one pending poll per connection', async () => {
  const { hub, fake, close } = await clinic('pollMinutes: 30');
  try {
    book(fake, 1);
    // Another process holds the lease.
    await hub.store.db.updateTable('connection').set({ poll_lease_until: new Date(Date.now() + 60_000).toISOString(), poll_lease_by: 'other-node' }).where('id', '=', 'bookafy').execute();
    const busy = await pollConnection(hub, 'bookafy');
    assert.deepEqual(busy, { listed: 0, outcomes: {}, busy: true });
    assert.equal(fake.requests.length, 0, 'nothing was read');
    await hub.store.db.updateTable('connection').set({ poll_lease_until: new Date(Date.now() - 1).toISOString() }).where('id', '=', 'bookafy').execute();
    assert.equal((await pollConnection(hub, 'bookafy')).listed, 1, 'an expired lease is taken over');

    assert.equal(await schedulePolls(hub), 1);
    assert.equal(await schedulePolls(hub), 1);
    const pending = await hub.store.db.selectFrom('job').selectAll().where('kind', '=', SOURCE_POLL).where('state', '=', 'pending').execute();
    assert.equal(pending.length, 1, 'one pending poll, however often the scheduler runs');
    const due = Date.parse(pending[0].run_at) - Date.now();
    assert.ok(due > 29 * 60_000 && due < 34 * 60_000, `due after the 30-minute interval (+ jitter), not now: ${due}`);
    // A scheduled poll that finds a fresh sync does nothing, and queues the next.
    const job = { id: pending[0].id, kind: SOURCE_POLL, payload: { connectionId: 'bookafy', scheduled: true } } as unknown as Job<typeof SOURCE_POLL>;
    const reads = fake.requests.length;
    assert.deepEqual(await runPollJob(hub, job), { ok: true, note: 'synced recently' });
    assert.equal(fake.requests.length, reads);
  } finally {
    await close();
  }
});
