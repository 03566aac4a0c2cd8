// What a link may say. Route parameters come from the URL, which anyone can write and send: each one is
// checked here before a page uses it, and anything not understood falls back to the page's default.
// (A date like `1` or `97` handed to the calendar kept the tab busy for over 30 s.)

/** The years the schedule can be opened at from a link: wide enough for any real booking, narrow enough that the calendar never walks centuries. */
export const MIN_YEAR = 2000;
export const MAX_YEAR = 2100;

/** A real calendar date `YYYY-MM-DD` (no 30 February) between MIN_YEAR and MAX_YEAR; else undefined. */
export function parseDate(v: string | null | undefined): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v ?? '');
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < MIN_YEAR || y > MAX_YEAR || mo < 1 || mo > 12 || d < 1) return undefined;
  // Day 0 of the next month is the last day of this one (UTC, so no zone moves it).
  const last = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d <= last ? v! : undefined;
}

/** A `datetime-local` value (`YYYY-MM-DDTHH:MM`, optional `:SS`) with a valid date and time; else undefined. */
export function parseWallTime(v: string | null | undefined): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v ?? '');
  if (!m || !parseDate(m[1])) return undefined;
  if (Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4] ?? 0) > 59) return undefined;
  return v!;
}

/** `v` when it is one of `allowed`; else undefined (an id the clinic does not have is dropped, not shown as an empty filter). */
export function oneOf<T extends string>(v: string | null | undefined, allowed: readonly T[]): T | undefined {
  return allowed.find((a) => a === v);
}

/** Free text for a search box: kept as text (inputs take it as a value, never as HTML), bounded so a link cannot carry megabytes. */
export function text(v: string | null | undefined, max = 200): string {
  return (v ?? '').slice(0, max);
}

/** An id as the clinic's file and the API write them (1–63 letters, digits, `.`, `_`, `-`); else undefined. */
export function parseId(v: string | null | undefined): string | undefined {
  return /^[a-z0-9][a-z0-9._-]{0,62}$/i.test(v ?? '') ? v! : undefined;
}

/** A parameter that was present and not understood, for the notice. */
export const unclear = (params: URLSearchParams, name: string, ok: unknown) => params.has(name) && params.get(name) !== '' && ok === undefined;
