// tsdav, wrapped so that every answer is a typed outcome: tsdav's write helpers return a Response
// and do not throw on 412 (STACK.md §7), so nothing here may treat "no exception" as success.
import { createAccount, createObject, deleteObject, fetchCalendars, updateObject, type DAVAccount, type DAVCalendar } from 'tsdav';
import type { ConnectionContext, ConnectorFailure } from '../../types.ts';
import { networkFailure, retryAfterMs } from '../../shared/http.ts';

export interface DavSession {
  account: DAVAccount;
  calendars: DAVCalendar[];
}

export type DavAnswer =
  | { kind: 'ok'; status: number; etag?: string; body?: string }
  | { kind: 'http'; status: number; body: string; retryAfterMs?: number }
  | { kind: 'failed'; failure: ConnectorFailure };

export function authHeaders(ctx: ConnectionContext): Record<string, string> {
  const user = ctx.secrets.username ?? (ctx.config.username as string | undefined) ?? '';
  const pass = ctx.secrets.password ?? '';
  return { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/** What discovery asks of each collection in the calendar home: tsdav's own set plus who owns it and what we may do. */
const CALENDAR_PROPS = {
  'c:calendar-description': {}, 'c:calendar-timezone': {}, 'd:displayname': {}, 'ca:calendar-color': {}, 'cs:getctag': {},
  'd:resourcetype': {}, 'c:supported-calendar-component-set': {}, 'd:sync-token': {},
  'd:current-user-privilege-set': {}, 'd:owner': {},
};
const PROJECTED = { currentUserPrivilegeSet: true, owner: true };

/** Every element name under a parsed XML value (tsdav gives `{privilege: [{read: {}}, {all: {}}]}` or one object). */
function elementNames(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v) elementNames(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { if (!k.startsWith('_')) out.add(k); elementNames(x, out); }
  return out;
}

/**
 * Whether the account may create events in the calendar, from RFC 3744's current-user-privilege-set: `all`,
 * `write` or `bind` (creating a member). A server that does not report the property leaves it open: true.
 */
export function writableOf(cal: DAVCalendar): boolean {
  const set = cal.projectedProps?.currentUserPrivilegeSet;
  if (set === undefined || set === null || set === '') return true;
  const names = elementNames(set);
  if (!names.size) return true;
  return names.has('all') || names.has('write') || names.has('bind');
}

/** The owner's principal href (DAV:owner), when the server says. */
export function ownerHrefOf(cal: DAVCalendar): string | undefined {
  const o = cal.projectedProps?.owner as { href?: unknown } | string | undefined;
  const href = typeof o === 'object' && o ? o.href : undefined;
  const text = typeof href === 'string' ? href : (href as { _text?: unknown } | undefined)?._text;
  return typeof text === 'string' && text.trim() ? text.trim() : undefined;
}

/** Discovery (well-known → principal → calendar home → calendars), cached per connection for 10 minutes. */
const sessions = new Map<string, { at: number; session: Promise<DavSession> }>();
const SESSION_TTL_MS = 10 * 60_000;

export function forgetSession(ctx: ConnectionContext): void {
  const key = sessionKey(ctx);
  sessions.delete(key);
  for (const k of resolved.keys()) if (k.startsWith(`${key}|`)) resolved.delete(k);
}

/**
 * Calendar URLs discovery found, kept a day (longer than the session): a check for changes goes straight to
 * the collection (one PROPFIND) instead of paying discovery's four or five round trips every ten minutes.
 * A URL that stops answering is forgotten by the caller (`forgetCalendarUrl`) and found again by discovery.
 */
const resolved = new Map<string, { at: number; url: string }>();
const RESOLVED_TTL_MS = 24 * 3_600_000;

export function knownCalendarUrl(ctx: ConnectionContext, wanted: string | undefined): string | undefined {
  const hit = resolved.get(`${sessionKey(ctx)}|${wanted ?? ''}`);
  return hit && Date.now() - hit.at < RESOLVED_TTL_MS ? hit.url : undefined;
}

export function rememberCalendarUrl(ctx: ConnectionContext, wanted: string | undefined, url: string): void {
  resolved.set(`${sessionKey(ctx)}|${wanted ?? ''}`, { at: Date.now(), url });
}

export function forgetCalendarUrl(ctx: ConnectionContext, wanted: string | undefined): void {
  resolved.delete(`${sessionKey(ctx)}|${wanted ?? ''}`);
}

function sessionKey(ctx: ConnectionContext): string {
  return `${ctx.connectionId}|${ctx.baseUrl}|${authHeaders(ctx).authorization}`;
}

export function session(ctx: ConnectionContext): Promise<DavSession> {
  const key = sessionKey(ctx);
  const hit = sessions.get(key);
  if (hit && Date.now() - hit.at < SESSION_TTL_MS) return hit.session;
  const headers = authHeaders(ctx);
  const s = (async () => {
    const account = await createAccount({
      account: { serverUrl: `${ctx.baseUrl}/`, accountType: 'caldav' },
      headers, fetch: ctx.fetch, loadCollections: false, loadObjects: false,
    });
    const calendars = (await fetchCalendars({ account, headers, fetch: ctx.fetch, props: CALENDAR_PROPS, projectedProps: PROJECTED })).map((c) => ({ ...c, url: onHomeHost(c.url, account.homeUrl) }));
    // No supported-calendar-component-set reported means every component (RFC 4791 §5.2.3).
    return { account, calendars: calendars.filter((c) => !c.components?.length || c.components.includes('VEVENT')) };
  })();
  sessions.set(key, { at: Date.now(), session: s });
  s.catch(() => sessions.delete(key));
  return s;
}

/**
 * tsdav resolves the hrefs of the calendar listing against the discovery host, but they are relative
 * to the calendar home, which iCloud keeps on an account-specific partition host: put them there.
 */
export function onHomeHost(url: string, homeUrl: string | undefined): string {
  if (!homeUrl) return url;
  const u = new URL(url);
  const home = new URL(homeUrl);
  return u.origin !== home.origin && u.pathname.startsWith(home.pathname) ? new URL(u.pathname, home).href : url;
}

/** A calendar by URL, path or display name; the first event calendar when none is named. */
export function pickCalendar(calendars: DAVCalendar[], wanted: string | undefined): DAVCalendar | undefined {
  if (!wanted) return calendars[0];
  const norm = (u: string) => u.replace(/\/?$/, '/');
  return calendars.find((c) => norm(c.url) === norm(wanted))
    ?? calendars.find((c) => new URL(c.url).pathname === norm(wanted))
    ?? calendars.find((c) => typeof c.displayName === 'string' && c.displayName.toLowerCase() === wanted.toLowerCase());
}

async function answer(p: Promise<Response>): Promise<DavAnswer> {
  let res: Response;
  try {
    res = await p;
  } catch (err) {
    return { kind: 'failed', failure: networkFailure(err) };
  }
  const body = await res.text().catch(() => '');
  if (res.ok) return { kind: 'ok', status: res.status, etag: res.headers.get('etag') ?? undefined, body };
  return { kind: 'http', status: res.status, body, retryAfterMs: retryAfterMs(res.headers) };
}

export function put(ctx: ConnectionContext, url: string, ics: string, etag: string | undefined): Promise<DavAnswer> {
  const headers = { ...authHeaders(ctx), 'content-type': 'text/calendar; charset=utf-8' };
  return etag
    ? answer(updateObject({ url, data: ics, etag, headers, fetch: ctx.fetch }))
    : answer(createObject({ url, data: ics, headers: { ...headers, 'if-none-match': '*' }, fetch: ctx.fetch }));
}

export function get(ctx: ConnectionContext, url: string): Promise<DavAnswer> {
  return answer(ctx.fetch(url, { headers: authHeaders(ctx), signal: AbortSignal.timeout(30_000) }));
}

export function remove(ctx: ConnectionContext, url: string, etag: string | undefined): Promise<DavAnswer> {
  return answer(deleteObject({ url, etag, headers: authHeaders(ctx), fetch: ctx.fetch }));
}

/** CalDAV precondition names in a DAV:error body (403 on Apple's servers, 409 elsewhere). */
export function preconditions(body: string): string[] {
  return [...body.matchAll(/<(?:[A-Za-z0-9]+:)?(no-uid-conflict|valid-calendar-data|valid-calendar-object-resource|supported-calendar-data|supported-calendar-component|max-resource-size|min-date-time|max-date-time|valid-sync-token)\b/g)].map((m) => m[1]);
}

export function failureOf(a: Exclude<DavAnswer, { kind: 'ok' }>, op: string): ConnectorFailure {
  if (a.kind === 'failed') return { ...a.failure, message: `CalDAV ${op}: ${a.failure.message}` };
  const pre = preconditions(a.body);
  const message = `CalDAV ${op}: HTTP ${a.status}${pre.length ? ` (${pre.join(', ')})` : ''}`;
  if (a.status === 401) return { class: 'auth', status: 401, message: `${message}: the password was refused (for iCloud, an app-specific password is needed)` };
  if (a.status === 429 || a.status === 503) return { class: 'throttled', status: a.status, retryAfterMs: a.retryAfterMs, message };
  if (a.status >= 500 || a.status === 408) return { class: 'transient', status: a.status, message };
  if (a.status === 412 || a.status === 409) return { class: 'conflict', status: a.status, message };
  return { class: 'permanent', status: a.status, message };
}

/**
 * RFC 6578 sync-collection REPORT. tsdav's helper drops the new sync-token (it sits at the
 * multistatus level), so this one request is made here; the answer is small and well defined.
 */
export async function syncCollection(ctx: ConnectionContext, calendarUrl: string, token: string | undefined): Promise<DavAnswer> {
  const body = `<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:"><d:sync-token>${token ? escapeXml(token) : ''}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`;
  try {
    const res = await ctx.fetch(calendarUrl, {
      method: 'REPORT', headers: { ...authHeaders(ctx), depth: '0', 'content-type': 'application/xml; charset=utf-8' }, body, signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text().catch(() => '');
    if (res.ok) return { kind: 'ok', status: res.status, etag: undefined, body: text };
    return { kind: 'http', status: res.status, body: text, retryAfterMs: retryAfterMs(res.headers) };
  } catch (err) {
    return { kind: 'failed', failure: networkFailure(err) };
  }
}

/**
 * The collection's current DAV:sync-token property (PROPFIND Depth 0). RFC 6578 §4 makes it the token a
 * sync-collection REPORT would answer now, so equal to the stored one means nothing changed, without the
 * REPORT. `token` is undefined when the server does not report the property (the REPORT then decides).
 */
export async function collectionSyncToken(ctx: ConnectionContext, calendarUrl: string): Promise<{ kind: 'ok'; token: string | undefined } | Exclude<DavAnswer, { kind: 'ok' }>> {
  const body = '<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>';
  try {
    const res = await ctx.fetch(calendarUrl, {
      method: 'PROPFIND', headers: { ...authHeaders(ctx), depth: '0', 'content-type': 'application/xml; charset=utf-8' }, body, signal: AbortSignal.timeout(30_000), redirect: 'manual',
    });
    const text = await res.text().catch(() => '');
    if (res.status !== 207) return { kind: 'http', status: res.status, body: text, retryAfterMs: retryAfterMs(res.headers) };
    return { kind: 'ok', token: syncTokenProperty(text) };
  } catch (err) {
    return { kind: 'failed', failure: networkFailure(err) };
  }
}

/** The DAV:sync-token of a PROPFIND answer when a propstat with status 200 carries it (a 404 propstat holds an empty element). */
export function syncTokenProperty(xml: string): string | undefined {
  for (const m of xml.matchAll(/<(?:[A-Za-z0-9]+:)?propstat\b[\s\S]*?<\/(?:[A-Za-z0-9]+:)?propstat>/g)) {
    if (!/<(?:[A-Za-z0-9]+:)?status>\s*HTTP\/1\.[01] 200/.test(m[0])) continue;
    const v = /<(?:[A-Za-z0-9]+:)?sync-token>([^<]*)<\/(?:[A-Za-z0-9]+:)?sync-token>/.exec(m[0])?.[1]?.trim();
    // Decoded as parseSyncAnswer decodes the REPORT's token, so equal tokens compare equal.
    if (v) return v.replace(/&amp;/g, '&');
  }
  return undefined;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The hrefs (changed or removed) and the new token of a sync-collection multistatus, whatever the prefixes. */
export function parseSyncAnswer(xml: string, base: string): { hrefs: string[]; token: string | undefined } {
  const hrefs = [...xml.matchAll(/<(?:[A-Za-z0-9]+:)?response\b[\s\S]*?<(?:[A-Za-z0-9]+:)?href>([^<]+)<\/(?:[A-Za-z0-9]+:)?href>/g)]
    .map((m) => new URL(m[1].trim().replace(/&amp;/g, '&'), base).toString());
  const token = /<(?:[A-Za-z0-9]+:)?sync-token>([^<]*)<\/(?:[A-Za-z0-9]+:)?sync-token>/.exec(xml)?.[1]?.trim();
  return { hrefs, token: token ? token.replace(/&amp;/g, '&') : undefined };
}
