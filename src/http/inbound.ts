// The inbound doors over HTTP: the engine answers with a transport-neutral `InboundOutcome`
// (src/engine/inbound/pipeline.ts); this is the one place that turns it into a status, headers and body.
import type { Hub } from '../engine/hub/hub.ts';
import { ingestWebhook, replayDelivery } from '../engine/inbound/ingest.ts';
import { ingestLead } from '../engine/inbound/leads.ts';
import { receiveNotifierCallback } from '../engine/edits/replies.ts';
import type { InboundOutcome, IncomingWebhook } from '../engine/inbound/pipeline.ts';
import { HttpError, errorBody, statusOfCode } from './errors.ts';

/** A JSON answer. */
export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An answer whose body is sent as it is (a provider's own acknowledgement). */
export interface RawAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** The status, headers and JSON body of an inbound outcome; the bodies are the ones senders have always seen. */
export function answerOf(o: InboundOutcome): HttpAnswer {
  switch (o.kind) {
    case 'accepted':
      return { status: 200, body: { status: 'accepted', ...o.details } };
    case 'duplicate':
      // A duplicate is a success for the sender: it must not send it again.
      return { status: 200, body: { status: 'duplicate', message: o.message } };
    case 'replayed':
      return { status: 200, body: { status: 'replayed', changes: o.changes } };
    case 'queued':
      // Taken (committed) but not yet applied.
      return { status: 202, body: { status: 'queued', delivery: o.delivery, message: o.message } };
    case 'stored':
      // Kept for staff: the sender has done its part and must not retry.
      return { status: 202, body: { status: 'stored', delivery: o.delivery, code: o.reason, message: o.message } };
    case 'rejected':
      return { status: statusOfCode(o.reason), body: errorBody(o.reason, o.message, o.details) };
    case 'unprocessable':
      return { status: 422, body: errorBody(o.reason, o.message) };
    case 'unavailable':
      return {
        status: statusOfCode(o.reason), body: errorBody(o.reason, o.message),
        ...(o.retryAfter !== undefined ? { headers: { 'retry-after': String(o.retryAfter) } } : {}),
      };
  }
}

/** The same, for a door whose provider may want its own acknowledgement back verbatim. */
export function rawAnswerOf(o: InboundOutcome): RawAnswer {
  if (o.kind === 'accepted' && o.answer) return { status: 200, contentType: o.answer.contentType, body: o.answer.body };
  const a = answerOf(o);
  return { status: a.status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(a.body) };
}

/** POST /webhooks/:connectionId */
export async function webhookAnswer(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<HttpAnswer> {
  return answerOf(await ingestWebhook(hub, connectionId, incoming));
}

/** POST /leads/:connectionId */
export async function leadAnswer(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<HttpAnswer> {
  return answerOf(await ingestLead(hub, connectionId, incoming));
}

/** POST /notify/:connectionId */
export async function notifierAnswer(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<RawAnswer> {
  return rawAnswerOf(await receiveNotifierCallback(hub, connectionId, incoming));
}

/** POST /api/v1/deliveries/:id/replay: the replay's results, or the refusal thrown as an API error. */
export async function replayAnswer(hub: Hub, deliveryRowId: string): Promise<Record<string, unknown>> {
  const out = await replayDelivery(hub, deliveryRowId);
  const a = answerOf(out);
  if (out.kind === 'rejected' || out.kind === 'unprocessable' || out.kind === 'unavailable') throw new HttpError(out.reason, out.message, undefined, a.status);
  return a.body;
}
