// The one door for appointment writes (src/engine/appointments/commit.ts), on SQLite and PostgreSQL: a write
// made from a copy read before someone else's committed change is refused (`concurrent_change`) and leaves
// nothing behind — not the row, not an audit entry, not a job — so the caller reads again instead of
// overwriting the newer state (a staff cancellation undone by a platform's re-run job, say).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { commitAppointment } from '../../src/engine/appointments/commit.ts';
import { staffCancel, staffCreate } from '../../src/engine/edits/staff.ts';
import { MeridianError } from '../../src/domain/errors.ts';
import { statusOf } from '../../src/http/errors.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { applyChange } from '../../src/engine/inbound/apply.ts';
import { loadConnection } from '../../src/engine/hub/connections.ts';
import type { SourceChange } from '../../src/domain/types.ts';
import { BACKENDS, backendFor, configuredHub } from '../helpers.ts';

const YAML = `
clinic: { id: c, name: Clinic, timeZone: Europe/Berlin }
locations: [{ id: l, name: Main }]
practitioners: [{ id: reyes, name: Dr Reyes, locations: [l] }]
connections:
  - id: calendly
    platform: calendly
    refs: { defaultPractitioner: reyes }
`;

const concurrent = (e: unknown) => e instanceof MeridianError && e.code === 'concurrent_change' && statusOf(e) === 409;

for (const backend of BACKENDS) {
  describe(`the appointment door on ${backend}`, () => {
    let b: Awaited<ReturnType<typeof backendFor>>;
    let hub: Hub;
    before(async () => {
      b = await backendFor(backend);
      if (!b.skip) hub = await configuredHub(YAML, { dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema });
    });
    after(async () => {
      await hub?.store.close();
      await b.cleanup();
    });
    const t = (name: string, fn: () => Promise<void>) => test(name, { skip: b?.skip }, fn);
    const counts = async (id: string) => ({
      audit: (await hub.store.db.selectFrom('audit').select('seq').where('entity_id', '=', id).execute()).length,
      jobs: (await hub.store.db.selectFrom('job').select('id').execute()).length,
    });

    t('a write from a copy older than the stored revision is refused and leaves nothing behind', async () => {
      const a = await staffCreate(hub, { practitionerId: 'reyes', start: '2027-05-03T08:00:00Z', end: '2027-05-03T09:00:00Z', patient: { name: 'Ines Duarte' } }, 'staff:test');
      const stale = (await getAppointment(hub.store.db, a.id))!;
      await staffCancel(hub, a.id, 'patient called', 'staff:test');
      const was = await counts(a.id);
      const moved = { ...structuredClone(stale), start: '2027-05-03T10:00:00Z', end: '2027-05-03T11:00:00Z', revision: stale.revision + 1 };
      await assert.rejects(hub.store.db.transaction().execute((trx) =>
        commitAppointment(trx, hub, { before: stale, next: moved, actor: 'source:test', action: 'appointment.updated' })), concurrent);
      const now = (await getAppointment(hub.store.db, a.id))!;
      assert.equal(now.status, 'cancelled', 'the cancellation stands');
      assert.equal(now.start, stale.start, 'and the older copy\'s move was not written');
      assert.deepEqual(await counts(a.id), was, 'no audit entry and no job from the refused write');
      // Read again, the same change goes through.
      const fresh = (await getAppointment(hub.store.db, a.id))!;
      const done = await hub.store.db.transaction().execute((trx) =>
        commitAppointment(trx, hub, { before: fresh, next: { ...structuredClone(fresh), start: moved.start, end: moved.end, revision: fresh.revision + 1 }, actor: 'source:test', action: 'appointment.updated' }));
      assert.equal(done.appointment.start, moved.start);
    });

    const pgOnly = (name: string, fn: () => Promise<void>) => test(name, { skip: b?.skip ?? (backend !== 'postgres' ? 'SQLite has one writer at a time' : undefined) }, fn);
    pgOnly('two writers at once: the second waits for the first, then is refused instead of writing over it', async () => {
      const a = await staffCreate(hub, { practitionerId: 'reyes', start: '2027-05-04T08:00:00Z', end: '2027-05-04T09:00:00Z', patient: { name: 'Ana Silva' } }, 'staff:test');
      const read = (await getAppointment(hub.store.db, a.id))!;
      const first = await hub.store.db.startTransaction().execute();
      await commitAppointment(first, hub, { before: read, next: { ...structuredClone(read), status: 'cancelled', revision: read.revision + 1 }, actor: 'staff:test', action: 'appointment.cancelled' });
      // The second writer read the same revision; its write waits on the first's row lock.
      const second = hub.store.db.transaction().execute((trx) =>
        commitAppointment(trx, hub, { before: read, next: { ...structuredClone(read), notes: 'from an older copy' }, actor: 'source:test', action: 'change.no_effect', effects: 'unchanged' }));
      const outcome = second.then(() => 'written', (e: unknown) => (concurrent(e) ? 'refused' : `failed: ${(e as Error).message}`));
      await new Promise((r) => setTimeout(r, 200));
      await first.commit().execute();
      assert.equal(await outcome, 'refused');
      const now = (await getAppointment(hub.store.db, a.id))!;
      assert.equal(now.status, 'cancelled');
      assert.equal(now.notes, undefined);
    });

    pgOnly('two changes about one new booking at once (two processes fetching it) make one appointment, not two', async () => {
      const conn = (await loadConnection(hub, 'calendly')).record;
      const change = (n: number): SourceChange => ({
        platform: 'calendly', externalId: 'invitee-77', kind: 'upsert', needsFetch: false, occurredAt: `2026-12-01T10:00:0${n}Z`,
        appointment: { start: '2027-05-05T08:00:00Z', end: '2027-05-05T08:45:00Z', timeZone: 'Europe/Berlin', status: 'booked', patient: { name: 'Mo Keller' } },
      });
      const first = await hub.store.db.startTransaction().execute();
      const one = await applyChange(first, hub, conn, change(1), 'source:calendly');
      assert.equal(one.outcome, 'created');
      // The second decides only once the first has committed, and so finds the booking it made.
      const second = hub.store.db.transaction().execute((trx) => applyChange(trx, hub, conn, change(2), 'source:calendly'));
      await new Promise((r) => setTimeout(r, 200));
      await first.commit().execute();
      const two = await second;
      assert.notEqual(two.outcome, 'created');
      const rows = await hub.store.db.selectFrom('appointment').select('id').where('origin_external_id', '=', 'invitee-77').execute();
      assert.deepEqual(rows.map((r) => r.id), [one.appointmentId]);
    });
  });
}
