// A calendar subscription (iCalendar over HTTP) read as a booking source: the generic `ics-feed` and
// the sources that only reach Meridian through a calendar (SimplePractice, Doodle) share this.
// - Reading: one conditional GET (ETag / Last-Modified kept in syncState; 304 → NotModified), bounded
//   in size and time. A 304 is only asked for within a day of the last full read, so occurrences of
//   recurring series that move into the poll window are listed at least daily.
// - Parsing: the text is cut into its VTIMEZONE and VEVENT blocks and each is parsed by ical.js on its
//   own, so one broken event (a bad date, an RRULE ical.js refuses, no UID) is skipped and counted
//   instead of losing the whole feed; a body with no VCALENDAR at all is unreadable.
// - Times: a TZID that is an IANA name is resolved from its wall time with RFC 5545's rule (gap →
//   later, repeated hour → first occurrence) via localToUtc (ical.js takes the later offset); other
//   TZIDs use the file's own VTIMEZONE; floating times (and unknown TZIDs) use the connection's
//   `timeZone`, X-WR-TIMEZONE, else UTC.
// - Recurrence: RRULE/RDATE/EXDATE expanded inside the window; a RECURRENCE-ID override replaces its
//   occurrence. Ids: a single event is its UID (a move keeps it); an occurrence is `UID#<start the
//   rule gives it>` (stable when the occurrence is moved).
// - Not appointments: all-day events, TRANSP:TRANSPARENT ("free"), and events of zero or more than
//   24 hours. STATUS:CANCELLED (series or override) gives cancels; TENTATIVE a requested booking.
import ICAL from 'ical.js';
import {
  ConnectionMisconfigured, ConnectorError, NotModified, UnreadablePayload,
  type ConfigField, type ConnectionContext, type ListWindow, type SourceConnector, type SourceDescriptor,
} from '../types.ts';
import { POLL_MINUTES } from './settings.ts';
import type { SourceChange } from '../../domain/types.ts';
import { isIanaZone, localToUtc, toUtc } from '../../domain/time.ts';
import { failureFromAnswer, networkFailure, retryAfterMs } from './http.ts';

export const MAX_FEED_BYTES = 10 * 1024 * 1024;
export const FEED_TIMEOUT_MS = 30_000;
/** How long a 304 may stand in for a full read. */
export const FULL_READ_EVERY_MS = 24 * 3_600_000;
const DAY_MS = 86_400_000;
/** Occurrences walked per series before it is given up as absurd (FREQ=MINUTELY since 1990). */
const MAX_OCCURRENCES = 100_000;

export interface FeedOptions {
  platform: string;
  window: ListWindow;
  /** The practitioner ref every event of this feed belongs to (connection config `practitioner`). */
  practitioner?: string;
  /** Zone for floating times and events without an IANA TZID (connection config `timeZone`). */
  timeZone?: string;
  /** A regular expression whose first group is the patient's name in SUMMARY (config `patientPattern`). */
  patientPattern?: string;
  /** When the feed was read: the occurredAt of events that carry no stamp at all (else the epoch). */
  readAt?: Date;
}

export interface FeedParse {
  changes: SourceChange[];
  /** Events that could not be read (broken dates, rules, no UID): left out, never fatal. */
  skipped: number;
}

// ---------------------------------------------------------------- splitting into blocks

interface Blocks { calendars: number; zones: string[]; events: string[]; defaultZone?: string }

/** The VTIMEZONE and VEVENT blocks of every VCALENDAR in the text (folded lines stay with their block). */
function splitBlocks(text: string): Blocks {
  const out: Blocks = { calendars: 0, zones: [], events: [] };
  const stack: string[] = [];
  let block: { kind: string; lines: string[] } | undefined;
  const finish = () => {
    if (block?.kind === 'VTIMEZONE') out.zones.push(block.lines.join('\r\n'));
    if (block?.kind === 'VEVENT') out.events.push(block.lines.join('\r\n'));
    block = undefined;
  };
  for (const line of text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/)) {
    const m = /^(BEGIN|END):([A-Za-z0-9-]+)\s*$/i.exec(line);
    const begin = m?.[1].toUpperCase() === 'BEGIN';
    const name = m?.[2].toUpperCase() ?? '';
    if (m && begin) {
      stack.push(name);
      if (stack.length === 1 && name === 'VCALENDAR') out.calendars++;
      if (stack.length === 2 && stack[0] === 'VCALENDAR') block = { kind: name, lines: [] };
    }
    if (block) block.lines.push(line);
    else if (stack.length === 1 && /^X-WR-TIMEZONE:/i.test(line)) out.defaultZone = line.slice(14).trim();
    if (m && !begin) {
      const at = stack.lastIndexOf(name);
      if (at >= 0) stack.length = at; // an inner component left unclosed is closed with its parent
      if (block && stack.length < 2) finish();
    }
  }
  finish(); // a truncated last event: parsing it fails and it is counted as skipped
  return out;
}

/** How this feed's times are placed: its own VTIMEZONEs (for non-IANA TZIDs) and the zone for floating times. */
interface Zones { own: Map<string, ICAL.Timezone>; floating: string }

/**
 * The file's zone definitions, kept to this feed: registering them with ical.js would let one feed's
 * "Eastern Standard Time" decide another's. A broken or nameless one is left out (its times float).
 */
function zonesOf(blocks: string[]): Map<string, ICAL.Timezone> {
  const own = new Map<string, ICAL.Timezone>();
  for (const block of blocks) {
    try {
      const zone = new ICAL.Timezone(new ICAL.Component(ICAL.parse(block)));
      if (zone.tzid && !own.has(zone.tzid)) own.set(zone.tzid, zone);
    } catch {
      // left out
    }
  }
  return own;
}

// ---------------------------------------------------------------- times

function tzidOf(p: ICAL.Property | null): string | undefined {
  const tz = p?.getParameter('tzid');
  return typeof tz === 'string' && tz.trim() ? tz : undefined;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const wallOf = (t: ICAL.Time) => `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;

/** The UTC instant of a DATE-TIME, RFC 5545 style (see the header). */
function instantOf(t: ICAL.Time, propTzid: string | undefined, zones: Zones): string {
  if (t.zone?.tzid === 'UTC') return toUtc(`${wallOf(t)}Z`);
  // ical.js keeps an RDATE's own TZID on the time it yields; rule occurrences carry DTSTART's.
  const own = (t as { timezone?: unknown }).timezone;
  const tzid = typeof own === 'string' && own ? own : propTzid;
  if (tzid && isIanaZone(tzid)) return localToUtc(wallOf(t), tzid);
  const zone = tzid ? zones.own.get(tzid) : undefined;
  if (zone) return toUtc(new Date(Date.parse(`${wallOf(t)}Z`) - zone.utcOffset(t) * 1000));
  return localToUtc(wallOf(t), zones.floating);
}

// ---------------------------------------------------------------- events

interface FeedEvent {
  uid: string;
  comp: ICAL.Component;
  event: ICAL.Event;
  sequence: number;
  allDay: boolean;
  startTzid?: string;
  start: string;
  durationMs: number;
  hasEnd: boolean;
  /** RECURRENCE-ID as an instant (overrides only). */
  rid?: string;
}

function readEvent(comp: ICAL.Component, zones: Zones): FeedEvent {
  const uid = String(comp.getFirstPropertyValue('uid') ?? '').trim();
  if (!uid) throw new Error('no UID');
  const ev = new ICAL.Event(comp);
  if (!ev.startDate) throw new Error('no DTSTART');
  const startTzid = tzidOf(comp.getFirstProperty('dtstart'));
  const start = instantOf(ev.startDate, startTzid, zones);
  const hasEnd = comp.hasProperty('dtend') || comp.hasProperty('duration');
  const endTzid = tzidOf(comp.getFirstProperty('dtend')) ?? startTzid;
  const end = ev.startDate.isDate ? start : instantOf(ev.endDate, endTzid, zones);
  const ridProp = comp.getFirstProperty('recurrence-id');
  const ridValue = ridProp?.getFirstValue();
  const rid = ridValue instanceof ICAL.Time ? instantOf(ridValue, tzidOf(ridProp), zones) : undefined;
  return { uid, comp, event: ev, sequence: Number(ev.sequence) || 0, allDay: ev.startDate.isDate, startTzid, start, durationMs: Date.parse(end) - Date.parse(start), hasEnd, rid };
}

const upper = (e: FeedEvent, name: string) => String(e.comp.getFirstPropertyValue(name) ?? '').trim().toUpperCase();

/**
 * LAST-MODIFIED, else DTSTAMP, else CREATED: the same for an unchanged event on every poll. Only an
 * event with none of them takes the read time, so that a later read of it still wins.
 */
function stampOf(e: FeedEvent, zones: Zones, readAt: Date | undefined): string {
  for (const name of ['last-modified', 'dtstamp', 'created']) {
    const p = e.comp.getFirstProperty(name);
    const v = p?.getFirstValue();
    if (v instanceof ICAL.Time && !v.isDate) return instantOf(v, tzidOf(p), zones);
  }
  return toUtc(readAt ?? new Date(0));
}

function patientName(summary: string, pattern: RegExp | undefined): string {
  const name = (pattern?.exec(summary)?.[1] ?? summary).trim();
  return name || 'Busy';
}

interface Emit {
  opts: FeedOptions;
  zones: Zones;
  pattern?: RegExp;
  out: Map<string, SourceChange>;
}

/** One occurrence as a change, when it is an appointment inside the window. */
function emit(x: Emit, e: FeedEvent, externalId: string, start: string, durationMs: number): void {
  if (upper(e, 'transp') === 'TRANSPARENT' || !(durationMs > 0 && durationMs <= DAY_MS)) return;
  const s = Date.parse(start);
  if (s + durationMs <= x.opts.window.from.getTime() || s > x.opts.window.to.getTime()) return;
  const status = upper(e, 'status');
  const cancelled = status === 'CANCELLED';
  const organizer = /^mailto:(.+@.+)$/i.exec(String(e.comp.getFirstPropertyValue('organizer') ?? '').trim())?.[1].toLowerCase();
  // Shown in: the event's own IANA zone, else the calendar's (left to the engine when there is none).
  const zone = e.startTzid && isIanaZone(e.startTzid) ? e.startTzid : x.zones.floating !== 'UTC' ? x.zones.floating : undefined;
  x.out.set(externalId, {
    platform: x.opts.platform, externalId, kind: cancelled ? 'cancel' : 'upsert', occurredAt: stampOf(e, x.zones, x.opts.readAt), needsFetch: false,
    appointment: {
      start: toUtc(new Date(s)), end: toUtc(new Date(s + durationMs)),
      status: cancelled ? 'cancelled' : status === 'TENTATIVE' ? 'requested' : 'booked',
      ...(zone ? { timeZone: zone } : {}),
      ...(x.opts.practitioner ? { practitionerRef: x.opts.practitioner } : {}),
      // The organiser's e-mail is matched against practitioners only; it is not a ref, so it never
      // shows in a rejection message (it may be a patient who sent the invitation).
      ...(organizer ? { practitionerEmail: organizer } : {}),
      patient: { name: patientName(String(e.comp.getFirstPropertyValue('summary') ?? ''), x.pattern) },
    },
  });
}

/**
 * EXDATEs as instants. ical.js applies them too, but compares a UTC EXDATE with a DTSTART in a zone it
 * does not know as floating times; by instant they always match.
 */
function exdatesOf(m: FeedEvent, zones: Zones): Set<string> {
  const out = new Set<string>();
  for (const p of m.comp.getAllProperties('exdate')) {
    for (const v of p.getValues()) if (v instanceof ICAL.Time && !v.isDate) out.add(instantOf(v, tzidOf(p), zones));
  }
  return out;
}

/** Every occurrence of a master in the window, except those an override replaces. */
function expand(x: Emit, m: FeedEvent, replaced: Set<string>): void {
  if (!m.event.isRecurring()) return emit(x, m, m.uid, m.start, m.durationMs);
  const from = x.opts.window.from.getTime() - 2 * DAY_MS - m.durationMs; // rough bounds first: cheap
  const to = x.opts.window.to.getTime() + 2 * DAY_MS;
  const excluded = exdatesOf(m, x.zones);
  const it = m.event.iterator();
  for (let n = 0, next = it.next() as ICAL.Time | ICAL.Period | null; next; next = it.next()) {
    if (++n > MAX_OCCURRENCES) throw new Error('series too long');
    // An RDATE may be a PERIOD: its own start and length.
    const t = next instanceof ICAL.Period ? next.start : next;
    const rough = t.toUnixTime() * 1000;
    if (rough > to) break;
    if (rough < from) continue;
    const start = instantOf(t, m.startTzid, x.zones);
    const durationMs = next instanceof ICAL.Period ? Date.parse(instantOf(next.getEnd(), m.startTzid, x.zones)) - Date.parse(start) : m.durationMs;
    if (!replaced.has(`${m.uid}#${start}`) && !excluded.has(start)) emit(x, m, `${m.uid}#${start}`, start, durationMs);
  }
}

/** Parse a feed's text into the changes of the window. Throws UnreadablePayload when it is not iCalendar. */
export function parseFeed(text: string, opts: FeedOptions): FeedParse {
  const blocks = splitBlocks(text);
  if (blocks.calendars === 0) throw new UnreadablePayload('the feed is not iCalendar (no VCALENDAR)');
  const zones: Zones = {
    own: zonesOf(blocks.zones),
    floating: [opts.timeZone, blocks.defaultZone].find((z): z is string => Boolean(z && isIanaZone(z))) ?? 'UTC',
  };
  let pattern: RegExp | undefined;
  try {
    pattern = opts.patientPattern ? new RegExp(opts.patientPattern) : undefined;
  } catch {
    throw new ConnectionMisconfigured('the connection config patientPattern is not a valid regular expression');
  }
  let skipped = 0;
  const masters = new Map<string, FeedEvent>();
  const overrides: FeedEvent[] = [];
  for (const block of blocks.events) {
    try {
      const e = readEvent(new ICAL.Component(ICAL.parse(block)), zones);
      if (e.rid) overrides.push(e);
      // The same UID twice (iTIP-style files): the higher SEQUENCE, then the later one, wins.
      else if ((masters.get(e.uid)?.sequence ?? -1) <= e.sequence) masters.set(e.uid, e);
    } catch {
      skipped++;
    }
  }
  const x: Emit = { opts, zones, pattern, out: new Map() };
  const replaced = new Set(overrides.map((o) => `${o.uid}#${o.rid}`));
  for (const m of masters.values()) {
    try {
      if (!m.allDay) expand(x, m, replaced);
    } catch {
      skipped++;
    }
  }
  for (const o of overrides) {
    try {
      // An override without its own end keeps the series' length.
      const durationMs = o.hasEnd ? o.durationMs : masters.get(o.uid)?.durationMs ?? o.durationMs;
      if (!o.allDay) emit(x, o, `${o.uid}#${o.rid}`, o.start, durationMs);
    } catch {
      skipped++;
    }
  }
  return { changes: [...x.out.values()], skipped };
}

// ---------------------------------------------------------------- reading over HTTP

/** The feed address: the secret `feedUrl` (it often embeds a private token), else config `url`. */
function feedRequest(ctx: ConnectionContext): { url: string; auth: Record<string, string> } {
  const raw = ctx.secrets.feedUrl ?? (typeof ctx.config.url === 'string' ? ctx.config.url : undefined);
  if (!raw) throw new ConnectorError({ class: 'permanent', message: 'the feed connection has no address: set the secret feedUrl or config url' });
  let url: URL;
  try {
    url = new URL(raw.trim().replace(/^webcals?:\/\//i, 'https://'));
  } catch {
    throw new ConnectorError({ class: 'permanent', message: 'the feed address is not a URL' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConnectorError({ class: 'permanent', message: 'the feed address must be http(s) or webcal' });
  // fetch refuses credentials inside a URL: they move to the Basic header.
  const user = ctx.secrets.username ?? decodeURIComponent(url.username);
  const pass = ctx.secrets.password ?? decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  const auth: Record<string, string> = user || pass ? { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } : {};
  return { url: url.toString(), auth };
}

async function boundedText(res: Response): Promise<string> {
  const tooBig = () => new ConnectorError({ class: 'permanent', message: `the feed is larger than ${MAX_FEED_BYTES / 1_048_576} MiB` });
  if (Number(res.headers.get('content-length') ?? 0) > MAX_FEED_BYTES) {
    await res.body?.cancel();
    throw tooBig();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
    size += r.value.byteLength;
    if (size > MAX_FEED_BYTES) {
      await reader!.cancel();
      throw tooBig();
    }
    chunks.push(r.value);
  }
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}

function remember(state: Record<string, string>, key: string, value: string | null): void {
  if (value) state[key] = value;
  else delete state[key];
}

/** GET the feed, conditionally on the cursors in syncState; NotModified on 304. */
export async function fetchFeed(ctx: ConnectionContext): Promise<string> {
  const { url, auth } = feedRequest(ctx);
  const state = ctx.syncState ?? {};
  const now = ctx.now().getTime();
  const recent = state.fullReadAt !== undefined && now - Date.parse(state.fullReadAt) < FULL_READ_EVERY_MS;
  const conditional: Record<string, string> = {};
  if (recent && state.etag) conditional['if-none-match'] = state.etag;
  if (recent && state.lastModified) conditional['if-modified-since'] = state.lastModified;
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: { accept: 'text/calendar, */*;q=0.5', ...auth, ...conditional }, signal: AbortSignal.timeout(FEED_TIMEOUT_MS) });
  } catch (err) {
    throw new ConnectorError(networkFailure(err));
  }
  if (res.status === 304 && Object.keys(conditional).length > 0) {
    await res.body?.cancel();
    throw new NotModified();
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ConnectorError(failureFromAnswer(res.status, undefined, retryAfterMs(res.headers), `the feed answered HTTP ${res.status}`));
  }
  const text = await boundedText(res);
  remember(state, 'etag', res.headers.get('etag'));
  remember(state, 'lastModified', res.headers.get('last-modified'));
  state.fullReadAt = new Date(now).toISOString();
  return text;
}

const configString = (ctx: ConnectionContext, key: string) => (typeof ctx.config[key] === 'string' && ctx.config[key] ? (ctx.config[key] as string) : undefined);

/** `list` of a feed-backed source: the feed's changes in the window, labelled with `platform`. */
export function feedList(platform: string): NonNullable<SourceConnector['list']> {
  return async function* list(window, ctx) {
    const text = await fetchFeed(ctx);
    const opts: FeedOptions = {
      platform, window, readAt: ctx.now(),
      practitioner: configString(ctx, 'practitioner'), timeZone: configString(ctx, 'timeZone'), patientPattern: configString(ctx, 'patientPattern'),
    };
    let parsed: FeedParse;
    try {
      parsed = parseFeed(text, opts);
    } catch (err) {
      if (err instanceof UnreadablePayload || err instanceof ConnectionMisconfigured) throw new ConnectorError({ class: 'permanent', message: err.message });
      throw err;
    }
    yield* parsed.changes;
  };
}

export const FEED_AUTH: SourceDescriptor['auth'] = [
  { key: 'feedUrl', label: 'Feed URL (use this rather than config url when the address holds a private token)', secret: true, required: false },
  { key: 'username', label: 'User name (only for feeds behind HTTP Basic auth)', secret: true, required: false },
  { key: 'password', label: 'Password (only for feeds behind HTTP Basic auth)', secret: true, required: false },
];

/** A feed's settings (config): read by `feedRequest` and `feedList` above, and the poll interval. */
export const FEED_CONFIG: ConfigField[] = [
  { key: 'url', label: 'Feed address', type: 'url', placeholder: 'https://calendar.example/feed.ics', help: 'If the address holds a private token, enter it under Credentials as Feed URL instead.' },
  { key: 'practitioner', label: 'Practitioner', type: 'text', help: 'The name or id every event belongs to; map it to a Meridian practitioner.' },
  { key: 'timeZone', label: 'Time zone', type: 'text', placeholder: 'Europe/London', help: 'For times the feed gives without a zone.' },
  { key: 'patientPattern', label: 'Patient name in the title', type: 'text', placeholder: '^Appt: (.+)$', help: 'A regular expression; its first group is the patient\'s name. Empty: the whole title.' },
  POLL_MINUTES,
];

/** A source that Meridian only reaches through a calendar feed: polled, complete, read-only. */
export function feedSource(d: Pick<SourceDescriptor, 'id' | 'displayName' | 'fidelity'>): SourceConnector {
  const polled = () => new ConnectionMisconfigured(`${d.displayName} is read from a calendar feed that Meridian polls; it has no webhooks`);
  return {
    descriptor: {
      ...d,
      role: 'source',
      auth: FEED_AUTH,
      configFields: FEED_CONFIG,
      signature: 'none: the feed is polled (no webhooks)',
      capabilities: { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false },
    },
    verify: () => {
      throw polled();
    },
    parseWebhook: () => {
      throw new UnreadablePayload(`${d.displayName} sends no webhooks`);
    },
    list: feedList(d.id),
  };
}
