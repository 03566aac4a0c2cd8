// JSON calls to platform APIs. `callJson`: with an OAuth-style token, a 401 gets one fresh token and one
// retry; the answer is typed (ok / HTTP error with its parsed body / no answer) and connectors keep
// their own mapping to failure classes. `requestJson`: fixed credentials, failures thrown classified.
import { ConnectorError, type ConnectionContext, type ConnectorFailure } from '../types.ts';
import { failureFromAnswer, networkFailure, retryAfterMs } from './http.ts';

export type JsonAnswer =
  | { kind: 'ok'; status: number; json?: Record<string, unknown>; headers?: Headers }
  | { kind: 'http'; status: number; json?: Record<string, unknown>; retryAfterMs?: number; headers?: Headers }
  | { kind: 'failed'; failure: ConnectorFailure };

export interface JsonRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string>;
  body?: unknown;
}

/** `token(rejected)` returns a usable token (a fresh one when `rejected` was refused) or why there is none. */
export type TokenSource = (rejected?: string) => Promise<string | ConnectorFailure>;

/** One request with a JSON answer: ok, an HTTP error with its parsed body, or no answer at all. */
async function sendJson(ctx: Pick<ConnectionContext, 'fetch'>, req: JsonRequest, auth: Record<string, string>): Promise<JsonAnswer> {
  let res: Response;
  try {
    res = await ctx.fetch(req.url, {
      method: req.method,
      headers: { accept: 'application/json', ...auth, ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers },
      body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    return { kind: 'failed', failure: networkFailure(err) };
  }
  const text = await res.text().catch(() => '');
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  // Headers ride along for platforms that report usage on every answer (Salesforce, HubSpot).
  if (res.ok) return { kind: 'ok', status: res.status, json, headers: res.headers };
  return { kind: 'http', status: res.status, json, retryAfterMs: retryAfterMs(res.headers), headers: res.headers };
}

export async function callJson(ctx: Pick<ConnectionContext, 'fetch'>, req: JsonRequest, token: TokenSource, authorize: (tok: string) => Record<string, string>): Promise<JsonAnswer> {
  let rejected: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const tok = await token(rejected);
    if (typeof tok !== 'string') return { kind: 'failed', failure: tok };
    const answer = await sendJson(ctx, req, authorize(tok));
    if (answer.kind === 'http' && answer.status === 401 && attempt === 0) {
      rejected = tok;
      continue;
    }
    return answer;
  }
  return { kind: 'failed', failure: { class: 'auth', status: 401, message: 'the token was refused again after a refresh' } };
}

/**
 * One request with fixed credentials (API key, personal token) for connectors that read records:
 * the parsed JSON, or a ConnectorError carrying the classified failure (auth, throttled, gone…).
 */
export async function requestJson(ctx: Pick<ConnectionContext, 'fetch'>, req: JsonRequest, auth: Record<string, string>): Promise<unknown> {
  const a = await sendJson(ctx, req, auth);
  if (a.kind === 'ok') return a.json;
  throw new ConnectorError(a.kind === 'failed' ? a.failure : failureFromAnswer(a.status, a.json, a.retryAfterMs));
}
