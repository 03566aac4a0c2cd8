// The server's background work, in one place: the outbox worker, the webhook inbox (and its scan for
// deliveries a dead process left unapplied), the token-age check at start, pruning of finished jobs, the
// periodic drift sweeps, the quick calendar checks of calendars that do not push, and the periodic re-check
// of source polls. `serve` starts it beside its HTTP
// server; tests and the bench that want a server's behaviour without HTTP start the same thing, so that
// what they exercise is what production runs.
//
// This file sits above every room (it may import from any of them) and nothing in src/engine imports it.
import { getTarget } from '../connectors/registry.ts';
import { enqueue, pruneDone } from '../store/outbox.ts';
import type { Hub } from './hub/hub.ts';
import { Worker, type BackoffPolicy } from './jobs/worker.ts';
import { inboxOf } from './inbound/ingest.ts';
import { checkTokenAge } from './sync/sweep.ts';
import { calendarCheckJob, sweepJob } from '../domain/jobs.ts';
import type { TargetConnector } from '../connectors/types.ts';
import { pruneRetention } from './sync/retention.ts';
import { schedulePolls } from './sync/poll.ts';
import { INACTIVE } from '../store/repo.ts';
import { reconcileSubscriptions } from './connect/webhooks.ts';
import { reconcilePush } from './sync/push.ts';

export interface RuntimeOptions {
  /** Jobs run at once (default MERIDIAN_WORKERS, else 4; anything not a positive number means 4). */
  workers?: number;
  /** How long a claimed job is leased before another process may run it (default MERIDIAN_JOB_LEASE_SECONDS, else 120 s). */
  leaseMs?: number;
  /** Minutes between drift sweeps of every push target (default MERIDIAN_SWEEP_MINUTES, else 60; 0 = off). */
  sweepMinutes?: number;
  /** How often push channels are checked (opened, renewed, stopped), in minutes; 0 = no push. */
  pushCheckMinutes?: number;
  /**
   * Minutes between quick calendar checks (only what changed) of every calendar target that does not push
   * (default MERIDIAN_CHECK_MINUTES, else 5; 0 = off). The full sweeps go on beside them.
   */
  checkMinutes?: number;
  /** How often the source polls are re-checked (default 10 minutes). */
  pollRecheckMs?: number;
  /**
   * How often finished jobs are pruned and the retention policy applied (default hourly), and how long done
   * jobs are kept (default a week; `retention.jobs` in meridian.yaml then also removes dead ones).
   */
  pruneEveryMs?: number;
  keepDoneMs?: number;
  /** How often an idle worker looks for due jobs, and its retry backoff (the Worker's defaults otherwise). */
  workerPollMs?: number;
  backoff?: BackoffPolicy;
}

export interface Runtime {
  readonly worker: Worker;
  readonly inbox: ReturnType<typeof inboxOf>;
  /** Stop the timers, then wait for the inbox and the worker to finish what they are applying or running. */
  stop(): Promise<void>;
}

/** A number from the environment, or undefined when the variable is unset (so a default applies). */
function envNumber(hub: Hub, name: string): number | undefined {
  const v = hub.env[name];
  return v === undefined ? undefined : Number(v);
}

/**
 * Whether a connection's platform gets the quick calendar check: a calendar target that reads changes and is
 * not served by push (a connector with `push` is notified of changes instead). Asked at each
 * scheduling, so a connector that gains `push` leaves the quick checks then.
 */
export function needsQuickCheck(platform: string, lookup: (platform: string) => TargetConnector | undefined = getTarget): boolean {
  const t = lookup(platform);
  return Boolean(t?.client && t.descriptor.kind === 'calendar' && t.descriptor.capabilities.readChanges && !t.push);
}

/**
 * Start all of the server's background work on `hub`. Resolves once the work that `serve` finishes before
 * announcing itself is done (the token-age check and the first scheduling of polls).
 */
export async function startRuntime(hub: Hub, o: RuntimeOptions = {}): Promise<Runtime> {
  const workerCount = o.workers ?? envNumber(hub, 'MERIDIAN_WORKERS') ?? 4;
  // A job claimed by a process that dies (SIGKILL, a lost machine) runs again once its lease lapses (default 120 s).
  const leaseMs = o.leaseMs ?? (envNumber(hub, 'MERIDIAN_JOB_LEASE_SECONDS') ?? 120) * 1000;
  const worker = new Worker(hub, {
    concurrency: Number.isFinite(workerCount) && workerCount > 0 ? workerCount : 4,
    leaseMs: Number.isFinite(leaseMs) && leaseMs > 0 ? leaseMs : 120_000,
    ...(o.workerPollMs !== undefined ? { pollMs: o.workerPollMs } : {}),
    ...(o.backoff ? { backoff: o.backoff } : {}),
  });
  worker.start();
  // Deliveries acknowledged but not applied when a process died are applied now (and found later, if
  // another node dies).
  const inbox = inboxOf(hub);
  inbox.start();

  // Periodic tasks still running are awaited by stop(), so that the store is not closed under them.
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>): void => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, task: () => Promise<unknown>): void => {
    const t = setInterval(() => track(task()), ms);
    // Background timers never keep the process alive on their own.
    t.unref();
    timers.push(t);
  };

  // After a stop, some refresh tokens may be close to their inactivity limit: say so at once.
  for (const c of await hub.store.db.selectFrom('connection').select('id').where('status', 'not in', [...INACTIVE]).execute()) {
    await checkTokenAge(hub, c.id).catch((e: Error) => hub.log.warn({ connection: c.id, err: { message: e.message } }, 'checking the token age failed'));
  }

  // Webhook subscriptions made for another public URL (the clinic moved Meridian) are made again for today's.
  track(reconcileSubscriptions(hub)
    .then((n) => { if (n) hub.log.info({ subscriptions: n }, 'webhook subscriptions made again for the new public URL'); })
    .catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'renewing webhook subscriptions failed')));

  // Calendar push (issue 18): channels opened, renewed before they end, replaced for a new public URL, stopped for
  // calendars no longer written to — at start, then every MERIDIAN_PUSH_CHECK_MINUTES (default 5; 0 = push off).
  const pushMinutes = o.pushCheckMinutes ?? envNumber(hub, 'MERIDIAN_PUSH_CHECK_MINUTES') ?? 5;
  if (pushMinutes > 0) {
    const checkPush = () => reconcilePush(hub).catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'checking push channels failed'));
    track(checkPush());
    every(pushMinutes * 60_000, checkPush);
  }

  // Finished jobs are kept a week for inspection, then forgotten (dead ones stay until handled).
  const keepDoneMs = o.keepDoneMs ?? 7 * 86_400_000;
  every(o.pruneEveryMs ?? 3_600_000, () =>
    pruneDone(hub.store.db, new Date(hub.clock.now().getTime() - keepDoneMs).toISOString()).catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'pruning jobs failed')));
  // Retention: webhook and lead bodies, leads, notification logs and finished jobs past their
  // period are deleted, so patients' data is not kept without end.
  const prune = () => pruneRetention(hub).catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'retention pruning failed'));
  every(o.pruneEveryMs ?? 3_600_000, prune);
  // Also a minute after start, so a server restarted more often than hourly still prunes.
  const first = setTimeout(() => track(prune()), Math.min(60_000, o.pruneEveryMs ?? 60_000));
  first.unref();
  timers.push(first);

  // Drift repair: every push target is read back periodically (MERIDIAN_SWEEP_MINUTES, default 60; 0 = off).
  const sweepMinutes = o.sweepMinutes ?? envNumber(hub, 'MERIDIAN_SWEEP_MINUTES') ?? 60;
  if (sweepMinutes > 0) {
    every(sweepMinutes * 60_000, () => (async () => {
      const conns = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('status', '=', 'active').execute();
      const jobs = conns.filter((c) => getTarget(c.platform)?.descriptor.capabilities.push).map((c) => sweepJob(c.id));
      if (jobs.length) await enqueue(hub.store.db, jobs, hub.clock.now().toISOString());
      hub.onJobs();
    })().catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'scheduling drift sweeps failed')));
  }

  // Quick calendar checks: calendars that do not push (connectors without `push`) are asked what changed every few
  // minutes (MERIDIAN_CHECK_MINUTES, default 5; 0 = off), so a practitioner's own edit is seen within minutes
  // rather than at the hourly sweep. A check that finds nothing costs as little as the connector allows (one request for some).
  const checkMinutes = o.checkMinutes ?? envNumber(hub, 'MERIDIAN_CHECK_MINUTES') ?? 5;
  if (checkMinutes > 0) {
    every(checkMinutes * 60_000, () => (async () => {
      const conns = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('status', '=', 'active').execute();
      const jobs = conns.filter((c) => needsQuickCheck(c.platform)).map((c) => calendarCheckJob(c.id));
      if (jobs.length) await enqueue(hub.store.db, jobs, hub.clock.now().toISOString());
      hub.onJobs();
    })().catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'scheduling calendar checks failed')));
  }

  // Periodic synchronisation: each polling connection has one pending `source.poll` job that queues the
  // next; this re-check only picks up connections added since (and restarts a chain a crash broke).
  const queuePolls = () => schedulePolls(hub).then(() => hub.onJobs()).catch((e: Error) => hub.log.warn({ err: { message: e.message } }, 'scheduling polls failed'));
  await queuePolls();
  every(o.pollRecheckMs ?? 10 * 60_000, queuePolls);

  let stopping: Promise<void> | undefined;
  return {
    worker,
    inbox,
    // Same order as `serve` always had: timers first, then the inbox (what it applies enqueues jobs), then
    // the worker. Calling stop() twice waits for the one stop.
    stop: () => (stopping ??= (async () => {
      for (const t of timers) clearInterval(t);
      await Promise.all(inFlight);
      await inbox.stop();
      await worker.stop();
    })()),
  };
}
