// Microsoft Graph calendars (targets.md §2): Outlook.com and delegated Microsoft 365 accounts
// (refresh-token flow, `/me`), or Office 365 with application permissions (client-credentials flow,
// `/users/{mailbox}`: one connection for every practitioner's mailbox of the tenant).
// - Create: lookup by our extended property first (Graph sometimes errs after creating), then POST
//   with a `transactionId` so a retried POST is recognised; patients are never attendees.
// - Update: PATCH with If-Match; 412/409 → re-read, write ours; 404 → create again.
// - Delete: DELETE (silent; `cancel` would mail attendees and we never add any); 404 = done.
// - Every call: `Prefer: IdType="ImmutableId"` and `outlook.timezone`; at most 4 requests in flight
//   per mailbox; 429/503 honour Retry-After (per inner request of a batch too).
// - Requests to one mailbox made within 5 ms travel as one JSON `$batch` (≤ 20; config `batch: false`
//   turns it off).
// - Which calendar (TargetEvent.calendarId, a binding's `calendar`, as `calendars()` lists them):
//   delegated: absent = the default calendar, else a Graph calendar id of /me/calendars (own or shared);
//   application: `<mailbox>` = that mailbox's default calendar, `<mailbox>/<calendar id>` = another of its
//   calendars (a mailbox, an address or a user id, never holds a `/`).
// - Push (issue 18): change-notification subscriptions and the reader of their notices are in push.ts.
import { driftOf, fail, ok, type BusyInterval, type CalendarEvent, type CalendarInfo, type ConnectionContext, type ConnectorFailure, type LinkState, type ListWindow, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { BUSY_TIMES, TWO_WAY } from '../../shared/settings.ts';
import { AuthFailure, OAuthSession } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';
import { callJson, type JsonAnswer } from '../../shared/json-api.ts';
import { graphOAuth } from './oauth.ts';
import { graphPush, watchMethods } from './push.ts';
import { isIanaZone, localToUtc, toUtc, utcToLocal } from '../../../domain/time.ts';

export const PLATFORM = 'microsoft-graph';
/** Our own property-set GUID: every Meridian extended property lives under it. */
const PROPSET = '{9b1e4c52-6a0d-4f37-8e2b-5d41a7c3f960}';
export const PROP_APPOINTMENT = `String ${PROPSET} Name MeridianAppointmentId`;
export const PROP_REVISION = `String ${PROPSET} Name MeridianRevision`;
const MAX_PER_MAILBOX = 4;
/** Pages of `$top` events a window listing follows before it gives up (never a partial listing). */
const MAX_LIST_PAGES = 100;

type Mode = 'delegated' | 'application';

interface Where {
  user: string;
  coll?: string;
}

/** A calendar as `GET …/calendars` answers it (the fields asked for with $select). */
interface GraphCalendar {
  id?: string;
  name?: string | null;
  canEdit?: boolean | null;
  isDefaultCalendar?: boolean | null;
  owner?: { name?: string | null; address?: string | null } | null;
}

interface GraphEvent {
  id?: string;
  '@odata.etag'?: string;
  subject?: string;
  singleValueExtendedProperties?: { id: string; value: string }[];
}

/**
 * At most MAX_PER_MAILBOX requests in flight per mailbox (Outlook's MailboxConcurrency limit, targets.md §2.8).
 * A `$batch` holds as many places as the inner requests Graph runs at once for it (up to four, §2.7): every inner
 * request counts against the mailbox, so four batches side by side would be sixteen requests, and refused 429.
 * Waiters are served in order; a wide one is not overtaken by narrow ones forever.
 */
class Gate {
  private active = 0;
  private waiting: { weight: number; go: () => void }[] = [];
  async run<T>(f: () => Promise<T>, places = 1): Promise<T> {
    const weight = Math.min(Math.max(1, places), MAX_PER_MAILBOX);
    if (this.waiting.length || this.active + weight > MAX_PER_MAILBOX) {
      // wake() counts the places when it lets this one go.
      await new Promise<void>((go) => this.waiting.push({ weight, go }));
    } else this.active += weight;
    try {
      return await f();
    } finally {
      this.active -= weight;
      this.wake();
    }
  }
  private wake(): void {
    while (this.waiting.length && this.active + this.waiting[0].weight <= MAX_PER_MAILBOX) {
      const next = this.waiting.shift()!;
      this.active += next.weight;
      next.go();
    }
  }
}
const gates = new Map<string, Gate>();
const gateFor = (key: string) => {
  let g = gates.get(key);
  if (!g) gates.set(key, (g = new Gate()));
  return g;
};

interface BatchItem {
  method: string;
  path: string;
  body?: unknown;
  ifMatch?: string;
}

/**
 * Requests to one mailbox that arrive within a few milliseconds of each other travel as one JSON
 * `$batch` (at most 20): a bulk sync or a reconnect catch-up costs a fraction of the round trips.
 * A lone request goes out as itself.
 */
class Batcher {
  private queue: { item: BatchItem; resolve(a: JsonAnswer): void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private send: ((items: BatchItem[]) => Promise<JsonAnswer[]>) | undefined;

  submit(item: BatchItem, send: (items: BatchItem[]) => Promise<JsonAnswer[]>): Promise<JsonAnswer> {
    this.send = send;
    return new Promise((resolve) => {
      this.queue.push({ item, resolve });
      if (this.queue.length >= MAX_BATCH) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), BATCH_WINDOW_MS);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length) {
      const group = this.queue.splice(0, MAX_BATCH);
      const send = this.send!;
      send(group.map((g) => g.item)).then(
        (answers) => group.forEach((g, i) => g.resolve(answers[i])),
        (err: Error) => group.forEach((g) => g.resolve({ kind: 'failed', failure: { class: 'transient', message: `Microsoft Graph $batch: ${err.message}` } })),
      );
    }
  }
}
const MAX_BATCH = 20;
const BATCH_WINDOW_MS = 5;
const batchers = new Map<string, Batcher>();
const batcherFor = (key: string) => {
  let b = batchers.get(key);
  if (!b) batchers.set(key, (b = new Batcher()));
  return b;
};

/** Application tokens (client credentials), cached per connection until shortly before expiry. */
const appTokens = new Map<string, { token: string; until: number }>();

function wallTime(instant: string, tz: string): string {
  return utcToLocal(instant, tz).toPlainDateTime().toString({ smallestUnit: 'second' });
}

/** A Graph dateTimeTimeZone as an instant (with `Prefer: outlook.timezone="UTC"` it is UTC wall time). */
function asInstant(t: unknown): string | undefined {
  const v = t as { dateTime?: unknown; timeZone?: unknown } | undefined;
  if (!v || typeof v.dateTime !== 'string') return undefined;
  const wall = v.dateTime.replace(/Z$/, '').slice(0, 19);
  try {
    return localToUtc(wall, typeof v.timeZone === 'string' && v.timeZone !== 'UTC' ? v.timeZone : 'UTC');
  } catch {
    return undefined;
  }
}

/** A calendarView event (read with `Prefer: outlook.timezone="UTC"`) as a calendar event; undefined without readable times. */
export function calendarEventOf(ev: Record<string, any>): CalendarEvent | undefined {
  // All-day events ignore the UTC preference and keep their own zone (targets.md §2.9, pitfall 5): their date is what counts.
  const at = (t: unknown) => asInstant(t) ?? (ev.isAllDay && typeof (t as { dateTime?: unknown })?.dateTime === 'string' ? `${(t as { dateTime: string }).dateTime.slice(0, 10)}T00:00:00Z` : undefined);
  const start = at(ev.start);
  const end = at(ev.end);
  if (typeof ev.id !== 'string' || !start || !end) return undefined;
  const zone = ev.originalStartTimeZone;
  const attendees = ((ev.attendees ?? []) as { emailAddress?: { address?: unknown } }[]).map((a) => a.emailAddress?.address).filter((a): a is string => typeof a === 'string' && a !== '');
  const updated = typeof ev.lastModifiedDateTime === 'string' && Number.isFinite(Date.parse(ev.lastModifiedDateTime)) ? toUtc(ev.lastModifiedDateTime) : undefined;
  return {
    remoteId: ev.id, start, end, title: typeof ev.subject === 'string' ? ev.subject : '',
    ...(typeof zone === 'string' && isIanaZone(zone) ? { timeZone: zone } : {}),
    ...(typeof ev.bodyPreview === 'string' && ev.bodyPreview ? { description: ev.bodyPreview } : {}),
    status: ev.isCancelled ? 'cancelled' : 'confirmed',
    ...(updated ? { updated } : {}),
    ...(attendees.length ? { attendees } : {}),
    ours: (ev.singleValueExtendedProperties ?? []).some((p: { id: string }) => p.id === PROP_APPOINTMENT),
    allDay: ev.isAllDay === true,
    transparent: ev.showAs === 'free' || ev.showAs === 'workingElsewhere',
  };
}

export function eventBody(e: TargetEvent): Record<string, unknown> {
  return {
    subject: e.title,
    body: { contentType: 'text', content: e.description },
    start: { dateTime: wallTime(e.start, e.timeZone), timeZone: e.timeZone },
    end: { dateTime: wallTime(e.end, e.timeZone), timeZone: e.timeZone },
    location: { displayName: e.location ?? '' },
    showAs: e.status === 'requested' ? 'tentative' : 'busy',
    sensitivity: 'private',
    responseRequested: false,
    allowNewTimeProposals: false,
    attendees: [],
    singleValueExtendedProperties: [
      { id: PROP_APPOINTMENT, value: e.appointmentId },
      { id: PROP_REVISION, value: String(e.revision) },
    ],
  };
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const mode: Mode = ctx.config.mode === 'application' ? 'application' : 'delegated';
  const tenant = (ctx.config.tenant as string | undefined) ?? (mode === 'application' ? undefined : 'common');
  const tokenUrl = (ctx.config.tokenUrl as string | undefined) ?? `https://login.microsoftonline.com/${tenant ?? 'organizations'}/oauth2/v2.0/token`;
  const s = ctx.secrets;
  const session = mode === 'delegated' && s.refreshToken && s.clientId
    ? new OAuthSession({ tokenUrl, clientId: s.clientId, clientSecret: s.clientSecret, refreshToken: s.refreshToken, accessToken: s.accessToken, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined, scope: 'offline_access Calendars.ReadWrite' }, ctx)
    : undefined;

  async function appToken(force: boolean): Promise<string> {
    const key = `${ctx.connectionId}|${s.clientId}`;
    const hit = appTokens.get(key);
    if (!force && hit && hit.until > ctx.now().getTime()) return hit.token;
    if (!s.clientId || !s.clientSecret) throw new AuthFailure({ class: 'auth', message: 'Microsoft Graph: clientId and clientSecret are needed for application permissions' });
    let res: Response;
    try {
      res = await ctx.fetch(tokenUrl, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: s.clientId, client_secret: s.clientSecret, scope: 'https://graph.microsoft.com/.default' }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new AuthFailure({ class: 'transient', message: `token request failed: ${(err as Error).message}` });
    }
    const j = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
    if (!res.ok || !j.access_token) throw new AuthFailure({ class: res.status >= 500 ? 'transient' : 'auth', status: res.status, message: `token request refused: ${j.error ?? `HTTP ${res.status}`}` });
    appTokens.set(key, { token: j.access_token, until: ctx.now().getTime() + (Number(j.expires_in ?? 3600) - 120) * 1000 });
    return j.access_token;
  }

  async function token(rejected?: string): Promise<string | ConnectorFailure> {
    try {
      if (mode === 'application') return await appToken(rejected !== undefined);
      if (!session) return { class: 'auth', message: 'Microsoft Graph is not connected: set clientId and refreshToken (delegated) or mode: application' };
      if (rejected === undefined) return await session.accessToken();
      const cur = await session.accessToken();
      return cur !== rejected ? cur : await session.refresh();
    } catch (err) {
      if (err instanceof AuthFailure) return err.failure;
      return networkFailure(err);
    }
  }

  /**
   * Where a calendar id points: `user` (`/me` or `/users/{mailbox}`, also the per-mailbox gate and batch key)
   * and, for any calendar but the mailbox's default, `coll` (`{user}/calendars/{id}`) through which every
   * event of that calendar is created, read, changed and listed (a shared calendar's events live in another
   * mailbox, so `{user}/events/{id}` would not reach them).
   */
  function where(calendarId: string | undefined): Where | ConnectorFailure {
    if (mode === 'delegated') return calendarId ? { user: '/me', coll: `/me/calendars/${encodeURIComponent(calendarId)}` } : { user: '/me' };
    const named = calendarId ?? (ctx.config.mailbox as string | undefined);
    if (!named) return { class: 'permanent', message: 'Microsoft Graph (application): name the practitioner\'s mailbox as the binding\'s calendar' };
    const slash = named.indexOf('/');
    const user = `/users/${encodeURIComponent(slash < 0 ? named : named.slice(0, slash))}`;
    const cal = slash < 0 ? '' : named.slice(slash + 1);
    return cal ? { user, coll: `${user}/calendars/${encodeURIComponent(cal)}` } : { user };
  }
  /** The collection a calendar's events are listed and addressed in. */
  const eventsOf = (w: Where) => `${w.coll ?? w.user}/events`;

  const PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"';
  const gateKey = (mailbox: string) => `${ctx.connectionId}|${mailbox}`;

  function direct(mailbox: string, r: BatchItem): Promise<JsonAnswer> {
    return gateFor(gateKey(mailbox)).run(() => callJson(ctx, {
      method: r.method, url: `${ctx.baseUrl}/v1.0${r.path}`, body: r.body,
      headers: { prefer: PREFER, ...(r.ifMatch ? { 'if-match': r.ifMatch } : {}) },
    }, token, (tok) => ({ authorization: `Bearer ${tok}` })));
  }

  /** One JSON `$batch` for requests to one mailbox (targets.md §2.7); each answer goes back to its caller. */
  async function sendBatch(mailbox: string, items: BatchItem[]): Promise<JsonAnswer[]> {
    if (items.length === 1) return [await direct(mailbox, items[0])];
    const requests = items.map((r, i) => ({
      id: String(i + 1), method: r.method, url: r.path,
      headers: { Prefer: PREFER, ...(r.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(r.ifMatch ? { 'If-Match': r.ifMatch } : {}) },
      ...(r.body !== undefined ? { body: r.body } : {}),
    }));
    const outer = await gateFor(gateKey(mailbox)).run(() =>
      callJson(ctx, { method: 'POST', url: `${ctx.baseUrl}/v1.0/$batch`, body: { requests } }, token, (tok) => ({ authorization: `Bearer ${tok}` })), requests.length);
    if (outer.kind !== 'ok') return items.map(() => outer);
    const byId = new Map(((outer.json?.responses as { id: string; status: number; headers?: Record<string, string>; body?: Record<string, unknown> }[] | undefined) ?? []).map((r) => [r.id, r]));
    return requests.map((q): JsonAnswer => {
      const r = byId.get(q.id);
      if (!r) return { kind: 'failed', failure: { class: 'transient', message: 'Microsoft Graph $batch: no answer for a request' } };
      if (r.status >= 200 && r.status < 300) return { kind: 'ok', status: r.status, json: r.body };
      const ra = Object.entries(r.headers ?? {}).find(([k]) => k.toLowerCase() === 'retry-after')?.[1];
      return { kind: 'http', status: r.status, json: r.body, retryAfterMs: ra !== undefined && Number.isFinite(Number(ra)) ? Number(ra) * 1000 : undefined };
    });
  }

  function call(mailbox: string, method: string, path: string, body?: unknown, ifMatch?: string): Promise<JsonAnswer> {
    const item: BatchItem = { method, path, body, ifMatch };
    if (ctx.config.batch === false) return direct(mailbox, item);
    return batcherFor(gateKey(mailbox)).submit(item, (items) => sendBatch(mailbox, items));
  }

  function failure(a: Exclude<JsonAnswer, { kind: 'ok' }>, op: string): ConnectorFailure {
    if (a.kind === 'failed') return { ...a.failure, message: `Microsoft Graph ${op}: ${a.failure.message}` };
    const raw = (a.json?.error as { code?: unknown } | undefined)?.code;
    const code = typeof raw === 'string' && /^[A-Za-z_]{1,64}$/.test(raw) ? raw : undefined;
    const message = `Microsoft Graph ${op}: HTTP ${a.status}${code ? ` ${code}` : ''}`;
    if (a.status === 429 || ((a.status === 503 || a.status === 504) && a.retryAfterMs !== undefined)) return { class: 'throttled', status: a.status, retryAfterMs: a.retryAfterMs, message };
    if (a.status >= 500) return { class: 'transient', status: a.status, message };
    if (a.status === 401) return { class: 'auth', status: 401, message };
    if (a.status === 409 || a.status === 412) return { class: 'conflict', status: a.status, message };
    return { class: 'permanent', status: a.status, message };
  }

  const linkOf = (ev: GraphEvent | undefined, calendarId: string | undefined, generation: number): LinkState =>
    ({ remoteId: String(ev?.id), calendarId, etag: ev?.['@odata.etag'], generation });

  async function findOurs(w: Where, appointmentId: string): Promise<GraphEvent | undefined | ConnectorFailure> {
    const filter = `singleValueExtendedProperties/Any(ep: ep/id eq '${PROP_APPOINTMENT}' and ep/value eq '${appointmentId}')`;
    const r = await call(w.user, 'GET', `${eventsOf(w)}?$filter=${encodeURIComponent(filter)}&$select=id,subject`);
    if (r.kind !== 'ok') return failure(r, 'lookup');
    return ((r.json?.value as GraphEvent[] | undefined) ?? [])[0];
  }

  async function create(e: TargetEvent, w: Where, generation: number): Promise<WriteOutcome<LinkState>> {
    const found = await findOurs(w, e.appointmentId);
    if (found && 'class' in found) return fail(found);
    if (found?.id) return update(e, w, { remoteId: found.id, calendarId: e.calendarId, generation });
    const r = await call(w.user, 'POST', w.coll ? `${w.coll}/events` : `${w.user}/calendar/events`, { ...eventBody(e), transactionId: `mrd-${e.appointmentId}-r${generation}` });
    if (r.kind === 'ok') return ok(linkOf(r.json as GraphEvent, e.calendarId, generation));
    return fail(failure(r, 'create'));
  }

  async function update(e: TargetEvent, w: Where, link: LinkState): Promise<WriteOutcome<LinkState>> {
    const path = `${eventsOf(w)}/${encodeURIComponent(link.remoteId)}`;
    let r = await call(w.user, 'PATCH', path, eventBody(e), link.etag);
    // Changed since we wrote it: our appointment wins; write it over the current version.
    if (r.kind === 'http' && (r.status === 412 || r.status === 409)) r = await call(w.user, 'PATCH', path, eventBody(e));
    if (r.kind === 'ok') return ok(linkOf(r.json as GraphEvent, e.calendarId, link.generation));
    if (r.kind === 'http' && r.status === 404) return create(e, w, link.generation + 1);
    return fail(failure(r, 'update'));
  }

  /** The calendars of one user (`/me` or `/users/{mailbox}`), every @odata.nextLink followed. */
  async function calendarsOf(user: string, idOf: (c: GraphCalendar) => string): Promise<WriteOutcome<CalendarInfo[]>> {
    const out: CalendarInfo[] = [];
    let path: string | undefined = `${user}/calendars?$select=id,name,canEdit,isDefaultCalendar,owner&$top=100`;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await call(user, 'GET', path!);
      if (r.kind !== 'ok') return fail(failure(r, `calendars of ${user === '/me' ? 'the signed-in user' : decodeURIComponent(user.slice('/users/'.length))}`));
      for (const c of (r.json?.value as GraphCalendar[] | undefined) ?? []) {
        if (typeof c.id !== 'string') continue;
        const owner = c.owner?.address;
        out.push({
          id: idOf(c), name: c.name || 'Calendar',
          ...(c.isDefaultCalendar ? { primary: true } : {}),
          writable: c.canEdit === true,
          ...(typeof owner === 'string' && owner ? { owner } : {}),
        });
      }
      const next = r.json?.['@odata.nextLink'];
      if (typeof next !== 'string') return ok(out);
      path = next.replace(/^https?:\/\/[^/]+\/v1\.0/, '');
    }
    return fail({ class: 'permanent', message: `Microsoft Graph calendars: more than ${MAX_LIST_PAGES} pages` });
  }

  /**
   * Delegated: the signed-in user's calendars (own and shared with them), ids as `/me/calendars` names them.
   * Application: the calendars of each mailbox in config `mailboxes` (and `mailbox`); the default one's id is
   * the mailbox itself (what bindings already hold), the others `<mailbox>/<calendar id>`. Without any
   * mailbox configured the listing is empty once a token was obtained (the credentials work; there is no
   * tenant-wide user listing without User.Read.All).
   */
  async function calendars(): Promise<WriteOutcome<CalendarInfo[]>> {
    if (mode === 'delegated') return calendarsOf('/me', (c) => c.id!);
    const configured = [...(Array.isArray(ctx.config.mailboxes) ? ctx.config.mailboxes : []), ctx.config.mailbox]
      .filter((m): m is string => typeof m === 'string' && m !== '' && !m.includes('/'));
    const mailboxes = [...new Set(configured)];
    if (!mailboxes.length) {
      const t = await token();
      return typeof t === 'string' ? ok([]) : fail({ ...t, message: `Microsoft Graph calendars: ${t.message}` });
    }
    const out: CalendarInfo[] = [];
    for (const mailbox of mailboxes) {
      const r = await calendarsOf(`/users/${encodeURIComponent(mailbox)}`, (c) => (c.isDefaultCalendar ? mailbox : `${mailbox}/${c.id}`));
      if (!r.ok) return r;
      out.push(...r.value);
    }
    return ok(out);
  }

  /** calendarView (occurrences expanded) over the window, every @odata.nextLink followed: a listing cut short is a failure. */
  async function events(window: ListWindow, calendarId: string | undefined): Promise<WriteOutcome<CalendarEvent[]>> {
    const w = where(calendarId);
    if ('class' in w) return fail(w);
    const out: CalendarEvent[] = [];
    const q = new URLSearchParams({
      startDateTime: window.from.toISOString(), endDateTime: window.to.toISOString(),
      $select: 'subject,bodyPreview,start,end,showAs,isCancelled,isAllDay,lastModifiedDateTime,attendees,originalStartTimeZone',
      $expand: `singleValueExtendedProperties($filter=id eq '${PROP_APPOINTMENT}')`, $top: '500',
    });
    let path: string | undefined = `${w.coll ?? w.user}/calendarView?${q}`;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await call(w.user, 'GET', path!);
      if (r.kind !== 'ok') return fail(failure(r, 'calendarView'));
      for (const ev of (r.json?.value as Record<string, any>[] | undefined) ?? []) {
        const e = calendarEventOf(ev);
        if (e) out.push(e);
      }
      const next = r.json?.['@odata.nextLink'];
      if (typeof next !== 'string') return ok(out);
      path = next.replace(/^https?:\/\/[^/]+\/v1\.0/, '');
    }
    return fail({ class: 'permanent', message: `Microsoft Graph calendarView: more than ${MAX_LIST_PAGES} pages in the window` });
  }

  return {
    ...watchMethods({ ctx, where, direct, failure }),
    calendars,
    async upsert(e, link) {
      const w = where(e.calendarId);
      if ('class' in w) return fail(w);
      if (link && link.calendarId !== e.calendarId) return create(e, w, link.generation);
      return link ? update(e, w, link) : create(e, w, 0);
    },
    async changes(calendarId, token) {
      // calendarView/delta (targets.md §2.5): the first round pages with nextLink and ends with a
      // deltaLink (our token, the whole URL); later rounds call it. 410 (sync state gone) → start again.
      const w = where(calendarId);
      if ('class' in w) return fail(w);
      const now = ctx.now().getTime();
      const first = `${w.coll ?? w.user}/calendarView/delta?${new URLSearchParams({ startDateTime: new Date(now - 86_400_000).toISOString(), endDateTime: new Date(now + 180 * 86_400_000).toISOString() })}`;
      const relative = (link: string) => link.replace(/^https?:\/\/[^/]+\/v1\.0/, '');
      let full = !token;
      let path: string | undefined = token ? relative(token) : first;
      const changed: string[] = [];
      for (let page = 0; path && page < 500; page++) {
        const r = await call(w.user, 'GET', path);
        if (!full && r.kind === 'http' && r.status === 410) {
          full = true;
          changed.length = 0;
          path = first;
          continue;
        }
        if (r.kind !== 'ok') return fail(failure(r, 'delta'));
        for (const ev of (r.json?.value as { id?: string }[] | undefined) ?? []) if (ev.id) changed.push(ev.id);
        const next = r.json?.['@odata.nextLink'];
        const delta = r.json?.['@odata.deltaLink'];
        if (typeof delta === 'string') return ok({ full, changed, token: delta });
        path = typeof next === 'string' ? relative(next) : undefined;
      }
      return fail({ class: 'transient', message: 'Microsoft Graph delta: no deltaLink' });
    },
    async busy(window, calendarId) {
      const r = await events(window, calendarId);
      if (!r.ok) return r;
      return ok(r.value.filter((e) => e.status !== 'cancelled' && !e.transparent && !e.ours).map((e): BusyInterval => ({ start: e.start, end: e.end })));
    },
    events,
    async inspect(e, link) {
      const w = where(link.calendarId);
      if ('class' in w) return fail(w);
      const r = await call(w.user, 'GET', `${eventsOf(w)}/${encodeURIComponent(link.remoteId)}?$select=subject,start,end`);
      if (r.kind === 'http' && r.status === 404) return ok({ state: 'missing' });
      if (r.kind !== 'ok') return fail(failure(r, 'read'));
      const j = r.json as { subject?: string; start?: unknown; end?: unknown };
      return ok(driftOf(e, { start: asInstant(j.start), end: asInstant(j.end), title: j.subject }));
    },
    async removeUnrecorded(appointmentId, calendarId) {
      // Ids are the server's, but our extended property finds the event the lost answer would have named.
      const w = where(calendarId);
      if ('class' in w) return fail(w);
      const found = await findOurs(w, appointmentId);
      if (found && 'class' in found) return fail(found);
      if (!found?.id) return ok(false);
      const r = await call(w.user, 'DELETE', `${eventsOf(w)}/${encodeURIComponent(found.id)}`);
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(true);
      return fail(failure(r, 'delete'));
    },
    async remove(link) {
      const w = where(link.calendarId);
      if ('class' in w) return fail(w);
      const r = await call(w.user, 'DELETE', `${eventsOf(w)}/${encodeURIComponent(link.remoteId)}`);
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(undefined);
      return fail(failure(r, 'delete'));
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'calendar',
    displayName: 'Microsoft 365 / Outlook.com (Graph)',
    oauth: graphOAuth,
    defaultBaseUrl: 'https://graph.microsoft.com',
    refreshTokenIdleDays: 90,
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'clientId', label: 'Application (client) id', secret: true, required: true },
      { key: 'clientSecret', label: 'Client secret', secret: true, required: false, help: 'Required for application permissions (Office 365 tenant-wide).' },
      { key: 'refreshToken', label: 'Refresh token (delegated: Outlook.com or one Microsoft 365 user)', secret: true, required: false },
      { key: 'accessToken', label: 'Access token (refreshed automatically)', secret: true, required: false },
    ],
    authSets: [['clientId', 'refreshToken'], ['clientId', 'clientSecret']],
    configFields: [
      { key: 'mode', label: 'Permissions', type: 'select', default: 'delegated', options: [{ value: 'delegated', label: 'One user\'s calendars (delegated)' }, { value: 'application', label: 'Every mailbox of the tenant (application)' }] },
      { key: 'tenant', label: 'Tenant', type: 'text', placeholder: 'contoso.onmicrosoft.com', help: 'Application permissions: the Microsoft 365 tenant (domain or id).' },
      { key: 'mailboxes', label: 'Mailboxes', type: 'list', placeholder: 'ada@clinic.example, ben@clinic.example', help: 'Application permissions: the practitioners\' mailboxes whose calendars are offered.' },
      { key: 'mailbox', label: 'Default mailbox', type: 'text', help: 'Application permissions: used when a practitioner\'s calendar names no mailbox.' },
      TWO_WAY, BUSY_TIMES,
    ],
    fidelity:
      'Events in Outlook.com or Microsoft 365 calendars. Delegated mode writes one user\'s calendar; application mode '
      + '(config.mode: application, a tenant admin\'s consent) writes every practitioner\'s mailbox, named by the binding. '
      + 'Retry-safe creates (lookup by our extended property + transactionId); nobody is invited or e-mailed.',
    capabilities: { push: true, readChanges: true, freeBusy: true, deterministicIds: true },
  },
  client: createClient,
  push: graphPush,
};
