// A fake YouCanBookMe API v1 (src/connectors/sources/youcanbookme/FACTS.md): Basic auth with account id and
// API key, `GET /v1/bookings/{id}`, the bookings query `GET /v1/accounts/{accountId}/bookings/query` (`after`
// required, `maxResults` 10–500, `fromBookingId` cursor) and `PATCH /v1/bookings/{id}` (JSON, partial update).
// Bookings are held the way YCBM answers them: `startsAt`/`endsAt` wall times in the booking's `timeZone`.
// Rule breaks (unknown fields, missing parameters, wrong methods, unknown PATCH keys) are answered 4xx and
// recorded in `violations`; `throttle(n)` answers the next n requests 429 with a Retry-After.
//
//   const y = await startFakeYcbm();  y.url (base, ends in /v1), y.accountId, y.apiKey,
//   y.put(booking), y.get(id), y.requests, y.violations, y.throttle(n), y.close()
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { localToUtc, utcToLocal } from '../../src/domain/time.ts';

export interface YcbmAnswer { code: string; string: string }
export interface YcbmRecord {
  id: string;
  ref: string;
  accountId: string;
  profileId: string;
  teamMemberId?: string;
  appointmentTypesIds?: string[];
  createdAt: string;
  updatedAt: string;
  rescheduledAt?: string;
  cancelledAt?: string;
  noShowAt?: string;
  startsAt: string;
  endsAt: string;
  timeZone: string;
  cancelled: boolean;
  noShow: boolean;
  tentative: 'NOT_USED' | 'UNDECIDED' | 'REJECTED' | 'ACCEPTED';
  title: string;
  answers: YcbmAnswer[];
}

export interface FakeYcbm {
  url: string;
  accountId: string;
  apiKey: string;
  /** Hold a booking as YCBM would (stamps `updatedAt`). */
  put(b: YcbmRecord): void;
  get(id: string): YcbmRecord | undefined;
  requests: { method: string; path: string }[];
  violations: string[];
  throttle(n: number, retryAfterSeconds?: number): void;
  close(): Promise<void>;
}

/** Fields of the booking model (YCBM's booking schema as read by the clients in FACTS.md). */
const KNOWN_FIELDS = new Set([
  'id', 'ref', 'title', 'accountId', 'profileId', 'teamMemberId', 'teamMember', 'appointmentTypesIds', 'appointmentTypes',
  'createdAt', 'updatedAt', 'rescheduledAt', 'cancelledAt', 'noShowAt', 'acceptedAt', 'rejectedAt', 'startsAt', 'endsAt',
  'timeZone', 'locale', 'cancelled', 'noShow', 'tentative', 'cancellationReason', 'cancelledBy', 'rescheduledBy', 'units',
  'answers', 'answers.code', 'answers.string',
]);
const PATCHABLE = new Set(['title', 'startsAt', 'endsAt', 'timeZone', 'cancelled', 'noShow', 'cancellationReason', 'locale', 'units']);
const WALL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;
const OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** A booking record from UTC instants, in YCBM's own shape. */
export function ycbmRecord(o: {
  id: string; start: string; end: string; timeZone: string; patient: { name: string; email?: string; phone?: string };
  teamMemberId?: string; profileId?: string; cancelled?: boolean; accountId?: string;
}): YcbmRecord {
  const [first, ...rest] = o.patient.name.split(' ');
  const answers: YcbmAnswer[] = [{ code: 'FNAME', string: first }, { code: 'LNAME', string: rest.join(' ') }];
  if (o.patient.email) answers.push({ code: 'EMAIL', string: o.patient.email });
  if (o.patient.phone) answers.push({ code: 'PHONE', string: o.patient.phone });
  return {
    id: o.id, ref: o.id.slice(0, 8).toUpperCase(), accountId: o.accountId ?? 'acct', profileId: o.profileId ?? 'profile-1',
    ...(o.teamMemberId ? { teamMemberId: o.teamMemberId } : {}),
    createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
    startsAt: wall(o.start, o.timeZone), endsAt: wall(o.end, o.timeZone), timeZone: o.timeZone,
    cancelled: Boolean(o.cancelled), noShow: false, tentative: 'NOT_USED', title: 'Consultation', answers,
  };
}

export function wall(instant: string, zone: string): string {
  return utcToLocal(instant, zone).toPlainDateTime().toString({ smallestUnit: 'second' });
}

/** A record's start/end as UTC instants. */
export function instantsOf(r: YcbmRecord): { start: string; end: string } {
  return { start: localToUtc(r.startsAt, r.timeZone), end: localToUtc(r.endsAt, r.timeZone) };
}

function project(r: YcbmRecord, fields: string[]): Record<string, unknown> {
  const top = new Set(fields.map((f) => f.split('.')[0]));
  return Object.fromEntries(Object.entries(r).filter(([k]) => top.has(k)));
}

export async function startFakeYcbm(): Promise<FakeYcbm> {
  const accountId = randomUUID();
  const apiKey = `ak_${randomBytes(20).toString('hex')}`;
  const bookings = new Map<string, YcbmRecord>();
  const throttled: number[] = [];
  let lastStamp = 0;
  /** Strictly increasing change stamps, as a database clock would give. */
  const stamp = () => new Date((lastStamp = Math.max(Date.now(), lastStamp + 1))).toISOString();
  const state: FakeYcbm = {
    url: '', accountId, apiKey, requests: [], violations: [],
    put: (b) => { bookings.set(b.id, { ...b, accountId, updatedAt: stamp() }); },
    get: (id) => bookings.get(id),
    throttle: (n, secs = 1) => { for (let i = 0; i < n; i++) throttled.push(secs); },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      state.requests.push({ method, path: url.pathname });
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const bad = (status: number, msg: string) => {
        state.violations.push(`${method} ${url.pathname}: ${msg}`);
        return send(status, { message: msg });
      };
      if (throttled.length) return send(429, { message: 'Too many requests' }, { 'retry-after': String(throttled.shift()) });
      if (req.headers.authorization !== `Basic ${Buffer.from(`${accountId}:${apiKey}`).toString('base64')}`) {
        return bad(401, 'no valid Basic authorization (account id : API key)');
      }
      const fields = (url.searchParams.get('fields') ?? '').split(',').filter(Boolean);
      const unknown = fields.filter((f) => !KNOWN_FIELDS.has(f));
      if (unknown.length) return bad(400, `unknown fields ${unknown.join(',')}`);
      const shown = (r: YcbmRecord) => (fields.length ? project(r, fields) : project(r, ['id', 'title', 'accountId', 'profileId', 'createdAt', 'startsAt', 'endsAt', 'tentative', 'timeZone', 'cancelled']));

      const one = /^\/v1\/bookings\/([^/]+)$/.exec(url.pathname);
      if (one) {
        const b = bookings.get(decodeURIComponent(one[1]));
        if (method === 'GET') return b ? send(200, shown(b)) : send(404, { message: 'Booking not found' });
        if (method !== 'PATCH') return bad(405, 'bookings/{id} takes GET or PATCH');
        if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return bad(415, 'PATCH needs a JSON body');
        let patch: Record<string, unknown>;
        try {
          patch = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return bad(400, 'the body is not JSON');
        }
        const extra = Object.keys(patch).filter((k) => !PATCHABLE.has(k));
        if (extra.length) return bad(400, `not patchable: ${extra.join(',')}`);
        if (!b) return send(404, { message: 'Booking not found' });
        return applyPatch(b, patch);
      }

      const query = /^\/v1\/accounts\/([^/]+)\/bookings\/query$/.exec(url.pathname);
      if (query) {
        if (method !== 'GET') return bad(405, 'the bookings query is a GET');
        if (decodeURIComponent(query[1]) !== accountId) return bad(403, 'another account');
        const after = url.searchParams.get('after');
        if (!after || !OFFSET.test(after)) return bad(400, '`after` (an ISO 8601 instant) is required');
        const before = url.searchParams.get('before');
        if (before && !OFFSET.test(before)) return bad(400, '`before` is not an ISO 8601 instant');
        const max = Number(url.searchParams.get('maxResults') ?? 50);
        if (!Number.isInteger(max) || max < 10 || max > 500) return bad(400, 'maxResults is 10-500');
        const rows = [...bookings.values()]
          .map((r) => ({ r, at: Date.parse(instantsOf(r).start) }))
          .filter(({ at }) => at > Date.parse(after) && (!before || at < Date.parse(before)))
          .sort((a, b) => a.at - b.at || a.r.id.localeCompare(b.r.id))
          .map(({ r }) => r);
        const from = url.searchParams.get('fromBookingId');
        const startAt = from ? rows.findIndex((r) => r.id === from) + 1 : 0;
        if (from && startAt === 0) return bad(400, 'fromBookingId is not a booking of this query');
        return send(200, rows.slice(startAt, startAt + max).map(shown));
      }
      return bad(404, 'no such route');

      function applyPatch(b: YcbmRecord, patch: Record<string, unknown>) {
        const next = { ...b };
        if (patch.startsAt !== undefined || patch.endsAt !== undefined) {
          const zone = typeof patch.timeZone === 'string' ? patch.timeZone : b.timeZone;
          const ok = (v: unknown) => typeof v === 'string' && (WALL.test(v) || OFFSET.test(v));
          if (!ok(patch.startsAt) || !ok(patch.endsAt)) return bad(400, 'a move needs both startsAt and endsAt as date-times');
          const toWall = (v: string) => (WALL.test(v) ? v : wall(new Date(v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')).toISOString(), zone));
          next.startsAt = toWall(patch.startsAt as string);
          next.endsAt = toWall(patch.endsAt as string);
          next.timeZone = zone;
          if (Date.parse(localToUtc(next.endsAt, zone)) <= Date.parse(localToUtc(next.startsAt, zone))) return bad(400, 'endsAt is not after startsAt');
          next.rescheduledAt = stamp();
        }
        if (patch.cancelled === true && !b.cancelled) next.cancelledAt = stamp();
        if (typeof patch.cancelled === 'boolean') next.cancelled = patch.cancelled;
        if (patch.noShow === true && !b.noShow) next.noShowAt = stamp();
        if (typeof patch.noShow === 'boolean') next.noShow = patch.noShow;
        next.updatedAt = stamp();
        bookings.set(b.id, next);
        return send(200, shown(next));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
  return state;
}
