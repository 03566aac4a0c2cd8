// A fake Zoho Calendar API v1 and Zoho Accounts token endpoint, enforcing the documented rules
// (targets.md §4): `Zoho-oauthtoken` auth, `eventdata` as a URL-encoded JSON query parameter with
// mandatory `dateandtime` {start, end, timezone} in GMT `yyyyMMdd'T'HHmmss'Z'`, the latest `etag` on
// every update (PUT replaces the event) and delete (header), no unknown keys, and a listing `range` of
// at most 31 days (get-events-list). Violations are
// answered 400 and recorded.
//
//   const z = await startFakeZoho();  z.url (API host), z.accountsServer, z.credentials,
//   z.events(calendarUid), z.requests, z.violations, z.fail(n, status, headers?), z.failAfterCreate(n),
//   z.editBehindOurBack(cal, uid, patch), z.deleteBehindOurBack(cal, uid), z.close()
//   z.calendars: the account's calendars as GET /calendars lists them (`category=own` keeps the own ones):
//   the default one ('default-cal'), a second own one, a colleague's shared with write access, a holiday
//   calendar and a colleague's shared view-only. Writing into a calendar whose privilege is not owner/write
//   answers 403.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export interface ZEvent {
  uid: string;
  etag: number;
  title: string;
  description?: string;
  location?: string;
  isprivate?: boolean;
  attendees?: unknown[];
  dateandtime: { start: string; end: string; timezone: string };
}

export interface ZCalendar { uid: string; name: string; isdefault: boolean; privilege: string; category: string; timezone: string; color: string }

export const SEED_CALENDARS: ZCalendar[] = [
  { uid: 'default-cal', name: 'Ada Okafor', isdefault: true, privilege: 'owner', category: 'own', timezone: 'America/Chicago', color: '#005DE0' },
  { uid: 'b2f7c1e0a9d34c56room', name: 'Treatment room', isdefault: false, privilege: 'owner', category: 'own', timezone: 'America/Chicago', color: '#8CBF40' },
  { uid: 'c81d5e3f7a2b4d90naka', name: 'Dr. Nakamura', isdefault: false, privilege: 'write', category: 'shared', timezone: 'America/Denver', color: '#F1A31E' },
  { uid: 'holidays-us@zoho', name: 'US Holidays', isdefault: false, privilege: 'read', category: 'subscribed', timezone: 'America/Chicago', color: '#D24141' },
  { uid: 'e4a6b9c2d1f04e77desk', name: 'Front desk', isdefault: false, privilege: 'freebusy', category: 'shared', timezone: 'America/Chicago', color: '#7A6FF0' },
];

export interface FakeZoho {
  url: string;
  accountsServer: string;
  credentials: { clientId: string; clientSecret: string; refreshToken: string };
  events(cal: string): ZEvent[];
  requests: { method: string; path: string; at: number }[];
  violations: string[];
  fail(n: number, status: number, headers?: Record<string, string>): void;
  failAfterCreate(n: number): void;
  editBehindOurBack(cal: string, uid: string, patch: Partial<ZEvent>): void;
  deleteBehindOurBack(cal: string, uid: string): void;
  /** An event the user made themselves (not ours). */
  addTheirs(cal: string, ev: Omit<ZEvent, 'uid' | 'etag'>): string;
  calendars: ZCalendar[];
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
}

const ALLOWED = new Set(['title', 'description', 'location', 'isprivate', 'attendees', 'dateandtime', 'etag', 'isallday']);
const GMT = /^\d{8}T\d{6}Z$/;
const gmtMs = (t: string) => Date.parse(t.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));

export async function startFakeZoho(): Promise<FakeZoho> {
  const credentials = { clientId: `1000.${randomBytes(8).toString('hex')}`, clientSecret: randomBytes(8).toString('hex'), refreshToken: `1000.${randomBytes(12).toString('hex')}` };
  const cals = new Map<string, Map<string, ZEvent>>([['default-cal', new Map()]]);
  const tokens = new Set<string>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  let lie = 0;
  let etag = 1_804_665_600_000;
  const cal = (id: string) => {
    let c = cals.get(id);
    if (!c) cals.set(id, (c = new Map()));
    return c;
  };
  const state: FakeZoho = {
    url: '', accountsServer: '', credentials, requests: [], violations: [],
    calendars: SEED_CALENDARS.map((c) => ({ ...c })),
    events: (c) => [...cal(c).values()],
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    failAfterCreate: (n) => { lie = n; },
    editBehindOurBack: (c, uid, patch) => { const e = cal(c).get(uid); if (e) cal(c).set(uid, { ...e, ...patch, etag: ++etag }); },
    deleteBehindOurBack: (c, uid) => { cal(c).delete(uid); },
    addTheirs: (c, ev) => {
      const uid = `${randomBytes(16).toString('hex')}@zoho.com`;
      cal(c).set(uid, { ...ev, uid, etag: ++etag });
      return uid;
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
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const bad = (msg: string) => {
        state.violations.push(`${req.method} ${url.pathname}: ${msg}`);
        return send(400, { error: { code: 'INVALID_DATA', message: msg } });
      };
      if (url.pathname === '/oauth/v2/token' && req.method === 'POST') {
        const f = new URLSearchParams(Buffer.concat(chunks).toString());
        if (f.get('grant_type') !== 'refresh_token' || f.get('client_id') !== credentials.clientId || f.get('client_secret') !== credentials.clientSecret) return send(400, { error: 'invalid_client' });
        if (f.get('refresh_token') !== credentials.refreshToken) return send(400, { error: 'invalid_code' });
        const t = `1000.${randomBytes(16).toString('hex')}`;
        tokens.add(t);
        return send(200, { access_token: t, api_domain: 'https://www.zohoapis.eu', token_type: 'Bearer', expires_in: 3600 });
      }
      state.requests.push({ method: req.method ?? '', path: url.pathname + url.search, at: Date.now() });
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Zoho-oauthtoken ') || !tokens.has(auth.slice(16))) return send(401, { error: { code: 'INVALID_OAUTHTOKEN' } });
      const fault = injected.shift();
      if (fault) return send(fault.status, { error: { code: 'INJECTED' } }, fault.headers);
      if (url.pathname === '/api/v1/calendars' && req.method === 'GET') {
        // Calendars events were written to without being listed (older tests) are listed as own ones.
        const listed = [...state.calendars, ...[...cals.keys()].filter((uid) => !state.calendars.some((c) => c.uid === uid)).map((uid): ZCalendar => ({ uid, name: uid, isdefault: false, privilege: 'owner', category: 'own', timezone: 'UTC', color: '#005DE0' }))];
        const category = url.searchParams.get('category');
        return send(200, { calendars: listed.filter((c) => !category || c.category === category) });
      }
      const m = /^\/api\/v1\/calendars\/([^/]+)\/events(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m) return bad('unknown path');
      const meta = state.calendars.find((c) => c.uid === decodeURIComponent(m[1]));
      if (meta && req.method !== 'GET' && meta.privilege !== 'owner' && meta.privilege !== 'write') return send(403, { error: { code: 'NO_PERMISSION', message: 'You do not have permission to modify events in this calendar' } });
      const events = cal(decodeURIComponent(m[1]));
      const uid = m[2] ? decodeURIComponent(m[2]) : undefined;
      let data: Record<string, any> | undefined;
      const rawData = url.searchParams.get('eventdata');
      if (req.method === 'POST' || req.method === 'PUT') {
        if (!rawData) return bad('eventdata is required');
        try {
          data = JSON.parse(rawData);
        } catch {
          return bad('eventdata is not JSON');
        }
        const unknown = Object.keys(data!).filter((k) => !ALLOWED.has(k));
        if (unknown.length) return bad(`unknown keys ${unknown.join(', ')}`);
        const d = data!.dateandtime;
        if (!d || !GMT.test(d.start ?? '') || !GMT.test(d.end ?? '') || typeof d.timezone !== 'string') return bad('dateandtime needs start, end (yyyyMMddTHHmmssZ) and timezone');
        if (typeof data!.title !== 'string' || !data!.title) return bad('title is required');
        if (Array.isArray(data!.attendees) && data!.attendees.length) return bad('attendees would be invited');
      }
      if (req.method === 'POST' && !uid) {
        const ev: ZEvent = { ...(data as ZEvent), uid: `${randomBytes(16).toString('hex')}@zoho.com`, etag: ++etag };
        events.set(ev.uid, ev);
        if (lie > 0) {
          lie--;
          return send(500, { error: { code: 'INTERNAL' } });
        }
        return send(201, { events: [ev] });
      }
      if (req.method === 'GET' && !uid) {
        const range = url.searchParams.get('range');
        if (!range) return send(200, { events: [...events.values()] });
        const r = JSON.parse(range) as { start: string; end: string };
        if (!GMT.test(r.start) || !GMT.test(r.end)) return bad('range needs yyyyMMddTHHmmssZ');
        const span = gmtMs(r.end) - gmtMs(r.start);
        if (!(span >= 0)) return bad('range ends before it starts');
        if (span > 31 * 86_400_000) return bad('the range period cannot exceed 31 days');
        return send(200, { events: [...events.values()].filter((e) => e.dateandtime.start < r.end && e.dateandtime.end > r.start) });
      }
      const ev = uid ? events.get(uid) : undefined;
      if (!ev) return send(404, { error: { code: 'EVENT_NOT_FOUND' } });
      if (req.method === 'GET') return send(200, { events: [ev] });
      if (req.method === 'PUT') {
        if (String(data!.etag) !== String(ev.etag)) return bad('etag is missing or not the latest');
        const { etag: _old, ...rest } = data!;
        const next: ZEvent = { ...(rest as ZEvent), uid: ev.uid, etag: ++etag };
        events.set(ev.uid, next);
        return send(200, { events: [next] });
      }
      if (req.method === 'DELETE') {
        if (String(req.headers.etag ?? '') !== String(ev.etag)) return bad('etag header is missing or not the latest');
        events.delete(ev.uid);
        return send(200, { events: [{ uid: ev.uid }] });
      }
      return bad('method not supported');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  state.url = `http://127.0.0.1:${port}`;
  state.accountsServer = `http://127.0.0.1:${port}`;
  return state;
}
