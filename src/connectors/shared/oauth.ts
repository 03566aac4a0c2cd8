// OAuth 2.0 refresh-token lifecycle with single-flight refresh. Provider-neutral: the token URL,
// client credentials and the persistence hook come from the connection.
import type { ConnectionContext, ConnectorFailure } from '../types.ts';

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
    const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.s.refreshToken, client_id: this.s.clientId });
    if (this.s.clientSecret) body.set('client_secret', this.s.clientSecret);
    if (this.s.scope) body.set('scope', this.s.scope);
    let res: Response;
    try {
      res = await this.ctx.fetch(this.s.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
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
    this.s.expiresAt = this.ctx.now().getTime() + Number(j.expires_in ?? 3600) * 1000;
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
