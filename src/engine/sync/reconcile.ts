// Reconciliation: a full compare of what the store says a calendar holds (live target links) against
// what the calendar lists (`TargetClient.events`), in bounded memory. The window is walked in time
// slices: each slice's listing and each slice's appointments (ordered by start) are compared and
// dropped, so memory is one slice plus the discrepancies, whatever the number of appointments. One
// listing page carries up to 2,500 events, so a full check costs about N/1,000 round trips on Google
// instead of the N reads (`inspect`) a sweep without a sync token makes.
import type { CalendarEvent, ListWindow, TargetClient, WriteOutcome } from '../../connectors/types.ts';
import type { Appointment } from '../../domain/types.ts';
import { getTarget } from '../../connectors/registry.ts';
import { toAppointment, type ConnectionRecord, type Exec } from '../../store/repo.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { NameBook } from '../effects/render.ts';
import { auditTargetWrite, syncTarget } from '../effects/targets.ts';

/**
 * The window is read a slice at a time, each sized to hold about PER_SLICE appointments: a calendar
 * with fewer is read in one listing (one round trip, or a few pages), a crowded one down to a day at a
 * time (little held in memory at once, so little that outlives a young-generation collection).
 */
const PER_SLICE = 1_000;
const MIN_SLICE_MS = 86_400_000;
/** The sweep's window: yesterday to six months ahead. */
export const PAST_MS = 86_400_000;
export const FUTURE_MS = 180 * 86_400_000;

export interface Found {
  count: number;
  /** The first `maxIds` of them (counts stay exact). */
  ids: string[];
}

export interface ReconcileReport {
  /** Appointments compared (live links in the window). */
  checked: number;
  /** Events the calendar listed in the window (ours or not, deleted ones included). */
  listed: number;
  inSync: number;
  /** Appointment ids whose event the calendar does not hold (deleted by hand, never arrived). */
  missing: Found;
  /** Appointment ids whose event the calendar holds with other times (or title, when compared). */
  changed: Found;
  /** Remote ids of events carrying our markers that no live appointment in the window accounts for. */
  orphaned: Found;
}

export interface ReconcileInput {
  db: Exec;
  client: TargetClient;
  connectionId: string;
  calendarId: string | undefined;
  window: ListWindow;
  sliceMs?: number;
  maxIds?: number;
  /** The title the event should have: given, titles are compared too (as `inspect` does). */
  expectedTitle?: (appt: Appointment) => Promise<string>;
}

const found = (): Found => ({ count: 0, ids: [] });

/**
 * Compare one calendar of a connection with the store over `window`. An event moved by hand into
 * another slice is matched across slices (kept aside until the window ends, so only discrepancies stay
 * in memory); one moved out of the window altogether counts as missing, and one of ours moved into it
 * from outside as orphaned. A listing that fails is a failure: a partial compare would call the rest missing.
 */
export async function reconcile(o: ReconcileInput): Promise<WriteOutcome<ReconcileReport>> {
  if (!o.client.events) return { ok: false, failure: { class: 'permanent', message: 'this target cannot list its events' } };
  const maxIds = o.maxIds ?? 1000;
  const sliceMs = o.sliceMs ?? (await sliceFor(o));
  const report: ReconcileReport = { checked: 0, listed: 0, inSync: 0, missing: found(), changed: found(), orphaned: found() };
  const note = (f: Found, id: string) => {
    f.count++;
    if (f.ids.length < maxIds) f.ids.push(id);
  };
  // Discrepancies that a later slice may still explain: remote id → appointment id (event not found yet),
  // and remote ids of our events no appointment has claimed yet.
  const unseen = new Map<string, string>();
  const unclaimed = new Set<string>();
  const end = o.window.to.getTime();
  for (let from = o.window.from.getTime(); from < end; from += sliceMs) {
    const to = Math.min(end, from + sliceMs);
    const listing = await o.client.events({ from: new Date(from), to: new Date(to) }, o.calendarId);
    if (!listing.ok) return listing;
    report.listed += listing.value.length;
    // Each event belongs to the slice it starts in (listings return everything overlapping the slice).
    const held = new Map<string, CalendarEvent>();
    for (const e of listing.value) {
      const at = Date.parse(e.start);
      if (e.status !== 'cancelled' && at >= from && at < to) held.set(e.remoteId, e);
    }
    for (const row of await linksStartingIn(o, from, to)) {
      report.checked++;
      const event = held.get(row.remote_id);
      held.delete(row.remote_id);
      if (row.status === 'cancelled') {
        // The removal has not happened yet (or failed): the event is left behind.
        if (event || unclaimed.delete(row.remote_id)) note(report.orphaned, row.remote_id);
        continue;
      }
      if (!event) {
        if (unclaimed.delete(row.remote_id)) note(report.changed, row.id);
        else unseen.set(row.remote_id, row.id);
        continue;
      }
      const title = o.expectedTitle ? await o.expectedTitle(toAppointment(row)) : undefined;
      const same = Date.parse(event.start) === Date.parse(row.start_at) && Date.parse(event.end) === Date.parse(row.end_at) && (title === undefined || title === event.title);
      if (same) report.inSync++;
      else note(report.changed, row.id);
    }
    // Our events this slice's appointments did not claim: moved here by hand from an earlier slice, or orphans.
    for (const e of held.values()) {
      if (!e.ours) continue;
      const appointmentId = unseen.get(e.remoteId);
      if (appointmentId) {
        unseen.delete(e.remoteId);
        note(report.changed, appointmentId);
      } else unclaimed.add(e.remoteId);
    }
  }
  for (const appointmentId of unseen.values()) note(report.missing, appointmentId);
  for (const remoteId of unclaimed) note(report.orphaned, remoteId);
  return { ok: true, value: report };
}

/** A slice length that holds about PER_SLICE of the window's appointments, if they were spread evenly. */
async function sliceFor(o: ReconcileInput): Promise<number> {
  let q = o.db.selectFrom('target_link').innerJoin('appointment', 'appointment.id', 'target_link.appointment_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('target_link.connection_id', '=', o.connectionId).where('target_link.state', '=', 'live')
    .where('appointment.start_at', '>=', o.window.from.toISOString()).where('appointment.start_at', '<', o.window.to.toISOString());
  q = o.calendarId === undefined ? q.where('target_link.calendar_id', 'is', null) : q.where('target_link.calendar_id', '=', o.calendarId);
  const n = Number((await q.executeTakeFirst())?.n ?? 0);
  const span = o.window.to.getTime() - o.window.from.getTime();
  const even = n > PER_SLICE ? (span * PER_SLICE) / n : span;
  return Math.max(MIN_SLICE_MS, Math.round(even));
}

/** Live links of this calendar whose appointment starts in [from, to), in start order (an index range scan). */
function linksStartingIn(o: ReconcileInput, from: number, to: number) {
  let q = o.db.selectFrom('target_link').innerJoin('appointment', 'appointment.id', 'target_link.appointment_id')
    .selectAll('appointment').select('target_link.remote_id')
    .where('target_link.connection_id', '=', o.connectionId).where('target_link.state', '=', 'live')
    .where('appointment.start_at', '>=', new Date(from).toISOString()).where('appointment.start_at', '<', new Date(to).toISOString());
  q = o.calendarId === undefined ? q.where('target_link.calendar_id', 'is', null) : q.where('target_link.calendar_id', '=', o.calendarId);
  return q.orderBy('appointment.start_at').orderBy('appointment.id').execute();
}

/** Reconcile every calendar a connection holds our events in, titles compared as the connection renders them. */
export async function reconcileConnection(hub: Hub, connectionId: string, o: { window?: ListWindow; maxIds?: number } = {}): Promise<WriteOutcome<ReconcileReport & { calendars: number }>> {
  const conn = await loadConnection(hub, connectionId);
  const target = getTarget(conn.record.platform);
  if (!target?.client) return { ok: false, failure: { class: 'permanent', message: `${conn.record.platform} has no calendar to compare` } };
  const client = target.client(connectionContext(hub, conn));
  const now = hub.clock.now().getTime();
  const window = o.window ?? { from: new Date(now - PAST_MS), to: new Date(now + FUTURE_MS) };
  const calendars = await hub.store.db.selectFrom('target_link').select('calendar_id').distinct()
    .where('connection_id', '=', connectionId).where('state', '=', 'live').execute();
  const book = new NameBook(hub.store.db);
  const record: ConnectionRecord = conn.record;
  const total = { checked: 0, listed: 0, inSync: 0, missing: found(), changed: found(), orphaned: found(), calendars: calendars.length };
  for (const c of calendars) {
    const r = await reconcile({
      db: hub.store.db, client, connectionId, calendarId: c.calendar_id ?? undefined, window, maxIds: o.maxIds,
      expectedTitle: async (a) => (await book.render(a, record)).title,
    });
    if (!r.ok) return r;
    total.checked += r.value.checked;
    total.listed += r.value.listed;
    total.inSync += r.value.inSync;
    for (const k of ['missing', 'changed', 'orphaned'] as const) {
      total[k].count += r.value[k].count;
      total[k].ids.push(...r.value[k].ids.slice(0, Math.max(0, (o.maxIds ?? 1000) - total[k].ids.length)));
    }
  }
  return { ok: true, value: total };
}

export interface RepairReport {
  repaired: number;
  failed: { appointmentId: string; error: string }[];
}

/**
 * Make the calendar match the store for what a reconciliation found missing or changed: each one is
 * written again (forced, as a sweep repairs drift) and audited. Orphans are reported, never deleted:
 * an event with our markers that no appointment claims may be a copy a practitioner made on purpose.
 */
export async function repairReconciled(hub: Hub, connectionId: string, report: ReconcileReport, onProgress?: (done: number, total: number) => void): Promise<RepairReport> {
  const ids = [...new Set([...report.missing.ids, ...report.changed.ids])];
  const out: RepairReport = { repaired: 0, failed: [] };
  for (const [i, id] of ids.entries()) {
    const r = await syncTarget(hub, id, connectionId, { force: true });
    if (r.ok) {
      out.repaired++;
      await auditTargetWrite(hub, id, connectionId, 'target.drift_repaired', { via: 'reconcile' });
    } else out.failed.push({ appointmentId: id, error: `${r.failure.class}: ${r.failure.message}` });
    onProgress?.(i + 1, ids.length);
  }
  return out;
}
