// Callbacks from notification providers (SMS delivery statuses, patients' replies): verified on the raw
// bytes by the connection's notifier, parsed into InboundEvents and handed to the notification engine's
// `recordInbound` (src/engine/notify.ts: C confirms, X cancels, STOP opts out, statuses are logged).
import { ConnectionMisconfigured, UnreadablePayload, type InboundEvent, type NotifierConnector, type WebhookRequest } from '../../connectors/types.ts';
import { ConnectionError, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import type { IncomingWebhook } from './ingest.ts';
import { recordInbound } from '../effects/notify.ts';

export interface InboundAnswer {
  status: number;
  contentType: string;
  body: string;
}

const json = (status: number, code: string, message: string): InboundAnswer => ({ status, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ code, message }) });

export async function receiveNotifierCallback(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<InboundAnswer> {
  let notifier: NotifierConnector;
  let secrets: Record<string, string>;
  let platform: string;
  try {
    const conn = await loadConnection(hub, connectionId);
    if (conn.connector.descriptor.role !== 'notifier' || !(conn.connector as NotifierConnector).verifyInbound) throw new ConnectionError('not_found', 'not a notifier with callbacks');
    notifier = conn.connector as NotifierConnector;
    secrets = conn.secrets;
    platform = conn.record.platform;
  } catch (err) {
    if (err instanceof ConnectionError) return json(404, 'unknown_connection', 'no such callback endpoint');
    throw err;
  }
  const req: WebhookRequest = { rawBody: incoming.rawBody, headers: incoming.headers, url: incoming.url, now: hub.clock.now() };
  try {
    const v = notifier.verifyInbound!(req, secrets);
    if (!v.ok) {
      hub.metrics.webhooks.inc({ platform, outcome: 'rejected' });
      hub.log.warn({ connection: connectionId, reason: v.reason }, 'notifier callback signature rejected');
      return json(401, 'bad_signature', v.reason);
    }
  } catch (err) {
    if (!(err instanceof ConnectionMisconfigured)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'misconfigured' });
    hub.log.error({ connection: connectionId }, `notifier callback refused: ${err.message}`);
    return json(503, 'connection_misconfigured', 'this connection is not fully configured; the callback was not accepted');
  }
  let events: InboundEvent[];
  try {
    events = notifier.parseInbound?.(req) ?? [];
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    return json(400, 'unreadable_payload', err.message);
  }
  if (events.length) await recordInbound(hub, connectionId, events);
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  const answer = notifier.inboundAnswer;
  return answer ? { status: 200, contentType: answer.contentType, body: answer.body } : { status: 200, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ status: 'accepted', events: events.length }) };
}
