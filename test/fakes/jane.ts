// A fake Jane Developer Platform: one clinic's API under `/api/2026-01-01` and Jane's Keycloak token endpoint
// under `/realms/jane`, enforcing what src/connectors/sources/jane/FACTS.md records:
// - `POST …/protocol/openid-connect/token`, form-encoded: `authorization_code` needs the code, the redirect_uri
//   it was issued for and the PKCE verifier whose S256 challenge was registered; `refresh_token` rotates (the
//   used refresh token dies: using it again is a rule break). Access tokens live 300 s, as reported for Jane.
// - every API call: GET with `Authorization: Bearer <live access token>` (else 401).
// - `GET /appointments` takes only the documented `field[op]` filters (date-times precise to the second, `…Z`),
//   `sort`, `page[cursor]`, `page[limit]`; answers `{ items, limit, links.after, hasNextPage, cursor }`.
//   `updated_at` is kept per appointment for the filter but, as in the documented schema, not returned.
// - `GET /appointments/{id}`, `GET /patients/{id}`; 404 with `errors[]` when unknown.
// - 100 requests per minute per endpoint: then 429 with Retry-After and X-Throttle-Match; a request to that
//   endpoint before Retry-After has passed is a rule break.
// Rule breaks are answered 4xx and recorded in `violations`.
import http from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';

export interface FakeAppointment {
  id: string;
  start_at: string;
  end_at: string;
  staff_member_id: string;
  patient_id: string;
  location_id: string;
  treatment_id: string;
  first_visit: boolean;
  cancelled_at: string | null;
  cancelled_reason: string | null;
  booked_at: string;
  no_show_at: string | null;
  arrived_at: string | null;
  archived_at: string | null;
  checked_in_at: string | null;
  state: string;
}

export interface FakePatient {
  id: string;
  first_name: string;
  last_name: string;
  email: string;
  phone_numbers: { type: string; number: string }[];
}

export const STAFF_MEMBER_ID = '8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d';
export const TREATMENT_ID = '6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e';
export const LOCATION_ID = '3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b';
export const CLIENT_ID = 'meridian-partner-app';

const sec = (instant: string) => new Date(instant).toISOString().replace('.000Z', 'Z');

export function appointmentOf(b: { id: string; patientId: string; start: string; end: string; state?: string }): FakeAppointment {
  const state = b.state ?? 'booked';
  return {
    id: b.id, start_at: sec(b.start), end_at: sec(b.end), staff_member_id: STAFF_MEMBER_ID, patient_id: b.patientId,
    location_id: LOCATION_ID, treatment_id: TREATMENT_ID, first_visit: false,
    cancelled_at: state === 'cancelled' ? sec(b.start) : null, cancelled_reason: state === 'cancelled' ? 'Other' : null,
    booked_at: '2026-02-20T22:14:08Z', no_show_at: null, arrived_at: null, archived_at: null, checked_in_at: null, state,
  };
}

export function patientOf(id: string, p: { name: string; email: string; phone?: string }): FakePatient {
  const [first, ...rest] = p.name.split(' ');
  return { id, first_name: first, last_name: rest.join(' '), email: p.email, phone_numbers: p.phone ? [{ type: 'mobile', number: p.phone }] : [] };
}

/**
 * A delivery as a third-party summary of Jane's webhook page describes it (ids only, no patient data). Jane's
 * own description of the body is not public; the connector relies on nothing but the appointment id.
 */
export function webhookBodyOf(topic: string, appointmentId: string, at: Date): Buffer {
  return Buffer.from(JSON.stringify({ event_id: randomUUID(), event_topic: topic, event_timestamp: sec(at.toISOString()), appointment_id: appointmentId, clinic_guid: 48213, version: 1 }));
}

export interface FakeJane {
  /** The API base (`…/api/2026-01-01`). */
  url: string;
  /** The Keycloak realm (`…/realms/jane`). */
  authServer: string;
  clientId: string;
  /** The live refresh token (it changes at every refresh). */
  refreshToken(): string;
  pageSize: number;
  /** Requests per minute per endpoint. */
  rateLimit: number;
  put(a: FakeAppointment, updatedAt?: Date): void;
  get(id: string): FakeAppointment | undefined;
  putPatient(p: FakePatient): void;
  /** Register a PKCE authorization: the code the redirect would carry. */
  authorize(codeChallenge: string, redirectUri: string): string;
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** End every access token: the next call with one gets 401. */
  expireAccessTokens(): void;
  refreshes(): number;
  requests: { method: string; path: string; query: Record<string, string> }[];
  violations: string[];
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
}

const FIELDS = new Set(['public_id', 'start_at', 'end_at', 'patient_id', 'staff_member_id', 'location_id', 'treatment_id', 'created_at', 'updated_at']);
const DATE_FIELDS = new Set(['start_at', 'end_at', 'created_at', 'updated_at']);
const OPS = new Set(['eq', 'gt', 'gte', 'lt', 'lte']);
const SORTS = new Set(['start_at', 'end_at', 'booked_at', 'created_at', 'updated_at']);
const SECOND = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const API = '/api/2026-01-01';

export async function startFakeJane(): Promise<FakeJane> {
  const appointments = new Map<string, { a: FakeAppointment; updatedAt: number }>();
  const patients = new Map<string, FakePatient>();
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const access = new Set<string>();
  const usedRefresh = new Set<string>();
  let liveRefresh = randomBytes(24).toString('base64url');
  let refreshCount = 0;
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const windows = new Map<string, { start: number; count: number }>();
  const blockedUntil = new Map<string, number>();

  const state: FakeJane = {
    url: '', authServer: '', clientId: CLIENT_ID, pageSize: 50, rateLimit: 100, requests: [], violations: [],
    refreshToken: () => liveRefresh,
    put: (a, updatedAt = new Date()) => { appointments.set(a.id, { a: structuredClone(a), updatedAt: updatedAt.getTime() }); },
    get: (id) => appointments.get(id)?.a,
    putPatient: (p) => { patients.set(p.id, structuredClone(p)); },
    authorize: (challenge, redirectUri) => {
      const code = randomBytes(16).toString('hex');
      codes.set(code, { challenge, redirectUri });
      return code;
    },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    expireAccessTokens: () => access.clear(),
    refreshes: () => refreshCount,
    acceptToken: (t) => { access.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const issue = () => {
    const token = `eyJ.${randomBytes(24).toString('base64url')}`;
    access.add(token);
    liveRefresh = randomBytes(24).toString('base64url');
    return { access_token: token, expires_in: 300, refresh_expires_in: 1800, refresh_token: liveRefresh, token_type: 'Bearer', scope: 'appointments:read patients:read' };
  };

  function token(form: URLSearchParams, contentType: string | undefined, send: (s: number, b: unknown) => void, bad: (s: number, m: string) => void) {
    if (!contentType?.startsWith('application/x-www-form-urlencoded')) return bad(400, 'the token request must be form-encoded');
    if (form.get('client_id') !== CLIENT_ID) return send(401, { error: 'invalid_client' });
    const grant = form.get('grant_type');
    if (grant === 'refresh_token') {
      const rt = form.get('refresh_token') ?? '';
      if (usedRefresh.has(rt)) return bad(400, 'a rotated refresh token was used again');
      if (rt !== liveRefresh) return send(400, { error: 'invalid_grant', error_description: 'Invalid refresh token' });
      usedRefresh.add(rt);
      refreshCount++;
      return send(200, issue());
    }
    if (grant === 'authorization_code') {
      const c = codes.get(form.get('code') ?? '');
      if (!c) return send(400, { error: 'invalid_grant', error_description: 'Code not valid' });
      codes.delete(form.get('code')!);
      if (form.get('redirect_uri') !== c.redirectUri) return bad(400, 'redirect_uri differs from the authorization request');
      const verifier = form.get('code_verifier');
      if (!verifier) return bad(400, 'PKCE is required: no code_verifier');
      if (createHash('sha256').update(verifier).digest('base64url') !== c.challenge) return send(400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
      return send(200, issue());
    }
    return bad(400, `unsupported grant_type ${grant}`);
  }

  function listAppointments(query: Record<string, string>, send: (s: number, b: unknown) => void, bad: (s: number, m: string) => void) {
    const filters: { field: string; op: string; value: string }[] = [];
    for (const [k, v] of Object.entries(query)) {
      if (k === 'sort' || k === 'page[cursor]' || k === 'page[limit]') continue;
      const m = /^([a-z_]+)\[([a-z]+)\]$/.exec(k);
      if (!m || !FIELDS.has(m[1]) || !OPS.has(m[2])) return bad(400, `undocumented parameter ${k}`);
      if (DATE_FIELDS.has(m[1]) && !SECOND.test(v)) return bad(400, `${k} must be an ISO-8601 date-time precise to the second`);
      filters.push({ field: m[1], op: m[2], value: v });
    }
    const sort = query.sort ?? 'start_at';
    if (!SORTS.has(sort.replace(/^-/, ''))) return bad(400, `cannot sort by ${sort}`);
    const valueOf = (x: { a: FakeAppointment; updatedAt: number }, f: string) => (f === 'updated_at' ? x.updatedAt : DATE_FIELDS.has(f) ? Date.parse((x.a as unknown as Record<string, string>)[f]) : (x.a as unknown as Record<string, string>)[f]);
    const cmp = (a: number | string, b: number | string, op: string) => (op === 'eq' ? a === b : op === 'gt' ? a > b : op === 'gte' ? a >= b : op === 'lt' ? a < b : a <= b);
    const field = sort.replace(/^-/, '');
    const rows = [...appointments.values()]
      .filter((x) => filters.every((f) => cmp(valueOf(x, f.field), DATE_FIELDS.has(f.field) ? Date.parse(f.value) : f.value, f.op)))
      .sort((x, y) => (valueOf(x, field) < valueOf(y, field) ? -1 : valueOf(x, field) > valueOf(y, field) ? 1 : x.a.id.localeCompare(y.a.id)) * (sort.startsWith('-') ? -1 : 1));
    const limit = Math.min(Number(query['page[limit]'] ?? state.pageSize), state.pageSize);
    const offset = query['page[cursor]'] ? Number(JSON.parse(Buffer.from(query['page[cursor]'], 'base64').toString()).offset) : 0;
    const page = rows.slice(offset, offset + limit).map((x) => x.a);
    const more = offset + limit < rows.length;
    const cursor = more ? Buffer.from(JSON.stringify({ offset: offset + limit })).toString('base64') : null;
    return send(200, { items: page, limit, links: { after: cursor ? `${API}/appointments?page[cursor]=${cursor}&page[limit]=${limit}` : null }, hasNextPage: more, cursor });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const query = Object.fromEntries(url.searchParams);
      state.requests.push({ method: req.method ?? '', path: url.pathname, query });
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const bad = (status: number, msg: string) => {
        state.violations.push(`${req.method} ${url.pathname}: ${msg}`);
        return send(status, { errors: [{ message: msg }] });
      };

      if (url.pathname === '/realms/jane/protocol/openid-connect/token') {
        if (req.method !== 'POST') return bad(405, 'the token endpoint takes POST');
        return token(new URLSearchParams(Buffer.concat(chunks).toString('utf8')), req.headers['content-type'], send, bad);
      }
      if (!url.pathname.startsWith(`${API}/`)) return bad(404, `not under ${API}`);
      if (req.method !== 'GET') return bad(405, 'the API is read-only: GET');
      const path = url.pathname.slice(API.length);
      const endpoint = path.split('/')[1];
      const now = Date.now();
      if (now < (blockedUntil.get(endpoint) ?? 0)) state.violations.push(`GET ${url.pathname}: sent before the Retry-After of a 429 had passed`);
      const throttle = (retryAfterS: number, headers: Record<string, string> = {}) => {
        blockedUntil.set(endpoint, now + retryAfterS * 1000);
        return send(429, { object: 'error', code: 'rate_limited', message: 'Rate limit exceeded' }, { 'retry-after': String(retryAfterS), 'x-throttle-match': 'marketing_api/ip/clinic', ...headers });
      };
      const failure = injected.shift();
      if (failure?.status === 429) return throttle(Number(failure.headers['retry-after'] ?? 60), failure.headers);
      if (failure) return send(failure.status, { errors: [{ message: 'injected' }] }, failure.headers);
      const w = windows.get(endpoint);
      if (!w || now - w.start >= 60_000) windows.set(endpoint, { start: now, count: 1 });
      else if (++w.count > state.rateLimit) return throttle(Math.ceil((w.start + 60_000 - now) / 1000));

      const auth = req.headers.authorization;
      if (!auth?.startsWith('Bearer ')) return bad(401, 'no Bearer token');
      if (!access.has(auth.slice(7))) return send(401, { errors: [{ message: 'Unauthorized' }] });

      if (path === '/appointments') return listAppointments(query, send, bad);
      const one = /^\/appointments\/([^/]+)$/.exec(path);
      if (one) {
        const a = appointments.get(decodeURIComponent(one[1]))?.a;
        return a ? send(200, a) : send(404, { errors: [{ message: 'The appointment was not found' }] });
      }
      const patient = /^\/patients\/([^/]+)$/.exec(path);
      if (patient) {
        const p = patients.get(decodeURIComponent(patient[1]));
        return p ? send(200, p) : send(404, { errors: [{ message: 'The patient was not found' }] });
      }
      return bad(404, `no such endpoint ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  state.url = `${origin}${API}`;
  state.authServer = `${origin}/realms/jane`;
  return state;
}
