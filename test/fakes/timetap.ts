// A fake TimeTap API (production prefix `/live`), enforcing what TimeTap documents (see
// src/connectors/sources/timetap/FACTS.md): `GET /sessionToken` with apiKey, a timestamp in seconds and
// signature = MD5 hex of apiKey + private key (the private key must never be sent); every other call with
// `Authorization: Bearer <session token>`; `GET /appointments/{calendarId}`; `GET /appointmentList/report`
// with pageNumber and pageSize (paged, array answer); `PUT /appointments/{calendarId}/cancel/{sendStaffEmail}/{sendClientEmail}`.
// Anything else is a rule break: answered 4xx and recorded in `violations`.
//
//   const t = await startFakeTimeTap();  t.url, t.apiKey, t.privateKey, t.put(appointment), t.remove(id),
//   t.get(id), t.held(id), t.fail(n, status, headers?), t.expireSessions(), t.requests, t.violations, t.close()
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { localToUtc, utcToLocal } from '../../src/domain/time.ts';

export interface FakeAppointment {
  calendarId: number;
  businessId: number;
  status: string;
  startDate: string;
  startTime: number;
  endDate: string;
  endTime: number;
  clientStartDate: string;
  clientStartTime: number;
  clientEndDate: string;
  clientEndTime: number;
  reason: { reasonId: number; businessId: number; visitMinutes: number; reasonDesc: string };
  client: { clientId: number; firstName: string; lastName: string; emailAddress?: string; cellPhone?: string };
  staff: { professionalId: number; businessId: number; userName: string; email: string; timeZoneCode: { timeZoneId: number; timeZoneCode: string; timeZoneDesc: string } };
  location: { locationId: number; locationName: string; businessId: number; locationType: string };
  fields: unknown[];
}

export const BUSINESS_ID = 20398;
export const PROFESSIONAL_ID = 42441;
export const REASON_ID = 96439;
export const LOCATION_ID = 29945;

const hhmm = (instant: string, zone: string) => {
  const z = utcToLocal(instant, zone);
  return { date: z.toPlainDate().toString(), time: z.hour * 100 + z.minute };
};

/** An appointment shaped like the object in TimeTap's webhook documentation, times in the staff member's zone. */
export function appointmentOf(b: {
  calendarId: number; start: string; end: string; timeZone: string; status?: string;
  patient: { name: string; email?: string; phone?: string };
}): FakeAppointment {
  const s = hhmm(b.start, b.timeZone);
  const e = hhmm(b.end, b.timeZone);
  const [firstName, ...rest] = b.patient.name.split(' ');
  return {
    calendarId: b.calendarId, businessId: BUSINESS_ID, status: b.status ?? 'OPEN',
    startDate: s.date, startTime: s.time, endDate: e.date, endTime: e.time,
    clientStartDate: s.date, clientStartTime: s.time, clientEndDate: e.date, clientEndTime: e.time,
    reason: { reasonId: REASON_ID, businessId: BUSINESS_ID, visitMinutes: (Date.parse(b.end) - Date.parse(b.start)) / 60_000, reasonDesc: 'Acupuncture' },
    client: { clientId: 2530974, firstName, lastName: rest.join(' '), ...(b.patient.email ? { emailAddress: b.patient.email } : {}), ...(b.patient.phone ? { cellPhone: b.patient.phone } : {}) },
    staff: { professionalId: PROFESSIONAL_ID, businessId: BUSINESS_ID, userName: 'DrJones2', email: 'djones2@clinic.example', timeZoneCode: { timeZoneId: 78, timeZoneCode: b.timeZone, timeZoneDesc: b.timeZone } },
    location: { locationId: LOCATION_ID, locationName: 'MyOffice', businessId: BUSINESS_ID, locationType: 'Office' },
    fields: [],
  };
}

/** The webhook body TimeTap posts: the appointment object, its id spelled `calendarid` as in the docs' example. */
export function webhookBodyOf(a: FakeAppointment): Buffer {
  const { calendarId, ...rest } = a;
  return Buffer.from(JSON.stringify({ calendarid: calendarId, ...rest }));
}

export interface FakeTimeTap {
  url: string;
  apiKey: string;
  privateKey: string;
  put(a: FakeAppointment): void;
  remove(calendarId: number): void;
  get(calendarId: number): FakeAppointment | undefined;
  /** The appointment as UTC instants, read independently of the connector. */
  held(calendarId: number): { start: string; end: string; cancelled: boolean } | undefined;
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** End every session token (TimeTap documents no lifetime; the next call gets 401). */
  expireSessions(): void;
  requests: { method: string; path: string; query: Record<string, string> }[];
  violations: string[];
  close(): Promise<void>;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function startFakeTimeTap(): Promise<FakeTimeTap> {
  const apiKey = String(300000 + (randomBytes(2).readUInt16BE() % 60000));
  const privateKey = randomBytes(16).toString('hex');
  const appointments = new Map<number, FakeAppointment>();
  const sessions = new Set<string>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const state: FakeTimeTap = {
    url: '', apiKey, privateKey, requests: [], violations: [],
    put: (a) => { appointments.set(a.calendarId, structuredClone(a)); },
    remove: (id) => { appointments.delete(id); },
    get: (id) => appointments.get(id),
    held: (id) => {
      const a = appointments.get(id);
      if (!a) return undefined;
      const zone = a.staff.timeZoneCode.timeZoneCode;
      const at = (date: string, t: number) => localToUtc(`${date}T${String(Math.floor(t / 100)).padStart(2, '0')}:${String(t % 100).padStart(2, '0')}:00`, zone);
      return { start: at(a.startDate, a.startTime), end: at(a.endDate, a.endTime), cancelled: a.status === 'CANCELLED' };
    },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    expireSessions: () => sessions.clear(),
    close: () => new Promise((r) => server.close(() => r())),
  };

  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const query = Object.fromEntries(url.searchParams);
      const path = url.pathname.replace(/^\/live/, '');
      state.requests.push({ method: req.method ?? '', path, query });
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const bad = (status: number, msg: string) => {
        state.violations.push(`${req.method} ${path}: ${msg}`);
        return send(status, { message: msg });
      };
      if (!url.pathname.startsWith('/live/')) return bad(404, 'not under the /live prefix');
      if (url.search.includes(privateKey) || JSON.stringify(req.headers).includes(privateKey)) return bad(400, 'the private key was sent');
      const failure = injected.shift();
      if (failure) return send(failure.status, { message: 'injected' }, failure.headers);

      if (path === '/sessionToken') {
        if (req.method !== 'GET') return bad(405, 'sessionToken is GET');
        if (!/^\d{9,10}$/.test(query.timestamp ?? '')) return bad(400, 'timestamp must be seconds since 1970');
        const expected = createHash('md5').update(apiKey + privateKey).digest('hex');
        if (query.apiKey !== apiKey || query.signature !== expected) return send(401, { message: 'invalid api key or signature' });
        const token = `st:api:api:${randomBytes(16).toString('hex')}`;
        sessions.add(token);
        return send(200, { sessionToken: token });
      }
      const auth = req.headers.authorization;
      if (!auth?.startsWith('Bearer ')) return bad(401, 'no Bearer session token');
      if (!sessions.has(auth.slice(7))) return send(401, { message: 'session expired' });

      const one = /^\/appointments\/(\d+)$/.exec(path);
      if (one) {
        if (req.method !== 'GET') return bad(405, 'only GET is used on /appointments/{calendarId}');
        const a = appointments.get(Number(one[1]));
        return a ? send(200, a) : send(404, { message: 'appointment not found' });
      }
      const cancel = /^\/appointments\/(\d+)\/cancel\/([^/]+)\/([^/]+)$/.exec(path);
      if (cancel) {
        if (req.method !== 'PUT') return bad(405, 'cancel is PUT');
        if (![cancel[2], cancel[3]].every((b) => b === 'true' || b === 'false')) return bad(400, 'sendStaffEmail and sendClientEmail are true or false');
        const a = appointments.get(Number(cancel[1]));
        if (!a) return send(404, { message: 'appointment not found' });
        a.status = 'CANCELLED';
        return send(200, a);
      }
      if (path === '/appointmentList/report') {
        if (req.method !== 'GET') return bad(405, 'report is GET');
        const page = Number(query.pageNumber);
        const size = Number(query.pageSize);
        if (!Number.isInteger(page) || page < 1 || !Number.isInteger(size) || size < 1) return bad(400, 'pageNumber and pageSize are required');
        if (!DAY.test(query.startDate ?? '') || !DAY.test(query.endDate ?? '')) return bad(400, 'startDate and endDate are YYYY-MM-DD');
        const statuses = (query.statusList ?? '').split(',').filter(Boolean);
        const rows = [...appointments.values()]
          .filter((a) => a.startDate >= query.startDate && a.startDate <= query.endDate && (!statuses.length || statuses.includes(a.status)))
          .sort((x, y) => x.calendarId - y.calendarId);
        return send(200, rows.slice((page - 1) * size, page * size));
      }
      return bad(404, `no such endpoint ${req.method} ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/live`;
  return state;
}
