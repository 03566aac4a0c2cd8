// A fake Microsoft Graph (calendar events) and identity-platform token endpoint.
// Every request is matched against the trimmed official OpenAPI (test/fixtures/specs/msgraph-calendar-v1.0):
// the path and method must be documented, and request bodies must validate against the documented
// schema with unknown properties refused (after the two rewrites its README prescribes). Requests
// without `Prefer: IdType="ImmutableId"` are recorded as violations too.
//
//   const m = await startFakeGraph({ latencyMs? });
//   m.url, m.tokenUrl, m.credentials { clientId, clientSecret, refreshToken }
//   m.events(mailbox)  ('me' for delegated calls)   m.requests   m.violations   m.maxInFlight(mailbox)
//   m.roundTrips (outer HTTP requests)   m.batches (sizes of the $batch requests)   POST /v1.0/$batch
//   m.fail(n, status, headers?)   m.deleteBehindOurBack(mailbox, id)   m.addTheirs(mailbox, event)   m.failAfterCreate(n)   m.close()
//   m.pageSize(n)   calendarView (and calendars) pages hold at most n items whatever $top asks (Graph may page below it)
//   Calendars: GET /me/calendars and /users/{id}/calendars (pages of $top, default 10, @odata.nextLink), each
//   calendar checked against the OpenAPI's microsoft.graph.calendar schema (unknown properties refused). The
//   trimmed document has no /calendars/{id}/… paths: those (documented on learn.microsoft.com: calendar-post-events,
//   calendar-list-calendarview, event-delta) are checked as their /calendar/… twins. Writes into a calendar
//   with canEdit false answer 403 ErrorAccessDenied. Every mailbox has a default calendar; 'me' is seeded with
//   SEED_CALENDARS (own, shared by a colleague, read-only). m.calendars(mailbox), m.addCalendar(mailbox, cal),
//   m.calendarEvents(mailbox, calendarId) (the default calendar's id gives m.events(mailbox)).
//   m.editBehindOurBack(mailbox, id, patch)   someone changes an event in Outlook (a new etag, subscribers notified)
//
// As strict as Graph (issue 19; targets.md §2.3, §2.4, §2.7, §2.8):
// - Mailbox concurrency: a 5th request in flight to one mailbox (inner requests of a $batch counted one by one) is
//   refused 429 ApplicationThrottled "…over its MailboxConcurrency limit" with Retry-After (option
//   throttleRetryAfterSeconds, default 1). m.throttled(mailbox); m.maxInFlight(mailbox) counts refused ones too.
// - transactionId: a retried POST is the same event only while the id is remembered (option transactionIdMemoryMs,
//   default 60 s; Graph documents no lifetime); m.forgetTransactionIds() lets that time pass at once.
// - Events are found by an extended property only with `singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and
//   ep/value eq '<v>')` (id required, name case-sensitive, value case-insensitive; anything else 400 and a
//   violation), and answers carry extended properties only as `$expand=singleValueExtendedProperties($filter=id
//   eq '<id>')` names them.
//
// Change notifications (connect.md §3.2 and §4 "Graph subs", targets.md §2.6). The OpenAPI document holds
// /subscriptions, /subscriptions/{id} and …/reauthorize, so those requests are checked against it like the rest;
// what it cannot describe follows Microsoft's documentation (microsoft-graph-docs-contrib: subscription-post-
// subscriptions, change-notifications-delivery-webhooks and its notificationUrl-validation include,
// change-notifications-lifecycle-events, resources/subscription):
// - POST /subscriptions: changeType ⊆ created,updated,deleted; resource one of /me/events, /me/calendars/{id}/events,
//   /users/{id}/events, /users/{id}/calendars/{id}/events (an unknown calendar: 404; `/me` with an app-only token:
//   400); HTTPS notificationUrl and lifecycleNotificationUrl (plain http only with `allowHttpNotifications`);
//   clientState ≤ 128 characters; expirationDateTime in the future and at most 10,080 minutes ahead (Outlook events
//   without resource data), under 45 minutes raised to 45; at most 1,000 live subscriptions per mailbox (403).
//   Then the validation handshake: POST {url}?validationToken=<opaque, URL-encoded> with
//   `Content-Type: text/plain; charset=utf-8` to the notificationUrl and, when different, the lifecycle URL;
//   anything but 200 + text/plain + exactly the URL-DECODED token within 10 s refuses the creation with
//   400 ValidationError (Graph's error shape). m.handshakes records each one.
// - PATCH /subscriptions/{id}: expirationDateTime (same limits) and notificationUrl (validated again); it cannot add
//   (or change) lifecycleNotificationUrl (400); it also answers reauthorizationRequired. DELETE: 204, unknown 404.
//   GET /subscriptions and /subscriptions/{id}; POST /subscriptions/{id}/reauthorize: 204. An expired subscription
//   is gone (404) and notifies nobody.
// - Deliveries: every change to a watched calendar (created / updated / deleted through the API, $batch included,
//   addTheirs, editBehindOurBack, deleteBehindOurBack) is POSTed asynchronously as
//   `{value: [{subscriptionId, subscriptionExpirationDateTime, clientState, changeType, resource, tenantId,
//   resourceData: {@odata.type, @odata.id, @odata.etag, id}}]}` (items for one URL within `bundleMs` travel in one
//   POST, several subscriptions mixed); each body is checked against the CSDL changeNotificationCollection schema.
//   2xx within 3 s counts as delivered; otherwise Graph retries (here after each of `retryDelaysMs`).
//   m.subscriptions()   m.notifications (each POST sent, with its attempts and statuses)   m.settle() (wait until
//   every delivery has finished, retries included)   m.lifecycle(id, 'reauthorizationRequired' | 'subscriptionRemoved'
//   | 'missed') (to the lifecycle URL; subscriptionRemoved also deletes it)   m.expireSubscription(id)
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import { localToUtc } from '../../src/domain/time.ts';

const specDir = new URL('../fixtures/specs/msgraph-calendar-v1.0/', import.meta.url);
const notificationSchema = JSON.parse(readFileSync(new URL('msgraph-change-notifications.schema.json', specDir), 'utf8'));
const spec = JSON.parse(readFileSync(new URL('../fixtures/specs/msgraph-calendar-v1.0/msgraph-calendar-v1.0.openapi.json', import.meta.url), 'utf8'));

/** The README's two rewrites: drop Kiota's `additionalProperties: {type: object}`; `nullable` → null types. */
function rewrite(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(rewrite);
  if (!s || typeof s !== 'object') return s;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'additionalProperties' && v && typeof v === 'object' && JSON.stringify(v) === '{"type":"object"}') continue;
    if (k === 'nullable') continue;
    o[k] = rewrite(v);
  }
  if ((s as { nullable?: boolean }).nullable) {
    if (typeof o.type === 'string') o.type = [o.type, 'null'];
    else if (o.$ref || o.anyOf || o.allOf || o.oneOf) return { anyOf: [o, { type: 'null' }] };
  }
  return o;
}

const ajv = new Ajv2020Module.default({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ $id: 'graph', components: rewrite(spec.components) });
const validateNotifications = ajv.compile({ ...notificationSchema, $id: undefined });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(ref: string) {
  let v = validators.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: `graph${ref}`, unevaluatedProperties: false });
    validators.set(ref, v);
  }
  return v;
}

interface Op { method: string; re: RegExp; bodyRef?: string; template: string }
const OPS: Op[] = [];
for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> } }>>)) {
  for (const [method, op] of Object.entries(item)) {
    if (!['get', 'post', 'patch', 'delete', 'put'].includes(method)) continue;
    const re = new RegExp(`^/v1\\.0${path.replace(/[().]/g, (c) => `\\${c}`).replace(/\{[^}]+\}/g, '([^/]+)')}$`);
    OPS.push({ method: method.toUpperCase(), re, template: path, bodyRef: op.requestBody?.content?.['application/json']?.schema?.$ref });
  }
}

type GEvent = Record<string, any>;
export interface GCalendar { id: string; name: string; canEdit: boolean; isDefaultCalendar: boolean; owner: { name: string; address: string }; [k: string]: unknown }

/** The signed-in user's calendars (delegated `/me`): her default one, a second own one, a colleague's shared with
 * write access, and two she may only read. */
export const ME_ADDRESS = 'okafor@clinic.example';
export const SEED_CALENDARS: GCalendar[] = [
  { id: 'AAMkADefault-me', name: 'Calendar', canEdit: true, isDefaultCalendar: true, owner: { name: 'Ada Okafor', address: ME_ADDRESS } },
  { id: 'AAMkADTreatment-room=', name: 'Treatment room', canEdit: true, isDefaultCalendar: false, owner: { name: 'Ada Okafor', address: ME_ADDRESS } },
  { id: 'AAMkADShared-nakamura', name: 'Dr. Nakamura', canEdit: true, isDefaultCalendar: false, owner: { name: 'Kenji Nakamura', address: 'nakamura@clinic.example' } },
  { id: 'AAMkADHolidays', name: 'United States holidays', canEdit: false, isDefaultCalendar: false, owner: { name: 'Ada Okafor', address: ME_ADDRESS } },
  { id: 'AAMkADShared-frontdesk', name: 'Front desk', canEdit: false, isDefaultCalendar: false, owner: { name: 'Front desk', address: 'frontdesk@clinic.example' } },
];

/** The query parameters the OpenAPI document gives calendarView. */
const validateCalendar = ajv.compile({ $ref: 'graph#/components/schemas/microsoft.graph.calendar', unevaluatedProperties: false });
/** OData query options a collection GET may carry (the calendars listing; Graph documents $top/$skip/$select/$filter/$orderby). */
const LIST_PARAMS = new Set(['$top', '$skip', '$select', '$filter', '$orderby', '$count', '$expand']);

const VIEW_PARAMS = new Set<string>((spec.paths['/me/calendarView'].get.parameters as { name?: string; $ref?: string }[])
  .map((p) => p.name ?? spec.components.parameters[p.$ref!.split('/').pop()!].name));

/** An answer's start/end in the zone `Prefer: outlook.timezone` asks for (UTC only here); all-day events keep theirs, as Graph does. */
function inZone(e: GEvent, prefer: string): GEvent {
  if (!/outlook\.timezone="UTC"/.test(prefer) || e.isAllDay) return e;
  const utc = (t: { dateTime: string; timeZone: string }) => ({ dateTime: `${localToUtc(t.dateTime.slice(0, 19), t.timeZone).slice(0, 19)}.0000000`, timeZone: 'UTC' });
  return { ...e, start: utc(e.start), end: utc(e.end) };
}

// ------------------------------------------------------------ extended properties (targets.md §2.3)
// Graph finds an event by an extended property only through a filter that names the property's id and its value,
// `singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ep/value eq '<value>')` (learn.microsoft.com/en-us/graph/
// api/singlevaluelegacyextendedproperty-get, "Get resource instances using a filter"); the name in the id is compared
// case-sensitively, the value case-insensitively. The properties come back only when asked for with
// `$expand=singleValueExtendedProperties($filter=id eq '<id>')`, and then only those named.

/** An id `{type} {guid} Name {name}`, `{type} {guid} Id {hex}` or `{type} {proptag}`, split for comparison. */
function propertyId(id: string): { type: string; guid?: string; kind?: string; name?: string } | undefined {
  const named = /^(\w+) (\{[0-9a-fA-F-]{36}\}) (Name|Id) (.+)$/i.exec(id.trim());
  if (named) return { type: named[1].toLowerCase(), guid: named[2].toLowerCase(), kind: named[3].toLowerCase(), name: named[3].toLowerCase() === 'id' ? named[4].toLowerCase() : named[4] };
  const tagged = /^(\w+) (0x[0-9a-fA-F]+)$/.exec(id.trim());
  return tagged ? { type: tagged[1].toLowerCase(), name: tagged[2].toLowerCase() } : undefined;
}
function sameProperty(a: string, b: string): boolean {
  const x = propertyId(a);
  const y = propertyId(b);
  return !!x && !!y && x.type === y.type && x.guid === y.guid && x.kind === y.kind && x.name === y.name;
}
const ODATA_STRING = `'((?:[^']|'')*)'`;
const unquote = (v: string) => v.replace(/''/g, "'");
/** The id and value a lookup filter names, or why Graph would refuse it. */
function extendedPropertyFilter(filter: string): { id: string; value: string } | string {
  const any = new RegExp(`^singleValueExtendedProperties/any\\((\\w+):\\s*(.+)\\)$`, 'i').exec(filter.trim());
  if (!any) return `unsupported $filter ${JSON.stringify(filter)}`;
  const [, v, body] = any;
  const idEq = new RegExp(`^${v}/id eq ${ODATA_STRING}$`);
  const valueEq = new RegExp(`^${v}/value eq ${ODATA_STRING}$`);
  const parts = body.split(/\s+and\s+(?=\w+\/(?:id|value) eq ')/);
  const id = parts.map((x) => idEq.exec(x.trim())).find(Boolean);
  const value = parts.map((x) => valueEq.exec(x.trim())).find(Boolean);
  if (parts.length !== 2 || !id || !value) return `a filter on extended properties names the property id and its value (ep/id eq '…' and ep/value eq '…'): ${JSON.stringify(filter)}`;
  if (!propertyId(unquote(id[1]))) return `not an extended property id: ${JSON.stringify(unquote(id[1]))}`;
  return { id: unquote(id[1]), value: unquote(value[1]) };
}
/** The properties `$expand=singleValueExtendedProperties($filter=id eq '…' [or id eq '…'])` asks for, from an event. */
function expandedOf(e: GEvent, url: URL): { singleValueExtendedProperties?: { id: string; value: string }[] } {
  const expand = /^singleValueExtendedProperties\(\$filter=(.+)\)$/i.exec(url.searchParams.get('$expand') ?? '');
  if (!expand) return {};
  const ids = [...expand[1].matchAll(new RegExp(`id eq ${ODATA_STRING}`, 'g'))].map((m) => unquote(m[1]));
  const props = ((e.singleValueExtendedProperties ?? []) as { id: string; value: string }[]).filter((p) => ids.some((id) => sameProperty(p.id, id)));
  return props.length ? { singleValueExtendedProperties: props } : {};
}
/** An event as an answer carries it: extended properties only as `$expand` asks. */
function withExpanded(e: GEvent, url: URL): GEvent {
  const { singleValueExtendedProperties: _all, ...rest } = e;
  return { ...rest, ...expandedOf(e, url) };
}

/** The signed-in user's directory id (`/me`), as notifications name it. */
export const ME_USER_ID = '5f3c1a7e-9b2d-4e68-a0c4-7d19e2b84f36';
export const TENANT_ID = 'b7c2e4a1-3f5d-4c89-9e06-2a8d71f4c5b3';
/** Outlook events without resource data (minutes). */
export const MAX_SUBSCRIPTION_MINUTES = 10_080;
const MIN_SUBSCRIPTION_MINUTES = 45;

export interface GSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  expirationDateTime: string;
  clientState: string | null;
  applicationId: string;
  creatorId: string;
  includeResourceData: boolean;
  latestSupportedTlsVersion: string;
  encryptionCertificate: string | null;
  encryptionCertificateId: string | null;
  notificationQueryOptions: string | null;
  notificationUrlAppId: string | null;
}

export interface FakeHandshake {
  url: string;
  /** The token as Graph made it (what the answer must be). */
  token: string;
  status?: number;
  contentType?: string;
  body?: string;
  ms: number;
  ok: boolean;
  problem?: string;
}

export interface FakeNotification {
  url: string;
  kind: 'change' | 'lifecycle';
  body: { value: Record<string, any>[] };
  attempts: { at: number; ms: number; status?: number; error?: string }[];
  /** The last attempt's answer. */
  status?: number;
  /** Answered 2xx within the delivery timeout (3 s). */
  delivered: boolean;
}

export interface FakeGraph {
  url: string;
  tokenUrl: string;
  credentials: { clientId: string; clientSecret: string; refreshToken: string };
  events(mailbox: string): GEvent[];
  requests: { method: string; path: string; mailbox: string; at: number; body?: GEvent }[];
  /** HTTP requests that reached the fake from outside (a $batch counts once). */
  roundTrips: number;
  batches: number[];
  violations: string[];
  tokenRequests: { grant: string }[];
  /** The most requests to the mailbox that were in flight at once, refused ones included (>4 means one was refused). */
  maxInFlight(mailbox: string): number;
  /** Requests to the mailbox refused 429 because 4 were already in flight. */
  throttled(mailbox: string): number;
  /** Time passes: every transactionId seen so far is forgotten (a retried POST then creates a second event). */
  forgetTransactionIds(): void;
  fail(n: number, status: number, headers?: Record<string, string>): void;
  /** The next n creates succeed but answer 500 (Graph has been seen to do this). */
  failAfterCreate(n: number): void;
  deleteBehindOurBack(mailbox: string, id: string): void;
  /** An event the practitioner made themselves (not ours). */
  addTheirs(mailbox: string, ev: GEvent): string;
  /** Every delta token issued so far answers 410 (syncStateNotFound). */
  expireDeltaTokens(): void;
  pageSize(n: number): void;
  calendars(mailbox: string): GCalendar[];
  addCalendar(mailbox: string, cal: Partial<GCalendar> & { name: string }): GCalendar;
  calendarEvents(mailbox: string, calendarId: string): GEvent[];
  editBehindOurBack(mailbox: string, id: string, patch: GEvent): void;
  /** Live subscriptions (expired ones are gone). */
  subscriptions(): GSubscription[];
  handshakes: FakeHandshake[];
  notifications: FakeNotification[];
  /** Resolves once every delivery queued so far has finished (retries included). */
  settle(): Promise<void>;
  lifecycle(subscriptionId: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): Promise<FakeNotification>;
  /** The subscription's time is up: it is gone, as Graph deletes expired subscriptions. */
  expireSubscription(id: string): void;
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
}

const err = (code: string, message: string) => ({ error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } });

export interface FakeGraphOptions {
  latencyMs?: number;
  /** Accept `http:` notification URLs (tests receive on localhost); Graph itself requires HTTPS. */
  allowHttpNotifications?: boolean;
  /** How long the handshake waits for the answer (Graph: 10 s). */
  validationTimeoutMs?: number;
  /** How long a delivery waits for its acknowledgement (Graph: 3 s). */
  deliveryTimeoutMs?: number;
  /** Waits before each retry of an undelivered notification (Graph retries for up to 4 h). */
  retryDelaysMs?: number[];
  /** Items for one URL within this many ms travel in one POST. */
  bundleMs?: number;
  /** Live subscriptions per mailbox (Graph: 1,000 across all apps). */
  maxSubscriptionsPerMailbox?: number;
  /** How long a create's `transactionId` is remembered (Graph does not say; it is not forever). Default 60 s. */
  transactionIdMemoryMs?: number;
  /** Requests one mailbox serves at once; the next is refused 429 MailboxConcurrency (Graph: 4). */
  mailboxConcurrency?: number;
  /** The Retry-After (seconds) of a 429 for mailbox concurrency. Default 1. */
  throttleRetryAfterSeconds?: number;
}

export async function startFakeGraph(o: FakeGraphOptions = {}): Promise<FakeGraph> {
  const credentials = { clientId: randomUUID(), clientSecret: `cs-${randomBytes(6).toString('hex')}`, refreshToken: `rt-${randomBytes(6).toString('hex')}` };
  const boxes = new Map<string, Map<string, GEvent>>();
  const tokens = new Set<string>();
  /** Tokens issued by the client-credentials grant (application permissions: no signed-in user). */
  const appOnly = new Set<string>();
  const injected: { status: number; headers: Record<string, string> }[] = [];
  const inFlight = new Map<string, number>();
  const maxSeen = new Map<string, number>();
  const throttledBy = new Map<string, number>();
  /** transactionId → the event it created and when, per calendar store (forgotten after transactionIdMemoryMs). */
  const transactions = new Map<string, { id: string; at: number }>();
  const transactionMemoryMs = o.transactionIdMemoryMs ?? 60_000;
  const mailboxConcurrency = o.mailboxConcurrency ?? 4;
  let lieAfterCreate = 0;
  let etagN = 0;
  /** Deletions with the change number they happened at, per mailbox (for delta's @removed). */
  const removed = new Map<string, { id: string; at: number }[]>();
  const tombstone = (m: string, id: string) => removed.set(m, [...(removed.get(m) ?? []), { id, at: ++etagN }]);
  let deltaValidFrom = 0;
  let pageLimit = Infinity;
  const box = (m: string) => {
    let b = boxes.get(m);
    if (!b) boxes.set(m, (b = new Map()));
    return b;
  };
  const calendarLists = new Map<string, GCalendar[]>([['me', SEED_CALENDARS.map((c) => ({ ...c, owner: { ...c.owner } }))]]);
  /** A mailbox's calendars; one it has never seen gets its default calendar. */
  const calsOf = (m: string) => {
    let l = calendarLists.get(m);
    if (!l) calendarLists.set(m, (l = [{ id: `AAMkADefault-${m}`, name: 'Calendar', canEdit: true, isDefaultCalendar: true, owner: { name: m, address: m } }]));
    return l;
  };
  /** Where a calendar's events are kept: the mailbox's own store for its default calendar, else `<mailbox>/<id>`. */
  const storeKey = (m: string, calendarId: string | undefined) => {
    if (!calendarId) return m;
    const c = calsOf(m).find((x) => x.id === calendarId);
    return !c || c.isDefaultCalendar ? m : `${m}/${calendarId}`;
  };
  const state: FakeGraph = {
    url: '', tokenUrl: '', credentials, requests: [], violations: [], tokenRequests: [], roundTrips: 0, batches: [],
    events: (m) => [...box(m).values()],
    maxInFlight: (m) => maxSeen.get(m) ?? 0,
    throttled: (m) => throttledBy.get(m) ?? 0,
    forgetTransactionIds: () => { transactions.clear(); },
    fail: (n, status, headers = {}) => { for (let i = 0; i < n; i++) injected.push({ status, headers }); },
    failAfterCreate: (n) => { lieAfterCreate = n; },
    deleteBehindOurBack: (m, id) => {
      const ev = box(m).get(id);
      box(m).delete(id);
      tombstone(m, id);
      changed(m, 'deleted', ev ?? { id });
    },
    expireDeltaTokens: () => { deltaValidFrom = etagN + 1; },
    pageSize: (n) => { pageLimit = n; },
    calendars: (m) => calsOf(m),
    addCalendar: (m, c) => {
      const cal: GCalendar = { id: `AAMkAD${randomBytes(8).toString('base64url')}`, canEdit: true, isDefaultCalendar: false, owner: { name: m, address: m }, ...c };
      calsOf(m).push(cal);
      return cal;
    },
    calendarEvents: (m, id) => [...box(storeKey(m, id)).values()],
    addTheirs: (m, ev) => {
      const id = `AAMk${randomBytes(16).toString('base64url')}`;
      const stored = { showAs: 'busy', ...ev, id, '@odata.etag': `W/"${++etagN}"` };
      box(m).set(id, stored);
      changed(m, 'created', stored);
      return id;
    },
    editBehindOurBack: (m, id, patch) => {
      const ev = box(m).get(id);
      if (!ev) throw new Error(`no event ${id} in ${m}`);
      const next = { ...ev, ...patch, id, '@odata.etag': `W/"${++etagN}"`, changeKey: String(etagN), lastModifiedDateTime: new Date().toISOString() };
      box(m).set(id, next);
      changed(m, 'updated', next);
    },
    subscriptions: () => [...subs.values()].filter(live).map((x) => ({ ...x.sub })),
    handshakes: [],
    notifications: [],
    settle: async () => {
      while (pending.size) await Promise.allSettled([...pending]);
    },
    lifecycle: (id, event) => {
      const x = subs.get(id);
      if (!x || !live(x)) throw new Error(`no live subscription ${id}`);
      if (!x.sub.lifecycleNotificationUrl) throw new Error(`subscription ${id} has no lifecycleNotificationUrl: Graph sends it no lifecycle notices`);
      if (event === 'reauthorizationRequired') x.needsReauth = true;
      if (event === 'subscriptionRemoved') subs.delete(id);
      const item = { subscriptionId: id, subscriptionExpirationDateTime: x.sub.expirationDateTime, tenantId: TENANT_ID, clientState: x.sub.clientState, lifecycleEvent: event };
      return deliver(x.sub.lifecycleNotificationUrl, 'lifecycle', [item]);
    },
    expireSubscription: (id) => { subs.delete(id); },
    acceptToken: (t) => { tokens.add(t); },
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      pending.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  // ------------------------------------------------------------ change notifications
  const validationTimeoutMs = o.validationTimeoutMs ?? 10_000;
  const deliveryTimeoutMs = o.deliveryTimeoutMs ?? 3_000;
  const retryDelaysMs = o.retryDelaysMs ?? [1_000, 5_000];
  const bundleMs = o.bundleMs ?? 10;
  const maxPerMailbox = o.maxSubscriptionsPerMailbox ?? 1_000;
  const applicationId = randomUUID();
  interface Sub { sub: GSubscription; mailbox: string; key: string; needsReauth: boolean }
  const subs = new Map<string, Sub>();
  const live = (x: Sub) => Date.parse(x.sub.expirationDateTime) > Date.now();
  const userIds = new Map<string, string>([['me', ME_USER_ID]]);
  const userId = (m: string) => {
    let id = userIds.get(m);
    if (!id) userIds.set(m, (id = randomUUID()));
    return id;
  };
  const timers = new Set<NodeJS.Timeout>();
  const pending = new Set<Promise<unknown>>();
  let closed = false;
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => { timers.delete(t); f(); }, ms);
    timers.add(t);
  };
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    p.finally(() => pending.delete(p)).catch(() => {});
    return p;
  };

  /** POST one body (with retries) and record how it was answered. */
  function deliver(url: string, kind: FakeNotification['kind'], items: Record<string, any>[]): Promise<FakeNotification> {
    const n: FakeNotification = { url, kind, body: { value: items }, attempts: [], delivered: false };
    if (!validateNotifications(n.body)) state.violations.push(`notification body (the fake's own): ${ajv.errorsText(validateNotifications.errors)}`);
    state.notifications.push(n);
    const attempt = async (i: number): Promise<FakeNotification> => {
      const t0 = Date.now();
      try {
        const res = await fetch(url, {
          method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(n.body),
          signal: AbortSignal.timeout(deliveryTimeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        n.status = res.status;
        n.attempts.push({ at: t0, ms: Date.now() - t0, status: res.status });
        n.delivered = res.status >= 200 && res.status < 300 && Date.now() - t0 <= deliveryTimeoutMs;
      } catch (e) {
        n.status = undefined;
        n.attempts.push({ at: t0, ms: Date.now() - t0, error: (e as Error).name === 'TimeoutError' ? `no answer within ${deliveryTimeoutMs} ms` : (e as Error).message });
      }
      if (n.delivered || closed || i >= retryDelaysMs.length) return n;
      return new Promise((resolve) => later(retryDelaysMs[i], () => { resolve(track(attempt(i + 1))); }));
    };
    return track(attempt(0));
  }

  /** Items waiting to travel together, per notification URL. */
  const bundles = new Map<string, Record<string, any>[]>();
  function queue(url: string, item: Record<string, any>): void {
    const b = bundles.get(url);
    if (b) return void b.push(item);
    bundles.set(url, [item]);
    let release!: () => void;
    track(new Promise<void>((r) => { release = r; }));
    later(bundleMs, () => {
      const items = bundles.get(url) ?? [];
      bundles.delete(url);
      if (!closed) void deliver(url, 'change', items);
      release();
    });
  }

  /** A change to an event of the calendar stored under `key`: every live subscription watching it hears of it. */
  function changed(key: string, changeType: 'created' | 'updated' | 'deleted', ev: GEvent): void {
    for (const x of subs.values()) {
      if (x.key !== key || !live(x) || !x.sub.changeType.split(',').includes(changeType)) continue;
      const ref = `Users/${userId(x.mailbox)}/Events/${ev.id}`;
      queue(x.sub.notificationUrl, {
        subscriptionId: x.sub.id, subscriptionExpirationDateTime: x.sub.expirationDateTime, clientState: x.sub.clientState,
        changeType, resource: ref, tenantId: TENANT_ID,
        resourceData: { '@odata.type': '#Microsoft.Graph.Event', '@odata.id': ref, ...(ev['@odata.etag'] ? { '@odata.etag': ev['@odata.etag'] } : {}), id: ev.id },
      });
    }
  }

  /** Graph's handshake with one URL: undefined when it answered right, else what went wrong. */
  async function handshake(target: string): Promise<string | undefined> {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    const h: FakeHandshake = { url: target, token, ms: 0, ok: false };
    state.handshakes.push(h);
    const t0 = Date.now();
    try {
      const u = `${target}${target.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`;
      const res = await fetch(u, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, signal: AbortSignal.timeout(validationTimeoutMs) });
      h.status = res.status;
      h.contentType = res.headers.get('content-type') ?? undefined;
      h.body = await res.text();
      h.ms = Date.now() - t0;
      if (res.status !== 200) h.problem = `answered HTTP ${res.status}`;
      else if (!/^text\/plain\b/i.test(h.contentType ?? '')) h.problem = `answered ${h.contentType ?? 'no Content-Type'}, not text/plain`;
      else if (h.body !== token) h.problem = h.body === encodeURIComponent(token) ? 'echoed the token still URL-encoded' : 'did not echo the token';
    } catch (e) {
      h.ms = Date.now() - t0;
      h.problem = (e as Error).name === 'TimeoutError' ? `no answer within ${validationTimeoutMs} ms` : `unreachable (${(e as Error).message})`;
    }
    h.ok = !h.problem;
    return h.problem;
  }

  const RESOURCE = /^\/?(me|users\/([^/]+))(?:\/calendars\/([^/]+))?\/events$/i;
  const subError = (status: number, code: string, message: string) => ({ status, body: err(code, message) });

  /** The expiry a request asks for, as Graph would set it, or why not. */
  function expiryOf(raw: unknown): string | { status: number; body: unknown } {
    const ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
    if (!Number.isFinite(ms)) return subError(400, 'InvalidRequest', 'expirationDateTime is required and must be a date-time.');
    const now = Date.now();
    if (ms <= now) return subError(400, 'InvalidRequest', 'Subscription expiration date must be in the future.');
    if (ms > now + MAX_SUBSCRIPTION_MINUTES * 60_000) return subError(400, 'InvalidRequest', `Subscription expiration can only be ${MAX_SUBSCRIPTION_MINUTES} minutes in the future.`);
    return new Date(Math.max(ms, now + MIN_SUBSCRIPTION_MINUTES * 60_000)).toISOString();
  }

  function urlProblem(name: string, raw: unknown): { status: number; body: unknown } | undefined {
    let u: URL;
    try {
      u = new URL(String(raw));
    } catch {
      return subError(400, 'InvalidRequest', `${name} must be an absolute URL.`);
    }
    if (u.protocol === 'https:' || (u.protocol === 'http:' && o.allowHttpNotifications)) return undefined;
    return subError(400, 'InvalidRequest', `${name} must use the HTTPS protocol.`);
  }

  const validationFailure = (problem: string) => subError(400, 'ValidationError', /no answer within/.test(problem)
    ? 'Subscription validation request timed out.'
    : `Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request (${problem}).`);

  async function subscriptionsApi(method: string, path: string, body: GEvent | undefined, bearer: string): Promise<{ status: number; body?: unknown }> {
    const one = /^\/v1\.0\/subscriptions\/([^/]+)(\/microsoft\.graph\.reauthorize)?$/.exec(path);
    const id = one ? decodeURIComponent(one[1]) : undefined;
    const x = id ? subs.get(id) : undefined;
    const found = x && live(x) ? x : undefined;
    const context = `${state.url}/v1.0/$metadata#subscriptions`;
    const answer = (s: GSubscription) => ({ '@odata.context': `${context}/$entity`, ...s });
    if (!id && method === 'GET') return { status: 200, body: { '@odata.context': context, value: [...subs.values()].filter(live).map((y) => y.sub) } };
    if (id && !found) return subError(404, 'ResourceNotFound', `The object was not found.`);
    if (found && one![2]) {
      if (method !== 'POST') return subError(405, 'MethodNotAllowed', 'not supported');
      found.needsReauth = false;
      return { status: 204 };
    }
    if (found && method === 'GET') return { status: 200, body: answer(found.sub) };
    if (found && method === 'DELETE') {
      subs.delete(found.sub.id);
      return { status: 204 };
    }
    if (found && method === 'PATCH') {
      const b = body ?? {};
      const others = Object.keys(b).filter((k) => !['expirationDateTime', 'notificationUrl', 'lifecycleNotificationUrl'].includes(k));
      if (others.length) return subError(400, 'InvalidRequest', `Only expirationDateTime and notificationUrl can be updated (not ${others.join(', ')}).`);
      if ('lifecycleNotificationUrl' in b && b.lifecycleNotificationUrl !== found.sub.lifecycleNotificationUrl) {
        return subError(400, 'InvalidRequest', found.sub.lifecycleNotificationUrl
          ? 'lifecycleNotificationUrl cannot be changed: delete the subscription and create a new one.'
          : 'lifecycleNotificationUrl cannot be added to an existing subscription: delete it and create a new one.');
      }
      const next = { ...found.sub };
      if ('expirationDateTime' in b) {
        const exp = expiryOf(b.expirationDateTime);
        if (typeof exp !== 'string') return exp;
        next.expirationDateTime = exp;
      }
      if ('notificationUrl' in b && b.notificationUrl !== found.sub.notificationUrl) {
        const bad = urlProblem('notificationUrl', b.notificationUrl);
        if (bad) return bad;
        const problem = await handshake(String(b.notificationUrl));
        if (problem) return validationFailure(problem);
        next.notificationUrl = String(b.notificationUrl);
      }
      found.sub = next;
      found.needsReauth = false;
      return { status: 200, body: answer(next) };
    }
    if (id || method !== 'POST') return subError(405, 'MethodNotAllowed', 'not supported by the fake');
    // Create.
    const b = body ?? {};
    for (const k of ['changeType', 'notificationUrl', 'resource', 'expirationDateTime']) {
      if (typeof b[k] !== 'string' || !b[k]) return subError(400, 'InvalidRequest', `${k} is required.`);
    }
    const kinds = String(b.changeType).split(',').map((c) => c.trim());
    if (kinds.some((c) => !['created', 'updated', 'deleted'].includes(c))) return subError(400, 'InvalidRequest', `changeType '${b.changeType}' is not supported for events.`);
    if (b.includeResourceData) return subError(400, 'InvalidRequest', 'includeResourceData needs an encryptionCertificate (not supported by the fake).');
    const where = RESOURCE.exec(String(b.resource));
    if (!where) return subError(400, 'InvalidRequest', `Resource '${b.resource}' is not supported (the fake knows calendar events).`);
    const mailbox = where[1].toLowerCase() === 'me' ? 'me' : decodeURIComponent(where[2]);
    if (mailbox === 'me' && appOnly.has(bearer)) return subError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
    const calendarId = where[3] ? decodeURIComponent(where[3]) : undefined;
    if (calendarId !== undefined && !calsOf(mailbox).some((c) => c.id === calendarId)) return subError(404, 'ResourceNotFound', `The calendar in '${b.resource}' was not found.`);
    for (const k of ['notificationUrl', 'lifecycleNotificationUrl']) {
      if (b[k] == null) continue;
      const bad = urlProblem(k, b[k]);
      if (bad) return bad;
    }
    if (typeof b.clientState === 'string' && b.clientState.length > 128) return subError(400, 'InvalidRequest', 'clientState can be at most 128 characters.');
    const exp = expiryOf(b.expirationDateTime);
    if (typeof exp !== 'string') return exp;
    if ([...subs.values()].filter((y) => y.mailbox === mailbox && live(y)).length >= maxPerMailbox) {
      return subError(403, 'ExtensionError', `Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of subscriptions (${maxPerMailbox}) for this mailbox has been reached.]`);
    }
    for (const target of new Set([String(b.notificationUrl), ...(b.lifecycleNotificationUrl ? [String(b.lifecycleNotificationUrl)] : [])])) {
      const problem = await handshake(target);
      if (problem) return validationFailure(problem);
    }
    const sub: GSubscription = {
      id: randomUUID(), resource: String(b.resource), applicationId, changeType: kinds.join(','),
      clientState: typeof b.clientState === 'string' ? b.clientState : null,
      notificationUrl: String(b.notificationUrl), lifecycleNotificationUrl: b.lifecycleNotificationUrl ? String(b.lifecycleNotificationUrl) : null,
      expirationDateTime: exp, creatorId: mailbox === 'me' ? ME_USER_ID : randomUUID(), includeResourceData: false,
      latestSupportedTlsVersion: 'v1_2', encryptionCertificate: null, encryptionCertificateId: null, notificationQueryOptions: null, notificationUrlAppId: null,
    };
    subs.set(sub.id, { sub, mailbox, key: storeKey(mailbox, calendarId), needsReauth: false });
    return { status: 201, body: answer(sub) };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const inner = req.headers['x-fake-batch-inner'] === '1';
      if (!inner && !url.pathname.endsWith('/token')) state.roundTrips++;
      if (url.pathname === '/v1.0/$batch' && req.method === 'POST') {
        // JSON batching (no official schema): ≤ 20 requests, unique ids, relative urls, Content-Type with a body.
        let batch: { requests?: { id?: string; method?: string; url?: string; headers?: Record<string, string>; body?: unknown }[] };
        try {
          batch = JSON.parse(raw);
        } catch {
          return send(400, err('BadRequest', 'Invalid batch payload.'));
        }
        const reqs = batch.requests ?? [];
        const problems = [
          reqs.length === 0 || reqs.length > 20 ? `${reqs.length} requests (1–20 allowed)` : '',
          new Set(reqs.map((r) => r.id)).size !== reqs.length ? 'duplicate ids' : '',
          ...reqs.map((r) => (!r.id || !r.method || !r.url?.startsWith('/') ? `request ${r.id}: id, method and a relative url are required` : '')),
          ...reqs.map((r) => (r.body !== undefined && !Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'content-type') ? `request ${r.id}: Content-Type is required with a body` : '')),
        ].filter(Boolean);
        if (problems.length) {
          state.violations.push(`$batch: ${problems.join('; ')}`);
          return send(400, err('BadRequest', problems[0]));
        }
        state.batches.push(reqs.length);
        // Graph hands at most four inner requests to Outlook at a time (targets.md §2.7).
        let next = 0;
        const results: unknown[] = [];
        const one = async (r: (typeof reqs)[number]) => {
          const res2 = await fetch(`${state.url}/v1.0${r.url}`, {
            method: r.method, headers: { ...(r.headers ?? {}), authorization: req.headers.authorization ?? '', 'x-fake-batch-inner': '1' },
            body: r.body === undefined ? undefined : JSON.stringify(r.body),
          });
          const text = await res2.text();
          return { id: r.id, status: res2.status, headers: Object.fromEntries(['retry-after', 'etag'].filter((h) => res2.headers.get(h)).map((h) => [h === 'retry-after' ? 'Retry-After' : 'ETag', res2.headers.get(h)!])), body: text ? JSON.parse(text) : undefined };
        };
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (next < reqs.length) {
            const i = next++;
            results[i] = await one(reqs[i]);
          }
        }));
        return send(200, { responses: results.reverse() });
      }
      if (url.pathname.endsWith('/oauth2/v2.0/token') && req.method === 'POST') {
        const f = new URLSearchParams(raw);
        state.tokenRequests.push({ grant: f.get('grant_type') ?? '' });
        if (f.get('client_id') !== credentials.clientId) return send(400, { error: 'invalid_client' });
        if (f.get('grant_type') === 'refresh_token') {
          if (f.get('refresh_token') !== credentials.refreshToken) return send(400, { error: 'invalid_grant', error_description: 'AADSTS70000: grant expired or revoked' });
        } else if (f.get('grant_type') === 'client_credentials') {
          if (f.get('client_secret') !== credentials.clientSecret) return send(401, { error: 'invalid_client' });
          if (f.get('scope') !== 'https://graph.microsoft.com/.default') return send(400, { error: 'invalid_scope' });
        } else return send(400, { error: 'unsupported_grant_type' });
        const t = `eyJ.${randomBytes(12).toString('hex')}`;
        tokens.add(t);
        if (f.get('grant_type') === 'client_credentials') appOnly.add(t);
        return send(200, { token_type: 'Bearer', expires_in: 3599, access_token: t, ...(f.get('grant_type') === 'refresh_token' ? { refresh_token: credentials.refreshToken } : {}) });
      }
      const mailbox = /^\/v1\.0\/me\//.test(url.pathname) ? 'me' : decodeURIComponent(/^\/v1\.0\/users\/([^/]+)\//.exec(url.pathname)?.[1] ?? '');
      // /…/calendars/{id}/events|calendarView… are checked as their documented /…/calendar/… twins.
      const inCal = /^(\/v1\.0\/(?:me|users\/[^/]+))\/calendars\/([^/]+)(\/.*)$/.exec(url.pathname);
      const calendarId = inCal ? decodeURIComponent(inCal[2]) : undefined;
      const checkedPath = inCal ? `${inCal[1]}${inCal[3] === '/calendarView' ? '' : '/calendar'}${inCal[3]}` : url.pathname;
      const listing = req.method === 'GET' && /^\/v1\.0\/(?:me|users\/[^/]+)\/calendars$/.test(url.pathname);
      const op = listing ? { method: 'GET', re: /./, template: '/users/{user-id}/calendars' } as Op : OPS.find((x) => x.method === req.method && x.re.test(checkedPath));
      let body: GEvent | undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        state.violations.push(`${req.method} ${url.pathname}: body is not JSON`);
        return send(400, err('BadRequest', 'Unable to read JSON request payload.'));
      }
      state.requests.push({ method: req.method ?? '', path: url.pathname + url.search, mailbox, at: Date.now(), body });
      if (!op) {
        state.violations.push(`${req.method} ${url.pathname}: not in the OpenAPI document`);
        return send(400, err('BadRequest', 'Resource not found for the segment.'));
      }
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) return send(401, err('InvalidAuthenticationToken', 'Access token has expired or is not yet valid.'));
      if (!/IdType="ImmutableId"/.test(String(req.headers.prefer ?? ''))) state.violations.push(`${req.method} ${op.template}: no Prefer: IdType="ImmutableId"`);
      if (body !== undefined && op.bodyRef) {
        const v = validatorFor(op.bodyRef);
        if (!v(body)) {
          state.violations.push(`${req.method} ${op.template}: ${ajv.errorsText(v.errors)}`);
          return send(400, err('ErrorInvalidRequest', 'The request is invalid.'));
        }
        if (Array.isArray(body.attendees) && body.attendees.length) state.violations.push('attendees sent: Exchange would e-mail them');
      }
      const n = (inFlight.get(mailbox) ?? 0) + 1;
      maxSeen.set(mailbox, Math.max(maxSeen.get(mailbox) ?? 0, n));
      // Outlook serves at most 4 concurrent requests per app and mailbox; the next one is refused 429 with
      // Retry-After (targets.md §2.8: learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits;
      // the error text as seen in the wild, §2.9 pitfall 2). Inner requests of a $batch count one by one
      // (json-batching: "every inner request counts against throttling separately"). /subscriptions is no mailbox.
      if (mailbox && n > mailboxConcurrency) {
        throttledBy.set(mailbox, (throttledBy.get(mailbox) ?? 0) + 1);
        return send(429, err('ApplicationThrottled', 'Application is over its MailboxConcurrency limit.'), { 'retry-after': String(o.throttleRetryAfterSeconds ?? 1) });
      }
      inFlight.set(mailbox, n);
      try {
        if (o.latencyMs) await new Promise((r) => setTimeout(r, o.latencyMs));
        const fault = injected.shift();
        if (fault) return send(fault.status, err(fault.status === 429 ? 'ApplicationThrottled' : fault.status === 403 ? 'ErrorAccessDenied' : 'ServiceUnavailable', 'Injected'), fault.headers);
        if (/^\/v1\.0\/subscriptions(\/|$)/.test(url.pathname)) {
          const a = await subscriptionsApi(req.method ?? '', url.pathname, body, auth.slice(7));
          return send(a.status, a.body);
        }
        if (listing) {
          const undocumented = [...url.searchParams.keys()].filter((k) => !LIST_PARAMS.has(k));
          if (undocumented.length) {
            state.violations.push(`GET calendars: unknown query option ${undocumented.join(', ')}`);
            return send(400, err('BadRequest', `Query option '${undocumented[0]}' is not allowed.`));
          }
          const select = url.searchParams.get('$select')?.split(',');
          const all = calsOf(mailbox).map((c) => (select ? Object.fromEntries(Object.entries(c).filter(([k]) => k === 'id' || select.includes(k))) : c));
          const bad = all.filter((c) => !validateCalendar(c));
          if (bad.length) state.violations.push(`GET calendars answer: ${ajv.errorsText(validateCalendar.errors)}`);
          const top = Math.min(Number(url.searchParams.get('$top') ?? 10), pageLimit);
          const skip = Number(url.searchParams.get('$skip') ?? 0);
          const next = new URLSearchParams(url.searchParams);
          next.set('$skip', String(skip + top));
          return send(200, { '@odata.context': `${state.url}/v1.0/$metadata#users('${mailbox}')/calendars`, value: all.slice(skip, skip + top), ...(skip + top < all.length ? { '@odata.nextLink': `${state.url}${url.pathname}?${next}` } : {}) });
        }
        if (calendarId !== undefined) {
          const c = calsOf(mailbox).find((x) => x.id === calendarId);
          if (!c) return send(404, err('ErrorItemNotFound', 'The specified object was not found in the store.'));
          if (req.method !== 'GET' && !c.canEdit) return send(403, err('ErrorAccessDenied', 'Access is denied. Check credentials and try again.'));
        }
        const events = box(storeKey(mailbox, calendarId));
        const id = /\/events\/([^/?]+)$/.exec(url.pathname)?.[1];
        const stamp = (e: GEvent): GEvent => ({ ...e, '@odata.etag': `W/"${++etagN}"`, changeKey: String(etagN), lastModifiedDateTime: new Date().toISOString() });
        if (req.method === 'POST') {
          // transactionId recognises a retried create, but only for a while: Graph does not document how long it
          // remembers one (targets.md §2.4; the event resource's transactionId text), so an ambiguous create must
          // be resolved by the lookup on our extended property, not by the transactionId alone.
          const txKey = body!.transactionId ? `${storeKey(mailbox, calendarId)}|${body!.transactionId}` : undefined;
          const known = txKey ? transactions.get(txKey) : undefined;
          const dup = known && Date.now() - known.at <= transactionMemoryMs ? events.get(known.id) : undefined;
          const ev = dup ?? stamp({ ...body, id: `AAMk${randomBytes(16).toString('base64url')}`, iCalUId: randomUUID() });
          events.set(ev.id, ev);
          if (txKey && !dup) transactions.set(txKey, { id: ev.id, at: Date.now() });
          if (!dup) changed(storeKey(mailbox, calendarId), 'created', ev);
          if (lieAfterCreate > 0) {
            lieAfterCreate--;
            return send(500, err('UnknownError', 'An internal server error occurred.'));
          }
          return send(201, withExpanded(ev, url));
        }
        if (req.method === 'GET' && /\/calendarView\/delta$/.test(url.pathname)) {
          const changeNo = (e: GEvent) => Number(/(\d+)/.exec(String(e['@odata.etag']))?.[1] ?? 0);
          const token = url.searchParams.get('$deltatoken');
          const base = `${state.url}${url.pathname}`;
          if (token !== null) {
            const since = Number(token);
            if (!Number.isFinite(since) || since < deltaValidFrom) return send(410, err('SyncStateNotFound', 'The sync state generation is not found.'));
            const changed = [...events.values()].filter((e) => changeNo(e) > since);
            const gone = (removed.get(storeKey(mailbox, calendarId)) ?? []).filter((r) => r.at > since).map((r) => ({ id: r.id, '@removed': { reason: 'deleted' } }));
            return send(200, { value: [...changed.map((e) => withExpanded(e, url)), ...gone], '@odata.deltaLink': `${base}?$deltatoken=${etagN}` });
          }
          if (!url.searchParams.get('startDateTime') || !url.searchParams.get('endDateTime')) return send(400, err('ErrorInvalidParameter', 'startDateTime and endDateTime are required'));
          // The first round comes in two pages, so nextLink is followed.
          const all = [...events.values()];
          const half = Math.ceil(all.length / 2);
          if (url.searchParams.get('$skiptoken') === null && all.length > 1) {
            return send(200, { value: all.slice(0, half).map((e) => withExpanded(e, url)), '@odata.nextLink': `${base}?${url.searchParams}&$skiptoken=${half}` });
          }
          const from = Number(url.searchParams.get('$skiptoken') ?? 0);
          return send(200, { value: all.slice(from).map((e) => withExpanded(e, url)), '@odata.deltaLink': `${base}?$deltatoken=${etagN}` });
        }
        if (req.method === 'GET' && /\/calendarView$/.test(url.pathname)) {
          const undocumented = [...url.searchParams.keys()].filter((k) => !VIEW_PARAMS.has(k));
          if (undocumented.length) {
            state.violations.push(`GET calendarView: undocumented query parameter ${undocumented.join(', ')}`);
            return send(400, err('BadRequest', `Query option '${undocumented[0]}' is not allowed.`));
          }
          const from = Date.parse(url.searchParams.get('startDateTime') ?? '');
          const to = Date.parse(url.searchParams.get('endDateTime') ?? '');
          if (!Number.isFinite(from) || !Number.isFinite(to)) return send(400, err('ErrorInvalidParameter', 'startDateTime and endDateTime are required'));
          const at = (t: { dateTime: string; timeZone: string }) => Date.parse(localToUtc(t.dateTime.slice(0, 19), t.timeZone === 'UTC' ? 'UTC' : t.timeZone));
          const inView = [...events.values()].filter((e) => at(e.start) < to && at(e.end) > from);
          // Pages of $top (Graph's default page size is 10), the next one linked with $skip.
          const top = Math.min(Number(url.searchParams.get('$top') ?? 10), pageLimit);
          const skip = Number(url.searchParams.get('$skip') ?? 0);
          const page = inView.slice(skip, skip + top).map((e) => withExpanded(inZone(e, String(req.headers.prefer ?? '')), url));
          const next = new URLSearchParams(url.searchParams);
          next.set('$skip', String(skip + top));
          return send(200, { value: page, ...(skip + top < inView.length ? { '@odata.nextLink': `${state.url}${url.pathname}?${next}` } : {}) });
        }
        if (req.method === 'GET' && !id) {
          const filter = url.searchParams.get('$filter');
          let match: ((e: GEvent) => boolean) | undefined;
          if (filter !== null) {
            const f = extendedPropertyFilter(filter);
            if (typeof f === 'string') {
              state.violations.push(`GET events: ${f}`);
              return send(400, err('ErrorInvalidUrlQueryFilter', 'The filter expression is invalid.'));
            }
            match = (e) => (e.singleValueExtendedProperties ?? []).some((p: { id: string; value: string }) => sameProperty(p.id, f.id) && String(p.value).toLowerCase() === f.value.toLowerCase());
          }
          const items = [...events.values()].filter((e) => !match || match(e));
          return send(200, { value: items.map((e) => ({ id: e.id, subject: e.subject, ...expandedOf(e, url) })) });
        }
        const ev = id ? events.get(decodeURIComponent(id)) : undefined;
        if (!ev) return send(404, err('ErrorItemNotFound', 'The specified object was not found in the store.'));
        if (req.headers['if-match'] && req.headers['if-match'] !== ev['@odata.etag']) return send(412, err('ErrorIrresolvableConflict', 'The change key passed in the request does not match the current change key for the item.'));
        if (req.method === 'GET') return send(200, withExpanded(ev, url));
        if (req.method === 'PATCH') {
          const next = stamp({ ...ev, ...body, id: ev.id, transactionId: ev.transactionId });
          events.set(ev.id, next);
          changed(storeKey(mailbox, calendarId), 'updated', next);
          return send(200, withExpanded(next, url));
        }
        if (req.method === 'DELETE') {
          events.delete(ev.id);
          tombstone(storeKey(mailbox, calendarId), ev.id);
          changed(storeKey(mailbox, calendarId), 'deleted', ev);
          return send(204);
        }
        return send(405, err('MethodNotAllowed', 'not supported by the fake'));
      } finally {
        inFlight.set(mailbox, (inFlight.get(mailbox) ?? 1) - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  state.url = `http://127.0.0.1:${port}`;
  state.tokenUrl = `http://127.0.0.1:${port}/tenant/oauth2/v2.0/token`;
  return state;
}
