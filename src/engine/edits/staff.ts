// Manual updates by office staff (and the practitioners' and patients' edits that act like them): create,
// reschedule, cancel, mark no-show / completed — through the same door as a platform's change
// (appointments/commit.ts), plus the write-back to the booking platform the booking came from.
import { randomUUID } from 'node:crypto';
import { getSource } from '../../connectors/registry.ts';
import type { WriteBackRequest } from '../../connectors/types.ts';
import { findConflicts } from '../../domain/conflicts.ts';
import { isIanaZone } from '../../domain/time.ts';
import type { Appointment, AppointmentStatus, Patient } from '../../domain/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { WRITE_BACK, type Job, type JobResult } from '../../domain/jobs.ts';
import { busyOverlaps, getAppointment, overlapCandidates, type Exec } from '../../store/repo.ts';
import { commitAppointment, retryConcurrent } from '../appointments/commit.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { settleDeliveriesFor } from '../inbound/ingest.ts';
import { MeridianError } from '../../domain/errors.ts';
import { checkStatusMove, followSource, validSpan } from '../../domain/rules.ts';

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
  throw new MeridianError('double_booking', `this would double-book: it overlaps ${what}`, { conflicts: info });
}

async function load(trx: Exec, id: string): Promise<Appointment> {
  const a = await getAppointment(trx, id);
  if (!a) throw new MeridianError('not_found', `no appointment ${id}`);
  return a;
}

async function checkPractitioner(trx: Exec, id: string): Promise<{ clinicId: string; locationIds: string[] }> {
  const p = await trx.selectFrom('practitioner').select(['clinic_id', 'location_ids']).where('id', '=', id).executeTakeFirst();
  if (!p) throw new MeridianError('unknown_practitioner', `no practitioner ${id}`);
  return { clinicId: p.clinic_id, locationIds: JSON.parse(p.location_ids) };
}

export async function staffCreate(hub: Hub, input: CreateInput, actor: string): Promise<Appointment> {
  const { start, end } = validSpan(input.start, input.end);
  if (input.timeZone && !isIanaZone(input.timeZone)) throw new MeridianError('invalid_time_zone', `unknown IANA time zone ${input.timeZone}`);
  const r = await hub.store.db.transaction().execute(async (trx) => {
    const p = await checkPractitioner(trx, input.practitionerId);
    const locationId = input.locationId ?? (p.locationIds.length === 1 ? p.locationIds[0] : undefined);
    const loc = locationId ? await trx.selectFrom('location').select('time_zone').where('id', '=', locationId).executeTakeFirst() : undefined;
    if (locationId && !loc) throw new MeridianError('unknown_location', `no location ${locationId}`);
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
    return (await commitAppointment(trx, hub, { before: undefined, next, actor, action: 'appointment.created', overridden: true })).appointment;
  });
  hub.onJobs();
  return r;
}

async function edit(hub: Hub, id: string, actor: string, action: string, change: (a: Appointment) => Appointment, opts: { override?: boolean; checkConflicts: boolean }): Promise<Appointment> {
  // Deliveries about this booking that arrived before the edit are applied before it.
  const origin = await hub.store.db.selectFrom('appointment').select(['origin_connection_id', 'origin_external_id']).where('id', '=', id).executeTakeFirst();
  if (origin?.origin_connection_id && origin.origin_external_id) {
    try {
      await settleDeliveriesFor(hub, origin.origin_connection_id, origin.origin_external_id);
    } catch (err) {
      if (err instanceof MeridianError) throw err;
      hub.log.error({ appointment: id, err: { message: (err as Error).message } }, 'applying the deliveries waiting about a booking failed; the edit was not made');
      throw new MeridianError('unavailable', 'the deliveries waiting about this booking could not be applied first, so the change was not made; try again');
    }
  }
  const r = await retryConcurrent(() => hub.store.db.transaction().execute(async (trx) => {
    const before = await load(trx, id);
    const next = change(structuredClone(before));
    next.revision = before.revision + 1;
    next.updatedAt = hub.clock.now().toISOString();
    if (opts.checkConflicts) await checkConflicts(trx, next, opts.override);
    const src = next.origin.platform === 'manual' ? undefined : getSource(next.origin.platform);
    const follow = followSource(before, next, src && { displayName: src.descriptor.displayName, writeBack: Boolean(src.writeBack), ...src.descriptor.capabilities });
    if (follow.action === 'diverge') next.diverged = follow.reason;
    else if (follow.action === 'write_back') delete next.diverged; // the write-back decides again
    const done = await commitAppointment(trx, hub, {
      before, next, actor, action, overridden: true,
      alsoAudit: follow.action === 'diverge' ? [{ at: next.updatedAt, actor, action: 'source.diverged', entityType: 'appointment', entityId: next.id, meta: { connection: next.origin.connectionId, reason: follow.reason } }] : [],
      alsoJobs: follow.action === 'write_back' ? [{ kind: WRITE_BACK, payload: { appointmentId: next.id }, dedupeKey: `${WRITE_BACK}:${next.id}` }] : [],
    });
    return done.appointment;
  }));
  hub.onJobs();
  return r;
}

export async function staffReschedule(hub: Hub, id: string, input: RescheduleInput, actor: string): Promise<Appointment> {
  const { start, end } = validSpan(input.start, input.end);
  if (input.practitionerId) await checkPractitioner(hub.store.db, input.practitionerId);
  return edit(hub, id, actor, 'appointment.rescheduled', (a) => {
    if (a.status === 'cancelled') throw new MeridianError('cancelled', 'a cancelled appointment cannot be moved; rebook it instead');
    return { ...a, start, end, practitionerId: input.practitionerId ?? a.practitionerId, roomId: input.roomId ?? a.roomId };
  }, { override: input.override, checkConflicts: true });
}

export async function staffCancel(hub: Hub, id: string, reason: string | undefined, actor: string): Promise<Appointment> {
  return edit(hub, id, actor, 'appointment.cancelled', (a) => {
    if (a.status === 'cancelled') throw new MeridianError('already_cancelled', 'this appointment is already cancelled');
    return { ...a, status: 'cancelled', notes: reason ? [a.notes, `Cancelled: ${reason}`].filter(Boolean).join('\n') : a.notes };
  }, { checkConflicts: false });
}

export async function staffSetStatus(hub: Hub, id: string, status: AppointmentStatus, actor: string, override?: boolean): Promise<Appointment> {
  return edit(hub, id, actor, `appointment.${status === 'booked' ? 'confirmed' : status}`, (a) => {
    checkStatusMove(a.status, status);
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
      meta: r.ok ? { connection: conn.record.id, revision: a.revision } : { connection: conn.record.id, revision: a.revision, reason: diverged },
    }]);
  });
  return { ok: true, note: r.ok ? 'written' : 'diverged' };
}
