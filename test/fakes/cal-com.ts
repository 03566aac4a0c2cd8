// A fake Cal.com API v2 bookings surface (facts and addresses: src/connectors/sources/cal-com/FACTS.md):
// `Authorization: Bearer cal_…` and `cal-api-version: 2024-08-13` on every call; get one booking, list with the
// documented filters (`take` 1–250, `skip`, offset pagination), cancel, reschedule (a NEW booking: the old one is
// cancelled with `rescheduledToUid`, the new one has `rescheduledFromUid`; a cancelled or rejected booking cannot
// be rescheduled) and mark-absent. Undocumented paths, parameters and body fields are answered 400/404 and
// recorded in `violations`.
//
//   const c = await startFakeCalCom({ apiKey? });
//   c.url (…/v2)   c.apiKey   c.put(booking)   c.booking(uid)   c.latest(uid)   c.requests   c.violations
//   c.fail(n, status, headers?)   c.close()
// Webhooks, `me` and event types (calcom/cal.com apps/api/v2 `modules/webhooks` CreateWebhookInputDto /
// WebhookOutputDto, `me`, `event-types_2024_06_14`): `POST /v2/webhooks` { subscriberUrl, triggers (known
// trigger names), active (required), secret?, payloadTemplate? } → 201 `{ status, data: { id, payloadTemplate,
// triggers, subscriberUrl, active, secret?, userId } }`; `GET` / `DELETE /v2/webhooks/{id}` (another user's id
// answers 404 here); `GET /v2/me`; `GET /v2/event-types` needs `cal-api-version: 2024-06-14` and answers 404
// "Event types not found" when there are none, as Cal.com's controller does.
//   c.me   c.webhooks()   c.switchOff(id)   c.signedDelivery(id, body)   c.eventType(et)
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';

export const CAL_API_VERSION = '2024-08-13';

export interface CalAttendee { name: string; email: string; timeZone: string; phoneNumber?: string; language?: string; absent: boolean }
export interface CalBooking {
  id: number;
  uid: string;
  title: string;
  status: 'accepted' | 'pending' | 'cancelled' | 'rejected';
  start: string;
  end: string;
  duration: number;
  hosts: { id: number; name: string; email: string; username?: string; timeZone: string }[];
  attendees: CalAttendee[];
  eventTypeId: number;
  eventType: { id: number; slug: string };
  location?: string;
  absentHost: boolean;
  cancellationReason?: string;
  reschedulingReason?: string;
  rescheduledFromUid?: string;
  rescheduledToUid?: string;
  createdAt: string;
  updatedAt: string;
  [k: string]: unknown;
}

export interface FakeCalCom {
  url: string;
  apiKey: string;
  put(b: CalBooking): void;
  booking(uid: string): CalBooking | undefined;
  /** The latest booking of `uid`'s reschedule chain. */
  latest(uid: string): CalBooking | undefined;
  requests: { method: string; path: string; query: Record<string, string>; body?: Record<string, any> }[];
  violations: string[];
  fail(n: number, status: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
  me: { id: number; email: string; name: string; username: string; timeZone: string };
  webhooks(): { id: number; subscriberUrl: string; triggers: string[]; active: boolean; secret?: string; payloadTemplate: string | null; userId: number }[];
  switchOff(id: number | string): void;
  /** The headers of a delivery Cal.com signs with that webhook's secret. */
  signedDelivery(id: number | string, body: string): Record<string, string>;
  eventType(et: { id: number; title: string; slug?: string; [k: string]: unknown }): void;
}

export const CAL_TRIGGERS = new Set(['BOOKING_CREATED', 'BOOKING_PAYMENT_INITIATED', 'BOOKING_PAID', 'BOOKING_RESCHEDULED', 'BOOKING_REQUESTED', 'BOOKING_CANCELLED',
  'BOOKING_REJECTED', 'BOOKING_NO_SHOW_UPDATED', 'FORM_SUBMITTED', 'MEETING_ENDED', 'MEETING_STARTED', 'RECORDING_READY', 'INSTANT_MEETING',
  'RECORDING_TRANSCRIPTION_GENERATED', 'OOO_CREATED', 'AFTER_HOSTS_CAL_VIDEO_NO_SHOW', 'AFTER_GUESTS_CAL_VIDEO_NO_SHOW']);
export const CAL_EVENT_TYPES_VERSION = '2024-06-14';
const WEBHOOK_FIELDS = new Set(['payloadTemplate', 'active', 'subscriberUrl', 'triggers', 'secret']);

const LIST_PARAMS = new Set(['status', 'attendeeEmail', 'attendeeName', 'bookingUid', 'eventTypeIds', 'eventTypeId', 'teamsIds', 'teamId', 'afterStart', 'beforeEnd',
  'afterCreatedAt', 'beforeCreatedAt', 'afterUpdatedAt', 'beforeUpdatedAt', 'sortStart', 'sortEnd', 'sortCreated', 'sortUpdatedAt', 'take', 'skip']);
const STATUSES = new Set(['upcoming', 'recurring', 'past', 'cancelled', 'unconfirmed']);
const BODY_FIELDS: Record<string, Set<string>> = {
  cancel: new Set(['cancellationReason', 'cancelSubsequentBookings', 'seatUid']),
  reschedule: new Set(['start', 'rescheduledBy', 'reschedulingReason', 'seatUid', 'emailVerificationCode']),
  'mark-absent': new Set(['host', 'attendees']),
};
const newUid = () => randomBytes(16).toString('base64url').slice(0, 22);

/** Which documented `status` filter a booking falls under (`recurring` is never answered: no series here). */
function listStatus(b: CalBooking, now: number): string {
  if (b.status === 'cancelled' || b.status === 'rejected') return 'cancelled';
  if (Date.parse(b.end) < now) return 'past';
  return b.status === 'pending' ? 'unconfirmed' : 'upcoming';
}

export async function startFakeCalCom(o: { apiKey?: string } = {}): Promise<FakeCalCom> {
  const apiKey = o.apiKey ?? `cal_test_${randomBytes(8).toString('hex')}`;
  const bookings = new Map<string, CalBooking>();
  const me = { id: 7, email: 'dr.lin@clinic.example', name: 'Dr. Mei Lin', username: 'mei-lin', timeZone: 'Europe/London' };
  const hooks = new Map<string, { id: number; subscriberUrl: string; triggers: string[]; active: boolean; secret?: string; payloadTemplate: string | null; userId: number }>();
  const eventTypes = new Map<number, Record<string, unknown>>();
  let nextHook = 300;
  const injected: { status: number; headers: Record<string, string> }[] = [];
  let nextId = 1000;
  const state: FakeCalCom = {
    url: '', apiKey, requests: [], violations: [],
    put: (b) => { bookings.set(b.uid, structuredClone(b)); },
    booking: (uid) => structuredClone(bookings.get(uid)),
    latest: (uid) => {
      let b = bookings.get(uid);
      while (b?.rescheduledToUid && bookings.has(b.rescheduledToUid)) b = bookings.get(b.rescheduledToUid);
      return structuredClone(b);
    },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    close: () => new Promise((r) => server.close(() => r())),
    me,
    webhooks: () => [...hooks.values()].map((h) => structuredClone(h)),
    switchOff: (id) => { const h = hooks.get(String(id)); if (h) h.active = false; },
    signedDelivery: (id, body) => {
      const secret = hooks.get(String(id))?.secret;
      if (!secret) throw new Error(`no webhook ${id} with a secret`);
      return { 'content-type': 'application/json', 'x-cal-signature-256': createHmac('sha256', secret).update(body).digest('hex') };
    },
    eventType: (et) => { eventTypes.set(et.id, { slug: String(et.title).toLowerCase().replace(/\W+/g, '-'), lengthInMinutes: 60, ownerId: me.id, hidden: false, ...et }); },
  };
  const hookOut = ({ secret: _s, ...h }: { secret?: string } & Record<string, unknown>) => h;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const where = `${req.method} ${url.pathname}`;
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) => send(status, { status: 'error', timestamp: new Date().toISOString(), path: url.pathname, error: { code, message } }, headers);
      const refuse = (rule: string, status = 400) => {
        state.violations.push(`${where}: ${rule}`);
        return error(status, status === 404 ? 'NotFoundException' : 'BadRequestException', rule);
      };
      let body: Record<string, any> | undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return refuse('the body is not JSON');
      }
      const query = Object.fromEntries(url.searchParams);
      state.requests.push({ method: req.method ?? '', path: url.pathname, query, body });
      if (req.headers.authorization !== `Bearer ${apiKey}`) return error(401, 'UnauthorizedException', 'Invalid Access Token');
      if (url.pathname === '/v2/event-types') {
        if (req.headers['cal-api-version'] !== CAL_EVENT_TYPES_VERSION) state.violations.push(`${where}: cal-api-version must be ${CAL_EVENT_TYPES_VERSION} for event types`);
        if (req.method !== 'GET') return refuse('method not allowed here', 405);
        const unknownParams = Object.keys(query).filter((k) => !['username', 'eventSlug', 'usernames', 'orgSlug', 'orgId'].includes(k));
        if (unknownParams.length) return refuse(`undocumented query parameters ${unknownParams.join(', ')}`);
        if (!eventTypes.size) return error(404, 'NotFoundException', 'Event types not found');
        return send(200, { status: 'success', data: [...eventTypes.values()] });
      }
      if (url.pathname === '/v2/me' && req.method === 'GET') return send(200, { status: 'success', data: { ...me, timeFormat: 24, defaultScheduleId: 1, weekStart: 'Monday', organizationId: null } });
      const wh = /^\/v2\/webhooks(?:\/([^/]+))?$/.exec(url.pathname);
      if (wh) {
        const fault = injected.shift();
        if (fault) return error(fault.status, fault.status === 429 ? 'ThrottlerException' : 'InternalServerErrorException', 'Injected', fault.headers);
        const [, id] = wh;
        if (req.method === 'POST' && !id) {
          const extra = Object.keys(body ?? {}).filter((k) => !WEBHOOK_FIELDS.has(k));
          if (extra.length) return refuse(`fields not in CreateWebhookInputDto: ${extra.join(', ')}`);
          if (typeof body?.active !== 'boolean') return refuse('active is a required boolean');
          if (typeof body?.subscriberUrl !== 'string' || !body.subscriberUrl) return refuse('subscriberUrl is a required string');
          if (!Array.isArray(body?.triggers) || body.triggers.some((t: unknown) => !CAL_TRIGGERS.has(String(t)))) return refuse('triggers are WebhookTriggerEvents');
          for (const k of ['secret', 'payloadTemplate']) if (body?.[k] !== undefined && typeof body[k] !== 'string') return refuse(`${k} is a string`);
          const hook = { id: nextHook++, subscriberUrl: body.subscriberUrl, triggers: body.triggers, active: body.active, payloadTemplate: body.payloadTemplate ?? null, userId: me.id, ...(body.secret ? { secret: body.secret } : {}) };
          hooks.set(String(hook.id), hook);
          return send(201, { status: 'success', data: hookOut(hook) });
        }
        if (req.method === 'GET' && !id) return send(200, { status: 'success', data: [...hooks.values()].map(hookOut) });
        const hook = id ? hooks.get(id) : undefined;
        if (!id || !['GET', 'DELETE'].includes(req.method ?? '')) return refuse('method not allowed here', 405);
        if (!hook) return error(404, 'NotFoundException', `Webhook with id ${id} not found`);
        if (req.method === 'DELETE') hooks.delete(id);
        return send(200, { status: 'success', data: hookOut(hook) });
      }
      if (req.headers['cal-api-version'] !== CAL_API_VERSION) state.violations.push(`${where}: cal-api-version must be ${CAL_API_VERSION} (else an older version of the endpoint answers)`);
      const fault = injected.shift();
      if (fault) return error(fault.status, fault.status === 429 ? 'ThrottlerException' : 'InternalServerErrorException', 'Injected', fault.headers);
      const m = /^\/v2\/bookings(?:\/([^/]+)(?:\/(cancel|reschedule|mark-absent))?)?$/.exec(url.pathname);
      if (!m) return refuse('not a documented bookings path', 404);
      const [, uid, action] = m;
      if (req.method === 'GET' && !uid) return list(query);
      const b = uid ? bookings.get(uid) : undefined;
      if (req.method === 'GET' && !action) return b ? send(200, { status: 'success', data: b }) : error(404, 'NotFoundException', `Booking with uid=${uid} not found`);
      if (req.method !== 'POST' || !action) return refuse('method not allowed here', 405);
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return refuse('a JSON body needs Content-Type: application/json');
      const extra = Object.keys(body ?? {}).filter((k) => !BODY_FIELDS[action].has(k));
      if (extra.length) return refuse(`fields not in the ${action} input: ${extra.join(', ')}`);
      if (!b) return error(404, 'NotFoundException', `Booking with uid=${uid} not found`);
      const now = new Date().toISOString();
      if (action === 'cancel') {
        if (body?.cancellationReason !== undefined && typeof body.cancellationReason !== 'string') return refuse('cancellationReason is a string');
        if (b.status !== 'cancelled') Object.assign(b, { status: 'cancelled', cancellationReason: body?.cancellationReason, updatedAt: now });
        return send(200, { status: 'success', data: b });
      }
      if (action === 'reschedule') {
        if (typeof body?.start !== 'string' || !Number.isFinite(Date.parse(body.start))) return refuse('start (ISO 8601) is required');
        if (b.status === 'cancelled' || b.status === 'rejected') {
          return error(400, 'BadRequestException', b.rescheduledToUid ? `This booking has been rescheduled to ${b.rescheduledToUid}` : 'A cancelled or rejected booking cannot be rescheduled');
        }
        const start = new Date(body.start).toISOString();
        const next: CalBooking = {
          ...structuredClone(b), id: nextId++, uid: newUid(), start, end: new Date(Date.parse(start) + b.duration * 60_000).toISOString(),
          rescheduledFromUid: b.uid, rescheduledToUid: undefined, reschedulingReason: body.reschedulingReason, createdAt: now, updatedAt: now,
        };
        Object.assign(b, { status: 'cancelled', rescheduledToUid: next.uid, reschedulingReason: body.reschedulingReason, updatedAt: now });
        bookings.set(next.uid, next);
        return send(201, { status: 'success', data: next });
      }
      const marks = body?.attendees ?? [];
      if (!Array.isArray(marks) || marks.some((a: { email?: unknown; absent?: unknown }) => typeof a?.email !== 'string' || typeof a.absent !== 'boolean')) return refuse('attendees are [{ email, absent }]');
      if (body?.host !== undefined && typeof body.host !== 'boolean') return refuse('host is a boolean');
      for (const mark of marks) {
        const a = b.attendees.find((x) => x.email === mark.email);
        if (!a) return error(400, 'BadRequestException', 'Attendee not found in this booking');
        a.absent = mark.absent;
      }
      if (typeof body?.host === 'boolean') b.absentHost = body.host;
      b.updatedAt = now;
      return send(200, { status: 'success', data: b });

      function list(q: Record<string, string>) {
        const unknown = Object.keys(q).filter((k) => !LIST_PARAMS.has(k));
        if (unknown.length) return refuse(`undocumented query parameters ${unknown.join(', ')}`);
        const statuses = q.status ? q.status.split(',').map((s) => s.trim()) : undefined;
        if (statuses?.some((s) => !STATUSES.has(s))) return refuse('status is a comma list of upcoming, recurring, past, cancelled, unconfirmed');
        const take = Number(q.take ?? 100);
        const skip = Number(q.skip ?? 0);
        if (!Number.isInteger(take) || take < 1 || take > 250 || !Number.isInteger(skip) || skip < 0) return refuse('take is 1–250 and skip ≥ 0');
        for (const k of ['afterStart', 'beforeEnd']) if (q[k] && !Number.isFinite(Date.parse(q[k]))) return refuse(`${k} is an ISO 8601 date`);
        const now = Date.now();
        const all = [...bookings.values()]
          .filter((x) => (!q.afterStart || Date.parse(x.start) >= Date.parse(q.afterStart)) && (!q.beforeEnd || Date.parse(x.end) <= Date.parse(q.beforeEnd))
            && (!statuses || statuses.includes(listStatus(x, now))))
          .sort((x, y) => (Date.parse(x.start) - Date.parse(y.start)) * (q.sortStart === 'desc' ? -1 : 1));
        const data = all.slice(skip, skip + take);
        const totalPages = Math.ceil(all.length / take);
        const currentPage = Math.floor(skip / take) + 1;
        return send(200, {
          status: 'success', data,
          pagination: {
            totalItems: all.length, remainingItems: Math.max(0, all.length - (skip + take)), returnedItems: data.length, itemsPerPage: take,
            currentPage, totalPages, hasNextPage: skip + take < all.length, hasPreviousPage: skip > 0,
          },
        });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v2`;
  return state;
}
