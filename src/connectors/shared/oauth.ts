// OAuth 2.0 refresh-token lifecycle with single-flight refresh. Provider-neutral: the token URL,
// client credentials and the persistence hook come from the connection. Below it, the pieces the
// connectors' `oauth` profiles (connecting an account from the web app) are made of.
import { createHash, randomBytes } from 'node:crypto';
import { OAuthRefused, type ConnectionContext, type ConnectorFailure, type OAuthAuthorize, type OAuthComplete } from '../types.ts';
import type { TokenSource } from './json-api.ts';

export interface OAuthSettings {
  tokenUrl: string;
  clientId: string;
  clientSecret?: string;
  refreshToken: string;
  accessToken?: string;
  /** Epoch ms. */
  expiresAt?: number;
  scope?: string;
  /** Token-answer fields to keep as secrets too, answer field → secret key (Salesforce `instance_url` → `instanceUrl`). */
  keep?: Record<string, string>;
  /** How the token endpoint takes its parameters: a form (OAuth's own) or JSON (some providers take only JSON). */
  format?: 'form' | 'json';
}

export class AuthFailure extends Error {
  constructor(public failure: ConnectorFailure) {
    super(failure.message);
    this.name = 'AuthFailure';
  }
}

export class OAuthSession {
  private refreshing: Promise<string> | undefined;
  /** The `keep` fields of the latest token answer. */
  readonly kept: Record<string, string> = {};
  constructor(private s: OAuthSettings, private ctx: Pick<ConnectionContext, 'fetch' | 'now' | 'saveSecrets'>) {}

  async accessToken(): Promise<string> {
    const now = this.ctx.now().getTime();
    if (this.s.accessToken && this.s.expiresAt && now < this.s.expiresAt - 60_000) return this.s.accessToken;
    return this.refresh();
  }

  /** Refresh once even when many callers ask at the same time. */
  refresh(): Promise<string> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<string> {
    const params: Record<string, string> = { grant_type: 'refresh_token', refresh_token: this.s.refreshToken, client_id: this.s.clientId };
    if (this.s.clientSecret) params.client_secret = this.s.clientSecret;
    if (this.s.scope) params.scope = this.s.scope;
    const json = this.s.format === 'json';
    let res: Response;
    try {
      res = await this.ctx.fetch(this.s.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: json ? JSON.stringify(params) : new URLSearchParams(params),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new AuthFailure({ class: 'transient', message: `token refresh failed: ${(err as Error).message}` });
    }
    const j = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof j.access_token !== 'string') {
      const code = String(j.error ?? `HTTP ${res.status}`);
      // invalid_grant / unauthorized_client: the grant is gone, a human must reconnect.
      const revoked = res.status === 400 || res.status === 401 || code === 'invalid_grant';
      throw new AuthFailure({ class: revoked ? 'auth' : 'transient', status: res.status, message: `token refresh refused: ${code}` });
    }
    this.s.accessToken = j.access_token;
    this.s.expiresAt = expiryOf(j, this.ctx.now()) ?? this.ctx.now().getTime() + 3600 * 1000;
    if (typeof j.refresh_token === 'string') this.s.refreshToken = j.refresh_token;
    for (const [field, key] of Object.entries(this.s.keep ?? {})) if (typeof j[field] === 'string') this.kept[key] = j[field];
    await this.ctx.saveSecrets?.({
      ...this.kept,
      accessToken: this.s.accessToken,
      expiresAt: String(this.s.expiresAt),
      refreshToken: this.s.refreshToken,
      // When the refresh token was last used: some providers expire it after a period of inactivity.
      refreshedAt: String(this.ctx.now().getTime()),
    });
    return this.s.accessToken;
  }
}

// ---------------------------------------------------------------- one session per connection

interface Held {
  settings: OAuthSettings;
  /** The refresh token the session started from (what the connection's secrets may still say). */
  issued: string;
  session: OAuthSession;
}

const held = new Map<string, Held>();

/**
 * One session per connection, token URL and client in this process, so concurrent callers share a refresh
 * (single flight) and a rotated refresh token (single-use ones: the used one dies) is used at once, even before
 * the connection's secrets are reloaded.
 */
export function heldSession(ctx: ConnectionContext, settings: OAuthSettings): { settings: OAuthSettings; session: OAuthSession } {
  const key = `${ctx.connectionId}\u0000${settings.tokenUrl}\u0000${settings.clientId}`;
  const h = held.get(key);
  // The secrets name either the token this session started from or the one it rotated to: same grant.
  if (h && (settings.refreshToken === h.issued || settings.refreshToken === h.settings.refreshToken)) return h;
  const fresh = { settings: { ...settings }, issued: settings.refreshToken, session: undefined as unknown as OAuthSession };
  fresh.session = new OAuthSession(fresh.settings, ctx);
  held.set(key, fresh);
  return fresh;
}

/**
 * Bearer tokens from a held session: refreshed before expiry, and once more when the API refuses one. The
 * settings are read at every call (the connection's secrets may have been reloaded meanwhile); a failure
 * instead of settings says why the connection has none.
 */
export function heldTokens(ctx: ConnectionContext, settingsOf: () => OAuthSettings | ConnectorFailure): TokenSource {
  return async (rejected) => {
    const settings = settingsOf();
    if ('class' in settings) return settings;
    const h = heldSession(ctx, settings);
    try {
      // Another caller may have refreshed since this token was sent: use theirs rather than refresh again.
      if (rejected && h.settings.accessToken === rejected) return await h.session.refresh();
      return await h.session.accessToken();
    } catch (err) {
      if (err instanceof AuthFailure) return err.failure;
      throw err;
    }
  };
}

// ---------------------------------------------------------------- connecting an account (issue 17)
// Provider-neutral pieces every connector's `oauth` profile is made of: the authorize URL, the callback's
// error, the code exchange (and other token requests) with refusals in plain words, the token answer as the
// secrets the connectors read (accessToken, refreshToken, expiresAt), and `authBaseUrl`.

/**
 * An endpoint moved to `authBaseUrl` (a fake in tests, a sovereign cloud): its origin is replaced and its path
 * kept. A path on `authBaseUrl` itself is kept in front of the endpoint's path (`http://127.0.0.1:9000/host/x`).
 */
export function atAuthBase(endpoint: string, authBaseUrl?: string): string {
  if (!authBaseUrl) return endpoint;
  const u = new URL(endpoint);
  const base = new URL(authBaseUrl);
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${u.pathname}${u.search}`;
}

/** The authorize URL: the endpoint with these query parameters, in this order (undefined ones left out). */
export function authorizeUrlOf(endpoint: string, params: Record<string, string | undefined>): string {
  const url = new URL(endpoint);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/** RFC 7636 §4.1: 32 random bytes as base64url, 43 characters of the unreserved set. */
export function createCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** RFC 7636 §4.2, S256: base64url(SHA-256(ASCII(verifier))). */
export function codeChallengeS256(verifier: string): string {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new RangeError('a PKCE code verifier is 43-128 unreserved characters');
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** RFC 7636 parameters for the authorize URL, when the engine made a verifier (S256 only). */
export function pkceParams(a: OAuthAuthorize): Record<string, string | undefined> {
  return a.codeChallenge ? { code_challenge: a.codeChallenge, code_challenge_method: 'S256' } : {};
}

const clip = (v: unknown, n = 160) => String(v ?? '').replace(/\s+/g, ' ').trim().slice(0, n);

/** The redirect back: its `error` first (consent denied…), then its authorization code. */
export function codeFromCallback(provider: string, callback: URLSearchParams): string {
  refusedByCallback(provider, callback);
  const code = callback.get('code');
  if (!code) throw new OAuthRefused(`${provider} sent no authorization code back; connect again`, 'no_code');
  return code;
}

/** Throws OAuthRefused when the redirect back carries an `error`. */
export function refusedByCallback(provider: string, callback: URLSearchParams): void {
  const error = callback.get('error');
  if (!error) return;
  if (error === 'access_denied') throw new OAuthRefused(`${provider}: consent was denied, so nothing was connected`, 'access_denied');
  const detail = clip(callback.get('error_description'));
  throw new OAuthRefused(`${provider} refused the authorisation (${clip(error, 60)})${detail ? `: ${detail}` : ''}`, clip(error, 60));
}

export interface TokenRequest {
  /** The provider's name as the owner knows it, for the messages. */
  provider: string;
  tokenUrl: string;
  /** The request's parameters (`grant_type`, `code`, `client_id`, …); undefined ones left out. */
  params: Record<string, string | undefined>;
  /** A form (default), or JSON for providers that take only JSON. */
  format?: 'form' | 'json';
  fetch: typeof fetch;
}

/** One token request; any refusal (answer or network) becomes OAuthRefused with a message for the owner. */
export async function requestToken(r: TokenRequest): Promise<Record<string, unknown>> {
  const params = Object.fromEntries(Object.entries(r.params).filter((e): e is [string, string] => e[1] !== undefined));
  let res: Response;
  try {
    res = await r.fetch(r.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': r.format === 'json' ? 'application/json' : 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: r.format === 'json' ? JSON.stringify(params) : new URLSearchParams(params),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new OAuthRefused(`${r.provider} could not be reached to finish connecting (${clip((err as Error).message, 80)}); try again`, 'network');
  }
  const j = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (res.ok && j && typeof j.access_token === 'string') return j;
  // The error code: OAuth's `error` (some providers answer it with HTTP 200), or the first code of an `errors` list.
  const squareish = Array.isArray(j?.errors) ? (j!.errors as { code?: unknown; detail?: unknown }[])[0] : undefined;
  const code = clip(j?.error ?? squareish?.code ?? (res.ok ? 'no_access_token' : `HTTP ${res.status}`), 60);
  const detail = clip(j?.error_description ?? squareish?.detail ?? j?.message);
  const tail = detail ? `: ${detail}` : '';
  if (res.status >= 500) throw new OAuthRefused(`${r.provider} had a problem finishing the connection (${code}); try again`, 'provider_error');
  if (/^(invalid_grant|invalid_code|expired_token|code_expired)$/i.test(code)) {
    throw new OAuthRefused(`${r.provider} refused the authorization code (${code}): it was already used, has expired, or does not match this request; connect again${tail}`, 'invalid_grant');
  }
  if (/^(invalid_client|unauthorized_client|unauthorized)$/i.test(code) || res.status === 401) {
    throw new OAuthRefused(`${r.provider} did not accept the app's client id or secret (${code}); check them in the provider settings${tail}`, 'invalid_client');
  }
  throw new OAuthRefused(`${r.provider} refused to finish connecting (${code})${tail}`, code);
}

/** The authorization-code exchange: the code of the callback, the same redirect URI, the secret or the PKCE verifier. */
export function exchangeCode(c: OAuthComplete, x: { provider: string; tokenUrl: string; format?: 'form' | 'json'; extra?: Record<string, string> }): Promise<Record<string, unknown>> {
  const code = codeFromCallback(x.provider, c.callback);
  return requestToken({
    provider: x.provider, tokenUrl: x.tokenUrl, format: x.format, fetch: c.fetch,
    params: {
      grant_type: 'authorization_code', code, redirect_uri: c.redirectUri, client_id: c.clientId,
      client_secret: c.clientSecret || undefined, code_verifier: c.codeVerifier, ...x.extra,
    },
  });
}

/**
 * A token answer as the secrets connectors read: `accessToken`, `refreshToken` (required unless said), and
 * `expiresAt` (epoch ms, from `expires_in` seconds or an `expires_at` instant).
 */
export function tokenSecrets(provider: string, answer: Record<string, unknown>, now: Date, o: { refresh?: 'required' | 'optional' } = {}): Record<string, string> {
  const out: Record<string, string> = { accessToken: String(answer.access_token) };
  if (typeof answer.refresh_token === 'string' && answer.refresh_token) out.refreshToken = answer.refresh_token;
  else if ((o.refresh ?? 'required') === 'required') {
    throw new OAuthRefused(`${provider} gave no refresh token, so the connection would stop within hours; remove Meridian's access in your ${provider} account and connect again`, 'no_refresh_token');
  }
  const expiresAt = expiryOf(answer, now);
  if (expiresAt !== undefined) out.expiresAt = String(expiresAt);
  return out;
}

/** Epoch ms when the access token of a token answer expires, when it says. */
export function expiryOf(answer: Record<string, unknown>, now: Date): number | undefined {
  const inSecs = Number(answer.expires_in);
  if (answer.expires_in !== undefined && Number.isFinite(inSecs) && inSecs > 0) return now.getTime() + inSecs * 1000;
  const at = typeof answer.expires_at === 'string' ? Date.parse(answer.expires_at) : NaN;
  return Number.isFinite(at) ? at : undefined;
}
