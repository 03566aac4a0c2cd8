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
//   g.close()
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { calendar_v3 } from '@googleapis/calendar';

type GEvent = calendar_v3.Schema$Event;
type GCalendar = calendar_v3.Schema$CalendarListEntry;

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
/** calendarList.list as the discovery document describes it (path, parameters, response schema). */
const CALENDAR_LIST = discovery.resources.calendarList.methods.list as { httpMethod: string; path: string; parameters: Record<string, { type: string; enum?: string[]; minimum?: string }>; response: { $ref: string } };
const requiredFor = (method: string): string[] => schemaDoc.$defs.Event['x-required-properties-for']?.[`calendar.events.${method}`] ?? [];

interface MethodSpec { name: string; httpMethod: string; re: RegExp; params: Record<string, { location: string; enum?: string[]; type: string }> }
const METHODS: MethodSpec[] = Object.entries(discovery.resources.events.methods as Record<string, { httpMethod: string; path: string; parameters: MethodSpec['params'] }>).map(([name, m]) => ({
  name, httpMethod: m.httpMethod, params: m.parameters ?? {},
  re: new RegExp(`^/calendar/v3/${m.path.replace(/\{calendarId\}/, '(?<calendarId>[^/]+)').replace(/\{eventId\}/, '(?<eventId>[^/]+)')}$`),
}));
const GLOBAL_PARAMS = new Set(Object.keys(discovery.parameters ?? {}));

export interface FakeGoogle {
  url: string;
  tokenUrl: string;
  credentials: { clientId: string; clientSecret: string; refreshToken: string };
  events(calendarId: string): GEvent[];
  live(calendarId: string): GEvent[];
  requests: { method: string; path: string; query: Record<string, string>; at: number; body?: GEvent }[];
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
  close(): Promise<void>;
}

const ID_RE = /^[a-v0-9]{5,1024}$/;

function googleError(code: number, reason: string, message: string) {
  return { error: { errors: [{ domain: /RateLimit|quota/i.test(reason) ? 'usageLimits' : 'global', reason, message }], code, message } };
}

export async function startFakeGoogle(o: Partial<FakeGoogle['credentials']> = {}): Promise<FakeGoogle> {
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

  const state: FakeGoogle = {
    url: '', tokenUrl: '', credentials, requests: [], tokenRequests: 0, violations: [],
    calendarList: SEED_CALENDARS.map((c, i) => ({ kind: 'calendar#calendarListEntry', etag: `"cl${i}"`, ...c })),
    events: (c) => [...cal(c).values()],
    live: (c) => [...cal(c).values()].filter((e) => e.status !== 'cancelled'),
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    expireTokens: () => tokens.clear(),
    deleteBehindOurBack: (c, id) => { const e = cal(c).get(id); if (e) cal(c).set(id, { ...e, status: 'cancelled', etag: `"${++etagN}"` }); },
    expireSyncTokens: () => { validFrom = etagN + 1; },
    revokeGrant: (r) => { revoked = r; if (r) tokens.clear(); },
    editBehindOurBack: (c, id, patch) => { const e = cal(c).get(id); if (e) cal(c).set(id, { ...e, ...patch, etag: `"${++etagN}"` }); },
    refuseRestore: (c, id) => refused.add(`${c}/${id}`),
    pageSize: (n) => { pageLimit = n; },
    addTheirs: (c, ev) => {
      const id = `own${randomBytes(8).toString('hex').replace(/[^a-v0-9]/g, 'a')}`;
      cal(c).set(id, { status: 'confirmed', ...ev, id, etag: `"${++etagN}"` });
      return id;
    },
    acceptToken: (t) => { tokens.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
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
      const calendarId = decodeURIComponent(m.match!.groups!.calendarId);
      const eventId = m.match!.groups!.eventId ? decodeURIComponent(m.match!.groups!.eventId) : undefined;
      const listed = state.calendarList.find((c) => c.id === calendarId);
      if (listed && name !== 'get' && name !== 'list' && listed.accessRole !== 'owner' && listed.accessRole !== 'writer') {
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
          return send(200, ev);
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
          return send(200, next);
        }
        case 'delete': {
          const ev = events.get(eventId!);
          if (!ev) return send(404, googleError(404, 'notFound', 'Not Found'));
          if (ev.status === 'cancelled') return send(410, googleError(410, 'deleted', 'Resource has been deleted'));
          events.set(eventId!, stamp({ ...ev, status: 'cancelled' }));
          return send(204);
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
        default:
          return send(501, googleError(501, 'notImplemented', `${name} is not implemented by the fake`));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  state.url = `http://127.0.0.1:${port}`;
  state.tokenUrl = `http://127.0.0.1:${port}/token`;
  return state;
}
