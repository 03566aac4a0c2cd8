// A fake Bookafy API (facts: src/connectors/sources/bookafy/FACTS.md), enforcing what is documented:
// `Authorization: Bearer <API key>`; `GET /staff_members`; `GET /appointments?email=<staff email>` (answer
// `{ response: { appointment: [...] } }`, paged by `page` with `next_page` as the MCP wrapper describes);
// `PUT /appointments/:id` and `DELETE /appointments/:id` form-encoded with Rails `appointment[...]` fields,
// the owner's `appointment[user_id]`, dates `YYYY-MM-DD`, times `hh:mm AM`. There is no `GET /appointments/:id`.
// A DELETE removes the appointment (the API's cancel cannot be undone). Rule breaks are answered 4xx and
// recorded in `violations`.
//
//   const f = await startFakeBookafy();  f.url, f.apiKey, f.staff, f.put(a), f.get(id), f.deleted(id), f.requests, f.violations,
//   f.fail(n, status, headers?), f.close()
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { BookafyAppointment } from '../../src/connectors/sources/bookafy/index.ts';

export interface FakeBookafy {
  /** API base, as a connection's `baseUrl`. */
  url: string;
  apiKey: string;
  staff: { id: number; name: string; email: string }[];
  /** Hold (or replace) an appointment. */
  put(a: BookafyAppointment & { id: number }): void;
  get(id: number): BookafyAppointment | undefined;
  /** The appointment was deleted at Bookafy (in its dashboard): it is no longer listed. */
  remove(id: number): void;
  /** An appointment Meridian deleted (cancelled) through the API, as it was. */
  deleted(id: number): BookafyAppointment | undefined;
  requests: { method: string; path: string }[];
  violations: string[];
  /** Answer the next `n` requests with `status` (e.g. 429 with Retry-After). */
  fail(n: number, status: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

const PER_PAGE = 25;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^(0[1-9]|1[0-2]):[0-5]\d (AM|PM)$/;

/** `2026-03-10` + `02:05 PM` read in UTC (the only zone label this fake understands). */
function utcOf(date: string, time: string): string {
  const [, hh, mm, ap] = /^(\d{2}):(\d{2}) (AM|PM)$/.exec(time)!;
  const h = (Number(hh) % 12) + (ap === 'PM' ? 12 : 0);
  return `${date}T${String(h).padStart(2, '0')}:${mm}:00.000Z`;
}

export async function startFakeBookafy(): Promise<FakeBookafy> {
  const apiKey = randomBytes(16).toString('hex');
  const appts = new Map<number, BookafyAppointment & { id: number }>();
  const gone = new Map<number, BookafyAppointment>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const state: FakeBookafy = {
    url: '', apiKey, requests: [], violations: [],
    staff: [{ id: 5123, name: 'Dr. Lena Park', email: 'lena@clinic.example' }, { id: 5124, name: 'Sam Ortiz', email: 'sam@clinic.example' }],
    put: (a) => { appts.set(a.id, { ...a }); },
    get: (id) => appts.get(id),
    remove: (id) => { appts.delete(id); },
    deleted: (id) => gone.get(id),
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    close: () => new Promise((r) => server.close(() => r())),
  };
  const reply = (rs: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    rs.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  const refuse = (rs: http.ServerResponse, status: number, rule: string) => {
    state.violations.push(rule);
    reply(rs, status, { response: { message: rule } });
  };

  const server = http.createServer((rq, rs) => {
    let raw = '';
    rq.on('data', (d) => (raw += d));
    rq.on('end', () => {
      const u = new URL(rq.url ?? '/', 'http://x');
      const path = u.pathname.replace(/^\/api\/v2/, '');
      state.requests.push({ method: rq.method ?? '', path });
      if (rq.headers.authorization !== `Bearer ${apiKey}`) return refuse(rs, 401, `${rq.method} ${path} without the Bearer API key`);
      const inj = injected.shift();
      if (inj) return reply(rs, inj.status, { response: { message: 'injected' } }, inj.headers);
      if (rq.method === 'GET' && path === '/staff_members') {
        return reply(rs, 200, { response: { message: 'ok', staff_members: state.staff } });
      }
      if (rq.method === 'GET' && path === '/appointments') {
        const who = state.staff.find((s) => s.email === u.searchParams.get('email'));
        if (!who) return refuse(rs, 422, 'GET /appointments needs the email of a staff member');
        const page = Number(u.searchParams.get('page') ?? '1');
        const mine = [...appts.values()].filter((a) => Number(a.user_id) === who.id).sort((a, b) => Date.parse(b.appointment_start_time!) - Date.parse(a.appointment_start_time!));
        const slice = mine.slice((page - 1) * PER_PAGE, page * PER_PAGE);
        return reply(rs, 200, { response: { message: 'ok', appointment: slice, ...(page * PER_PAGE < mine.length ? { next_page: page + 1 } : {}) } });
      }
      const m = /^\/appointments\/(\d+)$/.exec(path);
      if (!m || (rq.method !== 'PUT' && rq.method !== 'DELETE')) return refuse(rs, 404, `${rq.method} ${path} is not in Bookafy's API`);
      if (!String(rq.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return refuse(rs, 415, `${rq.method} ${path} must be form-encoded`);
      const a = appts.get(Number(m[1]));
      if (!a) return reply(rs, 404, { response: { message: 'Appointment not found' } });
      const f = new URLSearchParams(raw);
      if (f.get('appointment[user_id]') !== String(a.user_id)) return refuse(rs, 422, `${rq.method} ${path} needs the owner's appointment[user_id]`);
      if (rq.method === 'DELETE') {
        appts.delete(a.id);
        gone.set(a.id, a);
        return reply(rs, 200, { response: { message: 'Appointment deleted' } });
      }
      const date = f.get('appointment[appointment_date]') ?? '';
      const start = f.get('appointment[appointment_start_time]') ?? '';
      const end = f.get('appointment[appointment_end_time]') ?? '';
      if (!DATE.test(date) || !TIME.test(start) || !TIME.test(end)) return refuse(rs, 422, 'PUT needs appointment_date YYYY-MM-DD and hh:mm AM/PM times');
      if (f.get('appointment[time_zone]') !== 'UTC') return refuse(rs, 422, 'this fake only reads times in the UTC zone label');
      const s = utcOf(date, start);
      const minutes = Number(f.get('appointment[duration]'));
      const e = Number.isFinite(minutes) && minutes > 0 ? new Date(Date.parse(s) + minutes * 60_000).toISOString() : utcOf(date, end);
      if (Date.parse(e) <= Date.parse(s)) return refuse(rs, 422, 'the end must be after the start');
      state.put({ ...a, appointment_start_time: s, appointment_end_time: e, time_zone: 'UTC', duration: String(Math.round((Date.parse(e) - Date.parse(s)) / 60_000)) });
      return reply(rs, 200, { response: { message: 'Appointment updated', appointment: appts.get(a.id) } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v2`;
  return state;
}
