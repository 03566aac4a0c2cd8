// One JSON call to a platform API with an OAuth-style token: a 401 gets one fresh token and one
// retry; the answer is typed (ok / HTTP error with its parsed body / no answer). Connectors keep
// their own mapping from HTTP errors to failure classes.
import type { ConnectionContext, ConnectorFailure } from '../types.ts';
import { networkFailure, retryAfterMs } from './http.ts';

export type JsonAnswer =
  | { kind: 'ok'; status: number; json?: Record<string, unknown> }
  | { kind: 'http'; status: number; json?: Record<string, unknown>; retryAfterMs?: number }
  | { kind: 'failed'; failure: ConnectorFailure };

export interface JsonRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string>;
  body?: unknown;
}

/** `token(rejected)` returns a usable token (a fresh one when `rejected` was refused) or why there is none. */
export type TokenSource = (rejected?: string) => Promise<string | ConnectorFailure>;

export async function callJson(ctx: Pick<ConnectionContext, 'fetch'>, req: JsonRequest, token: TokenSource, authorize: (tok: string) => Record<string, string>): Promise<JsonAnswer> {
  let rejected: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const tok = await token(rejected);
    if (typeof tok !== 'string') return { kind: 'failed', failure: tok };
    let res: Response;
    try {
      res = await ctx.fetch(req.url, {
        method: req.method,
        headers: { accept: 'application/json', ...authorize(tok), ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers },
        body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      return { kind: 'failed', failure: networkFailure(err) };
    }
    if (res.status === 401 && attempt === 0) {
      await res.body?.cancel().catch(() => undefined);
      rejected = tok;
      continue;
    }
    const text = await res.text().catch(() => '');
    let json: Record<string, unknown> | undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) return { kind: 'ok', status: res.status, json };
    return { kind: 'http', status: res.status, json, retryAfterMs: retryAfterMs(res.headers) };
  }
  return { kind: 'failed', failure: { class: 'auth', status: 401, message: 'the token was refused again after a refresh' } };
}
