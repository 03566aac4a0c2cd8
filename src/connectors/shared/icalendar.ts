// iCalendar writing and reading shared by connectors (ICS feeds now; CalDAV and iMIP later).
// Writing: ical-generator, with VTIMEZONE blocks from timezones-ical-library for every TZID used.
// Reading: ical.js. Times are given to the generator as Temporal.ZonedDateTime so DTSTART carries the
// wall-clock time in the appointment's zone; a wall time that occurs twice (the hour repeated when
// clocks go back) is written in UTC form instead, because `TZID=…:013000` would be ambiguous and
// RFC 5545 resolves it to the first occurrence, which may be wrong.
import ical, { ICalEventClass, ICalEventStatus, ICalEventTransparency, type ICalCalendar } from 'ical-generator';
import ICAL from 'ical.js';
import { Temporal } from 'temporal-polyfill';
import type { TargetEvent } from '../types.ts';
import { tzlib_get_ical_block } from 'timezones-ical-library';

export interface IcsEvent {
  uid: string;
  sequence: number;
  start: string;
  end: string;
  timeZone: string;
  summary: string;
  description?: string;
  location?: string;
  status: 'confirmed' | 'tentative' | 'cancelled';
  created?: string;
  lastModified?: string;
  /** CLASS:PRIVATE (calendar stores); feeds leave it out. */
  private?: boolean;
  /** Extra `X-` properties (our ids, so our own events are recognised when read back). */
  x?: Record<string, string>;
}

export interface IcsCalendar {
  /** Calendar name for subscribers (feeds); stored CalDAV objects have none. */
  name?: string;
  /** Calendar default zone (X-WR-TIMEZONE). */
  timeZone?: string;
  events: IcsEvent[];
  /** DTSTAMP of every event: when the feed was generated. */
  stamp: Date;
  /** Suggested refresh interval for subscribers (REFRESH-INTERVAL / X-PUBLISHED-TTL); feeds only. */
  ttlSeconds?: number;
}

function vtimezone(tz: string): string | null {
  const block = tzlib_get_ical_block(tz);
  return Array.isArray(block) && typeof block[0] === 'string' && block[0] ? block[0] : null;
}

/** True when this instant's wall-clock time in `tz` also names another instant (the repeated hour). */
export function isAmbiguousWallTime(instant: string, tz: string): boolean {
  const wall = Temporal.Instant.from(instant).toZonedDateTimeISO(tz).toPlainDateTime();
  const earlier = wall.toZonedDateTime(tz, { disambiguation: 'earlier' }).epochMilliseconds;
  const later = wall.toZonedDateTime(tz, { disambiguation: 'later' }).epochMilliseconds;
  return earlier !== later;
}

const STATUS = {
  confirmed: ICalEventStatus.CONFIRMED,
  tentative: ICalEventStatus.TENTATIVE,
  cancelled: ICalEventStatus.CANCELLED,
} as const;

/** The iCalendar event for one appointment as a target holds it (`uid` is the target's stable id for it). */
export function icsEventOf(e: TargetEvent, uid: string): IcsEvent {
  return {
    uid,
    sequence: e.revision,
    start: e.start,
    end: e.end,
    timeZone: e.timeZone,
    summary: e.title,
    description: e.description,
    location: e.location,
    status: e.status === 'cancelled' ? 'cancelled' : e.status === 'requested' ? 'tentative' : 'confirmed',
  };
}

export function buildCalendar(c: IcsCalendar): ICalCalendar {
  const cal = ical({
    name: c.name ?? null,
    prodId: { company: 'Meridian', product: 'Meridian', language: 'EN' },
    // No calendar-level zone: ical-generator would then write DTSTAMP/CREATED as floating local
    // times, while RFC 5545 wants them in UTC. Each event carries its own TZID instead.
    timezone: { name: null, generator: vtimezone },
    ttl: c.ttlSeconds ?? null,
  });
  if (c.timeZone) cal.x([{ key: 'X-WR-TIMEZONE', value: c.timeZone }]);
  for (const e of c.events) {
    const zoned = vtimezone(e.timeZone) !== null && !isAmbiguousWallTime(e.start, e.timeZone) && !isAmbiguousWallTime(e.end, e.timeZone);
    const at = (s: string) => (zoned ? Temporal.Instant.from(s).toZonedDateTimeISO(e.timeZone) : new Date(s));
    const ev = cal.createEvent({
      id: e.uid,
      sequence: e.sequence,
      stamp: c.stamp,
      start: at(e.start) as never,
      end: at(e.end) as never,
      timezone: zoned ? e.timeZone : null,
      summary: e.summary,
      description: e.description || null,
      location: e.location || null,
      status: STATUS[e.status],
      transparency: e.status === 'cancelled' ? ICalEventTransparency.TRANSPARENT : ICalEventTransparency.OPAQUE,
      created: e.created ? new Date(e.created) : null,
      lastModified: e.lastModified ? new Date(e.lastModified) : null,
      ...(e.private ? { class: ICalEventClass.PRIVATE } : {}),
    });
    if (e.x) ev.x(Object.entries(e.x).map(([key, value]) => ({ key, value })));
  }
  return cal;
}

export function renderCalendar(c: IcsCalendar): string {
  return buildCalendar(c).toString();
}

export interface ParsedIcsEvent {
  uid: string;
  sequence: number;
  start: string;
  end: string;
  /** The TZID of DTSTART, or 'UTC' for UTC/floating forms. */
  timeZone: string;
  summary: string;
  description?: string;
  location?: string;
  status?: string;
  recurrenceId?: string;
  /** `X-` properties, by upper-case name. */
  x: Record<string, string>;
  /** TRANSP:TRANSPARENT (shows as free). */
  transparent: boolean;
}

/**
 * The instant of a DATE-TIME. With an IANA TZID the wall time is resolved with Temporal's
 * `compatible` rule, which is RFC 5545's (a gap moves forward, the repeated hour takes its first
 * occurrence); ical.js alone takes the later offset in the repeated hour. Other TZIDs, UTC and
 * floating times go through ical.js (with the file's VTIMEZONEs registered).
 */
function instantOf(t: ICAL.Time, tzid: string | undefined): string {
  if (tzid && !t.isDate && isIana(tzid)) {
    const wall = Temporal.PlainDateTime.from({ year: t.year, month: t.month, day: t.day, hour: t.hour, minute: t.minute, second: t.second });
    return new Date(wall.toZonedDateTime(tzid, { disambiguation: 'compatible' }).epochMilliseconds).toISOString().replace('.000Z', 'Z');
  }
  return t.toJSDate().toISOString().replace('.000Z', 'Z');
}

function isIana(tz: string): boolean {
  try {
    Temporal.Now.zonedDateTimeISO(tz);
    return true;
  } catch {
    return false;
  }
}

/** Parse iCalendar text with ical.js; VTIMEZONEs in the file are registered so TZIDs resolve. */
export function parseCalendar(text: string): { components: ICAL.Component; events: ParsedIcsEvent[] } {
  const root = new ICAL.Component(ICAL.parse(text));
  for (const vtz of root.getAllSubcomponents('vtimezone')) {
    const zone = new ICAL.Timezone(vtz);
    if (!ICAL.TimezoneService.has(zone.tzid)) ICAL.TimezoneService.register(zone, zone.tzid);
  }
  const events = root.getAllSubcomponents('vevent').map((v) => {
    const ev = new ICAL.Event(v);
    const tzid = v.getFirstProperty('dtstart')?.getParameter('tzid');
    // DTEND has its own zone (or is UTC); only an end derived from DURATION takes DTSTART's zone.
    const dtend = v.getFirstProperty('dtend');
    const endTzid = dtend ? dtend.getParameter('tzid') : tzid;
    return {
      uid: ev.uid,
      sequence: ev.sequence ?? 0,
      start: instantOf(ev.startDate, typeof tzid === 'string' ? tzid : undefined),
      end: instantOf(ev.endDate, typeof endTzid === 'string' ? endTzid : undefined),
      timeZone: typeof tzid === 'string' ? tzid : 'UTC',
      summary: ev.summary ?? '',
      description: ev.description ?? undefined,
      location: ev.location ?? undefined,
      status: (v.getFirstPropertyValue('status') as string | null) ?? undefined,
      recurrenceId: ev.recurrenceId ? ev.recurrenceId.toString() : undefined,
      transparent: String(v.getFirstPropertyValue('transp') ?? '').toUpperCase() === 'TRANSPARENT',
      x: Object.fromEntries(v.getAllProperties().filter((p) => p.name.toLowerCase().startsWith('x-')).map((p) => [p.name.toUpperCase(), String(p.getFirstValue())])),
    };
  });
  return { components: root, events };
}

/**
 * A value safe to write as an iCalendar parameter (CN=…). RFC 5545 has no escape inside a quoted parameter
 * value, so ical-generator's backslash before a DQUOTE ends the quotes early: a patient named
 * `Mallory":mailto:attacker@…` would add an address to the ATTENDEE line. RFC 6868 encodes what cannot be
 * written: ^' for DQUOTE, ^n for a newline, ^^ for ^ itself. Backslashes (which ical-generator would double)
 * and other control characters are removed.
 */
export function paramValue(s: string): string {
  return s
    .replace(/\^/g, '^^')
    .replace(/"/g, "^'")
    .replace(/\r\n|\r|\n/g, '^n')
    .replace(/[\\\x00-\x08\x0a-\x1f\x7f]/g, '');
}
