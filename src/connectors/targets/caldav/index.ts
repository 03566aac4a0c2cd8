// CalDAV (RFC 4791) as a target: iCloud and any standards server (targets.md §3). tsdav does the
// discovery and the requests; every answer is turned into an outcome here.
// - One resource per appointment at a deterministic href `meridian-<appointment id>[-g<n>].ics` with
//   the same UID; `If-None-Match: *` to create, `If-Match: <etag>` to update and delete.
// - A create that meets 412 finds our earlier attempt (GET, check X-MERIDIAN-APPOINTMENT-ID) and
//   updates it; an href or UID held by something else moves to the next generation.
// - Stored objects carry no METHOD, a VTIMEZONE for every TZID, DTEND always (iCloud refuses events
//   without it), SEQUENCE = our revision, CLASS:PRIVATE and our ids as X- properties.
import { driftOf, fail, ok, type BusyInterval, type CalendarEvent, type CalendarInfo, type ConnectionContext, type ConnectorFailure, type LinkState, type ListWindow, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { BUSY_TIMES, TWO_WAY } from '../../shared/settings.ts';
import { icsEventOf, parseCalendar, renderCalendar, type ParsedIcsEvent } from '../../shared/icalendar.ts';
import { fetchCalendarObjects } from 'tsdav';
import ICAL from 'ical.js';
import { isIanaZone, localToUtc, toUtc } from '../../../domain/time.ts';
import { authHeaders, collectionSyncToken, failureOf, forgetCalendarUrl, forgetSession, get, knownCalendarUrl, ownerHrefOf, parseSyncAnswer, pickCalendar, preconditions, put, rememberCalendarUrl, remove, session, syncCollection, writableOf } from './dav.ts';

export const PLATFORM = 'caldav';
const MAX_GENERATION = 5;
export const X_APPOINTMENT = 'X-MERIDIAN-APPOINTMENT-ID';
export const X_REVISION = 'X-MERIDIAN-REVISION';

function resourceName(appointmentId: string, generation: number): string {
  return `meridian-${appointmentId}${generation > 0 ? `-g${generation}` : ''}`;
}

export function objectFor(e: TargetEvent, generation: number, domain: string, now: Date): string {
  const name = resourceName(e.appointmentId, generation);
  return renderCalendar({
    stamp: now,
    events: [{
      ...icsEventOf(e, `${name}@${domain}`),
      private: true,
      x: { [X_APPOINTMENT]: e.appointmentId, [X_REVISION]: String(e.revision) },
    }],
  });
}

function holdsOurs(body: string | undefined, appointmentId: string): boolean {
  if (!body) return false;
  try {
    return parseCalendar(body).events.some((ev) => ev.x[X_APPOINTMENT] === appointmentId);
  } catch {
    return false;
  }
}

/** Occurrences expanded here at most, per series (a daily series over a year is 365). */
const MAX_OCCURRENCES = 2000;

/** The instant of an ICAL time as parseCalendar reads DTSTART: an IANA TZID by RFC 5545's rule, else ical.js's. */
function instantIn(t: ICAL.Time, tzid: string | undefined): string {
  if (t.isDate) return `${t.toString()}T00:00:00Z`;
  if (tzid && isIanaZone(tzid)) return localToUtc(t.toString().slice(0, 19), tzid);
  return toUtc(t.toJSDate());
}

/**
 * The events of one calendar object as calendar events, recurring ones as their occurrences in the window:
 * servers that expand (RFC 4791 §9.6.5) answer one VEVENT per occurrence with a RECURRENCE-ID; servers that do
 * not (Radicale 3.1) answer the series, expanded here with ical.js (EXDATEs and overridden instances included).
 * An occurrence's id is the href plus its RECURRENCE-ID.
 */
export function calendarEventsOf(ics: string, href: string, window: ListWindow): CalendarEvent[] {
  const { components, events } = parseCalendar(ics);
  const vevents = components.getAllSubcomponents('vevent');
  const masters = new Set(vevents.filter((v) => v.hasProperty('rrule') || v.hasProperty('rdate')).map((v) => String(v.getFirstPropertyValue('uid'))));
  const parsed = new Map(vevents.map((v, i) => [v, events[i]]));
  const out: CalendarEvent[] = [];
  events.forEach((ev, i) => {
    const v = vevents[i];
    if (v.hasProperty('rrule') || v.hasProperty('rdate')) out.push(...occurrencesOf(v, vevents.filter((x) => x.hasProperty('recurrence-id') && x.getFirstPropertyValue('uid') === ev.uid), parsed, href, window));
    else if (!(ev.recurrenceId && masters.has(ev.uid))) out.push(calendarEventOf(v, ev, ev.recurrenceId ? `${href}#${ev.recurrenceId}` : href, ev.start, ev.end));
  });
  return out;
}

function occurrencesOf(master: ICAL.Component, overrides: ICAL.Component[], parsed: Map<ICAL.Component, ParsedIcsEvent>, href: string, window: ListWindow): CalendarEvent[] {
  const series = new ICAL.Event(master, { exceptions: overrides });
  const tzid = (c: ICAL.Component, prop: string) => {
    const p = c.getFirstProperty(prop)?.getParameter('tzid') ?? master.getFirstProperty('dtstart')?.getParameter('tzid');
    return typeof p === 'string' ? p : undefined;
  };
  const out: CalendarEvent[] = [];
  const it = series.iterator();
  for (let n = 0, t = it.next(); t && n < MAX_OCCURRENCES; n++, t = it.next()) {
    const d = series.getOccurrenceDetails(t);
    const item = d.item.component;
    const start = instantIn(d.startDate, tzid(item, 'dtstart'));
    const end = instantIn(d.endDate, tzid(item, 'dtend'));
    if (Date.parse(start) >= window.to.getTime()) break;
    if (Date.parse(end) <= window.from.getTime()) continue;
    out.push(calendarEventOf(item, parsed.get(item) ?? parsed.get(master)!, `${href}#${instantIn(d.recurrenceId, tzid(master, 'dtstart'))}`, start, end));
  }
  return out;
}

function calendarEventOf(v: ICAL.Component, ev: ParsedIcsEvent, remoteId: string, start: string, end: string): CalendarEvent {
  const item = new ICAL.Event(v);
  const allDay = item.startDate.isDate;
  const stamp = (v.getFirstPropertyValue('last-modified') ?? v.getFirstPropertyValue('dtstamp')) as ICAL.Time | null;
  const organizer = String(v.getFirstPropertyValue('organizer') ?? '').toLowerCase();
  const attendees = v.getAllProperties('attendee').map((p) => String(p.getFirstValue() ?? ''))
    .filter((a) => a && a.toLowerCase() !== organizer).map((a) => a.replace(/^mailto:/i, ''));
  return {
    remoteId,
    // A DATE has no instant: its day at 00:00Z (ical.js would take the host's local midnight).
    start: allDay ? `${item.startDate.toString()}T00:00:00Z` : start,
    end: allDay ? `${item.endDate.toString()}T00:00:00Z` : end,
    ...(ev.timeZone !== 'UTC' && isIanaZone(ev.timeZone) ? { timeZone: ev.timeZone } : {}),
    title: ev.summary,
    ...(ev.description ? { description: ev.description } : {}),
    status: ev.status?.toUpperCase() === 'CANCELLED' ? 'cancelled' : 'confirmed',
    ...(stamp ? { updated: toUtc(stamp.toJSDate()) } : {}),
    ...(attendees.length ? { attendees } : {}),
    ours: Boolean(ev.x[X_APPOINTMENT]),
    allDay,
    transparent: ev.transparent,
  };
}

/** A failed listing without the server's text, which may quote calendar data. */
function listFailure(err: unknown): ConnectorFailure {
  const status = Number(/Collection query failed: (\d{3})/.exec((err as Error).message ?? '')?.[1]);
  if (status === 401) return { class: 'auth', status, message: 'CalDAV calendar-query: HTTP 401: the password was refused (for iCloud, an app-specific password is needed)' };
  if (status === 429 || status === 503) return { class: 'throttled', status, message: `CalDAV calendar-query: HTTP ${status}` };
  if (status >= 400 && status < 500) return { class: 'permanent', status, message: `CalDAV calendar-query: HTTP ${status}` };
  return { class: 'transient', message: Number.isFinite(status) ? `CalDAV calendar-query: HTTP ${status}` : 'CalDAV calendar-query failed or answered an object that is not iCalendar' };
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const domain = (ctx.config.uidDomain as string | undefined) ?? 'meridian.local';
  const calendarUrl = async (wanted: string | undefined): Promise<WriteOutcome<string>> => {
    try {
      const s = await session(ctx);
      const cal = pickCalendar(s.calendars, wanted ?? (ctx.config.calendar as string | undefined));
      if (!cal) return fail({ class: 'permanent', message: `CalDAV: no calendar "${wanted ?? '(default)'}" in this account (${s.calendars.length} found)` });
      return ok(cal.url.replace(/\/?$/, '/'));
    } catch (err) {
      return fail(discoveryFailure(err));
    }
  };

  function discoveryFailure(err: unknown): ConnectorFailure {
    const m = (err as Error).message ?? '';
    forgetSession(ctx);
    if (/401|unauthori[sz]ed/i.test(m)) return { class: 'auth', status: 401, message: 'CalDAV: the server refused the username or password (for iCloud, an app-specific password is needed)' };
    return { class: 'transient', message: `CalDAV discovery failed: ${m.slice(0, 120)}` };
  }

  /**
   * Discovery afresh (principal → calendar home → its collections that take VEVENTs). `id` is the collection's
   * path, which a binding's `calendar` may hold (pickCalendar matches URL, path or display name; the path stays
   * right when iCloud moves the account to another partition host and when a calendar is renamed).
   */
  async function calendars(): Promise<WriteOutcome<CalendarInfo[]>> {
    forgetSession(ctx);
    try {
      const s = await session(ctx);
      const me = s.account.principalUrl ? new URL(s.account.principalUrl).pathname : undefined;
      const user = ctx.secrets.username ?? (ctx.config.username as string | undefined) ?? '';
      return ok(s.calendars.map((c): CalendarInfo => {
        const path = new URL(c.url).pathname.replace(/\/?$/, '/');
        const ownerHref = ownerHrefOf(c);
        const mine = !ownerHref || (me !== undefined && new URL(ownerHref, c.url).pathname.replace(/\/?$/, '/') === me.replace(/\/?$/, '/'));
        const tzid = /^TZID:(.+)$/m.exec(typeof c.timezone === 'string' ? c.timezone : '')?.[1]?.trim();
        const name = typeof c.displayName === 'string' && c.displayName ? c.displayName : decodeURIComponent(path.split('/').filter(Boolean).pop() ?? path);
        return {
          id: path, name, writable: writableOf(c),
          ...(mine && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(user) ? { owner: user } : {}),
          ...(tzid && isIanaZone(tzid) ? { timeZone: tzid } : {}),
        };
      }));
    } catch (err) {
      return fail(discoveryFailure(err));
    }
  }

  async function create(e: TargetEvent, calUrl: string, generation: number): Promise<WriteOutcome<LinkState>> {
    for (let g = generation; g <= MAX_GENERATION; g++) {
      const href = `${calUrl}${resourceName(e.appointmentId, g)}.ics`;
      const r = await put(ctx, href, objectFor(e, g, domain, ctx.now()), undefined);
      if (r.kind === 'ok') return ok(await linkAfterWrite(href, r.etag, e.calendarId, g, calUrl));
      if (r.kind === 'http' && r.status === 412) {
        // Something sits at our href: our earlier attempt (update it) or not ours (next generation).
        const cur = await get(ctx, href);
        if (cur.kind === 'ok' && holdsOurs(cur.body, e.appointmentId) && cur.etag) {
          const upd = await put(ctx, href, objectFor(e, g, domain, ctx.now()), cur.etag);
          if (upd.kind === 'ok') return ok(await linkAfterWrite(href, upd.etag, e.calendarId, g, calUrl));
          return fail(failureOf(upd, 'update'));
        }
        continue;
      }
      if (r.kind === 'http' && (r.status === 403 || r.status === 409) && preconditions(r.body).includes('no-uid-conflict')) continue;
      return fail(failureOf(r, 'create'));
    }
    return fail({ class: 'permanent', message: `CalDAV: no free resource name after ${MAX_GENERATION} generations` });
  }

  /** Some servers return no ETag when they rewrote the object: read it back for the next If-Match. */
  async function linkAfterWrite(href: string, etag: string | undefined, calendarId: string | undefined, generation: number, calUrl: string): Promise<LinkState> {
    let tag = etag;
    if (!tag) {
      const r = await get(ctx, href);
      if (r.kind === 'ok') tag = r.etag;
    }
    return { remoteId: href, calendarId, etag: tag, generation, data: { calendarUrl: calUrl } };
  }

  /** calendar-query with a time-range, the server expanding recurring events into occurrences (RFC 4791 §7.8, §9.6.5). */
  async function events(window: ListWindow, calendarId: string | undefined): Promise<WriteOutcome<CalendarEvent[]>> {
    const cal = await calendarUrl(calendarId);
    if (!cal.ok) return cal;
    try {
      const s = await session(ctx);
      const calendar = s.calendars.find((c) => c.url.replace(/\/?$/, '/') === cal.value)!;
      const objects = await fetchCalendarObjects({
        calendar, timeRange: { start: window.from.toISOString(), end: window.to.toISOString() }, expand: true, headers: authHeaders(ctx), fetch: ctx.fetch,
      });
      return ok(objects.flatMap((o) => calendarEventsOf(String(o.data ?? ''), o.url, window)));
    } catch (err) {
      return fail(listFailure(err));
    }
  }

  return {
    calendars,
    async upsert(e, link) {
      const cal = await calendarUrl(e.calendarId);
      if (!cal.ok) return cal;
      if (!link || (link.data?.calendarUrl && link.data.calendarUrl !== cal.value)) return create(e, cal.value, link?.generation ?? 0);
      const body = objectFor(e, link.generation, domain, ctx.now());
      let r = await put(ctx, link.remoteId, body, link.etag);
      if (r.kind === 'http' && r.status === 412) {
        // Changed since we wrote it (by hand, or a lost answer): take the current etag and write ours.
        const cur = await get(ctx, link.remoteId);
        if (cur.kind === 'ok' && cur.etag) r = await put(ctx, link.remoteId, body, cur.etag);
        else if (cur.kind === 'http' && cur.status === 404) return create(e, cal.value, link.generation);
      }
      if (r.kind === 'ok') return ok(await linkAfterWrite(link.remoteId, r.etag, e.calendarId, link.generation, cal.value));
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return create(e, cal.value, link.generation);
      return fail(failureOf(r, 'update'));
    },
    async changes(calendarId, token) {
      // Cheap when nothing changed: the collection's DAV:sync-token (one PROPFIND, Depth 0, on the URL found
      // before, so no discovery) equal to the stored token answers "nothing" without the REPORT. Another token,
      // or no such property: the REPORT, on that URL. An answer other than 207 (the collection moved or went):
      // discovery (cached) finds it again, then the REPORT.
      let url: string | undefined;
      const known = knownCalendarUrl(ctx, calendarId);
      if (token && known) {
        const p = await collectionSyncToken(ctx, known);
        if (p.kind === 'ok' && p.token === token) return ok({ full: false, changed: [], token });
        if (p.kind === 'failed' || (p.kind === 'http' && (p.status === 401 || p.status === 429 || p.status === 503))) return fail(failureOf(p, 'sync-token'));
        if (p.kind === 'ok') url = known;
        else forgetCalendarUrl(ctx, calendarId);
      }
      if (!url) {
        const cal = await calendarUrl(calendarId);
        if (!cal.ok) return cal;
        url = cal.value;
        rememberCalendarUrl(ctx, calendarId, url);
      }
      const cal = { value: url };
      let full = !token;
      let r = await syncCollection(ctx, cal.value, token);
      // 403 with DAV:valid-sync-token (unknown or expired token): start again from nothing.
      if (token && r.kind === 'http' && (r.status === 403 || r.status === 409) && preconditions(r.body).includes('valid-sync-token')) {
        full = true;
        r = await syncCollection(ctx, cal.value, undefined);
      }
      if (r.kind !== 'ok') return fail(failureOf(r, 'sync-collection'));
      const parsed = parseSyncAnswer(r.body ?? '', cal.value);
      return ok({ full, changed: parsed.hrefs, token: parsed.token });
    },
    async busy(window, calendarId) {
      const r = await events(window, calendarId);
      if (!r.ok) return r;
      return ok(r.value.filter((e) => e.status !== 'cancelled' && !e.transparent && !e.ours).map((e): BusyInterval => ({ start: e.start, end: e.end })));
    },
    events,
    async inspect(e, link) {
      const r = await get(ctx, link.remoteId);
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return ok({ state: 'missing' });
      if (r.kind !== 'ok') return fail(failureOf(r, 'read'));
      try {
        const ev = parseCalendar(r.body ?? '').events.find((x) => x.x[X_APPOINTMENT] === e.appointmentId);
        return ok(driftOf(e, ev && { start: ev.start, end: ev.end, title: ev.summary }));
      } catch {
        return ok({ state: 'changed' });
      }
    },
    async removeUnrecorded(appointmentId, calendarId, generation) {
      const cal = await calendarUrl(calendarId);
      if (!cal.ok) return cal;
      const href = `${cal.value}${resourceName(appointmentId, generation)}.ics`;
      const cur = await get(ctx, href);
      if (cur.kind === 'http' && (cur.status === 404 || cur.status === 410)) return ok(false);
      if (cur.kind !== 'ok') return fail(failureOf(cur, 'read'));
      if (!holdsOurs(cur.body, appointmentId)) return ok(false);
      const r = await remove(ctx, href, cur.etag);
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(true);
      return fail(failureOf(r, 'delete'));
    },
    async remove(link) {
      let r = await remove(ctx, link.remoteId, link.etag);
      if (r.kind === 'http' && r.status === 412) {
        const cur = await get(ctx, link.remoteId);
        if (cur.kind === 'http' && cur.status === 404) return ok(undefined);
        if (cur.kind === 'ok') r = await remove(ctx, link.remoteId, cur.etag);
      }
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(undefined);
      return fail(failureOf(r, 'delete'));
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'calendar',
    displayName: 'CalDAV (iCloud and other servers)',
    defaultBaseUrl: 'https://caldav.icloud.com',
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'username', label: 'Username (Apple ID for iCloud)', secret: true, required: true },
      { key: 'password', label: 'Password (an app-specific password for iCloud)', secret: true, required: true, help: 'appleid.apple.com → Sign-In and Security → App-Specific Passwords' },
    ],
    configFields: [TWO_WAY, BUSY_TIMES],
    fidelity:
      'Events written into a CalDAV calendar (iCloud by default; any RFC 4791 server by base URL) with conditional '
      + 'writes (If-None-Match / If-Match), so a retry never duplicates; a hand edit is detected (412) and, under the default '
      + 'restore policy, replaced by the appointment as it is. Calendars are found by discovery; a practitioner binding names the calendar by its '
      + 'display name or URL.',
    capabilities: { push: true, readChanges: true, freeBusy: true, deterministicIds: true },
  },
  client: createClient,
};
