// Outbox workers: claim due jobs with a lease, run them, retry with exponential backoff + full jitter
// (honouring Retry-After), and dead-letter what keeps failing.
import { MeridianError } from '../../domain/errors.ts';
import { performance } from 'node:perf_hooks';
import type { ConnectorFailure } from '../../connectors/types.ts';
import { claim, complete, extendLease, reschedule, jobCounts } from '../../store/outbox.ts';
import { setConnectionStatus } from '../hub/connections.ts';
import { appendAudit } from '../../store/audit.ts';
import type { Hub } from '../hub/hub.ts';
import { NOTIFY_STAFF, connectionOf, type Job, type JobResult } from '../../domain/jobs.ts';
import { alertStaff, clinicOfJob } from '../effects/notify.ts';
import { runJob } from './catalogue.ts';

/** A staff alert about a job's fate; failing to send one must never disturb the job's own bookkeeping. */
async function tellStaff(hub: Hub, about: Record<string, unknown>, alert: Parameters<typeof alertStaff>[2]): Promise<void> {
  try {
    await alertStaff(hub, await clinicOfJob(hub.store.db, about), alert);
  } catch (e) {
    hub.log.warn({ err: { message: (e as Error).message } }, 'alerting staff failed');
  }
}


export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 2_000, capMs: 15 * 60_000 };

/** Delay before attempt `attempts + 1`: full jitter over an exponential ceiling, never below Retry-After. */
export function backoffMs(attempts: number, f: ConnectorFailure, p: BackoffPolicy = DEFAULT_BACKOFF, rand = Math.random): number {
  const ceiling = Math.min(p.capMs, p.baseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(rand() * ceiling);
  return Math.max(jittered, f.retryAfterMs ?? 0, 250);
}

/** How long a wake-up waits for others to join it. */
const WAKE_COALESCE_MS = 5;

export interface WorkerOptions {
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  backoff?: BackoffPolicy;
}

export class Worker {
  private running = 0;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private idle: Array<() => void> = [];
  private polling = false;
  private again = false;
  private wakePending = false;
  readonly opts: Required<WorkerOptions>;

  constructor(private hub: Hub, o: WorkerOptions = {}) {
    this.opts = { concurrency: o.concurrency ?? 4, pollMs: o.pollMs ?? 500, leaseMs: o.leaseMs ?? 120_000, backoff: o.backoff ?? DEFAULT_BACKOFF };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.hub.onJobs = () => this.wake();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running > 0 || this.polling) await new Promise<void>((r) => this.idle.push(r));
  }

  /**
   * New jobs were committed. Wakes within a few milliseconds of each other share one poll: under a
   * burst of webhooks the worker claims in batches instead of querying once per webhook.
   */
  wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    if (this.wakePending) return;
    this.wakePending = true;
    this.schedule(WAKE_COALESCE_MS);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    this.wakePending = false;
    if (this.stopped || this.polling) return;
    this.polling = true;
    this.again = false;
    try {
      // Under a burst of webhooks, one job at a time, each followed by a pause (pressure.ts).
      const free = (this.hub.pressure.busy ? 1 : this.opts.concurrency) - this.running;
      if (free > 0) {
        const jobs = await claim(this.hub.store.db, this.hub.store.dialect, this.hub.nodeId, free, this.hub.clock.now(), this.opts.leaseMs);
        for (const j of jobs) {
          this.running++;
          const t0 = performance.now();
          void this.run(j).finally(() => {
            this.running--;
            const pause = this.hub.pressure.pauseAfter(performance.now() - t0);
            if (pause >= 1) setTimeout(() => this.wake(), pause);
            else this.wake();
            this.settle();
          });
        }
        if (jobs.length === free) this.again = true;
      }
    } catch (err) {
      this.hub.log.error({ err: { message: (err as Error).message } }, 'claiming jobs failed');
    } finally {
      this.polling = false;
      this.settle();
      this.schedule(this.again ? 0 : this.opts.pollMs);
    }
  }

  private settle(): void {
    if (this.running === 0 && !this.polling) for (const r of this.idle.splice(0)) r();
  }

  /** Run one job to its outcome. Public for tests that drive jobs step by step. */
  async run(job: Job): Promise<void> {
    const hub = this.hub;
    const endTimer = hub.metrics.jobSeconds.startTimer({ kind: job.kind });
    const now = () => hub.clock.now().toISOString();
    let result: JobResult;
    // The lease is renewed while the job runs (every third of it): a slow job that is alive is not taken for a
    // dead one and run a second time beside it by another worker (a message sent twice, a calendar written twice).
    const leaseMs = this.opts.leaseMs;
    const renew = setInterval(() => {
      extendLease(hub.store.db, job.id, hub.nodeId, new Date(hub.clock.now().getTime() + leaseMs).toISOString()).catch(() => {});
    }, Math.max(50, leaseMs / 3));
    renew.unref();
    try {
      result = await (runJob(hub, job) ?? { ok: false, failure: { class: 'permanent', message: `no handler for job kind ${job.kind}` } });
    } catch (err) {
      if (err instanceof MeridianError && err.code === 'concurrent_change') {
        // Someone else changed the appointment while this job wrote it: run again, reading it afresh.
        result = { ok: false, failure: { class: 'transient', message: err.message } };
      } else {
        result = { ok: false, failure: { class: 'transient', message: `unexpected: ${(err as Error).message}` } };
        hub.log.error({ job: job.id, kind: job.kind, err: { message: (err as Error).message, stack: (err as Error).stack } }, 'job crashed');
      }
    }
    clearInterval(renew);
    endTimer();
    if (result.ok) {
      await complete(hub.store.db, job.id, hub.nodeId, now());
      hub.metrics.jobs.inc({ kind: job.kind, outcome: 'ok' });
      return;
    }
    const f = result.failure;
    if (f.class === 'auth' && result.connectionId) {
      const was = await hub.store.db.selectFrom('connection').select('status').where('id', '=', result.connectionId).executeTakeFirst();
      await setConnectionStatus(hub, result.connectionId, 'needs_reauth', f.message);
      if (was && was.status !== 'needs_reauth') {
        // Once per lapse: staff see it in the audit log and on /metrics until credentials are renewed.
        await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
          at: now(), actor: `worker:${hub.nodeId}`, action: 'connection.needs_reauth', entityType: 'connection', entityId: result.connectionId!, meta: { reason: f.message },
        }]));
        hub.metrics.reauth.inc({ connection: result.connectionId });
        await tellStaff(hub, { connectionId: result.connectionId }, {
          type: 'needs_reauth', ref: `${result.connectionId}@${now()}`,
          summary: `Connection ${result.connectionId} lost its authorisation (${f.message}). Its jobs wait until it is reconnected.`,
        });
      }
      hub.log.warn({ connection: result.connectionId }, 'connection needs reconnecting; its jobs wait');
    }
    // Throttling and a lost authorisation do not use up the job's attempts: they wait.
    const countAttempt = f.class !== 'throttled' && f.class !== 'auth';
    const dead = f.class === 'permanent' || (countAttempt && job.attempts >= job.maxAttempts);
    const delay = f.class === 'auth' ? Math.max(f.retryAfterMs ?? 0, 5 * 60_000) : backoffMs(job.attempts, f, this.opts.backoff);
    const runAt = new Date(hub.clock.now().getTime() + delay).toISOString();
    // A job waiting on a connection it does not act for (a message on a lapsed mail account) is filed under it.
    const waitsOn = f.class === 'auth' && !connectionOf(job) ? result.connectionId : undefined;
    await reschedule(hub.store.db, job.id, hub.nodeId, { error: `${f.class}: ${f.message}`, runAt, dead, countAttempt, waitsOn }, now());
    hub.metrics.jobs.inc({ kind: job.kind, outcome: dead ? 'dead' : f.class });
    // A staff alert that cannot be sent is not alerted again (it would fail the same way).
    if (dead && job.kind !== NOTIFY_STAFF) {
      await tellStaff(hub, { ...job.payload, connectionId: result.connectionId }, {
        type: 'dead_letter', ref: `${job.id}@${now()}`, summary: `Job ${job.id} (${job.kind}) failed for good after ${job.attempts} attempt(s): ${f.class}: ${f.message}. Retry it from the jobs list once the cause is fixed.`,
      });
    }
    hub.log.warn({ job: job.id, kind: job.kind, class: f.class, status: f.status, attempts: job.attempts, dead }, dead ? 'job dead-lettered' : 'job will retry');
  }
}

/** Run every due job until none is left (CLI and tests). Returns how many ran. */
export async function drain(hub: Hub, o: { maxRounds?: number; worker?: Worker } = {}): Promise<number> {
  const w = o.worker ?? new Worker(hub);
  let n = 0;
  for (let round = 0; round < (o.maxRounds ?? 1000); round++) {
    const jobs = await claim(hub.store.db, hub.store.dialect, hub.nodeId, 8, hub.clock.now(), w.opts.leaseMs);
    if (jobs.length === 0) break;
    await Promise.all(jobs.map((j) => w.run(j)));
    n += jobs.length;
  }
  return n;
}

export async function updateJobGauges(hub: Hub): Promise<void> {
  const counts = await jobCounts(hub.store.db);
  for (const [state, n] of Object.entries(counts)) hub.metrics.jobsWaiting.set({ state }, n);
}
