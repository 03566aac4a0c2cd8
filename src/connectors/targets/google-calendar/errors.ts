// Google's answers as typed failures (targets.md §1.9). Messages carry the status, Google's reason
// codes and Google's own message with quoted values blanked out, never our request body.
import type { ConnectorFailure } from '../../types.ts';
import { failureFromResponse } from '../../shared/http.ts';
import type { ApiAnswer, GoogleError } from './client.ts';

/** Per-minute rate limits: retry soon with backoff (or Retry-After). */
const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RATE_LIMIT_EXCEEDED']);
/** Workspace "Calendar usage limits exceeded": hours, not seconds. */
const USAGE_LIMIT_REASONS = new Set(['quotaExceeded', 'dailyLimitExceeded']);
export const USAGE_LIMIT_BACKOFF_MS = 60 * 60 * 1000;

export function isUsageLimit(error: GoogleError): boolean {
  return error.reasons.some((r) => RATE_LIMIT_REASONS.has(r) || USAGE_LIMIT_REASONS.has(r)) || error.domains.includes('usageLimits');
}

/** Turn a non-ok answer into a failure for the outbox worker. */
export async function toFailure(answer: Exclude<ApiAnswer<unknown>, { kind: 'ok' }>, operation: string): Promise<ConnectorFailure> {
  if (answer.kind === 'failed') return { ...answer.failure, message: `Google Calendar ${operation}: ${answer.failure.message}` };
  const { status, error } = answer;
  const base = await failureFromResponse(answer.res);
  const failure: ConnectorFailure = { ...base, message: describe(operation, status, error) };
  if (status === 403) {
    if (error.reasons.some((r) => USAGE_LIMIT_REASONS.has(r))) {
      return { ...failure, class: 'throttled', retryAfterMs: Math.max(base.retryAfterMs ?? 0, USAGE_LIMIT_BACKOFF_MS) };
    }
    return { ...failure, class: isUsageLimit(error) ? 'throttled' : 'permanent' };
  }
  if (status === 429) return { ...failure, class: 'throttled' };
  if (status >= 500) return { ...failure, class: 'transient' };
  return failure;
}

function describe(operation: string, status: number, error: GoogleError): string {
  const reason = error.reasons.filter((r) => /^[A-Za-z_]{1,64}$/.test(r)).join(',');
  const detail = error.message ? scrub(error.message) : '';
  return `Google Calendar ${operation}: HTTP ${status}${reason ? ` ${reason}` : ''}${detail ? ` (${detail})` : ''}`;
}

/** Google sometimes echoes the offending value in quotes; keep the sentence, drop the value. */
function scrub(message: string): string {
  return message.replace(/"[^"]*"|'[^']*'/g, '"…"').replace(/\s+/g, ' ').slice(0, 160);
}
