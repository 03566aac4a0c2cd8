// Drift repair and two-way edits: read back what a calendar target holds for our events. Under the
// default policy `restore`, what someone deleted or edited by hand is put right; under `accept`
// (connection config `twoWay: accept`), a practitioner who moves or deletes one of our events in
// their own calendar makes a staff edit (reschedule / cancel) that flows everywhere like any other.
// Our own writes read back unchanged are `in_sync` and never fed back in (no loops). Runs as a
// `target.sweep` job per connection, periodically and on demand; every step is audited and counted.
// Calendars that do not push also get a quick check every few minutes (`quick`: only what changed).
import { getTarget } from '../../connectors/registry.ts';
import type { DriftState, Inspection, TargetClient, WriteOutcome } from '../../connectors/types.ts';
import { dbInstant, getAppointment, getMeta, listAppointments, putMeta, type TargetBinding } from '../../store/repo.ts';
import { appendAudit } from '../../store/audit.ts';
import { recheckBusyConflicts } from '../appointments/commit.ts';
import { TARGET_SWEEP, type Job, type JobResult } from '../../domain/jobs.ts';
import { connectionContext, loadConnection, type LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { NameBook } from '../effects/render.ts';
import { linkFromRow, syncTarget, targetEventFor } from '../effects/targets.ts';
import { staffCancel, staffReschedule } from '../edits/staff.ts';
// How far back and ahead a sweep looks (past appointments are history; far future ones are few).
import { FUTURE_MS, PAST_MS, reconcile } from './reconcile.ts';

/** What to do when a practitioner moved or deleted one of our events in their own calendar. */
export type TwoWayPolicy = 'restore' | 'accept';

export function policyOf(config: Record<string, unknown>): TwoWayPolicy {
  return config.twoWay === 'accept' ? 'accept' : 'restore';
}

export interface SweepReport {
  /** A quick check (`quick`): the calendars whose changes were asked for, and those that had any. */
  calendars?: { asked: number; changed: number };
  checked: number;
  repaired: number;
  /** Changes taken over from the calendar (policy `accept`). */
  accepted: number;
  /** Busy blocks read from the practitioners' calendars (events that are not ours). */
  busy?: number;
  drift: Partial<Record<DriftState, number>>;
}

/** Warn this many days before a refresh token would be revoked for inactivity. */
const EXPIRY_WARNING_DAYS = 14;
const TOKEN_AGE_NOTE = 'the refresh token has not been used';

/**
 * A refresh token the provider revokes after a period of inactivity (Microsoft: 90 days) that has not
 * been used for most of it (Meridian was stopped, or the connection had nothing to do): tell staff
 * (audit + the connection's last error) before the connection breaks. Using the connection again
 * (this sweep) refreshes the token and clears the warning.
 */
export async function checkTokenAge(hub: Hub, connectionId: string): Promise<number | undefined> {
  const conn = await loadConnection(hub, connectionId);
  const idle = conn.connector.descriptor.refreshTokenIdleDays;
  const at = Number(conn.secrets.refreshedAt);
  if (!idle || !conn.secrets.refreshToken || !Number.isFinite(at) || at <= 0) return undefined;
  const days = Math.floor((hub.clock.now().getTime() - at) / 86_400_000);
  if (days < idle - EXPIRY_WARNING_DAYS) {
    if (conn.record.lastError?.startsWith(TOKEN_AGE_NOTE)) {
      await hub.store.db.updateTable('connection').set({ last_error: null }).where('id', '=', connectionId).execute();
      hub.cache.clear();
    }
    return days;
  }
  const message = `${TOKEN_AGE_NOTE} for ${days} days; ${conn.connector.descriptor.displayName} revokes it after ${idle} days of inactivity — reconnect if writes start failing`;
  if (conn.record.lastError !== message) {
    await hub.store.db.updateTable('connection').set({ last_error: message, updated_at: hub.clock.now().toISOString() }).where('id', '=', connectionId).execute();
    hub.cache.clear();
    await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
      at: hub.clock.now().toISOString(), actor: 'system', action: 'connection.token_expiring', entityType: 'connection', entityId: connectionId, meta: { idleDays: days, limitDays: idle },
    }]));
    hub.log.warn({ connection: connectionId, idleDays: days }, 'refresh token close to its inactivity limit');
  }
  return days;
}

/**
 * `remoteIds`: only these remote records (the target named them as changed), without the busy-time refresh.
 * `quick`: the frequent calendar check for calendars that do not push (connectors without `push`): only what
 * `changes` names since the stored token, in every calendar of the connection (its events' and its
 * practitioners'); what changed is judged exactly as a sweep judges it, and the busy times are read again for
 * the calendars that changed. Nothing changed: nothing is read back and no busy time is read. A calendar without
 * a valid token is checked in full (as a sweep would); one whose `changes` failed is left to the next check.
 * `calendars`: only these calendars ('' = the connection's default one): a calendar's push notice (with `quick`).
 */
export async function sweepConnection(hub: Hub, connectionId: string, o: { remoteIds?: string[]; quick?: boolean; calendars?: string[] } = {}): Promise<SweepReport | { failure: string }> {
  await checkTokenAge(hub, connectionId);
  const conn = await loadConnection(hub, connectionId);
  const target = getTarget(conn.record.platform);
  if (!target?.client || conn.record.status !== 'active') return { checked: 0, repaired: 0, accepted: 0, drift: {} };
  const client = target.client(connectionContext(hub, conn));
  if (!client.inspect || (o.quick && !client.changes)) return { checked: 0, repaired: 0, accepted: 0, drift: {} };
  const now = hub.clock.now().getTime();
  const links = await hub.store.db.selectFrom('target_link').innerJoin('appointment', 'appointment.id', 'target_link.appointment_id')
    .select(['target_link.appointment_id', 'target_link.remote_id', 'target_link.calendar_id', 'target_link.etag', 'target_link.generation', 'target_link.data', 'appointment.start_at'])
    .where('target_link.connection_id', '=', connectionId).where('target_link.state', '=', 'live')
    .where('appointment.end_at', '>', new Date(now - PAST_MS).toISOString()).where('appointment.start_at', '<', new Date(now + FUTURE_MS).toISOString())
    .$if(o.remoteIds !== undefined, (q) => q.where('target_link.remote_id', 'in', o.remoteIds!.length ? o.remoteIds! : ['']))
    .execute()
    .then((rows) => (o.calendars ? rows.filter((r) => o.calendars!.includes(r.calendar_id ?? '')) : rows));
  const book = new NameBook(hub.store.db);
  const report: SweepReport = { checked: 0, repaired: 0, accepted: 0, drift: {} };
  const bound = o.quick ? (o.calendars ? new Set(o.calendars) : await boundCalendars(hub, connectionId)) : undefined;
  const toCheck = o.remoteIds
    ? { links, full: new Set<string>(), changed: new Set<string>(), asked: 0, commit: async () => {} }
    : await narrowToChanged(hub, connectionId, client, links, bound && { calendars: bound });
  if ('failure' in toCheck) return toCheck;
  if (o.quick) report.calendars = { asked: toCheck.asked, changed: toCheck.changed.size };
  const window = { from: new Date(now - PAST_MS), to: new Date(now + FUTURE_MS) };
  const listed = await narrowByListing(hub, conn.record, client, toCheck.links, toCheck.full, window, book, report);
  if ('failure' in listed) return listed;
  for (const l of listed.links) {
    const appt = await getAppointment(hub.store.db, l.appointment_id);
    if (!appt) continue;
    const link = linkFromRow(l);
    const expected = await targetEventFor(book, appt, conn.record, link.calendarId);
    const state: WriteOutcome<Inspection> = await client.inspect(expected, link);
    if (!state.ok) {
      if (state.failure.class === 'auth' || state.failure.class === 'throttled') return { failure: `${state.failure.class}: ${state.failure.message}` };
      continue;
    }
    report.checked++;
    const drift = state.value.state;
    report.drift[drift] = (report.drift[drift] ?? 0) + 1;
    if (drift === 'in_sync') continue;
    hub.metrics.drift.inc({ platform: conn.record.platform, kind: drift });
    const actor = `target:${connectionId}`;
    const audit = (action: string, meta: Record<string, unknown>) => hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
      at: hub.clock.now().toISOString(), actor, action, entityType: 'appointment', entityId: appt.id, meta: { target: connectionId, drift, ...meta },
    }]));
    // Two-way policy `accept`: the practitioner's own move or deletion becomes a staff edit.
    if (policyOf(conn.record.config) === 'accept' && appt.status !== 'cancelled') {
      const { start, end } = state.value;
      const moved = drift === 'changed' && start && end && (start !== new Date(appt.start).toISOString() || end !== new Date(appt.end).toISOString());
      try {
        if (drift === 'missing') {
          await staffCancel(hub, appt.id, `deleted in ${conn.record.name}`, actor);
          await audit('target.change_accepted', { change: 'deleted' });
          report.accepted++;
          continue;
        }
        if (moved) {
          await staffReschedule(hub, appt.id, { start, end, override: true }, actor);
          await audit('target.change_accepted', { change: 'moved', start, end });
          report.accepted++;
          continue;
        }
      } catch (err) {
        await audit('target.change_refused', { error: (err as Error).message });
      }
    }
    const r = await syncTarget(hub, appt.id, connectionId, { force: true });
    if (r.ok) report.repaired++;
    await audit(r.ok ? 'target.drift_repaired' : 'target.drift_found', r.ok ? {} : { error: r.failure.message });
  }
  if (client.busy && conn.record.config.busyTimes !== false && !o.remoteIds && (!o.quick || toCheck.changed.size)) {
    const only = o.quick ? toCheck.changed : o.calendars ? new Set(o.calendars) : undefined;
    report.busy = await refreshBusy(hub, conn.record.id, client, only);
  }
  await toCheck.commit();
  return report;
}

type LinkRow = { appointment_id: string; remote_id: string; calendar_id: string | null; etag: string | null; generation: number; data: string; start_at: string };

/**
 * The calendars that need a full check (no change token, or it expired) are compared with one listing
 * per slice (`reconcile`) instead of one read per event; only the events it finds missing or changed are
 * then read back one by one, for the repair and the two-way policy. Links starting outside the window,
 * and every link of a calendar whose listing failed, are still read one by one.
 */
async function narrowByListing(hub: Hub, record: LoadedConnection['record'], client: TargetClient, links: LinkRow[], full: Set<string>, window: { from: Date; to: Date }, book: NameBook, report: SweepReport): Promise<{ links: LinkRow[] } | { failure: string }> {
  if (!client.events || full.size === 0) return { links };
  const flagged = new Set<string>();
  const listedCalendars = new Set<string>();
  for (const calendar of full) {
    const r = await reconcile({
      db: hub.store.db, client, connectionId: record.id, calendarId: calendar || undefined, window, maxIds: links.length,
      expectedTitle: async (a) => (await book.render(a, record)).title,
    });
    if (!r.ok) {
      if (r.failure.class === 'auth' || r.failure.class === 'throttled') return { failure: `${r.failure.class}: ${r.failure.message}` };
      continue;
    }
    listedCalendars.add(calendar);
    for (const id of [...r.value.missing.ids, ...r.value.changed.ids]) flagged.add(id);
    report.checked += r.value.inSync;
    if (r.value.inSync) report.drift.in_sync = (report.drift.in_sync ?? 0) + r.value.inSync;
  }
  const from = window.from.getTime();
  const to = window.to.getTime();
  return {
    links: links.filter((l) => {
      if (!listedCalendars.has(l.calendar_id ?? '')) return true;
      const start = Date.parse(l.start_at);
      return flagged.has(l.appointment_id) || start < from || start >= to;
    }),
  };
}

/**
 * With a target that reports changes since a token (a sync token, a sync-collection, a listing's etag
 * listing), only the events that changed are read back; without a token, or when it expired, everything is.
 * The new tokens are stored by `commit()` once the sweep has been done, so an interrupted sweep repeats rather
 * than skips (a token that did not move is not written again).
 * `quick.calendars`: the practitioners' calendars of the connection, asked too (a personal event there changes
 * busy times even where we hold no event); a calendar whose `changes` failed is then left out, not read in full.
 * `changed`: the calendars with any change (or checked in full).
 */
async function narrowToChanged(hub: Hub, connectionId: string, client: TargetClient, links: LinkRow[], quick?: { calendars: Set<string> }): Promise<{ links: LinkRow[]; full: Set<string>; changed: Set<string>; asked: number; commit(): Promise<void> } | { failure: string }> {
  const byCalendar = new Map<string, LinkRow[]>();
  for (const l of links) byCalendar.set(l.calendar_id ?? '', [...(byCalendar.get(l.calendar_id ?? '') ?? []), l]);
  for (const c of quick?.calendars ?? []) if (!byCalendar.has(c)) byCalendar.set(c, []);
  if (!client.changes) return { links, full: new Set(byCalendar.keys()), changed: new Set(byCalendar.keys()), asked: 0, commit: async () => {} };
  const full = new Set<string>();
  const changedCalendars = new Set<string>();
  const keep: LinkRow[] = [];
  const tokens: { key: string; value: string }[] = [];
  for (const [calendar, group] of byCalendar) {
    const key = `sync-token:${connectionId}:${calendar}`;
    const stored = await getMeta(hub.store.db, key);
    const r = await client.changes(calendar || undefined, stored);
    if (!r.ok) {
      if (r.failure.class === 'auth' || r.failure.class === 'throttled') return { failure: `${r.failure.class}: ${r.failure.message}` };
      if (quick) {
        hub.log.warn({ connection: connectionId, calendar, class: r.failure.class }, 'reading calendar changes failed; left to the next check');
        continue;
      }
      keep.push(...group);
      full.add(calendar);
      changedCalendars.add(calendar);
      continue;
    }
    const changed = new Set(r.value.changed);
    if (r.value.full) full.add(calendar);
    if (r.value.full || changed.size) changedCalendars.add(calendar);
    keep.push(...(r.value.full ? group : group.filter((l) => changed.has(l.remote_id))));
    if (r.value.token && r.value.token !== stored) tokens.push({ key, value: r.value.token });
  }
  return {
    links: keep,
    full,
    changed: changedCalendars,
    asked: byCalendar.size,
    commit: async () => {
      for (const t of tokens) await putMeta(hub.store.db, t.key, t.value);
    },
  };
}

/** The calendars this connection's active practitioners are bound to (`''`: the connection's default). */
export async function boundCalendars(hub: Hub, connectionId: string): Promise<Set<string>> {
  const practitioners = await hub.store.db.selectFrom('practitioner').select('targets').where('active', '=', 1).execute();
  const out = new Set<string>();
  for (const p of practitioners) {
    for (const b of JSON.parse(p.targets) as TargetBinding[]) if (b.connection === connectionId) out.add(b.calendar ?? '');
  }
  return out;
}

const BUSY_AHEAD_MS = 60 * 86_400_000;

/**
 * Read the busy times of every practitioner calendar this connection writes to (`only`: of these calendars), replace what we had,
 * and recompute the conflicts of their upcoming appointments (a personal event over a booking is a
 * double booking, audited like one). Returns the number of busy blocks found.
 */
async function refreshBusy(hub: Hub, connectionId: string, client: TargetClient, only?: Set<string>): Promise<number> {
  const db = hub.store.db;
  const from = hub.clock.now();
  const to = new Date(from.getTime() + BUSY_AHEAD_MS);
  const practitioners = await db.selectFrom('practitioner').select(['id', 'targets']).where('active', '=', 1).execute();
  let found = 0;
  for (const p of practitioners) {
    const binding = (JSON.parse(p.targets) as TargetBinding[]).find((b) => b.connection === connectionId);
    if (!binding || (only && !only.has(binding.calendar ?? ''))) continue;
    const r = await client.busy!({ from, to }, binding.calendar);
    if (!r.ok) {
      hub.log.warn({ connection: connectionId, practitioner: p.id, class: r.failure.class }, 'reading busy times failed');
      continue;
    }
    found += r.value.length;
    const at = hub.clock.now().toISOString();
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('busy_block').where('connection_id', '=', connectionId).where('practitioner_id', '=', p.id).execute();
      for (const b of r.value) {
        await trx.insertInto('busy_block').values({ connection_id: connectionId, practitioner_id: p.id, start_at: dbInstant(b.start), end_at: dbInstant(b.end), fetched_at: at }).execute();
      }
      const appts = await listAppointments(trx, { practitionerId: p.id, from: from.toISOString(), to: to.toISOString(), status: ['booked', 'requested'] });
      await recheckBusyConflicts(trx, hub, appts, `target:${connectionId}`);
    });
  }
  return found;
}

export async function runSweepJob(hub: Hub, job: Job<typeof TARGET_SWEEP>): Promise<JobResult> {
  const { connectionId, remoteIds, quick, calendars } = job.payload;
  const r = await sweepConnection(hub, connectionId, { remoteIds, quick, calendars });
  if ('failure' in r) return { ok: false, failure: { class: r.failure.startsWith('auth') ? 'auth' : 'throttled', message: r.failure }, connectionId };
  if (r.repaired || r.accepted) hub.log.info({ connection: connectionId, ...r }, 'drift repaired');
  const asked = r.calendars ? `calendars changed ${r.calendars.changed} of ${r.calendars.asked}, ` : '';
  return { ok: true, note: `${asked}checked ${r.checked}, repaired ${r.repaired}, accepted ${r.accepted}` };
}
