// One fake OAuth 2.0 authorization server for every provider Meridian connects to from the web app, enforcing
// the rules of ../shared/platforms/connect.md §4. The connectors' `oauth` profiles are pointed at it with
// `authBaseUrl` (the origin of every authorize and token endpoint is replaced, the path kept), so it serves each
// provider's own paths under one origin:
//   Google      /o/oauth2/v2/auth                         /token
//   Microsoft   /{tenant}/oauth2/v2.0/authorize           /{tenant}/oauth2/v2.0/token   /{tenant}/v2.0/adminconsent
//   Zoho        /oauth/v2/auth                            /oauth/v2/token
//   Salesforce  /services/oauth2/authorize                /services/oauth2/token
//   HubSpot     /oauth/authorize                          /oauth/v1/token
//   Calendly    /oauth/authorize                          /oauth/token
//   Square      /oauth2/authorize                         /oauth2/token (JSON)
//   Acuity      /oauth2/authorize                         /oauth2/token
//   Jane        /realms/{realm}/protocol/openid-connect/auth   …/token
// Where two providers share a path (HubSpot and Calendly authorize, Square and Acuity) the registered client id
// says which one is meant.
//
// Hosts: a provider whose rules depend on the host (Zoho's data centres, Salesforce's login / test / My Domain
// hosts) is reached at `fake.hostUrl('<real host>')` = `<origin>/host/<real host>`; the bare origin is the
// provider's default host (accounts.zoho.com, login.salesforce.com). Zoho's callback names the user's data centre
// as `accounts-server=<origin>/host/accounts.zoho.<dc>`, and a code or refresh token is honoured only there.
//
// Rules: registered client ids and secrets (unknown client or bad secret → 401 invalid_client); the redirect URI
// byte-exact against the registered ones at authorize (else an error page, no redirect) and against the
// authorize request's at the token endpoint; `state` echoed unchanged; codes single-use and short-lived (Square
// 5 min, others 10; the clock is injectable and `advance(ms)` moves it); used or expired code → invalid_grant
// (Zoho: HTTP 200 `invalid_code`, as Zoho answers); PKCE checked (method omitted = plain, RFC 7636 and Google);
// Google gives a refresh token only with access_type=offline on the first consent or with prompt=consent; Zoho
// the same with access_type=offline; Microsoft only with offline_access, every refresh returns a new refresh
// token and the old one stays valid; admin consent refuses `common`/`consumers`, answers
// `admin_consent=True&tenant&scope&state` without a code and then allows the client-credentials grant for
// `https://graph.microsoft.com/.default` only; Salesforce a refresh token only with `refresh_token`/
// `offline_access`, `instance_url` in every answer, sandbox codes only at a sandbox host; Calendly refresh tokens
// single-use (rotated); Square code-flow refresh returns the same refresh token (PKCE flow: a new one); Jane
// rotates; Acuity has no refresh token.
//
// The authorize endpoint answers a small HTML consent page (title naming the provider and the scopes, links
// #allow and #deny) for a headless browser; `&auto=allow|deny` on the authorize URL redirects at once, and
// `fake.grant(url, decision)` does that and returns the redirect's URL.
//
// Access tokens: random unless `accessToken(provider)` chooses them; every one issued is told to the
// `onAccessToken` listeners, so a test can make the API fakes accept them (`oauth.onAccessToken((p, t) =>
// google.acceptToken(t))`).
//
//   const o = await startFakeOAuth({ now?, accessToken? });
//   o.url   o.hostUrl(host)   o.client(provider) → { clientId, clientSecret, redirectUris }   o.register(provider, client)
//   o.grant(authorizeUrl, 'allow'|'deny')   o.advance(ms)   o.settings (zohoLocation, microsoftTenant, salesforce…)
//   o.issued   o.refreshTokens(provider)   o.requests   o.violations   o.onAccessToken(fn)   o.close()
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export type Provider = 'google' | 'microsoft' | 'zoho' | 'salesforce' | 'hubspot' | 'calendly' | 'square' | 'acuity' | 'jane';
export const PROVIDERS: Provider[] = ['google', 'microsoft', 'zoho', 'salesforce', 'hubspot', 'calendly', 'square', 'acuity', 'jane'];

export interface FakeClient {
  clientId: string;
  /** Absent: a public client (PKCE only). */
  clientSecret?: string;
  redirectUris: string[];
}

export interface FakeOAuthSettings {
  /** The signed-in user (e-mail) for every provider. */
  user: string;
  /** Zoho: the data centre of the user's account (`us`, `eu`, `in`, `au`, `jp`, `ca`, `sa`, `cn`). */
  zohoLocation: string;
  /** Microsoft: the tenant of the user and of the admin who consents. */
  microsoftTenant: { id: string; domain: string };
  /** Salesforce: the org's instance URL in token answers (production and sandbox orgs). */
  salesforceInstanceUrl: string;
  salesforceSandboxInstanceUrl: string;
  /** Calendly: the user URI (`owner`) and organization URI of token answers. */
  calendlyOwner: string;
  calendlyOrganization: string;
  squareMerchantId: string;
}

export interface FakeOAuth {
  url: string;
  /** The fake as the given real host (`accounts.zoho.eu`, `test.salesforce.com`). */
  hostUrl(host: string): string;
  client(provider: Provider): FakeClient;
  /** Register another client, the provider's first from now on; the answer removes it again. */
  register(provider: Provider, client: FakeClient): () => void;
  /** Follow the authorize URL with the owner's decision; the URL the browser is sent back to. */
  grant(authorizeUrl: string, decision?: 'allow' | 'deny'): Promise<URL>;
  /** Move the fake's clock. */
  advance(ms: number): void;
  now(): number;
  settings: FakeOAuthSettings;
  /** Every access token issued, with its provider. */
  issued: { provider: Provider; token: string; grant: string }[];
  /** Live refresh tokens of a provider. */
  refreshTokens(provider: Provider): string[];
  requests: { provider: Provider | undefined; endpoint: 'authorize' | 'consent' | 'token'; host: string; grant?: string; status: number }[];
  /** Requests the real provider would refuse as malformed (our mistakes, not the owner's). */
  violations: string[];
  onAccessToken(fn: (provider: Provider, token: string) => void): void;
  close(): Promise<void>;
}

export const REDIRECT_URI = 'https://hub.example-clinic.test/oauth/callback';

const ZOHO_DC: Record<string, string> = {
  us: 'accounts.zoho.com', eu: 'accounts.zoho.eu', in: 'accounts.zoho.in', au: 'accounts.zoho.com.au', jp: 'accounts.zoho.jp',
  ca: 'accounts.zohocloud.ca', sa: 'accounts.zoho.sa', cn: 'accounts.zoho.com.cn',
};
const ZOHO_API: Record<string, string> = {
  us: 'https://www.zohoapis.com', eu: 'https://www.zohoapis.eu', in: 'https://www.zohoapis.in', au: 'https://www.zohoapis.com.au',
  jp: 'https://www.zohoapis.jp', ca: 'https://www.zohoapis.ca', sa: 'https://www.zohoapis.sa', cn: 'https://www.zohoapis.com.cn',
};
const MS_AUDIENCES = new Set(['common', 'organizations', 'consumers']);
const GRAPH_DEFAULT = 'https://graph.microsoft.com/.default';

interface Rule {
  name: string;
  defaultHost: string;
  codeLifetimeMs: number;
  /** `response_type=code` must be sent (HubSpot and Square do not take it). */
  responseType: boolean;
  /** PKCE must be used, with S256. */
  pkceRequired: boolean;
  /** A public client (no secret) may redeem a code with PKCE. */
  publicPkce: boolean;
  tokenFormat: 'form' | 'json';
  /** Scopes are separated by commas (Zoho) rather than spaces. */
  commaScopes?: boolean;
}

const RULES: Record<Provider, Rule> = {
  google: { name: 'Google', defaultHost: 'accounts.google.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: false, tokenFormat: 'form' },
  microsoft: { name: 'Microsoft', defaultHost: 'login.microsoftonline.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: true, tokenFormat: 'form' },
  zoho: { name: 'Zoho', defaultHost: 'accounts.zoho.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: false, tokenFormat: 'form', commaScopes: true },
  salesforce: { name: 'Salesforce', defaultHost: 'login.salesforce.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: true, tokenFormat: 'form' },
  hubspot: { name: 'HubSpot', defaultHost: 'app.hubspot.com', codeLifetimeMs: 10 * 60_000, responseType: false, pkceRequired: false, publicPkce: false, tokenFormat: 'form' },
  calendly: { name: 'Calendly', defaultHost: 'auth.calendly.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: true, tokenFormat: 'form' },
  square: { name: 'Square', defaultHost: 'connect.squareup.com', codeLifetimeMs: 5 * 60_000, responseType: false, pkceRequired: false, publicPkce: true, tokenFormat: 'json' },
  acuity: { name: 'Acuity Scheduling', defaultHost: 'acuityscheduling.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: false, publicPkce: false, tokenFormat: 'form' },
  jane: { name: 'Jane', defaultHost: 'login.id.janeapp.com', codeLifetimeMs: 10 * 60_000, responseType: true, pkceRequired: true, publicPkce: true, tokenFormat: 'form' },
};

/** One authorization under way (consent page shown) or granted (a code). */
interface Authz {
  provider: Provider;
  kind: 'code' | 'admin_consent';
  clientId: string;
  redirectUri: string;
  state: string | null;
  scopes: string[];
  challenge?: string;
  method?: 'S256' | 'plain';
  host: string;
  /** Microsoft: the tenant segment of the path. */
  tenant?: string;
  offline: boolean;
  promptConsent: boolean;
}

interface Code extends Authz {
  issuedAt: number;
  used: boolean;
}

interface Refresh {
  provider: Provider;
  clientId: string;
  scopes: string[];
  /** Zoho: the data centre's host; Salesforce: the org kind. */
  host: string;
  pkce: boolean;
  live: boolean;
}

const rand = (n = 24) => randomBytes(n).toString('base64url');
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const salesforceKind = (host: string) => (host === 'test.salesforce.com' || host.endsWith('.sandbox.my.salesforce.com') ? 'sandbox' : 'production');

export async function startFakeOAuth(o: { now?: () => number; accessToken?: (provider: Provider) => string | undefined } = {}): Promise<FakeOAuth> {
  let offset = 0;
  const now = () => (o.now?.() ?? Date.now()) + offset;
  const clients = new Map<Provider, FakeClient[]>();
  for (const p of PROVIDERS) {
    // Jane's partner apps are taken as public PKCE clients (Jane does not say); every other one is confidential.
    clients.set(p, [{ clientId: `${p}-client-${rand(6)}`, ...(p === 'jane' ? {} : { clientSecret: `${p}-secret-${rand(12)}` }), redirectUris: [REDIRECT_URI] }]);
  }
  const pending = new Map<string, Authz>();
  const codes = new Map<string, Code>();
  const refreshes = new Map<string, Refresh>();
  /** `${provider}|${clientId}|${user}`: a consent already given (Google and Zoho give a refresh token only the first time). */
  const consented = new Set<string>();
  /** `${clientId}|${tenantId}`: Microsoft admin consent given for the tenant. */
  const adminConsents = new Set<string>();
  const listeners: ((p: Provider, t: string) => void)[] = [];

  const settings: FakeOAuthSettings = {
    user: 'ada@clinic.example',
    zohoLocation: 'eu',
    microsoftTenant: { id: '72f988bf-86f1-41af-91ab-2d7cd011db47', domain: 'clinic.onmicrosoft.com' },
    salesforceInstanceUrl: 'https://meridian-dev.my.salesforce.com',
    salesforceSandboxInstanceUrl: 'https://meridian-dev--uat.sandbox.my.salesforce.com',
    calendlyOwner: 'https://api.calendly.com/users/AAAAAAAAAAAAAAAA',
    calendlyOrganization: 'https://api.calendly.com/organizations/BBBBBBBBBBBBBBBB',
    squareMerchantId: 'MLFAKE7Q2Z3X9',
  };

  const state: FakeOAuth = {
    url: '',
    hostUrl: (host) => `${state.url}/host/${host}`,
    client: (p) => clients.get(p)![0],
    register: (p, c) => {
      clients.get(p)!.unshift(c);
      return () => { clients.set(p, clients.get(p)!.filter((x) => x !== c)); };
    },
    async grant(authorizeUrl, decision = 'allow') {
      const u = new URL(authorizeUrl);
      u.searchParams.set('auto', decision);
      const res = await fetch(u, { redirect: 'manual' });
      const location = res.headers.get('location');
      if (res.status !== 302 || !location) throw new Error(`the fake authorize endpoint answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      return new URL(location);
    },
    advance: (ms) => { offset += ms; },
    now,
    settings,
    issued: [],
    refreshTokens: (p) => [...refreshes].filter(([, r]) => r.provider === p && r.live).map(([t]) => t),
    requests: [],
    violations: [],
    onAccessToken: (fn) => { listeners.push(fn); },
    close: () => new Promise((r) => server.close(() => r())),
  };

  // ------------------------------------------------------------------ routing

  type Route = { candidates: Provider[]; endpoint: 'authorize' | 'token' | 'adminconsent'; tenant?: string; realm?: string };

  function route(path: string): Route | undefined {
    let m: RegExpExecArray | null;
    if (path === '/o/oauth2/v2/auth') return { candidates: ['google'], endpoint: 'authorize' };
    if (path === '/token') return { candidates: ['google'], endpoint: 'token' };
    if ((m = /^\/([^/]+)\/oauth2\/v2\.0\/authorize$/.exec(path))) return { candidates: ['microsoft'], endpoint: 'authorize', tenant: decodeURIComponent(m[1]) };
    if ((m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path))) return { candidates: ['microsoft'], endpoint: 'token', tenant: decodeURIComponent(m[1]) };
    if ((m = /^\/([^/]+)\/(?:v2\.0\/)?adminconsent$/.exec(path))) return { candidates: ['microsoft'], endpoint: 'adminconsent', tenant: decodeURIComponent(m[1]) };
    if (path === '/oauth/v2/auth') return { candidates: ['zoho'], endpoint: 'authorize' };
    if (path === '/oauth/v2/token') return { candidates: ['zoho'], endpoint: 'token' };
    if (path === '/services/oauth2/authorize') return { candidates: ['salesforce'], endpoint: 'authorize' };
    if (path === '/services/oauth2/token') return { candidates: ['salesforce'], endpoint: 'token' };
    if (path === '/oauth/authorize') return { candidates: ['hubspot', 'calendly'], endpoint: 'authorize' };
    if (path === '/oauth/v1/token') return { candidates: ['hubspot'], endpoint: 'token' };
    if (path === '/oauth/token') return { candidates: ['calendly'], endpoint: 'token' };
    if (path === '/oauth2/authorize') return { candidates: ['square', 'acuity'], endpoint: 'authorize' };
    if (path === '/oauth2/token') return { candidates: ['square', 'acuity'], endpoint: 'token' };
    if ((m = /^\/realms\/([\w-]+)\/protocol\/openid-connect\/auth$/.exec(path))) return { candidates: ['jane'], endpoint: 'authorize', realm: m[1] };
    if ((m = /^\/realms\/([\w-]+)\/protocol\/openid-connect\/token$/.exec(path))) return { candidates: ['jane'], endpoint: 'token', realm: m[1] };
    return undefined;
  }

  /** The provider a request is for: the only candidate, or the one whose client id it names. */
  function providerOf(r: Route, clientId: string | null): Provider | undefined {
    if (r.candidates.length === 1) return r.candidates[0];
    return r.candidates.find((p) => clients.get(p)!.some((c) => c.clientId === clientId));
  }

  const clientOf = (p: Provider, id: string | null) => clients.get(p)!.find((c) => c.clientId === id);

  // ------------------------------------------------------------------ answers

  function page(res: ServerResponse, status: number, title: string, body: string) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>${body}</body></html>`);
  }

  function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }

  function redirect(res: ServerResponse, redirectUri: string, params: Record<string, string | null | undefined>) {
    const u = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) u.searchParams.set(k, v);
    res.writeHead(302, { location: u.toString(), 'cache-control': 'no-store' });
    res.end();
  }

  /** Where the owner is sent back to once they decided. */
  function decide(res: ServerResponse, a: Authz, decision: string) {
    if (decision !== 'allow') {
      return redirect(res, a.redirectUri, {
        ...(a.kind === 'admin_consent' ? { admin_consent: 'True' } : {}),
        error: 'access_denied',
        ...(a.provider === 'microsoft' ? { error_description: 'AADSTS65004: User declined to consent to access the app.' } : {}),
        state: a.state,
      });
    }
    const key = `${a.provider}|${a.clientId}|${settings.user}`;
    const first = !consented.has(key);
    consented.add(key);
    if (a.kind === 'admin_consent') {
      adminConsents.add(`${a.clientId}|${settings.microsoftTenant.id}`);
      return redirect(res, a.redirectUri, { admin_consent: 'True', tenant: settings.microsoftTenant.id, scope: a.scopes.join(' '), state: a.state });
    }
    const code = `${a.provider}-code-${rand()}`;
    // A Zoho code belongs to the user's data centre, whichever accounts server the authorisation started at.
    const host = a.provider === 'zoho' ? ZOHO_DC[settings.zohoLocation] : a.host;
    codes.set(code, { ...a, host, issuedAt: now(), used: false, promptConsent: a.promptConsent || first });
    const extra: Record<string, string> = {};
    if (a.provider === 'zoho') {
      extra.location = settings.zohoLocation;
      extra['accounts-server'] = state.hostUrl(ZOHO_DC[settings.zohoLocation]);
    }
    return redirect(res, a.redirectUri, { code, state: a.state, ...extra });
  }

  function authorize(req: URL, r: Route, host: string, res: ServerResponse) {
    const q = req.searchParams;
    const auto = q.get('auto');
    const clientId = q.get('client_id');
    const p = providerOf(r, clientId);
    const status = (s: number) => state.requests.push({ provider: p, endpoint: 'authorize', host, status: s });
    if (!p) { status(400); return page(res, 400, 'Error: invalid_client', '<p>Unknown client_id.</p>'); }
    const rule = RULES[p];
    const client = clientOf(p, clientId);
    if (!client) { status(400); return page(res, 400, `${rule.name} — error: invalid_client`, '<p>The OAuth client was not found.</p>'); }
    const redirectUri = q.get('redirect_uri');
    // Byte-exact against a registered URI; without a valid one nothing may be redirected to.
    if (redirectUri === null || !client.redirectUris.includes(redirectUri)) {
      status(400);
      return page(res, 400, `${rule.name} — error: redirect_uri_mismatch`, `<p>The redirect URI ${esc(redirectUri ?? '(none)')} is not registered for this client.</p>`);
    }
    if (p === 'calendly' && !/^https:/.test(redirectUri) && !/^http:\/\/localhost[:/]/.test(redirectUri)) {
      status(400);
      return page(res, 400, 'Calendly — error: invalid_redirect_uri', '<p>Production redirect URIs must use HTTPS.</p>');
    }
    const st = q.get('state');
    const fail = (error: string, description: string) => { status(302); redirect(res, redirectUri, { error, error_description: description, state: st }); };
    const scopeParam = q.get('scope') ?? '';
    const scopes = scopeParam.split(rule.commaScopes ? ',' : ' ').filter(Boolean);
    let a: Authz;
    if (r.endpoint === 'adminconsent') {
      if (!r.tenant || r.tenant === 'common' || r.tenant === 'consumers') {
        status(400);
        return page(res, 400, 'Microsoft — error: AADSTS50194', `<p>Admin consent needs a tenant: "${esc(r.tenant ?? '')}" is not one (use your tenant id or domain, or organizations).</p>`);
      }
      if (!isOurTenant(r.tenant) && r.tenant !== 'organizations') { status(400); return page(res, 400, 'Microsoft — error: AADSTS90002', '<p>Tenant not found.</p>'); }
      if (!scopes.length || !scopes.every((s) => s.endsWith('/.default'))) return fail('invalid_request', 'AADSTS70011: application permissions need the /.default scope');
      a = { provider: p, kind: 'admin_consent', clientId: client.clientId, redirectUri, state: st, scopes, host, tenant: r.tenant, offline: false, promptConsent: true };
    } else {
      if (rule.responseType && q.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
      if (p === 'microsoft' && r.tenant && !MS_AUDIENCES.has(r.tenant) && !isOurTenant(r.tenant)) { status(400); return page(res, 400, 'Microsoft — error: AADSTS90002', '<p>Tenant not found.</p>'); }
      const challenge = q.get('code_challenge') ?? undefined;
      const methodParam = q.get('code_challenge_method');
      // RFC 7636 §4.3 (and Google): a challenge without a method is `plain`.
      const method = challenge ? (methodParam ?? 'plain') : undefined;
      if (method && method !== 'S256' && method !== 'plain') return fail('invalid_request', 'code_challenge_method must be S256 or plain');
      if (rule.pkceRequired && method !== 'S256') return fail('invalid_request', 'PKCE with S256 is required');
      if (challenge && !/^[A-Za-z0-9\-._~]{43,128}$/.test(challenge)) return fail('invalid_request', 'malformed code_challenge');
      if (p === 'square' && q.get('session') !== 'false') state.violations.push('square: authorize without session=false');
      const offline = p === 'google' || p === 'zoho' ? q.get('access_type') === 'offline'
        : p === 'microsoft' ? scopes.includes('offline_access')
          : p === 'salesforce' ? scopes.includes('refresh_token') || scopes.includes('offline_access')
            : p !== 'acuity';
      a = {
        provider: p, kind: 'code', clientId: client.clientId, redirectUri, state: st, scopes, host, tenant: r.tenant, offline,
        promptConsent: q.get('prompt') === 'consent', ...(challenge ? { challenge, method: method as 'S256' | 'plain' } : {}),
      };
    }
    if (auto) { status(302); return decide(res, a, auto); }
    const tx = rand(12);
    pending.set(tx, a);
    status(200);
    const link = (d: string) => `${state.url}/__fake/consent/${tx}?decision=${d}`;
    return page(res, 200, `${rule.name} — allow access: ${scopes.join(' ') || '(no scopes)'}`, `
<h1>${esc(rule.name)}</h1>
<p>Signed in as <b>${esc(settings.user)}</b>. The app <code>${esc(client.clientId)}</code> asks for:</p>
<ul>${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<p><a id="allow" href="${esc(link('allow'))}">Allow</a> <a id="deny" href="${esc(link('deny'))}">Deny</a></p>`);
  }

  const isOurTenant = (t: string) => t.toLowerCase() === settings.microsoftTenant.id || t.toLowerCase() === settings.microsoftTenant.domain;

  // ------------------------------------------------------------------ token endpoint

  type Answer = { status: number; body: Record<string, unknown> };
  const oauthError = (status: number, error: string, error_description: string): Answer => ({ status, body: { error, error_description } });

  function issueAccess(p: Provider, grant: string): string {
    const token = o.accessToken?.(p) ?? `${p}-at-${rand()}`;
    state.issued.push({ provider: p, token, grant });
    for (const fn of listeners) fn(p, token);
    return token;
  }

  function newRefresh(r: Refresh): string {
    const t = `${r.provider}-rt-${rand()}`;
    refreshes.set(t, r);
    return t;
  }

  /** The answer of a successful grant, shaped like the provider's. */
  function tokenAnswer(p: Provider, grant: string, host: string, scopes: string[], refresh: string | undefined): Record<string, unknown> {
    const access_token = issueAccess(p, grant);
    const rt = refresh ? { refresh_token: refresh } : {};
    switch (p) {
      case 'google': return { access_token, expires_in: 3599, token_type: 'Bearer', scope: scopes.join(' '), ...rt };
      case 'microsoft': return { token_type: 'Bearer', scope: scopes.filter((s) => s !== 'offline_access').join(' '), expires_in: 3599, ext_expires_in: 3599, access_token, ...rt };
      case 'zoho': return { access_token, ...rt, api_domain: ZOHO_API[Object.entries(ZOHO_DC).find(([, h]) => h === host)?.[0] ?? 'us'], token_type: 'Bearer', expires_in: 3600 };
      case 'salesforce': {
        const sandbox = salesforceKind(host) === 'sandbox';
        return {
          access_token, ...rt, signature: rand(32), scope: scopes.join(' '), token_type: 'Bearer', issued_at: String(now()),
          instance_url: sandbox ? settings.salesforceSandboxInstanceUrl : settings.salesforceInstanceUrl,
          id: `https://${sandbox ? 'test' : 'login'}.salesforce.com/id/00D5g000004Xyz1EAB/0055g00000HqT2kAAF`,
        };
      }
      case 'hubspot': return { token_type: 'bearer', ...rt, access_token, expires_in: 1800 };
      case 'calendly': return { token_type: 'Bearer', access_token, ...rt, scope: scopes.join(' '), created_at: Math.floor(now() / 1000), expires_in: 7200, owner: settings.calendlyOwner, organization: settings.calendlyOrganization };
      case 'square': return { access_token, token_type: 'bearer', expires_at: new Date(now() + 30 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'), merchant_id: settings.squareMerchantId, ...rt, short_lived: false };
      case 'acuity': return { access_token, token_type: 'Bearer' };
      case 'jane': return { access_token, expires_in: 300, refresh_expires_in: 1800, ...rt, token_type: 'Bearer', scope: scopes.join(' ') };
    }
  }

  function token(p: Provider, r: Route, host: string, f: Record<string, string>, basic: { id: string; secret: string } | undefined): Answer {
    const rule = RULES[p];
    const clientId = f.client_id ?? basic?.id ?? null;
    const secret = f.client_secret ?? basic?.secret;
    const client = clientOf(p, clientId);
    if (!client) return oauthError(401, 'invalid_client', 'The OAuth client was not found.');
    if (secret !== undefined && secret !== client.clientSecret) return oauthError(401, 'invalid_client', 'Invalid client secret.');
    const grant = f.grant_type;
    const publicOk = grant === 'authorization_code' && rule.publicPkce && f.code_verifier !== undefined;
    if (client.clientSecret && secret === undefined && !publicOk) return oauthError(401, 'invalid_client', 'client_secret is missing.');

    if (grant === 'authorization_code') {
      const zohoRefusal: Answer = { status: 200, body: { error: 'invalid_code' } };
      const c = codes.get(f.code ?? '');
      if (!c || c.provider !== p || c.clientId !== client.clientId) return p === 'zoho' ? zohoRefusal : oauthError(400, 'invalid_grant', 'Malformed auth code.');
      if (c.used) return p === 'zoho' ? zohoRefusal : oauthError(400, 'invalid_grant', 'The authorization code was already redeemed.');
      if (now() - c.issuedAt > rule.codeLifetimeMs) return p === 'zoho' ? zohoRefusal : oauthError(400, 'invalid_grant', 'The authorization code has expired.');
      // Zoho: only the data centre that issued the code knows it.
      if (p === 'zoho' && host !== c.host) return zohoRefusal;
      if (p === 'salesforce' && salesforceKind(host) !== salesforceKind(c.host)) return oauthError(400, 'invalid_grant', 'authentication failure');
      if (f.redirect_uri === undefined) state.violations.push(`${p}: code exchange without redirect_uri`);
      if (f.redirect_uri !== c.redirectUri) return p === 'zoho' ? { status: 200, body: { error: 'invalid_redirect_uri' } } : oauthError(400, p === 'google' ? 'redirect_uri_mismatch' : 'invalid_grant', 'redirect_uri does not match the authorization request');
      if (c.challenge) {
        const v = f.code_verifier;
        if (!v) return oauthError(400, 'invalid_grant', 'Missing code verifier.');
        const computed = c.method === 'S256' ? createHash('sha256').update(v, 'ascii').digest('base64url') : v;
        if (computed !== c.challenge) return oauthError(400, 'invalid_grant', 'PKCE verification failed: the code_verifier does not match the code_challenge.');
      } else if (f.code_verifier !== undefined) {
        return oauthError(400, 'invalid_grant', 'code_verifier or verifier is not needed.');
      }
      c.used = true;
      const gives = p === 'google' || p === 'zoho' ? c.offline && c.promptConsent : c.offline;
      const refresh = gives ? newRefresh({ provider: p, clientId: client.clientId, scopes: c.scopes, host: c.host, pkce: Boolean(c.challenge), live: true }) : undefined;
      return { status: 200, body: tokenAnswer(p, grant, c.host, c.scopes, refresh) };
    }

    if (grant === 'refresh_token') {
      if (p === 'acuity') return oauthError(400, 'unsupported_grant_type', 'refresh_token is not supported');
      const rt = refreshes.get(f.refresh_token ?? '');
      const refused = p === 'zoho' ? { status: 200, body: { error: 'invalid_code' } } : oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
      if (!rt || rt.provider !== p || rt.clientId !== client.clientId || !rt.live) return refused;
      if (p === 'zoho' && host !== rt.host) return refused;
      if (p === 'salesforce' && salesforceKind(host) !== salesforceKind(rt.host)) return refused;
      let next: string | undefined;
      if (p === 'microsoft') next = newRefresh({ ...rt }); // a new one each time; the old one stays valid
      else if (p === 'calendly' || p === 'jane' || (p === 'square' && rt.pkce)) {
        rt.live = false; // single use: rotated
        next = newRefresh({ ...rt, live: true });
      } else if (p === 'hubspot' || p === 'square') next = f.refresh_token; // the same one back
      return { status: 200, body: tokenAnswer(p, grant, rt.host, rt.scopes, next) };
    }

    if (grant === 'client_credentials' && p === 'microsoft') {
      const tenant = r.tenant ?? '';
      if (MS_AUDIENCES.has(tenant)) return oauthError(400, 'invalid_request', `AADSTS50059: No tenant-identifying information found in the request ("${tenant}").`);
      if (!isOurTenant(tenant)) return oauthError(400, 'invalid_request', 'AADSTS90002: Tenant not found.');
      if (f.scope !== GRAPH_DEFAULT) return oauthError(400, 'invalid_scope', 'AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.');
      if (!adminConsents.has(`${client.clientId}|${settings.microsoftTenant.id}`)) return oauthError(400, 'invalid_grant', 'AADSTS65001: The user or administrator has not consented to use the application.');
      return { status: 200, body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: issueAccess(p, grant) } };
    }
    return oauthError(400, 'unsupported_grant_type', `grant_type ${grant ?? '(none)'} is not supported`);
  }

  // ------------------------------------------------------------------ server

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', state.url);
    let path = url.pathname;
    let host: string | undefined;
    const hm = /^\/host\/([a-z0-9.-]+)(\/.*)$/i.exec(path);
    if (hm) {
      host = hm[1].toLowerCase();
      path = hm[2];
    }
    try {
      const consent = /^\/__fake\/consent\/([\w-]+)$/.exec(path);
      if (consent && req.method === 'GET') {
        const a = pending.get(consent[1]);
        pending.delete(consent[1]);
        state.requests.push({ provider: a?.provider, endpoint: 'consent', host: a?.host ?? '', status: a ? 302 : 400 });
        if (!a) return page(res, 400, 'Error', '<p>This consent page has expired.</p>');
        return decide(res, a, url.searchParams.get('decision') === 'allow' ? 'allow' : 'deny');
      }
      const r = route(path);
      if (!r) return json(res, 404, { error: 'not_found', path });
      if (r.endpoint === 'authorize' || r.endpoint === 'adminconsent') {
        if (req.method !== 'GET') return json(res, 405, { error: 'method_not_allowed' });
        const p = providerOf(r, url.searchParams.get('client_id'));
        return authorize(url, r, host ?? (p ? RULES[p].defaultHost : ''), res);
      }
      if (req.method !== 'POST') return json(res, 405, { error: 'method_not_allowed' });
      const type = req.headers['content-type'] ?? '';
      const isJson = /application\/json/.test(type);
      let f: Record<string, string> = {};
      if (isJson) {
        const j = JSON.parse(raw || '{}') as Record<string, unknown>;
        f = Object.fromEntries(Object.entries(j).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
      } else {
        f = Object.fromEntries(new URLSearchParams(raw));
      }
      const auth = req.headers.authorization;
      const basic = auth?.startsWith('Basic ')
        ? (() => { const [id, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':'); return { id: decodeURIComponent(id), secret: decodeURIComponent(rest.join(':')) }; })()
        : undefined;
      const p = providerOf(r, f.client_id ?? basic?.id ?? null);
      if (!p) {
        state.requests.push({ provider: undefined, endpoint: 'token', host: host ?? '', grant: f.grant_type, status: 401 });
        return json(res, 401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
      }
      const rule = RULES[p];
      if ((rule.tokenFormat === 'json') !== isJson) {
        state.violations.push(`${p}: token request sent as ${isJson ? 'JSON' : type || 'no content type'}, ${rule.tokenFormat} expected`);
        const a = p === 'square' ? { status: 400, body: { errors: [{ category: 'INVALID_REQUEST_ERROR', code: 'BAD_REQUEST', detail: 'the body must be JSON' }] } } : oauthError(400, 'invalid_request', 'the body must be a form');
        state.requests.push({ provider: p, endpoint: 'token', host: host ?? rule.defaultHost, grant: f.grant_type, status: a.status });
        return json(res, a.status, a.body);
      }
      const a = token(p, r, host ?? rule.defaultHost, f, basic);
      state.requests.push({ provider: p, endpoint: 'token', host: host ?? rule.defaultHost, grant: f.grant_type, status: a.status });
      // Square reports errors its own way.
      if (p === 'square' && a.status >= 400 && typeof a.body.error === 'string') {
        return json(res, a.status, { ...a.body, errors: [{ category: 'AUTHENTICATION_ERROR', code: a.body.error === 'invalid_client' ? 'UNAUTHORIZED' : 'BAD_REQUEST', detail: a.body.error_description }] });
      }
      return json(res, a.status, a.body);
    } catch (err) {
      state.violations.push(`fake crashed: ${(err as Error).message}`);
      return json(res, 500, { error: 'server_error' });
    }
  });

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
