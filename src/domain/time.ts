// Instants are ISO-8601 UTC strings with Z; zones are IANA names. Pure helpers.
import { Temporal } from 'temporal-polyfill';

const zoneCache = new Map<string, boolean>();

export function isIanaZone(tz: string): boolean {
  let ok = zoneCache.get(tz);
  if (ok === undefined) {
    try {
      // Temporal rejects offsets-as-names like "EST5EDT"? It accepts any IANA id ICU knows.
      Temporal.Now.zonedDateTimeISO(tz);
      ok = tz.includes('/') || tz === 'UTC';
    } catch {
      ok = false;
    }
    zoneCache.set(tz, ok);
  }
  return ok;
}

/** Normalise any ISO-8601 instant with an offset to `YYYY-MM-DDTHH:mm:ss.sssZ`-free canonical `...Z` (seconds precision kept, ms dropped when zero). */
export function toUtc(instant: string | Date): string {
  const ms = instant instanceof Date ? instant.getTime() : Date.parse(instant);
  if (!Number.isFinite(ms)) throw new RangeError(`not an instant: ${String(instant)}`);
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, 19)}Z` : iso;
}

export function isUtcInstant(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(s) && Number.isFinite(Date.parse(s));
}

/** A wall-clock time in a zone to a UTC instant, RFC 5545 style (gap → later, repeated hour → earlier). */
export function localToUtc(local: string, timeZone: string): string {
  const zdt = Temporal.PlainDateTime.from(local).toZonedDateTime(timeZone, { disambiguation: 'compatible' });
  return toUtc(new Date(zdt.epochMilliseconds));
}

/** The wall-clock fields of an instant in a zone. */
export function utcToLocal(instant: string, timeZone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.from(toUtc(instant)).toZonedDateTimeISO(timeZone);
}

export function minutesBetween(start: string, end: string): number {
  return (Date.parse(end) - Date.parse(start)) / 60_000;
}

export function overlaps(aStart: string, aEnd: string, bStart: string, bEnd: string): boolean {
  return Date.parse(aStart) < Date.parse(bEnd) && Date.parse(bStart) < Date.parse(aEnd);
}

/** Human text for an appointment time in its zone, e.g. "Tue 10 Mar 2026, 09:00–09:45 (America/New_York)". */
export function formatRange(start: string, end: string, timeZone: string, locale = 'en-GB'): string {
  const d = new Intl.DateTimeFormat(locale, { timeZone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  const t = new Intl.DateTimeFormat(locale, { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return `${d.format(new Date(start))}, ${t.format(new Date(start))}–${t.format(new Date(end))} (${timeZone})`;
}
