// A fake Setmore API (prefix `/api/v1`), enforcing what src/connectors/sources/setmore/FACTS.md records:
// `GET /o/oauth2/token?refreshToken=…` answers `{ response, data: { token: { access_token, expires_in } } }`;
// every other call carries `Authorization: Bearer <access token>`; `GET /bookingapi/appointments` needs
// `startDate`/`endDate` as DD-MM-YYYY (start ≤ end) and `customerDetails=true`, filters by `staff_key`, and
// pages by `cursor` (a cursor comes with every non-empty page, as in the sample; past the end the page is
// empty). Dates are matched against the UTC date of `start_time`. Anything else is a rule break: answered
// 4xx and recorded in `violations`.
//
//   const s = await startFakeSetmore();  s.url, s.refreshToken, s.put(appointment), s.remove(key),
//   s.fail(n, status, headers?), s.expireTokens(), s.pageSize, s.requests, s.violations, s.close()
// Staff and services (PipedreamHQ/pipedream setmoreappointments.app.mjs): `GET /bookingapi/staffs` →
// `data.staffs[]` { key, first_name, last_name, email_id } paged by `cursor` like appointments; `GET
// /bookingapi/services` → `data.services[]` { key, service_name, staff_keys, duration } (one page, no cursor).
//   s.addStaff(staff), s.addService(service)
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export interface FakeAppointment {
  key: string;
  duration: number;
  customer?: { key: string; first_name: string; last_name: string; email_id?: string; contact_type: string };
  cost: number;
  currency: string;
  start_time: string;
  end_time: string;
  staff_key: string;
  service_key: string;
  customer_key: string;
  label: string;
}

export const STAFF_KEY = 'r4f2a8c6e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9-d';
export const SERVICE_KEY = 's2b4d6f8a0c1e3f5a7b9d1f3a5c7e9b1d3f5a7c9';

/** `2026-02-24T17:00:00Z` → `2026-02-24T17:00Z`, the minutes-only form Setmore writes. */
export const setmoreTime = (instant: string) => new Date(instant).toISOString().slice(0, 16) + 'Z';

export function appointmentOf(b: { key: string; start: string; end: string; patient: { name: string; email?: string }; staffKey?: string }): FakeAppointment {
  const [first, ...rest] = b.patient.name.split(' ');
  const customerKey = `c${b.key.replace(/-/g, '')}`;
  return {
    key: b.key, duration: (Date.parse(b.end) - Date.parse(b.start)) / 60_000,
    customer: { key: customerKey, first_name: first, last_name: rest.join(' '), contact_type: 'Customer', ...(b.patient.email ? { email_id: b.patient.email } : {}) },
    cost: 80, currency: 'USD', start_time: setmoreTime(b.start), end_time: setmoreTime(b.end),
    staff_key: b.staffKey ?? STAFF_KEY, service_key: SERVICE_KEY, customer_key: customerKey, label: 'No Label',
  };
}

export interface FakeSetmore {
  url: string;
  refreshToken: string;
  /** Appointments per page (Setmore's own size is not documented). */
  pageSize: number;
  /** Lifetime stated in the token answer, seconds. */
  expiresIn: number;
  put(a: FakeAppointment): void;
  remove(key: string): void;
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** End every access token: the next call with one gets 401. */
  expireTokens(): void;
  tokensIssued(): number;
  requests: { method: string; path: string; query: Record<string, string> }[];
  violations: string[];
  close(): Promise<void>;
  addStaff(s: { key: string; first_name: string; last_name: string; email_id?: string }): void;
  addService(s: { key: string; service_name: string }): void;
}

const DMY = /^(\d{2})-(\d{2})-(\d{4})$/;
const isoOf = (dmy: string) => {
  const m = DMY.exec(dmy);
  return m && Number.isFinite(Date.parse(`${m[3]}-${m[2]}-${m[1]}T00:00:00Z`)) ? `${m[3]}-${m[2]}-${m[1]}` : undefined;
};

export async function startFakeSetmore(): Promise<FakeSetmore> {
  const refreshToken = `r1/${randomBytes(18).toString('base64url')}`;
  const appointments = new Map<string, FakeAppointment>();
  const tokens = new Set<string>();
  const staffs = new Map<string, Record<string, unknown>>([[STAFF_KEY, { key: STAFF_KEY, first_name: 'Ada', last_name: 'Okafor', email_id: 'ada@clinic.example', comment: '', image_url: '' }]]);
  const services = new Map<string, Record<string, unknown>>([[SERVICE_KEY, { key: SERVICE_KEY, service_name: 'Acupuncture', staff_keys: [STAFF_KEY], duration: 60, cost: 80, currency: 'USD' }]]);
  let issued = 0;
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const state: FakeSetmore = {
    url: '', refreshToken, pageSize: 2, expiresIn: 3600, requests: [], violations: [],
    put: (a) => { appointments.set(a.key, structuredClone(a)); },
    remove: (key) => { appointments.delete(key); },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    expireTokens: () => tokens.clear(),
    tokensIssued: () => issued,
    close: () => new Promise((r) => server.close(() => r())),
    addStaff: (x) => { staffs.set(x.key, { comment: '', image_url: '', ...x }); },
    addService: (x) => { services.set(x.key, { staff_keys: [...staffs.keys()], duration: 60, cost: 80, currency: 'USD', ...x }); },
  };

  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const query = Object.fromEntries(url.searchParams);
      const path = url.pathname.replace(/^\/api\/v1/, '');
      state.requests.push({ method: req.method ?? '', path, query: { ...query, ...(query.refreshToken ? { refreshToken: '[redacted]' } : {}) } });
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const bad = (status: number, msg: string) => {
        state.violations.push(`${req.method} ${path}: ${msg}`);
        return send(status, { response: false, msg });
      };
      if (!url.pathname.startsWith('/api/v1/')) return bad(404, 'not under /api/v1');
      if (req.method !== 'GET') return bad(405, 'only GET is used');
      const failure = injected.shift();
      if (failure) return send(failure.status, { response: false, msg: 'injected' }, failure.headers);

      if (path === '/o/oauth2/token') {
        if (query.refreshToken !== refreshToken) return send(401, { response: false, msg: 'Invalid refresh token' });
        const token = randomBytes(20).toString('hex');
        tokens.add(token);
        issued++;
        return send(200, { response: true, data: { token: { access_token: token, token_type: 'bearer', expires_in: state.expiresIn, scope: 'basic' } } });
      }
      const auth = req.headers.authorization;
      if (!auth?.startsWith('Bearer ')) return bad(401, 'no Bearer access token');
      if (!tokens.has(auth.slice(7))) return send(401, { response: false, msg: 'Access token expired' });

      if (path === '/bookingapi/appointments') {
        const from = isoOf(query.startDate ?? '');
        const to = isoOf(query.endDate ?? '');
        if (!from || !to) return bad(400, 'startDate and endDate are DD-MM-YYYY');
        if (from > to) return bad(400, 'startDate is after endDate');
        if (query.customerDetails !== 'true') return bad(400, 'customerDetails=true is needed for the patient');
        const rows = [...appointments.values()]
          .filter((a) => a.start_time.slice(0, 10) >= from && a.start_time.slice(0, 10) <= to && (!query.staff_key || a.staff_key === query.staff_key))
          .sort((x, y) => x.start_time.localeCompare(y.start_time) || x.key.localeCompare(y.key));
        const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString()) : 0;
        if (!Number.isInteger(offset) || offset < 0) return bad(400, 'cursor was not one this API issued');
        const page = rows.slice(offset, offset + state.pageSize);
        const cursor = page.length ? Buffer.from(String(offset + page.length)).toString('base64url') : undefined;
        return send(200, { response: true, data: { appointments: page, ...(cursor ? { cursor } : {}) } });
      }
      if (path === '/bookingapi/staffs') {
        const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString()) : 0;
        if (!Number.isInteger(offset) || offset < 0) return bad(400, 'cursor was not one this API issued');
        const page = [...staffs.values()].slice(offset, offset + state.pageSize);
        const cursor = page.length ? Buffer.from(String(offset + page.length)).toString('base64url') : undefined;
        return send(200, { response: true, data: { staffs: page, ...(cursor ? { cursor } : {}) } });
      }
      if (path === '/bookingapi/services') {
        if (Object.keys(query).length) return bad(400, `undocumented parameters ${Object.keys(query).join(', ')}`);
        return send(200, { response: true, data: { services: [...services.values()] } });
      }
      return bad(404, `no such endpoint ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1`;
  return state;
}
