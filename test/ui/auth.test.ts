// Sign-in, sessions, CSRF and roles, through the HTTP server in-process (Fastify inject) on a temp
// SQLite hub: cookie flags, CSRF token + Origin checks, role scopes, the practitioner's own-only view
// (filtered lists, 403 on another's appointment, redaction), lockout, sign-out; API keys unchanged;
// the audit export with its filters; and `meridian users add --password-stdin` end to end.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { applyConfig } from '../../src/config/apply.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createApiKey } from '../../src/engine/hub/apikeys.ts';
import { openHub, type Hub } from '../../src/engine/hub/hub.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { createUser, hashPassword, redactFor, verifyPassword } from '../../src/http/auth.ts';
import { buildServer } from '../../src/http/server.ts';
import { meridian, tempDir } from '../helpers.ts';

const YAML = `
clinic: { id: lotus, name: Lotus, timeZone: America/Chicago }
locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, locations: [lakeview] }
  - { id: nakamura, name: Dr. Kenji Nakamura, locations: [lakeview] }
`;
const PW = 'correct horse battery';
const ORIGIN = 'http://meridian.test';

describe('web app sign-in, sessions and roles', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  let okaforAppt: string;
  let nakamuraAppt: string;

  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    const cfg = parseConfig(YAML, 'clinic.yaml');
    await applyConfig(hub, cfg.config, cfg.hash, 'test');
    for (const [email, role, practitionerId] of [['owner@lotus.test', 'owner'], ['desk@lotus.test', 'front_desk'], ['ada@lotus.test', 'practitioner', 'okafor']] as const) {
      await createUser(hub, { email, role, password: PW, practitionerId }, 'test');
    }
    okaforAppt = (await staffCreate(hub, { practitionerId: 'okafor', start: '2030-03-04T15:00:00Z', end: '2030-03-04T15:45:00Z', patient: { name: 'Maya Lindqvist', email: 'maya@example.org' }, notes: 'knee' }, 'test')).id;
    nakamuraAppt = (await staffCreate(hub, { practitionerId: 'nakamura', start: '2030-03-04T15:00:00Z', end: '2030-03-04T15:45:00Z', patient: { name: 'Omar Haddad', email: 'omar@example.org' }, notes: 'back pain' }, 'test')).id;
    app = await buildServer(hub);
  });
  after(async () => {
    await app?.close();
    await hub?.store.close();
    tmp.cleanup();
  });

  const login = async (email: string, password = PW, origin = ORIGIN) => app.inject({ method: 'POST', url: '/auth/login', headers: { host: 'meridian.test', origin }, payload: { email, password } });
  /** Signed in: the cookie header and the CSRF token. */
  const session = async (email: string) => {
    const r = await login(email);
    assert.equal(r.statusCode, 200, r.body);
    const cookie = String(r.headers['set-cookie']).split(';')[0];
    return { cookie, csrf: r.json().csrf as string };
  };
  const as = (s: { cookie: string; csrf: string }, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, extra: Record<string, string> = {}) =>
    app.inject({ method, url, payload: payload as object, headers: { host: 'meridian.test', cookie: s.cookie, ...(method === 'GET' ? {} : { origin: ORIGIN, 'x-csrf-token': s.csrf }), ...extra } });

  test('passwords are stored as scrypt hashes and checked in constant time', async () => {
    const h = await hashPassword(PW);
    assert.match(h, /^scrypt\$32768\$8\$1\$/);
    assert.ok(!h.includes(PW));
    assert.equal(await verifyPassword(PW, h), true);
    assert.equal(await verifyPassword(`${PW}!`, h), false);
    const row = await hub.store.db.selectFrom('staff_user').select('password_hash').where('email', '=', 'owner@lotus.test').executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^scrypt\$/);
  });

  test('a wrong password is refused (and audited, without the password); a right one sets an HttpOnly SameSite=Strict cookie', async () => {
    const bad = await login('owner@lotus.test', 'not the password');
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().code, 'bad_credentials');
    assert.equal((await login('nobody@lotus.test', 'whatever it is')).statusCode, 401, 'unknown accounts get the same answer');
    const ok = await login('owner@lotus.test');
    assert.equal(ok.statusCode, 200);
    const cookie = String(ok.headers['set-cookie']);
    assert.match(cookie, /^meridian_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/, 'no Secure flag over plain http');
    assert.equal(ok.json().user.role, 'owner');
    const audit = await hub.store.db.selectFrom('audit').select(['action', 'meta']).where('action', 'like', 'staff.sign%').execute();
    assert.deepEqual(audit.map((a) => a.action), ['staff.sign_in_failed', 'staff.signed_in']);
    assert.ok(!JSON.stringify(audit).includes('not the password'));
    const stored = await hub.store.db.selectFrom('staff_session').select('token_hash').execute();
    assert.ok(stored.every((s) => !cookie.includes(s.token_hash)), 'only a hash of the session token is stored');
  });

  test('behind https the session cookie is Secure', async () => {
    const hub2 = { ...hub, publicUrl: 'https://meridian.example.org' } as Hub;
    const app2 = await buildServer(hub2);
    const r = await app2.inject({ method: 'POST', url: '/auth/login', headers: { host: 'meridian.example.org', origin: 'https://meridian.example.org' }, payload: { email: 'owner@lotus.test', password: PW } });
    assert.equal(r.statusCode, 200, r.body);
    assert.match(String(r.headers['set-cookie']), /; Secure$/);
    await app2.close();
  });

  test('a cookie session needs the CSRF token and our own origin for unsafe requests', async () => {
    const s = await session('desk@lotus.test');
    const body = { practitionerId: 'okafor', start: '2030-03-05T15:00:00Z', end: '2030-03-05T15:30:00Z', patient: { name: 'Luis Ortega' } };
    assert.equal((await as(s, 'GET', '/api/v1/appointments')).statusCode, 200, 'reads need no token');
    const noToken = await app.inject({ method: 'POST', url: '/api/v1/appointments', payload: body, headers: { host: 'meridian.test', cookie: s.cookie, origin: ORIGIN } });
    assert.equal(noToken.statusCode, 403);
    assert.equal(noToken.json().code, 'csrf');
    const wrongToken = await as(s, 'POST', '/api/v1/appointments', body, { 'x-csrf-token': 'x'.repeat(32) });
    assert.equal(wrongToken.json().code, 'csrf');
    const foreign = await as(s, 'POST', '/api/v1/appointments', body, { origin: 'https://evil.example' });
    assert.equal(foreign.statusCode, 403);
    assert.equal(foreign.json().code, 'cross_origin');
    const crossSite = await app.inject({ method: 'POST', url: '/api/v1/appointments', payload: body, headers: { host: 'meridian.test', cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'cross-site' } });
    assert.equal(crossSite.json().code, 'cross_origin');
    assert.equal((await login('owner@lotus.test', PW, 'https://evil.example')).statusCode, 403, 'no login CSRF either');
    const ok = await as(s, 'POST', '/api/v1/appointments', body);
    assert.equal(ok.statusCode, 201, ok.body);
    const entry = await hub.store.db.selectFrom('audit').select('actor').where('entity_id', '=', ok.json().id).executeTakeFirstOrThrow();
    assert.equal(entry.actor, 'user:desk@lotus.test', 'the audit log names the person');
  });

  test('roles map onto scopes: front desk writes but cannot administer; only an owner manages accounts', async () => {
    const desk = await session('desk@lotus.test');
    const r = await as(desk, 'PATCH', '/api/v1/connections/x', { name: 'y' });
    assert.equal(r.statusCode, 403);
    assert.match(r.json().message, /front_desk/);
    assert.equal((await as(desk, 'GET', '/api/v1/users')).statusCode, 403);
    const owner = await session('owner@lotus.test');
    const users = await as(owner, 'GET', '/api/v1/users');
    assert.equal(users.statusCode, 200);
    assert.deepEqual(users.json().items.map((u: { email: string }) => u.email).sort(), ['ada@lotus.test', 'desk@lotus.test', 'owner@lotus.test']);
    assert.ok(!users.body.includes('scrypt'), 'no password hashes in answers');
  });

  test('a practitioner sees only their own schedule and no other patient\'s data', async () => {
    const ada = await session('ada@lotus.test');
    const list = await as(ada, 'GET', '/api/v1/appointments?from=2030-03-01T00:00:00Z&to=2030-03-10T00:00:00Z');
    assert.equal(list.statusCode, 200);
    assert.ok(list.json().items.length >= 1);
    assert.ok(list.json().items.every((a: { practitionerId: string }) => a.practitionerId === 'okafor'));
    assert.ok(!list.body.includes('Omar') && !list.body.includes('back pain'));
    assert.equal((await as(ada, 'GET', `/api/v1/appointments/${okaforAppt}`)).json().patient.name, 'Maya Lindqvist');
    for (const url of [`/api/v1/appointments/${nakamuraAppt}`, `/api/v1/appointments/${nakamuraAppt}/audit`, '/api/v1/appointments/no-such-id', '/api/v1/appointments?practitioner=nakamura',
      '/api/v1/audit', `/api/v1/audit/export?entity=${nakamuraAppt}`, '/api/v1/leads', '/api/v1/jobs', '/api/v1/deliveries', '/api/v1/held-changes', '/api/v1/connections']) {
      const r = await as(ada, 'GET', url);
      assert.equal(r.statusCode, 403, url);
      assert.ok(!r.body.includes('Omar'), url);
    }
    const write = await as(ada, 'POST', `/api/v1/appointments/${okaforAppt}/cancel`, {});
    assert.equal(write.statusCode, 403, 'read-only');
    assert.equal((await as(ada, 'GET', '/api/v1/practitioners')).statusCode, 200);
    assert.equal((await as(ada, 'GET', '/api/v1/audit/verify')).json().ok, true);
    // Defence in depth: an appointment of someone else that slipped into an answer loses its patient data.
    const p = { kind: 'session' as const, actor: 'user:ada@lotus.test', scopes: ['read' as const], ownPractitioner: 'okafor' };
    const red = redactFor(p, { items: [{ practitionerId: 'nakamura', patient: { name: 'Omar Haddad' }, notes: 'back pain' }, { practitionerId: 'okafor', patient: { name: 'Maya' } }] });
    assert.deepEqual(red, { items: [{ practitionerId: 'nakamura', patient: { name: 'Another practitioner\'s patient' } }, { practitionerId: 'okafor', patient: { name: 'Maya' } }] });
  });

  test('API keys keep working without cookies or CSRF tokens', async () => {
    const { key } = await createApiKey(hub, 'robot', ['write']);
    const r = await app.inject({ method: 'POST', url: `/api/v1/appointments/${okaforAppt}/status`, payload: { status: 'completed' }, headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/appointments' })).statusCode, 401);
  });

  test('signing out ends the session; five wrong passwords from one address hold that address off for a while', async () => {
    const s = await session('owner@lotus.test');
    assert.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: s.cookie } })).statusCode, 200);
    const out = await as(s, 'POST', '/auth/logout');
    assert.equal(out.statusCode, 200);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    assert.equal((await as(s, 'GET', '/api/v1/appointments')).statusCode, 401);
    for (let i = 0; i < 5; i++) assert.equal((await login('desk@lotus.test', 'wrong password!')).statusCode, 401);
    const locked = await login('desk@lotus.test');
    assert.equal(locked.statusCode, 429);
    assert.ok(Number(locked.headers['retry-after']) > 0);
  });

  test('the audit export gives the filtered entries as CSV (formulas defused) and JSON Lines with their hashes', async () => {
    await staffCreate(hub, { practitionerId: 'nakamura', start: '2030-04-01T15:00:00Z', end: '2030-04-01T15:30:00Z', patient: { name: '=HYPERLINK("x")' } }, 'test');
    const { key } = await createApiKey(hub, 'auditor', ['read']);
    const get = (q: string) => app.inject({ method: 'GET', url: `/api/v1/audit/export?${q}`, headers: { authorization: `Bearer ${key}` } });
    const jl = await get(`format=jsonl&entity=${okaforAppt}`);
    assert.equal(jl.statusCode, 200);
    assert.match(String(jl.headers['content-disposition']), /attachment; filename="meridian-audit-.*\.jsonl"/);
    const rows = jl.body.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => r.action), ['appointment.created', 'appointment.completed']);
    assert.match(rows[0].hash, /^[0-9a-f]{64}$/);
    assert.match(rows[1].prevHash, /^[0-9a-f]{64}$/);
    assert.equal(rows[1].before.status, 'booked');
    assert.equal(rows[1].after.status, 'completed');
    const byPatient = await get('format=jsonl&patient=lindqv');
    assert.deepEqual(byPatient.body.trim().split('\n').map((l) => JSON.parse(l).entityId), [okaforAppt, okaforAppt]);
    const byActor = await get('format=jsonl&actor=api:*&action=appointment.*');
    assert.deepEqual(byActor.body.trim().split('\n').map((l) => JSON.parse(l).actor), ['api:robot']);
    // LIKE wildcards in a search are literal: an e-mail with "_" finds its patient, and "_" alone finds no one else.
    const underscored = await staffCreate(hub, { practitionerId: 'nakamura', start: '2030-04-02T15:00:00Z', end: '2030-04-02T15:30:00Z', patient: { name: 'Jo Ng', email: 'jo_ng@example.net' } }, 'test');
    const byEmail = await get('format=jsonl&patient=jo_ng@');
    assert.deepEqual([...new Set(byEmail.body.trim().split('\n').map((l) => JSON.parse(l).entityId))], [underscored.id]);
    assert.equal((await get('format=jsonl&patient=a_a')).body, '');
    const none = await get('format=jsonl&to=2000-01-01T00:00:00Z');
    assert.equal(none.body, '');
    const csv = await get('format=csv&patient=hyperlink');
    assert.match(String(csv.headers['content-type']), /text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    assert.equal(lines[0], 'seq,at,actor,action,entity_type,entity_id,before,after,meta,prev_hash,hash');
    assert.equal(lines.length, 2);
    assert.ok(!lines[1].includes(',=') && lines[1].includes('""name"":""=HYPERLINK'), 'quoted JSON; a cell never starts with =');
  });
});

describe('meridian users add', () => {
  test('adds an account from --password-stdin, refuses weak passwords and unknown roles', async () => {
    const tmp = tempDir();
    const cli = async (args: string[], input: string) => {
      const r = await meridian([...args, '--data', tmp.dir], { env: { LOG_LEVEL: 'warn' }, input });
      return { code: r.code, out: r.stdout + r.stderr };
    };
    try {
      const weak = await cli(['users', 'add', 'owner@clinic.test', '--role', 'owner', '--password-stdin'], 'short\n');
      assert.equal(weak.code, 2);
      assert.match(weak.out, /at least 10 characters/);
      assert.equal((await cli(['users', 'add', 'owner@clinic.test', '--role', 'boss', '--password-stdin'], `${PW}\n`)).code, 2);
      const ok = await cli(['users', 'add', 'Owner@Clinic.test', '--role', 'owner', '--password-stdin'], `${PW}\n`);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /added owner@clinic\.test \(owner\)/);
      const again = await cli(['users', 'add', 'owner@clinic.test', '--role', 'owner', '--password-stdin'], `${PW}\n`);
      assert.equal(again.code, 2);
      assert.match(again.out, /already an account/);
      const hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
      const app = await buildServer(hub);
      const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'owner@clinic.test', password: PW } });
      assert.equal(r.statusCode, 200, r.body);
      await app.close();
      await hub.store.close();
    } finally {
      tmp.cleanup();
    }
  });
});
