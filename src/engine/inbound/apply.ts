// Ingest → apply → audit + outbox, in the caller's transaction.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { ChangeRejected, contentHash, decide, type Decision } from '../../domain/apply.ts';
import { findConflicts } from '../../domain/conflicts.ts';
import type { Appointment, SourceChange } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import { enqueue, type NewJob } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import {
  busyOverlaps, getAppointment, getRef, overlapCandidates, saveAppointment, saveRef, type ConnectionRecord, type Exec,
} from '../../store/repo.ts';
import type { Hub } from '../hub/hub.ts';
import { effectJobsFor } from '../effects/plan.ts';
import { staffAlertJobs } from '../effects/notify.ts';
import { cached, type TtlCache } from '../hub/cache.ts';

export type ApplyOutcome =
  | 'created' | 'updated' | 'unchanged' | 'duplicate' | 'stale' | 'superseded' | 'tombstone' | 'failed' | 'fetch_queued';

export interface ApplyResult {
  outcome: ApplyOutcome;
  appointmentId?: string;
  conflicts?: string[];
  error?: { code: string; message: string };
}

/** A snapshot safe for the audit log: what changed, with patient contact data kept (the audit log is internal). */
export function auditView(a: Appointment | undefined): Record<string, unknown> | undefined {
  if (!a) return undefined;
  return {
    status: a.status, start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId,
    locationId: a.locationId, serviceId: a.serviceId, roomId: a.roomId, patient: a.patient, notes: a.notes,
    revision: a.revision, origin: a.origin,
  };
}

interface Mapped {
  practitionerId?: string;
  serviceId?: string;
  locationId?: string;
  timeZone?: string;
}

async function mapRefs(trx: Exec, cache: TtlCache, conn: ConnectionRecord, c: SourceChange): Promise<Mapped> {
  const a = c.appointment;
  const refs = conn.refs;
  let practitionerId = a.practitionerRef ? refs.practitioners?.[a.practitionerRef] : undefined;
  const email = a.practitionerEmail ?? (a.practitionerRef?.includes('@') ? a.practitionerRef : undefined);
  if (!practitionerId && email) {
    const p = await cached(cache, `practitioner-email:${email.toLowerCase()}`, () =>
      trx.selectFrom('practitioner').select('id').where('email', '=', email.toLowerCase()).where('active', '=', 1).executeTakeFirst());
    practitionerId = p?.id;
  }
  practitionerId ??= refs.defaultPractitioner;
  const serviceId = a.serviceRef ? refs.services?.[a.serviceRef] : undefined;
  let locationId = a.locationRef ? refs.locations?.[a.locationRef] : undefined;
  let timeZone: string | undefined;
  if (practitionerId) {
    const id = practitionerId;
    const p = await cached(cache, `practitioner:${id}`, () =>
      trx.selectFrom('practitioner').select(['location_ids', 'time_zone']).where('id', '=', id).executeTakeFirst());
    if (!p) practitionerId = undefined;
    else {
      const locs = JSON.parse(p.location_ids) as string[];
      if (!locationId && locs.length === 1) locationId = locs[0];
      timeZone = p.time_zone ?? undefined;
    }
  }
  if (locationId) {
    const id = locationId;
    const l = await cached(cache, `location:${id}`, () => trx.selectFrom('location').select('time_zone').where('id', '=', id).executeTakeFirst());
    if (l) timeZone = l.time_zone;
    else locationId = undefined;
  }
  return { practitionerId, serviceId, locationId, timeZone };
}

async function clinicZone(trx: Exec, cache: TtlCache, clinicId: string): Promise<string> {
  const c = await cached(cache, `clinic:${clinicId}`, () => trx.selectFrom('clinic').select('time_zone').where('id', '=', clinicId).executeTakeFirst());
  return c?.time_zone ?? 'UTC';
}

/**
 * Recompute conflicts for `appt` and for everything it collided with before or collides with now.
 * Returns the appointment's new conflict list. Conflict changes do not bump revisions.
 */
/** Everything `appt` collides with: other appointments (same practitioner or room) and busy blocks of the practitioner's own calendars. */
export async function conflictsOf(trx: Exec, appt: Appointment): Promise<string[]> {
  const withAppointments = findConflicts(appt, await overlapCandidates(trx, appt));
  const withBusy = (await busyOverlaps(trx, appt)).map((b) => b.id);
  return [...withAppointments, ...withBusy];
}

export async function refreshConflicts(trx: Exec, appt: Appointment, previous: string[]): Promise<string[]> {
  const now = await conflictsOf(trx, appt);
  if (now.join() !== appt.conflicts.join()) {
    appt.conflicts = now;
    await trx.updateTable('appointment').set({ conflicts: JSON.stringify(now) }).where('id', '=', appt.id).execute();
  }
  for (const id of new Set([...previous, ...now])) {
    const other = id.startsWith('busy:') ? undefined : await getAppointment(trx, id);
    if (!other) continue;
    const theirs = await conflictsOf(trx, other);
    if (theirs.join() !== other.conflicts.join()) {
      await trx.updateTable('appointment').set({ conflicts: JSON.stringify(theirs) }).where('id', '=', id).execute();
    }
  }
  return now;
}

/** Write the outcome of a decision: appointment, refs, conflicts, audit, jobs. */
async function commitDecision(trx: Transaction<DB>, hub: Hub, conn: ConnectionRecord, c: SourceChange, d: Decision, actor: string, meta: Record<string, unknown>): Promise<ApplyResult> {
  const at = hub.clock.now().toISOString();
  const audit: AuditInput[] = [];
  const jobs: NewJob[] = [];
  let result: ApplyResult;
  const changeMeta = { ...meta, platform: c.platform, externalId: c.externalId, kind: c.kind, occurredAt: c.occurredAt };
  if (d.action === 'ignore') {
    audit.push({ at, actor, action: 'change.ignored', entityType: 'external_ref', entityId: `${conn.id}:${c.externalId}`, meta: { ...changeMeta, reason: d.reason } });
    result = { outcome: d.reason };
  } else if (d.action === 'tombstone') {
    await saveRef(trx, conn.id, d.ref);
    audit.push({ at, actor, action: 'change.remembered', entityType: 'external_ref', entityId: `${conn.id}:${c.externalId}`, meta: changeMeta });
    result = { outcome: 'tombstone' };
  } else {
    const isNew = d.action === 'create';
    const before = d.action === 'update' ? d.before : undefined;
    const next = d.next;
    await saveAppointment(trx, next, isNew);
    await saveRef(trx, conn.id, d.ref);
    if (d.replacedRef) await saveRef(trx, conn.id, d.replacedRef);
    const material = isNew || (d.action === 'update' && d.material);
    if (material) {
      const conflicts = await refreshConflicts(trx, next, before?.conflicts ?? []);
      const action = isNew ? 'appointment.created' : before!.status !== next.status ? `appointment.${next.status === 'booked' ? 'rebooked' : next.status}` : 'appointment.updated';
      audit.push({ at, actor, action, entityType: 'appointment', entityId: next.id, before: auditView(before), after: auditView(next), meta: changeMeta });
      const newConflicts = conflicts.filter((id) => !(before?.conflicts ?? []).includes(id));
      if (newConflicts.length) {
        audit.push({ at, actor, action: 'appointment.double_booked', entityType: 'appointment', entityId: next.id, meta: { with: newConflicts } });
      }
      jobs.push(...(await effectJobsFor(trx, hub, next, before, at)));
      if (newConflicts.length) {
        jobs.push(...(await staffAlertJobs(trx, next.clinicId, {
          type: 'double_booking', ref: `${next.id}@r${next.revision}`,
          summary: `Appointment ${next.id} (${next.start} to ${next.end}, practitioner ${next.practitionerId}) arrived from ${c.platform} overlapping ${newConflicts.length} other booking(s): ${newConflicts.join(', ')}.`,
        }, hub.cache)));
      }
      result = { outcome: isNew ? 'created' : 'updated', appointmentId: next.id, conflicts };
    } else {
      audit.push({ at, actor, action: 'change.no_effect', entityType: 'appointment', entityId: next.id, meta: changeMeta });
      result = { outcome: 'unchanged', appointmentId: next.id };
    }
  }
  await appendAudit(trx, hub.store.dialect, audit);
  if (jobs.length) await enqueue(trx, jobs, at);
  return result;
}

/** Apply one change from a source connection inside `trx`. A rejected change is recorded, not thrown. */
export async function applyChange(trx: Transaction<DB>, hub: Hub, conn: ConnectionRecord, change: SourceChange, actor: string, meta: Record<string, unknown> = {}): Promise<ApplyResult> {
  const hash = contentHash(change);
  const ref = await getRef(trx, conn.id, change.externalId);
  const replacedRef = change.replacesExternalId ? await getRef(trx, conn.id, change.replacesExternalId) : undefined;
  const apptId = ref?.appointmentId ?? replacedRef?.appointmentId;
  const existing = apptId ? await getAppointment(trx, apptId) : undefined;
  const mapped = await mapRefs(trx, hub.cache, conn, change);
  const c: SourceChange = mapped.timeZone ? { ...change, appointment: { ...change.appointment, timeZone: mapped.timeZone } } : change;
  let d: Decision;
  try {
    d = decide({
      change: c, hash, connectionId: conn.id, clinicId: conn.clinicId, ref, replacedRef, existing, mapped,
      newId: randomUUID(), now: hub.clock.now().toISOString(), defaultTimeZone: await clinicZone(trx, hub.cache, conn.clinicId),
    });
  } catch (err) {
    if (!(err instanceof ChangeRejected)) throw err;
    await appendAudit(trx, hub.store.dialect, [{
      at: hub.clock.now().toISOString(), actor, action: 'change.rejected', entityType: 'external_ref',
      entityId: `${conn.id}:${change.externalId}`, meta: { ...meta, code: err.code, message: err.message },
    }]);
    return { outcome: 'failed', error: { code: err.code, message: err.message } };
  }
  return commitDecision(trx, hub, conn, c, d, actor, meta);
}
