// The one inbound pipeline: whatever arrives from outside on a connection's own URL (a booking platform's
// webhook, a target's change notice, a lead form, a notification provider's callback) goes through the
// same steps — load the connection, ask its connector whether this door exists, verify the raw bytes —
// before the door's own work (store and apply, record a lead, …) runs. The answer is an `InboundOutcome`
// that says what happened in the engine's words; how it travels (HTTP status, headers, body) is decided
// by src/http/inbound.ts, so the engine knows nothing of the transport.
import { ConnectionMisconfigured, type VerifyResult, type WebhookRequest } from '../../connectors/types.ts';
import { ConnectionError, loadConnection, setupOf, type LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';

/** What arrived: the raw bytes (verified before anything is parsed), lower-cased headers and the full URL. */
export interface IncomingWebhook {
  rawBody: Buffer;
  headers: Record<string, string>;
  url: string;
  /** The sender's network address, when the transport knows it (per-client limits on lead forms). */
  client?: string;
}

/** Why a delivery was refused and must not be sent again as it is (the sender's mistake). */
export type RejectReason = 'unknown_connection' | 'no_webhooks' | 'bad_signature' | 'unreadable_payload' | 'not_found' | 'body_too_large' | 'challenge_failed';

/** Why a delivery was refused for now: the sender should keep it and try again later. */
export type UnavailableReason = 'connection_misconfigured' | 'busy';

/** A provider's own acknowledgement, sent back verbatim (some providers want their markup, not JSON). */
export interface VerbatimAnswer {
  contentType: string;
  body: string;
}

/**
 * Every answer an inbound door gives, transport-neutral.
 * - `accepted`: taken and done; `details` says what came of it (changes applied, a lead's status, …),
 *   `answer` is a provider's verbatim acknowledgement when it wants one.
 * - `duplicate`: this delivery was received before; nothing more happened.
 * - `queued`: stored; it is applied shortly in turn.
 * - `stored`: stored for staff, but it could not be read (`unreadable_payload`) or applied (`apply_failed`).
 * - `replayed`: a staff replay of a stored delivery ran; its results.
 * - `rejected`: refused for good (unknown endpoint, bad signature, unreadable bytes not kept).
 * - `unprocessable`: a staff request about a stored delivery that cannot be carried out (it cannot be read again).
 * - `unavailable`: refused for now; `retryAfter` seconds when we know how long.
 */
export type InboundOutcome =
  | { kind: 'accepted'; details: Record<string, unknown>; answer?: VerbatimAnswer }
  | { kind: 'duplicate'; message: string }
  | { kind: 'queued'; delivery: string; message: string }
  | { kind: 'stored'; delivery: string; reason: 'unreadable_payload' | 'apply_failed'; message: string }
  | { kind: 'replayed'; changes: unknown[] }
  | { kind: 'rejected'; reason: RejectReason; message: string; details?: Record<string, unknown> }
  | { kind: 'unprocessable'; reason: 'unreadable_payload'; message: string }
  | { kind: 'unavailable'; reason: UnavailableReason; retryAfter?: number; message: string };

export const rejected = (reason: RejectReason, message: string, details?: Record<string, unknown>): InboundOutcome => ({ kind: 'rejected', reason, message, ...(details ? { details } : {}) });

/** How one door talks about itself in its refusals and log lines. */
export interface Door {
  /** The message when there is no such endpoint ("no such webhook endpoint"). */
  notFound: string;
  /** What the sender sent, in the misconfigured refusal ("delivery", "callback"). */
  thing: string;
  /** Log line prefix when the connection is not fully configured ("webhook refused"). */
  refusedLog: string;
  /** Log line when the signature does not verify ("webhook signature rejected"). */
  rejectedLog: string;
}

/** A door that exists on a connection: how to verify what arrives, then what to do with it once verified. */
export interface Entry {
  verify(req: WebhookRequest): VerifyResult;
  accept(req: WebhookRequest): Promise<InboundOutcome>;
}

/**
 * Load the connection, find the door (`open` answers undefined when this connection has none, or an
 * outcome to refuse with), check the connection is set up, verify the bytes, then run the door's work. A
 * connection that is not fully configured (its secrets, or what verifying or accepting finds missing) is
 * refused for now (the sender retries after staff fix it); a bad signature is refused for good. Both are
 * counted and logged here, the same for every door.
 */
export async function receive(hub: Hub, connectionId: string, incoming: IncomingWebhook, door: Door, open: (conn: LoadedConnection) => Entry | InboundOutcome | undefined): Promise<InboundOutcome> {
  let conn: LoadedConnection;
  try {
    conn = await loadConnection(hub, connectionId);
  } catch (err) {
    if (err instanceof ConnectionError) return rejected('unknown_connection', door.notFound);
    throw err;
  }
  const entry = open(conn);
  if (!entry) return rejected('unknown_connection', door.notFound);
  if ('kind' in entry) return entry;
  const platform = conn.record.platform;
  const req: WebhookRequest = { rawBody: incoming.rawBody, headers: incoming.headers, url: incoming.url, now: hub.clock.now() };
  // A door may find out only while verifying or accepting that a setting or secret is missing (a lead form's
  // challenge without its secret): refused for now in both cases, counted and logged the same way.
  const misconfigured = (err: unknown): InboundOutcome => {
    if (!(err instanceof ConnectionMisconfigured)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'misconfigured' });
    hub.log.error({ connection: connectionId }, `${door.refusedLog}: ${err.message}`);
    return { kind: 'unavailable', reason: 'connection_misconfigured', message: `this connection is not fully configured; the ${door.thing} was not accepted` };
  };
  // The same rule as the "Needs setup" status (connectors/setup.ts): a connection without the secrets of one of
  // its auth sets takes nothing, whether or not its verification would notice what is missing.
  const setup = setupOf(hub, conn);
  if (!setup.complete) {
    const unset = setup.unsetEnv.filter((u) => setup.missing.includes(u.key)).map((u) => `${u.key} (${u.env} is not set)`);
    const rest = setup.missing.filter((k) => !setup.unsetEnv.some((u) => u.key === k));
    return misconfigured(new ConnectionMisconfigured(`the connection needs setup: it lacks ${[...unset, ...rest].join(', ')}`));
  }
  let verified: VerifyResult;
  try {
    verified = entry.verify(req);
  } catch (err) {
    return misconfigured(err);
  }
  if (!verified.ok) {
    hub.metrics.webhooks.inc({ platform, outcome: 'rejected' });
    hub.log.warn({ connection: connectionId, reason: verified.reason }, door.rejectedLog);
    return rejected('bad_signature', verified.reason);
  }
  return entry.accept(req).catch(misconfigured);
}
