// Wall-clock times in the clinic's zone, without a date library: the schedule shows every appointment
// in its location's zone whatever zone the browser is in. Instants are UTC ISO strings with Z.

const fmtCache = new Map<string, Intl.DateTimeFormat>();
function partsFormat(tz: string): Intl.DateTimeFormat {
  let f = fmtCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    fmtCache.set(tz, f);
  }
  return f;
}

/** `YYYY-MM-DDTHH:MM:SS` of an instant in a zone. */
export function toWall(instant: string | number, tz: string): string {
  const p: Record<string, string> = {};
  for (const x of partsFormat(tz).formatToParts(new Date(instant))) p[x.type] = x.value;
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}

const wallMs = (wall: string) => Date.parse(`${wall.length === 16 ? `${wall}:00` : wall}Z`);
/** The zone's offset from UTC at an instant, in ms. */
const offsetAt = (t: number, tz: string) => wallMs(toWall(t, tz)) - Math.floor(t / 1000) * 1000;

/**
 * A wall time (`YYYY-MM-DDTHH:MM[:SS]`) in a zone to a UTC instant, as RFC 5545 and Temporal's
 * 'compatible' do: a time in the spring-forward gap moves later by the gap, a repeated hour is the earlier.
 */
export function fromWall(wall: string, tz: string): string {
  const w = wallMs(wall.replace(' ', 'T'));
  if (!Number.isFinite(w)) throw new Error(`not a wall time: ${wall}`);
  const before = w - offsetAt(w - 86_400_000 / 2, tz);
  const after = w - offsetAt(w + 86_400_000 / 2, tz);
  const fits = (t: number) => wallMs(toWall(t, tz)) === w;
  const t = fits(before) && fits(after) ? Math.min(before, after) : fits(before) ? before : fits(after) ? after : before;
  return new Date(t).toISOString().replace('.000Z', 'Z');
}

/** The wall fields of a calendar library's local Date (it hands back the wall time we gave it in local fields). */
export function wallOfLocalDate(d: Date): string {
  const z = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}T${z(d.getHours())}:${z(d.getMinutes())}:${z(d.getSeconds())}`;
}

/** Today's date in a zone. */
export function todayIn(tz: string, now = Date.now()): string {
  return toWall(now, tz).slice(0, 10);
}

export function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** `9:05` style time of an instant in a zone. */
export function hhmm(instant: string, tz: string): string {
  return toWall(instant, tz).slice(11, 16);
}

/** A readable date and time range in a zone: `Mon 9 Mar 2026, 09:00–09:45`. */
export function formatRange(start: string, end: string, tz: string): string {
  const day = new Intl.DateTimeFormat('en-GB', { timeZone: tz, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).format(new Date(start));
  return `${day}, ${hhmm(start, tz)}–${hhmm(end, tz)}`;
}

export function formatInstant(instant: string, tz: string): string {
  return `${toWall(instant, tz).replace('T', ' ').slice(0, 16)}`;
}
