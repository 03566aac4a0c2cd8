// A fake Square Bookings API checked against Square's official OpenAPI (test/fixtures/specs/square-bookings):
// the method and path must be a documented operation, query parameters documented for it, request bodies valid
// against the operation's schema made strict (unknown fields refused, read-only Booking fields refused), and the
// fake's own answers valid against the documented response schemas. `version` is enforced like Square: an update
// or cancel with a stale booking version answers 409 VERSION_MISMATCH; a repeated idempotency key answers what
// it answered first. ListBookings refuses a start_at range over 31 days (400 INVALID_TIME_RANGE, a violation).
// `GET /v2/customers/{id}` (Customers API, outside the trimmed spec) serves the patient.
//
//   const s = await startFakeSquare();
//   s.url   s.accessToken   s.put(booking) (a new version when it changes)   s.booking(id)   s.customer(c)
//   s.requests   s.violations   s.fail(n, status, headers?)   s.validateEvent(name, body)   s.close()
//
// Outside the trimmed spec (which has only the Bookings API), written from Square's documented shapes, not a
// schema: the Webhook Subscriptions API (`POST /v2/webhooks/subscriptions` { idempotency_key ≤ 45 chars,
// subscription { name?, enabled?, event_types, notification_url (HTTPS), api_version? } }, `GET` / `DELETE
// /v2/webhooks/subscriptions/{id}`; the WebhookSubscription object: id, name, enabled, event_types,
// notification_url, api_version, signature_key, created_at, updated_at — developer.squareup.com/reference/square/
// objects/WebhookSubscription), answered only to the APPLICATION's personal access token (`applicationToken`): a
// seller's OAuth token is refused (401; Square documents the refusal, not its status), as connect.md §4 asks.
// Also `POST /v2/team-members/search`, `GET /v2/catalog/list?types=…` and `GET /v2/locations` for the directory.
//   s.applicationToken   s.webhookSubscriptions()   s.disableSubscription(id)   s.signedDelivery(id, body)
//   s.teamMember(m)   s.catalogObject(o)   s.location(l)
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const spec = JSON.parse(readFileSync(new URL('../fixtures/specs/square-bookings/square-bookings.openapi.json', import.meta.url), 'utf8'));
export const SQUARE_VERSION = /^\d{4}-\d{2}-\d{2}$/;

/** The README's rewrite (`nullable` → null types); `strict` also closes objects that declare properties. */
function rewrite(s: unknown, strict: boolean): unknown {
  if (Array.isArray(s)) return s.map((x) => rewrite(x, strict));
  if (!s || typeof s !== 'object') return s;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (k !== 'nullable') o[k] = rewrite(v, strict);
  if ((s as { nullable?: boolean }).nullable) {
    if (typeof o.type === 'string') o.type = [o.type, 'null'];
    else if (o.$ref) return { anyOf: [o, { type: 'null' }] };
  }
  if (strict && o.type === 'object' && o.properties && o.additionalProperties === undefined) o.additionalProperties = false;
  return o;
}

const ajv = new Ajv2020Module.default({ strict: false, allErrors: true });
addFormatsModule.default(ajv);
ajv.addSchema({ $id: 'sq', components: rewrite(spec.components, false) });
ajv.addSchema({ $id: 'sq-strict', components: rewrite(spec.components, true) });
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
function validator(ref: string, strict: boolean) {
  const key = `${strict}:${ref}`;
  if (!compiled.has(key)) compiled.set(key, ajv.compile({ $ref: `${strict ? 'sq-strict' : 'sq'}#/components/schemas/${ref}` }));
  return compiled.get(key)!;
}
/** Schema errors of `body` against `ref`, or '' when it is valid. */
export function squareSchemaErrors(ref: string, body: unknown, strict = false): string {
  const v = validator(ref, strict);
  return v(body) ? '' : ajv.errorsText(v.errors);
}
const READ_ONLY = Object.entries(spec.components.schemas.Booking.properties as Record<string, { readOnly?: boolean }>).filter(([, p]) => p.readOnly).map(([k]) => k);

interface Op { method: string; re: RegExp; template: string; params: Set<string>; bodyRef?: string; answerRef?: string }
const ref = (x: { $ref?: string } | undefined) => x?.$ref?.split('/').pop();
const OPS: Op[] = Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({
  method: method.toUpperCase(), template: path,
  re: new RegExp(`^${path.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
  params: new Set<string>((op.parameters ?? []).filter((p: { in: string }) => p.in === 'query').map((p: { name: string }) => p.name)),
  bodyRef: ref(op.requestBody?.content?.['application/json']?.schema),
  answerRef: ref((Object.values(op.responses ?? {})[0] as any)?.content?.['application/json']?.schema),
})));

export type SquareBooking = Record<string, any> & { id: string; version: number; start_at: string; status: string };

export interface FakeSquare {
  url: string;
  accessToken: string;
  /** Hold this booking state; without an explicit `version` a change bumps `version` and `updated_at`, as Square does. */
  put(b: Omit<SquareBooking, 'version'> & { version?: number }): SquareBooking;
  booking(id: string): SquareBooking | undefined;
  customer(c: Record<string, unknown> & { id: string }): void;
  requests: { method: string; path: string; body?: any }[];
  violations: string[];
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** Check a webhook body we built against the booking.created / booking.updated event schema. */
  validateEvent(type: 'booking.created' | 'booking.updated', body: unknown): void;
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
  /** The application's personal access token (the only token the Webhook Subscriptions API takes). */
  applicationToken: string;
  webhookSubscriptions(): Record<string, any>[];
  disableSubscription(id: string): void;
  /** A delivery as Square sends it to that subscription: signed over its notification URL + the body. */
  signedDelivery(id: string, body: string): { url: string; headers: Record<string, string> };
  teamMember(m: Record<string, unknown> & { id: string }): void;
  catalogObject(o: Record<string, unknown> & { id: string }): void;
  location(l: Record<string, unknown> & { id: string }): void;
}

const errors = (category: string, code: string, detail: string) => ({ errors: [{ category, code, detail }] });
/** ListBookings: start_at_max at most 31 days after start_at_min (see the check in the handler). */
export const MAX_LIST_RANGE_MS = 31 * 86_400_000;

const WEBHOOK_EVENT_TYPES = new Set(['booking.created', 'booking.updated', 'customer.created', 'customer.updated', 'payment.created', 'payment.updated']);
const SUBSCRIPTION_FIELDS = new Set(['name', 'enabled', 'event_types', 'notification_url', 'api_version']);

export async function startFakeSquare(o: { accessToken?: string; applicationToken?: string } = {}): Promise<FakeSquare> {
  const accessToken = o.accessToken ?? 'sq-fake-token';
  const accepted = new Set<string>();
  const applicationToken = o.applicationToken ?? 'sq-fake-application-pat';
  const hooks = new Map<string, Record<string, any>>();
  const team = new Map<string, Record<string, unknown>>();
  const catalog = new Map<string, Record<string, unknown>>();
  const locations = new Map<string, Record<string, unknown>>();
  const bookings = new Map<string, SquareBooking>();
  const customers = new Map<string, Record<string, unknown>>();
  const idempotent = new Map<string, { status: number; body: unknown }>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const stamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const store = (next: SquareBooking) => { bookings.set(next.id, next); return structuredClone(next); };
  const state: FakeSquare = {
    url: '', accessToken, requests: [], violations: [],
    put: (b) => {
      const prev = bookings.get(b.id);
      const merged = { ...(prev ?? {}), ...b } as SquareBooking;
      if (b.version !== undefined) return store(merged); // a sample with its own version
      if (prev && JSON.stringify(merged) === JSON.stringify(prev)) return structuredClone(prev);
      const at = stamp();
      return store({ ...merged, version: prev ? prev.version + 1 : 0, created_at: prev?.created_at ?? at, updated_at: at });
    },
    booking: (id) => structuredClone(bookings.get(id)),
    customer: (c) => { customers.set(c.id, structuredClone(c)); },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    validateEvent: (type, body) => {
      const problems = squareSchemaErrors(type === 'booking.created' ? 'BookingCreatedEvent' : 'BookingUpdatedEvent', body);
      if (problems) state.violations.push(`webhook ${type}: ${problems}`);
    },
    acceptToken: (t) => { accepted.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
    applicationToken,
    webhookSubscriptions: () => [...hooks.values()].map((h) => structuredClone(h)),
    disableSubscription: (id) => { const h = hooks.get(id); if (h) Object.assign(h, { enabled: false, updated_at: stamp() }); },
    signedDelivery: (id, body) => {
      const h = hooks.get(id);
      if (!h) throw new Error(`no subscription ${id}`);
      return { url: h.notification_url, headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': createHmac('sha256', h.signature_key).update(h.notification_url + body).digest('base64') } };
    },
    teamMember: (m) => { team.set(m.id, structuredClone(m)); },
    catalogObject: (c) => { catalog.set(c.id, structuredClone(c)); },
    location: (l) => { locations.set(l.id, structuredClone(l)); },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const where = `${req.method} ${url.pathname}`;
      const send = (status: number, body: unknown, answerRef?: string, headers: Record<string, string> = {}) => {
        // The fake's own answers must be what Square documents (VERSION_MISMATCH is Square's code for a stale
        // version but is missing from this spec's ErrorCode enum, so that one answer is not checked).
        const problems = answerRef ? squareSchemaErrors(answerRef, body) : '';
        if (problems) state.violations.push(`${where}: the fake's own answer breaks ${answerRef}: ${problems}`);
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      const refuse = (rule: string, status = 400) => {
        state.violations.push(`${where}: ${rule}`);
        return send(status, errors('INVALID_REQUEST_ERROR', status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', rule.slice(0, 200)));
      };
      /** A time range Square refuses: 400 INVALID_REQUEST_ERROR / INVALID_TIME_RANGE (an ErrorCode of the spec), naming the field. */
      const refuseRange = (rule: string, field: string) => {
        state.violations.push(`${where}: ${rule}`);
        return send(400, { errors: [{ category: 'INVALID_REQUEST_ERROR', code: 'INVALID_TIME_RANGE', detail: rule, field }] });
      };
      let body: any;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return refuse('the body is not JSON');
      }
      function webhooks(b: any) {
        if (req.headers.authorization !== `Bearer ${applicationToken}`) {
          const seller = req.headers.authorization === `Bearer ${accessToken}`;
          return send(401, errors('AUTHENTICATION_ERROR', 'UNAUTHORIZED', seller
            ? 'OAuth access tokens cannot be used with the Webhook Subscriptions API; use the application\'s personal access token.'
            : 'This request could not be authorized.'));
        }
        if (!SQUARE_VERSION.test(String(req.headers['square-version'] ?? ''))) state.violations.push(`${where}: no Square-Version: YYYY-MM-DD header`);
        const fault = injected.shift();
        if (fault) return send(fault.status, errors('API_ERROR', 'INTERNAL_SERVER_ERROR', 'Injected'), undefined, fault.headers);
        const id = /^\/v2\/webhooks\/subscriptions\/([^/]+)$/.exec(url.pathname)?.[1];
        if (req.method === 'POST' && url.pathname === '/v2/webhooks/subscriptions') {
          const extra = Object.keys(b ?? {}).filter((k) => k !== 'idempotency_key' && k !== 'subscription');
          if (extra.length) return refuse(`CreateWebhookSubscriptionRequest has no ${extra.join(', ')}`);
          if (typeof b?.idempotency_key !== 'string' || b.idempotency_key.length < 1 || b.idempotency_key.length > 45) return refuse('idempotency_key is a string of 1–45 characters');
          const sub = b.subscription;
          if (!sub || typeof sub !== 'object') return refuse('subscription is required');
          const bad = Object.keys(sub).filter((k) => !SUBSCRIPTION_FIELDS.has(k));
          if (bad.length) return refuse(`WebhookSubscription fields not writable or unknown: ${bad.join(', ')}`);
          if (!Array.isArray(sub.event_types) || !sub.event_types.length || sub.event_types.some((e: unknown) => !WEBHOOK_EVENT_TYPES.has(String(e)))) return refuse('event_types are known event types');
          if (typeof sub.notification_url !== 'string' || !sub.notification_url.startsWith('https://')) return refuse('notification_url must be an HTTPS URL');
          if (sub.api_version !== undefined && !SQUARE_VERSION.test(String(sub.api_version))) return refuse('api_version is YYYY-MM-DD');
          if (sub.name !== undefined && (typeof sub.name !== 'string' || sub.name.length > 64)) return refuse('name is at most 64 characters');
          const seen = idempotent.get(`wh:${b.idempotency_key}`);
          if (seen) return send(seen.status, seen.body);
          const at = stamp();
          const hook = {
            id: `wbhk_${randomBytes(16).toString('hex')}`, name: sub.name ?? '', enabled: sub.enabled ?? true, event_types: sub.event_types,
            notification_url: sub.notification_url, api_version: sub.api_version ?? '2025-08-20', signature_key: randomBytes(16).toString('base64url'), created_at: at, updated_at: at,
          };
          hooks.set(hook.id, hook);
          const answer = { subscription: hook };
          idempotent.set(`wh:${b.idempotency_key}`, { status: 200, body: answer });
          return send(200, answer);
        }
        if (id && (req.method === 'GET' || req.method === 'DELETE')) {
          const hook = hooks.get(decodeURIComponent(id));
          if (!hook) return send(404, errors('INVALID_REQUEST_ERROR', 'NOT_FOUND', 'Subscription not found.'));
          if (req.method === 'DELETE') {
            hooks.delete(hook.id);
            return send(200, {});
          }
          return send(200, { subscription: hook });
        }
        return refuse('not an operation of the Webhook Subscriptions API used here', 404);
      }
      state.requests.push({ method: req.method ?? '', path: url.pathname + url.search, body });
      if (url.pathname.startsWith('/v2/webhooks/')) return webhooks(body);
      if (req.headers.authorization !== `Bearer ${accessToken}` && !accepted.has(req.headers.authorization?.slice(7) ?? '')) return send(401, errors('AUTHENTICATION_ERROR', 'UNAUTHORIZED', 'This request could not be authorized.'), 'RetrieveBookingResponse');
      if (!SQUARE_VERSION.test(String(req.headers['square-version'] ?? ''))) state.violations.push(`${where}: no Square-Version: YYYY-MM-DD header`);
      const customerId = /^\/v2\/customers\/([^/]+)$/.exec(url.pathname)?.[1];
      if (customerId && req.method === 'GET') {
        const c = customers.get(decodeURIComponent(customerId));
        return c ? send(200, { customer: c }) : send(404, errors('INVALID_REQUEST_ERROR', 'NOT_FOUND', 'Customer not found.'));
      }
      if (req.method === 'POST' && url.pathname === '/v2/team-members/search') {
        const extra = Object.keys(body ?? {}).filter((k) => !['query', 'limit', 'cursor'].includes(k));
        if (extra.length) return refuse(`SearchTeamMembersRequest has no ${extra.join(', ')}`);
        const limit = body?.limit ?? 100;
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) return refuse('limit is 1–200');
        const status = body?.query?.filter?.status;
        const all = [...team.values()].filter((m) => !status || m.status === status);
        const from = Number(body?.cursor ?? 0);
        return send(200, { team_members: all.slice(from, from + limit), ...(from + limit < all.length ? { cursor: String(from + limit) } : {}) });
      }
      if (req.method === 'GET' && url.pathname === '/v2/catalog/list') {
        const unknownParams = [...url.searchParams.keys()].filter((k) => !['cursor', 'types', 'catalog_version'].includes(k));
        if (unknownParams.length) return refuse(`ListCatalog has no ${unknownParams.join(', ')}`);
        const types = url.searchParams.get('types')?.split(',');
        const all = [...catalog.values()].filter((c) => !types || types.includes(String(c.type)));
        const from = Number(url.searchParams.get('cursor') ?? 0);
        const pageSize = 2; // small, so paging is exercised
        return send(200, { objects: all.slice(from, from + pageSize), ...(from + pageSize < all.length ? { cursor: String(from + pageSize) } : {}) });
      }
      if (req.method === 'GET' && url.pathname === '/v2/locations') return send(200, { locations: [...locations.values()] });
      const op = OPS.find((x) => x.method === req.method && x.re.test(url.pathname));
      if (!op) return refuse('not an operation of the Bookings API', 404);
      const unknown = [...url.searchParams.keys()].filter((k) => !op.params.has(k));
      if (unknown.length) return refuse(`query parameters not documented for ${op.template}: ${unknown.join(', ')}`);
      if (op.bodyRef) {
        const problems = squareSchemaErrors(op.bodyRef, body ?? {}, true);
        if (problems) return refuse(`${op.bodyRef}: ${problems}`);
        const readOnly = READ_ONLY.filter((k) => body?.booking && k in body.booking);
        if (readOnly.length) return refuse(`read-only Booking fields sent: ${readOnly.join(', ')}`);
      }
      const fault = injected.shift();
      if (fault) return send(fault.status, errors(fault.status === 429 ? 'RATE_LIMIT_ERROR' : 'API_ERROR', fault.status === 429 ? 'RATE_LIMITED' : 'INTERNAL_SERVER_ERROR', 'Injected'), op.answerRef, fault.headers);
      const id = decodeURIComponent(op.re.exec(url.pathname)?.[1] ?? '');
      if (req.method === 'GET' && op.template === '/v2/bookings') {
        const min = Date.parse(url.searchParams.get('start_at_min') ?? new Date().toISOString());
        const max = url.searchParams.get('start_at_max') ? Date.parse(url.searchParams.get('start_at_max')!) : min + MAX_LIST_RANGE_MS;
        // The range Square serves in one ListBookings call is at most 31 days: the spec's start_at_max defaults to
        // "31 days after start_at_min" (square-bookings.openapi.json, ListBookings parameters), and Square answers a
        // longer range with 400 (Square's Bookings API limits: searches and listings span at most 31 days; see
        // developer.squareup.com/forums/t/unable-to-schedule-past-32-days/21198, reviewed by Square staff).
        if (!Number.isFinite(min) || !Number.isFinite(max)) return refuse('start_at_min and start_at_max are RFC 3339 timestamps');
        if (max < min) return refuseRange('start_at_max is before start_at_min', 'start_at_max');
        if (max - min > MAX_LIST_RANGE_MS) return refuseRange('The time range between start_at_min and start_at_max must not exceed 31 days.', 'start_at_max');
        const limit = Number(url.searchParams.get('limit') ?? 100);
        const from = Number(url.searchParams.get('cursor') ?? 0);
        const all = [...bookings.values()].filter((b) => Date.parse(b.start_at) >= min && Date.parse(b.start_at) <= max);
        const page = all.slice(from, from + limit);
        return send(200, { bookings: page, ...(from + limit < all.length ? { cursor: String(from + limit) } : {}), errors: [] }, op.answerRef);
      }
      if (op.template === '/v2/bookings/availability/search' || (req.method === 'POST' && op.template === '/v2/bookings')) return refuse('Meridian never searches availability or creates bookings');
      const current = bookings.get(id);
      if (!current) return send(404, errors('INVALID_REQUEST_ERROR', 'NOT_FOUND', 'Booking not found.'), op.answerRef);
      if (req.method === 'GET') return send(200, { booking: current, errors: [] }, op.answerRef);
      const key = body?.idempotency_key;
      if (!key) state.violations.push(`${where}: no idempotency_key`);
      const seen = key ? idempotent.get(key) : undefined;
      if (seen) return send(seen.status, seen.body, op.answerRef);
      const version = req.method === 'PUT' ? body.booking?.version : body.booking_version;
      if (version === undefined || version === null) state.violations.push(`${where}: no booking version (optimistic concurrency)`);
      else if (version !== current.version) return send(409, errors('INVALID_REQUEST_ERROR', 'VERSION_MISMATCH', `The booking is at version ${current.version}.`));
      const at = stamp();
      const next = req.method === 'PUT'
        ? { ...current, ...body.booking, version: current.version + 1, updated_at: at }
        : { ...current, status: 'CANCELLED_BY_SELLER', version: current.version + 1, updated_at: at };
      const answer = { booking: store(next), errors: [] };
      if (key) idempotent.set(key, { status: 200, body: answer });
      return send(200, answer, op.answerRef);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}
