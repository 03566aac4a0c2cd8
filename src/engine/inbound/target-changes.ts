// A webhook from a target about records edited on its side (a CRM's meetings): verified on the raw bytes,
// then one read-back job per record we wrote, judged by the calendar sweep under the two-way policy.
import { UnreadablePayload, type TargetConnector, type WebhookRequest } from '../../connectors/types.ts';
import { enqueue } from '../../store/outbox.ts';
import type { LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { remoteChangeJob } from '../../domain/jobs.ts';
import { rejected, type Entry, type InboundOutcome } from './pipeline.ts';
import { INACTIVE } from '../../store/repo.ts';

/**
 * The webhook door of a target (undefined when it has none, or is disabled): verified on the raw bytes by
 * the shared pipeline, then one read-back job per record we wrote (others are none of our business). The
 * read-back decides, under the connection's two-way policy, exactly as a sweep does — so our own writes
 * echoed back change nothing.
 */
export function targetChangesEntry(hub: Hub, conn: LoadedConnection): Entry | undefined {
  const target = conn.connector as TargetConnector;
  const { verifyWebhook, changedRemoteIds } = target;
  if (!verifyWebhook || !changedRemoteIds || INACTIVE.has(conn.record.status)) return undefined;
  return {
    verify: (req) => verifyWebhook.call(target, req, conn.secrets, conn.record.config),
    accept: (req) => recordTargetChanges(hub, conn, req, (r) => changedRemoteIds.call(target, r)),
  };
}

async function recordTargetChanges(hub: Hub, conn: LoadedConnection, req: WebhookRequest, changedRemoteIds: (req: WebhookRequest) => string[]): Promise<InboundOutcome> {
  const platform = conn.record.platform;
  let ids: string[];
  try {
    ids = [...new Set(changedRemoteIds(req))];
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    return rejected('unreadable_payload', err.message);
  }
  const ours = ids.length === 0 ? [] : await hub.store.db.selectFrom('target_link').select('remote_id')
    .where('connection_id', '=', conn.record.id).where('state', '=', 'live').where('remote_id', 'in', ids).execute();
  if (ours.length) {
    await enqueue(hub.store.db, ours.map((l) => remoteChangeJob(conn.record.id, l.remote_id)), hub.clock.now().toISOString());
    hub.onJobs();
  }
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  return { kind: 'accepted', details: { checks: ours.length } };
}
