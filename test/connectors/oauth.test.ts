// The connectors' `oauth` profiles (connecting an account from the web app, issue 17) against one fake
// authorization server (test/fakes/oauth-server.ts, the rules of connect.md §4): the authorize URL of every
// provider and variant, a full round trip (authorize → consent → complete) that stores the secrets and config
// the connector reads, a refresh through the connector's own token code that reaches the fake, an API call
// with the refreshed token against the platform's API fake, and the refusals an owner can meet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OAuthRefused, type ConnectionContext, type OAuthComplete, type OAuthProfile, type OAuthResult, type TargetEvent } from '../../src/connectors/types.ts';
import { atAuthBase, codeChallengeS256, createCodeVerifier } from '../../src/connectors/shared/oauth.ts';
import { connector as google } from '../../src/connectors/targets/google-calendar/index.ts';
import { connector as graph } from '../../src/connectors/targets/microsoft-graph/index.ts';
import { connector as zoho } from '../../src/connectors/targets/zoho-calendar/index.ts';
import { connector as salesforce } from '../../src/connectors/targets/salesforce/index.ts';
import { connector as hubspot } from '../../src/connectors/targets/hubspot/index.ts';
import { connector as calendly } from '../../src/connectors/sources/calendly/index.ts';
import { connector as square } from '../../src/connectors/sources/square/index.ts';
import { connector as acuity } from '../../src/connectors/sources/acuity/index.ts';
import { connector as jane } from '../../src/connectors/sources/jane/index.ts';
import { startFakeOAuth, REDIRECT_URI, type FakeOAuth, type Provider } from '../fakes/oauth-server.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';
import { startFakeZoho, type FakeZoho } from '../fakes/zoho-calendar.ts';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.ts';
import { startFakeHubSpot, type FakeHubSpot } from '../fakes/hubspot.ts';
import { startFakeCalendly, type FakeCalendly } from '../fakes/calendly.ts';
import { startFakeSquare, type FakeSquare } from '../fakes/square.ts';
import { startFakeAcuity, type FakeAcuity } from '../fakes/acuity.ts';
import { startFakeJane, type FakeJane } from '../fakes/jane.ts';

const NOW = Date.parse('2026-03-02T09:00:00Z');
const HOUR = 3_600_000;
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const PROFILES: Record<Provider, OAuthProfile> = {
  google: google.descriptor.oauth!, microsoft: graph.descriptor.oauth!, zoho: zoho.descriptor.oauth!, salesforce: salesforce.descriptor.oauth!,
  hubspot: hubspot.descriptor.oauth!, calendly: calendly.descriptor.oauth!, square: square.descriptor.oauth!, acuity: acuity.descriptor.oauth!,
  jane: jane.descriptor.oauth!,
};

let oauth: FakeOAuth;
let g: FakeGoogle;
let m: FakeGraph;
let z: FakeZoho;
let sf: FakeSalesforce;
let hs: FakeHubSpot;
let cal: FakeCalendly;
let sq: FakeSquare;
let ac: FakeAcuity;
let jn: FakeJane;

before(async () => {
  oauth = await startFakeOAuth({ now: () => NOW });
  [g, m, z, sf, hs, cal, sq, ac, jn] = await Promise.all([
    startFakeGoogle(), startFakeGraph(), startFakeZoho(), startFakeSalesforce(), startFakeHubSpot(), startFakeCalendly(), startFakeSquare(), startFakeAcuity(), startFakeJane(),
  ]);
  // The API fakes accept what the OAuth fake issues (each otherwise knows only its own tokens).
  const accept: Record<Provider, { acceptToken(t: string): void }> = { google: g, microsoft: m, zoho: z, salesforce: sf, hubspot: hs, calendly: cal, square: sq, acuity: ac, jane: jn };
  oauth.onAccessToken((p, t) => accept[p].acceptToken(t));
  oauth.settings.salesforceInstanceUrl = sf.url;
  oauth.settings.salesforceSandboxInstanceUrl = sf.url;
});
after(async () => {
  await Promise.all([oauth, g, m, z, sf, hs, cal, sq, ac, jn].map((f) => f.close()));
});

// ---------------------------------------------------------------- helpers

interface Flow {
  provider: Provider;
  variant: string;
  inputs?: Record<string, string>;
  /** Default: the fake's own origin. */
  authBaseUrl?: string;
}

/** Start an authorisation as the engine would (fresh state and verifier), and let the owner decide at the fake. */
async function authorize(f: Flow, o: { decision?: 'allow' | 'deny'; state?: string } = {}) {
  const profile = PROFILES[f.provider];
  const v = profile.variants.find((x) => x.id === f.variant)!;
  const client = oauth.client(f.provider);
  const verifier = profile.pkce ? createCodeVerifier() : undefined;
  const state = o.state ?? randomBytes(16).toString('base64url');
  const authBaseUrl = f.authBaseUrl ?? oauth.url;
  const inputs = f.inputs ?? {};
  const url = v.authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state, codeChallenge: verifier && codeChallengeS256(verifier), inputs, authBaseUrl });
  const back = await oauth.grant(url, o.decision);
  const complete = (over: Partial<OAuthComplete> = {}): Promise<OAuthResult> => v.complete({
    callback: back.searchParams, clientId: client.clientId, clientSecret: profile.clientSecret ? client.clientSecret : undefined,
    redirectUri: REDIRECT_URI, codeVerifier: verifier, inputs, authBaseUrl, fetch, now: () => new Date(NOW), ...over,
  });
  return { url, back, state, verifier, client, complete };
}

let connections = 0;
/** The connection the engine would make of a result: client credentials + the result's secrets and config, at `at`. */
function connection(f: Flow, r: OAuthResult, baseUrl: string, at: number) {
  const client = oauth.client(f.provider);
  const secrets: Record<string, string> = { clientId: client.clientId, ...(PROFILES[f.provider].clientSecret && client.clientSecret ? { clientSecret: client.clientSecret } : {}), ...r.secrets };
  const saved: Record<string, string>[] = [];
  const ctx: ConnectionContext = {
    connectionId: `oauth-${f.provider}-${++connections}`, config: { ...(r.config ?? {}) }, secrets, baseUrl, fetch, now: () => new Date(at),
    saveSecrets: async (p) => { saved.push(p); Object.assign(secrets, p); },
  };
  return { ctx, saved, secrets };
}

const refreshesOf = (p: Provider) => oauth.requests.filter((r) => r.provider === p && r.endpoint === 'token' && r.grant === 'refresh_token');
const refused = (code: string) => (e: unknown) => {
  assert.ok(e instanceof OAuthRefused, `an OAuthRefused, not ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};
const ev: TargetEvent = {
  appointmentId: '0b7f3a8e-2d9c-4e1a-8b6f-5c3d2e1f0a9b', revision: 1, title: 'A. N. · Acupuncture', description: 'Acupuncture.', start: '2026-03-10T15:00:00Z', end: '2026-03-10T16:00:00Z',
  timeZone: 'Europe/Berlin', status: 'booked',
};
const WINDOW = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-31T00:00:00Z') };

/** The authorize URL's endpoint and every parameter. */
function parts(url: string) {
  const u = new URL(url);
  return { endpoint: `${u.origin}${u.pathname}`, params: Object.fromEntries(u.searchParams), count: [...u.searchParams].length };
}

// ---------------------------------------------------------------- the profiles and their authorize URLs

test('every profile names its console, 2-4 plain steps, minimal scopes explained, and variants with unique ids', () => {
  for (const [p, profile] of Object.entries(PROFILES)) {
    assert.match(profile.guide.console, /^https:\/\//, p);
    assert.ok(profile.guide.steps.length >= 2 && profile.guide.steps.length <= 4, `${p}: 2-4 steps`);
    assert.ok(profile.variants.length >= 1);
    assert.equal(new Set(profile.variants.map((v) => v.id)).size, profile.variants.length, `${p}: variant ids are unique`);
    for (const v of profile.variants) {
      assert.ok(v.scopes.length > 0 && v.scopeHelp.length > 20, `${p}/${v.id}`);
      for (const i of v.inputs ?? []) if (i.pattern) assert.doesNotThrow(() => new RegExp(i.pattern!), `${p}/${v.id}/${i.key}`);
    }
  }
  assert.equal(PROFILES.calendly.pkce, true, 'Calendly recommends PKCE (S256) for every app');
  assert.equal(PROFILES.jane.pkce, true, 'Jane requires PKCE');
  assert.equal(PROFILES.square.clientSecret, true);
});

test('the authorize URL of every provider and variant carries exactly the documented parameters', () => {
  const verifier = createCodeVerifier();
  const ch = codeChallengeS256(verifier);
  const base = { clientId: 'app-id', redirectUri: REDIRECT_URI, state: 'st/1+2=3' };
  const pkce = { code_challenge: ch, code_challenge_method: 'S256' };
  const cases: { p: Provider; v: string; inputs?: Record<string, string>; endpoint: string; params: Record<string, string> }[] = [
    { p: 'google', v: 'account', endpoint: 'https://accounts.google.com/o/oauth2/v2/auth', params: {
      response_type: 'code', client_id: 'app-id', redirect_uri: REDIRECT_URI, scope: 'https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.calendarlist.readonly',
      access_type: 'offline', prompt: 'consent', state: base.state, ...pkce } },
    { p: 'microsoft', v: 'delegated', endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize', params: {
      client_id: 'app-id', response_type: 'code', redirect_uri: REDIRECT_URI, response_mode: 'query', scope: 'offline_access Calendars.ReadWrite', state: base.state, ...pkce } },
    { p: 'microsoft', v: 'delegated', inputs: { tenant: 'clinic.onmicrosoft.com' }, endpoint: 'https://login.microsoftonline.com/clinic.onmicrosoft.com/oauth2/v2.0/authorize', params: {
      client_id: 'app-id', response_type: 'code', redirect_uri: REDIRECT_URI, response_mode: 'query', scope: 'offline_access Calendars.ReadWrite', state: base.state, ...pkce } },
    { p: 'microsoft', v: 'application', inputs: { tenant: TENANT }, endpoint: `https://login.microsoftonline.com/${TENANT}/v2.0/adminconsent`, params: {
      client_id: 'app-id', scope: 'https://graph.microsoft.com/.default', redirect_uri: REDIRECT_URI, state: base.state } },
    { p: 'zoho', v: 'account', endpoint: 'https://accounts.zoho.com/oauth/v2/auth', params: {
      scope: 'ZohoCalendar.calendar.ALL,ZohoCalendar.event.ALL', client_id: 'app-id', response_type: 'code', access_type: 'offline', prompt: 'consent', redirect_uri: REDIRECT_URI, state: base.state } },
    ...(['production', 'sandbox', 'mydomain'] as const).map((v) => ({
      p: 'salesforce' as const, v, inputs: v === 'mydomain' ? { myDomain: 'Acme-Clinic.my.salesforce.com' } : undefined,
      endpoint: `https://${{ production: 'login.salesforce.com', sandbox: 'test.salesforce.com', mydomain: 'acme-clinic.my.salesforce.com' }[v]}/services/oauth2/authorize`,
      params: { response_type: 'code', client_id: 'app-id', redirect_uri: REDIRECT_URI, scope: 'api refresh_token', state: base.state, ...pkce },
    })),
    { p: 'hubspot', v: 'account', endpoint: 'https://app.hubspot.com/oauth/authorize', params: {
      client_id: 'app-id', redirect_uri: REDIRECT_URI, scope: 'crm.objects.contacts.read crm.objects.contacts.write oauth', state: base.state } },
    { p: 'calendly', v: 'account', endpoint: 'https://auth.calendly.com/oauth/authorize', params: {
      client_id: 'app-id', response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'scheduled_events:write webhooks:write', state: base.state, ...pkce } },
    ...(['production', 'sandbox'] as const).map((v) => ({
      p: 'square' as const, v, endpoint: `https://connect.${v === 'sandbox' ? 'squareupsandbox' : 'squareup'}.com/oauth2/authorize`,
      params: { client_id: 'app-id', scope: 'APPOINTMENTS_READ APPOINTMENTS_ALL_READ APPOINTMENTS_WRITE APPOINTMENTS_ALL_WRITE CUSTOMERS_READ', session: 'false', state: base.state, redirect_uri: REDIRECT_URI },
    })),
    { p: 'acuity', v: 'account', endpoint: 'https://acuityscheduling.com/oauth2/authorize', params: {
      response_type: 'code', scope: 'api-v1', client_id: 'app-id', redirect_uri: REDIRECT_URI, state: base.state } },
    ...(['clinic', 'sandbox'] as const).map((v) => ({
      p: 'jane' as const, v, inputs: { clinicHost: 'myclinic.janeapp.com' },
      endpoint: `https://login.id.janeapp.com/realms/${v === 'sandbox' ? 'jane_partner_sandbox' : 'jane'}/protocol/openid-connect/auth`,
      params: { response_type: 'code', client_id: 'app-id', redirect_uri: REDIRECT_URI, scope: 'appointments:read patients:read', state: base.state, ...pkce, resource: 'https://myclinic.janeapp.com', prompt: 'consent' },
    })),
  ];
  const covered = new Set<string>();
  for (const c of cases) {
    const profile = PROFILES[c.p];
    const v = profile.variants.find((x) => x.id === c.v)!;
    const got = parts(v.authorizeUrl({ ...base, codeChallenge: profile.pkce ? ch : undefined, inputs: c.inputs ?? {} }));
    assert.equal(got.endpoint, c.endpoint, `${c.p}/${c.v}`);
    assert.deepEqual(got.params, c.params, `${c.p}/${c.v}`);
    assert.equal(got.count, Object.keys(c.params).length, `${c.p}/${c.v}: no parameter twice`);
    // The scopes listed on the variant are the ones asked for.
    assert.deepEqual(new Set(c.params.scope.split(c.p === 'zoho' ? ',' : ' ')), new Set(v.scopes), `${c.p}/${c.v}: scopes`);
    covered.add(`${c.p}/${c.v}`);
  }
  for (const [p, profile] of Object.entries(PROFILES)) for (const v of profile.variants) assert.ok(covered.has(`${p}/${v.id}`), `${p}/${v.id} is checked`);
  // authBaseUrl replaces the origin and keeps the path (a path on it goes in front).
  const moved = parts(PROFILES.google.variants[0].authorizeUrl({ ...base, codeChallenge: ch, inputs: {}, authBaseUrl: 'http://127.0.0.1:9/' }));
  assert.equal(moved.endpoint, 'http://127.0.0.1:9/o/oauth2/v2/auth');
  assert.equal(atAuthBase('https://test.salesforce.com/services/oauth2/token?x=1', 'http://127.0.0.1:9/host/test.salesforce.com/'), 'http://127.0.0.1:9/host/test.salesforce.com/services/oauth2/token?x=1');
  // Inputs are checked before anything is sent.
  assert.throws(() => PROFILES.microsoft.variants.find((v) => v.id === 'application')!.authorizeUrl({ ...base, inputs: { tenant: 'common' } }), refused('bad_input'));
  assert.throws(() => PROFILES.salesforce.variants.find((v) => v.id === 'mydomain')!.authorizeUrl({ ...base, inputs: { myDomain: 'evil.example.com' } }), refused('bad_input'));
  assert.throws(() => PROFILES.jane.variants[0].authorizeUrl({ ...base, inputs: { clinicHost: 'not a host' } }), refused('bad_input'));
});

// ---------------------------------------------------------------- round trips, refreshes, API calls

test('Google: round trip, then createClient refreshes at the fake (config.tokenUrl) and reads the calendar with the new token', async () => {
  const f: Flow = { provider: 'google', variant: 'account' };
  const a = await authorize(f);
  assert.equal(a.back.searchParams.get('state'), a.state);
  const r = await a.complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.equal(r.secrets.expiresAt, String(NOW + 3599_000));
  assert.deepEqual(r.config, { tokenUrl: `${oauth.url}/token` });
  const { ctx, saved } = connection(f, r, g.url, NOW + 2 * HOUR);
  const before = refreshesOf('google').length;
  const got = await google.client!(ctx).events!(WINDOW, 'primary');
  assert.ok(got.ok, JSON.stringify(got));
  assert.equal(refreshesOf('google').length, before + 1, 'the expired access token was refreshed at the fake');
  assert.equal(saved.at(-1)?.refreshToken, r.secrets.refreshToken, 'Google does not rotate refresh tokens');
  assert.notEqual(saved.at(-1)?.accessToken, r.secrets.accessToken);
  assert.deepEqual(g.violations, []);
});

test('Microsoft delegated: round trip with PKCE and offline_access; the Graph client refreshes (a new refresh token each time) and reads /me', async () => {
  const f: Flow = { provider: 'microsoft', variant: 'delegated' };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.deepEqual(r.config, { mode: 'delegated', tokenUrl: `${oauth.url}/common/oauth2/v2.0/token` });
  const { ctx, saved } = connection(f, r, m.url, NOW + 2 * HOUR);
  const got = await graph.client!(ctx).inspect!(ev, { remoteId: 'AAMkAGI2-not-there', generation: 0 });
  assert.deepEqual(got, { ok: true, value: { state: 'missing' } });
  const rotated = saved.at(-1)?.refreshToken;
  assert.ok(rotated && rotated !== r.secrets.refreshToken, 'the new refresh token is stored');
  assert.ok(oauth.refreshTokens('microsoft').includes(r.secrets.refreshToken), 'the old one stays valid at Microsoft');
  // A tenant typed by the owner is kept for the connector.
  const t = await (await authorize({ ...f, inputs: { tenant: 'clinic.onmicrosoft.com' } })).complete();
  assert.equal(t.config?.tenant, 'clinic.onmicrosoft.com');
});

test('Microsoft: without offline_access there is no refresh token, and the connection is refused rather than dying in an hour', async () => {
  const client = oauth.client('microsoft');
  const verifier = createCodeVerifier();
  const url = new URL(PROFILES.microsoft.variants[0].authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state: 's', codeChallenge: codeChallengeS256(verifier), inputs: {}, authBaseUrl: oauth.url }));
  url.searchParams.set('scope', 'Calendars.ReadWrite');
  const back = await oauth.grant(url.toString());
  await assert.rejects(PROFILES.microsoft.variants[0].complete({
    callback: back.searchParams, clientId: client.clientId, clientSecret: client.clientSecret, redirectUri: REDIRECT_URI, codeVerifier: verifier, inputs: {}, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW),
  }), refused('no_refresh_token'));
});

test('Microsoft application: admin consent for the tenant (no code), a client-credentials token proves it, the Graph client writes any mailbox', async () => {
  const f: Flow = { provider: 'microsoft', variant: 'application', inputs: { tenant: 'clinic.onmicrosoft.com' } };
  const a = await authorize(f);
  assert.deepEqual(Object.fromEntries(a.back.searchParams), { admin_consent: 'True', tenant: TENANT, scope: 'https://graph.microsoft.com/.default', state: a.state });
  const r = await a.complete();
  assert.deepEqual(r.secrets, {});
  assert.deepEqual(r.config, { mode: 'application', tenant: 'clinic.onmicrosoft.com', tokenUrl: `${oauth.url}/clinic.onmicrosoft.com/oauth2/v2.0/token` });
  const cc = oauth.requests.filter((x) => x.provider === 'microsoft' && x.grant === 'client_credentials');
  assert.equal(cc.at(-1)?.status, 200);
  const { ctx } = connection(f, r, m.url, NOW);
  const got = await graph.client!(ctx).inspect!(ev, { remoteId: 'AAMkAGI2-not-there', calendarId: 'lund@clinic.example', generation: 0 });
  assert.deepEqual(got, { ok: true, value: { state: 'missing' } });
  // Without a secret the app's credentials cannot be proven.
  await assert.rejects((await authorize(f)).complete({ clientSecret: undefined }), refused('invalid_client'));
});

test('Microsoft admin consent for `common` is refused by the profile and by the fake; client credentials without consent fail', async () => {
  const client = oauth.client('microsoft');
  const res = await fetch(`${oauth.url}/common/v2.0/adminconsent?${new URLSearchParams({ client_id: client.clientId, scope: 'https://graph.microsoft.com/.default', redirect_uri: REDIRECT_URI, state: 's', auto: 'allow' })}`, { redirect: 'manual' });
  assert.equal(res.status, 400, 'no redirect for common');
  assert.match(await res.text(), /AADSTS/);
  await assert.rejects(PROFILES.microsoft.variants[1].complete({
    callback: new URLSearchParams({ admin_consent: 'True', tenant: TENANT, state: 's' }), clientId: client.clientId, clientSecret: client.clientSecret,
    redirectUri: REDIRECT_URI, inputs: { tenant: 'common' }, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW),
  }), refused('bad_input'));
  // A newly registered app nobody consented to: the client-credentials proof fails.
  const unregister = oauth.register('microsoft', { clientId: 'unconsented-app', clientSecret: 'sekret', redirectUris: [REDIRECT_URI] });
  try {
    await assert.rejects(PROFILES.microsoft.variants[1].complete({
      callback: new URLSearchParams({ admin_consent: 'True', tenant: TENANT, state: 's' }), clientId: 'unconsented-app', clientSecret: 'sekret',
      redirectUri: REDIRECT_URI, inputs: { tenant: TENANT }, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW),
    }), refused('invalid_grant'));
  } finally {
    unregister();
  }
  // The admin refused: the redirect says so.
  const denied = await authorize({ provider: 'microsoft', variant: 'application', inputs: { tenant: TENANT } }, { decision: 'deny' });
  await assert.rejects(denied.complete(), refused('access_denied'));
});

test('Zoho: the code is exchanged at the accounts server of the callback (the user\'s data centre); refreshes go there too', async () => {
  oauth.settings.zohoLocation = 'eu';
  const f: Flow = { provider: 'zoho', variant: 'account' };
  const a = await authorize(f);
  const dc = oauth.hostUrl('accounts.zoho.eu');
  assert.equal(a.back.searchParams.get('accounts-server'), dc);
  assert.equal(a.back.searchParams.get('location'), 'eu');
  const r = await a.complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.deepEqual(r.config, { accountsServer: dc, location: 'eu' });
  assert.equal(r.baseUrl, undefined, 'not one of Zoho\'s own hosts: the connection names its API base');
  assert.equal(oauth.requests.filter((x) => x.provider === 'zoho' && x.endpoint === 'token').at(-1)?.host, 'accounts.zoho.eu');
  const { ctx } = connection(f, r, z.url, NOW + 2 * HOUR);
  const before = refreshesOf('zoho').length;
  const got = await zoho.client!(ctx).busy!(WINDOW, undefined);
  assert.ok(got.ok, JSON.stringify(got));
  assert.equal(refreshesOf('zoho').length, before + 1);
  assert.equal(refreshesOf('zoho').at(-1)?.host, 'accounts.zoho.eu');
  // The real servers: the data centre gives the Calendar host.
  const real = await PROFILES.zoho.variants[0].complete({
    callback: new URLSearchParams({ code: 'c', location: 'eu', 'accounts-server': 'https://accounts.zoho.eu' }), clientId: 'x', clientSecret: 'y', redirectUri: REDIRECT_URI, inputs: {},
    fetch: async (u) => { assert.equal(String(u), 'https://accounts.zoho.eu/oauth/v2/token'); return Response.json({ access_token: 'a', refresh_token: 'r', expires_in: 3600 }); },
    now: () => new Date(NOW),
  });
  assert.equal(real.baseUrl, 'https://calendar.zoho.eu');
  assert.deepEqual(real.config, { accountsServer: 'https://accounts.zoho.eu', location: 'eu' });
});

test('Zoho: a code taken to another data centre is refused; an accounts server that is not Zoho\'s never gets the secret', async () => {
  const a = await authorize({ provider: 'zoho', variant: 'account' });
  const wrong = new URLSearchParams(a.back.searchParams);
  wrong.set('accounts-server', oauth.hostUrl('accounts.zoho.com'));
  await assert.rejects(a.complete({ callback: wrong }), refused('invalid_grant'));
  assert.ok(await a.complete(), 'the right data centre still takes the unused code');
  const evil = new URLSearchParams(a.back.searchParams);
  evil.set('accounts-server', 'https://accounts.zoho.evil.example');
  let called = false;
  await assert.rejects(a.complete({ callback: evil, fetch: async () => { called = true; return Response.json({}); } }), refused('bad_accounts_server'));
  assert.equal(called, false);
});

test('Salesforce: production, sandbox and My Domain; instance_url kept, refreshes at the login host, the API at the instance', async () => {
  for (const [variant, host, inputs] of [
    ['production', 'login.salesforce.com', {}],
    ['sandbox', 'test.salesforce.com', {}],
    ['mydomain', 'acme--uat.sandbox.my.salesforce.com', { myDomain: 'acme--uat.sandbox.my.salesforce.com' }],
  ] as const) {
    const f: Flow = { provider: 'salesforce', variant, inputs, authBaseUrl: oauth.hostUrl(host) };
    const r = await (await authorize(f)).complete();
    assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'instanceUrl', 'refreshToken'], variant);
    assert.equal(r.secrets.instanceUrl, sf.url);
    assert.equal(r.baseUrl, oauth.hostUrl(host), `${variant}: the login host is the connection's base URL`);
    assert.match(r.account ?? '', /^Org 00D/);
    assert.equal(oauth.requests.filter((x) => x.provider === 'salesforce' && x.endpoint === 'token').at(-1)?.host, host);
    // A refused session is renewed with the refresh token at the login host, then the API call goes through.
    const { ctx, saved } = connection(f, r, r.baseUrl!, NOW);
    ctx.secrets.accessToken = 'stale-session';
    const got = await salesforce.client!(ctx).inspect!(ev, { remoteId: 'x', generation: 0 });
    assert.ok(got.ok, JSON.stringify(got));
    assert.equal(saved.at(-1)?.instanceUrl, sf.url);
    assert.equal(refreshesOf('salesforce').at(-1)?.host, host);
  }
  assert.deepEqual(sf.violations, []);
});

test('Salesforce: a sandbox code is only honoured at a sandbox host; no refresh_token scope, no refresh token', async () => {
  const a = await authorize({ provider: 'salesforce', variant: 'sandbox', authBaseUrl: oauth.hostUrl('test.salesforce.com') });
  await assert.rejects(a.complete({ authBaseUrl: oauth.hostUrl('login.salesforce.com') }), refused('invalid_grant'));
  const client = oauth.client('salesforce');
  const verifier = createCodeVerifier();
  const url = new URL(PROFILES.salesforce.variants[0].authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state: 's', codeChallenge: codeChallengeS256(verifier), inputs: {}, authBaseUrl: oauth.url }));
  url.searchParams.set('scope', 'api');
  const back = await oauth.grant(url.toString());
  await assert.rejects(PROFILES.salesforce.variants[0].complete({
    callback: back.searchParams, clientId: client.clientId, clientSecret: client.clientSecret, redirectUri: REDIRECT_URI, codeVerifier: verifier, inputs: {}, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW),
  }), refused('no_refresh_token'));
});

test('HubSpot: round trip; the CRM client refreshes at the fake (config.tokenUrl) and reads a meeting', async () => {
  const f: Flow = { provider: 'hubspot', variant: 'account' };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.deepEqual(r.config, { tokenUrl: `${oauth.url}/oauth/v1/token` });
  const { ctx, saved } = connection(f, r, hs.url, NOW + HOUR);
  const got = await hubspot.client!(ctx).inspect!(ev, { remoteId: '99999', generation: 0 });
  assert.ok(got.ok, JSON.stringify(got));
  assert.equal(saved.at(-1)?.refreshToken, r.secrets.refreshToken);
  assert.equal(refreshesOf('hubspot').at(-1)?.status, 200);
});

test('Calendly: PKCE round trip, the owner becomes config.user; refresh tokens rotate and the used one is dead', async () => {
  const f: Flow = { provider: 'calendly', variant: 'account' };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.deepEqual(r.config, { user: oauth.settings.calendlyOwner, tokenUrl: `${oauth.url}/oauth/token` });
  const { ctx, saved } = connection(f, r, cal.url, NOW + 3 * HOUR);
  const seen: string[] = [];
  for await (const c of calendly.list!(WINDOW, ctx)) seen.push(c.externalId);
  assert.equal(refreshesOf('calendly').at(-1)?.status, 200);
  const next = saved.at(-1)!.refreshToken;
  assert.ok(next && next !== r.secrets.refreshToken, 'the rotated refresh token is stored');
  // The first refresh token was single-use.
  const again = connection(f, r, cal.url, NOW + 3 * HOUR);
  await assert.rejects(async () => { for await (const _ of calendly.list!(WINDOW, again.ctx)) void _; }, (e: unknown) => (e as { failure?: { class?: string } }).failure?.class === 'auth');
  assert.deepEqual(cal.violations, []);
});

test('Square: code flow with the secret (JSON token request); the source refreshes (same refresh token back) and lists bookings', async () => {
  const f: Flow = { provider: 'square', variant: 'production' };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken']);
  assert.equal(r.secrets.expiresAt, String(NOW + 30 * 86_400_000));
  assert.deepEqual(r.config, { tokenUrl: `${oauth.url}/oauth2/token` });
  assert.equal(r.account, 'Square seller MLFAKE7Q2Z3X9');
  const { ctx, saved } = connection(f, r, sq.url, NOW + 31 * 86_400_000);
  for await (const _ of square.list!(WINDOW, ctx)) void _;
  assert.equal(refreshesOf('square').at(-1)?.status, 200);
  assert.equal(saved.at(-1)?.refreshToken, r.secrets.refreshToken, 'the code flow keeps its refresh token');
  assert.deepEqual(oauth.violations, []);
  const sandbox = await (await authorize({ provider: 'square', variant: 'sandbox' })).complete();
  assert.equal(sandbox.baseUrl, 'https://connect.squareupsandbox.com');
});

test('Square codes live 5 minutes, others 10', async () => {
  const s = await authorize({ provider: 'square', variant: 'production' });
  const gg = await authorize({ provider: 'google', variant: 'account' });
  oauth.advance(6 * 60_000);
  try {
    await assert.rejects(s.complete(), refused('invalid_grant'));
    assert.ok((await gg.complete()).secrets.refreshToken);
    const late = await authorize({ provider: 'google', variant: 'account' });
    oauth.advance(10 * 60_000 + 1);
    await assert.rejects(late.complete(), refused('invalid_grant'));
  } finally {
    oauth.advance(-(16 * 60_000 + 1));
  }
});

test('Acuity: the access token (no refresh token) is used as Bearer; the API-key path still works', async () => {
  const f: Flow = { provider: 'acuity', variant: 'account' };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets), ['accessToken']);
  const { ctx } = connection(f, r, ac.url, NOW);
  for await (const _ of acuity.list!(WINDOW, ctx)) void _;
  assert.equal(ac.requests.at(-1)?.path, '/api/v1/appointments');
  const basic: ConnectionContext = { ...ctx, secrets: { ...ac.credentials } };
  for await (const _ of acuity.list!(WINDOW, basic)) void _;
  assert.deepEqual(ac.violations, []);
  assert.deepEqual(acuity.descriptor.authSets, [['apiKey', 'userId'], ['accessToken']]);
});

test('Jane: PKCE round trip as a public client; janeTokens refreshes at the fake realm (rotating) and lists appointments', async () => {
  const f: Flow = { provider: 'jane', variant: 'clinic', inputs: { clinicHost: 'myclinic.janeapp.com' } };
  const r = await (await authorize(f)).complete();
  assert.deepEqual(Object.keys(r.secrets).sort(), ['accessToken', 'expiresAt', 'refreshToken', 'refreshedAt']);
  assert.deepEqual(r.config, { clinicHost: 'myclinic.janeapp.com', authServer: `${oauth.url}/realms/jane` });
  const { ctx, saved } = connection(f, r, jn.url, NOW + HOUR);
  for await (const _ of jane.list!(WINDOW, ctx)) void _;
  assert.equal(refreshesOf('jane').at(-1)?.status, 200);
  assert.notEqual(saved.at(-1)?.refreshToken, r.secrets.refreshToken);
  const sandbox = await (await authorize({ ...f, variant: 'sandbox' })).complete();
  assert.equal(sandbox.config?.authServer, `${oauth.url}/realms/jane_partner_sandbox`);
});

// ---------------------------------------------------------------- refusals

const EVERY: Flow[] = [
  { provider: 'google', variant: 'account' }, { provider: 'microsoft', variant: 'delegated' }, { provider: 'zoho', variant: 'account' },
  { provider: 'salesforce', variant: 'production' }, { provider: 'hubspot', variant: 'account' }, { provider: 'calendly', variant: 'account' },
  { provider: 'square', variant: 'production' }, { provider: 'acuity', variant: 'account' }, { provider: 'jane', variant: 'clinic', inputs: { clinicHost: 'myclinic.janeapp.com' } },
];

test('every provider: denied consent is refused in plain words; the state comes back unchanged; a code is used once', async () => {
  const odd = 'ü s/t+a=t&e%20~';
  for (const f of EVERY) {
    const denied = await authorize(f, { decision: 'deny', state: odd });
    assert.equal(denied.back.searchParams.get('state'), odd, `${f.provider}: state echoed on denial`);
    assert.equal(denied.back.searchParams.get('error'), 'access_denied');
    assert.equal(`${denied.back.origin}${denied.back.pathname}`, REDIRECT_URI);
    await assert.rejects(denied.complete(), (e: unknown) => refused('access_denied')(e) && /consent was denied/.test((e as Error).message));
    const a = await authorize(f, { state: odd });
    assert.equal(a.back.searchParams.get('state'), odd, `${f.provider}: state echoed`);
    await a.complete();
    await assert.rejects(a.complete(), refused('invalid_grant'), `${f.provider}: the code is single-use`);
  }
});

test('a wrong PKCE verifier, another redirect URI, an unknown client or a bad secret are refused', async () => {
  for (const f of EVERY.filter((x) => PROFILES[x.provider].pkce)) {
    const a = await authorize(f);
    await assert.rejects(a.complete({ codeVerifier: createCodeVerifier() }), refused('invalid_grant'), `${f.provider}: wrong verifier`);
  }
  const a = await authorize({ provider: 'google', variant: 'account' });
  await assert.rejects(a.complete({ redirectUri: `${REDIRECT_URI}/` }), (e: unknown) => e instanceof OAuthRefused, 'the redirect URI is compared byte for byte');
  await assert.rejects(a.complete({ clientSecret: 'wrong' }), refused('invalid_client'));
  await assert.rejects(a.complete({ clientId: 'nobody' }), refused('invalid_client'));
  // At authorize: an unregistered redirect URI or client gets an error page, never a redirect.
  const url = new URL(a.url);
  url.searchParams.set('redirect_uri', 'https://evil.example/cb');
  await assert.rejects(oauth.grant(url.toString()), /400.*redirect_uri_mismatch/s);
  url.searchParams.set('client_id', 'nobody');
  await assert.rejects(oauth.grant(url.toString()), /400/);
});

test('Google gives a refresh token only on the first consent or with prompt=consent, as the profile always asks', async () => {
  const unregister = oauth.register('google', { clientId: 'fresh-google-app', clientSecret: 'g-secret', redirectUris: [REDIRECT_URI] });
  const client = oauth.client('google');
  try {
    const take = async (prompt: boolean) => {
      const verifier = createCodeVerifier();
      const url = new URL(PROFILES.google.variants[0].authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state: 's', codeChallenge: codeChallengeS256(verifier), inputs: {}, authBaseUrl: oauth.url }));
      if (!prompt) url.searchParams.delete('prompt');
      const back = await oauth.grant(url.toString());
      return PROFILES.google.variants[0].complete({ callback: back.searchParams, clientId: client.clientId, clientSecret: client.clientSecret, redirectUri: REDIRECT_URI, codeVerifier: verifier, inputs: {}, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW) });
    };
    assert.ok((await take(false)).secrets.refreshToken, 'first consent');
    await assert.rejects(take(false), refused('no_refresh_token'), 'a second consent without prompt=consent');
    assert.ok((await take(true)).secrets.refreshToken, 'prompt=consent');
    // A challenge without a method is `plain` at Google: an S256 verifier then does not match.
    const verifier = createCodeVerifier();
    const url = new URL(PROFILES.google.variants[0].authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state: 's', codeChallenge: codeChallengeS256(verifier), inputs: {}, authBaseUrl: oauth.url }));
    url.searchParams.delete('code_challenge_method');
    const back = await oauth.grant(url.toString());
    await assert.rejects(PROFILES.google.variants[0].complete({ callback: back.searchParams, clientId: client.clientId, clientSecret: client.clientSecret, redirectUri: REDIRECT_URI, codeVerifier: verifier, inputs: {}, authBaseUrl: oauth.url, fetch, now: () => new Date(NOW) }), refused('invalid_grant'));
  } finally {
    unregister();
  }
});

test('the consent page names the provider and the scopes; its Allow and Deny links redirect with a code or access_denied', async () => {
  const client = oauth.client('hubspot');
  const url = PROFILES.hubspot.variants[0].authorizeUrl({ clientId: client.clientId, redirectUri: REDIRECT_URI, state: 'page-state', inputs: {}, authBaseUrl: oauth.url });
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /<title>HubSpot — allow access: crm\.objects\.contacts\.read crm\.objects\.contacts\.write oauth<\/title>/);
  const link = (id: string) => new URL(/id="([a-z]+)" href="([^"]+)"/g.exec(html.slice(html.indexOf(`id="${id}"`) - 3))![2].replace(/&#38;/g, '&'));
  const allow = await fetch(link('allow'), { redirect: 'manual' });
  const back = new URL(allow.headers.get('location')!);
  assert.equal(back.searchParams.get('state'), 'page-state');
  assert.ok(back.searchParams.get('code'));
  const again = await fetch(url);
  const html2 = await again.text();
  const deny = await fetch(new URL(/id="deny" href="([^"]+)"/.exec(html2)![1].replace(/&#38;/g, '&')), { redirect: 'manual' });
  assert.equal(new URL(deny.headers.get('location')!).searchParams.get('error'), 'access_denied');
});

test('a provider that cannot be reached is refused in plain words, as a network problem', async () => {
  const a = await authorize({ provider: 'hubspot', variant: 'account' });
  await assert.rejects(a.complete({ fetch: async () => { throw new TypeError('fetch failed'); } }), (e: unknown) => refused('network')(e) && /HubSpot could not be reached/.test((e as Error).message));
  await assert.rejects(a.complete({ fetch: async () => new Response('oops', { status: 503 }) }), refused('provider_error'));
  await assert.rejects(a.complete({ callback: new URLSearchParams({ state: a.state }) }), refused('no_code'));
  assert.deepEqual(oauth.violations, []);
});
