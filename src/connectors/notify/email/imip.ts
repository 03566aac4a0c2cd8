// The iTIP object (RFC 5546) an iMIP message (RFC 6047) carries: METHOD at calendar level, ORGANIZER =
// the sender's bare address, the recipient as ATTENDEE with RSVP=FALSE, a VTIMEZONE for the TZID, the
// same UID for every message about one appointment and a SEQUENCE that only rises (targets.md §7).
import { ICalAttendeeRole, ICalAttendeeStatus, ICalCalendarMethod } from 'ical-generator';
import type { Invitation } from '../../types.ts';
import { buildCalendar, paramValue } from '../../shared/icalendar.ts';

export interface Party {
  email: string;
  name?: string;
}

/** `meridian-<id>` becomes `meridian-<id>@<sender's domain>`: stable while the clinic keeps its mailbox. */
export function uidFor(inv: Invitation, organizer: Party): string {
  return inv.uid.includes('@') ? inv.uid : `${inv.uid}@${organizer.email.split('@')[1] ?? 'meridian.local'}`;
}

export function itipObject(inv: Invitation, organizer: Party, attendee: Party, stamp: Date): string {
  const cal = buildCalendar({
    stamp,
    events: [{
      uid: uidFor(inv, organizer), sequence: inv.sequence, start: inv.start, end: inv.end, timeZone: inv.timeZone,
      summary: inv.summary, description: inv.description, location: inv.location,
      status: inv.method === 'CANCEL' ? 'cancelled' : 'confirmed',
    }],
  });
  cal.method(inv.method === 'CANCEL' ? ICalCalendarMethod.CANCEL : ICalCalendarMethod.REQUEST);
  const ev = cal.events()[0];
  // Names go into CN= parameters: encoded so a quote in a name cannot end the parameter (paramValue).
  ev.organizer({ name: paramValue(organizer.name ?? organizer.email), email: organizer.email });
  ev.createAttendee({ email: attendee.email, name: attendee.name === undefined ? undefined : paramValue(attendee.name), rsvp: false, role: ICalAttendeeRole.REQ, status: ICalAttendeeStatus.NEEDSACTION });
  return cal.toString();
}
