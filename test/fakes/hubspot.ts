// A fake HubSpot CRM (meetings, contacts, OAuth token) enforcing the documented rules (targets.md §6):
// - Bearer auth: the private-app token, or access tokens from POST /oauth/v1/token (refresh_token grant);
// - request bodies validated with ajv against test/fixtures/specs/hubspot-crm/crm-v3.schema.json (written
//   from HubSpot's schema facts: create needs `properties` and `associations`, every property value is a
//   string, association shape, batch upsert inputs, search request fields);
// - meetings: `hs_timestamp` required on create; unknown properties → 400 VALIDATION_ERROR
//   (PROPERTY_DOESNT_EXIST); `hs_meeting_outcome` from its documented options; associations must point to an
//   existing contact with HUBSPOT_DEFINED type 200 (meeting → contact);
// - contacts: plain create of an existing e-mail → 409 CONFLICT ("Existing ID: n"); batch/upsert by
//   idProperty email creates or updates;
// - rate limit: at most `perTenSeconds` requests per rolling 10 s → 429 RATE_LIMIT TEN_SECONDLY_ROLLING;
//   every answer carries X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds;
// - search endpoints answer (validated) but are counted in `searches`: Meridian must never need them.
// `webhook(events, url, secret)` builds a delivery signed like HubSpot (v3) for the end-to-end tests.
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';

const Ajv2020 = Ajv2020Module.default;
const schema = JSON.parse(readFileSync(new URL('../fixtures/specs/hubspot-crm/crm-v3.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(schema);
const validator = (def: string) => ajv.getSchema(`hubspot-crm-v3.schema.json#/$defs/${def}`)!;
export const validate = {
  create: validator('SimplePublicObjectInputForCreate'),
  update: validator('SimplePublicObjectInput'),
  batchUpsert: validator('BatchInputSimplePublicObjectBatchInputUpsert'),
  search: validator('PublicObjectSearchRequest'),
};

const MEETING_PROPERTIES = new Set(['hs_timestamp', 'hs_meeting_title', 'hs_meeting_body', 'hs_internal_meeting_notes', 'hs_meeting_external_url', 'hs_meeting_location', 'hs_meeting_start_time', 'hs_meeting_end_time', 'hs_meeting_outcome', 'hubspot_owner_id', 'meridian_appointment_id']);
const CONTACT_PROPERTIES = new Set(['email', 'firstname', 'lastname', 'phone', 'lifecyclestage']);
const OUTCOMES = new Set(['SCHEDULED', 'COMPLETED', 'RESCHEDULED', 'NO_SHOW', 'CANCELED']);
const WINDOW_MS = 10_000;

export interface HsObject { id: string; properties: Record<string, string>; associations: string[]; archived: boolean; createdAt: string; updatedAt: string }
type Answer = { status: number; body?: unknown };

export interface FakeHubSpot {
  url: string;
  privateAppToken: string;
  oauth: { clientId: string; clientSecret: string; refreshToken: string };
  meetings(): HsObject[];
  contacts(): HsObject[];
  requests: { method: string; path: string; body?: unknown }[];
  violations: string[];
  searches: number;
  rateLimited: number;
  /** Requests allowed per rolling 10 seconds. */
  perTenSeconds: number;
  owners: Set<string>;
  expireTokens(): void;
  editBehindOurBack(id: string, props: Record<string, string>): void;
  archiveBehindOurBack(id: string): void;
  webhook(events: Record<string, unknown>[], url: string, clientSecret: string, at?: Date): { url: string; headers: Record<string, string>; body: Buffer };
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
}

export async function startFakeHubSpot(o: { perTenSeconds?: number; owners?: string[] } = {}): Promise<FakeHubSpot> {
  const meetings = new Map<string, HsObject>();
  const contacts = new Map<string, HsObject>();
  const tokens = new Set<string>();
  const privateAppToken = `pat-na1-${randomBytes(12).toString('hex')}`;
  const oauth = { clientId: randomBytes(8).toString('hex'), clientSecret: randomBytes(12).toString('hex'), refreshToken: randomBytes(12).toString('hex') };
  const violations: string[] = [];
  const requests: FakeHubSpot['requests'] = [];
  const stamps: number[] = [];
  let seq = 71130854000;
  let url = '';

  const state = { searches: 0, rateLimited: 0, perTenSeconds: o.perTenSeconds ?? 100 };
  const owners = new Set(o.owners ?? ['81234567']);
  const now = () => new Date().toISOString();
  const error = (status: number, category: string, message: string, extra: Record<string, unknown> = {}): Answer =>
    ({ status, body: { status: 'error', message, correlationId: randomBytes(8).toString('hex'), category, ...extra } });
  const mistake = (what: string, a: Answer) => {
    violations.push(what);
    return a;
  };
  const schemaError = (op: string, v: ReturnType<typeof validator>) => mistake(`${op}: ${ajv.errorsText(v.errors)}`, error(400, 'VALIDATION_ERROR', 'Invalid input JSON'));
  const view = (x: HsObject) => ({ id: x.id, properties: { ...x.properties, hs_object_id: x.id }, createdAt: x.createdAt, updatedAt: x.updatedAt, archived: x.archived });

  function checkProperties(kind: 'meeting' | 'contact', p: Record<string, string>): Answer | undefined {
    const allowed = kind === 'meeting' ? MEETING_PROPERTIES : CONTACT_PROPERTIES;
    const unknown = Object.keys(p).filter((k) => !allowed.has(k));
    if (unknown.length) return mistake(`${kind}: unknown properties ${unknown.join(',')}`, error(400, 'VALIDATION_ERROR', 'Property values were not valid', { errors: unknown.map((k) => ({ code: 'PROPERTY_DOESNT_EXIST', context: { propertyName: [k] } })) }));
    for (const f of ['hs_timestamp', 'hs_meeting_start_time', 'hs_meeting_end_time']) {
      if (p[f] !== undefined && Number.isNaN(Date.parse(p[f]))) return mistake(`meeting: ${f} is not a date-time`, error(400, 'VALIDATION_ERROR', 'Property values were not valid'));
    }
    if (p.hs_meeting_outcome !== undefined && !OUTCOMES.has(p.hs_meeting_outcome)) return mistake(`meeting: outcome ${p.hs_meeting_outcome}`, error(400, 'VALIDATION_ERROR', 'Property values were not valid'));
    if (p.hubspot_owner_id !== undefined && p.hubspot_owner_id !== '' && !owners.has(p.hubspot_owner_id)) return error(400, 'VALIDATION_ERROR', 'Property values were not valid');
    return undefined;
  }

  function createMeeting(b: { properties: Record<string, string>; associations: { to: { id: string }; types: { associationCategory: string; associationTypeId: number }[] }[] }): Answer {
    if (!b.properties.hs_timestamp) return mistake('meeting: hs_timestamp missing', error(400, 'VALIDATION_ERROR', 'hs_timestamp is required'));
    const bad = checkProperties('meeting', b.properties);
    if (bad) return bad;
    for (const a of b.associations) {
      if (!contacts.has(a.to.id)) return mistake(`meeting: association to unknown contact ${a.to.id}`, error(400, 'VALIDATION_ERROR', 'association target does not exist'));
      if (!a.types.some((t) => t.associationCategory === 'HUBSPOT_DEFINED' && t.associationTypeId === 200)) return mistake('meeting: association type is not HUBSPOT_DEFINED 200', error(400, 'VALIDATION_ERROR', 'invalid association type'));
    }
    const id = String(++seq);
    const m: HsObject = { id, properties: { ...b.properties, hs_createdate: now(), hs_lastmodifieddate: now() }, associations: b.associations.map((a) => a.to.id), archived: false, createdAt: now(), updatedAt: now() };
    meetings.set(id, m);
    return { status: 201, body: view(m) };
  }

  function upsertContacts(b: { inputs: { id: string; idProperty?: string; properties: Record<string, string> }[] }): Answer {
    const results = [];
    for (const i of b.inputs) {
      if (i.idProperty !== 'email') return mistake(`contacts upsert: idProperty ${i.idProperty}`, error(400, 'VALIDATION_ERROR', 'idProperty must be a unique property'));
      const bad = checkProperties('contact', i.properties);
      if (bad) return bad;
      const email = i.id.toLowerCase();
      let c = [...contacts.values()].find((x) => x.properties.email === email);
      const isNew = !c;
      if (!c) {
        c = { id: String(90000 + contacts.size + 1), properties: { email }, associations: [], archived: false, createdAt: now(), updatedAt: now() };
        contacts.set(c.id, c);
      }
      Object.assign(c.properties, i.properties);
      c.updatedAt = now();
      results.push({ ...view(c), new: isNew });
    }
    return { status: 200, body: { status: 'COMPLETE', results, startedAt: now(), completedAt: now() } };
  }

  function route(method: string, path: string, query: URLSearchParams, body: unknown): Answer {
    const b = body as never;
    if (method === 'POST' && path === '/crm/v3/objects/meetings') return validate.create(body) ? createMeeting(b) : schemaError('create meeting', validate.create);
    if (method === 'POST' && /^\/crm\/v3\/objects\/(meetings|contacts)\/search$/.test(path)) {
      state.searches++;
      return validate.search(body) ? { status: 200, body: { total: 0, results: [] } } : schemaError('search', validate.search);
    }
    if (method === 'POST' && path === '/crm/v3/objects/contacts/batch/upsert') return validate.batchUpsert(body) ? upsertContacts(b) : schemaError('contacts batch/upsert', validate.batchUpsert);
    if (method === 'POST' && path === '/crm/v3/objects/contacts') {
      if (!validate.create(body)) return schemaError('create contact', validate.create);
      const email = (b as { properties: Record<string, string> }).properties.email?.toLowerCase();
      const existing = [...contacts.values()].find((x) => x.properties.email === email);
      if (existing) return error(409, 'CONFLICT', `Contact already exists. Existing ID: ${existing.id}`);
      return upsertContacts({ inputs: [{ id: email ?? '', idProperty: 'email', properties: (b as { properties: Record<string, string> }).properties }] });
    }
    if (method === 'GET' && path === '/crm/v3/objects/meetings') {
      // List (GET /crm/v3/objects/meetings): limit ≤ 100 (default 10), `after` paging, `properties` to return.
      const limit = Number(query.get('limit') ?? 10);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) return mistake(`list meetings: limit ${query.get('limit')} is not 1–100`, error(400, 'VALIDATION_ERROR', 'limit must be between 1 and 100'));
      const unknown = [...query.keys()].filter((k) => !['limit', 'after', 'properties', 'propertiesWithHistory', 'associations', 'archived'].includes(k));
      if (unknown.length) return mistake(`list meetings: unknown parameter ${unknown.join(', ')}`, error(400, 'VALIDATION_ERROR', 'unknown parameter'));
      const wanted = query.get('properties')?.split(',') ?? [];
      const live = [...meetings.values()].filter((x) => x.archived === (query.get('archived') === 'true'));
      const from = Number(query.get('after') ?? 0);
      const page = live.slice(from, from + limit).map((x) => ({ ...view(x), properties: Object.fromEntries(['hs_object_id', ...wanted].map((k) => [k, k === 'hs_object_id' ? x.id : x.properties[k] ?? null])) }));
      return { status: 200, body: { results: page, ...(from + limit < live.length ? { paging: { next: { after: String(from + limit) } } } : {}) } };
    }
    const m = /^\/crm\/v3\/objects\/meetings\/([^/]+)$/.exec(path);
    if (m) {
      const meeting = meetings.get(decodeURIComponent(m[1]));
      if (!meeting || meeting.archived) return error(404, 'OBJECT_NOT_FOUND', 'Object not found');
      if (method === 'GET') {
        const wanted = query.get('properties')?.split(',');
        const v = view(meeting);
        return { status: 200, body: wanted ? { ...v, properties: Object.fromEntries(wanted.map((k) => [k, meeting.properties[k] ?? null])) } : v };
      }
      if (method === 'PATCH') {
        if (!validate.update(body)) return schemaError('update meeting', validate.update);
        const bad = checkProperties('meeting', (b as { properties: Record<string, string> }).properties);
        if (bad) return bad;
        Object.assign(meeting.properties, (b as { properties: Record<string, string> }).properties, { hs_lastmodifieddate: now() });
        meeting.updatedAt = now();
        return { status: 200, body: view(meeting) };
      }
      if (method === 'DELETE') {
        violations.push('meeting archived: Meridian keeps CRM history');
        meeting.archived = true;
        return { status: 204 };
      }
    }
    return mistake(`unexpected ${method} ${path}`, error(404, 'NOT_FOUND', 'no such endpoint'));
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url ?? '/', url);
      const t = Date.now();
      while (stamps.length && stamps[0] <= t - WINDOW_MS) stamps.shift();
      const limits = () => ({ 'x-hubspot-ratelimit-max': String(state.perTenSeconds), 'x-hubspot-ratelimit-remaining': String(Math.max(0, state.perTenSeconds - stamps.length)), 'x-hubspot-ratelimit-interval-milliseconds': String(WINDOW_MS) });
      const send = (a: Answer, headers: Record<string, string> = {}) => {
        if (a.body === undefined) res.writeHead(a.status, headers).end();
        else res.writeHead(a.status, { 'content-type': 'application/json;charset=utf-8', ...headers }).end(JSON.stringify(a.body));
      };
      try {
        handle(raw, u, send, limits, t);
      } catch (e) {
        violations.push(`fake crashed: ${(e as Error).message}`);
        send({ status: 500, body: { status: 'error', message: 'fake crashed', category: 'INTERNAL_ERROR' } });
      }
    });
    const handle = (raw: string, u: URL, send: (a: Answer, h?: Record<string, string>) => void, limits: () => Record<string, string>, t: number) => {
      if (u.pathname === '/oauth/v1/token' && req.method === 'POST') {
        const f = new URLSearchParams(raw);
        if (f.get('grant_type') !== 'refresh_token' || f.get('client_id') !== oauth.clientId || f.get('client_secret') !== oauth.clientSecret || f.get('refresh_token') !== oauth.refreshToken) {
          return send({ status: 400, body: { status: 'BAD_REFRESH_TOKEN', message: 'missing or unknown refresh token' } });
        }
        const tok = randomBytes(16).toString('hex');
        tokens.add(tok);
        return send({ status: 200, body: { access_token: tok, refresh_token: oauth.refreshToken, expires_in: 1800, token_type: 'bearer' } });
      }
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return send(mistake('body is not JSON', error(400, 'VALIDATION_ERROR', 'Invalid input JSON')));
      }
      requests.push({ method: req.method ?? '', path: `${u.pathname}${u.search}`, body });
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!auth || (auth !== privateAppToken && !tokens.has(auth))) return send(error(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found.'));
      if (stamps.length >= state.perTenSeconds) {
        state.rateLimited++;
        return send({ status: 429, body: { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', correlationId: randomBytes(8).toString('hex'), policyName: 'TEN_SECONDLY_ROLLING' } }, limits());
      }
      stamps.push(t);
      send(route(req.method ?? '', u.pathname, u.searchParams, body), limits());
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    url, privateAppToken, oauth, requests, violations, owners,
    get searches() { return state.searches; },
    get rateLimited() { return state.rateLimited; },
    get perTenSeconds() { return state.perTenSeconds; },
    set perTenSeconds(n: number) { state.perTenSeconds = n; },
    meetings: () => [...meetings.values()],
    contacts: () => [...contacts.values()],
    expireTokens: () => tokens.clear(),
    editBehindOurBack(id, props) {
      const m = meetings.get(id)!;
      Object.assign(m.properties, props, { hs_lastmodifieddate: now() });
    },
    archiveBehindOurBack(id) {
      meetings.get(id)!.archived = true;
    },
    webhook(events, hookUrl, clientSecret, at = new Date()) {
      const body = Buffer.from(JSON.stringify(events));
      const timestamp = String(at.getTime());
      const signature = createHmac('sha256', clientSecret).update(`POST${hookUrl}`).update(body).update(timestamp).digest('base64');
      return { url: hookUrl, body, headers: { 'content-type': 'application/json', 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': timestamp } };
    },
    acceptToken: (t) => { tokens.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
  } as FakeHubSpot;
}
