// A fake Google Calendar v3 (events) and OAuth token endpoint for tests and the benchmark.
// Every request is checked against Google's discovery document (test/fixtures/specs/google-calendar-v3):
// method + path must be a documented events method, query parameters must be documented for it (with
// enum values respected), and bodies must validate against the Event schema made strict (unknown
// fields refused) plus the method's required properties. A request that fails is answered 400 and
// recorded in `violations`, which tests assert is empty.
//
// API:
//   const g = await startFakeGoogle({ clientId?, clientSecret?, refreshToken? });
//   g.url            base URL to configure (the connector appends /calendar/v3)
//   g.tokenUrl       OAuth token endpoint (grant_type=refresh_token)
//   g.credentials    { clientId, clientSecret, refreshToken } it accepts
//   g.events(cal)    events of a calendar (including deleted ones, status 'cancelled')
//   g.live(cal)      events that are not deleted
//   g.requests       every request: { method, path, query, at }
//   g.tokenRequests  number of token grants issued
//   g.violations     spec violations seen
//   g.fail(n, status, headers?)   answer the next n API requests with this status (429, 500, 401, …)
//   g.expireTokens() invalidate every access token issued so far (next call gets 401)
//   g.deleteBehindOurBack(cal, id) delete an event as a user would in Google's UI
//   g.editBehindOurBack(cal, id, patch) edit an event as a user would (new etag)
//   g.addTheirs(cal, event)       an event the practitioner made themselves (not ours)
//   g.expireSyncTokens()          every sync token issued so far answers 410 fullSyncRequired
//   g.refuseRestore(cal, id)       make PATCH on that deleted id answer 403 (Google refusing to undelete)
//   g.pageSize(n)                 window listings (and calendarList pages) hold at most n items a page
//   g.calendarList               the account's calendar list (calendarList.list answers it, checked against
//                                the CalendarList schema); seeded with SEED_CALENDARS: the primary calendar,
//                                a secondary one, a colleague's shared calendar (writer), a read-only holiday
//                                calendar (reader) and a free/busy-only one. Writes into a calendar of the list
//                                without writer access answer 403 requiredAccessLevel.
//   Push (events.watch / channels.stop, connect.md §3.1 and §4 "Google watch"), checked against the discovery
//   document (method, path, the Channel schema made strict):
//   startFakeGoogle({ allowHttpPush: true })  accept http:// notification addresses (tests run plain http);
//                                without it a non-https address answers 400 push.webhookUrlNotHttps, as Google does
//   startFakeGoogle({ maxChannelTtlMs, now })  cap on a channel's life (default 7 days) and the clock channels use
//   g.channels()                 live channels (not stopped, not expired): id, address, token, expiration (ms), …
//   g.notifications              every notification sent: channel, state, message number, headers, and the
//                                receiver's answer status (0 with `error` when it could not be reached)
//   g.pushNow(cal)               an `exists` notification on every live channel of the calendar, now
//   g.expireChannel(id)          the channel's expiration passes: it sends nothing more, and stop answers 404
//   g.pushesSettled()            resolves once every notification under way has been answered
//   A channel sends `sync` (message 1) when made, then `exists` (`not_exists` for a deleted event) on every
//   change to its calendar: writes through the API and the *BehindOurBack / addTheirs helpers alike. Sending
//   is asynchronous (after the answer to the request that caused it), one message at a time per channel, no retries.
//   Channel ids are unique for the fake's whole life (a stopped one's id answers 400 channelIdNotUnique); an
//   expiration in the past answers 400; stop on an unknown, stopped or expired channel answers 404.
//   g.close()
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { calendar_v3 } from '@googleapis/calendar';
import { httpDone, type Gate } from './gate.ts';

type GEvent = calendar_v3.Schema$Event;
type GCalendar = calendar_v3.Schema$CalendarListEntry;
type GChannel = calendar_v3.Schema$Channel;

/** The account's calendar list: okafor@clinic.example's own calendars and what was shared with her. */
export const SEED_CALENDARS: GCalendar[] = [
  { id: 'okafor@clinic.example', summary: 'okafor@clinic.example', primary: true, accessRole: 'owner', timeZone: 'America/Chicago' },
  { id: 'c_4f1e0lakeview@group.calendar.google.com', summary: 'Lakeview treatment room', accessRole: 'owner', timeZone: 'America/Chicago', dataOwner: 'okafor@clinic.example' },
  { id: 'nakamura@clinic.example', summary: 'nakamura@clinic.example', summaryOverride: 'Dr. Nakamura', accessRole: 'writer', timeZone: 'America/Denver' },
  { id: 'en.usa#holiday@group.v.calendar.google.com', summary: 'Holidays in United States', accessRole: 'reader', timeZone: 'America/Chicago' },
  { id: 'frontdesk@clinic.example', summary: 'Front desk', accessRole: 'freeBusyReader', timeZone: 'America/Chicago' },
];

const SPEC_DIR = new URL('../fixtures/specs/google-calendar-v3/', import.meta.url);
const discovery = JSON.parse(readFileSync(new URL('calendar-v3.json', SPEC_DIR), 'utf8'));
const schemaDoc = JSON.parse(readFileSync(new URL('calendar-v3.schema.json', SPEC_DIR), 'utf8'));

/** Objects with declared properties refuse unknown ones (Discovery leaves them open). */
function strict(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strict);
  if (!s || typeof s !== 'object') return s;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) o[k] = strict(v);
  if (o.type === 'object' && o.properties && o.additionalProperties === undefined) o.additionalProperties = false;
  return o;
}

// CommonJS packages: their default export sits one level down under NodeNext.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ ...(strict(schemaDoc) as object), $id: 'calendar-v3.schema.json' });
const validateEvent = ajv.getSchema('calendar-v3.schema.json#/$defs/Event')!;
const validateCalendarList = ajv.getSchema('calendar-v3.schema.json#/$defs/CalendarList')!;
const validateChannel = ajv.getSchema('calendar-v3.schema.json#/$defs/Channel')!;
/** channels.stop as the discovery document describes it (POST channels/stop, request Channel). */
const CHANNELS_STOP = discovery.resources.channels.methods.stop as { httpMethod: string; path: string; request: { $ref: string } };
if (discovery.resources.events.methods.watch.request.$ref !== 'Channel' || CHANNELS_STOP.request.$ref !== 'Channel') throw new Error('discovery: watch/stop no longer take a Channel');
/** Google's limit on a channel id (connect.md §3.1). */
const CHANNEL_ID_MAX = 64;
/** Google documents no maximum lifetime for a Calendar channel (connect.md gaps): the fake caps at a week. */
const DEFAULT_CHANNEL_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** calendarList.list as the discovery document describes it (path, parameters, response schema). */
const CALENDAR_LIST = discovery.resources.calendarList.methods.list as { httpMethod: string; path: string; parameters: Record<string, { type: string; enum?: string[]; minimum?: string }>; response: { $ref: string } };
const requiredFor = (method: string): string[] => schemaDoc.$defs.Event['x-required-properties-for']?.[`calendar.events.${method}`] ?? [];

interface MethodSpec { name: string; httpMethod: string; re: RegExp; params: Record<string, { location: string; enum?: string[]; type: string }> }
const METHODS: MethodSpec[] = Object.entries(discovery.resources.events.methods as Record<string, { httpMethod: string; path: string; parameters: MethodSpec['params'] }>).map(([name, m]) => ({
  name, httpMethod: m.httpMethod, params: m.parameters ?? {},
  re: new RegExp(`^/calendar/v3/${m.path.replace(/\{calendarId\}/, '(?<calendarId>[^/]+)').replace(/\{eventId\}/, '(?<eventId>[^/]+)')}$`),
}));
const GLOBAL_PARAMS = new Set(Object.keys(discovery.parameters ?? {}));

export interface FakeChannel {
  id: string;
  /** Stable per watched calendar (Google's opaque resource id). */
  resourceId: string;
  resourceUri: string;
  calendarId: string;
  type: string;
  address: string;
  token?: string;
  /** Unix milliseconds. */
  expiration: number;
  createdAt: number;
  stopped: boolean;
  /** Messages numbered so far (the sync message is 1). */
  messages: number;
}

export interface PushDelivery {
  channelId: string;
  calendarId: string;
  state: 'sync' | 'exists' | 'not_exists';
  messageNumber: number;
  address: string;
  headers: Record<string, string>;
  /** The receiver's answer; 0 when it could not be reached (`error` says why); undefined while under way. */
  status?: number;
  error?: string;
}

export interface FakeGoogleOptions extends Partial<FakeGoogle['credentials']> {
  /** Accept http:// notification addresses (Google refuses anything but https). */
  allowHttpPush?: boolean;
  /** The longest life a channel gets (a later requested expiration is cut to it). Default 7 days. */
  maxChannelTtlMs?: number;
  /** The clock channels are judged by (Unix ms). Default Date.now. */
  now?: () => number;
}

export interface FakeGoogle {
  url: string;
  tokenUrl: string;
  credentials: { clientId: string; clientSecret: string; refreshToken: string };
  events(calendarId: string): GEvent[];
  live(calendarId: string): GEvent[];
  requests: { method: string; path: string; query: Record<string, string>; at: number; body?: GEvent }[];
  /** Called with every events write (POST, PUT, PATCH, DELETE) before it is acted on; may hold it (fault tests). */
  gate?: Gate;
  tokenRequests: number;
  violations: string[];
  fail(n: number, status: number, headers?: Record<string, string>): void;
  expireTokens(): void;
  deleteBehindOurBack(calendarId: string, eventId: string): void;
  editBehindOurBack(calendarId: string, eventId: string, patch: GEvent): void;
  addTheirs(calendarId: string, event: GEvent): string;
  expireSyncTokens(): void;
  /** The user revoked (true) or granted again (false) Meridian's access: refreshes answer invalid_grant. */
  revokeGrant(revoked: boolean): void;
  refuseRestore(calendarId: string, eventId: string): void;
  pageSize(n: number): void;
  calendarList: GCalendar[];
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  /** Live push channels (neither stopped nor expired). */
  channels(): FakeChannel[];
  notifications: PushDelivery[];
  pushNow(calendarId: string): void;
  expireChannel(id: string): void;
  pushesSettled(): Promise<void>;
  close(): Promise<void>;
}

const ID_RE = /^[a-v0-9]{5,1024}$/;

function googleError(code: number, reason: string, message: string) {
  return { error: { errors: [{ domain: /RateLimit|quota/i.test(reason) ? 'usageLimits' : 'global', reason, message }], code, message } };
}

export async function startFakeGoogle(o: FakeGoogleOptions = {}): Promise<FakeGoogle> {
  const credentials = { clientId: o.clientId ?? 'fake-client', clientSecret: o.clientSecret ?? 'fake-secret', refreshToken: o.refreshToken ?? `rt-${randomBytes(6).toString('hex')}` };
  const calendars = new Map<string, Map<string, GEvent>>();
  const tokens = new Set<string>();
  const refused = new Set<string>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  let etagN = 0;
  let revoked = false;
  let pageLimit = Infinity;
  /** Sync tokens older than this answer 410 (expireSyncTokens). */
  let validFrom = 0;
  const cal = (id: string) => {
    let c = calendars.get(id);
    if (!c) calendars.set(id, (c = new Map()));
    return c;
  };

  // ---------------------------------------------------------------- push channels
  const clock = o.now ?? Date.now;
  const maxTtl = o.maxChannelTtlMs ?? DEFAULT_CHANNEL_TTL_MS;
  const channelsById = new Map<string, FakeChannel>();
  /** One message at a time per channel, in message-number order. */
  const chains = new Map<string, Promise<void>>();
  const pending = new Set<Promise<void>>();
  /** 'primary' is the account's primary calendar: a channel on either name hears changes made through either. */
  const canonical = (c: string) => (c === 'primary' ? state.calendarList.find((x) => x.primary)?.id ?? c : c);
  const alive = (ch: FakeChannel) => !ch.stopped && ch.expiration > clock();
  const resourceIdOf = (c: string) => createHash('sha256').update(`events:${canonical(c)}`).digest('base64url').slice(0, 27);

  function notify(ch: FakeChannel, st: PushDelivery['state']): void {
    if (!alive(ch)) return;
    const messageNumber = ++ch.messages;
    const run = async () => {
      // Stopped or expired while waiting its turn: Google sends nothing more on it.
      if (!alive(ch)) return;
      const headers: Record<string, string> = {
        'X-Goog-Channel-ID': ch.id,
        ...(ch.token !== undefined ? { 'X-Goog-Channel-Token': ch.token } : {}),
        'X-Goog-Channel-Expiration': new Date(ch.expiration).toUTCString(),
        'X-Goog-Resource-ID': ch.resourceId,
        'X-Goog-Resource-URI': ch.resourceUri,
        'X-Goog-Resource-State': st,
        'X-Goog-Message-Number': String(messageNumber),
        'User-Agent': 'APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)',
      };
      const d: PushDelivery = { channelId: ch.id, calendarId: ch.calendarId, state: st, messageNumber, address: ch.address, headers };
      state.notifications.push(d);
      try {
        const res = await fetch(ch.address, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer().catch(() => undefined);
        d.status = res.status;
      } catch (err) {
        d.status = 0;
        d.error = String((err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.message ?? err);
      }
    };
    // Never inside the request that caused it: the next turn of the event loop at the earliest.
    const prev = chains.get(ch.id) ?? Promise.resolve();
    const p = prev.then(() => new Promise<void>((r) => setImmediate(r))).then(run);
    chains.set(ch.id, p);
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  /** Something in calendar `c` changed: every live channel on it is told. */
  function changed(c: string, st: 'exists' | 'not_exists'): void {
    const key = canonical(c);
    for (const ch of channelsById.values()) if (canonical(ch.calendarId) === key) notify(ch, st);
  }

  const state: FakeGoogle = {
    url: '', tokenUrl: '', credentials, requests: [], tokenRequests: 0, violations: [],
    calendarList: SEED_CALENDARS.map((c, i) => ({ kind: 'calendar#calendarListEntry', etag: `"cl${i}"`, ...c })),
    events: (c) => [...cal(c).values()],
    live: (c) => [...cal(c).values()].filter((e) => e.status !== 'cancelled'),
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    expireTokens: () => tokens.clear(),
    deleteBehindOurBack: (c, id) => { const e = cal(c).get(id); if (e) { cal(c).set(id, { ...e, status: 'cancelled', etag: `"${++etagN}"` }); changed(c, 'not_exists'); } },
    expireSyncTokens: () => { validFrom = etagN + 1; },
    revokeGrant: (r) => { revoked = r; if (r) tokens.clear(); },
    editBehindOurBack: (c, id, patch) => { const e = cal(c).get(id); if (e) { cal(c).set(id, { ...e, ...patch, etag: `"${++etagN}"` }); changed(c, 'exists'); } },
    refuseRestore: (c, id) => refused.add(`${c}/${id}`),
    pageSize: (n) => { pageLimit = n; },
    addTheirs: (c, ev) => {
      const id = `own${randomBytes(8).toString('hex').replace(/[^a-v0-9]/g, 'a')}`;
      cal(c).set(id, { status: 'confirmed', ...ev, id, etag: `"${++etagN}"` });
      changed(c, 'exists');
      return id;
    },
    acceptToken: (t) => { tokens.add(t); },
    channels: () => [...channelsById.values()].filter(alive).map((ch) => ({ ...ch })),
    notifications: [],
    pushNow: (c) => changed(c, 'exists'),
    expireChannel: (id) => { const ch = channelsById.get(id); if (ch) ch.expiration = Math.min(ch.expiration, clock()); },
    pushesSettled: async () => { while (pending.size) await Promise.allSettled([...pending]); },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const gate = state.gate;
      const write = req.method !== 'GET' && (req.url ?? '').includes('/events');
      if (!gate || !write) return handle();
      const done = httpDone(res);
      Promise.resolve(gate({ fake: 'google', what: `${req.method} ${(req.url ?? '').split('?')[0]}`, at: Date.now(), clientPort: req.socket.remotePort ?? 0, serverPort: req.socket.localPort ?? 0, done }))
        .then(handle, handle);
    });
    const handle = () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json; charset=UTF-8' }), ...headers });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const raw = Buffer.concat(chunks).toString('utf8');

      /** calendarList.list: documented parameters only, pages of maxResults (≤ 250), the answer checked against CalendarList. */
      const calendarList = (query: Record<string, string>) => {
        state.requests.push({ method: req.method ?? '', path: url.pathname, query, at: Date.now() });
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
          return send(401, googleError(401, 'authError', 'Invalid Credentials'), { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
        }
        const fault = injected.shift();
        if (fault) return send(fault.status, googleError(fault.status, fault.status === 429 ? 'rateLimitExceeded' : fault.status >= 500 ? 'backendError' : 'insufficientPermissions', 'Injected failure'), fault.headers);
        for (const [k, v] of Object.entries(query)) {
          const p = CALENDAR_LIST.parameters[k];
          if (!p && !GLOBAL_PARAMS.has(k)) {
            state.violations.push(`calendarList.list: undocumented query parameter ${k}`);
            return send(400, googleError(400, 'invalidParameter', `Invalid parameter ${k}`));
          }
          if (p?.enum && !p.enum.includes(v)) {
            state.violations.push(`calendarList.list: ${k}=${v} is not one of ${p.enum.join(', ')}`);
            return send(400, googleError(400, 'invalidParameter', `Invalid value for ${k}`));
          }
          if (p?.type === 'boolean' && v !== 'true' && v !== 'false') {
            state.violations.push(`calendarList.list: ${k}=${v} is not a boolean`);
            return send(400, googleError(400, 'invalidParameter', `Invalid value for ${k}`));
          }
        }
        // "The page size can never be larger than 250 entries" (maxResults); default 100.
        const max = Number(query.maxResults ?? 100);
        if (!Number.isInteger(max) || max < 1 || max > 250) {
          state.violations.push(`calendarList.list: maxResults=${query.maxResults} is not 1–250`);
          return send(400, googleError(400, 'invalid', 'Invalid maxResults'));
        }
        if (query.syncToken && query.minAccessRole) {
          state.violations.push('calendarList.list: minAccessRole cannot be combined with syncToken');
          return send(400, googleError(400, 'invalid', 'minAccessRole cannot be combined with syncToken'));
        }
        const rank = ['freeBusyReader', 'reader', 'writer', 'owner'];
        const items = state.calendarList
          .filter((c) => query.showDeleted === 'true' || !c.deleted)
          .filter((c) => query.showHidden === 'true' || !c.hidden)
          .filter((c) => !query.minAccessRole || rank.indexOf(c.accessRole ?? '') >= rank.indexOf(query.minAccessRole));
        const from = query.pageToken ? Number(/^cl-(\d+)$/.exec(query.pageToken)?.[1] ?? NaN) : 0;
        if (!Number.isFinite(from)) return send(400, googleError(400, 'invalid', 'Invalid page token'));
        const size = Math.min(max, pageLimit);
        const more = from + size < items.length;
        const answer = { kind: 'calendar#calendarList', etag: '"cl"', items: items.slice(from, from + size), ...(more ? { nextPageToken: `cl-${from + size}` } : { nextSyncToken: `cls-${etagN}` }) };
        if (!validateCalendarList(answer)) {
          state.violations.push(`calendarList.list answer: ${ajv.errorsText(validateCalendarList.errors)}`);
          return send(500, googleError(500, 'backendError', 'fake answer does not match CalendarList'));
        }
        return send(200, answer);
      };

      /** channels.stop: both `id` and `resourceId` of a live channel (connect.md §4); 204, or 404 when there is none. */
      const channelsStop = (ch: GChannel | undefined, query: Record<string, string>) => {
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
          return send(401, googleError(401, 'authError', 'Invalid Credentials'), { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
        }
        const fault = injected.shift();
        if (fault) return send(fault.status, googleError(fault.status, fault.status === 429 ? 'rateLimitExceeded' : fault.status >= 500 ? 'backendError' : 'invalid', 'Injected failure'), fault.headers);
        const odd = Object.keys(query).filter((k) => !GLOBAL_PARAMS.has(k));
        if (odd.length) {
          state.violations.push(`channels.stop: undocumented query parameter ${odd.join(', ')}`);
          return send(400, googleError(400, 'invalidParameter', `Invalid parameter ${odd[0]}`));
        }
        if (ch === undefined || !validateChannel(ch)) {
          state.violations.push(`channels.stop: ${ch === undefined ? 'no body' : ajv.errorsText(validateChannel.errors)}`);
          return send(400, googleError(400, 'invalid', 'Invalid channel'));
        }
        if (!ch.id || !ch.resourceId) {
          state.violations.push('channels.stop: needs both id and resourceId');
          return send(400, googleError(400, 'required', `Required: ${!ch.id ? 'id' : 'resourceId'}`));
        }
        const live = channelsById.get(ch.id);
        if (!live || !alive(live) || live.resourceId !== ch.resourceId) {
          return send(404, googleError(404, 'notFound', 'Channel not found for project'));
        }
        live.stopped = true;
        return send(204);
      };

      if (url.pathname === '/token' && req.method === 'POST') {
        state.tokenRequests++;
        const f = new URLSearchParams(raw);
        if (f.get('grant_type') !== 'refresh_token') return send(400, { error: 'unsupported_grant_type' });
        if (f.get('client_id') !== credentials.clientId || f.get('client_secret') !== credentials.clientSecret) return send(401, { error: 'invalid_client' });
        if (f.get('refresh_token') !== credentials.refreshToken || revoked) return send(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
        const t = `at-${randomBytes(12).toString('hex')}`;
        tokens.add(t);
        return send(200, { access_token: t, expires_in: 3599, token_type: 'Bearer', scope: 'https://www.googleapis.com/auth/calendar.events.owned' });
      }

      const query = Object.fromEntries(url.searchParams);
      if (url.pathname === `/calendar/v3/${CALENDAR_LIST.path}` && req.method === CALENDAR_LIST.httpMethod) return calendarList(query);
      const m = METHODS.map((x) => ({ x, match: x.httpMethod === req.method ? x.re.exec(url.pathname) : null })).find((y) => y.match);
      let body: GEvent | undefined;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          state.violations.push(`${req.method} ${url.pathname}: body is not JSON`);
          return send(400, googleError(400, 'parseError', 'Parse Error'));
        }
      }
      state.requests.push({ method: req.method ?? '', path: url.pathname, query, at: Date.now(), body });
      if (url.pathname === `/calendar/v3/${CHANNELS_STOP.path}` && req.method === CHANNELS_STOP.httpMethod) return channelsStop(body as GChannel | undefined, query);
      if (!m) {
        state.violations.push(`${req.method} ${url.pathname}: not a documented events method`);
        return send(404, googleError(404, 'notFound', 'Not Found'));
      }
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
        return send(401, googleError(401, 'authError', 'Invalid Credentials'), { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
      }
      const fault = injected.shift();
      if (fault) {
        const reason = fault.status === 429 ? 'rateLimitExceeded' : fault.status === 403 ? 'rateLimitExceeded' : fault.status >= 500 ? 'backendError' : 'invalid';
        return send(fault.status, googleError(fault.status, reason, 'Injected failure'), fault.headers);
      }
      const { name, params } = m.x;
      for (const [k, v] of Object.entries(query)) {
        const p = params[k];
        if (!p && !GLOBAL_PARAMS.has(k)) {
          state.violations.push(`${name}: undocumented query parameter ${k}`);
          return send(400, googleError(400, 'invalidParameter', `Invalid parameter ${k}`));
        }
        if (p?.enum && !p.enum.includes(v)) {
          state.violations.push(`${name}: ${k}=${v} is not one of ${p.enum.join(', ')}`);
          return send(400, googleError(400, 'invalidParameter', `Invalid value for ${k}`));
        }
      }
      if (body !== undefined && (name === 'insert' || name === 'patch' || name === 'update')) {
        if (!validateEvent(body)) {
          state.violations.push(`${name}: ${ajv.errorsText(validateEvent.errors)}`);
          return send(400, googleError(400, 'invalid', 'Invalid event'));
        }
        const missing = requiredFor(name).filter((k) => (body as Record<string, unknown>)[k] === undefined);
        if (missing.length) {
          state.violations.push(`${name}: missing required ${missing.join(', ')}`);
          return send(400, googleError(400, 'required', `Missing ${missing.join(', ')}`));
        }
        for (const k of ['start', 'end'] as const) {
          const dt = body[k]?.dateTime;
          if (dt && !/(Z|[+-]\d\d:\d\d)$/.test(dt) && !body[k]?.timeZone) {
            state.violations.push(`${name}: ${k}.dateTime without offset needs timeZone`);
            return send(400, googleError(400, 'invalid', 'Missing time zone definition for start time.'));
          }
        }
      }
      if (name === 'watch' && (body === undefined || !validateChannel(body))) {
        state.violations.push(`watch: ${body === undefined ? 'no body' : ajv.errorsText(validateChannel.errors)}`);
        return send(400, googleError(400, 'invalid', 'Invalid channel'));
      }
      const calendarId = decodeURIComponent(m.match!.groups!.calendarId);
      const eventId = m.match!.groups!.eventId ? decodeURIComponent(m.match!.groups!.eventId) : undefined;
      const listed = state.calendarList.find((c) => c.id === calendarId);
      if (listed && name !== 'get' && name !== 'list' && name !== 'watch' && listed.accessRole !== 'owner' && listed.accessRole !== 'writer') {
        return send(403, googleError(403, 'requiredAccessLevel', 'You need to have writer access to this calendar.'));
      }
      const events = cal(calendarId);
      const stamp = (e: GEvent): GEvent => ({ ...e, etag: `"${++etagN}"`, updated: new Date().toISOString(), kind: 'calendar#event' });

      switch (name) {
        case 'insert': {
          const id = body!.id ?? randomBytes(13).toString('hex').replace(/[^a-v0-9]/g, 'a');
          if (!ID_RE.test(id)) {
            state.violations.push(`insert: id ${id} is not base32hex 5–1024`);
            return send(400, googleError(400, 'invalid', 'Invalid resource id value.'));
          }
          if (events.has(id)) return send(409, googleError(409, 'duplicate', 'The requested identifier already exists.'));
          const ev = stamp({ status: 'confirmed', ...body, id, created: new Date().toISOString() });
          events.set(id, ev);
          send(200, ev);
          return changed(calendarId, 'exists');
        }
        case 'get': {
          const ev = events.get(eventId!);
          return ev ? send(200, ev) : send(404, googleError(404, 'notFound', 'Not Found'));
        }
        case 'patch':
        case 'update': {
          const ev = events.get(eventId!);
          if (!ev) return send(404, googleError(404, 'notFound', 'Not Found'));
          if (ev.status === 'cancelled' && refused.has(`${calendarId}/${eventId}`)) return send(403, googleError(403, 'forbidden', 'Forbidden'));
          const ifMatch = req.headers['if-match'];
          if (ifMatch && ifMatch !== ev.etag) return send(412, googleError(412, 'conditionNotMet', 'Precondition Failed'));
          const next = stamp(name === 'patch' ? { ...ev, ...body, id: ev.id } : { ...body, id: ev.id, created: ev.created });
          events.set(eventId!, next);
          send(200, next);
          return changed(calendarId, next.status === 'cancelled' ? 'not_exists' : 'exists');
        }
        case 'delete': {
          const ev = events.get(eventId!);
          if (!ev) return send(404, googleError(404, 'notFound', 'Not Found'));
          if (ev.status === 'cancelled') return send(410, googleError(410, 'deleted', 'Resource has been deleted'));
          events.set(eventId!, stamp({ ...ev, status: 'cancelled' }));
          send(204);
          return changed(calendarId, 'not_exists');
        }
        case 'list': {
          if (query.syncToken) {
            // Google refuses these with a sync token (targets.md §1.5).
            const refused = ['timeMin', 'timeMax', 'orderBy', 'privateExtendedProperty', 'q', 'updatedMin', 'iCalUID', 'sharedExtendedProperty'].filter((k) => k in query);
            if (refused.length) {
              state.violations.push(`list: ${refused.join(', ')} cannot be combined with syncToken`);
              return send(400, googleError(400, 'invalid', 'Sync token cannot be combined with these parameters'));
            }
            const since = Number(/^st-(\d+)$/.exec(query.syncToken)?.[1] ?? NaN);
            if (!Number.isFinite(since) || since < validFrom) return send(410, googleError(410, 'fullSyncRequired', 'Sync token is no longer valid, a full sync is required.'));
            const items = [...events.values()].filter((e) => Number(String(e.etag).replace(/"/g, '')) > since);
            return send(200, { kind: 'calendar#events', items, nextSyncToken: `st-${etagN}` });
          }
          // All-day events ({date}) are placed in UTC here; Google uses the calendar's zone.
          const t = (e: GEvent, k: 'start' | 'end') => Date.parse(e[k]?.dateTime ?? (e[k]?.date ? `${e[k]!.date}T00:00:00Z` : ''));
          const items = [...events.values()]
            .filter((e) => query.showDeleted === 'true' || e.status !== 'cancelled')
            .filter((e) => !query.timeMin || t(e, 'end') > Date.parse(query.timeMin))
            .filter((e) => !query.timeMax || t(e, 'start') < Date.parse(query.timeMax));
          // maxResults: default 250, at most 2500 (targets.md §1.5); pages follow with pageToken.
          const max = Number(query.maxResults ?? 250);
          if (!Number.isInteger(max) || max < 1 || max > 2500) {
            state.violations.push(`list: maxResults=${query.maxResults} is not 1–2500`);
            return send(400, googleError(400, 'invalid', 'Invalid maxResults'));
          }
          const from = query.pageToken ? Number(/^pt-(\d+)$/.exec(query.pageToken)?.[1] ?? NaN) : 0;
          if (!Number.isFinite(from)) return send(400, googleError(400, 'invalid', 'Invalid page token'));
          const size = Math.min(max, pageLimit);
          const page = items.slice(from, from + size);
          const more = from + size < items.length;
          return send(200, { kind: 'calendar#events', items: page, ...(more ? { nextPageToken: `pt-${from + size}` } : { nextSyncToken: `st-${etagN}` }) });
        }
        case 'watch': {
          // events.watch (connect.md §3.1, §4): id ≤ 64 and unique, type web_hook, https address, expiration capped.
          const ch = body as GChannel;
          if (!ch.id || ch.id.length > CHANNEL_ID_MAX || /[\s]/.test(ch.id)) {
            state.violations.push(`watch: channel id must be 1–${CHANNEL_ID_MAX} characters without spaces`);
            return send(400, googleError(400, 'invalid', 'Invalid channel id'));
          }
          // The Channel schema: "web_hook" (or "webhook").
          if (ch.type !== 'web_hook' && ch.type !== 'webhook') {
            state.violations.push(`watch: type ${ch.type} is not web_hook`);
            return send(400, googleError(400, 'invalid', `Unknown channel type: ${ch.type ?? ''}`));
          }
          let address: URL;
          try {
            address = new URL(ch.address ?? '');
          } catch {
            state.violations.push('watch: address is not a URL');
            return send(400, googleError(400, 'invalid', 'Invalid channel address'));
          }
          if (address.protocol !== 'https:' && !(o.allowHttpPush && address.protocol === 'http:')) {
            return send(400, googleError(400, 'push.webhookUrlNotHttps', `WebHook callback must be HTTPS: ${ch.address}`));
          }
          if (ch.expiration !== undefined && ch.expiration !== null && !/^\d{1,16}$/.test(ch.expiration)) {
            state.violations.push(`watch: expiration ${ch.expiration} is not Unix milliseconds (int64 string)`);
            return send(400, googleError(400, 'invalid', 'Invalid expiration'));
          }
          if (channelsById.has(ch.id)) return send(400, googleError(400, 'channelIdNotUnique', 'Channel id not unique'));
          const now = clock();
          const asked = ch.expiration ? Number(ch.expiration) : undefined;
          if (asked !== undefined && asked <= now) return send(400, googleError(400, 'invalid', 'Channel expiration is in the past'));
          const made: FakeChannel = {
            id: ch.id, resourceId: resourceIdOf(calendarId), calendarId, type: ch.type, address: ch.address!,
            resourceUri: `https://www.googleapis.com/calendar/v3/calendars/${encodeURIComponent(calendarId)}/events?alt=json`,
            ...(ch.token != null ? { token: ch.token } : {}),
            expiration: Math.min(asked ?? Infinity, now + maxTtl), createdAt: now, stopped: false, messages: 0,
          };
          const answer: GChannel = {
            kind: 'api#channel', id: made.id, resourceId: made.resourceId, resourceUri: made.resourceUri,
            ...(made.token !== undefined ? { token: made.token } : {}), expiration: String(made.expiration),
          };
          if (!validateChannel(answer)) {
            state.violations.push(`watch answer: ${ajv.errorsText(validateChannel.errors)}`);
            return send(500, googleError(500, 'backendError', 'fake answer does not match Channel'));
          }
          channelsById.set(made.id, made);
          send(200, answer);
          // The first message of every channel: sync, number 1.
          return notify(made, 'sync');
        }
        default:
          return send(501, googleError(501, 'notImplemented', `${name} is not implemented by the fake`));
      }
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  state.url = `http://127.0.0.1:${port}`;
  state.tokenUrl = `http://127.0.0.1:${port}/token`;
  return state;
}
