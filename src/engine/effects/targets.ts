// Calendar targets: which targets an appointment belongs in, and the state-based sync job that makes
// one target match the appointment's current state.
import { shouldExist } from '../../domain/rules.ts';
import { getTarget } from '../../connectors/registry.ts';
import type { ConnectorFailure, LinkState, TargetEvent, WriteOutcome } from '../../connectors/types.ts';
import type { Appointment } from '../../domain/types.ts';
import { TARGET_SYNC, type Job, type JobResult, type NewJob } from '../../domain/jobs.ts';
import { INACTIVE, getAppointment, getConnectionRow, toConnection, type ConnectionRecord, type Exec, type TargetBinding } from '../../store/repo.ts';
import { appendAudit } from '../../store/audit.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { coveredByAgreement, NameBook } from './render.ts';
import { cached, type TtlCache } from '../hub/cache.ts';

/** Where an appointment should be written: its practitioner's bindings plus the clinic-wide ones (push targets only). */
export async function bindingsFor(db: Exec, appt: Pick<Appointment, 'practitionerId' | 'clinicId'>, cache?: TtlCache): Promise<TargetBinding[]> {
  return cached(cache, `bindings:${appt.clinicId}:${appt.practitionerId}`, async () => {
    const p = await db.selectFrom('practitioner').select('targets').where('id', '=', appt.practitionerId).executeTakeFirst();
    const c = await db.selectFrom('clinic').select('settings').where('id', '=', appt.clinicId).executeTakeFirst();
    const all: TargetBinding[] = [...(p ? JSON.parse(p.targets) : []), ...((c ? JSON.parse(c.settings).targets : undefined) ?? [])];
    const out: TargetBinding[] = [];
    for (const b of all) {
      if (out.some((o) => o.connection === b.connection)) continue;
      const row = await getConnectionRow(db, b.connection);
      if (row && !INACTIVE.has(row.status) && getTarget(row.platform)?.descriptor.capabilities.push) out.push(b);
    }
    return out;
  });
}

export function syncJob(appointmentId: string, targetId: string): NewJob<typeof TARGET_SYNC> {
  return { kind: TARGET_SYNC, payload: { appointmentId, targetId }, dedupeKey: `${TARGET_SYNC}:${appointmentId}:${targetId}` };
}

/** The `target.sync` handler (registered in jobs/catalogue.ts). */
export async function runTargetSyncJob(hub: Hub, job: Job<typeof TARGET_SYNC>): Promise<JobResult> {
  const { appointmentId, targetId } = job.payload;
  // A second attempt may follow one that wrote and died before recording it (claiming counts attempts).
  const r = await syncTarget(hub, appointmentId, targetId, { interrupted: job.attempts > 1 });
  if (r.ok) {
    if (r.action !== 'unchanged' && r.action !== 'skipped') {
      // Which revision reached the calendar (the link records it; one sync per appointment and target runs at a time).
      const link = await hub.store.db.selectFrom('target_link').select('revision').where('appointment_id', '=', appointmentId).where('connection_id', '=', targetId).executeTakeFirst();
      await auditTargetWrite(hub, appointmentId, targetId, `target.${r.action}`, link ? { revision: link.revision } : {});
    }
    return { ok: true, note: r.action };
  }
  return { ok: false, failure: r.failure, connectionId: targetId };
}

/** Jobs for every target the appointment is in now, was in before, or still has an event in. */
export async function targetJobsFor(db: Exec, next: Appointment, before?: Appointment, cache?: TtlCache): Promise<NewJob[]> {
  const ids = new Set((await bindingsFor(db, next, cache)).map((b) => b.connection));
  if (before && before.practitionerId !== next.practitionerId) for (const b of await bindingsFor(db, before, cache)) ids.add(b.connection);
  // A new appointment has no events anywhere yet; an existing one may sit in targets it no longer binds to.
  if (before) {
    const links = await db.selectFrom('target_link').select('connection_id').where('appointment_id', '=', next.id).where('state', '=', 'live').execute();
    for (const l of links) ids.add(l.connection_id);
  }
  return [...ids].sort().map((t) => syncJob(next.id, t));
}

export type SyncResult = { ok: true; action: 'created' | 'updated' | 'removed' | 'unchanged' | 'skipped' } | { ok: false; failure: ConnectorFailure };

export async function targetEventFor(book: NameBook, appt: Appointment, conn: ConnectionRecord, calendarId: string | undefined): Promise<TargetEvent> {
  const text = await book.render(appt, conn);
  // Only a CRM the clinic's data agreement covers learns who the patient is (to link the record to them).
  const crm = getTarget(conn.platform)?.descriptor.kind === 'crm';
  const person = crm && coveredByAgreement(conn) && appt.patient.email
    ? { name: appt.patient.name, email: appt.patient.email, ...(appt.patient.phone ? { phone: appt.patient.phone } : {}) }
    : undefined;
  return {
    appointmentId: appt.id, revision: appt.revision, calendarId, title: text.title, description: text.description,
    location: text.location, start: appt.start, end: appt.end, timeZone: appt.timeZone, status: appt.status,
    ...(crm ? { practitionerId: appt.practitionerId } : {}), ...(person ? { person } : {}),
  };
}

export function linkFromRow(r: { remote_id: string; calendar_id: string | null; etag: string | null; generation: number; data: string }): LinkState {
  return { remoteId: r.remote_id, calendarId: r.calendar_id ?? undefined, etag: r.etag ?? undefined, generation: r.generation, data: JSON.parse(r.data) };
}

async function saveLink(hub: Hub, appointmentId: string, connectionId: string, link: LinkState, revision: number, state: 'live' | 'removed'): Promise<void> {
  const now = hub.clock.now().toISOString();
  const row = {
    appointment_id: appointmentId, connection_id: connectionId, remote_id: link.remoteId, calendar_id: link.calendarId ?? null,
    etag: link.etag ?? null, generation: link.generation, data: JSON.stringify(link.data ?? {}), revision, state, updated_at: now,
  };
  const { appointment_id, connection_id, ...rest } = row;
  await hub.store.db.insertInto('target_link').values(row)
    .onConflict((oc) => oc.columns(['appointment_id', 'connection_id']).doUpdateSet(rest)).execute();
}

/**
 * Make target `targetId` match appointment `appointmentId` as it is now. Idempotent. `force` rewrites
 * even when the link says the revision is already there (drift repair). `interrupted`: an earlier run
 * of this write was cut off (its job is being run again after a crash or a lost answer), so a create
 * may have reached the platform without its link being saved; an appointment that must not exist then
 * has that event removed.
 */
export async function syncTarget(hub: Hub, appointmentId: string, targetId: string, o: { force?: boolean; interrupted?: boolean } = {}): Promise<SyncResult> {
  const db = hub.store.db;
  const appt = await getAppointment(db, appointmentId);
  const conn = await loadConnection(hub, targetId);
  const target = getTarget(conn.record.platform);
  // Feeds have no client; a connection removed from the setup is left alone, not cleaned up behind the clinic's back.
  if (!target?.client || INACTIVE.has(conn.record.status)) return { ok: true, action: 'skipped' };
  if (conn.record.status === 'needs_reauth') {
    return { ok: false, failure: { class: 'auth', message: `connection ${targetId} needs reconnecting` } };
  }
  const linkRow = await db.selectFrom('target_link').selectAll().where('appointment_id', '=', appointmentId).where('connection_id', '=', targetId).executeTakeFirst();
  const link = linkRow && linkRow.state === 'live' ? linkFromRow(linkRow) : undefined;
  const binding = appt ? (await bindingsFor(db, appt, hub.cache)).find((b) => b.connection === targetId) : undefined;
  const client = target.client(connectionContext(hub, conn));
  const remove = async (l: LinkState, revision: number): Promise<WriteOutcome<void>> => {
    const r = await client.remove(l, appointmentId);
    if (r.ok) await saveLink(hub, appointmentId, targetId, l, revision, 'removed');
    return r;
  };

  if (!appt || !binding || !shouldExist(appt, target.descriptor.kind)) {
    if (!link && o.interrupted && client.removeUnrecorded) {
      const calendar = binding?.calendar ?? linkRow?.calendar_id ?? (conn.record.config.calendarId as string | undefined);
      const r = await client.removeUnrecorded(appointmentId, calendar, linkRow?.generation ?? 0);
      if (!r.ok) return r;
      return { ok: true, action: r.value ? 'removed' : 'unchanged' };
    }
    if (!link) return { ok: true, action: 'unchanged' };
    const r = await remove(link, appt?.revision ?? 0);
    return r.ok ? { ok: true, action: 'removed' } : r;
  }
  const calendarId = binding.calendar ?? (conn.record.config.calendarId as string | undefined);
  if (link && (link.calendarId ?? null) !== (calendarId ?? null)) {
    // Moved to another calendar (e.g. a different practitioner): remove the old event first.
    const r = await remove(link, appt.revision);
    if (!r.ok) return r;
  } else if (link && linkRow && linkRow.revision >= appt.revision && !o.force) {
    return { ok: true, action: 'unchanged' };
  }
  const current = link && (link.calendarId ?? null) === (calendarId ?? null) ? link : undefined;
  const event = await targetEventFor(new NameBook(db), appt, conn.record, calendarId);
  // A removed link still tells the connector the remote id and generation it used (deleted ids may be remembered).
  const prior = current ?? (linkRow ? { ...linkFromRow(linkRow), etag: undefined } : undefined);
  const r = await client.upsert(event, prior);
  if (!r.ok) return r;
  await saveLink(hub, appointmentId, targetId, { ...r.value, calendarId: r.value.calendarId ?? calendarId }, appt.revision, 'live');
  return { ok: true, action: current ? 'updated' : 'created' };
}

/** Record a write in the audit log (calendar writes are transactions too). */
export async function auditTargetWrite(hub: Hub, appointmentId: string, targetId: string, action: string, meta: Record<string, unknown>): Promise<void> {
  await hub.store.db.transaction().execute((trx) =>
    appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor: `worker:${hub.nodeId}`, action, entityType: 'appointment', entityId: appointmentId, meta: { target: targetId, ...meta } }]),
  );
}

export { toConnection };
