// Jane's OAuth 2.0: authorization code with PKCE (S256 is mandatory) against Jane's Keycloak, then refresh
// tokens that rotate. Facts: ./FACTS.md. The connect step (verifier → authorize URL → code exchange) is for
// whoever connects a clinic (CLI or UI); `janeTokens` is what fetch and list use.
import { createHash, randomBytes } from 'node:crypto';
import { AuthFailure, OAuthSession, type OAuthSettings } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';
import type { TokenSource } from '../../shared/json-api.ts';
import { ConnectorError, type ConnectionContext } from '../../types.ts';

export const DEFAULT_AUTH_SERVER = 'https://login.id.janeapp.com/realms/jane';
/** Read-only: appointments, and the patient each one is for. */
export const DEFAULT_SCOPES = ['appointments:read', 'patients:read'];

/** The Keycloak realm (production `…/realms/jane`, sandbox `…/realms/jane_partner_sandbox`); config.authServer overrides. */
export const authServerOf = (config: Record<string, unknown>) => String(config.authServer ?? DEFAULT_AUTH_SERVER).replace(/\/$/, '');
export const tokenUrlOf = (authServer: string) => `${authServer}/protocol/openid-connect/token`;

/** RFC 7636 §4.1: 32 random bytes as base64url, 43 characters of the unreserved set. */
export function createCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** RFC 7636 §4.2, S256: base64url(SHA-256(ASCII(verifier))). */
export function codeChallengeS256(verifier: string): string {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new RangeError('a PKCE code verifier is 43-128 unreserved characters');
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export interface AuthorizeRequest {
  authServer?: string;
  clientId: string;
  redirectUri: string;
  /** The clinic's Jane host, e.g. `myclinic.janeapp.com`: the resource the tokens are for. */
  clinicHost: string;
  /** Unguessable, checked by the caller on the redirect back (CSRF). */
  state: string;
  codeChallenge: string;
  scopes?: string[];
}

/** The URL the clinic owner opens to grant access; Jane's documented form carries `resource` and `prompt=consent`. */
export function authorizeUrl(r: AuthorizeRequest): string {
  const url = new URL(`${(r.authServer ?? DEFAULT_AUTH_SERVER).replace(/\/$/, '')}/protocol/openid-connect/auth`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: r.clientId, redirect_uri: r.redirectUri, scope: (r.scopes ?? DEFAULT_SCOPES).join(' '),
    state: r.state, code_challenge: r.codeChallenge, code_challenge_method: 'S256', resource: `https://${r.clinicHost}`, prompt: 'consent',
  })) url.searchParams.set(k, v);
  return url.toString();
}

export interface CodeExchange {
  authServer?: string;
  clientId: string;
  clientSecret?: string;
  code: string;
  redirectUri: string;
  codeVerifier: string;
}

/** Trade the code from the redirect (with the verifier it was challenged for) for the secrets to store. */
export async function exchangeCode(x: CodeExchange, ctx: Pick<ConnectionContext, 'fetch' | 'now'>): Promise<Record<string, string>> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: x.code, redirect_uri: x.redirectUri, client_id: x.clientId, code_verifier: x.codeVerifier });
  if (x.clientSecret) body.set('client_secret', x.clientSecret);
  let res: Response;
  try {
    res = await ctx.fetch(tokenUrlOf((x.authServer ?? DEFAULT_AUTH_SERVER).replace(/\/$/, '')), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body, signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new ConnectorError(networkFailure(err));
  }
  const j = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok || typeof j.access_token !== 'string' || typeof j.refresh_token !== 'string') {
    throw new ConnectorError({ class: res.status >= 500 ? 'transient' : 'auth', status: res.status, message: `Jane refused the authorization code: ${String(j.error ?? `HTTP ${res.status}`).slice(0, 80)}` });
  }
  return {
    accessToken: j.access_token, refreshToken: j.refresh_token,
    expiresAt: String(ctx.now().getTime() + Number(j.expires_in ?? 300) * 1000), refreshedAt: String(ctx.now().getTime()),
  };
}

// ---------------------------------------------------------------- tokens for API calls

interface Held {
  settings: OAuthSettings;
  /** The refresh token the session started from (what the connection's secrets may still say). */
  issued: string;
  session: OAuthSession;
}

/**
 * One session per connection in this process, so concurrent fetches share a refresh (single flight) and a
 * rotated refresh token is used at once, even before the connection's secrets are reloaded.
 */
const sessions = new Map<string, Held>();

function sessionFor(ctx: ConnectionContext): Held | undefined {
  const s = ctx.secrets;
  if (!s.clientId || !s.refreshToken) return undefined;
  const tokenUrl = tokenUrlOf(authServerOf(ctx.config));
  const key = `${ctx.connectionId}\u0000${tokenUrl}\u0000${s.clientId}`;
  const held = sessions.get(key);
  // The secrets name either the token this session started from or the one it rotated to: same grant.
  if (held && (s.refreshToken === held.issued || s.refreshToken === held.settings.refreshToken)) return held;
  const settings: OAuthSettings = {
    tokenUrl, clientId: s.clientId, clientSecret: s.clientSecret || undefined, refreshToken: s.refreshToken,
    accessToken: s.accessToken || undefined, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined,
  };
  const fresh = { settings, issued: s.refreshToken, session: new OAuthSession(settings, ctx) };
  sessions.set(key, fresh);
  return fresh;
}

/** Bearer tokens for callJson: refreshed before expiry, and once more when Jane refuses one (401). */
export function janeTokens(ctx: ConnectionContext): TokenSource {
  return async (rejected) => {
    const held = sessionFor(ctx);
    if (!held) return { class: 'auth', message: 'Jane: the connection has no clientId or refreshToken; connect it again' };
    try {
      // Another caller may have refreshed since this token was sent: use theirs rather than refresh again.
      if (rejected && held.settings.accessToken === rejected) return await held.session.refresh();
      return await held.session.accessToken();
    } catch (err) {
      if (err instanceof AuthFailure) return err.failure;
      throw err;
    }
  };
}
