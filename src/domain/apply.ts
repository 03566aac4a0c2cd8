// Applying a SourceChange to the schedule: dedupe, ordering, reschedule stitching. Pure: the caller
// loads the state named here, calls `decide`, and writes what it returns in one transaction.
import { createHash } from 'node:crypto';
import { MAX_APPOINTMENT_MS } from './conflicts.ts';
import { cleanEmail } from './contact.ts';
import type { Appointment, AppointmentStatus, ChangeKind, Patient, SourceChange } from './types.ts';

/** What we remember per external id of a connection (the ordering and dedupe state). */
export interface RefState {
  externalId: string;
  /** Undefined for a tombstone: we saw a change for this id but had nothing to create from it. */
  appointmentId?: string;
  /** This external id was replaced by another (a reschedule as cancel + new booking). */
  superseded: boolean;
  lastOccurredAt?: string;
  lastVersion?: number;
  lastHash?: string;
  lastKind?: ChangeKind;
}

/** The change with the connection's refs already mapped to Meridian ids. */
export interface MappedRefs {
  practitionerId?: string;
  serviceId?: string;
  locationId?: string;
}

export interface DecideInput {
  change: SourceChange;
  hash: string;
  connectionId: string;
  clinicId: string;
  /** State of `change.externalId`, if seen before. */
  ref?: RefState;
  /** State of `change.replacesExternalId`, if any and seen before. */
  replacedRef?: RefState;
  /** The appointment `ref` (or else `replacedRef`) points at. */
  existing?: Appointment;
  mapped: MappedRefs;
  /** Id for a new appointment, if one is created. */
  newId: string;
  now: string;
  /** Zone used when the platform gives none. */
  defaultTimeZone: string;
}

export type IgnoreReason = 'duplicate' | 'stale' | 'superseded';

export type Decision =
  | { action: 'ignore'; reason: IgnoreReason }
  /** Nothing to show, but remember the ref so a late older change stays ignored. */
  | { action: 'tombstone'; ref: RefState; replacedRef?: RefState }
  | { action: 'create'; next: Appointment; ref: RefState; replacedRef?: RefState }
  | { action: 'update'; before: Appointment; next: Appointment; ref: RefState; replacedRef?: RefState; material: boolean };

export class ChangeRejected extends Error {
  constructor(public code: 'unmapped_practitioner' | 'incomplete_booking' | 'invalid_times', message: string) {
    super(message);
    this.name = 'ChangeRejected';
  }
}

/** Content hash of a change: what it says, not when or how it was delivered. */
export function contentHash(c: SourceChange): string {
  const content = {
    platform: c.platform,
    externalId: c.externalId,
    kind: c.kind,
    replacesExternalId: c.replacesExternalId ?? null,
    version: c.version ?? null,
    appointment: c.appointment,
  };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

const KIND_RANK: Record<ChangeKind, number> = { upsert: 0, no_show: 1, cancel: 2 };

/** True when `c` (with `hash`) must not overwrite what `ref` last applied. */
export function isStale(c: SourceChange, hash: string, ref: RefState): boolean {
  if (c.version !== undefined && ref.lastVersion !== undefined && c.version !== ref.lastVersion) {
    return c.version < ref.lastVersion;
  }
  if (!ref.lastOccurredAt) return false;
  const a = Date.parse(c.occurredAt);
  const b = Date.parse(ref.lastOccurredAt);
  if (a !== b) return a < b;
  // Same instant: a deterministic tie-break so any delivery order converges.
  const ra = KIND_RANK[c.kind];
  const rb = KIND_RANK[ref.lastKind ?? 'upsert'];
  if (ra !== rb) return ra < rb;
  return hash < (ref.lastHash ?? '');
}

function statusFor(c: SourceChange): AppointmentStatus {
  if (c.kind === 'cancel') return 'cancelled';
  if (c.kind === 'no_show') return 'no_show';
  const s = c.appointment.status;
  return s && s !== 'cancelled' && s !== 'no_show' ? s : 'booked';
}

function refAfter(c: SourceChange, hash: string, appointmentId: string | undefined, prev?: RefState): RefState {
  return {
    externalId: c.externalId,
    appointmentId: appointmentId ?? prev?.appointmentId,
    superseded: false,
    lastOccurredAt: c.occurredAt,
    lastVersion: c.version ?? prev?.lastVersion,
    lastHash: hash,
    lastKind: c.kind,
  };
}

function supersede(replacesExternalId: string | undefined, appointmentId: string, prev?: RefState): RefState | undefined {
  if (!replacesExternalId) return undefined;
  return { ...(prev ?? { externalId: replacesExternalId }), externalId: replacesExternalId, appointmentId, superseded: true };
}

function patientFrom(p: Partial<Patient> | undefined, fallback?: Patient): Patient {
  const name = p?.name?.trim() || fallback?.name || 'Unknown patient';
  return {
    name,
    // A source's e-mail that is not one plausible address is not kept (domain/contact.ts).
    email: p?.email != null ? cleanEmail(p.email) : fallback?.email,
    phone: p?.phone ?? fallback?.phone,
    timeZone: p?.timeZone ?? fallback?.timeZone,
  };
}

function checkTimes(start: string, end: string): void {
  const s = Date.parse(start);
  const e = Date.parse(end);
  if (!Number.isFinite(s) || !Number.isFinite(e)) throw new ChangeRejected('invalid_times', 'start or end is not an instant');
  if (e <= s) throw new ChangeRejected('invalid_times', 'end must be after start');
  if (e - s > MAX_APPOINTMENT_MS) throw new ChangeRejected('invalid_times', 'an appointment cannot last longer than 24 hours')
}

/**
 * A change that says nothing about the booking but its status (a no-show taken back, say Cal.com's
 * BOOKING_NO_SHOW_UPDATED): it changes the status of the appointment and nothing else — not the practitioner,
 * location or zone a connection's defaults would otherwise supply. (The zone may have been filled in from the
 * mapped practitioner; the change still names no time.)
 */
function statusOnly(a: SourceChange['appointment']): boolean {
  return !a.start && !a.end && !a.practitionerRef && !a.practitionerEmail && !a.serviceRef && !a.locationRef && !a.patient && a.notes === undefined;
}

/** The fields that, when changed, are worth a new revision (and writes to every target). */
export function materialKey(a: Appointment): string {
  return canonicalJson({
    practitionerId: a.practitionerId, locationId: a.locationId, serviceId: a.serviceId, roomId: a.roomId,
    patient: a.patient, start: a.start, end: a.end, timeZone: a.timeZone, status: a.status, notes: a.notes,
    externalId: a.origin.externalId,
  });
}

export function decide(input: DecideInput): Decision {
  const { change: c, hash, ref, replacedRef } = input;
  if (ref?.superseded) return { action: 'ignore', reason: 'superseded' };
  if (ref?.lastHash === hash) return { action: 'ignore', reason: 'duplicate' };
  if (ref && isStale(c, hash, ref)) return { action: 'ignore', reason: 'stale' };

  const a = c.appointment;
  const existing = input.existing;

  if (!existing) {
    const hasBooking = Boolean(a.start && a.end);
    if (!hasBooking) {
      if (c.kind === 'upsert' && statusOnly(a)) {
        throw new ChangeRejected('incomplete_booking', `only a status (${a.status ?? 'booked'}) for a booking Meridian does not hold: no times to create it from`);
      }
      if (c.kind === 'upsert') throw new ChangeRejected('incomplete_booking', 'the booking has no start or end time');
      // A cancel or no-show for something we never saw and cannot show: remember it only.
      return { action: 'tombstone', ref: refAfter(c, hash, undefined, ref) };
    }
    if (!input.mapped.practitionerId) {
      throw new ChangeRejected('unmapped_practitioner', `no practitioner is mapped for ref ${a.practitionerRef ?? '(none)'}`);
    }
    checkTimes(a.start!, a.end!);
    const next: Appointment = {
      id: input.newId,
      clinicId: input.clinicId,
      locationId: input.mapped.locationId,
      practitionerId: input.mapped.practitionerId,
      serviceId: input.mapped.serviceId,
      patient: patientFrom(a.patient),
      start: a.start!,
      end: a.end!,
      timeZone: a.timeZone ?? input.defaultTimeZone,
      status: statusFor(c),
      notes: a.notes,
      origin: { platform: c.platform, connectionId: input.connectionId, externalId: c.externalId },
      revision: 1,
      conflicts: [],
      createdAt: input.now,
      updatedAt: input.now,
    };
    return { action: 'create', next, ref: refAfter(c, hash, next.id), replacedRef: supersede(c.replacesExternalId, next.id, replacedRef) };
  }

  const next: Appointment = {
    ...existing,
    status: statusFor(c),
    origin: { ...existing.origin, externalId: c.externalId },
  };
  // The platform told us its state: whatever a staff edit left diverging, the two now agree again.
  delete next.diverged;
  if (c.kind === 'upsert' && !statusOnly(a)) {
    if (a.start) next.start = a.start;
    if (a.end) next.end = a.end;
    if (a.timeZone) next.timeZone = a.timeZone;
    if (a.patient) next.patient = patientFrom(a.patient, existing.patient);
    if (a.notes !== undefined) next.notes = a.notes;
    if (input.mapped.practitionerId) next.practitionerId = input.mapped.practitionerId;
    if (input.mapped.serviceId) next.serviceId = input.mapped.serviceId;
    if (input.mapped.locationId) next.locationId = input.mapped.locationId;
    checkTimes(next.start, next.end);
  }
  const material = materialKey(next) !== materialKey(existing);
  if (material) {
    next.revision = existing.revision + 1;
    next.updatedAt = input.now;
  }
  return {
    action: 'update',
    before: existing,
    next,
    material,
    ref: refAfter(c, hash, existing.id, ref),
    replacedRef: supersede(c.replacesExternalId, existing.id, replacedRef),
  };
}
