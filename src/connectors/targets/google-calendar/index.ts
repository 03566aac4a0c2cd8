// Google Calendar as a target (targets.md §1). State-based and retry-safe:
// - create = insert with a deterministic id (appointment UUID in base32hex) and sendUpdates=none;
// - 409 on insert → GET: ours and alive → PATCH; ours but cancelled (deleted) → restore with PATCH;
//   restore refused, or the id belongs to someone else → next generation id (`…g1`);
// - update = PATCH by the stored id (404/410 → create again);
// - remove = DELETE; 404 and 410 mean already gone, which is success.
// Patients are never attendees (Google would e-mail them); our ids ride in extendedProperties.private.
import { driftOf, fail, ok, type BusyInterval, type CalendarEvent, type CalendarInfo, type ConnectionContext, type LinkState, type ListWindow, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { BUSY_TIMES, TWO_WAY } from '../../shared/settings.ts';
import type { calendar_v3 } from '@googleapis/calendar';
import { OAuthSession } from '../../shared/oauth.ts';
import { GoogleCalendarApi, type ApiAnswer, type GoogleEvent } from './client.ts';
import { isUsageLimit, toFailure } from './errors.ts';
import { eventIdFor } from './event-id.ts';
import { googlePush, stopChannel, watchCalendar } from './push.ts';
import { googleOAuth, TOKEN_URL as DEFAULT_TOKEN_URL } from './oauth.ts';
import { isIanaZone, toUtc } from '../../../domain/time.ts';

export const PLATFORM = 'google-calendar';
/** Generations tried before giving up (each one is a fresh id Google has never seen). */
const MAX_GENERATION = 5;
/** Pages of 2,500 events: beyond this the window is not a practitioner's calendar. */
const MAX_LIST_PAGES = 20;

function body(e: TargetEvent, connectionId: string, id?: string): GoogleEvent {
  const zoned = (instant: string) => ({ dateTime: instant, timeZone: e.timeZone });
  return {
    ...(id ? { id } : {}),
    summary: e.title,
    description: e.description,
    location: e.location ?? '',
    start: zoned(e.start),
    end: zoned(e.end),
    status: e.status === 'requested' ? 'tentative' : 'confirmed',
    transparency: 'opaque',
    visibility: 'private',
    reminders: { useDefault: true },
    extendedProperties: {
      private: { meridianAppointmentId: e.appointmentId, meridianRevision: String(e.revision), meridianConnectionId: connectionId },
    },
  };
}

function isOurs(ev: GoogleEvent | undefined, appointmentId: string): boolean {
  return ev?.extendedProperties?.private?.meridianAppointmentId === appointmentId;
}

/** An event of a listing as a calendar event; undefined when its times cannot be read (a deleted event may carry only its id). */
export function calendarEventOf(ev: GoogleEvent, calendarZone: string | undefined): CalendarEvent | undefined {
  const at = (t: GoogleEvent['start']) => {
    try {
      return t?.dateTime ? toUtc(t.dateTime) : t?.date ? `${t.date}T00:00:00Z` : undefined;
    } catch {
      return undefined;
    }
  };
  const start = at(ev.start);
  const end = at(ev.end);
  if (!ev.id || !start || !end) return undefined;
  const zone = ev.start?.timeZone ?? calendarZone;
  const attendees = (ev.attendees ?? []).filter((a) => !a.self && !a.resource && a.email).map((a) => a.email!);
  return {
    remoteId: ev.id, start, end, title: ev.summary ?? '',
    ...(zone && isIanaZone(zone) ? { timeZone: zone } : {}),
    ...(ev.description ? { description: ev.description } : {}),
    status: ev.status === 'cancelled' ? 'cancelled' : 'confirmed',
    ...(ev.updated && Number.isFinite(Date.parse(ev.updated)) ? { updated: toUtc(ev.updated) } : {}),
    ...(attendees.length ? { attendees } : {}),
    ours: Boolean(ev.extendedProperties?.private?.meridianAppointmentId),
    allDay: Boolean(ev.start?.date),
    transparent: ev.transparency === 'transparent',
  };
}

type Failed = Exclude<ApiAnswer<unknown>, { kind: 'ok' }>;
type CalendarListEntry = NonNullable<calendar_v3.Schema$CalendarList['items']>[number];

/** Pages of 250 calendar-list entries followed before giving up. */
const MAX_CALENDAR_PAGES = 40;
/** The grant does not include a scope the call needs: only connecting again (with that scope) helps. */
const SCOPE_REASONS = new Set(['insufficientPermissions', 'ACCESS_TOKEN_SCOPE_INSUFFICIENT']);

/**
 * A calendar-list entry as Meridian shows it. `id` is Google's calendar id, which is what a binding's
 * `calendar` holds (events.insert takes it as is). Owners may write (and writers); readers and
 * free/busy readers may not. The owner's address: `dataOwner` for secondary calendars, else the id
 * itself when it is a person's primary calendar (an address, not a group/resource/import calendar).
 */
export function calendarInfoOf(c: CalendarListEntry): CalendarInfo | undefined {
  if (!c.id || c.deleted) return undefined;
  const person = /^[^@\s#]+@[^@\s]+\.[^@\s]+$/.test(c.id) && !/calendar\.google\.com$/i.test(c.id) ? c.id : undefined;
  const owner = c.dataOwner ?? person;
  return {
    id: c.id,
    name: c.summaryOverride || c.summary || c.id,
    ...(c.primary ? { primary: true } : {}),
    writable: c.accessRole === 'owner' || c.accessRole === 'writer',
    ...(owner ? { owner } : {}),
    ...(c.timeZone && isIanaZone(c.timeZone) ? { timeZone: c.timeZone } : {}),
  };
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const s = ctx.secrets;
  const session = s.refreshToken && s.clientId
    ? new OAuthSession({
      tokenUrl: (ctx.config.tokenUrl as string | undefined) ?? DEFAULT_TOKEN_URL,
      clientId: s.clientId, clientSecret: s.clientSecret, refreshToken: s.refreshToken,
      accessToken: s.accessToken, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined,
    }, ctx)
    : undefined;
  const api = new GoogleCalendarApi(ctx, session, 'Google Calendar is not connected: set clientId, clientSecret and refreshToken');
  const defaultCalendar = (ctx.config.calendarId as string | undefined) ?? 'primary';
  const failed = async (a: Failed, op: string) => fail<never>(await toFailure(a, op));

  const linkOf = (ev: GoogleEvent | undefined, calendarId: string, id: string, generation: number): LinkState =>
    ({ remoteId: ev?.id ?? id, calendarId, etag: ev?.etag ?? undefined, generation });

  async function create(e: TargetEvent, calendarId: string, generation: number): Promise<WriteOutcome<LinkState>> {
    for (let g = generation; g <= MAX_GENERATION; g++) {
      const id = eventIdFor(e.appointmentId, g);
      const ins = await api.insert(calendarId, body(e, ctx.connectionId, id));
      if (ins.kind === 'ok') return ok(linkOf(ins.data, calendarId, id, g));
      if (ins.kind !== 'http' || ins.status !== 409) return failed(ins, 'insert');
      // The id exists: our earlier attempt, or our deleted event still remembered by Google.
      const got = await api.get(calendarId, id);
      if (got.kind === 'ok' && isOurs(got.data, e.appointmentId)) {
        const patched = await api.patch(calendarId, id, body(e, ctx.connectionId));
        if (patched.kind === 'ok') return ok(linkOf(patched.data, calendarId, id, g));
        // Restoring a deleted event can be refused (403); anything else is a real failure.
        if (!(patched.kind === 'http' && (patched.status === 403 || patched.status === 404 || patched.status === 410))) return failed(patched, 'restore');
      } else if (got.kind === 'failed') {
        return failed(got, 'get');
      }
      // Not ours, unreadable, or not restorable: the next generation id.
    }
    return fail({ class: 'permanent', message: `Google Calendar: no usable event id after ${MAX_GENERATION} generations` });
  }

  /**
   * events.list over the window with recurring events expanded (singleEvents) and deleted ones shown, every
   * page followed: a listing cut short is a failure, because a source reading it would take the rest as gone.
   */
  async function events(window: ListWindow, calendarId: string | undefined): Promise<WriteOutcome<CalendarEvent[]>> {
    const out: CalendarEvent[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await api.list(calendarId ?? defaultCalendar, {
        timeMin: window.from.toISOString(), timeMax: window.to.toISOString(), singleEvents: 'true', showDeleted: 'true', maxResults: '2500', ...(pageToken ? { pageToken } : {}),
      });
      if (r.kind !== 'ok') return failed(r, 'list');
      for (const ev of r.data?.items ?? []) {
        const e = calendarEventOf(ev, r.data?.timeZone ?? undefined);
        if (e) out.push(e);
      }
      pageToken = r.data?.nextPageToken ?? undefined;
      if (!pageToken) return ok(out);
    }
    return fail({ class: 'permanent', message: `Google Calendar list: more than ${MAX_LIST_PAGES} pages in the window` });
  }

  /** calendarList.list, every page: the account's calendars (the listing also proves the grant works). */
  async function calendars(): Promise<WriteOutcome<CalendarInfo[]>> {
    const out: CalendarInfo[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_CALENDAR_PAGES; page++) {
      const r = await api.calendarList({ maxResults: '250', ...(pageToken ? { pageToken } : {}) });
      if (r.kind === 'http' && r.status === 403 && r.error.reasons.some((x) => SCOPE_REASONS.has(x))) {
        const f = await toFailure(r, 'calendar list');
        return fail({ ...f, class: 'auth', message: `${f.message}: the access granted does not include reading the calendar list; connect again` });
      }
      if (r.kind !== 'ok') return failed(r, 'calendar list');
      for (const c of r.data?.items ?? []) {
        const info = calendarInfoOf(c);
        if (info) out.push(info);
      }
      pageToken = r.data?.nextPageToken ?? undefined;
      if (!pageToken) return ok(out);
    }
    return fail({ class: 'permanent', message: `Google Calendar calendar list: more than ${MAX_CALENDAR_PAGES} pages` });
  }

  return {
    calendars,
    // Push (issue 18): no renewWatch, Google has no renewal (a new channel, then the old one stopped).
    watch: (calendarId, req) => watchCalendar(api, calendarId ?? defaultCalendar, req),
    unwatch: (channel) => stopChannel(api, channel),
    async upsert(e, link) {
      const calendarId = e.calendarId ?? link?.calendarId ?? defaultCalendar;
      if (!link || (link.calendarId ?? defaultCalendar) !== calendarId) return create(e, calendarId, link?.generation ?? 0);
      const r = await api.patch(calendarId, link.remoteId, body(e, ctx.connectionId));
      if (r.kind === 'ok') {
        // A PATCH on a deleted event succeeds but leaves it cancelled unless we set status: we do.
        return ok(linkOf(r.data, calendarId, link.remoteId, link.generation));
      }
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return create(e, calendarId, link.generation);
      // Deleted in Google's UI and Google refuses to restore it: move on to a fresh id.
      if (r.kind === 'http' && r.status === 403 && !isUsageLimit(r.error)) return create(e, calendarId, link.generation + 1);
      return failed(r, 'update');
    },
    async changes(calendarId, token) {
      // Incremental sync (targets.md §1.5): events changed since the token, deleted ones included;
      // 410 fullSyncRequired (or no token) → a full listing, and the caller checks everything.
      const cal = calendarId ?? defaultCalendar;
      let full = !token;
      const changed: string[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < 200; page++) {
        const q: Record<string, string> = full ? { showDeleted: 'true', maxResults: '2500' } : { syncToken: token! };
        if (pageToken) q.pageToken = pageToken;
        const r = await api.list(cal, q);
        if (!full && r.kind === 'http' && r.status === 410) {
          full = true;
          pageToken = undefined;
          changed.length = 0;
          continue;
        }
        if (r.kind !== 'ok') return failed(r, 'sync');
        for (const ev of r.data?.items ?? []) if (ev.id) changed.push(ev.id);
        pageToken = r.data?.nextPageToken ?? undefined;
        if (!pageToken) return ok({ full, changed, token: r.data?.nextSyncToken ?? undefined });
      }
      return fail({ class: 'transient', message: 'Google Calendar sync: too many pages' });
    },
    async busy(window, calendarId) {
      const r = await events(window, calendarId);
      if (!r.ok) return r;
      const busy = r.value.filter((e) => e.status !== 'cancelled' && !e.transparent && !e.ours && !e.allDay);
      return ok(busy.map((e): BusyInterval => ({ start: new Date(e.start).toISOString(), end: new Date(e.end).toISOString() })));
    },
    events,
    async inspect(e, link) {
      const r = await api.get(link.calendarId ?? defaultCalendar, link.remoteId);
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return ok({ state: 'missing' });
      if (r.kind !== 'ok') return failed(r, 'read');
      const ev = r.data;
      if (!ev || ev.status === 'cancelled') return ok({ state: 'missing' });
      return ok(driftOf(e, { start: ev.start?.dateTime, end: ev.end?.dateTime, title: ev.summary }));
    },
    async removeUnrecorded(appointmentId, calendarId, generation) {
      const cal = calendarId ?? defaultCalendar;
      const id = eventIdFor(appointmentId, generation);
      const got = await api.get(cal, id);
      if (got.kind === 'http' && (got.status === 404 || got.status === 410)) return ok(false);
      if (got.kind !== 'ok') return failed(got, 'read');
      if (!isOurs(got.data, appointmentId) || got.data?.status === 'cancelled') return ok(false);
      const r = await api.delete(cal, id);
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(true);
      return failed(r, 'delete');
    },
    async remove(link) {
      const calendarId = link.calendarId ?? defaultCalendar;
      const r = await api.delete(calendarId, link.remoteId);
      if (r.kind === 'ok') return ok(undefined);
      if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return ok(undefined);
      return failed(r, 'delete');
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'calendar',
    displayName: 'Google Calendar',
    oauth: googleOAuth,
    defaultBaseUrl: 'https://www.googleapis.com',
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'clientId', label: 'OAuth client id', secret: true, required: true },
      { key: 'clientSecret', label: 'OAuth client secret', secret: true, required: true },
      { key: 'refreshToken', label: 'Refresh token (offline access, scopes calendar.events and calendar.calendarlist.readonly)', secret: true, required: true },
      { key: 'accessToken', label: 'Access token (refreshed automatically)', secret: true, required: false },
    ],
    configFields: [TWO_WAY, BUSY_TIMES],
    fidelity:
      'Events created, moved and removed in each practitioner\'s calendar within seconds, without duplicates '
      + '(deterministic event ids; a retried create becomes an update). Nobody is e-mailed (sendUpdates=none; patients '
      + 'are never attendees). Text follows the connection\'s privacy level (minimal by default).',
    capabilities: { push: true, readChanges: true, freeBusy: true, deterministicIds: true },
  },
  client: createClient,
  push: googlePush,
};
