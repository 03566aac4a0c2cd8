// The transactional outbox: jobs written in the same transaction as the change that caused them,
// claimed by workers with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), retried, dead-lettered.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, JobTable } from './schema.ts';
import type { Dialect } from './migrations.ts';
import { connectionOf, type Job, type JobState, type NewJob } from '../domain/jobs.ts';

export type { Job, JobState, NewJob } from '../domain/jobs.ts';

/** The stored row as a job. The row's kind and payload were written by `enqueue` from a typed job. */
export function toJob(r: JobTable): Job {
  return {
    id: r.id, kind: r.kind, payload: JSON.parse(r.payload), dedupeKey: r.dedupe_key ?? undefined, state: r.state as JobState,
    attempts: r.attempts, maxAttempts: r.max_attempts, runAt: r.run_at, lastError: r.last_error ?? undefined,
    createdAt: r.created_at, updatedAt: r.updated_at,
  } as Job;
}

export async function enqueue(trx: Kysely<DB> | Transaction<DB>, jobs: NewJob[], now: string): Promise<void> {
  for (const j of jobs) {
    await trx
      .insertInto('job')
      .values({
        id: randomUUID(), kind: j.kind, payload: JSON.stringify(j.payload), connection_id: connectionOf(j) ?? null, dedupe_key: j.dedupeKey ?? null, state: 'pending',
        attempts: 0, max_attempts: j.maxAttempts ?? 12, run_at: j.runAt ?? now, locked_by: null, locked_until: null,
        last_error: null, created_at: now, updated_at: now,
      })
      .onConflict((oc) =>
        oc.column('dedupe_key').where('state', '=', sql.lit('pending')).doUpdateSet({
          run_at: sql<string>`case when excluded.run_at < job.run_at then excluded.run_at else job.run_at end`,
          payload: sql<string>`excluded.payload`,
          updated_at: now,
        }),
      )
      .execute();
  }
}

/**
 * Plan the pending job for `key` exactly (reminders): `job` sets its run time and payload as given — later
 * as well as earlier, unlike `enqueue` — and `undefined` withdraws it (kept as done, with why, for inspection).
 */
export async function setPendingJob(trx: Kysely<DB> | Transaction<DB>, key: string, job: NewJob | undefined, now: string, why = 'withdrawn'): Promise<void> {
  if (!job) {
    await trx.updateTable('job').set({ state: 'done', last_error: why, updated_at: now }).where('dedupe_key', '=', key).where('state', '=', 'pending').execute();
    return;
  }
  const r = await trx.updateTable('job').set({ payload: JSON.stringify(job.payload), run_at: job.runAt ?? now, updated_at: now })
    .where('dedupe_key', '=', key).where('state', '=', 'pending').executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) await enqueue(trx, [{ ...job, dedupeKey: key }], now);
}

/** The pending jobs among these keys (one index lookup each: the partial unique index on pending keys). */
export async function pendingJobs(trx: Kysely<DB> | Transaction<DB>, keys: string[]): Promise<Job[]> {
  if (!keys.length) return [];
  const rows = await trx.selectFrom('job').selectAll().where('dedupe_key', 'in', keys).where('state', '=', 'pending').execute();
  return rows.map(toJob);
}

export async function claim(db: Kysely<DB>, dialect: Dialect, worker: string, n: number, now: Date, leaseMs: number): Promise<Job[]> {
  const nowIso = now.toISOString();
  const until = new Date(now.getTime() + leaseMs).toISOString();
  // Two bounded lookups rather than one `state in (…)` with an OR: SQLite answered that with a
  // multi-index OR and a sort of every due job, so each claim cost grew with the backlog. Here the
  // pending jobs are read in (state, run_at) index order and the scan stops at the n-th.
  let due = db
    .selectFrom('job')
    .select('id')
    .where('state', '=', 'pending')
    .where('run_at', '<=', nowIso)
    // One run per key at a time: a job for a key whose earlier job is still running (or died running)
    // waits for it. Two syncs of one appointment side by side could land the older state last.
    .where((eb) => eb.not(eb.exists(eb.selectFrom('job as busy').select('busy.id').where('busy.state', '=', 'running').whereRef('busy.dedupe_key', '=', 'job.dedupe_key'))))
    .orderBy('run_at')
    .limit(n);
  // Jobs whose worker died holding the lease.
  let expired = db.selectFrom('job').select('id').where('state', '=', 'running').where('locked_until', '<', nowIso).orderBy('locked_until').limit(n);
  if (dialect === 'postgres') {
    due = due.forUpdate().skipLocked();
    expired = expired.forUpdate().skipLocked();
  }
  const rows = await db
    .updateTable('job')
    .set({ state: 'running', locked_by: worker, locked_until: until, attempts: sql`attempts + 1`, updated_at: nowIso })
    .where((eb) => eb.or([eb('id', 'in', due), eb('id', 'in', expired)]))
    .returningAll()
    .execute();
  return rows.map(toJob);
}

/** Keep a running job's lease (its worker is alive and still at it). */
export async function extendLease(db: Kysely<DB>, id: string, worker: string, until: string): Promise<void> {
  await db.updateTable('job').set({ locked_until: until }).where('id', '=', id).where('locked_by', '=', worker).where('state', '=', 'running').execute();
}

export async function complete(db: Kysely<DB>, id: string, worker: string, now: string): Promise<void> {
  await db.updateTable('job').set({ state: 'done', locked_until: null, last_error: null, updated_at: now })
    .where('id', '=', id).where('locked_by', '=', worker).execute();
}

/**
 * Put a claimed job back (or dead-letter it). `waitsOn`: the connection whose lost authorisation stopped it;
 * a job that acts for no connection of its own (a message, a write-back) is filed under that one, so new
 * credentials for it re-run the job (`rerunAuthWaiting`).
 */
export async function reschedule(db: Kysely<DB>, id: string, worker: string, o: { error: string; runAt?: string; dead: boolean; countAttempt: boolean; waitsOn?: string }, now: string): Promise<void> {
  if (!o.dead) {
    // A newer pending job for the same key already exists: it will do this work with fresher state.
    const self = await db.selectFrom('job').select('dedupe_key').where('id', '=', id).executeTakeFirst();
    if (self?.dedupe_key) {
      const other = await db.selectFrom('job').select('id').where('dedupe_key', '=', self.dedupe_key)
        .where('state', '=', 'pending').where('id', '!=', id).executeTakeFirst();
      if (other) {
        await db.updateTable('job').set({ state: 'done', locked_until: null, last_error: `coalesced into ${other.id}`, updated_at: now })
          .where('id', '=', id).where('locked_by', '=', worker).execute();
        return;
      }
    }
  }
  await db
    .updateTable('job')
    .set({
      state: o.dead ? 'dead' : 'pending',
      run_at: o.runAt ?? now,
      locked_until: null,
      last_error: o.error.slice(0, 1000),
      updated_at: now,
      ...(o.countAttempt ? {} : { attempts: sql`attempts - 1` }),
      ...(o.waitsOn ? { connection_id: sql<string>`coalesce(connection_id, ${o.waitsOn})` } : {}),
    })
    .where('id', '=', id)
    .where('locked_by', '=', worker)
    .execute();
}

/** Put a dead or waiting job back in the queue now; returns false when there is no such job. */
export async function retryJob(db: Kysely<DB>, id: string, now: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const job = await trx.selectFrom('job').select(['dedupe_key', 'state']).where('id', '=', id).executeTakeFirst();
    if (!job || (job.state !== 'dead' && job.state !== 'pending')) return false;
    // A dead job whose key already has a pending job: run that one now instead (one per key).
    if (job.state === 'dead' && job.dedupe_key) {
      const pending = await trx.selectFrom('job').select('id').where('dedupe_key', '=', job.dedupe_key).where('state', '=', 'pending').executeTakeFirst();
      if (pending) {
        await trx.updateTable('job').set({ run_at: now, updated_at: now }).where('id', '=', pending.id).execute();
        await trx.updateTable('job').set({ state: 'done', last_error: `retried as ${pending.id}`, updated_at: now }).where('id', '=', id).execute();
        return true;
      }
    }
    await trx.updateTable('job').set({ state: 'pending', attempts: 0, run_at: now, locked_until: null, updated_at: now }).where('id', '=', id).execute();
    return true;
  });
}

/** Forget finished jobs older than `before` (dead ones stay until staff act on them). */
export async function pruneDone(db: Kysely<DB>, before: string): Promise<number> {
  const r = await db.deleteFrom('job').where('state', '=', 'done').where('updated_at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

export async function listJobs(db: Kysely<DB>, o: { state?: JobState; connectionId?: string; limit?: number } = {}): Promise<Job[]> {
  let q = db.selectFrom('job').selectAll().orderBy('updated_at', 'desc').limit(o.limit ?? 100);
  if (o.state) q = q.where('state', '=', o.state);
  if (o.connectionId) q = q.where('connection_id', '=', o.connectionId);
  return (await q.execute()).map(toJob);
}

export async function jobCounts(db: Kysely<DB>): Promise<Record<JobState, number>> {
  const rows = await db.selectFrom('job').select(['state', db.fn.countAll<number>().as('n')]).groupBy('state').execute();
  const out: Record<JobState, number> = { pending: 0, running: 0, done: 0, dead: 0 };
  for (const r of rows) out[r.state as JobState] = Number(r.n);
  return out;
}

/** One connection's jobs for its health: waiting (never failed), retrying, dead, and when one last finished. */
export async function connectionJobCounts(db: Kysely<DB>, connectionId: string): Promise<{ waiting: number; retrying: number; dead: number; lastDoneAt?: string }> {
  const rows = await db.selectFrom('job')
    .select(['state', db.fn.countAll<number>().as('n'), sql<number>`sum(case when last_error is null then 0 else 1 end)`.as('failed')])
    .where('connection_id', '=', connectionId).where('state', 'in', ['pending', 'running', 'dead']).groupBy('state').execute();
  const done = await db.selectFrom('job').select('updated_at').where('connection_id', '=', connectionId).where('state', '=', 'done')
    .orderBy('updated_at', 'desc').limit(1).executeTakeFirst();
  const out = { waiting: 0, retrying: 0, dead: 0, lastDoneAt: done?.updated_at };
  for (const r of rows) {
    if (r.state === 'dead') out.dead += Number(r.n);
    else {
      out.retrying += Number(r.failed);
      out.waiting += Number(r.n) - Number(r.failed);
    }
  }
  return out;
}

/** New credentials for a connection: its jobs waiting on a lost authorisation run now (no other connection's). */
export async function rerunAuthWaiting(db: Kysely<DB>, connectionId: string, now: string): Promise<number> {
  const r = await db.updateTable('job').set({ run_at: now }).where('connection_id', '=', connectionId)
    .where('state', '=', 'pending').where('last_error', 'like', 'auth:%').executeTakeFirst();
  return Number(r.numUpdatedRows);
}
