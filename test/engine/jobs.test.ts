// The job catalogue's store side, on SQLite and PostgreSQL: every job row names the connection it acts for
// (rows from before the column are filled from their payload by the migration), and new credentials for one
// connection re-run only that connection's jobs that waited for them, never another lapsed connection's.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Migrator, type Kysely } from 'kysely';
import { openStore, migrate, type Store } from '../../src/store/db.ts';
import { migrations } from '../../src/store/migrations.ts';
import { claim, enqueue, listJobs, reschedule } from '../../src/store/outbox.ts';
import { NOTIFY_NOTICE, SOURCE_POLL, TARGET_SYNC } from '../../src/domain/jobs.ts';
import { setConnectionStatus } from '../../src/engine/hub/connections.ts';
import { createApiKey } from '../../src/engine/hub/apikeys.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { BACKENDS, backendFor, configuredHub } from '../helpers.ts';

const CONFIG = `
clinic: { id: c, name: Clinic, timeZone: Europe/London }
connections:
  - id: cal-a
    platform: google-calendar
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
  - id: cal-b
    platform: google-calendar
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`;
const ENV = { G_ID: 'id', G_SECRET: 'secret', G_REFRESH: 'rt' };
const LATER = '2099-01-01T00:00:00.000Z';

for (const backend of BACKENDS) {
  describe(`jobs on ${backend}`, async () => {
    const b = await backendFor(backend);
    after(() => b.cleanup());
    const t = (name: string, fn: () => Promise<void>) => test(name, { skip: b.skip }, fn);

    t('the migration fills connection_id of the rows written before it, from their payloads', async () => {
      const store: Store = await openStore({ dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema });
      try {
        const migrator = new Migrator({ db: store.db, provider: { getMigrations: async () => migrations(store.dialect) }, ...(store.schema ? { migrationTableSchema: store.schema } : {}) });
        const { error } = await migrator.migrateTo('0010_delivery_bookings');
        assert.ifError(error);
        // Rows of the old shape (no connection column), more than one backfill batch of them.
        const at = '2026-03-01T12:00:00.000Z';
        const row = (id: string, kind: string, payload: unknown, state = 'pending') => ({
          id, kind, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), dedupe_key: null, state, attempts: 0, max_attempts: 12,
          run_at: at, locked_by: null, locked_until: null, last_error: null, created_at: at, updated_at: at,
        });
        const old = [
          row('sync', TARGET_SYNC, { appointmentId: 'a1', targetId: 'cal-a' }),
          row('poll', SOURCE_POLL, { connectionId: 'src-1', scheduled: true }, 'done'),
          row('fetch', 'source.fetch', { connectionId: 'src-2', change: { platform: 'x', externalId: 'e', connectionId: 'not-this' } }),
          row('notice', NOTIFY_NOTICE, { appointmentId: 'a1' }),
          row('unreadable', 'gone.kind', '{not json'),
          ...Array.from({ length: 1100 }, (_, i) => row(`bulk-${String(i).padStart(4, '0')}`, TARGET_SYNC, { appointmentId: `b${i}`, targetId: `cal-${i % 3}` })),
        ];
        const db = store.db as unknown as Kysely<any>;
        for (let i = 0; i < old.length; i += 200) await db.insertInto('job').values(old.slice(i, i + 200)).execute();
        // 0011 runs first (later migrations may follow it).
        assert.equal((await migrate(store))[0], '0011_job_connection');
        const got = new Map((await store.db.selectFrom('job').select(['id', 'connection_id']).execute()).map((r) => [r.id, r.connection_id]));
        assert.equal(got.size, old.length);
        assert.equal(got.get('sync'), 'cal-a');
        assert.equal(got.get('poll'), 'src-1');
        assert.equal(got.get('fetch'), 'src-2', 'the top-level connection, not one inside the change');
        assert.equal(got.get('notice'), null);
        assert.equal(got.get('unreadable'), null);
        for (let i = 0; i < 1100; i++) assert.equal(got.get(`bulk-${String(i).padStart(4, '0')}`), `cal-${i % 3}`);
        // New rows get theirs from enqueue.
        await enqueue(store.db, [{ kind: SOURCE_POLL, payload: { connectionId: 'src-3' }, dedupeKey: 'p3' }], at);
        assert.deepEqual(await store.db.selectFrom('job').select('connection_id').where('dedupe_key', '=', 'p3').execute(), [{ connection_id: 'src-3' }]);
        assert.deepEqual((await listJobs(store.db, { connectionId: 'src-1' })).map((j) => j.id), ['poll']);
      } finally {
        await store.close();
      }
    });

    describe('new credentials', async () => {
      // A database of its own: the migration test above filled b's with rows of its making.
      const hb = await backendFor(backend);
      let hub: Hub;
      before(async () => {
        if (!hb.skip) hub = await configuredHub(CONFIG, { dataDir: hb.dataDir, databaseUrl: hb.databaseUrl, pgSchema: hb.pgSchema, env: ENV });
      });
      after(async () => {
        await hub?.store.close();
        await hb.cleanup();
      });

      t('storing secrets for one connection re-runs its jobs that waited for them, and no other connection\'s', async () => {
        const at = hub.clock.now().toISOString();
        // Both calendars lost their grant; each has a write waiting, and a message waits on calendar A's account.
        for (const id of ['cal-a', 'cal-b']) await setConnectionStatus(hub, id, 'needs_reauth', 'auth: invalid_grant');
        await enqueue(hub.store.db, [
          { kind: TARGET_SYNC, payload: { appointmentId: 'x', targetId: 'cal-a' }, dedupeKey: 'sync-a' },
          { kind: TARGET_SYNC, payload: { appointmentId: 'x', targetId: 'cal-b' }, dedupeKey: 'sync-b' },
          { kind: NOTIFY_NOTICE, payload: { appointmentId: 'x' }, dedupeKey: 'notice' },
        ], at);
        const claimed = await claim(hub.store.db, hub.store.dialect, 'w', 10, new Date(), 60_000);
        assert.equal(claimed.length, 3);
        for (const j of claimed) {
          const waitsOn = j.kind === NOTIFY_NOTICE ? 'cal-a' : undefined;
          await reschedule(hub.store.db, j.id, 'w', { error: 'auth: invalid_grant', runAt: LATER, dead: false, countAttempt: false, waitsOn }, at);
        }
        const jobs = async () => new Map((await hub.store.db.selectFrom('job').select(['dedupe_key', 'run_at', 'connection_id']).execute()).map((r) => [r.dedupe_key, r]));
        assert.equal((await jobs()).get('notice')!.connection_id, 'cal-a', 'a job without a connection of its own is filed under the one it waits on');

        const app = await buildServer(hub);
        try {
          const { key } = await createApiKey(hub, 'admin', ['admin']);
          const auth = { authorization: `Bearer ${key}` };
          const health = async () => new Map(((await app.inject({ method: 'GET', url: '/api/v1/health/connections', headers: auth })).json().items as { id: string; jobs: unknown }[]).map((c) => [c.id, c.jobs]));
          assert.deepEqual((await health()).get('cal-a'), { waiting: 0, retrying: 2, dead: 0 });
          assert.deepEqual((await health()).get('cal-b'), { waiting: 0, retrying: 1, dead: 0 });

          const res = await app.inject({ method: 'PUT', url: '/api/v1/connections/cal-a/secrets', headers: auth, payload: { accessToken: 'renewed' } });
          assert.equal(res.statusCode, 200, res.body);
          const after = await jobs();
          assert.ok(after.get('sync-a')!.run_at < LATER, 'A\'s write runs now');
          assert.ok(after.get('notice')!.run_at < LATER, 'the message that waited on A runs now');
          assert.equal(after.get('sync-b')!.run_at, LATER, 'B\'s write keeps waiting: B has no new credentials');
          const status = async (id: string) => (await hub.store.db.selectFrom('connection').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
          assert.equal(await status('cal-a'), 'active');
          assert.equal(await status('cal-b'), 'needs_reauth');
        } finally {
          await app.close();
        }
      });
    });
  });
}
