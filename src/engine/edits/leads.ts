// Staff triage of lead-form requests: confirm (the requested appointment, or one placed where staff put it,
// becomes booked) or decline (its requested appointment is cancelled with the reason).
import { randomUUID } from 'node:crypto';
import { findConflicts, MAX_APPOINTMENT_MS } from '../../domain/conflicts.ts';
import { MeridianError } from '../../domain/errors.ts';
import { toUtc } from '../../domain/time.ts';
import { validInstant } from '../../domain/rules.ts';
import type { Appointment } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import type { LeadTable } from '../../store/schema.ts';
import { busyOverlaps, getAppointment, overlapCandidates, type Exec } from '../../store/repo.ts';
import { commitAppointment, retryConcurrent } from '../appointments/commit.ts';
import type { Hub } from '../hub/hub.ts';
import { DEFAULTS, leadView, type LeadView } from '../inbound/leads.ts';

async function openLead(trx: Exec, id: string): Promise<LeadTable> {
  const r = await trx.selectFrom('lead').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw new MeridianError('not_found', `no lead ${id}`);
  if (r.status !== 'requested' && r.status !== 'needs_triage') throw new MeridianError('already_decided', `this lead is already ${r.status}`);
  return r;
}

export interface ConfirmInput {
  practitionerId?: string;
  start?: string;
  end?: string;
  override?: boolean;
}

async function assertFree(trx: Exec, a: Appointment, override: boolean | undefined): Promise<void> {
  const clash = findConflicts(a, await overlapCandidates(trx, a));
  const busy = await busyOverlaps(trx, a);
  if (override || (clash.length === 0 && busy.length === 0)) return;
  throw new MeridianError('double_booking', 'this would double-book the practitioner', { conflicts: [...clash, ...busy.map((b) => b.id)] });
}

/** Staff accept a lead: its appointment (placed by Meridian, or where staff put it) becomes `booked`. */
export async function confirmLead(hub: Hub, id: string, input: ConfirmInput, actor: string): Promise<{ lead: LeadView; appointment: Appointment }> {
  const r = await retryConcurrent(() => hub.store.db.transaction().execute(async (trx) => {
    const lead = await openLead(trx, id);
    const at = hub.clock.now().toISOString();
    const before = lead.appointment_id ? await getAppointment(trx, lead.appointment_id) : undefined;
    const practitionerId = input.practitionerId ?? before?.practitionerId;
    if (!practitionerId || (!input.start && !before)) throw new MeridianError('placement_needed', 'this lead has no slot yet: give practitionerId and start');
    const p = await trx.selectFrom('practitioner').select(['clinic_id', 'location_ids', 'time_zone']).where('id', '=', practitionerId).executeTakeFirst();
    if (!p) throw new MeridianError('unknown_practitioner', `no practitioner ${practitionerId}`);
    const service = lead.service_id ? await trx.selectFrom('service').select('duration_minutes').where('id', '=', lead.service_id).executeTakeFirst() : undefined;
    const lengthMs = before ? Date.parse(before.end) - Date.parse(before.start) : (service?.duration_minutes ?? DEFAULTS.defaultDurationMinutes) * 60_000;
    const start = input.start ? validInstant(input.start, 'start') : before!.start;
    const end = input.end ? validInstant(input.end, 'end') : input.start ? toUtc(new Date(Date.parse(start) + lengthMs)) : before!.end;
    if (Date.parse(end) <= Date.parse(start) || Date.parse(end) - Date.parse(start) > MAX_APPOINTMENT_MS) throw new MeridianError('invalid_time', 'end must be after start, within 24 hours');
    const locs = JSON.parse(p.location_ids) as string[];
    const locationId = before && before.practitionerId === practitionerId ? before.locationId : locs.length === 1 ? locs[0] : undefined;
    const loc = locationId ? await trx.selectFrom('location').select('time_zone').where('id', '=', locationId).executeTakeFirst() : undefined;
    const clinic = await trx.selectFrom('clinic').select('time_zone').where('id', '=', lead.clinic_id).executeTakeFirstOrThrow();
    const next: Appointment = before
      ? { ...structuredClone(before), practitionerId, locationId, start, end, status: 'booked', revision: before.revision + 1, updatedAt: at }
      : {
        id: randomUUID(), clinicId: lead.clinic_id, locationId, practitionerId, serviceId: lead.service_id ?? undefined,
        patient: { name: lead.patient_name, email: lead.patient_email ?? undefined, phone: lead.patient_phone ?? undefined },
        start, end, timeZone: p.time_zone ?? loc?.time_zone ?? clinic.time_zone, status: 'booked', notes: lead.notes ?? undefined,
        origin: { platform: lead.platform, connectionId: lead.connection_id, externalId: lead.submission_id }, revision: 1, conflicts: [], createdAt: at, updatedAt: at,
      };
    if (before && before.practitionerId !== practitionerId) next.timeZone = p.time_zone ?? loc?.time_zone ?? clinic.time_zone;
    await assertFree(trx, next, input.override);
    await commitAppointment(trx, hub, {
      before, next, actor, action: before ? 'appointment.confirmed' : 'appointment.created', meta: { lead: id }, overridden: input.override,
      alsoAudit: [{ at, actor, action: 'lead.confirmed', entityType: 'lead', entityId: id, meta: { appointmentId: next.id, moved: Boolean(before && (before.start !== start || before.practitionerId !== practitionerId)) } }],
    });
    await trx.updateTable('lead').set({ status: 'booked', appointment_id: next.id, practitioner_id: practitionerId, decided_by: actor, updated_at: at }).where('id', '=', id).execute();
    return { lead: leadView((await trx.selectFrom('lead').selectAll().where('id', '=', id).executeTakeFirstOrThrow())), appointment: next };
  }));
  hub.onJobs();
  return r;
}

export interface DeclineAllInput {
  connectionId?: string;
  /** Leads received at or after this instant. */
  since?: string;
  /** An e-mail or phone number as the lead gave it. */
  contact?: string;
  reason: string;
}

/**
 * Staff clear a flood in one action: every open lead matching is declined through declineLead, one after the
 * other (each in its own transaction, so one that staff decided meanwhile is simply skipped).
 */
export async function declineLeads(hub: Hub, input: DeclineAllInput, actor: string): Promise<{ declined: number; leads: string[] }> {
  let q = hub.store.db.selectFrom('lead').select('id').where('status', 'in', ['requested', 'needs_triage']);
  if (input.connectionId) q = q.where('connection_id', '=', input.connectionId);
  if (input.since) q = q.where('received_at', '>=', validInstant(input.since, 'since'));
  if (input.contact) {
    const c = input.contact.trim();
    q = q.where((eb) => eb.or([eb('patient_email', '=', c.toLowerCase()), eb('patient_email', '=', c), eb('patient_phone', '=', c)]));
  }
  const ids = (await q.orderBy('received_at').orderBy('id').execute()).map((r) => r.id);
  const leads: string[] = [];
  for (const id of ids) {
    try {
      await declineLead(hub, id, input.reason, actor);
      leads.push(id);
    } catch (err) {
      if (!(err instanceof MeridianError && err.code === 'already_decided')) throw err;
    }
  }
  return { declined: leads.length, leads };
}

/** Staff turn a lead down: its requested appointment (if any) is cancelled with the reason. */
export async function declineLead(hub: Hub, id: string, reason: string | undefined, actor: string): Promise<LeadView> {
  const r = await retryConcurrent(() => hub.store.db.transaction().execute(async (trx) => {
    const lead = await openLead(trx, id);
    const at = hub.clock.now().toISOString();
    const audit: AuditInput[] = [];
    const before = lead.appointment_id ? await getAppointment(trx, lead.appointment_id) : undefined;
    if (before && before.status !== 'cancelled') {
      const next: Appointment = {
        ...structuredClone(before), status: 'cancelled', revision: before.revision + 1, updatedAt: at,
        notes: reason ? [before.notes, `Declined: ${reason}`].filter(Boolean).join('\n') : before.notes,
      };
      await commitAppointment(trx, hub, { before, next, actor, action: 'appointment.cancelled', meta: { lead: id } });
    }
    await trx.updateTable('lead').set({ status: 'declined', decided_by: actor, decision_reason: reason ?? null, updated_at: at }).where('id', '=', id).execute();
    audit.push({ at, actor, action: 'lead.declined', entityType: 'lead', entityId: id, meta: { appointmentId: lead.appointment_id ?? undefined, reason } });
    await appendAudit(trx, hub.store.dialect, audit);
    return leadView((await trx.selectFrom('lead').selectAll().where('id', '=', id).executeTakeFirstOrThrow()));
  }));
  hub.onJobs();
  return r;
}
