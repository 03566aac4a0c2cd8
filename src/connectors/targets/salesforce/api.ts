// Salesforce REST calls at a pinned API version (FACTS.md §2, §5): every answer's `Sforce-Limit-Info` is
// remembered per connection, and once the org has used nearly all of its rolling 24-hour allocation the
// connection's writes wait instead of spending the clinic's last requests; 403 REQUEST_LIMIT_EXCEEDED (not
// 429) waits too. Error bodies are arrays of {errorCode, message, fields}: the codes become failure classes,
// and failure messages carry codes and field names only, never Salesforce's message (it can echo values).
import { callJson, type JsonAnswer } from '../../shared/json-api.ts';
import type { ConnectionContext, ConnectorFailure, FailureClass } from '../../types.ts';
import type { SalesforceSession } from './auth.ts';

export const API_VERSION = 'v62.0';
/** Share of the daily allocation Meridian may use before it waits (the rest stays for the clinic's own tools). */
const DEFAULT_USAGE_CEILING = 0.95;
/** How long a connection near or over its daily allocation waits before trying again. */
export const LIMIT_PAUSE_MS = 30 * 60_000;

interface Usage { used: number; allowed: number; at: number }
const usage = new Map<string, Usage>();

/** `api-usage=18342/100000` (maybe with a `;`-separated `per-app-api-usage` part). */
export function parseLimitInfo(header: string | null | undefined): { used: number; allowed: number } | undefined {
  const m = /api-usage=(\d+)\/(\d+)/.exec(header ?? '');
  return m ? { used: Number(m[1]), allowed: Number(m[2]) } : undefined;
}

const CODE_CLASS: Record<string, FailureClass> = {
  INVALID_SESSION_ID: 'auth',
  REQUEST_LIMIT_EXCEEDED: 'throttled',
  NOT_FOUND: 'gone',
  ENTITY_IS_DELETED: 'gone',
  DUPLICATE_VALUE: 'conflict',
  UNABLE_TO_LOCK_ROW: 'transient',
  SERVER_UNAVAILABLE: 'transient',
};

export interface SfError { errorCode: string; fields?: string[] }

/** The error items of an answer (a top-level array, or a composite subresponse body). */
export function errorsOf(body: unknown): SfError[] {
  const items = Array.isArray(body) ? body : [];
  return items.filter((e): e is SfError => typeof e?.errorCode === 'string');
}

/** A failure for an HTTP status and Salesforce's error items. */
export function failureOf(op: string, status: number, errors: SfError[], retryAfterMs?: number): ConnectorFailure {
  const first = errors.find((e) => e.errorCode !== 'PROCESSING_HALTED') ?? errors[0];
  const code = first?.errorCode;
  const fields = first?.fields?.filter((f) => /^\w{1,80}$/.test(f)).join(',');
  const message = `Salesforce ${op}: HTTP ${status}${code ? ` ${code}` : ''}${fields ? ` (${fields})` : ''}`;
  if (status === 300) return { class: 'permanent', status, message: `Salesforce ${op}: several records carry this external id; merge them in Salesforce (HTTP 300)` };
  const cls: FailureClass = (code ? CODE_CLASS[code] : undefined) ?? (status === 401 ? 'auth' : status === 404 ? 'gone' : status >= 500 ? 'transient' : 'permanent');
  return { class: cls, status, message, ...(cls === 'throttled' ? { retryAfterMs: Math.max(retryAfterMs ?? 0, LIMIT_PAUSE_MS) } : retryAfterMs ? { retryAfterMs } : {}) };
}

export type SfAnswer = { ok: true; status: number; json: unknown } | { ok: false; failure: ConnectorFailure; status?: number; json?: unknown };

export class SalesforceApi {
  readonly version: string;
  private readonly ceiling: number;

  constructor(private ctx: ConnectionContext, private session: SalesforceSession) {
    this.version = String(ctx.config.apiVersion ?? API_VERSION);
    const c = Number(ctx.config.usageCeiling);
    this.ceiling = Number.isFinite(c) && c > 0 && c <= 1 ? c : DEFAULT_USAGE_CEILING;
  }

  /** The org's REST host, once a token answer has named it. */
  instanceUrl(): string | undefined {
    return this.session.instanceUrl();
  }

  /** `/services/data/vNN.N` + path: the form composite subrequests use too. */
  path(p: string): string {
    return `/services/data/${this.version}${p}`;
  }

  async send(op: string, method: string, path: string, body?: unknown): Promise<SfAnswer> {
    const paused = this.paused();
    if (paused) return { ok: false, failure: { class: 'throttled', retryAfterMs: paused, message: `Salesforce ${op}: the org is close to its daily API allocation; waiting` } };
    // The instance is only known once a token answer has named it.
    const first = await this.session.token();
    if (typeof first !== 'string') return { ok: false, failure: { ...first, message: `Salesforce ${op}: ${first.message}` } };
    const url = `${this.session.instanceUrl()!.replace(/\/$/, '')}${this.path(path)}`;
    const a: JsonAnswer = await callJson(this.ctx, { method, url, body }, this.session.token, (t) => ({ authorization: `Bearer ${t}` }));
    if (a.kind === 'failed') return { ok: false, failure: { ...a.failure, message: `Salesforce ${op}: ${a.failure.message}` } };
    this.remember(a.headers?.get('sforce-limit-info'));
    // Salesforce error bodies are arrays (the helper types every body as an object).
    const json: unknown = a.json;
    if (a.kind === 'ok') return { ok: true, status: a.status, json };
    const failure = failureOf(op, a.status, errorsOf(json), a.retryAfterMs);
    // Over the limit: every write of the connection waits, not only this one.
    if (failure.class === 'throttled') usage.set(this.ctx.connectionId, { used: 1, allowed: 1, at: this.ctx.now().getTime() });
    return { ok: false, status: a.status, json, failure };
  }

  private remember(header: string | null | undefined): void {
    const u = parseLimitInfo(header);
    if (u) usage.set(this.ctx.connectionId, { ...u, at: this.ctx.now().getTime() });
  }

  /** Milliseconds still to wait when the last answer said the allocation is (nearly) spent. */
  private paused(): number | undefined {
    const u = usage.get(this.ctx.connectionId);
    if (!u || u.allowed <= 0 || u.used < u.allowed * this.ceiling) return undefined;
    const left = u.at + LIMIT_PAUSE_MS - this.ctx.now().getTime();
    return left > 0 ? left : undefined;
  }
}

/** Forget what was seen of the connection's usage (tests). */
export function resetUsage(connectionId?: string): void {
  if (connectionId) usage.delete(connectionId);
  else usage.clear();
}
