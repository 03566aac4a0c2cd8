// The webhook inbox. A verified delivery is acknowledged once it is committed as a `delivery` row in
// state 'received'; it is then applied (appointment, audit, outbox jobs) in its own transaction, which
// also moves the row on, so a delivery is applied exactly once even across crashes and nodes.
//
// While the hub keeps up, the answer waits for that apply and reports its outcome, as a platform's
// test delivery or a curious admin would like. Under a burst the answer does not wait: receipts take
// priority (one multi-row INSERT per turn of the event loop) and the apply backlog is worked off one
// delivery per turn while receipts keep arriving (paced by pressure.ts when they come faster than
// about a thousand a second), in batches once they stop. The
// backlog is bounded: past `maxWaiting` a delivery is refused as busy (with a time to retry after) before anything
// is stored, so the platform keeps it and sends it again.
//
// Rows left 'received' by a process that died (or by another node) are found by a periodic scan.
import { performance } from 'node:perf_hooks';
import type { Insertable } from 'kysely';
import type { DeliveryTable } from '../../store/schema.ts';
import type { Work } from '../../store/commit.ts';
import type { Hub } from '../hub/hub.ts';

/** An answer waits for its apply only while fewer than this many deliveries are ahead of it. */
export const WAIT_AHEAD = 4;
/** …and never longer than this. */
export const WAIT_MS = 2_000;
/** Deliveries applied per turn of the event loop while receipts keep arriving. */
const BUSY_STEP = 1;
/** Deliveries waiting to be applied before new ones are refused (MERIDIAN_INBOX_MAX). */
export const DEFAULT_MAX_WAITING = 50_000;
/** Tries of one delivery before it is marked failed for staff (a deadlock or lost connection is retried). */
const MAX_ATTEMPTS = 5;
const RECEIPT_BATCH = 256;
const SCAN_MS = 1_000;
/** A 'received' row older than this that no local queue holds is an orphan (its process died). */
const ORPHAN_AGE_MS = 5_000;
const SCAN_LIMIT = 500;

export type Applied<R> = { applied: true; status: string; results: R[] } | { applied: false; reason: 'elsewhere' | 'failed' | 'gone'; error?: string };

/** How a stored delivery is applied: the unit of work for one transaction (which checks that the row is
 *  still 'received'), or at once an outcome when there is nothing to run; `applied` sees each outcome. */
export interface ApplyStored<R> {
  prepare(hub: Hub, deliveryRowId: string, connectionId: string): Promise<Work<Applied<R>> | Applied<R>>;
  applied?(hub: Hub, outcome: Applied<R>): void;
}

interface Entry<R> {
  id: string;
  connectionId: string;
  /** performance.now() when it was queued. */
  since: number;
  attempts: number;
  waiters: Array<(a: Applied<R> | undefined) => void>;
}

interface Receipt {
  row: Insertable<DeliveryTable>;
  resolve(inserted: boolean): void;
  reject(e: unknown): void;
}

export class Inbox<R> {
  private queue: Entry<R>[] = [];
  private byId = new Map<string, Entry<R>>();
  /** Being applied now. */
  private inProgress = new Set<Entry<R>>();
  private draining = false;
  private receipts: Receipt[] = [];
  private flushing = false;
  private receiptCount = 0;
  private storing = 0;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning = false;
  private started = false;
  private idleWaiters: Array<() => void> = [];
  readonly maxWaiting: number;

  constructor(private hub: Hub, private apply: ApplyStored<R>, o: { maxWaiting?: number } = {}) {
    const env = Number(hub.env.MERIDIAN_INBOX_MAX);
    this.maxWaiting = o.maxWaiting ?? (Number.isInteger(env) && env > 0 ? env : DEFAULT_MAX_WAITING);
  }

  /** Deliveries received by this process (or picked up by its scan) and not yet applied. */
  get waiting(): number {
    return this.storing + this.queue.length + this.inProgress.size;
  }

  get full(): boolean {
    return this.waiting >= this.maxWaiting;
  }

  /**
   * Store a delivery row. Rows arriving in the same turn of the event loop share one INSERT (and, on
   * SQLite, the group commit); resolves false when (connection, deliveryId) was already stored.
   */
  store(row: Insertable<DeliveryTable>): Promise<boolean> {
    this.storing++;
    const done = () => void this.storing--;
    return new Promise<boolean>((resolve, reject) => {
      this.receipts.push({ row, resolve, reject });
      this.receiptCount++;
      this.hub.pressure.receipt();
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    }).finally(done);
  }

  private async flush(): Promise<void> {
    try {
      while (this.receipts.length) {
        const batch = this.receipts.splice(0, RECEIPT_BATCH);
        try {
          await this.insert(batch);
        } catch (e) {
          // One row the database refuses must not fail the others that shared its statement.
          if (batch.length === 1) batch[0].reject(e);
          else for (const b of batch) await this.insert([b]).catch((e1: unknown) => b.reject(e1));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async insert(batch: Receipt[]): Promise<void> {
    const insert = (db: Hub['store']['db']) => db.insertInto('delivery').values(batch.map((b) => b.row))
      .onConflict((oc) => oc.columns(['connection_id', 'delivery_id']).doNothing())
      .returning('id').execute();
    // One statement is atomic on its own: PostgreSQL needs no BEGIN/COMMIT round trips for it;
    // SQLite runs it in the group commit with whatever else this turn brought.
    const rows = this.hub.store.dialect === 'sqlite' ? await this.hub.commits.run((trx) => insert(trx)) : await insert(this.hub.store.db);
    const stored = new Set(rows.map((r) => r.id));
    for (const b of batch) b.resolve(stored.has(b.row.id as string));
  }

  /**
   * Queue a stored delivery for its apply. `ahead`: how many were waiting before it (its answer waits
   * for the outcome only when few were); `result()` waits for that outcome, at most WAIT_MS.
   */
  enqueue(id: string, connectionId: string): { ahead: number; result: () => Promise<Applied<R> | undefined> } {
    const ahead = this.waiting;
    let e = this.byId.get(id);
    if (!e) {
      e = this.entry(id, connectionId);
      this.queue.push(e);
      this.kick();
    }
    const entry = e;
    return { ahead, result: () => this.outcomeOf(entry, WAIT_MS) };
  }

  /**
   * Apply these stored deliveries before anything else queued and wait for them (a staff edit does, so
   * that a delivery that arrived before the edit is not applied after it). Resolves with each outcome,
   * undefined for one not applied within `ms`.
   */
  expedite(rows: { id: string; connectionId: string }[], ms = 30_000): Promise<(Applied<R> | undefined)[]> {
    const waits = rows.map((r) => {
      const e = this.byId.get(r.id) ?? this.entry(r.id, r.connectionId);
      const i = this.queue.indexOf(e);
      if (i >= 0) this.queue.splice(i, 1);
      if (!this.inProgress.has(e)) this.queue.unshift(e);
      return this.outcomeOf(e, ms);
    });
    this.kick();
    return Promise.all(waits);
  }

  private entry(id: string, connectionId: string): Entry<R> {
    const e: Entry<R> = { id, connectionId, since: performance.now(), attempts: 0, waiters: [] };
    this.byId.set(id, e);
    return e;
  }

  /** The outcome of `e`'s apply, or undefined when it has not come within `ms`. */
  private outcomeOf(e: Entry<R>, ms: number): Promise<Applied<R> | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ms);
      e.waiters.push((a) => {
        clearTimeout(timer);
        resolve(a);
      });
    });
  }

  /** Begin looking for deliveries that a dead process left unapplied: now, then every second. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.scan(true);
    this.scanTimer = setInterval(() => void this.scan(false), SCAN_MS);
    this.scanTimer.unref();
  }

  /** Stop scanning and wait for what is being applied (the rest stays 'received' in the store). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.queue.length = 0;
    if (this.inProgress.size > 0 || this.scanning) await this.idle();
  }

  /** Resolves once nothing is queued or being applied (tests, shutdown). */
  idle(): Promise<void> {
    if (this.waiting === 0 && !this.draining && !this.scanning) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private settle(): void {
    if (this.waiting === 0 && !this.draining && !this.scanning) for (const r of this.idleWaiters.splice(0)) r();
  }

  private async scan(all: boolean): Promise<void> {
    if (this.scanning || this.queue.length >= SCAN_LIMIT) return;
    this.scanning = true;
    try {
      let q = this.hub.store.db.selectFrom('delivery').select(['id', 'connection_id']).where('status', '=', 'received');
      if (!all) q = q.where('received_at', '<', new Date(this.hub.clock.now().getTime() - ORPHAN_AGE_MS).toISOString());
      const rows = await q.orderBy('received_at').limit(SCAN_LIMIT).execute();
      let found = 0;
      for (const r of rows) {
        if (this.byId.has(r.id)) continue;
        this.enqueue(r.id, r.connection_id);
        found++;
      }
      if (found) this.hub.log.info({ deliveries: found }, 'applying stored deliveries left unapplied');
    } catch (err) {
      this.hub.log.warn({ err: { message: (err as Error).message } }, 'looking for unapplied deliveries failed');
    } finally {
      this.scanning = false;
      this.settle();
    }
  }

  private kick(): void {
    if (this.draining || this.queue.length === 0) return;
    this.draining = true;
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    const sqlite = this.hub.store.dialect === 'sqlite';
    try {
      let seen = this.receiptCount;
      while (this.queue.length) {
        // Receipts came in during the last step: apply the smallest step and give the event loop back,
        // so that the next requests are read (and stored) before more applying. Otherwise apply a batch.
        const busy = this.receiptCount !== seen;
        seen = this.receiptCount;
        this.hub.pressure.noteBacklog(this.queue[0]?.since); // first in, first out: the oldest (near enough)
        const t0 = performance.now();
        await this.applyBatch(this.queue.splice(0, busy ? BUSY_STEP : sqlite ? 8 : 6));
        this.hub.onJobs();
        // Under a burst, pause so that receipts keep most of the thread (pressure.ts).
        const pause = this.hub.pressure.pauseAfter(performance.now() - t0);
        await new Promise((r) => (pause >= 1 ? setTimeout(r, pause) : setImmediate(r)));
      }
    } finally {
      this.draining = false;
      if (this.queue.length === 0) this.hub.pressure.noteBacklog(undefined);
      this.settle();
      this.kick();
    }
  }

  /** One transaction for the batch where the store allows (GroupCommitter.runBatch); a unit that fails is retried. */
  private async applyBatch(batch: Entry<R>[]): Promise<void> {
    for (const e of batch) this.inProgress.add(e);
    try {
      await this.applyEntries(batch);
    } finally {
      for (const e of batch) this.inProgress.delete(e);
    }
  }

  private async applyEntries(batch: Entry<R>[]): Promise<void> {
    const prepared = await Promise.all(batch.map(async (e) => {
      try {
        return { e, step: await this.apply.prepare(this.hub, e.id, e.connectionId) };
      } catch (err) {
        return { e, error: err };
      }
    }));
    const runs = prepared.filter((p): p is { e: Entry<R>; step: Work<Applied<R>> } => typeof p.step === 'function');
    let settled: PromiseSettledResult<Applied<R>>[];
    try {
      settled = await this.hub.commits.runBatch(runs.map((r) => r.step));
    } catch (err) {
      settled = runs.map(() => ({ status: 'rejected', reason: err }));
    }
    const byEntry = new Map(runs.map((r, i) => [r.e, settled[i]]));
    for (const p of prepared) {
      const s = byEntry.get(p.e);
      if (s?.status === 'fulfilled') this.finish(p.e, s.value);
      else if (s?.status === 'rejected') await this.failed(p.e, s.reason);
      else if ('error' in p) await this.failed(p.e, p.error);
      else this.finish(p.e, p.step as Applied<R>);
    }
  }

  private finish(e: Entry<R>, outcome: Applied<R>): void {
    this.apply.applied?.(this.hub, outcome);
    this.byId.delete(e.id);
    for (const w of e.waiters) w(outcome);
  }

  private async failed(e: Entry<R>, err: unknown): Promise<void> {
    e.attempts++;
    const message = (err as Error)?.message ?? String(err);
    if (e.attempts < MAX_ATTEMPTS) {
      this.hub.log.warn({ delivery: e.id, attempts: e.attempts, err: { message } }, 'applying a delivery failed; trying again');
      this.queue.push(e);
      return;
    }
    this.hub.log.error({ delivery: e.id, err: { message, stack: (err as Error)?.stack } }, 'applying a delivery failed; kept for staff');
    await this.hub.store.db.updateTable('delivery').set({ status: 'failed', error: `could not be applied: ${message.slice(0, 500)}` })
      .where('id', '=', e.id).where('status', '=', 'received').execute()
      .catch((e2: Error) => this.hub.log.error({ err: { message: e2.message } }, 'recording a failed delivery failed'));
    this.finish(e, { applied: false, reason: 'failed', error: message });
  }
}
