// Issue #22's findings, through the real HTTP server (buildServer + Fastify inject) on a temp SQLite hub:
// sign-in attempts are counted before the password is hashed (per client and account, then per account),
// so parallel guesses gain nothing and a stranger cannot lock a colleague out with a few wrong guesses;
// sign-out ends the session without a CSRF token; the Host header is checked against the public URL
// (DNS rebinding); deeply nested JSON is refused before validation; /metrics can require a bearer token.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openHub, type Hub } from '../../src/engine/hub/hub.ts';
import { ACCOUNT_LIMIT, CLIENT_LIMIT, createUser } from '../../src/http/auth.ts';
import { MAX_JSON_DEPTH, buildServer, jsonDepth } from '../../src/http/server.ts';
import { createApiKey } from '../../src/engine/hub/apikeys.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { parseConfig } from '../../src/config/load.ts';
import { tempDir } from '../helpers.ts';
import { serve } from './serve.ts';

const PW = 'correct horse battery staple';
const NO_RATE_LIMIT = { limits: { signin: { burst: Infinity, perMinute: Infinity } } };

describe('sign-in attempts are counted before the password is checked', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    await createUser(hub, { email: 'owner@clinic.example', role: 'owner', password: PW }, 'test');
    // The per-address token bucket is off here, so only the sign-in guard itself is measured.
    app = await buildServer(hub, { rateLimit: NO_RATE_LIMIT });
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    tmp.cleanup();
  });

  const login = (ip: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { email: 'owner@clinic.example', password } });
  const failedAudits = async () => (await hub.store.db.selectFrom('audit').select('seq').where('action', '=', 'staff.sign_in_failed').execute()).length;

  test('50 parallel guesses (the right one 37th): at most the client limit is checked, the rest and the right one get 429', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => login('203.0.113.1', i === 36 ? PW : `wrong password ${i}`)));
    const checked = answers.filter((r) => r.statusCode !== 429);
    assert.ok(checked.length <= CLIENT_LIMIT, `${checked.length} passwords were checked`);
    assert.ok(checked.every((r) => r.statusCode === 401));
    assert.equal(answers[36].statusCode, 429, 'the right password after the limit is refused too');
    assert.equal(answers[36].json().code, 'locked');
    assert.ok(Number(answers[36].headers['retry-after']) > 0);
    assert.equal(await failedAudits(), checked.length);
    const later = await login('203.0.113.1', PW);
    assert.equal(later.statusCode, 429, 'still refused afterwards');
    assert.ok(Number(later.headers['retry-after']) > 0);
  });

  test('another client still signs in; only the account bar locks the account, audited once', async () => {
    const other = await login('198.51.100.7', PW);
    assert.equal(other.statusCode, 200, 'the first client\'s failures do not lock others out');
    // The account has CLIENT_LIMIT failures so far; more clients bring it to the account bar.
    let failures = CLIENT_LIMIT;
    for (let c = 0; failures < ACCOUNT_LIMIT; c++) {
      for (let i = 0; i < CLIENT_LIMIT && failures < ACCOUNT_LIMIT; i++, failures++) {
        const r = await login(`192.0.2.${c + 10}`, 'still the wrong one');
        assert.equal(r.statusCode, 401, `failure ${failures + 1}`);
      }
    }
    const locked = await login('198.51.100.99', PW);
    assert.equal(locked.statusCode, 429, 'past the account bar even a new client with the right password waits');
    assert.match(locked.json().message, /account: it is locked/);
    assert.ok(Number(locked.headers['retry-after']) > 0);
    const audit = await hub.store.db.selectFrom('audit').select(['action', 'actor']).where('action', '=', 'staff.account_locked').execute();
    assert.deepEqual(audit, [{ action: 'staff.account_locked', actor: 'system' }]);
  });
});

describe('signing out', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    await createUser(hub, { email: 'desk@clinic.example', role: 'front_desk', password: PW }, 'test');
    app = await buildServer(hub);
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    tmp.cleanup();
  });

  const signIn = async () => {
    const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'desk@clinic.example', password: PW } });
    assert.equal(r.statusCode, 200, r.body);
    return String(r.headers['set-cookie']).split(';')[0];
  };
  const me = (cookie: string) => app.inject({ method: 'GET', url: '/auth/me', headers: { cookie } });

  test('ends the session even without a CSRF token', async () => {
    const cookie = await signIn();
    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } });
    assert.equal(out.statusCode, 200, out.body);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    assert.equal((await me(cookie)).statusCode, 401, 'the session is gone on the server, not only in the browser');
  });

  test('but not from another origin (a sibling subdomain shares the site, so the cookie could be sent)', async () => {
    const cookie = await signIn();
    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, host: 'meridian.clinic.example', origin: 'https://evil.clinic.example' } });
    assert.equal(out.statusCode, 403);
    assert.equal(out.json().code, 'cross_origin');
    assert.equal((await me(cookie)).statusCode, 200);
  });
});

describe('the Host header (DNS rebinding)', () => {
  const tmp = tempDir();
  let hub: Hub;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent', MERIDIAN_PUBLIC_URL: 'https://meridian.clinic.example' } });
  });
  after(async () => {
    await hub.store.close();
    tmp.cleanup();
  });

  /** A plain HTTP request to a listening server with any Host header (fetch would not send it). */
  const raw = (port: number, host: string, path = '/api/v1/openapi.json') => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });

  test('with a public URL only its host is answered (and loopback names on a loopback address); others get 421', async () => {
    const app = await buildServer(hub);
    try {
      const port = Number(new URL(await app.listen({ port: 0, host: '127.0.0.1' })).port);
      assert.equal((await raw(port, 'meridian.clinic.example')).status, 200);
      assert.equal((await raw(port, 'MERIDIAN.clinic.example:443')).status, 200, 'case and port do not matter');
      for (const h of [`localhost:${port}`, `127.0.0.1:${port}`, '[::1]']) assert.equal((await raw(port, h)).status, 200, h);
      for (const h of ['attacker.example', `attacker.example:${port}`, 'meridian.clinic.example.attacker.example']) {
        const r = await raw(port, h);
        assert.equal(r.status, 421, `Host: ${h}`);
        assert.equal(JSON.parse(r.body).code, 'misdirected');
      }
      assert.equal((await raw(port, 'attacker.example', '/auth/me')).status, 421, 'the sign-in routes too');
      assert.equal((await raw(port, '10.0.0.5:7400', '/healthz')).status, 200, 'probes by address still work');
    } finally {
      await app.close();
    }
    // Over a non-loopback connection (inject has no local address) the loopback names are foreign too.
    const app2 = await buildServer(hub);
    assert.equal((await app2.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { host: 'localhost' } })).statusCode, 421);
    assert.equal((await app2.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { host: 'meridian.clinic.example' } })).statusCode, 200);
    await app2.close();
  });

  test('without a public URL any host is answered, as before', async () => {
    const open = await buildServer({ ...hub, publicUrl: undefined } as Hub);
    assert.equal((await open.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { host: 'attacker.example' } })).statusCode, 200);
    await open.close();
  });
});

describe('deeply nested JSON', () => {
  const tmp = tempDir();
  let hub: Hub;
  let app: FastifyInstance;
  let key: string;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
    const cfg = parseConfig(`
clinic: { id: lotus, name: Lotus, timeZone: America/Chicago }
locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]
practitioners: [{ id: okafor, name: Dr. Ada Okafor, locations: [lakeview] }]
connections: [{ id: cal, platform: calendly, name: Calendly }]
`, 'clinic.yaml');
    await applyConfig(hub, cfg.config, cfg.hash, 'test');
    // The body checks below are about the parser, not provisioning: the connection is one made in the app (a provisioned one refuses every change).
    await hub.store.db.updateTable('connection').set({ provisioned_by: null }).where('id', '=', 'cal').execute();
    app = await buildServer(hub);
    key = (await createApiKey(hub, 'admin', ['admin'])).key;
  });
  after(async () => {
    await app.close();
    await hub.store.close();
    tmp.cleanup();
  });

  const patch = (payload: string) => app.inject({ method: 'PATCH', url: '/api/v1/connections/cal', payload, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });

  test(`a body nested deeper than ${MAX_JSON_DEPTH} levels is a 400 invalid_request, not a 500`, async () => {
    for (const body of [`{"config":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}`, `${'['.repeat(50_000)}${']'.repeat(50_000)}`, `{"config":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`]) {
      const r = await patch(body);
      assert.equal(r.statusCode, 400, r.body.slice(0, 200));
      assert.equal(r.json().code, 'invalid_request');
      assert.match(r.json().message, /nested deeper than 64 levels/);
    }
  });

  test('shallower bodies, and brackets inside strings, go on to validation as before', async () => {
    const ok = await patch(`{"name":"${'['.repeat(1000)}\\"{{{"}`);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.doesNotMatch(ok.body, /nested deeper/);
    assert.equal(jsonDepth(`${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}`), MAX_JSON_DEPTH - 1);
    assert.equal(jsonDepth('{"a":"[[[\\"[[","b":[{}]}'), 3);
    const proto = await patch('{"__proto__":{"x":1}}');
    assert.equal(proto.statusCode, 400, 'Fastify\'s own parser still refuses __proto__');
  });
});

describe('/metrics', () => {
  const tmp = tempDir();
  let hub: Hub;
  before(async () => {
    hub = await openHub({ dataDir: tmp.dir, env: { LOG_LEVEL: 'silent' } });
  });
  after(async () => {
    await hub.store.close();
    tmp.cleanup();
  });

  test('with MERIDIAN_METRICS_TOKEN set, needs Authorization: Bearer <token> (401 otherwise)', async () => {
    const app = await buildServer({ ...hub, env: { ...hub.env, MERIDIAN_METRICS_TOKEN: 'metrics-secret-1234' } } as Hub);
    try {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer metrics-secret-12345' }, { authorization: 'Basic bWV0cmljczptZXRyaWNzLXNlY3JldC0xMjM0' }] as Record<string, string>[]) {
        const r = await app.inject({ method: 'GET', url: '/metrics', headers });
        assert.equal(r.statusCode, 401, JSON.stringify(headers));
        assert.equal(r.json().code, 'unauthenticated');
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
        assert.doesNotMatch(r.body, /meridian_/);
      }
      const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-secret-1234' } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /# HELP/);
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health stays open');
    } finally {
      await app.close();
    }
  });

  test('without it, open as before', async () => {
    const app = await buildServer(hub);
    assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
    await app.close();
  });
});

describe('what the server prints', () => {
  test('`demo --serve` says its printed credentials are a demo\'s; `serve` on the same store prints no password or key', async () => {
    const tmp = tempDir('meridian-demo-');
    try {
      const demo = await serve(['demo', '--serve', '--data', tmp.dir]);
      // `npm start` (the README's first command) ships no connection that needs setup (issue 17, item 6).
      const demoKey = readFileSync(join(tmp.dir, 'demo-api-key.txt'), 'utf8').trim();
      const health = await (await fetch(`${demo.url}/api/v1/health/connections`, { headers: { authorization: `Bearer ${demoKey}` } })).json() as { items: { id: string; status: string; setup: { complete: boolean } }[] };
      assert.deepEqual(health.items.map((c) => [c.id, c.status, c.setup.complete]), [['calendly', 'active', true], ['feeds', 'active', true], ['mail', 'active', true], ['website', 'active', true]]);
      assert.doesNotMatch(demo.output(), /needs setup|is not set in the environment/);
      // The website form's token was made and stored by the demo: its printed URL takes a request.
      const form = /Lead form: {2}POST (\S+)/.exec(demo.output());
      assert.ok(form, demo.output());
      const lead = await fetch(form[1], { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Robin Lee', email: 'robin@example.org', preferredTimes: ['any morning'] }) });
      assert.ok(lead.status >= 200 && lead.status < 300, `${lead.status} ${await lead.text()}`);
      await demo.stop();
      assert.match(demo.output(), /Demo only: these credentials are printed because this is a demo; `serve` never prints secrets/);
      const key = readFileSync(join(tmp.dir, 'demo-api-key.txt'), 'utf8').trim();
      const passwords = (JSON.parse(readFileSync(join(tmp.dir, 'demo-logins.json'), 'utf8')) as { password: string }[]).map((l) => l.password);
      assert.ok(demo.output().includes(key) && passwords.every((p) => demo.output().includes(p)), 'the demo banner shows them');
      const srv = await serve(['serve', '--data', tmp.dir], { LOG_LEVEL: 'info' });
      // Give the background work a moment to log what it logs at start.
      await new Promise((r) => setTimeout(r, 1000));
      await srv.stop();
      const out = srv.output();
      assert.match(out, /listening on/);
      for (const secret of [key, ...passwords]) assert.ok(!out.includes(secret), 'serve printed a secret');
      assert.doesNotMatch(out, /mer_[A-Za-z0-9_-]{10,}|demo-[A-Za-z0-9_-]{12}/);
    } finally {
      tmp.cleanup();
    }
  });
});
