// A fake Salesforce org (login host + instance on one node:http server) enforcing the documented REST rules
// (targets.md §5, samples in test/fixtures/samples/salesforce):
// - token endpoint: refresh_token grant (client id/secret/refresh token checked) and the JWT bearer grant
//   (RS256 verified with the connected app's certificate key; iss, sub, aud checked; exp in the future and at
//   most 3 minutes ahead); the answer names `instance_url`; the JWT flow returns no refresh token;
// - every REST call needs a live Bearer token (401 INVALID_SESSION_ID) and a `/services/data/vNN.N` prefix;
//   every answer carries `Sforce-Limit-Info: api-usage=<used>/<allowed>`; over the allocation → 403
//   REQUEST_LIMIT_EXCEEDED; a composite call counts once;
// - Event upsert by external id: only fields flagged External ID (404 NOT_FOUND otherwise); the key and Id
//   must not be in the body; 201 created / 200 updated; 300 when several records carry the value;
//   `updateOnly=true` → 404 instead of creating; EndDateTime or DurationInMinutes required; Subject ≤ 255,
//   Location ≤ 255, Description ≤ 32,000; WhoId must be a Contact or Lead, OwnerId a user
//   (INVALID_CROSS_REFERENCE_KEY); unknown fields → INVALID_FIELD;
// - Contact: LastName required; Lead: LastName and Company required; composite ≤ 25 subrequests, ≤ 5 queries,
//   `@{ref.field}` references, allOrNone rolls back; SOQL: `SELECT Id FROM Contact|Lead WHERE Email = '…'`.
// Rule breaks are answered like Salesforce would and recorded in `violations` when they are our mistakes.
import http from 'node:http';
import { createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';

type Rec = Record<string, unknown> & { Id: string };
type SfAnswer = { status: number; body?: unknown };

const EVENT_FIELDS = new Set(['Subject', 'StartDateTime', 'EndDateTime', 'ActivityDateTime', 'ActivityDate', 'DurationInMinutes', 'IsAllDayEvent', 'Description', 'Location', 'ShowAs', 'IsPrivate', 'OwnerId', 'WhoId', 'WhatId']);
const CONTACT_FIELDS = new Set(['FirstName', 'LastName', 'Email', 'Phone', 'AccountId']);
const LEAD_FIELDS = new Set(['FirstName', 'LastName', 'Company', 'Email', 'Phone', 'LeadSource', 'Description', 'Status']);
const PREFIX = { Event: '00U', Contact: '003', Lead: '00Q' } as const;
type SObject = keyof typeof PREFIX;

export interface FakeSalesforceOptions {
  /** Custom fields on Event (Activity), with which of them are External ID fields. */
  eventCustomFields?: string[];
  eventExternalIds?: string[];
  leadCustomFields?: string[];
  leadExternalIds?: string[];
  /** Users (OwnerId values). */
  users?: string[];
  allowed?: number;
  version?: string;
}

export interface FakeSalesforce {
  url: string;
  loginUrl: string;
  credentials: { clientId: string; clientSecret: string; refreshToken: string; username: string; privateKey: string };
  records(o: SObject): Rec[];
  requests: { method: string; path: string; body?: unknown }[];
  violations: string[];
  /** API requests counted in the rolling allocation. */
  usage: { used: number; allowed: number };
  tokenGrants: { grant: string }[];
  addRecord(o: SObject, fields: Record<string, unknown>): Rec;
  expireTokens(): void;
  editBehindOurBack(o: SObject, id: string, patch: Record<string, unknown>): void;
  deleteBehindOurBack(o: SObject, id: string): void;
  /** Accept this Bearer token as if the fake had issued it (an access token from the OAuth fake, test/fakes/oauth-server.ts). */
  acceptToken(token: string): void;
  close(): Promise<void>;
}

export async function startFakeSalesforce(o: FakeSalesforceOptions = {}): Promise<FakeSalesforce> {
  const version = o.version ?? 'v62.0';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const creds = {
    clientId: `3MVG9${randomBytes(8).toString('hex')}`, clientSecret: randomBytes(12).toString('hex'), refreshToken: `5Aep${randomBytes(12).toString('hex')}`,
    username: 'integration.meridian@clinic.example', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  const eventCustom = new Set(o.eventCustomFields ?? ['Meridian_Appointment_Id__c', 'Meridian_Revision__c', 'Meridian_Status__c']);
  const eventExt = new Set(o.eventExternalIds ?? ['Meridian_Appointment_Id__c']);
  const leadCustom = new Set(o.leadCustomFields ?? ['Meridian_Lead_Id__c']);
  const leadExt = new Set(o.leadExternalIds ?? ['Meridian_Lead_Id__c']);
  const users = new Set(o.users ?? ['0055g00000HqT2kAAF']);
  let db: Record<SObject, Map<string, Rec>> = { Event: new Map(), Contact: new Map(), Lead: new Map() };
  const tokens = new Set<string>();
  const violations: string[] = [];
  const requests: FakeSalesforce['requests'] = [];
  const tokenGrants: FakeSalesforce['tokenGrants'] = [];
  const usage = { used: 0, allowed: o.allowed ?? 100_000 };
  let seq = 0;
  let url = '';

  const newId = (obj: SObject) => `${PREFIX[obj]}5g${String(++seq).padStart(10, '0')}AAA`;
  const err = (status: number, errorCode: string, message: string, fields?: string[]): SfAnswer => ({ status, body: [{ message, errorCode, ...(fields ? { fields } : {}) }] });
  const mistake = (what: string, a: SfAnswer) => {
    violations.push(what);
    return a;
  };
  const custom = (obj: SObject) => (obj === 'Event' ? eventCustom : obj === 'Lead' ? leadCustom : new Set<string>());
  const known = (obj: SObject) => new Set([...(obj === 'Event' ? EVENT_FIELDS : obj === 'Lead' ? LEAD_FIELDS : CONTACT_FIELDS), ...custom(obj)]);

  /** Field rules of one write (merged = the record as it would be after the write). */
  function check(obj: SObject, body: Record<string, unknown>, merged: Record<string, unknown>): SfAnswer | undefined {
    const unknown = Object.keys(body).filter((k) => !known(obj).has(k));
    if (unknown.length) return mistake(`${obj}: unknown fields ${unknown.join(',')}`, err(400, 'INVALID_FIELD', `No such column '${unknown[0]}' on sobject of type ${obj}`, unknown));
    const req = obj === 'Event' ? [] : obj === 'Lead' ? ['LastName', 'Company'] : ['LastName'];
    const missing = req.filter((f) => !merged[f]);
    if (missing.length) return mistake(`${obj}: missing ${missing.join(',')}`, err(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing));
    if (obj === 'Event') {
      if (!merged.IsAllDayEvent && !merged.EndDateTime && merged.DurationInMinutes == null) return mistake('Event: EndDateTime or DurationInMinutes required', err(400, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [DurationInMinutes]', ['DurationInMinutes']));
      for (const f of ['StartDateTime', 'EndDateTime']) {
        if (merged[f] != null && (typeof merged[f] !== 'string' || !/Z$|[+-]\d{2}:?\d{2}$/.test(merged[f] as string) || Number.isNaN(Date.parse(merged[f] as string)))) return mistake(`Event: ${f} not a UTC date-time`, err(400, 'JSON_PARSER_ERROR', `Cannot deserialize ${f}`, [f]));
      }
      if (Date.parse(String(merged.EndDateTime)) < Date.parse(String(merged.StartDateTime))) return mistake('Event: ends before it starts', err(400, 'FIELD_INTEGRITY_EXCEPTION', 'End must be after start', ['EndDateTime']));
      for (const [f, n] of [['Subject', 255], ['Location', 255], ['Description', 32_000]] as const) {
        if (typeof merged[f] === 'string' && (merged[f] as string).length > n) return mistake(`Event: ${f} too long`, err(400, 'STRING_TOO_LONG', `${f}: data value too large`, [f]));
      }
      if (merged.WhoId != null && !db.Contact.has(String(merged.WhoId)) && !db.Lead.has(String(merged.WhoId))) return err(400, 'INVALID_CROSS_REFERENCE_KEY', 'Name ID: id value of incorrect type', ['WhoId']);
      if (merged.OwnerId != null && !users.has(String(merged.OwnerId))) return err(400, 'INVALID_CROSS_REFERENCE_KEY', 'Assigned To ID: owner cannot be blank', ['OwnerId']);
      if (merged.ShowAs != null && !['Busy', 'OutOfOffice', 'Free'].includes(String(merged.ShowAs))) return mistake('Event: bad ShowAs', err(400, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', 'Show Time As: bad value', ['ShowAs']));
    }
    return undefined;
  }

  function create(obj: SObject, body: Record<string, unknown>): SfAnswer {
    if ('Id' in body) return mistake(`${obj}: Id in a create body`, err(400, 'INVALID_FIELD', 'Id not allowed'));
    const bad = check(obj, body, body);
    if (bad) return bad;
    const Id = newId(obj);
    db[obj].set(Id, { ...body, Id, LastModifiedDate: new Date().toISOString() });
    return { status: 201, body: { id: Id, success: true, errors: [] } };
  }

  function upsert(obj: SObject, field: string, value: string, body: Record<string, unknown>, updateOnly: boolean): SfAnswer {
    const ext = obj === 'Event' ? eventExt : obj === 'Lead' ? leadExt : new Set<string>();
    if (!ext.has(field)) return mistake(`${obj}: upsert by ${field}, which is not an External ID field`, err(404, 'NOT_FOUND', 'Provided external ID field does not exist or is not accessible'));
    if (field in body || 'Id' in body) return mistake(`${obj}: the key field or Id in an upsert body`, err(400, 'INVALID_FIELD', 'The key field must not be in the body'));
    const matches = [...db[obj].values()].filter((r) => r[field] === value);
    if (matches.length > 1) return { status: 300, body: matches.map((m) => `/services/data/${version}/sobjects/${obj}/${m.Id}`) };
    if (matches.length === 0) {
      if (updateOnly) return err(404, 'NOT_FOUND', 'The requested resource does not exist');
      const c = create(obj, { ...body, [field]: value });
      return c.status === 201 ? { status: 201, body: { ...(c.body as object), created: true } } : c;
    }
    const rec = matches[0];
    const bad = check(obj, body, { ...rec, ...body });
    if (bad) return bad;
    Object.assign(rec, body, { LastModifiedDate: new Date().toISOString() });
    return { status: 200, body: { id: rec.Id, success: true, errors: [], created: false } };
  }

  function query(q: string): SfAnswer {
    const m = /^SELECT Id FROM (Contact|Lead) WHERE Email = '((?:[^'\\]|\\.)*)'( AND IsConverted = false)? ORDER BY CreatedDate LIMIT 1$/.exec(q);
    if (!m) return mistake(`unexpected SOQL: ${q}`, err(400, 'MALFORMED_QUERY', 'unexpected query'));
    const email = m[2].replace(/\\(.)/g, '$1');
    const rows = [...db[m[1] as SObject].values()].filter((r) => String(r.Email ?? '').toLowerCase() === email.toLowerCase() && !r.IsConverted);
    return { status: 200, body: { totalSize: Math.min(rows.length, 1), done: true, records: rows.slice(0, 1).map((r) => ({ attributes: { type: m[1] }, Id: r.Id })) } };
  }

  /** One REST request below /services/data/<version> (also a composite subrequest). */
  function rest(method: string, path: string, body: unknown): SfAnswer {
    const u = new URL(path, 'http://x');
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const b = (body ?? {}) as Record<string, unknown>;
    if (parts[0] === 'query' && method === 'GET') return query(u.searchParams.get('q') ?? '');
    // The version's resource list (GET /services/data/vNN.N/).
    if (parts.length === 0 && method === 'GET') {
      const base = `/services/data/${version}`;
      return { status: 200, body: Object.fromEntries(['sobjects', 'query', 'composite', 'limits', 'search', 'tooling'].map((k) => [k, `${base}/${k}`])) };
    }
    if (parts[0] !== 'sobjects' || !(parts[1] in PREFIX)) return mistake(`unexpected ${method} ${path}`, err(404, 'NOT_FOUND', 'The requested resource does not exist'));
    const obj = parts[1] as SObject;
    if (parts.length === 2 && method === 'POST') return create(obj, b);
    if (parts.length === 4 && method === 'PATCH') return upsert(obj, parts[2], parts[3], b, u.searchParams.get('updateOnly') === 'true');
    if (parts.length === 4 && method === 'GET') {
      const matches = [...db[obj].values()].filter((r) => r[parts[2]] === parts[3]);
      if (matches.length > 1) return { status: 300, body: matches.map((m) => `/services/data/${version}/sobjects/${obj}/${m.Id}`) };
      if (!matches[0]) return err(404, 'NOT_FOUND', 'The requested resource does not exist');
      const fields = u.searchParams.get('fields')?.split(',');
      const rec = matches[0];
      // Salesforce writes date-times as 2027-03-10T16:30:00.000+0000.
      const out: Record<string, unknown> = { attributes: { type: obj }, Id: rec.Id };
      for (const f of fields ?? Object.keys(rec)) out[f] = /DateTime$/.test(f) && typeof rec[f] === 'string' ? new Date(rec[f] as string).toISOString().replace('Z', '+0000') : rec[f] ?? null;
      return { status: 200, body: out };
    }
    return mistake(`unexpected ${method} ${path}`, err(405, 'METHOD_NOT_ALLOWED', 'HTTP Method not allowed'));
  }

  function composite(body: unknown): SfAnswer {
    const c = body as { allOrNone?: boolean; compositeRequest?: { method: string; url: string; referenceId: string; body?: unknown }[] };
    const subs = c?.compositeRequest;
    if (!Array.isArray(subs) || subs.length === 0 || subs.length > 25) return mistake('composite: 1–25 subrequests', err(400, 'INVALID_BATCH_REQUEST', 'bad composite'));
    if (subs.filter((s) => /\/query/.test(s.url)).length > 5) return mistake('composite: more than 5 queries', err(400, 'INVALID_BATCH_REQUEST', 'too many queries'));
    const snapshot = structuredClone(db);
    const results: Record<string, unknown> = {};
    const out: { body: unknown; httpHeaders: Record<string, string>; httpStatusCode: number; referenceId: string }[] = [];
    let failed = false;
    for (const s of subs) {
      if (!s.url.startsWith(`/services/data/${version}/`)) violations.push(`composite: subrequest url ${s.url} outside /services/data/${version}`);
      if (failed && c.allOrNone) {
        out.push({ body: [{ errorCode: 'PROCESSING_HALTED', message: 'The transaction was rolled back since another operation in the same transaction failed.' }], httpHeaders: {}, httpStatusCode: 400, referenceId: s.referenceId });
        continue;
      }
      const resolved = JSON.parse(JSON.stringify(s.body ?? null).replace(/@\{(\w+)\.(\w+)\}/g, (_m, ref: string, f: string) => String((results[ref] as Record<string, unknown> | undefined)?.[f] ?? '')));
      const r = rest(s.method, s.url.slice(`/services/data/${version}`.length), resolved ?? undefined);
      results[s.referenceId] = r.body;
      if (r.status >= 300) failed = true;
      out.push({ body: r.body ?? null, httpHeaders: {}, httpStatusCode: r.status, referenceId: s.referenceId });
    }
    if (failed && c.allOrNone) {
      db = snapshot;
      for (const x of out) if (x.httpStatusCode < 300) Object.assign(x, { httpStatusCode: 400, body: [{ errorCode: 'PROCESSING_HALTED', message: 'rolled back' }] });
    }
    return { status: 200, body: { compositeResponse: out } };
  }

  function token(form: URLSearchParams): SfAnswer {
    const grant = form.get('grant_type') ?? '';
    tokenGrants.push({ grant });
    const answer = () => {
      const t = `00D5g!${randomBytes(16).toString('hex')}`;
      tokens.add(t);
      return { access_token: t, scope: 'api', instance_url: url, id: `${url}/id/00D5g000004Xyz1EAB/0055g00000HqT2kAAF`, token_type: 'Bearer' };
    };
    if (grant === 'refresh_token') {
      if (form.get('client_id') !== creds.clientId || form.get('client_secret') !== creds.clientSecret || form.get('refresh_token') !== creds.refreshToken) {
        return { status: 400, body: { error: 'invalid_grant', error_description: 'expired access/refresh token' } };
      }
      return { status: 200, body: answer() };
    }
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const [h, p, sig] = (form.get('assertion') ?? '').split('.');
      const ok = Boolean(h && p && sig) && createVerify('RSA-SHA256').update(`${h}.${p}`).verify(publicKey, Buffer.from(sig, 'base64url'));
      if (!ok) return mistake('JWT: bad signature', { status: 400, body: { error: 'invalid_grant', error_description: 'invalid assertion' } });
      const head = JSON.parse(Buffer.from(h, 'base64url').toString());
      const c = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss?: string; sub?: string; aud?: string; exp?: number };
      const now = Date.now() / 1000;
      if (head.alg !== 'RS256') return mistake('JWT: alg is not RS256', { status: 400, body: { error: 'invalid_grant' } });
      if (c.iss !== creds.clientId || c.sub !== creds.username || c.aud !== url) return mistake('JWT: iss/sub/aud wrong', { status: 400, body: { error: 'invalid_grant', error_description: 'audience or issuer invalid' } });
      if (typeof c.exp !== 'number' || c.exp <= now || c.exp > now + 180 + 5) return mistake('JWT: exp missing, past, or more than 3 minutes ahead', { status: 400, body: { error: 'invalid_grant', error_description: 'expired' } });
      return { status: 200, body: answer() };
    }
    return mistake(`token: unsupported grant ${grant}`, { status: 400, body: { error: 'unsupported_grant_type' } });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url ?? '/', url);
      const send = (a: SfAnswer, counted = true) => {
        if (counted) res.setHeader('Sforce-Limit-Info', `api-usage=${usage.used}/${usage.allowed}`);
        if (a.body === undefined) res.writeHead(a.status).end();
        else res.writeHead(a.status, { 'content-type': 'application/json;charset=UTF-8' }).end(JSON.stringify(a.body));
      };
      try {
        handle(raw, u, send);
      } catch (e) {
        violations.push(`fake crashed: ${(e as Error).message}`);
        send({ status: 500, body: [{ errorCode: 'UNKNOWN_EXCEPTION', message: 'fake crashed' }] });
      }
    });
    const handle = (raw: string, u: URL, send: (a: SfAnswer, counted?: boolean) => void) => {
      if (u.pathname === '/services/oauth2/token' && req.method === 'POST') {
        if (!/application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) violations.push('token: not a form post');
        return send(token(new URLSearchParams(raw)), false);
      }
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return send(mistake('body is not JSON', err(400, 'JSON_PARSER_ERROR', 'not JSON')));
      }
      requests.push({ method: req.method ?? '', path: `${u.pathname}${u.search}`, body });
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!auth || !tokens.has(auth)) return send(err(401, 'INVALID_SESSION_ID', 'Session expired or invalid'));
      const m = /^\/services\/data\/(v\d+\.\d)(\/.*)$/.exec(u.pathname);
      if (!m) return send(mistake(`not a versioned REST path: ${u.pathname}`, err(404, 'NOT_FOUND', 'no such resource')));
      if (m[1] !== version) violations.push(`API version ${m[1]} (pinned ${version})`);
      if (usage.used >= usage.allowed) return send(err(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'));
      usage.used++;
      const path = `${m[2]}${u.search}`;
      send(m[2] === '/composite' && req.method === 'POST' ? composite(body) : rest(req.method ?? '', path, body));
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    url, loginUrl: url, credentials: creds, requests, violations, usage, tokenGrants,
    records: (obj) => [...db[obj].values()],
    addRecord(obj, fields) {
      const Id = newId(obj);
      const r = { ...fields, Id };
      db[obj].set(Id, r);
      return r;
    },
    expireTokens: () => tokens.clear(),
    editBehindOurBack(obj, id, patch) {
      Object.assign(db[obj].get(id)!, patch);
    },
    deleteBehindOurBack: (obj, id) => { db[obj].delete(id); },
    acceptToken: (t) => { tokens.add(t); },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
