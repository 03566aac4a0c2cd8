// HTTP helpers shared by connectors: classify a platform's answer into a typed failure.
import type { ConnectorFailure, FailureClass } from '../types.ts';

export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function classifyStatus(status: number): FailureClass {
  if (status === 429) return 'throttled';
  if (status === 401) return 'auth';
  if (status === 404 || status === 410) return 'gone';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 408 || status >= 500) return 'transient';
  return 'permanent';
}

export async function failureFromResponse(res: Response, message?: string): Promise<ConnectorFailure> {
  let json: unknown;
  try {
    const text = await res.text();
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return failureFromAnswer(res.status, json, retryAfterMs(res.headers), message);
}

/** The same classification from an answer already read (status, parsed body, headers). */
export function failureFromAnswer(status: number, json: unknown, retryAfter: number | undefined, message?: string): ConnectorFailure {
  // Keep only the platform's error message, never the whole body (it may echo patient data).
  const j = json as { error?: { message?: unknown } | string; message?: unknown; error_description?: unknown } | undefined;
  const err = j?.error;
  const detail = String((typeof err === 'object' ? err?.message : undefined) ?? j?.message ?? j?.error_description ?? (typeof err === 'string' ? err : '') ?? '').slice(0, 200);
  return {
    class: classifyStatus(status),
    status,
    retryAfterMs: retryAfter,
    message: message ?? `HTTP ${status}${detail ? `: ${detail}` : ''}`,
  };
}

/** A network error (reset, timeout, refused) as a transient failure. */
export function networkFailure(err: unknown): ConnectorFailure {
  const e = err as { name?: string; message?: string; cause?: { code?: string } };
  return { class: 'transient', message: `network: ${e?.cause?.code ?? e?.name ?? 'error'} ${e?.message ?? ''}`.trim() };
}
