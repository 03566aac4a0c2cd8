// A fake Acuity Scheduling API v1 (facts: ../shared/platforms/sources-a.md §1): Basic auth with the user id
// and API key; `GET /appointments/:id`, `GET /appointments` (date window, canceled ones only with
// `showall`/`canceled`), `PUT /appointments/:id/reschedule` and `PUT /appointments/:id/cancel` (`noShow` only in
// admin mode; a canceled appointment cannot be un-canceled). Undocumented paths, query parameters or body
// fields are answered 400/404 and recorded in `violations`.
//
//   const a = await startFakeAcuity({ userId?, apiKey? });
//   a.url (…/api/v1)   a.credentials   a.hold(appointment)   a.get(id)   a.requests   a.violations
//   a.fail(n, status, headers?)   a.close()
// Dynamic webhooks (https://developers.acuityscheduling.com/page/webhooks-webhooks-webhooks): `POST /webhooks`
// { target, event } (both required, nothing else; the documented events only) → { id, event, target, status };
// `GET /webhooks`; `DELETE /webhooks/:id`. The 26th webhook of an account is refused with 400, as documented.
// Also `GET /calendars` and `GET /appointment-types` for the directory.
//   a.webhooks()   a.dropWebhook(id)   a.signedDelivery(body)   a.calendar(c)   a.appointmentType(t)
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { utcToLocal } from '../../src/domain/time.ts';

export interface AcuityAppointment {
  id: number;
  datetime: string;
  duration: string;
  calendarID: number;
  appointmentTypeID?: number;
  calendarTimezone: string;
  timezone?: string;
  firstName?: string;
  lastName?: string;
  email?: string;
  phone?: string;
  canceled?: boolean;
  noShow?: boolean;
  [k: string]: unknown;
}

export interface FakeAcuity {
  url: string;
  credentials: { userId: string; apiKey: string };
  hold(a: AcuityAppointment): void;
  get(id: number | string): AcuityAppointment | undefined;
  requests: { method: string; path: string; query: Record<string, string>; body?: Record<string, unknown> }[];
  violations: string[];
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
  webhooks(): { id: number; event: string; target: string; status: string }[];
  /** A webhook removed behind Meridian's back (in Acuity's settings, or by another tool). */
  dropWebhook(id: number | string): void;
  /** The headers of a delivery Acuity signs with the account's API key. */
  signedDelivery(body: string): Record<string, string>;
  calendar(c: { id: number; name: string; email?: string; [k: string]: unknown }): void;
  appointmentType(t: { id: number; name: string; active?: boolean; [k: string]: unknown }): void;
}

export const ACUITY_WEBHOOK_EVENTS = new Set(['appointment.scheduled', 'appointment.rescheduled', 'appointment.canceled', 'appointment.changed', 'order.completed']);
export const ACUITY_WEBHOOK_LIMIT = 25;

const LIST_PARAMS = new Set(['minDate', 'maxDate', 'calendarID', 'appointmentTypeID', 'max', 'canceled', 'showall', 'excludeForms', 'email', 'firstName', 'lastName', 'phone', 'direction']);
const WRITE_PARAMS = new Set(['admin', 'noEmail']);
const RESCHEDULE_FIELDS = new Set(['datetime', 'calendarID', 'timezone']);
const CANCEL_FIELDS = new Set(['cancelNote', 'noShow']);
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** An instant as Acuity writes it: local time of the calendar with an offset without a colon. */
export function acuityDatetime(instant: string, zone: string): string {
  const z = utcToLocal(instant, zone);
  return `${z.toPlainDateTime().toString().slice(0, 19)}${z.offset.replace(':', '')}`;
}

const instantOf = (datetime: string) => Date.parse(datetime.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));

export async function startFakeAcuity(o: { userId?: string; apiKey?: string } = {}): Promise<FakeAcuity> {
  const credentials = { userId: o.userId ?? '19088731', apiKey: o.apiKey ?? 'acuity-fake-api-key' };
  const auth = `Basic ${Buffer.from(`${credentials.userId}:${credentials.apiKey}`).toString('base64')}`;
  const accepted = new Set<string>();
  const appointments = new Map<string, AcuityAppointment>();
  const hooks = new Map<string, { id: number; event: string; target: string; status: string }>();
  const calendars = new Map<number, Record<string, unknown>>();
  const types = new Map<number, Record<string, unknown>>();
  let nextHook = 1;
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const state: FakeAcuity = {
    url: '', credentials, requests: [], violations: [],
    hold: (a) => { appointments.set(String(a.id), structuredClone(a)); },
    get: (id) => structuredClone(appointments.get(String(id))),
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    acceptToken: (t) => { accepted.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
    webhooks: () => [...hooks.values()].map((h) => ({ ...h })),
    dropWebhook: (id) => { hooks.delete(String(id)); },
    signedDelivery: (body) => ({ 'content-type': 'application/x-www-form-urlencoded', 'x-acuity-signature': createHmac('sha256', credentials.apiKey).update(body).digest('base64') }),
    calendar: (c) => { calendars.set(c.id, { description: '', location: '', timezone: 'America/New_York', thumbnail: '', image: '', ...c }); },
    appointmentType: (t) => { types.set(t.id, { active: true, description: '', duration: 60, price: '90.00', category: '', color: '#AAAAAA', private: false, type: 'service', calendarIDs: [...calendars.keys()], ...t }); },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) => send(status, { status_code: status, message, error: code }, headers);
      const refuse = (rule: string, status = 400) => {
        state.violations.push(`${req.method} ${url.pathname}: ${rule}`);
        return error(status, 'invalid_request', rule);
      };
      let body: Record<string, unknown> | undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return refuse('the body is not JSON');
      }
      const query = Object.fromEntries(url.searchParams);
      state.requests.push({ method: req.method ?? '', path: url.pathname, query, body });
      if (req.headers.authorization !== auth && !(req.headers.authorization?.startsWith('Bearer ') && accepted.has(req.headers.authorization.slice(7)))) return error(401, 'unauthorized', 'Unauthorized');
      const fault = injected.shift();
      if (fault) return error(fault.status, fault.status === 429 ? 'too_many_requests' : 'server_error', 'Injected', fault.headers);
      if (url.pathname === '/api/v1/calendars' && req.method === 'GET') return send(200, [...calendars.values()]);
      if (url.pathname === '/api/v1/appointment-types' && req.method === 'GET') return send(200, [...types.values()]);
      const wh = /^\/api\/v1\/webhooks(?:\/(\d+))?$/.exec(url.pathname);
      if (wh) {
        const [, hookId] = wh;
        if (req.method === 'GET' && !hookId) return send(200, [...hooks.values()]);
        if (req.method === 'DELETE' && hookId) {
          if (!hooks.delete(hookId)) return error(404, 'not_found', 'Webhook not found.');
          res.writeHead(204).end();
          return;
        }
        if (req.method !== 'POST' || hookId) return refuse('method not allowed here', 405);
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return refuse('a JSON body needs Content-Type: application/json');
        const extra = Object.keys(body ?? {}).filter((k) => k !== 'target' && k !== 'event');
        if (extra.length) return refuse(`undocumented fields ${extra.join(', ')}`);
        if (typeof body?.event !== 'string' || !ACUITY_WEBHOOK_EVENTS.has(body.event)) return refuse('event is one of the documented webhook events');
        let target: URL;
        try {
          target = new URL(String(body?.target));
        } catch {
          return refuse('target is a URL');
        }
        if (!['https:', 'http:'].includes(target.protocol) || !['', '443', '80'].includes(target.port)) return refuse('target must be reachable on port 443 or 80');
        if (hooks.size >= ACUITY_WEBHOOK_LIMIT) return error(400, 'too_many_webhooks', `A maximum of ${ACUITY_WEBHOOK_LIMIT} webhooks can be created per account.`);
        const hook = { id: nextHook++, event: body.event, target: String(body.target), status: 'active' };
        hooks.set(String(hook.id), hook);
        return send(200, hook);
      }
      const m = /^\/api\/v1\/appointments(?:\/(\d+)(?:\/(reschedule|cancel))?)?$/.exec(url.pathname);
      if (!m) return refuse('not a documented path', 404);
      const [, id, action] = m;
      if (req.method === 'GET' && !id) {
        const unknown = Object.keys(query).filter((k) => !LIST_PARAMS.has(k));
        if (unknown.length) return refuse(`undocumented query parameters ${unknown.join(', ')}`);
        if ((query.minDate && !DAY.test(query.minDate)) || (query.maxDate && !DAY.test(query.maxDate))) return refuse('minDate/maxDate are dates (YYYY-MM-DD)');
        const day = (a: AcuityAppointment) => a.datetime.slice(0, 10);
        const items = [...appointments.values()].filter((a) => (!query.minDate || day(a) >= query.minDate) && (!query.maxDate || day(a) <= query.maxDate)
          && (query.canceled === 'true' ? a.canceled : query.showall === 'true' || !a.canceled)
          && (!query.calendarID || String(a.calendarID) === query.calendarID));
        return send(200, items.slice(0, Number(query.max ?? 100)));
      }
      const appt = id ? appointments.get(id) : undefined;
      if (req.method === 'GET' && id && !action) return appt ? send(200, appt) : error(404, 'not_found', 'Appointment not found.');
      if (req.method !== 'PUT' || !action) return refuse('method not allowed here', 405);
      const unknownParams = Object.keys(query).filter((k) => !WRITE_PARAMS.has(k));
      if (unknownParams.length) return refuse(`undocumented query parameters ${unknownParams.join(', ')}`);
      if (body !== undefined && !String(req.headers['content-type'] ?? '').startsWith('application/json')) return refuse('a JSON body needs Content-Type: application/json');
      const fields = Object.keys(body ?? {});
      const allowed = action === 'reschedule' ? RESCHEDULE_FIELDS : CANCEL_FIELDS;
      const extra = fields.filter((f) => !allowed.has(f));
      if (extra.length) return refuse(`undocumented fields ${extra.join(', ')}`);
      if (!appt) return error(404, 'not_found', 'Appointment not found.');
      if (action === 'reschedule') {
        const dt = body?.datetime;
        if (typeof dt !== 'string' || !Number.isFinite(instantOf(dt))) return refuse('datetime is required');
        if (appt.canceled) return error(400, 'invalid_appointment', 'A canceled appointment cannot be rescheduled.');
        appt.datetime = acuityDatetime(new Date(instantOf(dt)).toISOString(), appt.calendarTimezone);
        return send(200, appt);
      }
      if (body?.noShow !== undefined && query.admin !== 'true') return refuse('noShow can only be set in admin mode (?admin=true)');
      if (appt.canceled && !(query.admin === 'true' && body?.noShow !== undefined)) return error(400, 'cancel_not_allowed', 'This appointment is already canceled.');
      appt.canceled = true;
      if (body?.noShow !== undefined) appt.noShow = Boolean(body.noShow);
      return send(200, appt);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1`;
  return state;
}
