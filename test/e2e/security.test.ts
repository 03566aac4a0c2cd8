// Issue #22's findings, through the real HTTP server (buildServer + Fastify inject) on a temp SQLite hub:
// sign-in attempts are counted before the password is hashed (per client and account, then per account),
// so parallel guesses gain nothing and a stranger cannot lock a colleague out with a few wrong guesses;
// sign-out ends the session without a CSRF token; the Host header is checked against the public URL
// (DNS rebinding); deeply nested JSON is refused before validation; /metrics can require a bearer token.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { openHub, type Hub } from '../../src/engine/hub/hub.ts';
import { ACCOUNT_LIMIT, CLIENT_LIMIT, createUser } from '../../src/http/auth.ts';
import { buildServer } from '../../src/http/server.ts';
import { tempDir } from '../helpers.ts';

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
