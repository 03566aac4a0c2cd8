// Access control on every route, walked from the OpenAPI document (generated from the route table, so
// a new route is covered the day it is added): without credentials 401; with an API key or a staff
// session below the route's scope 403; a practitioner's session 403 outside their own-schedule routes;
// a session's unsafe call without its CSRF token 403; with enough rights never a 401/403 or a 5xx.
// And the public routes' per-client rate limits: 429 with Retry-After.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { openHub, type Hub } from '../../src/engine/hub/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { createApiKey, type Scope } from '../../src/engine/hub/apikeys.ts';
import { createUser, type Role } from '../../src/http/auth.ts';
import { tempDir } from '../helpers.ts';

const RANK: Scope[] = ['read', 'write', 'admin'];
const PASSWORD = 'correct horse battery staple';
/** The routes a practitioner's session may call (src/http/auth.ts PRACTITIONER_RULES). */
const PRACTITIONER_MAY = new Set(['GET /api/v1/appointments', 'GET /api/v1/appointments/{id}', 'GET /api/v1/appointments/{id}/audit', 'GET /api/v1/practitioners', 'GET /api/v1/locations', 'GET /api/v1/services', 'GET /api/v1/audit/verify']);

interface Op { method: string; path: string; url: string; scope: Scope }

describe('every API route checks credentials, scope and role', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  const keys = {} as Record<Scope, string>;
  const sessions = {} as Record<Role, { cookie: string; csrf: string }>;
  let ops: Op[] = [];

  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    app = await buildServer(hub);
    await hub.store.db.insertInto('clinic').values({ id: 'c', name: 'Clinic', time_zone: 'Europe/Berlin', language: 'en', settings: '{}', updated_at: new Date().toISOString() }).execute();
    await hub.store.db.insertInto('practitioner').values({ id: 'p1', clinic_id: 'c', name: 'Dr. P', email: null, time_zone: null, location_ids: '[]', targets: '[]', active: 1, services: '[]', hours: null }).execute();
    for (const s of RANK) keys[s] = (await createApiKey(hub, `k-${s}`, [s])).key;
    for (const role of ['owner', 'front_desk', 'practitioner'] as Role[]) {
      await createUser(hub, { email: `${role}@clinic.example`, role, password: PASSWORD, ...(role === 'practitioner' ? { practitionerId: 'p1' } : {}) }, 'test');
      const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: `${role}@clinic.example`, password: PASSWORD } });
      assert.equal(r.statusCode, 200, r.body);
      sessions[role] = { cookie: String(r.headers['set-cookie']).split(';')[0], csrf: r.json().csrf };
    }
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { 'x-scope': Scope }>> };
    ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([m, o]) => ({
      method: m.toUpperCase(), path, url: path.replace(/\{[^}]+\}/g, 'no-such-id'), scope: o['x-scope'],
    })));
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    tmp.cleanup();
  });

  const call = (op: Op, headers: Record<string, string>) => app.inject({
    method: op.method as 'GET', url: op.url, headers: { ...headers, ...(op.method !== 'GET' ? { 'content-type': 'application/json' } : {}) },
    ...(op.method !== 'GET' ? { payload: '{}' } : {}),
  });
  const bearer = (s: Scope) => ({ authorization: `Bearer ${keys[s]}` });
  const session = (r: Role, csrf = true) => ({ cookie: sessions[r].cookie, ...(csrf ? { 'x-csrf-token': sessions[r].csrf } : {}) });

  test('the document lists routes of every scope, and every route names one', () => {
    assert.ok(ops.length >= 30, `${ops.length} operations`);
    for (const s of RANK) assert.ok(ops.some((o) => o.scope === s), `a route needs ${s}`);
    for (const o of ops) assert.ok(RANK.includes(o.scope), `${o.method} ${o.path} has scope ${o.scope}`);
  });

  test('without credentials, or with a wrong or revoked key, every route answers 401', async () => {
    for (const op of ops) {
      for (const headers of [{}, { authorization: 'Bearer mer_not-a-key' }, { 'x-api-key': 'mer_x' }, { authorization: 'Basic YWRtaW46YWRtaW4=' }, { cookie: 'meridian_session=forged-session-token-forged-session-token' }] as Record<string, string>[]) {
        const r = await call(op, headers);
        assert.equal(r.statusCode, 401, `${op.method} ${op.path} with ${JSON.stringify(headers)}: ${r.statusCode} ${r.body}`);
        assert.equal(r.headers['x-content-type-options'], 'nosniff');
      }
    }
  });

  test('a key or a staff role below the route\'s scope gets 403; enough rights never get 401/403 or a 5xx', async () => {
    const roleScope: Record<Role, Scope> = { owner: 'admin', front_desk: 'write', practitioner: 'read' };
    for (const op of ops) {
      const need = RANK.indexOf(op.scope);
      for (const s of RANK) {
        const r = await call(op, bearer(s));
        if (RANK.indexOf(s) < need) assert.equal(r.statusCode, 403, `${op.method} ${op.path} with a ${s} key: ${r.statusCode}`);
        else assert.ok(![401, 403].includes(r.statusCode) && r.statusCode < 500, `${op.method} ${op.path} with a ${s} key: ${r.statusCode} ${r.body}`);
      }
      for (const role of ['owner', 'front_desk'] as Role[]) {
        const r = await call(op, session(role));
        if (RANK.indexOf(roleScope[role]) < need) assert.equal(r.statusCode, 403, `${op.method} ${op.path} as ${role}: ${r.statusCode}`);
        else assert.ok(![401, 403].includes(r.statusCode) && r.statusCode < 500, `${op.method} ${op.path} as ${role}: ${r.statusCode} ${r.body}`);
      }
    }
  });

  test('a practitioner\'s session: 403 everywhere but their own schedule; unknown appointments look the same as others\'', async () => {
    for (const op of ops) {
      const r = await call(op, session('practitioner'));
      const key = `${op.method} ${op.path}`;
      if (!PRACTITIONER_MAY.has(key) || op.path.includes('{id}')) assert.equal(r.statusCode, 403, `${key} as a practitioner: ${r.statusCode} ${r.body}`);
      else assert.ok(r.statusCode < 400, `${key} as a practitioner: ${r.statusCode} ${r.body}`);
    }
  });

  test('a session\'s unsafe call without its CSRF token, or from another origin, is refused', async () => {
    for (const op of ops.filter((o) => o.method !== 'GET')) {
      assert.equal((await call(op, session('owner', false))).statusCode, 403, `${op.method} ${op.path} without x-csrf-token`);
      assert.equal((await call(op, { ...session('owner'), origin: 'https://evil.example' })).statusCode, 403, `${op.method} ${op.path} cross-origin`);
    }
  });
});

describe('public routes are rate-limited per client', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    app = await buildServer(hub, { rateLimit: { limitLoopback: true, limits: { webhooks: { burst: 3, perMinute: 60 }, feeds: { burst: 2, perMinute: 6 }, signin: { burst: 2, perMinute: 2 } } } });
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    tmp.cleanup();
  });

  test('a burst passes, then 429 with Retry-After; another client and the API are not affected', async () => {
    for (const [method, url, burst, retry] of [['POST', '/webhooks/x', 3, 1], ['POST', '/leads/x', 0, 1], ['GET', `/feeds/${'a'.repeat(20)}.ics`, 2, 10], ['POST', '/auth/login', 2, 30]] as const) {
      for (let i = 0; i < burst; i++) {
        const r = await app.inject({ method, url, payload: method === 'POST' ? '{}' : undefined, headers: { 'content-type': 'application/json' } });
        assert.notEqual(r.statusCode, 429, `${url} #${i + 1}`);
      }
      const r = await app.inject({ method, url, payload: method === 'POST' ? '{}' : undefined, headers: { 'content-type': 'application/json' } });
      assert.equal(r.statusCode, 429, url);
      assert.equal(r.json().code, 'rate_limited');
      assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= retry, `${url} retry-after ${r.headers['retry-after']}`);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      const other = await app.inject({ method, url, remoteAddress: '203.0.113.9', payload: method === 'POST' ? '{}' : undefined, headers: { 'content-type': 'application/json' } });
      assert.notEqual(other.statusCode, 429, `${url}: another client has its own bucket`);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/appointments' })).statusCode, 401, 'the API is not rate-limited here');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });

  test('loopback is exempt by default (a reverse proxy on the same host without MERIDIAN_TRUST_PROXY)', async () => {
    const open = await buildServer(hub, { rateLimit: { limits: { webhooks: { burst: 1, perMinute: 1 } } } });
    for (let i = 0; i < 5; i++) assert.notEqual((await open.inject({ method: 'POST', url: '/webhooks/x', payload: '{}' })).statusCode, 429);
    await open.close();
  });
});
