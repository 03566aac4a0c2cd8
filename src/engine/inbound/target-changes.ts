// A webhook from a target about records edited on its side (a CRM's meetings): verified on the raw bytes,
// then one read-back job per record we wrote, judged by the calendar sweep under the two-way policy.
import { ConnectionMisconfigured, UnreadablePayload, type TargetConnector, type WebhookRequest } from '../../connectors/types.ts';
import { enqueue } from '../../store/outbox.ts';
import type { LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { remoteChangeJob } from '../../domain/jobs.ts';

/**
 * A webhook from a target about records edited on its side (a CRM's meetings): verified on the raw bytes,
 * then one read-back job per record we wrote (others are none of our business). The read-back decides, under
 * the connection's two-way policy, exactly as a sweep does — so our own writes echoed back change nothing.
 */
export async function ingestTargetChanges(hub: Hub, conn: LoadedConnection, incoming: { rawBody: Buffer; headers: Record<string, string>; url: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const target = conn.connector as TargetConnector;
  const platform = conn.record.platform;
  if (!target.verifyWebhook || !target.changedRemoteIds || conn.record.status === 'disabled') {
    return { status: 404, body: { code: 'unknown_connection', message: 'no such webhook endpoint' } };
  }
  const req: WebhookRequest = { rawBody: incoming.rawBody, headers: incoming.headers, url: incoming.url, now: hub.clock.now() };
  try {
    const v = target.verifyWebhook(req, conn.secrets, conn.record.config);
    if (!v.ok) {
      hub.metrics.webhooks.inc({ platform, outcome: 'rejected' });
      hub.log.warn({ connection: conn.record.id, reason: v.reason }, 'webhook signature rejected');
      return { status: 401, body: { code: 'bad_signature', message: v.reason } };
    }
  } catch (err) {
    if (!(err instanceof ConnectionMisconfigured)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'misconfigured' });
    hub.log.error({ connection: conn.record.id }, `webhook refused: ${err.message}`);
    return { status: 503, body: { code: 'connection_misconfigured', message: 'this connection is not fully configured; the delivery was not accepted' } };
  }
  let ids: string[];
  try {
    ids = [...new Set(target.changedRemoteIds(req))];
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    return { status: 400, body: { code: 'unreadable_payload', message: err.message } };
  }
  const ours = ids.length === 0 ? [] : await hub.store.db.selectFrom('target_link').select('remote_id')
    .where('connection_id', '=', conn.record.id).where('state', '=', 'live').where('remote_id', 'in', ids).execute();
  if (ours.length) {
    await enqueue(hub.store.db, ours.map((l) => remoteChangeJob(conn.record.id, l.remote_id)), hub.clock.now().toISOString());
    hub.onJobs();
  }
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  return { status: 200, body: { status: 'accepted', checks: ours.length } };
}
