// Finding a slot for a lead: a patient's preferred times (words like "weekday mornings after 10", or
// dates and instants) become wall-time windows in the clinic's zone over the next weeks; those are cut
// to the practitioner's working hours; the first start where the service fits without touching
// anything busy wins. Pure: no I/O, every wall time goes through Temporal (DST-safe).
import { Temporal } from 'temporal-polyfill';
import type { TimePreference } from '../connectors/types.ts';
import { toUtc } from './time.ts';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
/** Working hours per weekday as `HH:MM-HH:MM` ranges in the practitioner's zone. */
export type WeeklyHours = Partial<Record<Weekday, string[]>>;
export const HOURS_RANGE = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/;

export interface Interval {
  start: string;
  end: string;
}

export interface Horizon {
  timeZone: string;
  /** Windows start no earlier than this. */
  from: Date;
  to: Date;
}

// ------------------------------------------------------------------ wall time

/** Minutes after midnight on `date` in `zone` as a UTC instant (a time in a DST gap moves later, RFC 5545 style). */
function wallToUtc(date: Temporal.PlainDate, minutes: number, zone: string): number {
  const day = minutes >= 1440 ? date.add({ days: Math.floor(minutes / 1440) }) : date;
  const m = minutes % 1440;
  return day.toPlainDateTime({ hour: Math.floor(m / 60), minute: m % 60 }).toZonedDateTime(zone, { disambiguation: 'compatible' }).epochMilliseconds;
}

/** Every calendar date in the zone that the horizon touches. */
function datesIn(h: Horizon): Temporal.PlainDate[] {
  const first = Temporal.Instant.fromEpochMilliseconds(h.from.getTime()).toZonedDateTimeISO(h.timeZone).toPlainDate();
  const last = Temporal.Instant.fromEpochMilliseconds(h.to.getTime()).toZonedDateTimeISO(h.timeZone).toPlainDate();
  const out: Temporal.PlainDate[] = [];
  for (let d = first; Temporal.PlainDate.compare(d, last) <= 0; d = d.add({ days: 1 })) out.push(d);
  return out;
}

function clip(start: number, end: number, h: Horizon): Interval | undefined {
  const s = Math.max(start, h.from.getTime());
  const e = Math.min(end, h.to.getTime());
  return e > s ? { start: toUtc(new Date(s)), end: toUtc(new Date(e)) } : undefined;
}

const hhmm = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));

/** Working hours over the horizon as UTC intervals. */
export function workingWindows(hours: WeeklyHours, h: Horizon): Interval[] {
  const out: Interval[] = [];
  for (const d of datesIn(h)) {
    for (const r of hours[WEEKDAYS[d.dayOfWeek - 1]] ?? []) {
      if (!HOURS_RANGE.test(r)) continue;
      const [a, b] = r.split('-');
      const w = clip(wallToUtc(d, hhmm(a), h.timeZone), wallToUtc(d, hhmm(b), h.timeZone), h);
      if (w) out.push(w);
    }
  }
  return out;
}

// ------------------------------------------------------------------ preferences in words

/** What one phrase asks for; an absent part means "any". Times are minutes after midnight. */
export interface Phrase {
  weekdays?: number[];
  dates?: Temporal.PlainDate[];
  range?: [number, number];
  at?: number;
  after?: number;
  before?: number;
}

const DAY_WORDS: [RegExp, number[]][] = [
  [/\bweek ?days?\b/, [1, 2, 3, 4, 5]],
  [/\bweek ?ends?\b/, [6, 7]],
  [/\bmon(day)?s?\b/, [1]],
  [/\btue(s|sday)?s?\b/, [2]],
  [/\bwed(s|nesday)?s?\b/, [3]],
  [/\bthu(r|rs|rsday)?s?\b/, [4]],
  [/\bfri(day)?s?\b/, [5]],
  [/\bsat(urday)?s?\b/, [6]],
  [/\bsun(day)?s?\b/, [7]],
];

const PARTS: [RegExp, [number, number]][] = [
  [/\bearly mornings?\b/, [7 * 60, 9 * 60]],
  [/\blate mornings?\b/, [10 * 60, 12 * 60]],
  [/\bmornings?\b/, [8 * 60, 12 * 60]],
  [/\blunch ?(time)?\b|\bmidday\b/, [11 * 60 + 30, 14 * 60]],
  [/\bearly afternoons?\b/, [12 * 60, 14 * 60]],
  [/\blate afternoons?\b/, [15 * 60, 17 * 60]],
  [/\bafternoons?\b/, [12 * 60, 17 * 60]],
  [/\bevenings?\b|\bafter work\b/, [17 * 60, 21 * 60]],
];

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)';
const TIME = '(\\d{1,2})(?::(\\d{2}))?\\s*(am|pm)?';

/** A clock time; an hour without am/pm and without a leading zero is read the way clinics mean it (8–11 morning, 12 noon, 1–7 afternoon). */
function clock(h: string, m: string | undefined, mer: string | undefined, impliedMer?: string): number | undefined {
  let hour = Number(h);
  const min = m ? Number(m) : 0;
  if (hour > 24 || min > 59) return undefined;
  const meridiem = mer ?? impliedMer;
  if (meridiem === 'pm' && hour < 12) hour += 12;
  else if (meridiem === 'am' && hour === 12) hour = 0;
  else if (!meridiem && !h.startsWith('0') && hour >= 1 && hour <= 7) hour += 12;
  return hour * 60 + min;
}

function nextYearly(today: Temporal.PlainDate, month: number, day: number): Temporal.PlainDate | undefined {
  for (const year of [today.year, today.year + 1]) {
    try {
      const d = Temporal.PlainDate.from({ year, month, day }, { overflow: 'reject' });
      if (Temporal.PlainDate.compare(d, today) >= 0) return d;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Read one phrase (no commas or "or"s left in it). Unknown words are ignored; undefined when nothing was understood. */
export function readPhrase(text: string, today: Temporal.PlainDate): Phrase | undefined {
  let t = ` ${text.toLowerCase().replace(/\b([ap])\.m\.?/g, '$1m').replace(/\bnoon\b/g, '12pm').replace(/\s+/g, ' ')} `;
  const p: Phrase = {};
  const take = (re: RegExp, f: (m: RegExpExecArray) => void) => {
    for (let m = re.exec(t); m; m = re.exec(t)) {
      f(m);
      t = t.slice(0, m.index) + ' '.repeat(m[0].length) + t.slice(m.index + m[0].length);
    }
  };
  const addDate = (d: Temporal.PlainDate | undefined) => {
    if (d) (p.dates ??= []).push(d);
  };
  // Dates first, so their numbers are not read as times.
  take(/\b(\d{4})-(\d{2})-(\d{2})\b/, (m) => addDate(nextYearly(Temporal.PlainDate.from({ year: Number(m[1]), month: 1, day: 1 }), Number(m[2]), Number(m[3]))));
  take(new RegExp(`\\b${MONTH}\\.? (\\d{1,2})(?:st|nd|rd|th)?\\b`), (m) => addDate(nextYearly(today, MONTHS.indexOf(m[1].slice(0, 3)) + 1, Number(m[2]))));
  take(new RegExp(`\\b(\\d{1,2})(?:st|nd|rd|th)?(?: of)? ${MONTH}\\b`), (m) => addDate(nextYearly(today, MONTHS.indexOf(m[2].slice(0, 3)) + 1, Number(m[1]))));
  take(/\btoday\b/, () => addDate(today));
  take(/\btomorrow\b/, () => addDate(today.add({ days: 1 })));
  for (const [re, days] of DAY_WORDS) {
    const rel = new RegExp(`\\b(next|this|coming) ${re.source.slice(2)}`);
    take(rel, (m) => {
      // "next Monday" / "this Monday": the first such day after today (today itself for "this").
      const start = m[1] === 'this' ? 0 : 1;
      for (let i = start; i < start + 7; i++) {
        const d = today.add({ days: i });
        if (days.includes(d.dayOfWeek)) return addDate(d);
      }
    });
    take(re, () => { p.weekdays = [...new Set([...(p.weekdays ?? []), ...days])]; });
  }
  if (/\b(any ?(day|time)|anytime|whenever)\b/.test(t)) p.weekdays = [1, 2, 3, 4, 5, 6, 7];
  // Times: ranges, then "after"/"before", then single times; then parts of the day.
  take(new RegExp(`\\b(?:between |from )?${TIME} ?(?:-|–|to|until|till|and) ?${TIME}\\b`), (m) => {
    const b = clock(m[4], m[5], m[6]);
    let a = clock(m[1], m[2], m[3], m[3] ? undefined : m[6]);
    if (a !== undefined && b !== undefined && a > b) a = clock(m[1], m[2], m[3] ?? 'am');
    if (a !== undefined && b !== undefined && b > a) p.range = [a, b];
  });
  take(new RegExp(`\\b(after|from|not before) ${TIME}\\b`), (m) => { p.after = clock(m[2], m[3], m[4]); });
  take(new RegExp(`\\b(before|by|until|not after) ${TIME}\\b`), (m) => { p.before = clock(m[2], m[3], m[4]); });
  take(new RegExp(`\\b(?:at |around |about )?(\\d{1,2})(?::(\\d{2}))?\\s*(am|pm)\\b|\\bat (\\d{1,2})(?::(\\d{2}))?\\b|\\b(\\d{1,2}):(\\d{2})\\b`), (m) => {
    p.at = m[1] ? clock(m[1], m[2], m[3]) : m[4] ? clock(m[4], m[5], undefined) : clock(m[6], m[7], undefined);
  });
  for (const [re, range] of PARTS) {
    if (p.range) break;
    take(re, () => { p.range = range; });
  }
  const understood = p.weekdays || p.dates?.length || p.range || p.at !== undefined || p.after !== undefined || p.before !== undefined;
  return understood ? p : undefined;
}

const hasDay = (p: Phrase) => Boolean(p.weekdays || p.dates?.length);
const hasTime = (p: Phrase) => Boolean(p.range || p.at !== undefined || p.after !== undefined || p.before !== undefined);

/**
 * Split a preference into phrases and read each. Phrases joined by "or"/"and"/commas share what the
 * other one says: "Monday or Tuesday afternoon" is two afternoons, "Tuesday mornings or afternoons" two
 * parts of Tuesday.
 */
export function readPreference(text: string, today: Temporal.PlainDate): Phrase[] {
  const joined = text.toLowerCase().replace(/\bbetween (\S+) and (\S+)/g, 'between $1-$2');
  const phrases = joined.split(/[,;/\n]| or | and | but | also /).map((s) => readPhrase(s, today)).filter((p): p is Phrase => !!p);
  return phrases.map((p, i) => {
    const out = { ...p };
    if (!hasTime(out)) {
      const later = phrases.slice(i + 1).find(hasTime);
      if (later && !hasTime(out)) Object.assign(out, { range: later.range, at: later.at, after: later.after, before: later.before });
    }
    if (!hasDay(out)) {
      const earlier = phrases.slice(0, i).reverse().find(hasDay);
      if (earlier) Object.assign(out, { weekdays: earlier.weekdays, dates: earlier.dates });
    }
    return out;
  });
}

/** The time-of-day span a phrase allows, in minutes after midnight. */
function span(p: Phrase, durationMinutes: number): [number, number] {
  if (p.at !== undefined) return [p.at, p.at + durationMinutes];
  let [a, b] = p.range ?? [0, 1440];
  if (p.after !== undefined) a = Math.max(a, p.after);
  if (p.before !== undefined) b = Math.min(b, p.before);
  return [a, b];
}

function phraseWindows(p: Phrase, h: Horizon, durationMinutes: number): Interval[] {
  const [a, b] = span(p, durationMinutes);
  if (b <= a) return [];
  const out: Interval[] = [];
  for (const d of datesIn(h)) {
    const onDate = p.dates?.some((x) => x.equals(d));
    const onWeekday = p.weekdays?.includes(d.dayOfWeek);
    if (hasDay(p) && !(onDate || onWeekday)) continue;
    const w = clip(wallToUtc(d, a, h.timeZone), wallToUtc(d, b, h.timeZone), h);
    if (w) out.push(w);
  }
  return out;
}

export interface PreferenceWindows {
  windows: Interval[];
  /** Preferences of which nothing was understood (shown to staff). */
  unread: string[];
}

/** All the windows the preferences allow within the horizon, earliest first. No preferences: the whole horizon. */
export function preferenceWindows(prefs: TimePreference[], h: Horizon, durationMinutes: number): PreferenceWindows {
  if (prefs.length === 0) return { windows: [{ start: toUtc(h.from), end: toUtc(h.to) }], unread: [] };
  const today = Temporal.Instant.fromEpochMilliseconds(h.from.getTime()).toZonedDateTimeISO(h.timeZone).toPlainDate();
  const windows: Interval[] = [];
  const unread: string[] = [];
  for (const pref of prefs) {
    if ('text' in pref) {
      const phrases = readPreference(pref.text, today);
      if (phrases.length === 0) unread.push(pref.text);
      for (const p of phrases) windows.push(...phraseWindows(p, h, durationMinutes));
    } else if ('start' in pref) {
      const s = Date.parse(pref.start);
      const e = Date.parse(pref.end);
      const w = Number.isFinite(s) && Number.isFinite(e) ? clip(s, e, h) : undefined;
      if (w) windows.push(w);
      else unread.push(`${pref.start}–${pref.end}`);
    } else {
      let date: Temporal.PlainDate;
      try {
        date = Temporal.PlainDate.from(pref.date);
      } catch {
        unread.push(pref.date);
        continue;
      }
      const from = pref.from && /^\d\d:\d\d$/.test(pref.from) ? hhmm(pref.from) : undefined;
      const to = pref.to && /^\d\d:\d\d$/.test(pref.to) ? hhmm(pref.to) : undefined;
      windows.push(...phraseWindows({ dates: [date], ...(from !== undefined || to !== undefined ? { range: [from ?? 0, to ?? 1440] as [number, number] } : {}) }, h, durationMinutes));
    }
  }
  return { windows: merge(windows), unread };
}

// ------------------------------------------------------------------ intervals and the first free slot

/** Sort and merge overlapping intervals. */
export function merge(xs: Interval[]): Interval[] {
  const sorted = [...xs].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const out: Interval[] = [];
  for (const x of sorted) {
    const last = out[out.length - 1];
    if (last && Date.parse(x.start) <= Date.parse(last.end)) {
      if (Date.parse(x.end) > Date.parse(last.end)) last.end = x.end;
    } else out.push({ ...x });
  }
  return out;
}

/** Where two sets of intervals overlap. */
export function intersect(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of merge(a)) {
    for (const y of merge(b)) {
      const s = Math.max(Date.parse(x.start), Date.parse(y.start));
      const e = Math.min(Date.parse(x.end), Date.parse(y.end));
      if (e > s) out.push({ start: toUtc(new Date(s)), end: toUtc(new Date(e)) });
    }
  }
  return merge(out);
}

/**
 * The earliest start on a `stepMinutes` grid (UTC-aligned, so on the quarter hour in every zone with
 * whole-quarter offsets) where `[start, start + duration)` lies inside one candidate and overlaps
 * nothing busy.
 */
export function firstFreeSlot(candidates: Interval[], busy: Interval[], durationMinutes: number, stepMinutes = 15): Interval | undefined {
  const step = stepMinutes * 60_000;
  const dur = durationMinutes * 60_000;
  const taken = merge(busy).map((b) => [Date.parse(b.start), Date.parse(b.end)] as const);
  for (const c of merge(candidates)) {
    const end = Date.parse(c.end);
    let s = Math.ceil(Date.parse(c.start) / step) * step;
    while (s + dur <= end) {
      const clash = taken.find(([bs, be]) => bs < s + dur && s < be);
      if (!clash) return { start: toUtc(new Date(s)), end: toUtc(new Date(s + dur)) };
      s = Math.max(s + step, Math.ceil(clash[1] / step) * step);
    }
  }
  return undefined;
}
