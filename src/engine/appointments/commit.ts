// The one door for every appointment write (DESIGN.md §1.2). A platform's booking, a staff edit, a lead
// placed, confirmed or declined, a practitioner's move in their own calendar, a patient's SMS reply and an
// erasure's re-render all end here, in the caller's transaction: save the appointment → recompute the
// conflicts around it → append the audit entries → plan its effects → enqueue the jobs. Either all of it
// is committed with the caller's transaction or none of it.
import type { Transaction } from 'kysely';
import { findConflicts } from '../../domain/conflicts.ts';
import { MeridianError } from '../../domain/errors.ts';
import type { Appointment } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import { enqueue, type NewJob } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import { busyOverlaps, getAppointment, overlapCandidates, saveAppointment, type Exec } from '../../store/repo.ts';
import type { Hub } from '../hub/hub.ts';
import { effectJobsFor } from '../effects/plan.ts';
import { staffAlertJobs } from '../effects/notify.ts';
import { targetJobsFor } from '../effects/targets.ts';

/** A snapshot safe for the audit log: what changed, with patient contact data kept (the audit log is internal). */
export function auditView(a: Appointment | undefined): Record<string, unknown> | undefined {
  if (!a) return undefined;
  return {
    status: a.status, start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId,
    locationId: a.locationId, serviceId: a.serviceId, roomId: a.roomId, patient: a.patient, notes: a.notes,
    revision: a.revision, origin: a.origin,
  };
}

/** Everything `appt` collides with: other appointments (same practitioner or room) and busy blocks of the practitioner's own calendars. */
export async function conflictsOf(trx: Exec, appt: Appointment): Promise<string[]> {
  const withAppointments = findConflicts(appt, await overlapCandidates(trx, appt));
  const withBusy = (await busyOverlaps(trx, appt)).map((b) => b.id);
  return [...withAppointments, ...withBusy];
}

/**
 * Recompute conflicts for `appt` and for everything it collided with before or collides with now.
 * Returns the appointment's new conflict list. Conflict changes do not bump revisions.
 */
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

/**
 * The practitioner's busy times changed (their own calendar was read again): recompute the conflicts of
 * these appointments and audit each new collision with a busy block as a double booking.
 */
export async function recheckBusyConflicts(trx: Transaction<DB>, hub: Hub, appts: Appointment[], actor: string): Promise<void> {
  const at = hub.clock.now().toISOString();
  const audit: AuditInput[] = [];
  for (const a of appts) {
    const before = a.conflicts;
    const now = await refreshConflicts(trx, a, before);
    const fresh = now.filter((id) => id.startsWith('busy:') && !before.includes(id));
    if (fresh.length) audit.push({ at, actor, action: 'appointment.double_booked', entityType: 'appointment', entityId: a.id, meta: { with: fresh, source: 'calendar' } });
  }
  await appendAudit(trx, hub.store.dialect, audit);
}

export interface AppointmentWrite {
  /** The appointment as it was; undefined for a new one. */
  before: Appointment | undefined;
  next: Appointment;
  actor: string;
  /**
   * The audit entry of this write (`appointment.created`, `appointment.rescheduled`…), with `before` and
   * `after` snapshots. Undefined: the caller audits the write as a whole (an erasure says once, and
   * without whom, what it did).
   */
  action?: string;
  meta?: Record<string, unknown>;
  /**
   * `all` (the default): conflicts, every effect (targets, messages, outbound webhooks, CRM).
   * `unchanged`: nothing that anyone sees changed (a platform re-sent the same booking): saved and audited
   * as such, without snapshots, conflicts or effects.
   * `rerender`: the patient data changed but not the visit (an erasure): the targets' events are rendered
   * again; no message, no webhook, and the conflicts stay as they are.
   */
  effects?: 'all' | 'unchanged' | 'rerender';
  /** Staff or a person chose to book over a collision (audited with the double booking). */
  overridden?: boolean;
  /** A new double booking tells the clinic's staff, naming where the booking came from (not for staff's own edits). */
  alertStaff?: { from: string };
  /** Audit entries (after the write's own) and jobs that belong to the same change (a lead's decision, a write-back). */
  alsoAudit?: AuditInput[];
  alsoJobs?: NewJob[];
}

export interface Committed {
  appointment: Appointment;
  /** Everything it collides with now. */
  conflicts: string[];
  /** Of those, what it did not collide with before this write. */
  newConflicts: string[];
  /** How many effect jobs were enqueued (the also-jobs excluded). */
  effectJobs: number;
}

/** Write one appointment change with everything that must commit with it, in the caller's transaction. */
export async function commitAppointment(trx: Transaction<DB>, hub: Hub, w: AppointmentWrite): Promise<Committed> {
  const at = hub.clock.now().toISOString();
  const { before, next, actor } = w;
  const effects = w.effects ?? 'all';
  // Written over only the revision it was read at: a change committed in between (a staff edit beside a
  // platform's delivery, a job re-run after a crash) is never overwritten by an older copy.
  if (!(await saveAppointment(trx, next, !before, before?.revision))) {
    throw new MeridianError('concurrent_change', 'the appointment was changed by someone else at the same moment; read it again and retry');
  }
  const audit: AuditInput[] = [];
  const jobs: NewJob[] = [];
  let conflicts = next.conflicts;
  let newConflicts: string[] = [];
  if (effects === 'unchanged') {
    if (w.action) audit.push({ at, actor, action: w.action, entityType: 'appointment', entityId: next.id, meta: w.meta });
  } else if (effects === 'rerender') {
    if (w.action) audit.push({ at, actor, action: w.action, entityType: 'appointment', entityId: next.id, before: auditView(before), after: auditView(next), meta: w.meta });
    jobs.push(...(await targetJobsFor(trx, next, before, hub.cache)));
  } else {
    conflicts = await refreshConflicts(trx, next, before?.conflicts ?? []);
    if (w.action) audit.push({ at, actor, action: w.action, entityType: 'appointment', entityId: next.id, before: auditView(before), after: auditView(next), meta: w.meta });
    audit.push(...(w.alsoAudit ?? []));
    newConflicts = conflicts.filter((id) => !(before?.conflicts ?? []).includes(id));
    if (newConflicts.length) {
      audit.push({ at, actor, action: 'appointment.double_booked', entityType: 'appointment', entityId: next.id, meta: { with: newConflicts, ...(w.overridden ? { overridden: true } : {}) } });
    }
    jobs.push(...(await effectJobsFor(trx, hub, next, before, at)));
    if (newConflicts.length && w.alertStaff) {
      jobs.push(...(await staffAlertJobs(trx, next.clinicId, {
        type: 'double_booking', ref: `${next.id}@r${next.revision}`,
        summary: `Appointment ${next.id} (${next.start} to ${next.end}, practitioner ${next.practitionerId}) arrived from ${w.alertStaff.from} overlapping ${newConflicts.length} other booking(s): ${newConflicts.join(', ')}.`,
      }, hub.cache)));
    }
  }
  const effectJobs = jobs.length;
  if (effects !== 'all') audit.push(...(w.alsoAudit ?? []));
  jobs.push(...(w.alsoJobs ?? []));
  await appendAudit(trx, hub.store.dialect, audit);
  if (jobs.length) await enqueue(trx, jobs, at);
  return { appointment: next, conflicts, newConflicts, effectJobs };
}

/**
 * Run `write` (one transaction that goes through the door) again when it met a concurrent change: each
 * attempt reads the appointment afresh. After `attempts`, the conflict is the caller's answer.
 */
export async function retryConcurrent<T>(write: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof MeridianError && err.code === 'concurrent_change') || i >= attempts) throw err;
    }
  }
}
