// Double-booking detection: active appointments of one practitioner (or one room) that overlap.
import { ACTIVE_STATUSES, type Appointment } from './types.ts';
import { overlaps } from './time.ts';

type Slot = Pick<Appointment, 'id' | 'practitionerId' | 'roomId' | 'start' | 'end' | 'status'>;

export function isActive(a: Pick<Appointment, 'status'>): boolean {
  return ACTIVE_STATUSES.includes(a.status);
}

/** Ids of the candidates that collide with `a` (sorted, stable). */
export function findConflicts(a: Slot, candidates: readonly Slot[]): string[] {
  if (!isActive(a)) return [];
  const out: string[] = [];
  for (const b of candidates) {
    if (b.id === a.id || !isActive(b)) continue;
    const sameResource = b.practitionerId === a.practitionerId || (a.roomId !== undefined && a.roomId === b.roomId);
    if (sameResource && overlaps(a.start, a.end, b.start, b.end)) out.push(b.id);
  }
  return out.sort();
}

/**
 * No appointment is longer than this (a day). It bounds the conflict search to an index range scan
 * ("started within a day before"), so it is enforced wherever appointments are made.
 */
export const MAX_APPOINTMENT_MS = 24 * 3_600_000;
