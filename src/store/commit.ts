// Group commit for SQLite: concurrent units of work (webhook ingests) that arrive while a commit is
// in progress are run in the next transaction together, each inside its own savepoint — one unit
// failing rolls back only itself. Every caller's promise settles only after the shared COMMIT, so an
// acknowledged delivery is always committed. SQLite writes each touched page once per commit, and with
// synchronous = FULL (the default, db.ts) fsyncs the write-ahead log once per commit, so a batch writes and
// syncs far less than the same units committed one by one: the fsync is shared by the whole batch. PostgreSQL runs units in parallel
// transactions on its pool instead, each appending its audit entries last (withDeferredAudit), so the
// chain's head lock that serialises them is held as briefly as possible.
import type { Kysely, Transaction } from 'kysely';
import type { DB } from './schema.ts';
import type { Dialect } from './migrations.ts';
import { appendAudit, holdAudit, withDeferredAudit, type AuditInput } from './audit.ts';

export type Work<T> = (trx: Transaction<DB>) => Promise<T>;

interface Pending {
  work: Work<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private running = false;
  /** Sizes of the batches committed (for metrics and tests). */
  onBatch?: (size: number) => void;

  constructor(private db: Kysely<DB>, private dialect: Dialect, private maxBatch = 64) {}

  run<T>(work: Work<T>): Promise<T> {
    if (this.dialect !== 'sqlite') return this.db.transaction().execute((trx) => withDeferredAudit(trx, this.dialect, work));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work: work as Work<unknown>, resolve: resolve as (v: unknown) => void, reject });
      // Start on the next turn of the event loop, not now: better-sqlite3 runs a whole unit without
      // yielding, so a batch started at once would never hold more than the one unit. Every request
      // read in this turn of the loop joins the same commit.
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /**
   * Units that need not answer anyone soon (the inbox's backlog). On SQLite they join the group commit
   * like any others; on PostgreSQL they share ONE transaction, each in its own savepoint, with all their
   * audit entries appended at the end: the chain's head is locked once for the batch, not once per unit.
   */
  async runBatch<T>(works: Work<T>[]): Promise<PromiseSettledResult<T>[]> {
    if (this.dialect === 'sqlite' || works.length === 1) return Promise.allSettled(works.map((w) => this.run(w)));
    const held: AuditInput[][] = works.map(() => []);
    return inSavepoints(this.db, works, {
      unit: (sp, work, i) => holdAudit(sp, held[i], work),
      // Only the entries of the units kept: a rolled-back unit leaves none.
      beforeCommit: (trx, settled) => appendAudit(trx, this.dialect, settled.flatMap((s, i) => (s.status === 'fulfilled' ? held[i] : []))),
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) await this.commitBatch(this.queue.splice(0, this.maxBatch));
    } finally {
      this.running = false;
    }
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    this.onBatch?.(batch.length);
    if (batch.length === 1) {
      const [one] = batch;
      await this.db.transaction().execute(one.work).then(one.resolve, one.reject);
      return;
    }
    let settled: PromiseSettledResult<unknown>[];
    try {
      settled = await inSavepoints(this.db, batch.map((b) => b.work));
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const o = settled[i];
      if (o.status === 'fulfilled') item.resolve(o.value);
      else item.reject(o.reason);
    });
  }
}

/**
 * Run `works` in ONE transaction, each in its own savepoint: a unit that throws rolls back alone and
 * is reported rejected. `unit` wraps how each runs; `beforeCommit` adds the last statements. Rejects,
 * with everything rolled back, when the transaction itself fails.
 */
async function inSavepoints<T>(db: Kysely<DB>, works: Work<T>[], o: {
  unit?: (sp: Transaction<DB>, work: Work<T>, i: number) => Promise<T>;
  beforeCommit?: (trx: Transaction<DB>, settled: PromiseSettledResult<T>[]) => Promise<void>;
} = {}): Promise<PromiseSettledResult<T>[]> {
  const trx = await db.startTransaction().execute();
  try {
    const settled: PromiseSettledResult<T>[] = [];
    for (const [i, work] of works.entries()) {
      const name = `unit${i}`;
      const sp = await trx.savepoint(name).execute();
      try {
        const value = await (o.unit ? o.unit(sp, work, i) : work(sp));
        await sp.releaseSavepoint(name).execute();
        settled.push({ status: 'fulfilled', value });
      } catch (reason) {
        await sp.rollbackToSavepoint(name).execute();
        await sp.releaseSavepoint(name).execute();
        settled.push({ status: 'rejected', reason });
      }
    }
    await o.beforeCommit?.(trx, settled);
    await trx.commit().execute();
    return settled;
  } catch (error) {
    await trx.rollback().execute().catch(() => undefined);
    throw error;
  }
}
