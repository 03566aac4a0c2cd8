// Manual updates by office staff: create, reschedule, cancel, mark no-show / completed. The same
// transaction shape as a source change: appointment + conflicts + audit + outbox.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { getSource } from '../../connectors/registry.ts';
import type { WriteBackRequest } from '../../connectors/types.ts';
import { findConflicts, MAX_APPOINTMENT_MS } from '../../domain/conflicts.ts';
import { isIanaZone, toUtc } from '../../domain/time.ts';
import type { Appointment, AppointmentStatus, Patient } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import { WRITE_BACK, type Job, type JobResult, type NewJob } from '../../domain/jobs.ts';
import { enqueue } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import { busyOverlaps, getAppointment, overlapCandidates, saveAppointment, type Exec } from '../../store/repo.ts';
import { auditView, refreshConflicts } from '../inbound/apply.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { effectJobsFor } from '../effects/plan.ts';
import { settleDeliveriesFor } from '../inbound/ingest.ts';

export { WRITE_BACK };

export class StaffError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: Record<string, unknown>) {
    super(message);
    this.name = 'StaffError';
  }
}

export interface ConflictInfo {
  id: string;
  start: string;
  end: string;
  practitionerId: string;
  source: string;
}

export interface CreateInput {
  practitionerId: string;
  start: string;
  end: string;
  timeZone?: string;
  patient: Patient;
  serviceId?: string;
  locationId?: string;
  roomId?: string;
  notes?: string;
  status?: 'booked' | 'requested';
  override?: boolean;
}

export interface RescheduleInput {
  start: string;
  end: string;
  practitionerId?: string;
  roomId?: string;
  override?: boolean;
}

async function checkConflicts(trx: Exec, next: Appointment, override: boolean | undefined): Promise<void> {
  const cands = await overlapCandidates(trx, next);
  const ids = findConflicts(next, cands);
  const busy = await busyOverlaps(trx, next);
  if ((ids.length === 0 && busy.length === 0) || override) return;
  const info: ConflictInfo[] = [
    ...cands.filter((c) => ids.includes(c.id)).map((c) => ({ id: c.id, start: c.start, end: c.end, practitionerId: c.practitionerId, source: c.origin.platform })),
    ...busy.map((b) => ({ id: b.id, start: b.start, end: b.end, practitionerId: next.practitionerId, source: `calendar:${b.connectionId}` })),
  ];
  const what = [ids.length ? `${ids.length} appointment(s)` : '', busy.length ? `${busy.length} busy time(s) in the practitioner's calendar` : ''].filter(Boolean).join(' and ');
  throw new StaffError(409, 'double_booking', `this would double-book: it overlaps ${what}`, { conflicts: info });
}

function validTimes(start: string, end: string): { start: string; end: string } {
  let s: string;
  let e: string;
  try {
    s = toUtc(start);
    e = toUtc(end);
  } catch {
    throw new StaffError(400, 'invalid_time', 'start and end must be ISO-8601 instants with an offset or Z');
  }
  if (Date.parse(e) <= Date.parse(s)) throw new StaffError(400, 'invalid_time', 'end must be after start');
  if (Date.parse(e) - Date.parse(s) > MAX_APPOINTMENT_MS) throw new StaffError(400, 'invalid_time', 'an appointment cannot last longer than 24 hours');
  return { start: s, end: e };
}

async function commit(trx: Transaction<DB>, hub: Hub, before: Appointment | undefined, next: Appointment, actor: string, action: string, extraJobs: NewJob[] = [], diverged?: string): Promise<Appointment> {
  const at = hub.clock.now().toISOString();
  await saveAppointment(trx, next, !before);
  const conflicts = await refreshConflicts(trx, next, before?.conflicts ?? []);
  const audit: AuditInput[] = [{ at, actor, action, entityType: 'appointment', entityId: next.id, before: auditView(before), after: auditView(next) }];
  if (diverged) audit.push({ at, actor, action: 'source.diverged', entityType: 'appointment', entityId: next.id, meta: { connection: next.origin.connectionId, reason: diverged } });
  const fresh = conflicts.filter((id) => !(before?.conflicts ?? []).includes(id));
  if (fresh.length) audit.push({ at, actor, action: 'appointment.double_booked', entityType: 'appointment', entityId: next.id, meta: { with: fresh, overridden: true } });
  await appendAudit(trx, hub.store.dialect, audit);
  await enqueue(trx, [...(await effectJobsFor(trx, hub, next, before, at)), ...extraJobs], at);
  return next;
}

async function load(trx: Exec, id: string): Promise<Appointment> {
  const a = await getAppointment(trx, id);
  if (!a) throw new StaffError(404, 'not_found', `no appointment ${id}`);
  return a;
}

async function checkPractitioner(trx: Exec, id: string): Promise<{ clinicId: string; locationIds: string[] }> {
  const p = await trx.selectFrom('practitioner').select(['clinic_id', 'location_ids']).where('id', '=', id).executeTakeFirst();
  if (!p) throw new StaffError(422, 'unknown_practitioner', `no practitioner ${id}`);
  return { clinicId: p.clinic_id, locationIds: JSON.parse(p.location_ids) };
}

type SourceWrite = 'cancel' | 'no_show' | 'reschedule' | 'rebook';

/** What a staff edit asks of the booking platform the appointment came from (nothing for a completed visit). */
function sourceWriteFor(before: Appointment, next: Appointment): SourceWrite | undefined {
  if (next.status !== before.status) {
    if (next.status === 'cancelled') return 'cancel';
    if (next.status === 'no_show') return 'no_show';
    if (before.status === 'cancelled') return 'rebook';
  }
  if (next.start !== before.start || next.end !== before.end) return 'reschedule';
  return undefined;
}

const WRITE_WORDS: Record<SourceWrite, string> = {
  cancel: 'cancel a booking', no_show: 'mark a no-show', reschedule: 'move a booking', rebook: 'restore a cancelled booking',
};

/**
 * A staff edit of a platform's booking: a write-back job where the platform's API can take it, else the
 * appointment is marked as diverging (staff see that the patient's booking tool still shows the old state).
 */
function followSource(before: Appointment, next: Appointment): { jobs: NewJob[]; diverged?: string } {
  if (next.origin.platform === 'manual') return { jobs: [] };
  const write = sourceWriteFor(before, next);
  if (!write) return { jobs: [] };
  const src = getSource(next.origin.platform);
  // Not a booking platform's booking (a lead form's request, say): there is nothing to write back to.
  if (!src) return { jobs: [] };
  const caps = src.descriptor.capabilities;
  const can = Boolean(src.writeBack)
    && (write === 'cancel' ? caps.writeCancel : write === 'no_show' ? caps.writeNoShow : write === 'reschedule' ? caps.writeReschedule : false);
  if (!can) return { jobs: [], diverged: `${src.descriptor.displayName} cannot ${WRITE_WORDS[write]} through its API; change it there too` };
  return { jobs: [{ kind: WRITE_BACK, payload: { appointmentId: next.id }, dedupeKey: `${WRITE_BACK}:${next.id}` }] };
}

export async function staffCreate(hub: Hub, input: CreateInput, actor: string): Promise<Appointment> {
  const { start, end } = validTimes(input.start, input.end);
  if (input.timeZone && !isIanaZone(input.timeZone)) throw new StaffError(400, 'invalid_time_zone', `unknown IANA time zone ${input.timeZone}`);
  const r = await hub.store.db.transaction().execute(async (trx) => {
    const p = await checkPractitioner(trx, input.practitionerId);
    const locationId = input.locationId ?? (p.locationIds.length === 1 ? p.locationIds[0] : undefined);
    const loc = locationId ? await trx.selectFrom('location').select('time_zone').where('id', '=', locationId).executeTakeFirst() : undefined;
    if (locationId && !loc) throw new StaffError(422, 'unknown_location', `no location ${locationId}`);
    const clinic = await trx.selectFrom('clinic').select('time_zone').where('id', '=', p.clinicId).executeTakeFirstOrThrow();
    const now = hub.clock.now().toISOString();
    const id = randomUUID();
    const next: Appointment = {
      id, clinicId: p.clinicId, locationId, practitionerId: input.practitionerId, serviceId: input.serviceId, roomId: input.roomId,
      patient: input.patient, start, end, timeZone: input.timeZone ?? loc?.time_zone ?? clinic.time_zone,
      status: input.status ?? 'booked', notes: input.notes,
      origin: { platform: 'manual', connectionId: 'manual', externalId: id }, revision: 1, conflicts: [], createdAt: now, updatedAt: now,
    };
    await checkConflicts(trx, next, input.override);
    return commit(trx, hub, undefined, next, actor, 'appointment.created');
  });
  hub.onJobs();
  return r;
}

async function edit(hub: Hub, id: string, actor: string, action: string, change: (a: Appointment) => Appointment, opts: { override?: boolean; checkConflicts: boolean }): Promise<Appointment> {
  // Deliveries about this booking that arrived before the edit are applied before it.
  const origin = await hub.store.db.selectFrom('appointment').select(['origin_connection_id', 'origin_external_id']).where('id', '=', id).executeTakeFirst();
  if (origin?.origin_connection_id && origin.origin_external_id) await settleDeliveriesFor(hub, origin.origin_connection_id, origin.origin_external_id);
  const r = await hub.store.db.transaction().execute(async (trx) => {
    const before = await load(trx, id);
    const next = change(structuredClone(before));
    next.revision = before.revision + 1;
    next.updatedAt = hub.clock.now().toISOString();
    if (opts.checkConflicts) await checkConflicts(trx, next, opts.override);
    const follow = followSource(before, next);
    if (follow.diverged) next.diverged = follow.diverged;
    else if (follow.jobs.length) delete next.diverged; // the write-back decides again
    return commit(trx, hub, before, next, actor, action, follow.jobs, follow.diverged);
  });
  hub.onJobs();
  return r;
}

export async function staffReschedule(hub: Hub, id: string, input: RescheduleInput, actor: string): Promise<Appointment> {
  const { start, end } = validTimes(input.start, input.end);
  if (input.practitionerId) await checkPractitioner(hub.store.db, input.practitionerId);
  return edit(hub, id, actor, 'appointment.rescheduled', (a) => {
    if (a.status === 'cancelled') throw new StaffError(409, 'cancelled', 'a cancelled appointment cannot be moved; rebook it instead');
    return { ...a, start, end, practitionerId: input.practitionerId ?? a.practitionerId, roomId: input.roomId ?? a.roomId };
  }, { override: input.override, checkConflicts: true });
}

export async function staffCancel(hub: Hub, id: string, reason: string | undefined, actor: string): Promise<Appointment> {
  return edit(hub, id, actor, 'appointment.cancelled', (a) => {
    if (a.status === 'cancelled') throw new StaffError(409, 'already_cancelled', 'this appointment is already cancelled');
    return { ...a, status: 'cancelled', notes: reason ? [a.notes, `Cancelled: ${reason}`].filter(Boolean).join('\n') : a.notes };
  }, { checkConflicts: false });
}

const STATUS_MOVES: Record<AppointmentStatus, AppointmentStatus[]> = {
  requested: ['booked', 'cancelled'],
  booked: ['no_show', 'completed', 'cancelled'],
  no_show: ['booked', 'completed'],
  completed: ['booked', 'no_show'],
  cancelled: ['booked'],
};

export async function staffSetStatus(hub: Hub, id: string, status: AppointmentStatus, actor: string, override?: boolean): Promise<Appointment> {
  return edit(hub, id, actor, `appointment.${status === 'booked' ? 'confirmed' : status}`, (a) => {
    if (!STATUS_MOVES[a.status].includes(status)) throw new StaffError(409, 'invalid_transition', `cannot go from ${a.status} to ${status}`);
    return { ...a, status };
  }, { checkConflicts: status === 'booked', override });
}

/** Write a staff edit back to the platform the booking came from. */
export async function runWriteBack(hub: Hub, job: Job<typeof WRITE_BACK>): Promise<JobResult> {
  const { appointmentId } = job.payload;
  const a = await getAppointment(hub.store.db, appointmentId);
  if (!a) return { ok: true, note: 'gone' };
  const conn = await loadConnection(hub, a.origin.connectionId);
  const src = getSource(conn.record.platform);
  if (!src?.writeBack) return { ok: true, note: 'not supported' };
  const req: WriteBackRequest = { externalId: a.origin.externalId, start: a.start, end: a.end, timeZone: a.timeZone, status: a.status };
  const r = await src.writeBack(req, connectionContext(hub, conn));
  const at = hub.clock.now().toISOString();
  if (!r.ok && r.failure.class !== 'permanent') return { ok: false, failure: r.failure, connectionId: conn.record.id };
  const diverged = r.ok ? null : `${src.descriptor.displayName} refused the change: ${r.failure.message}`;
  await hub.store.db.transaction().execute(async (trx) => {
    await trx.updateTable('appointment').set({ diverged }).where('id', '=', a.id).execute();
    await appendAudit(trx, hub.store.dialect, [{
      at, actor: `worker:${hub.nodeId}`, action: r.ok ? 'source.written_back' : 'source.diverged', entityType: 'appointment', entityId: a.id,
      meta: r.ok ? { connection: conn.record.id } : { connection: conn.record.id, reason: diverged },
    }]);
  });
  return { ok: true, note: r.ok ? 'written' : 'diverged' };
}
