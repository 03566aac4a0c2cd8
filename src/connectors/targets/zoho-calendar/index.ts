// Zoho Calendar API v1 as a target (targets.md §4).
// - Hosts follow the user's data centre: the OAuth callback's `accounts-server` is stored as
//   config.accountsServer (token refresh goes there) and the Calendar host is derived from it
//   (`accounts.zoho.eu` → `calendar.zoho.eu`) unless the connection sets a base URL.
// - No idempotency key exists: every description carries our marker `Ref: mrd-<appointment id>`, and
//   a create first lists the appointment's time window for that marker (a retried create updates).
// - Updates and deletes read the latest etag first (PUT replaces the whole event and needs it).
// - Event data travels as the `eventdata` query parameter; times in GMT `yyyyMMdd'T'HHmmss'Z'`.
import { driftOf, fail, ok, type BusyInterval, type CalendarInfo, type ConnectionContext, type ConnectorFailure, type LinkState, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { BUSY_TIMES, TWO_WAY } from '../../shared/settings.ts';
import { AuthFailure, OAuthSession } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';
import { callJson, type JsonAnswer } from '../../shared/json-api.ts';
import { isIanaZone } from '../../../domain/time.ts';
import { zohoOAuth } from './oauth.ts';

export const PLATFORM = 'zoho-calendar';

export function marker(appointmentId: string): string {
  return `Ref: mrd-${appointmentId}`;
}

export function zohoTime(instant: string): string {
  return new Date(instant).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** `20270312T090000Z` or `20270312T100000+0100` → an ISO instant. */
export function fromZohoTime(t: string): string | undefined {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(Z|[+-]\d{4})$/.exec(t);
  if (!m) return undefined;
  const off = m[7] === 'Z' ? 'Z' : `${m[7].slice(0, 3)}:${m[7].slice(3)}`;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${off}`).toISOString();
}

/** `https://accounts.zoho.eu` → `https://calendar.zoho.eu` (and .com, .in, .com.au, .jp, .com.cn). */
export function calendarHostFor(accountsServer: string | undefined): string {
  const m = accountsServer ? /^https:\/\/accounts\.(zoho\.[a-z.]+|zohocloud\.ca)\/?$/.exec(accountsServer) : null;
  return m ? `https://calendar.${m[1]}` : 'https://calendar.zoho.com';
}

/** A calendar as `GET /calendars` lists it (the fields Meridian reads). */
interface ZohoCalendar {
  uid?: string;
  name?: string;
  isdefault?: boolean;
  /** `owner` for one's own calendars; what a calendar shared with the user allows otherwise. */
  privilege?: string;
  timezone?: string;
  category?: string;
}

/**
 * Whether the user may add events: their own calendars (`owner`) and shares that allow writing or managing.
 * Zoho's pages show `owner` only; the other spellings are matched by meaning (unverified): free/busy and
 * view-only shares, and app / holiday calendars, are not writable. No privilege given: writable.
 */
export function zohoWritable(privilege: string | undefined): boolean {
  if (privilege === undefined || privilege === '') return true;
  return /owner|write|edit|modify|manage|delegate|full/i.test(privilege) && !/read|view|free ?busy/i.test(privilege);
}

interface ZohoEvent {
  uid: string;
  etag: number | string;
  title?: string;
  description?: string;
  dateandtime?: { start: string; end: string; timezone?: string };
}

function eventData(e: TargetEvent, etag?: number | string): Record<string, unknown> {
  const description = [e.description, marker(e.appointmentId)].filter(Boolean).join('\n');
  return {
    title: e.title,
    description,
    dateandtime: { timezone: e.timeZone, start: zohoTime(e.start), end: zohoTime(e.end) },
    location: e.location ?? '',
    isprivate: true,
    attendees: [],
    ...(etag !== undefined ? { etag } : {}),
  };
}

/** Zoho's range listing spans at most 31 days (get-events-list). */
const MAX_RANGE_MS = 31 * 86_400_000;
/** The horizon `changes` lists: a little wider than a sweep's (yesterday to 180 days ahead), six 31-day slices. */
const CHANGES_PAST_MS = 2 * 86_400_000;
const CHANGES_FUTURE_MS = 184 * 86_400_000;
const TOKEN_PREFIX = 'zoho-etags:';

/** The uid → etag map a `changes` token holds; undefined for no token or one this version did not write. */
export function readEtagToken(token: string | undefined): Record<string, string> | undefined {
  if (!token?.startsWith(TOKEN_PREFIX)) return undefined;
  try {
    const v = JSON.parse(token.slice(TOKEN_PREFIX.length)) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const s = ctx.secrets;
  const accounts = (ctx.config.accountsServer as string | undefined) ?? 'https://accounts.zoho.com';
  const session = s.refreshToken && s.clientId
    ? new OAuthSession({ tokenUrl: (ctx.config.tokenUrl as string | undefined) ?? `${accounts.replace(/\/$/, '')}/oauth/v2/token`, clientId: s.clientId, clientSecret: s.clientSecret, refreshToken: s.refreshToken, accessToken: s.accessToken, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined }, ctx)
    : undefined;
  const api = `${ctx.baseUrl || calendarHostFor(accounts)}/api/v1`;

  const token = async (rejected?: string): Promise<string | ConnectorFailure> => {
    if (!session) return { class: 'auth', message: 'Zoho Calendar is not connected: set clientId, clientSecret and refreshToken' };
    try {
      return rejected === undefined ? await session.accessToken() : await session.refresh();
    } catch (err) {
      return err instanceof AuthFailure ? err.failure : networkFailure(err);
    }
  };

  function call(method: string, path: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<JsonAnswer> {
    const url = new URL(`${api}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return callJson(ctx, { method, url, headers }, token, (tok) => ({ authorization: `Zoho-oauthtoken ${tok}` }));
  }

  function failure(a: Exclude<JsonAnswer, { kind: 'ok' }>, op: string): ConnectorFailure {
    if (a.kind === 'failed') return { ...a.failure, message: `Zoho Calendar ${op}: ${a.failure.message}` };
    const message = `Zoho Calendar ${op}: HTTP ${a.status}`;
    if (a.status === 429) return { class: 'throttled', status: 429, retryAfterMs: a.retryAfterMs, message };
    if (a.status >= 500) return { class: 'transient', status: a.status, message };
    if (a.status === 401) return { class: 'auth', status: 401, message };
    return { class: 'permanent', status: a.status, message };
  }

  const calendars = new Map<string, string>();
  async function calendarUid(wanted: string | undefined): Promise<WriteOutcome<string>> {
    const named = wanted ?? (ctx.config.calendarUid as string | undefined);
    if (named) return ok(named);
    const hit = calendars.get('default');
    if (hit) return ok(hit);
    const r = await call('GET', '/calendars', { category: 'own' });
    if (r.kind !== 'ok') return fail(failure(r, 'list calendars'));
    const list = (r.json?.calendars as { uid: string; isdefault?: boolean }[] | undefined) ?? [];
    const def = list.find((c) => c.isdefault) ?? list[0];
    if (!def) return fail({ class: 'permanent', message: 'Zoho Calendar: the account has no calendar' });
    calendars.set('default', def.uid);
    return ok(def.uid);
  }

  /**
   * The events of a calendar between two instants: Zoho's range listing, which may not span more than 31 days
   * (get-events-list), walked a slice at a time.
   */
  async function listRange(cal: string, from: Date, to: Date): Promise<WriteOutcome<ZohoEvent[]>> {
    const out: ZohoEvent[] = [];
    for (let at = from.getTime(); at < to.getTime(); at += MAX_RANGE_MS) {
      const end = Math.min(at + MAX_RANGE_MS, to.getTime());
      const r = await call('GET', `/calendars/${encodeURIComponent(cal)}/events`, { range: JSON.stringify({ start: zohoTime(new Date(at).toISOString()), end: zohoTime(new Date(end).toISOString()) }) });
      if (r.kind !== 'ok') return fail(failure(r, 'list'));
      out.push(...((r.json?.events as ZohoEvent[] | undefined) ?? []));
    }
    return ok(out);
  }

  const eventPath = (cal: string, uid: string) => `/calendars/${encodeURIComponent(cal)}/events/${encodeURIComponent(uid)}`;

  async function current(cal: string, uid: string): Promise<ZohoEvent | undefined | ConnectorFailure> {
    const r = await call('GET', eventPath(cal, uid));
    if (r.kind === 'http' && r.status === 404) return undefined;
    if (r.kind !== 'ok') return failure(r, 'read');
    return ((r.json?.events as ZohoEvent[] | undefined) ?? [])[0];
  }

  async function findByMarker(cal: string, e: TargetEvent): Promise<ZohoEvent | undefined | ConnectorFailure> {
    const range = JSON.stringify({ start: zohoTime(new Date(Date.parse(e.start) - 86_400_000).toISOString()), end: zohoTime(new Date(Date.parse(e.end) + 86_400_000).toISOString()) });
    const r = await call('GET', `/calendars/${encodeURIComponent(cal)}/events`, { range });
    if (r.kind !== 'ok') return failure(r, 'list');
    return ((r.json?.events as ZohoEvent[] | undefined) ?? []).find((ev) => ev.description?.includes(marker(e.appointmentId)));
  }

  async function put(cal: string, e: TargetEvent, ev: ZohoEvent, generation: number): Promise<WriteOutcome<LinkState>> {
    const r = await call('PUT', eventPath(cal, ev.uid), { eventdata: JSON.stringify(eventData(e, ev.etag)) });
    if (r.kind !== 'ok') return fail(failure(r, 'update'));
    const saved = ((r.json?.events as ZohoEvent[] | undefined) ?? [])[0];
    return ok({ remoteId: ev.uid, calendarId: cal, etag: String(saved?.etag ?? ''), generation });
  }

  async function create(cal: string, e: TargetEvent, generation: number): Promise<WriteOutcome<LinkState>> {
    const found = await findByMarker(cal, e);
    if (found && 'class' in found) return fail(found);
    if (found) return put(cal, e, found, generation);
    const r = await call('POST', `/calendars/${encodeURIComponent(cal)}/events`, { eventdata: JSON.stringify(eventData(e)) });
    if (r.kind !== 'ok') return fail(failure(r, 'create'));
    const made = ((r.json?.events as ZohoEvent[] | undefined) ?? [])[0];
    if (!made?.uid) return fail({ class: 'transient', message: 'Zoho Calendar create: no event in the answer' });
    return ok({ remoteId: made.uid, calendarId: cal, etag: String(made.etag), generation });
  }

  return {
    /** The user's calendars, own and shared; `id` is the calendar uid, which events are written under. */
    async calendars() {
      const r = await call('GET', '/calendars');
      if (r.kind !== 'ok') return fail(failure(r, 'list calendars'));
      const list = (r.json?.calendars as ZohoCalendar[] | undefined) ?? [];
      return ok(list.filter((c): c is ZohoCalendar & { uid: string } => typeof c.uid === 'string' && c.uid !== '').map((c): CalendarInfo => ({
        id: c.uid, name: c.name || c.uid,
        ...(c.isdefault ? { primary: true } : {}),
        writable: zohoWritable(c.privilege),
        ...(c.timezone && isIanaZone(c.timezone) ? { timeZone: c.timezone } : {}),
      })));
    },
    async upsert(e, link) {
      const cal = await calendarUid(e.calendarId);
      if (!cal.ok) return cal;
      if (!link || link.calendarId !== cal.value) return create(cal.value, e, link?.generation ?? 0);
      const cur = await current(cal.value, link.remoteId);
      if (cur && 'class' in cur) return fail(cur);
      if (!cur) return create(cal.value, e, link.generation + 1);
      return put(cal.value, e, cur, link.generation);
    },
    /**
     * No sync token or change feed is documented (targets.md §4.5): the range listing of the horizon a sweep
     * manages, each event's etag compared with the one the token holds. The token is that map (uid → etag), so
     * an event edited, added or deleted — ours or the practitioner's own — is named; one moved out of the
     * horizon is named too (it left the listing). Costs ⌈horizon / 31 days⌉ listings, whatever changed.
     */
    async changes(calendarId, token) {
      const cal = await calendarUid(calendarId);
      if (!cal.ok) return cal;
      const now = ctx.now().getTime();
      const listed = await listRange(cal.value, new Date(now - CHANGES_PAST_MS), new Date(now + CHANGES_FUTURE_MS));
      if (!listed.ok) return listed;
      const next: Record<string, string> = {};
      for (const ev of listed.value) if (ev.uid) next[ev.uid] = String(ev.etag);
      const before = readEtagToken(token);
      const changed = before ? [...new Set([...Object.keys(next), ...Object.keys(before)])].filter((uid) => before[uid] !== next[uid]) : [];
      return ok({ full: !before, changed, token: `${TOKEN_PREFIX}${JSON.stringify(next)}` });
    },
    async busy(window, calendarId) {
      const cal = await calendarUid(calendarId);
      if (!cal.ok) return cal;
      const r = await listRange(cal.value, window.from, window.to);
      if (!r.ok) return r;
      const out: BusyInterval[] = [];
      for (const ev of r.value) {
        if (ev.description?.includes('Ref: mrd-')) continue;
        const start = ev.dateandtime && fromZohoTime(ev.dateandtime.start);
        const end = ev.dateandtime && fromZohoTime(ev.dateandtime.end);
        if (start && end) out.push({ start: start.replace('.000Z', 'Z'), end: end.replace('.000Z', 'Z') });
      }
      return ok(out);
    },
    async inspect(e, link) {
      if (!link.calendarId) return ok({ state: 'missing' });
      const cur = await current(link.calendarId, link.remoteId);
      if (cur && 'class' in cur) return fail(cur);
      const t = (z: string | undefined) => (z ? fromZohoTime(z) : undefined);
      return ok(driftOf(e, cur && { start: t(cur.dateandtime?.start), end: t(cur.dateandtime?.end), title: cur.title }));
    },
    async remove(link) {
      const cal = link.calendarId ?? (await calendarUid(undefined).then((c) => (c.ok ? c.value : undefined)));
      if (!cal) return fail({ class: 'permanent', message: 'Zoho Calendar: unknown calendar for this event' });
      const cur = await current(cal, link.remoteId);
      if (cur && 'class' in cur) return fail(cur);
      if (!cur) return ok(undefined);
      const r = await call('DELETE', eventPath(cal, link.remoteId), {}, { etag: String(cur.etag) });
      if (r.kind === 'ok' || (r.kind === 'http' && r.status === 404)) return ok(undefined);
      return fail(failure(r, 'delete'));
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'calendar',
    displayName: 'Zoho Calendar',
    oauth: zohoOAuth,
    defaultBaseUrl: '',
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'clientId', label: 'Client id', secret: true, required: true },
      { key: 'clientSecret', label: 'Client secret', secret: true, required: true },
      { key: 'refreshToken', label: 'Refresh token (access_type=offline)', secret: true, required: true },
      { key: 'accessToken', label: 'Access token (refreshed hourly)', secret: true, required: false },
    ],
    configFields: [TWO_WAY, BUSY_TIMES],
    fidelity:
      'Events in a Zoho Calendar of the user\'s own data centre (config.accountsServer from the OAuth callback). Zoho '
      + 'offers no idempotency key, so a marker in the description lets a retried create find its event; updates and '
      + 'deletes are guarded by the latest etag. Keep the privacy level minimal: event data travels in the URL.',
    capabilities: { push: true, readChanges: true, freeBusy: true, deterministicIds: false },
  },
  client: createClient,
};
