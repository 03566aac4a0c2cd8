// The SQL of retention (domain/retention.ts says what, engine/sync/retention.ts when): which rows have
// outlived their period, deleted a batch at a time, and what the last run did (in `meta`).
import { sql, type ExpressionBuilder, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { DB } from './schema.ts';
import { getMeta, putMeta, type Exec } from './repo.ts';
import { DEFAULT_RETENTION, RETENTION_KINDS, type RetentionKind, type RetentionPolicy } from '../domain/retention.ts';

export const RETENTION_POLICY_KEY = 'retention_policy';
export const RETENTION_LAST_RUN_KEY = 'retention_last_run_at';
export const RETENTION_LAST_PRUNED_KEY = 'retention_last_pruned';

export type RetentionCounts = Record<RetentionKind, number>;
/** Rows changed before this instant (ISO) have outlived their period; undefined = kept forever. */
export type RetentionCutoffs = Record<RetentionKind, string | undefined>;

/** Rows deleted per statement: each delete is its own short transaction, so a large backlog never holds a long lock. */
export const RETENTION_BATCH = 500;

export async function saveRetentionPolicy(db: Exec, policy: RetentionPolicy): Promise<void> {
  await putMeta(db, RETENTION_POLICY_KEY, JSON.stringify(policy));
}

/** The policy of the applied configuration; the defaults when none was applied. */
export async function loadRetentionPolicy(db: Kysely<DB>): Promise<RetentionPolicy> {
  const v = await getMeta(db, RETENTION_POLICY_KEY);
  return { ...DEFAULT_RETENTION, ...(v ? (JSON.parse(v) as Partial<RetentionPolicy>) : {}) };
}

export async function saveRetentionRun(db: Kysely<DB>, at: string, pruned: RetentionCounts): Promise<void> {
  await putMeta(db, RETENTION_LAST_RUN_KEY, at);
  await putMeta(db, RETENTION_LAST_PRUNED_KEY, JSON.stringify(pruned));
}

export async function lastRetentionRun(db: Kysely<DB>): Promise<{ lastRunAt?: string; lastPruned?: RetentionCounts }> {
  const at = await getMeta(db, RETENTION_LAST_RUN_KEY);
  const pruned = await getMeta(db, RETENTION_LAST_PRUNED_KEY);
  return { lastRunAt: at, lastPruned: pruned ? (JSON.parse(pruned) as RetentionCounts) : undefined };
}

// Which rows may go. Only rows that have done their work: a delivery still `received` or `fetching` has
// not been applied yet; a lead still waiting for staff (needs_triage, or requested for a time to come)
// is kept however old it is; a notification still `sending` and a job pending or running are in flight.
type Cond<T extends keyof DB> = (now: string, cutoff: string) => (eb: ExpressionBuilder<DB, T>) => Expression<SqlBool>;

const deliveryGone: Cond<'delivery'> = (_now, cutoff) => (eb) => eb.and([
  eb('status', 'in', ['applied', 'duplicate', 'failed', 'unreadable']),
  eb('received_at', '<', cutoff),
]);

const leadGone: Cond<'lead'> = (now, cutoff) => (eb) => eb.and([
  eb('updated_at', '<', cutoff),
  eb.or([
    eb('status', 'in', ['booked', 'declined']),
    // A request nobody decided whose appointment is over: there is nothing left to decide.
    eb.and([
      eb('status', '=', 'requested'),
      eb.exists(eb.selectFrom('appointment').select('appointment.id').whereRef('appointment.id', '=', 'lead.appointment_id').where('appointment.end_at', '<', now)),
    ]),
  ]),
]);

const notificationGone: Cond<'notification'> = (_now, cutoff) => (eb) => eb.and([
  eb('state', 'in', ['sent', 'suppressed', 'failed']),
  eb('updated_at', '<', cutoff),
]);

const jobGone: Cond<'job'> = (_now, cutoff) => (eb) => eb.and([
  eb('state', 'in', ['done', 'dead']),
  eb('updated_at', '<', cutoff),
]);

/** Delete with `step` until a batch comes back short; the total deleted. */
async function inBatches(step: () => Promise<bigint>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = Number(await step());
    total += n;
    if (n < RETENTION_BATCH) return total;
  }
}

/**
 * Delete (or, with `dryRun`, count) the rows past their cutoff, kind by kind. `now` decides which
 * appointments are over.
 */
export async function pruneExpired(db: Kysely<DB>, now: string, cutoffs: RetentionCutoffs, o: { dryRun?: boolean } = {}): Promise<RetentionCounts> {
  const out = Object.fromEntries(RETENTION_KINDS.map((k) => [k, 0])) as RetentionCounts;
  const n = sql<number>`count(*)`.as('n');
  if (cutoffs.deliveries) {
    const where = deliveryGone(now, cutoffs.deliveries);
    out.deliveries = o.dryRun
      ? Number((await db.selectFrom('delivery').select(n).where(where).executeTakeFirstOrThrow()).n)
      : await inBatches(async () => (await db.deleteFrom('delivery').where('id', 'in', db.selectFrom('delivery').select('id').where(where).limit(RETENTION_BATCH)).executeTakeFirst()).numDeletedRows);
  }
  if (cutoffs.leads) {
    const where = leadGone(now, cutoffs.leads);
    out.leads = o.dryRun
      ? Number((await db.selectFrom('lead').select(n).where(where).executeTakeFirstOrThrow()).n)
      : await inBatches(async () => (await db.deleteFrom('lead').where('id', 'in', db.selectFrom('lead').select('id').where(where).limit(RETENTION_BATCH)).executeTakeFirst()).numDeletedRows);
  }
  if (cutoffs.notifications) {
    const where = notificationGone(now, cutoffs.notifications);
    out.notifications = o.dryRun
      ? Number((await db.selectFrom('notification').select(n).where(where).executeTakeFirstOrThrow()).n)
      : await inBatches(async () => (await db.deleteFrom('notification').where('key', 'in', db.selectFrom('notification').select('key').where(where).limit(RETENTION_BATCH)).executeTakeFirst()).numDeletedRows);
  }
  if (cutoffs.jobs) {
    const where = jobGone(now, cutoffs.jobs);
    out.jobs = o.dryRun
      ? Number((await db.selectFrom('job').select(n).where(where).executeTakeFirstOrThrow()).n)
      : await inBatches(async () => (await db.deleteFrom('job').where('id', 'in', db.selectFrom('job').select('id').where(where).limit(RETENTION_BATCH)).executeTakeFirst()).numDeletedRows);
  }
  return out;
}
