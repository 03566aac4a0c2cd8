// Salesforce sessions (FACTS.md §1): the JWT bearer flow (server to server, RS256 signed with node:crypto, no
// refresh token: a new assertion whenever the session is refused) or the web-server flow's refresh token (the
// shared OAuthSession). Either way the token answer names the org's `instance_url`, where every REST call goes.
import { createSign } from 'node:crypto';
import { AuthFailure, OAuthSession } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';
import type { TokenSource } from '../../shared/json-api.ts';
import type { ConnectionContext, ConnectorFailure } from '../../types.ts';

export const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Salesforce accepts an `exp` at most three minutes ahead; stay inside it. */
const JWT_LIFETIME_S = 150;

export interface JwtClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
}

/** A compact JWS (RS256) of the claims, signed with the connected app's private key (PEM). */
export function jwtAssertion(claims: JwtClaims, privateKeyPem: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${part({ alg: 'RS256' })}.${part(claims)}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKeyPem).toString('base64url');
  return `${signingInput}.${signature}`;
}

export interface SalesforceSession {
  token: TokenSource;
  /** The org's REST host from the latest token answer (known once `token` has answered). */
  instanceUrl(): string | undefined;
}

/** The session the connection's secrets allow: JWT (clientId + username + privateKey) or refresh (clientId + refreshToken). */
export function salesforceSession(ctx: ConnectionContext, loginUrl: string): SalesforceSession {
  const s = ctx.secrets;
  const tokenUrl = `${loginUrl}/services/oauth2/token`;
  let access = s.accessToken;
  let instance = s.instanceUrl;
  const missing = (): ConnectorFailure => ({ class: 'auth', message: 'Salesforce is not connected: set clientId with username and privateKey (JWT) or refreshToken' });

  const refreshing = s.clientId && s.refreshToken && !s.privateKey
    ? new OAuthSession({
      tokenUrl, clientId: s.clientId, clientSecret: s.clientSecret, refreshToken: s.refreshToken,
      accessToken: s.accessToken, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined, keep: { instance_url: 'instanceUrl' },
    }, ctx)
    : undefined;

  let minting: Promise<string | ConnectorFailure> | undefined;
  async function mint(): Promise<string | ConnectorFailure> {
    const claims: JwtClaims = { iss: s.clientId!, sub: s.username!, aud: String(ctx.config.audience ?? loginUrl), exp: Math.floor(ctx.now().getTime() / 1000) + JWT_LIFETIME_S };
    let res: Response;
    try {
      res = await ctx.fetch(tokenUrl, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: JWT_GRANT, assertion: jwtAssertion(claims, s.privateKey!) }), signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      return networkFailure(err);
    }
    const j = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof j.access_token !== 'string' || typeof j.instance_url !== 'string') {
      // invalid_grant (user not pre-authorised, bad certificate, clock skew): a human must fix the connected app.
      return { class: res.status >= 500 ? 'transient' : 'auth', status: res.status, message: `Salesforce JWT grant refused: ${String(j.error ?? `HTTP ${res.status}`)}` };
    }
    access = j.access_token;
    instance = j.instance_url;
    await ctx.saveSecrets?.({ accessToken: access, instanceUrl: instance });
    return access;
  }

  async function fresh(): Promise<string | ConnectorFailure> {
    if (s.privateKey && s.clientId && s.username) {
      minting ??= mint().finally(() => { minting = undefined; });
      return minting;
    }
    if (!refreshing) return missing();
    try {
      access = await refreshing.refresh();
      instance = refreshing.kept.instanceUrl ?? instance;
      return access;
    } catch (err) {
      return err instanceof AuthFailure ? err.failure : networkFailure(err);
    }
  }

  return {
    instanceUrl: () => instance,
    async token(rejected) {
      // A token another caller already replaced is tried before minting yet another one.
      if (access && instance && access !== rejected) return access;
      return fresh();
    },
  };
}
