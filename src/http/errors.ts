// Every error answer is JSON `{ code, message, details? }` with a stable code. The engine names what went
// wrong (src/domain/errors.ts); this catalogue says how each code travels over HTTP.
import { MeridianError, type ErrorCode } from '../domain/errors.ts';

/** The HTTP status of each engine error code: the compiler rejects a code left out. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_time: 400,
  invalid_time_zone: 400,
  placement_needed: 422,
  not_found: 404,
  unknown_practitioner: 422,
  unknown_location: 422,
  unknown_connection: 404,
  double_booking: 409,
  cancelled: 409,
  already_cancelled: 409,
  already_decided: 409,
  invalid_transition: 409,
  unavailable: 503,
};

export class HttpError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: Record<string, unknown>) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The status an error thrown by the engine or the HTTP layer answers with, or undefined for an unexpected one. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof HttpError) return err.status;
  if (err instanceof MeridianError) return HTTP_STATUS[err.code];
  return undefined;
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return details ? { code, message, details } : { code, message };
}
