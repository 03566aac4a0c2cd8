// Every error answer is JSON `{ code, message, details? }` with a stable code. The engine names what went
// wrong (src/domain/errors.ts); this catalogue says how each of its codes travels over HTTP, and lists the
// codes only the HTTP layer gives (sign-in, CSRF, rate limits, the inbound doors' refusals, …). Every code
// sent on the wire is one of these: the compiler rejects any other.
import { ConnectError } from '../engine/connect/errors.ts';
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
  concurrent_change: 409,
  unavailable: 503,
};

/** Codes only the HTTP layer answers with: their status and the message when none more precise is given. */
export const HTTP_ERRORS = {
  // who is asking, and may they
  unauthenticated: { status: 401, message: 'send an API key (Authorization: Bearer mer_…) or sign in' },
  bad_credentials: { status: 401, message: 'the e-mail or password is not right' },
  forbidden: { status: 403, message: 'you cannot do this' },
  csrf: { status: 403, message: 'missing or wrong x-csrf-token (sign in again)' },
  cross_origin: { status: 403, message: 'this request did not come from Meridian\'s own page' },
  locked: { status: 429, message: 'too many failed sign-ins for this account: wait a quarter of an hour' },
  rate_limited: { status: 429, message: 'too many requests from this address' },
  // the request as sent
  invalid_url: { status: 400, message: 'the URL is not valid' },
  misdirected: { status: 421, message: 'this server does not answer for that host name' },
  uri_too_long: { status: 414, message: 'a path segment is too long' },
  body_too_large: { status: 413, message: 'the request body is too large' },
  unsupported_media_type: { status: 415, message: 'the content type is not supported' },
  invalid_email: { status: 400, message: 'that is not an e-mail address' },
  invalid_role: { status: 400, message: 'that is not a role' },
  weak_password: { status: 400, message: 'the password is too weak' },
  practitioner_required: { status: 400, message: 'a practitioner account names the practitioner it belongs to' },
  user_exists: { status: 409, message: 'there is already an account for that e-mail' },
  unknown_target: { status: 422, message: 'no such target connection' },
  unknown_service: { status: 422, message: 'no such service' },
  unknown_room: { status: 404, message: 'no such room' },
  // the clinic's setup made in the app
  provisioned: { status: 409, message: 'this is provisioned by a configuration file; change it there' },
  in_use: { status: 409, message: 'this is still in use' },
  already_exists: { status: 409, message: 'there is already one with that id' },
  no_clinic: { status: 409, message: 'there is no clinic yet: apply a configuration file first' },
  unknown_secret: { status: 422, message: 'the connection has no such secret' },
  not_pollable: { status: 422, message: 'this connection cannot be polled' },
  // connecting accounts (src/engine/connect)
  connection_exists: { status: 409, message: 'there is already a connection with that id' },
  unknown_platform: { status: 422, message: 'no such platform' },
  no_oauth: { status: 422, message: 'this platform is not connected with OAuth' },
  set_in_environment: { status: 409, message: 'this is set in the environment; change it there' },
  oauth_not_configured: { status: 422, message: 'the provider\'s app (client id and secret) is not set up yet' },
  no_public_url: { status: 422, message: 'Meridian does not know its public URL' },
  credentials_refused: { status: 422, message: 'the platform refused the credentials' },
  state_missing: { status: 400, message: 'the provider sent no state' },
  state_unknown: { status: 400, message: 'this answer does not belong to a connection started here' },
  state_used: { status: 400, message: 'this answer was already used' },
  state_expired: { status: 400, message: 'this answer came too late' },
  other_session: { status: 403, message: 'this answer belongs to another session' },
  signed_out: { status: 401, message: 'the session that started connecting has ended' },
  denied: { status: 403, message: 'the provider did not give access' },
  refused: { status: 502, message: 'the provider refused to finish connecting' },
  // what arrives on a connection's own URL (webhooks, lead forms, providers' callbacks)
  no_webhooks: { status: 404, message: 'this connection is polled; it receives no webhooks' },
  bad_signature: { status: 401, message: 'the signature does not verify' },
  unreadable_payload: { status: 400, message: 'the payload could not be read' },
  challenge_failed: { status: 403, message: 'the form\'s challenge (Turnstile, hCaptcha) did not verify' },
  connection_misconfigured: { status: 503, message: 'this connection is not fully configured; the delivery was not accepted' },
  busy: { status: 503, message: 'too many deliveries are waiting to be applied; send this one again later' },
  // ours
  not_ready: { status: 503, message: 'the database is not reachable' },
  internal: { status: 500, message: 'something went wrong on our side; it has been logged' },
} as const satisfies Record<string, { status: number; message: string }>;

/** Every code an error answer can carry. */
export type HttpCode = ErrorCode | keyof typeof HTTP_ERRORS;

/** The status a code answers with. */
export function statusOfCode(code: HttpCode): number {
  return code in HTTP_STATUS ? HTTP_STATUS[code as ErrorCode] : HTTP_ERRORS[code as keyof typeof HTTP_ERRORS].status;
}

export class HttpError extends Error {
  public status: number;
  /**
   * The status comes from the catalogue; `status` is given only where one code answers with another by
   * design (a stored delivery that cannot be read again is the staff request's problem, 422, not the sender's).
   */
  constructor(public code: HttpCode, message?: string, public details?: Record<string, unknown>, status?: number) {
    super(message ?? (code in HTTP_ERRORS ? HTTP_ERRORS[code as keyof typeof HTTP_ERRORS].message : code));
    this.status = status ?? statusOfCode(code);
    this.name = 'HttpError';
  }
}

/** The status an error thrown by the engine or the HTTP layer answers with, or undefined for an unexpected one. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof HttpError) return err.status;
  if (err instanceof ConnectError) return statusOfCode(err.code);
  if (err instanceof MeridianError) return HTTP_STATUS[err.code];
  return undefined;
}

export function errorBody(code: HttpCode, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return details ? { code, message, details } : { code, message };
}
