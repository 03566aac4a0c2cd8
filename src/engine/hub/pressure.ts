// Ingest pressure. Under a burst of webhooks (a platform re-sending a day of deliveries after an outage,
// say) the one thread should go first to acknowledging them: each is durable once stored, and a platform
// that waits too long gives up or sends again. So while deliveries arrive faster than `busyRate` per
// second, background work (applying stored deliveries, running jobs) pauses after each step for long
// enough to leave receipts (1 − share) of the time, all consumers together. Below that rate nothing is
// paced, nor once a delivery has waited `maxDeferMs` for its apply: then the backlog is worked off at
// full speed and the answers slow down instead (they are still given once a delivery is stored).
import { performance } from 'node:perf_hooks';

const BUCKET_MS = 100;

export class IngestPressure {
  private bucketStart = 0;
  private current = 0;
  private previous = 0;
  private resumeAt = 0;

  private oldestWaiting: number | undefined;

  constructor(readonly busyRate = 1_000, readonly share = 0.1, readonly maxDeferMs = 30_000, private now: () => number = () => performance.now()) {}

  /** When the oldest delivery still waiting to be applied arrived (`performance.now()`), if any. */
  noteBacklog(since: number | undefined): void {
    this.oldestWaiting = since;
  }

  /** One delivery received. */
  receipt(): void {
    this.roll();
    this.current++;
  }

  /** Deliveries per second over the last 100–200 ms. */
  get rate(): number {
    this.roll();
    const span = BUCKET_MS + (this.now() - this.bucketStart);
    return ((this.previous + this.current) * 1000) / span;
  }

  /** A burst is on, and no delivery has waited for its apply longer than `maxDeferMs` (then applying comes first again). */
  get busy(): boolean {
    if (this.oldestWaiting !== undefined && this.now() - this.oldestWaiting > this.maxDeferMs) return false;
    return this.rate > this.busyRate;
  }

  /**
   * How long background work should wait after a step that took `stepMs`. The budget is shared: every
   * consumer's step pushes back one common resume time, so together they keep to `share`.
   */
  pauseAfter(stepMs: number): number {
    if (!this.busy) return 0;
    const t = this.now();
    this.resumeAt = Math.max(this.resumeAt, t) + stepMs * (1 / this.share - 1);
    return this.resumeAt - t;
  }

  private roll(): void {
    const t = this.now();
    const elapsed = t - this.bucketStart;
    if (elapsed < BUCKET_MS) return;
    this.previous = elapsed < 2 * BUCKET_MS ? this.current : 0;
    this.current = 0;
    this.bucketStart = elapsed < 2 * BUCKET_MS ? this.bucketStart + BUCKET_MS : t;
  }
}
