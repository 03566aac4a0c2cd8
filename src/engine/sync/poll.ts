// Periodic synchronisation of a booking source: list the bookings of a window through the connector
// and apply each through the same path as a webhook (dedupe, ordering, audit, outbox), so a missed
// webhook is repaired by the next poll. Where a listing holds every live booking (feeds, some polled platforms), a
// booking it no longer lists is cancelled — unless the poll would cancel too much at once: then the
// cancellations are held for staff approval (a feed that comes back empty must not wipe the week).
//
// One poll per connection at a time across every process (a lease on the connection row); each
// polling connection is scheduled on its own interval with jitter as a `source.poll` job that queues
// the next one; `meridian sync` and `POST /connections/{id}/sync` run one on demand.
import { createHash, randomUUID } from 'node:crypto';
import { getSource } from '../../connectors/registry.ts';
import { ConnectorError, NotModified, type SourceConnector } from '../../connectors/types.ts';
import { toUtc } from '../../domain/time.ts';
import type { SourceChange } from '../../domain/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { SOURCE_POLL, type Job, type JobResult, type NewJob } from '../../domain/jobs.ts';
import { enqueue } from '../../store/outbox.ts';
import { dbInstant } from '../../store/repo.ts';
import { connectionContext, loadConnection, type LoadedConnection } from '../hub/connections.ts';
import { MeridianError } from '../../domain/errors.ts';
import type { Hub } from '../hub/hub.ts';
import { applyChanges } from '../inbound/ingest.ts';
import { staffAlertJobs } from '../effects/notify.ts';

export const DEFAULT_PAST_DAYS = 7;
export const DEFAULT_FUTURE_DAYS = 90;
/** Hold cancellations when a poll would cancel more than this share of the upcoming appointments… */
export const DEFAULT_HOLD_SHARE = 0.2;
/** …and at least this many (a patient cancelling one of three visits is not a mass change). */
export const DEFAULT_HOLD_MINIMUM = 3;
const LEASE_MS = 15 * 60_000;

export function pollJob(connectionId: string, o: { runAt?: string; scheduled?: boolean } = {}): NewJob<typeof SOURCE_POLL> {
  return {
    kind: SOURCE_POLL, payload: { connectionId, ...(o.scheduled ? { scheduled: true } : {}) }, dedupeKey: `${SOURCE_POLL}:${connectionId}`,
    maxAttempts: 5, ...(o.runAt ? { runAt: o.runAt } : {}),
  };
}

export interface PollReport {
  listed: number;
  outcomes: Record<string, number>;
  /** The platform said nothing changed since the last poll (HTTP 304). */
  notModified?: boolean;
  /** Another process is polling this connection right now: nothing was done. */
  busy?: boolean;
  /** Cancellations held back for staff approval. */
  held?: { id: string; cancellations: number; upcoming: number };
}

export interface HeldSummary {
  cancellations: number;
  upcoming: number;
  listedLive: number;
  /** The appointments the held changes would cancel (ids and times, no patient data). */
  appointments: { id: string; start: string; practitionerId: string }[];
}

/** How often a connection is polled: its `pollMinutes`, else hourly for webhook platforms with API credentials, else every 15 minutes. 0 = never. */
export function pollMinutesFor(conn: LoadedConnection): number {
  const src = conn.connector as SourceConnector;
  if (conn.connector.descriptor.role !== 'source' || !src.list) return 0;
  const set = Number(conn.record.config.pollMinutes);
  if (conn.record.config.pollMinutes !== undefined && Number.isFinite(set) && set >= 0) return set;
  if (!src.descriptor.capabilities.webhooks) return 15;
  // API credentials: one of the descriptor's API (or auth) sets complete, else every auth field set.
  const sets = src.descriptor.apiSets ?? src.descriptor.authSets ?? [src.descriptor.auth.map((a) => a.key)];
  return sets.some((set) => set.every((k) => conn.secrets[k])) ? 60 : 0;
}

/**
 * The lease is held by `owner`: this process, or the `source.poll` job running the poll. A job whose process
 * died mid-poll runs again once its job lease lapses, and may then take back the lease it held instead of
 * waiting out LEASE_MS — else one process killed mid-poll stops the connection's polls for 15 minutes.
 */
async function takeLease(hub: Hub, id: string, owner: string): Promise<boolean> {
  const now = hub.clock.now();
  const r = await hub.store.db.updateTable('connection')
    .set({ poll_lease_until: new Date(now.getTime() + LEASE_MS).toISOString(), poll_lease_by: owner })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('poll_lease_until', 'is', null), eb('poll_lease_until', '<', now.toISOString()), eb('poll_lease_by', '=', owner)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

async function dropLease(hub: Hub, id: string, owner: string): Promise<void> {
  await hub.store.db.updateTable('connection').set({ poll_lease_until: null, poll_lease_by: null }).where('id', '=', id).where('poll_lease_by', '=', owner).execute();
}

export interface PollOptions {
  onProgress?: (listed: number) => void;
  /** Start the window here instead of `pollPastDays` ago (`meridian sync --since`). */
  since?: Date;
  /** Who holds the poll lease (default: this process). */
  leaseOwner?: string;
}

export async function pollConnection(hub: Hub, connectionId: string, o: PollOptions = {}): Promise<PollReport> {
  const conn = await loadConnection(hub, connectionId);
  const src = conn.connector as SourceConnector;
  if (conn.connector.descriptor.role !== 'source' || !src.list) throw new ConnectorError({ class: 'permanent', message: `${conn.connector.descriptor.displayName} cannot be polled` });
  const owner = o.leaseOwner ?? hub.nodeId;
  if (!(await takeLease(hub, connectionId, owner))) return { listed: 0, outcomes: {}, busy: true };
  try {
    return await pollLeased(hub, conn, src, o);
  } finally {
    await dropLease(hub, connectionId, owner);
  }
}

async function pollLeased(hub: Hub, conn: LoadedConnection, src: SourceConnector, { onProgress, since }: PollOptions): Promise<PollReport> {
  const connectionId = conn.record.id;
  const cfg = conn.record.config;
  const nowMs = hub.clock.now().getTime();
  const window = {
    from: since ?? new Date(nowMs - Number(cfg.pollPastDays ?? DEFAULT_PAST_DAYS) * 86_400_000),
    to: new Date(nowMs + Number(cfg.pollFutureDays ?? DEFAULT_FUTURE_DAYS) * 86_400_000),
  };
  const row = await hub.store.db.selectFrom('connection').select('sync_state').where('id', '=', connectionId).executeTakeFirstOrThrow();
  const syncState = JSON.parse(row.sync_state || '{}') as Record<string, string>;
  const report: PollReport = { listed: 0, outcomes: {} };
  const count = (outcome: string) => { report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1; };
  const batch: SourceChange[] = [];
  const cancels: SourceChange[] = [];
  const listed = new Set<string>();
  const flush = async (changes: SourceChange[]) => {
    const results = await applyChanges(hub, conn, changes, `poll:${connectionId}`, { poll: true });
    results.forEach((r, i) => count(r.outcome === 'updated' && changes[i].kind === 'cancel' ? 'cancelled' : r.outcome));
  };
  try {
    for await (const change of src.list!(window, { ...connectionContext(hub, conn), syncState })) {
      report.listed++;
      listed.add(change.externalId);
      // Cancellations wait for the end of the listing: the safety valve weighs them all together.
      if (change.kind === 'cancel') cancels.push(change);
      else batch.push(change);
      if (batch.length >= 50) {
        await flush(batch.splice(0));
        onProgress?.(report.listed);
      }
    }
  } catch (err) {
    if (!(err instanceof NotModified)) throw err;
    report.notModified = true;
  }
  await flush(batch.splice(0));
  if (!report.notModified) {
    const upcoming = await upcomingOf(hub, connectionId, window.to);
    if (src.descriptor.capabilities.listComplete) {
      for (const a of upcoming.values()) if (!listed.has(a.externalId)) cancels.push(absenceCancel(src, a.externalId, hub.clock.now()));
    }
    const cancelling = cancels.filter((c) => upcoming.has(c.externalId));
    const listedLive = report.listed - cancels.filter((c) => listed.has(c.externalId)).length;
    const hold = cancelling.length > 0 && ((src.descriptor.capabilities.listComplete && listedLive === 0)
      || (cancelling.length >= Number(cfg.holdCancellationsMinimum ?? DEFAULT_HOLD_MINIMUM)
        && cancelling.length > Number(cfg.holdCancellationsShare ?? DEFAULT_HOLD_SHARE) * upcoming.size));
    if (hold) {
      report.held = await holdCancellations(hub, connectionId, cancels, {
        cancellations: cancelling.length, upcoming: upcoming.size, listedLive,
        appointments: cancelling.map((c) => upcoming.get(c.externalId)!).map((a) => ({ id: a.id, start: a.start, practitionerId: a.practitionerId })),
      });
    } else {
      await flush(cancels);
      await settleHolds(hub, connectionId, 'superseded', `poll:${connectionId}`);
    }
  }
  onProgress?.(report.listed);
  await hub.store.db.updateTable('connection').set({ last_sync_at: hub.clock.now().toISOString(), sync_state: JSON.stringify(syncState) }).where('id', '=', connectionId).execute();
  hub.cache.clear();
  return report;
}

interface Upcoming { id: string; externalId: string; start: string; practitionerId: string }

/** Live appointments of the connection from now to the end of the window, by their current external id. */
async function upcomingOf(hub: Hub, connectionId: string, to: Date): Promise<Map<string, Upcoming>> {
  const rows = await hub.store.db.selectFrom('appointment').select(['id', 'origin_external_id', 'start_at', 'practitioner_id'])
    .where('origin_connection_id', '=', connectionId).where('status', 'in', ['booked', 'requested'])
    .where('start_at', '>=', dbInstant(hub.clock.now().toISOString())).where('start_at', '<', dbInstant(to.toISOString())).execute();
  return new Map(rows.map((r) => [r.origin_external_id, { id: r.id, externalId: r.origin_external_id, start: toUtc(r.start_at), practitionerId: r.practitioner_id }]));
}

function absenceCancel(src: SourceConnector, externalId: string, now: Date): SourceChange {
  return { platform: src.descriptor.id, externalId, kind: 'cancel', occurredAt: now.toISOString(), needsFetch: false, appointment: { status: 'cancelled' } };
}

/** Keep the cancellations for staff; one pending hold per connection (a newer poll replaces it). A set staff rejected before is not held again. */
async function holdCancellations(hub: Hub, connectionId: string, changes: SourceChange[], summary: HeldSummary): Promise<PollReport['held']> {
  const at = hub.clock.now().toISOString();
  const fingerprint = createHash('sha256').update(changes.map((c) => c.externalId).sort().join('\n')).digest('hex');
  return hub.store.db.transaction().execute(async (trx) => {
    const rejected = await trx.selectFrom('held_change').select('id').where('connection_id', '=', connectionId).where('status', '=', 'rejected')
      .where('fingerprint', '=', fingerprint).executeTakeFirst();
    const pending = await trx.selectFrom('held_change').select('id').where('connection_id', '=', connectionId).where('status', '=', 'pending').executeTakeFirst();
    const held = { cancellations: summary.cancellations, upcoming: summary.upcoming };
    if (rejected) return { id: rejected.id, ...held };
    const values = { fingerprint, summary: JSON.stringify(summary), changes: JSON.stringify(changes), updated_at: at };
    const id = pending?.id ?? randomUUID();
    if (pending) await trx.updateTable('held_change').set(values).where('id', '=', id).execute();
    else await trx.insertInto('held_change').values({ id, connection_id: connectionId, status: 'pending', created_at: at, decided_by: null, ...values }).execute();
    await appendAudit(trx, hub.store.dialect, [{
      at, actor: `poll:${connectionId}`, action: 'poll.held', entityType: 'connection', entityId: connectionId,
      meta: { held: id, cancellations: summary.cancellations, upcoming: summary.upcoming, listedLive: summary.listedLive },
    }]);
    const clinic = await trx.selectFrom('connection').select('clinic_id').where('id', '=', connectionId).executeTakeFirst();
    await enqueue(trx, await staffAlertJobs(trx, clinic?.clinic_id, {
      type: 'held_changes', ref: `${id}@${at}`,
      summary: `A poll of ${connectionId} would cancel ${summary.cancellations} appointment(s) (${summary.upcoming} upcoming) at once. They are held until staff approve or reject them (held change ${id}).`,
    }, hub.cache), at);
    return { id, ...held };
  });
}

async function settleHolds(hub: Hub, connectionId: string, status: 'superseded', actor: string): Promise<void> {
  const at = hub.clock.now().toISOString();
  await hub.store.db.updateTable('held_change').set({ status, decided_by: actor, updated_at: at })
    .where('connection_id', '=', connectionId).where('status', '=', 'pending').execute();
}

export interface HeldChange {
  id: string;
  connectionId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  decidedBy?: string;
  summary: HeldSummary;
}

export async function listHeld(hub: Hub, status?: string): Promise<HeldChange[]> {
  let q = hub.store.db.selectFrom('held_change').selectAll().orderBy('created_at', 'desc').limit(200);
  if (status) q = q.where('status', '=', status);
  return (await q.execute()).map((r) => ({
    id: r.id, connectionId: r.connection_id, status: r.status, createdAt: r.created_at, updatedAt: r.updated_at,
    ...(r.decided_by ? { decidedBy: r.decided_by } : {}), summary: JSON.parse(r.summary) as HeldSummary,
  }));
}

/** Staff approve (the held cancellations are applied now, through the usual path) or reject a hold. */
export async function decideHeld(hub: Hub, id: string, decision: 'approve' | 'reject', actor: string): Promise<{ status: string; outcomes: Record<string, number> }> {
  const at = hub.clock.now().toISOString();
  const row = await hub.store.db.selectFrom('held_change').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new MeridianError('not_found', `no held change ${id}`);
  const status = decision === 'approve' ? 'approved' : 'rejected';
  const taken = await hub.store.db.updateTable('held_change').set({ status, decided_by: actor, updated_at: at })
    .where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
  if (Number(taken.numUpdatedRows) === 0) throw new MeridianError('already_decided', `this held change is ${row.status}`);
  const outcomes: Record<string, number> = {};
  if (decision === 'approve') {
    const conn = await loadConnection(hub, row.connection_id);
    for (const r of await applyChanges(hub, conn, JSON.parse(row.changes) as SourceChange[], actor, { held: id })) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  }
  await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
    at, actor, action: `poll.hold_${status}`, entityType: 'connection', entityId: row.connection_id, meta: { held: id, outcomes },
  }]));
  return { status, outcomes };
}

/** Queue the next scheduled poll of every polling connection (idempotent: one pending poll per connection). */
export async function schedulePolls(hub: Hub): Promise<number> {
  const rows = await hub.store.db.selectFrom('connection').select(['id', 'platform', 'last_sync_at']).where('status', '=', 'active').execute();
  const jobs: NewJob[] = [];
  for (const r of rows) {
    if (!getSource(r.platform)?.list) continue;
    const minutes = pollMinutesFor(await loadConnection(hub, r.id));
    if (minutes <= 0) continue;
    const due = r.last_sync_at ? Date.parse(r.last_sync_at) + minutes * 60_000 : hub.clock.now().getTime();
    jobs.push(pollJob(r.id, { scheduled: true, runAt: new Date(Math.max(due, hub.clock.now().getTime()) + jitter(minutes)).toISOString() }));
  }
  if (jobs.length) await enqueue(hub.store.db, jobs, hub.clock.now().toISOString());
  return jobs.length;
}

/** Up to a tenth of the interval (at most 5 minutes), so connections and processes spread out. */
function jitter(minutes: number): number {
  return Math.floor(Math.random() * Math.min(minutes * 6_000, 300_000));
}

export async function runPollJob(hub: Hub, job: Job<typeof SOURCE_POLL>): Promise<JobResult> {
  const { connectionId, scheduled } = job.payload;
  let minutes = 0;
  try {
    const conn = await loadConnection(hub, connectionId);
    minutes = pollMinutesFor(conn);
    // A scheduled poll that finds a fresh sync (another process, an on-demand run) has nothing to do.
    const last = conn.record.lastSyncAt ? Date.parse(conn.record.lastSyncAt) : 0;
    if (scheduled && minutes > 0 && hub.clock.now().getTime() - last < minutes * 30_000) return { ok: true, note: 'synced recently' };
    const r = await pollConnection(hub, connectionId, { leaseOwner: `job:${job.id}` });
    if (r.busy) return { ok: true, note: 'another process is polling this connection' };
    const what = r.notModified ? 'not modified' : `listed ${r.listed}: ${Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`;
    return { ok: true, note: r.held ? `${what}; ${r.held.cancellations} cancellations held for approval` : what };
  } catch (err) {
    if (err instanceof ConnectorError) return { ok: false, failure: err.failure, connectionId };
    return { ok: false, failure: { class: 'transient', message: (err as Error).message }, connectionId };
  } finally {
    if (minutes > 0) {
      const at = new Date(hub.clock.now().getTime() + minutes * 60_000 + jitter(minutes)).toISOString();
      await enqueue(hub.store.db, [pollJob(connectionId, { scheduled: true, runAt: at })], hub.clock.now().toISOString());
    }
  }
}
