// A fake Calendly API v2 (facts: ../shared/platforms/sources-a.md §2) whose answers are checked against
// Calendly's own schema (test/fixtures/specs/calendly-v2: the `Event`, `Invitee`, `Pagination`,
// `InviteeNoShow` and `Cancellation` definitions, `required` as published). Bearer auth; list of scheduled
// events (exactly one of user / organization / group, count ≤ 100, page tokens), one event, its invitees (one
// or all), cancel an event (a second cancel answers the spec's 403 "Event is already canceled", as Calendly does),
// mark an invitee no-show. The spec copy has no request schemas, so request rules
// are checked by hand. Rule breaks are answered 400 and recorded in `violations`.
// Webhook subscriptions, the current user, organization memberships and event types (issue 17): requests to
// `POST /webhook_subscriptions` are checked against that operation's request schema in Calendly's OpenAPI copy
// (test/fixtures/specs/calendly-v2/calendly-api.json, unknown fields refused) and every answer against the
// `User`, `OrganizationMembership`, `EventType`, `WebhookSubscription` and `Pagination` definitions. One
// deliberate relaxation: the 2023 copy's event enum lacks `invitee_no_show.created|deleted`, which Calendly
// documents today (sources-a.md §2), so both are added to the request and answer enums. Rules: a free plan
// (`plan: 'free'`) is refused with the spec's 403 "Please upgrade…"; a URL already subscribed answers 409; a
// user scope needs `user` (the caller), an organization scope an admin or owner.
//
//   const c = await startFakeCalendly({ token? });
//   c.url   c.token   c.put(invitee with its embedded scheduled_event)   c.invitee(uri)   c.event(uri)
//   c.requests   c.violations   c.validateWebhook(body)   c.fail(n, status, headers?)   c.close()
//   c.me   c.organization   c.addUser(user, role?)   c.addEventType(et)   c.webhookSubscriptions()   c.disable(uri)
//   c.signedDelivery(uri, body, t?) → headers signed with the subscription's signing key
import http from 'node:http';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const schema = JSON.parse(readFileSync(new URL('../fixtures/specs/calendly-v2/calendly-webhooks.schema.json', import.meta.url), 'utf8'));
const openapi = JSON.parse(readFileSync(new URL('../fixtures/specs/calendly-v2/calendly-api.json', import.meta.url), 'utf8'));
/** Newer than the 2023 copy (sources-a.md §2): the no-show events a subscription may name. */
const NO_SHOW_EVENTS = ['invitee_no_show.created', 'invitee_no_show.deleted'];
schema.$defs.WebhookSubscription.properties.events.items.enum.push(...NO_SHOW_EVENTS);
const createSubscriptionSchema = structuredClone(openapi.paths['/webhook_subscriptions'].post.requestBody.content['application/json'].schema);
createSubscriptionSchema.properties.events.items.enum.push(...NO_SHOW_EVENTS);
createSubscriptionSchema.additionalProperties = false;
// The README's two Ajv quirks: `\-` in date patterns (unicodeRegExp off) and x-* keywords (strict off).
const ajv = new Ajv2020Module.default({ strict: false, allErrors: true, unicodeRegExp: false });
addFormatsModule.default(ajv);
ajv.addSchema(schema);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
const createSubscriptionValid = ajv.compile(createSubscriptionSchema);
function problems(def: string | undefined, body: unknown): string {
  const key = def ?? '#';
  if (!validators.has(key)) validators.set(key, def ? ajv.getSchema(`${schema.$id}#/$defs/${def}`)! : ajv.getSchema(schema.$id)!);
  const v = validators.get(key)!;
  return v(body) ? '' : ajv.errorsText(v.errors);
}

type Obj = Record<string, any>;
const MAX_COUNT = 100;
const uuidOf = (uri: string) => uri.slice(uri.lastIndexOf('/') + 1);
const micro = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface FakeCalendly {
  url: string;
  token: string;
  /** Hold an invitee as a webhook payload carries it (with `scheduled_event` embedded). */
  put(invitee: Obj): void;
  invitee(uri: string): Obj | undefined;
  event(uri: string): Obj | undefined;
  requests: { method: string; path: string; body?: Obj }[];
  violations: string[];
  /** Check a webhook body against the WebhookPayload schema (invitee_no_show.* is not in this spec copy). */
  validateWebhook(body: Obj): void;
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
  /** The token's user (`GET /users/me`) and its organization. */
  me: Obj;
  organization: string;
  /** Another member of the organization (a User resource; uri, name and email are enough). */
  addUser(user: Obj, role?: 'user' | 'admin' | 'owner'): Obj;
  /** An event type (uri and name are enough; the rest is filled in). */
  addEventType(et: Obj): Obj;
  /** The subscriptions held, each with the signing_key it was created with. */
  webhookSubscriptions(): (Obj & { signing_key?: string })[];
  /** What Calendly does after 24 hours of failed deliveries. */
  disable(uri: string): void;
  /** The Calendly-Webhook-Signature header for `body` as Calendly would send it to that subscription. */
  signedDelivery(uri: string, body: string, t?: number): Record<string, string>;
}

const userOf = (u: Obj, organization: string): Obj => ({
  slug: String(u.name ?? 'user').toLowerCase().replace(/[^a-z0-9]+/g, '-'), scheduling_url: `https://calendly.com/${uuidOf(u.uri)}`,
  timezone: 'America/Denver', avatar_url: null, created_at: micro(), updated_at: micro(), current_organization: organization, ...u,
});

export async function startFakeCalendly(o: { token?: string; plan?: 'free' | 'paid'; role?: 'user' | 'admin' | 'owner' } = {}): Promise<FakeCalendly> {
  const token = o.token ?? `calendly-fake-${randomUUID()}`;
  const accepted = new Set<string>();
  const organization = `https://api.calendly.com/organizations/${randomUUID()}`;
  const me = userOf({ uri: `https://api.calendly.com/users/${randomUUID()}`, name: 'Clinic Owner', email: 'owner@clinic.example' }, organization);
  const members = new Map<string, { user: Obj; role: string }>([[me.uri, { user: me, role: o.role ?? 'owner' }]]);
  const eventTypes = new Map<string, Obj>();
  const hooks = new Map<string, Obj & { signing_key?: string }>();
  const events = new Map<string, Obj>();
  const invitees = new Map<string, Obj>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const state: FakeCalendly = {
    url: '', token, requests: [], violations: [],
    put: (inv) => {
      const { scheduled_event: ev, ...invitee } = structuredClone(inv);
      invitees.set(uuidOf(invitee.uri), invitee);
      if (ev) events.set(uuidOf(ev.uri), { calendar_event: null, ...ev });
    },
    invitee: (uri) => structuredClone(invitees.get(uuidOf(uri))),
    event: (uri) => structuredClone(events.get(uuidOf(uri))),
    validateWebhook: (body) => {
      if (String(body.event).startsWith('invitee_no_show.')) return;
      const p = problems(undefined, body);
      if (p) state.violations.push(`webhook ${body.event}: ${p}`);
    },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    acceptToken: (t) => { accepted.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
    me: structuredClone(me), organization,
    addUser: (u, role = 'user') => {
      const user = userOf(u, organization);
      members.set(user.uri, { user, role });
      return structuredClone(user);
    },
    addEventType: (et) => {
      const full: Obj = {
        active: true, booking_method: 'instant', slug: uuidOf(et.uri), scheduling_url: `https://calendly.com/x/${uuidOf(et.uri)}`, duration: 60,
        kind: 'solo', pooling_type: null, type: 'StandardEventType', color: '#8247f5', created_at: micro(), updated_at: micro(), internal_note: null,
        description_plain: null, description_html: null, profile: { type: 'User', name: me.name, owner: me.uri }, secret: false, custom_questions: [],
        deleted_at: null, kind_description: 'One-on-One', admin_managed: false, ...et,
      };
      eventTypes.set(uuidOf(full.uri), full);
      return structuredClone(full);
    },
    webhookSubscriptions: () => [...hooks.values()].map((h) => structuredClone(h)),
    disable: (uri) => { const h = hooks.get(uuidOf(uri)); if (h) Object.assign(h, { state: 'disabled', retry_started_at: micro(), updated_at: micro() }); },
    signedDelivery: (uri, body, t = Math.floor(Date.now() / 1000)) => {
      const key = hooks.get(uuidOf(uri))?.signing_key;
      if (!key) throw new Error(`no subscription ${uri} with a signing key`);
      return { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${createHmac('sha256', key).update(`${t}.${body}`).digest('hex')}` };
    },
  };
  const publicHook = ({ signing_key: _k, ...h }: Obj) => h;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const where = `${req.method} ${url.pathname}`;
      const send = (status: number, body: Obj, checks: [string, unknown][] = [], headers: Record<string, string> = {}) => {
        for (const [def, part] of checks) {
          const p = problems(def, part);
          if (p) state.violations.push(`${where}: the fake's own ${def} breaks the schema: ${p}`);
        }
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      const refuse = (rule: string, status = 400) => {
        state.violations.push(`${where}: ${rule}`);
        return send(status, { title: 'Invalid Argument', message: rule }, [['ErrorResponse', { title: 'Invalid Argument', message: rule }]]);
      };
      const notFound = () => send(404, { title: 'Resource Not Found', message: 'The server could not find the requested resource.' });
      let body: Obj | undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return refuse('the body is not JSON');
      }
      state.requests.push({ method: req.method ?? '', path: url.pathname + url.search, body });
      if (req.headers.authorization !== `Bearer ${token}` && !accepted.has(req.headers.authorization?.slice(7) ?? '')) return send(401, { title: 'Unauthenticated', message: 'The access token is invalid' });
      const fault = injected.shift();
      if (fault) return send(fault.status, { title: fault.status === 429 ? 'Too Many Requests' : 'Internal Server Error', message: 'Injected' }, [], fault.headers);
      const q = url.searchParams;
      const count = Number(q.get('count') ?? 20);
      if (q.has('count') && !(Number.isInteger(count) && count >= 1 && count <= MAX_COUNT)) return refuse(`count must be 1–${MAX_COUNT}`);
      const page = <T>(items: T[]): { collection: T[]; pagination: Obj } => {
        const from = Number(q.get('page_token') ?? 0);
        const nextFrom = from + count < items.length ? String(from + count) : null;
        const next = new URL(url.pathname + url.search, 'https://api.calendly.com');
        if (nextFrom) next.searchParams.set('page_token', nextFrom);
        return {
          collection: items.slice(from, from + count),
          pagination: { count: Math.min(count, Math.max(0, items.length - from)), next_page: nextFrom ? next.toString() : null, previous_page: null, next_page_token: nextFrom, previous_page_token: null },
        };
      };
      const checksOf = (p: { collection: Obj[]; pagination: Obj }, def: string): [string, unknown][] => [['Pagination', p.pagination], ...p.collection.map((x): [string, unknown] => [def, x])];
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && url.pathname === '/scheduled_events') {
        const owners = ['user', 'organization', 'group'].filter((k) => q.has(k));
        if (owners.length !== 1) return refuse('exactly one of user, organization or group is required');
        const known = new Set(['user', 'organization', 'group', 'invitee_email', 'status', 'min_start_time', 'max_start_time', 'count', 'page_token', 'sort']);
        const extra = [...q.keys()].filter((k) => !known.has(k));
        if (extra.length) return refuse(`undocumented parameters ${extra.join(', ')}`);
        const min = q.get('min_start_time');
        const max = q.get('max_start_time');
        const items = [...events.values()]
          .filter((e) => (!min || Date.parse(e.start_time) >= Date.parse(min)) && (!max || Date.parse(e.start_time) <= Date.parse(max)) && (!q.get('status') || e.status === q.get('status')))
          .sort((a, b) => (Date.parse(a.start_time) - Date.parse(b.start_time)) * (q.get('sort') === 'start_time:desc' ? -1 : 1));
        const p = page(items);
        return send(200, p, checksOf(p, 'Event'));
      }
      if (req.method === 'GET' && (m = /^\/scheduled_events\/([^/]+)$/.exec(url.pathname))) {
        const ev = events.get(m[1]);
        return ev ? send(200, { resource: ev }, [['Event', ev]]) : notFound();
      }
      if (req.method === 'GET' && (m = /^\/scheduled_events\/([^/]+)\/invitees$/.exec(url.pathname))) {
        if (!events.has(m[1])) return notFound();
        const items = [...invitees.values()].filter((i) => uuidOf(i.event) === m![1] && (!q.get('status') || i.status === q.get('status')));
        const p = page(items);
        return send(200, p, checksOf(p, 'Invitee'));
      }
      if (req.method === 'GET' && (m = /^\/scheduled_events\/([^/]+)\/invitees\/([^/]+)$/.exec(url.pathname))) {
        const inv = invitees.get(m[2]);
        return inv && uuidOf(inv.event) === m[1] ? send(200, { resource: inv }, [['Invitee', inv]]) : notFound();
      }
      if (req.method === 'POST' && (m = /^\/scheduled_events\/([^/]+)\/cancellation$/.exec(url.pathname))) {
        const extra = Object.keys(body ?? {}).filter((k) => k !== 'reason');
        if (extra.length || (body?.reason !== undefined && typeof body.reason !== 'string')) return refuse('the body is { reason?: string }');
        const ev = events.get(m[1]);
        if (!ev) return notFound();
        // A second cancel is refused, not repeated: the operation's 403 ("Permission Denied", message enum
        // "Event is already canceled") in Calendly's OpenAPI (calendly-api.json, post-scheduled_events-uuid-
        // cancellation; developer.calendly.com/api-docs/…/create-scheduled-event-cancellation). Not a rule break
        // of the caller (a crash-retried write-back sends it), so it is not recorded in `violations`.
        if (ev.status === 'canceled') return send(403, { title: 'Permission Denied', message: 'Event is already canceled' });
        const cancellation = { canceled_by: 'Clinic staff', reason: body?.reason ?? null, canceler_type: 'host', created_at: micro() };
        Object.assign(ev, { status: 'canceled', cancellation, updated_at: micro(), invitees_counter: { ...ev.invitees_counter, active: 0 } });
        for (const inv of invitees.values()) if (uuidOf(inv.event) === m[1]) Object.assign(inv, { status: 'canceled', cancellation, updated_at: micro() });
        return send(201, { resource: cancellation }, [['Cancellation', cancellation]]);
      }
      if (req.method === 'POST' && url.pathname === '/invitee_no_shows') {
        if (!body || typeof body.invitee !== 'string' || Object.keys(body).length !== 1) return refuse('the body is { invitee: <invitee URI> }');
        const inv = invitees.get(uuidOf(body.invitee));
        if (!inv || inv.uri !== body.invitee) return notFound();
        const noShow = { uri: `https://api.calendly.com/invitee_no_shows/${randomUUID()}`, invitee: inv.uri, created_at: micro() };
        Object.assign(inv, { no_show: { uri: noShow.uri, created_at: noShow.created_at }, updated_at: micro() });
        return send(201, { resource: noShow }, [['InviteeNoShow', noShow]]);
      }
      if (req.method === 'GET' && url.pathname === '/users/me') return send(200, { resource: me }, [['User', me]]);
      if (req.method === 'GET' && url.pathname === '/organization_memberships') {
        const known = new Set(['organization', 'user', 'email', 'count', 'page_token']);
        const extra = [...q.keys()].filter((k) => !known.has(k));
        if (extra.length) return refuse(`undocumented parameters ${extra.join(', ')}`);
        if (q.get('organization') && q.get('organization') !== organization) return send(403, { title: 'Permission Denied', message: 'This user is not in your organization' });
        const items = [...members.values()]
          .filter((m) => (!q.get('user') || m.user.uri === q.get('user')) && (!q.get('email') || m.user.email === q.get('email')))
          .map((m) => ({ uri: `https://api.calendly.com/organization_memberships/${uuidOf(m.user.uri)}`, role: m.role, user: (({ current_organization: _c, ...u }) => u)(m.user), organization, updated_at: micro(), created_at: micro() }));
        const p = page(items);
        return send(200, p, checksOf(p, 'OrganizationMembership'));
      }
      if (req.method === 'GET' && url.pathname === '/event_types') {
        const known = new Set(['active', 'organization', 'user', 'sort', 'admin_managed', 'page_token', 'count']);
        const extra = [...q.keys()].filter((k) => !known.has(k));
        if (extra.length) return refuse(`undocumented parameters ${extra.join(', ')}`);
        if (!q.get('organization') === !q.get('user')) return refuse('either organization or user is required');
        if (q.get('organization') && q.get('organization') !== organization) return send(403, { title: 'Permission Denied', message: 'This user is not in your organization' });
        const items = [...eventTypes.values()].filter((e) => (!q.get('user') || e.profile?.owner === q.get('user')) && (!q.has('active') || String(e.active) === q.get('active')));
        const p = page(items);
        return send(200, p, checksOf(p, 'EventType'));
      }
      if (req.method === 'POST' && url.pathname === '/webhook_subscriptions') {
        if (!createSubscriptionValid(body ?? {})) return refuse(`Create Webhook Subscription body: ${ajv.errorsText(createSubscriptionValid.errors)}`);
        const b = body!;
        if (b.scope === 'user' && !b.user) return refuse('a user scope needs user');
        if (o.plan === 'free') return send(403, { title: 'Permission Denied', message: 'Please upgrade your Calendly account to Professional' });
        if (b.organization !== organization || (b.user && b.user !== me.uri)) return send(403, { title: 'Permission Denied', message: 'You do not have permission to access this resource.' });
        if (b.scope === 'organization' && members.get(me.uri)!.role === 'user') return send(403, { title: 'Permission Denied', message: 'You do not have permission' });
        if ([...hooks.values()].some((h) => h.callback_url === b.url)) return send(409, { title: 'Already Exists', message: 'Hook with this url already exists' });
        const uri = `https://api.calendly.com/webhook_subscriptions/${randomUUID()}`;
        const hook = {
          uri, callback_url: b.url, created_at: micro(), updated_at: micro(), retry_started_at: null, state: 'active', events: b.events, scope: b.scope,
          organization, user: b.scope === 'user' ? b.user : null, creator: me.uri, ...(b.signing_key ? { signing_key: b.signing_key } : {}),
        };
        hooks.set(uuidOf(uri), hook);
        return send(201, { resource: publicHook(hook) }, [['WebhookSubscription', publicHook(hook)]]);
      }
      if (req.method === 'GET' && url.pathname === '/webhook_subscriptions') {
        const known = new Set(['organization', 'user', 'page_token', 'count', 'sort', 'scope']);
        const extra = [...q.keys()].filter((k) => !known.has(k));
        if (extra.length) return refuse(`undocumented parameters ${extra.join(', ')}`);
        if (!q.get('organization') || !['organization', 'user'].includes(q.get('scope') ?? '')) return refuse('organization and scope are required');
        if (q.get('scope') === 'user' && !q.get('user')) return refuse('a user scope needs user');
        const items = [...hooks.values()].filter((h) => h.organization === q.get('organization') && h.scope === q.get('scope') && (!q.get('user') || h.user === q.get('user'))).map(publicHook);
        const p = page(items);
        return send(200, p, checksOf(p, 'WebhookSubscription'));
      }
      if ((m = /^\/webhook_subscriptions\/([^/]+)$/.exec(url.pathname)) && (req.method === 'GET' || req.method === 'DELETE')) {
        const hook = hooks.get(m[1]);
        if (!hook) return notFound();
        if (req.method === 'DELETE') {
          hooks.delete(m[1]);
          res.writeHead(204).end();
          return;
        }
        return send(200, { resource: publicHook(hook) }, [['WebhookSubscription', publicHook(hook)]]);
      }
      return refuse('not a documented path and method', 404);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}
