// HubSpot CRM calls (FACTS.md §1, §5): a private-app token, or OAuth with refresh through the shared
// OAuthSession. Rate limits are per 10 seconds: every answer's X-HubSpot-RateLimit-Remaining /
// -Interval-Milliseconds is remembered per connection, and when the window is spent the connection's next
// writes wait for it to roll instead of collecting 429s; a 429 waits per its policy (TEN_SECONDLY_ROLLING:
// the window; DAILY: an hour, since the reset time is not documented in a form we can rely on).
import { AuthFailure, OAuthSession } from '../../shared/oauth.ts';
import { networkFailure } from '../../shared/http.ts';
import { callJson, type TokenSource } from '../../shared/json-api.ts';
import type { ConnectionContext, ConnectorFailure } from '../../types.ts';

const TEN_SECONDS = 10_000;
const DAILY_PAUSE_MS = 60 * 60_000;

interface Window { remaining: number; until: number }
const windows = new Map<string, Window>();

export type HsAnswer = { ok: true; status: number; json: Record<string, unknown> | undefined } | { ok: false; failure: ConnectorFailure; status?: number };

/** HubSpot's error categories as failure classes (status first: the category names vary). */
export function failureOf(op: string, status: number, json: Record<string, unknown> | undefined, retryAfterMs?: number, headers?: Headers): ConnectorFailure {
  const category = typeof json?.category === 'string' && /^[A-Z_]{1,40}$/.test(json.category) ? json.category : undefined;
  const policy = typeof json?.policyName === 'string' && /^[A-Z_]{1,40}$/.test(json.policyName) ? json.policyName : undefined;
  const message = `HubSpot ${op}: HTTP ${status}${category ? ` ${category}` : ''}${policy ? ` ${policy}` : ''}`;
  if (status === 429) {
    const interval = Number(headers?.get('x-hubspot-ratelimit-interval-milliseconds'));
    const wait = policy === 'DAILY' ? DAILY_PAUSE_MS : (retryAfterMs ?? (Number.isFinite(interval) && interval > 0 ? interval : TEN_SECONDS));
    return { class: 'throttled', status, message, retryAfterMs: wait };
  }
  if (status === 401) return { class: 'auth', status, message };
  if (status === 404) return { class: 'gone', status, message };
  if (status === 409) return { class: 'conflict', status, message };
  if (status >= 500) return { class: 'transient', status, message, ...(retryAfterMs ? { retryAfterMs } : {}) };
  return { class: 'permanent', status, message };
}

function tokenSource(ctx: ConnectionContext): TokenSource {
  const s = ctx.secrets;
  if (s.privateAppToken) {
    const t = s.privateAppToken;
    // A refused private-app token cannot be renewed by us: the clinic must issue a new one.
    return async (rejected) => (rejected === t ? { class: 'auth', message: 'HubSpot refused the private-app token' } : t);
  }
  if (!(s.clientId && s.clientSecret && s.refreshToken)) {
    return async () => ({ class: 'auth', message: 'HubSpot is not connected: set privateAppToken, or clientId, clientSecret and refreshToken' });
  }
  const session = new OAuthSession({
    tokenUrl: String(ctx.config.tokenUrl ?? `${ctx.baseUrl}/oauth/v1/token`), clientId: s.clientId, clientSecret: s.clientSecret,
    refreshToken: s.refreshToken, accessToken: s.accessToken, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined,
  }, ctx);
  return async (rejected) => {
    try {
      // Refreshed ahead of expiry (HubSpot warns a 401 is not a reliable signal); a refused token is replaced once.
      const current = await session.accessToken();
      return rejected === undefined || current !== rejected ? current : await session.refresh();
    } catch (err) {
      return err instanceof AuthFailure ? err.failure : networkFailure(err);
    }
  };
}

export class HubSpotApi {
  private readonly token: TokenSource;

  constructor(private ctx: ConnectionContext) {
    this.token = tokenSource(ctx);
  }

  async send(op: string, method: string, path: string, body?: unknown): Promise<HsAnswer> {
    const wait = this.waitMs();
    if (wait) return { ok: false, failure: { class: 'throttled', retryAfterMs: wait, message: `HubSpot ${op}: this 10-second window's requests are spent; waiting` } };
    const a = await callJson(this.ctx, { method, url: `${this.ctx.baseUrl}${path}`, body }, this.token, (t) => ({ authorization: `Bearer ${t}` }));
    if (a.kind === 'failed') return { ok: false, failure: { ...a.failure, message: `HubSpot ${op}: ${a.failure.message}` } };
    this.remember(a.headers);
    if (a.kind === 'ok') return { ok: true, status: a.status, json: a.json };
    return { ok: false, status: a.status, failure: failureOf(op, a.status, a.json, a.retryAfterMs, a.headers) };
  }

  private remember(h: Headers | undefined): void {
    const remaining = Number(h?.get('x-hubspot-ratelimit-remaining'));
    if (!h?.has('x-hubspot-ratelimit-remaining') || !Number.isFinite(remaining)) return;
    const interval = Number(h.get('x-hubspot-ratelimit-interval-milliseconds'));
    windows.set(this.ctx.connectionId, { remaining, until: this.ctx.now().getTime() + (Number.isFinite(interval) && interval > 0 ? interval : TEN_SECONDS) });
  }

  private waitMs(): number | undefined {
    const w = windows.get(this.ctx.connectionId);
    if (!w || w.remaining > 0) return undefined;
    const left = w.until - this.ctx.now().getTime();
    return left > 0 ? left : undefined;
  }
}

/** Forget the remembered rate-limit windows (tests). */
export function resetWindows(): void {
  windows.clear();
}
