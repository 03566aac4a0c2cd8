// What can go wrong when someone asks Meridian for a change, named by a stable code. The engine throws
// `MeridianError` with a code and plain words; how a code travels (an HTTP status, a CLI exit code) is
// decided where it leaves Meridian: the HTTP catalogue in src/http/errors.ts maps every code here.
export const ERROR_CODES = [
  // a request that cannot be read or is not allowed as it stands
  'invalid_request', 'invalid_time', 'invalid_time_zone', 'placement_needed',
  // something the request names does not exist
  'not_found', 'unknown_practitioner', 'unknown_location', 'unknown_connection',
  // the state forbids it now
  'double_booking', 'cancelled', 'already_cancelled', 'already_decided', 'invalid_transition',
  // someone else changed the same appointment between our read and our write: read again and retry
  'concurrent_change',
  // the store or a dependency cannot take it now; the caller may try again
  'unavailable',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class MeridianError extends Error {
  constructor(public code: ErrorCode, message: string, public details?: Record<string, unknown>) {
    super(message);
    this.name = 'MeridianError';
  }
}
