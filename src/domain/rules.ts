// The rules of a change made in Meridian, as pure functions: which status moves are allowed, what makes a
// valid time span, what a staff edit asks of the booking platform the booking came from, and whether a
// target should hold an event for an appointment. The engine applies them; they do no I/O.
import { MAX_APPOINTMENT_MS } from './conflicts.ts';
import { MeridianError } from './errors.ts';
import { toUtc } from './time.ts';
import type { Appointment, AppointmentStatus } from './types.ts';

/** The status moves staff may make (a source's own statuses follow the platform, not these). */
export const STATUS_MOVES: Record<AppointmentStatus, readonly AppointmentStatus[]> = {
  requested: ['booked', 'cancelled'],
  booked: ['no_show', 'completed', 'cancelled'],
  no_show: ['booked', 'completed'],
  completed: ['booked', 'no_show'],
  cancelled: ['booked'],
};

export function checkStatusMove(from: AppointmentStatus, to: AppointmentStatus): void {
  if (!STATUS_MOVES[from].includes(to)) throw new MeridianError('invalid_transition', `cannot go from ${from} to ${to}`);
}

/** One instant given by a person or a form, in UTC; `what` names it in the error. */
export function validInstant(s: string, what: string): string {
  try {
    return toUtc(s);
  } catch {
    throw new MeridianError('invalid_time', `${what} must be an ISO-8601 instant with an offset or Z`);
  }
}

/** A span that ends after it starts and lasts at most a day (the conflict search relies on that bound). */
export function validSpan(start: string, end: string): { start: string; end: string } {
  let s: string;
  let e: string;
  try {
    s = toUtc(start);
    e = toUtc(end);
  } catch {
    throw new MeridianError('invalid_time', 'start and end must be ISO-8601 instants with an offset or Z');
  }
  if (Date.parse(e) <= Date.parse(s)) throw new MeridianError('invalid_time', 'end must be after start');
  if (Date.parse(e) - Date.parse(s) > MAX_APPOINTMENT_MS) throw new MeridianError('invalid_time', 'an appointment cannot last longer than 24 hours');
  return { start: s, end: e };
}

export type SourceWrite = 'cancel' | 'no_show' | 'reschedule' | 'rebook';

/** What a staff edit asks of the booking platform the appointment came from (nothing for a completed visit). */
export function sourceWriteFor(before: Appointment, next: Appointment): SourceWrite | undefined {
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

/** What a booking platform's API lets Meridian write back (from its connector's descriptor). */
export interface WriteBackAbility {
  displayName: string;
  /** The connector has a write-back at all. */
  writeBack: boolean;
  writeCancel?: boolean;
  writeNoShow?: boolean;
  writeReschedule?: boolean;
}

export type SourceFollow = { action: 'none' } | { action: 'write_back' } | { action: 'diverge'; reason: string };

/**
 * A staff edit of a platform's booking: written back where the platform's API can take it, else the
 * appointment diverges (staff see that the patient's booking tool still shows the old state).
 * `ability` is undefined when the origin is no booking platform (a lead form's request, a manual booking).
 */
export function followSource(before: Appointment, next: Appointment, ability: WriteBackAbility | undefined): SourceFollow {
  if (next.origin.platform === 'manual' || !ability) return { action: 'none' };
  const write = sourceWriteFor(before, next);
  if (!write) return { action: 'none' };
  const can = ability.writeBack
    && (write === 'cancel' ? ability.writeCancel : write === 'no_show' ? ability.writeNoShow : write === 'reschedule' ? ability.writeReschedule : false);
  if (!can) return { action: 'diverge', reason: `${ability.displayName} cannot ${WRITE_WORDS[write]} through its API; change it there too` };
  return { action: 'write_back' };
}

/** A calendar holds an event only while the appointment is not cancelled; a CRM keeps the record, marked. */
export function shouldExist(a: Pick<Appointment, 'status'>, kind: 'calendar' | 'crm' | 'feed'): boolean {
  return kind === 'crm' || a.status !== 'cancelled';
}
