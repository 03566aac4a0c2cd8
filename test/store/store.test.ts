// The store suite, run on SQLite and on the PostgreSQL of the machine: migrations, the outbox
// (dedupe, leases, SKIP LOCKED under concurrency, dead letter), the audit chain, encrypted secrets.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openStore, migrate, type Store } from '../../src/store/db.ts';
import { claim, complete, enqueue, jobCounts, reschedule, retryJob, pruneDone, type NewJob } from '../../src/store/outbox.ts';
import { appendAudit, verifyAudit, withDeferredAudit } from '../../src/store/audit.ts';
import { SecretBox, loadSecretBox } from '../../src/store/crypto.ts';
import { BACKENDS, backendFor } from '../helpers.ts';

/** Jobs of a made-up kind: the outbox's own mechanics do not depend on what a job does. */
const raw = (...jobs: { kind: string; payload: Record<string, unknown>; dedupeKey?: string; runAt?: string; maxAttempts?: number }[]) => jobs as unknown as NewJob[];

for (const backend of BACKENDS) {
  describe(`store on ${backend}`, async () => {
    const b = await backendFor(backend);
    let store: Store;
    before(async () => {
      if (b.skip) return;
      store = await openStore({ dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema, poolSize: 6 });
      assert.ok((await migrate(store)).includes('0001_init'));
    });
    after(async () => {
      await store?.close();
      await b.cleanup();
    });
    const t = (name: string, fn: () => Promise<void>) => test(name, { skip: b.skip }, fn);
    const now = new Date('2026-03-01T12:00:00Z');

    t('migrations are idempotent', async () => {
      assert.deepEqual(await migrate(store), []);
    });

    t('a pending job per key: a second enqueue coalesces and only moves it earlier', async () => {
      await enqueue(store.db, raw({ kind: 'k', payload: { v: 1 }, dedupeKey: 'same', runAt: '2026-03-01T12:05:00.000Z' }), now.toISOString());
      await enqueue(store.db, raw({ kind: 'k', payload: { v: 2 }, dedupeKey: 'same', runAt: '2026-03-01T12:10:00.000Z' }), now.toISOString());
      const rows = await store.db.selectFrom('job').selectAll().where('dedupe_key', '=', 'same').execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0].run_at, '2026-03-01T12:05:00.000Z');
      assert.equal(JSON.parse(rows[0].payload).v, 2);
      await store.db.deleteFrom('job').execute();
    });

    t('claims are exclusive under concurrency and leases expire', async () => {
      await enqueue(store.db, raw(...Array.from({ length: 40 }, (_, i) => ({ kind: 'k', payload: { i }, dedupeKey: `c${i}` }))), now.toISOString());
      const batches = await Promise.all(Array.from({ length: 5 }, (_, w) => claim(store.db, store.dialect, `w${w}`, 10, now, 60_000)));
      const ids = batches.flat().map((j) => j.id);
      assert.equal(ids.length, 40);
      assert.equal(new Set(ids).size, 40, 'a job was claimed twice');
      assert.equal((await claim(store.db, store.dialect, 'late', 10, now, 60_000)).length, 0);
      // After the lease, a crashed worker's jobs are claimable again, with the attempt counted.
      const later = new Date(now.getTime() + 61_000);
      const again = await claim(store.db, store.dialect, 'rescuer', 100, later, 60_000);
      assert.equal(again.length, 40);
      assert.ok(again.every((j) => j.attempts === 2));
      // Only the lease holder can complete.
      await complete(store.db, again[0].id, 'w0', later.toISOString());
      assert.equal((await jobCounts(store.db)).done, 0);
      await complete(store.db, again[0].id, 'rescuer', later.toISOString());
      assert.equal((await jobCounts(store.db)).done, 1);
      await store.db.deleteFrom('job').execute();
    });

    t('a failing job waits, a throttled one keeps its attempts, a dead one can be retried', async () => {
      await enqueue(store.db, raw({ kind: 'k', payload: {}, dedupeKey: 'f', maxAttempts: 2 }), now.toISOString());
      let [j] = await claim(store.db, store.dialect, 'w', 1, now, 60_000);
      await reschedule(store.db, j.id, 'w', { error: 'throttled: 429', runAt: '2026-03-01T12:01:00.000Z', dead: false, countAttempt: false }, now.toISOString());
      let row = await store.db.selectFrom('job').selectAll().where('id', '=', j.id).executeTakeFirstOrThrow();
      assert.equal(row.state, 'pending');
      assert.equal(row.attempts, 0);
      assert.equal((await claim(store.db, store.dialect, 'w', 1, now, 60_000)).length, 0, 'not due before Retry-After');
      [j] = await claim(store.db, store.dialect, 'w', 1, new Date('2026-03-01T12:01:00.000Z'), 60_000);
      await reschedule(store.db, j.id, 'w', { error: 'permanent: 400', dead: true, countAttempt: true }, now.toISOString());
      row = await store.db.selectFrom('job').selectAll().where('id', '=', j.id).executeTakeFirstOrThrow();
      assert.equal(row.state, 'dead');
      assert.match(row.last_error ?? '', /permanent/);
      assert.equal(await retryJob(store.db, j.id, now.toISOString()), true);
      assert.equal((await store.db.selectFrom('job').select('state').where('id', '=', j.id).executeTakeFirstOrThrow()).state, 'pending');
      assert.equal(await retryJob(store.db, 'no-such-job', now.toISOString()), false);
      await store.db.deleteFrom('job').execute();
    });

    t('retrying a dead job whose key has a newer pending job runs the pending one instead', async () => {
      await enqueue(store.db, raw({ kind: 'k', payload: {}, dedupeKey: 'd' }), now.toISOString());
      const [j] = await claim(store.db, store.dialect, 'w', 1, now, 60_000);
      await reschedule(store.db, j.id, 'w', { error: 'permanent', dead: true, countAttempt: true }, now.toISOString());
      await enqueue(store.db, raw({ kind: 'k', payload: {}, dedupeKey: 'd', runAt: '2026-03-02T00:00:00.000Z' }), now.toISOString());
      assert.equal(await retryJob(store.db, j.id, now.toISOString()), true);
      const rows = await store.db.selectFrom('job').selectAll().where('dedupe_key', '=', 'd').execute();
      assert.deepEqual(rows.map((r) => r.state).sort(), ['done', 'pending']);
      assert.equal(rows.find((r) => r.state === 'pending')!.run_at, now.toISOString());
      assert.equal(await pruneDone(store.db, '2030-01-01T00:00:00Z'), 1);
      await store.db.deleteFrom('job').execute();
    });

    t('the audit chain verifies, survives concurrent appends, and detects edits, gaps and truncation', async () => {
      const at = now.toISOString();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.db.transaction().execute((trx) =>
        appendAudit(trx, store.dialect, [{ at, actor: 'test', action: 'x.y', entityType: 'thing', entityId: `e${i}`, after: { i } }]))));
      let r = await verifyAudit(store.db);
      assert.equal(r.ok, true, r.reason);
      assert.equal(r.entries, 20);
      const seven = await store.db.selectFrom('audit').select('after').where('seq', '=', 7).executeTakeFirstOrThrow();
      await store.db.updateTable('audit').set({ after: JSON.stringify({ i: 999 }) }).where('seq', '=', 7).execute();
      r = await verifyAudit(store.db);
      assert.equal(r.ok, false);
      assert.equal(r.brokenAt, 7);
      const orig = await store.db.selectFrom('audit').selectAll().where('seq', '=', 8).executeTakeFirstOrThrow();
      await store.db.updateTable('audit').set({ after: seven.after }).where('seq', '=', 7).execute();
      assert.equal((await verifyAudit(store.db)).ok, true, 'restoring the row restores the chain');
      await store.db.deleteFrom('audit').where('seq', '=', 8).execute();
      r = await verifyAudit(store.db);
      assert.equal(r.ok, false);
      assert.equal(r.brokenAt, 8);
      await store.db.insertInto('audit').values(orig).execute();
      await store.db.deleteFrom('audit').where('seq', '=', 20).execute();
      r = await verifyAudit(store.db);
      assert.equal(r.ok, false);
      assert.match(r.reason ?? '', /head/);
    });

    t('deferred audit: entries land in order as the last statements of the transaction, or not at all', async () => {
      const at = now.toISOString();
      const entry = (id: string) => ({ at, actor: 'test', action: 'deferred.x', entityType: 'thing', entityId: id });
      const headBefore = await store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
      await store.db.transaction().execute((trx) => withDeferredAudit(trx, store.dialect, async (inner) => {
        await appendAudit(inner, store.dialect, [entry('first')]);
        const seen = await inner.selectFrom('audit').select('seq').where('action', '=', 'deferred.x').execute();
        assert.equal(seen.length, 0, 'held back while the work runs (the head row is not locked yet)');
        await appendAudit(inner, store.dialect, [entry('second'), entry('third')]);
      }));
      const rows = await store.db.selectFrom('audit').selectAll().where('action', '=', 'deferred.x').orderBy('seq').execute();
      assert.deepEqual(rows.map((r) => r.entity_id), ['first', 'second', 'third']);
      assert.deepEqual(rows.map((r) => r.seq), [headBefore.seq + 1, headBefore.seq + 2, headBefore.seq + 3]);
      assert.equal(rows[0].prev_hash, headBefore.hash, 'linked to the chain as an immediate append would be');
      await assert.rejects(store.db.transaction().execute((trx) => withDeferredAudit(trx, store.dialect, async (inner) => {
        await appendAudit(inner, store.dialect, [entry('never')]);
        throw new Error('the work failed');
      })), /the work failed/);
      assert.equal((await store.db.selectFrom('audit').select('seq').where('entity_id', '=', 'never').execute()).length, 0);
    });

    t('group commit: concurrent units commit together, a failing unit rolls back alone', async () => {
      const { GroupCommitter } = await import('../../src/store/commit.ts');
      const gc = new GroupCommitter(store.db, store.dialect);
      const sizes: number[] = [];
      gc.onBatch = (n) => sizes.push(n);
      const row = (id: string) => ({ id, connection_id: 'gc', delivery_id: id, received_at: now.toISOString(), content_type: null, headers: '{}', body: '{}', status: 'received', error: null, change_count: 0, applied_at: null });
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => gc.run(async (trx) => {
        await trx.insertInto('delivery').values(row(`gc${i}`)).execute();
        if (i === 5) throw new Error('unit 5 fails');
        // Unit 7 breaks a constraint after writing: its own write must vanish too.
        if (i === 7) await trx.insertInto('delivery').values(row('gc0')).execute();
        return i;
      })));
      assert.deepEqual(results.map((r) => r.status), results.map((_, i) => (i === 5 || i === 7 ? 'rejected' : 'fulfilled')));
      const ids = (await store.db.selectFrom('delivery').select('id').where('connection_id', '=', 'gc').execute()).map((r) => r.id).sort();
      assert.deepEqual(ids, ['gc0', 'gc1', 'gc10', 'gc11', 'gc2', 'gc3', 'gc4', 'gc6', 'gc8', 'gc9']);
      if (store.dialect === 'sqlite') assert.ok(sizes.some((n) => n > 1), `batches: ${sizes.join(',')}`);
    });

    t('batch of background units: one failing unit loses its writes and its audit entries, the rest commit linked', async () => {
      const { GroupCommitter } = await import('../../src/store/commit.ts');
      const gc = new GroupCommitter(store.db, store.dialect);
      const at = now.toISOString();
      const headBefore = await store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
      const row = (id: string) => ({ id, connection_id: 'rb', delivery_id: id, received_at: at, content_type: null, headers: '{}', body: '{}', status: 'received', error: null, change_count: 0, applied_at: null });
      const settled = await gc.runBatch(Array.from({ length: 5 }, (_, i) => async (trx: Parameters<Parameters<typeof gc.run>[0]>[0]) => {
        await trx.insertInto('delivery').values(row(`rb${i}`)).execute();
        await appendAudit(trx, store.dialect, [{ at, actor: 'test', action: 'batch.x', entityType: 'thing', entityId: `rb${i}` }]);
        if (i === 2) throw new Error('unit 2 fails');
        return i;
      }));
      assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const ids = (await store.db.selectFrom('delivery').select('id').where('connection_id', '=', 'rb').orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(ids, ['rb0', 'rb1', 'rb3', 'rb4']);
      const audit = await store.db.selectFrom('audit').selectAll().where('action', '=', 'batch.x').orderBy('seq').execute();
      assert.deepEqual(audit.map((a) => a.entity_id), ['rb0', 'rb1', 'rb3', 'rb4'], 'the failed unit left no entry');
      assert.deepEqual(audit.map((a) => a.seq), [1, 2, 3, 4].map((k) => headBefore.seq + k), 'no gap in the chain');
      assert.equal(audit[0].prev_hash, headBefore.hash);
      for (let i = 1; i < audit.length; i++) assert.equal(audit[i].prev_hash, audit[i - 1].hash, 'each entry linked to the one before');
    });

    t('unique delivery ids per connection are enforced by the database', async () => {
      const row = { id: 'd1', connection_id: 'c', delivery_id: 'x', received_at: now.toISOString(), content_type: null, headers: '{}', body: '{}', status: 'received', error: null, change_count: 0, applied_at: null };
      await store.db.insertInto('delivery').values(row).execute();
      await assert.rejects(store.db.insertInto('delivery').values({ ...row, id: 'd2' }).execute());
      await store.db.insertInto('delivery').values({ ...row, id: 'd3', connection_id: 'other' }).execute();
      // Deliveries without an id (platforms that send none) are never considered duplicates of each other.
      await store.db.insertInto('delivery').values({ ...row, id: 'd4', delivery_id: null }).execute();
      await store.db.insertInto('delivery').values({ ...row, id: 'd5', delivery_id: null }).execute();
      const n = await sql<{ n: number }>`select count(*) as n from delivery where connection_id in ('c', 'other')`.execute(store.db);
      assert.equal(Number(n.rows[0].n), 4);
    });
  });
}

test('secrets: AES-256-GCM with key rotation, tamper detection, and a 0600 key file', async () => {
  const { tempDir } = await import('../helpers.ts');
  const d = tempDir();
  try {
    const file = join(d.dir, 'secret.key');
    const box = loadSecretBox(file, {});
    const { statSync } = await import('node:fs');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const enc = box.encrypt('calendly-signing-key');
    assert.ok(!enc.includes('calendly'));
    assert.equal(box.decrypt(enc), 'calendly-signing-key');
    assert.notEqual(box.encrypt('same'), box.encrypt('same'), 'a fresh IV every time');
    const [v, kid, iv, tag, ct] = enc.split(':');
    const flipped = Buffer.from(ct, 'base64');
    flipped[0] ^= 1;
    assert.throws(() => box.decrypt([v, kid, iv, tag, flipped.toString('base64')].join(':')));
    // Rotation: a new key first, the old one still decrypts old values.
    const oldKey = readFileSync(file, 'utf8').trim();
    const newKey = Buffer.alloc(32, 7).toString('base64');
    const rotated = loadSecretBox(file, { MERIDIAN_SECRET_KEY: `${newKey},${oldKey}` });
    assert.equal(rotated.decrypt(enc), 'calendly-signing-key');
    assert.notEqual(rotated.encrypt('x').split(':')[1], kid);
    assert.throws(() => new SecretBox([Buffer.alloc(32, 9)]).decrypt(enc));
  } finally {
    d.cleanup();
  }
});
