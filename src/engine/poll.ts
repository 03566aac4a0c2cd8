// Periodic synchronisation of a booking source: list the bookings of a window through the connector
// and apply each through the same path as a webhook (dedupe, ordering, audit, outbox), so a missed
// webhook is repaired by the next poll. Runs as a `source.poll` job; `meridian sync` runs it in the
// foreground with progress.
import { ConnectorError, type SourceConnector } from '../connectors/types.ts';
import type { SourceChange } from '../domain/types.ts';
import type { NewJob, Job } from '../store/outbox.ts';
import { connectionContext, loadConnection } from './connections.ts';
import type { Hub } from './hub.ts';
import { applyChanges } from './ingest.ts';
import type { JobResult } from './worker.ts';

export const SOURCE_POLL = 'source.poll';
export const DEFAULT_PAST_DAYS = 7;
export const DEFAULT_FUTURE_DAYS = 90;

export function pollJob(connectionId: string): NewJob {
  return { kind: SOURCE_POLL, payload: { connectionId }, dedupeKey: `${SOURCE_POLL}:${connectionId}`, maxAttempts: 5 };
}

export interface PollReport {
  listed: number;
  outcomes: Record<string, number>;
}

export async function pollConnection(hub: Hub, connectionId: string, onProgress?: (listed: number) => void): Promise<PollReport> {
  const conn = await loadConnection(hub, connectionId);
  const src = conn.connector as SourceConnector;
  if (conn.connector.descriptor.role !== 'source' || !src.list) throw new ConnectorError({ class: 'permanent', message: `${conn.connector.descriptor.displayName} cannot be polled` });
  const cfg = conn.record.config;
  const now = hub.clock.now().getTime();
  const window = {
    from: new Date(now - Number(cfg.pollPastDays ?? DEFAULT_PAST_DAYS) * 86_400_000),
    to: new Date(now + Number(cfg.pollFutureDays ?? DEFAULT_FUTURE_DAYS) * 86_400_000),
  };
  const report: PollReport = { listed: 0, outcomes: {} };
  const batch: SourceChange[] = [];
  const flush = async () => {
    for (const r of await applyChanges(hub, conn, batch.splice(0), `poll:${connectionId}`, { poll: true })) {
      report.outcomes[r.outcome] = (report.outcomes[r.outcome] ?? 0) + 1;
    }
  };
  for await (const change of src.list(window, connectionContext(hub, conn))) {
    report.listed++;
    batch.push(change);
    if (batch.length >= 50) {
      await flush();
      onProgress?.(report.listed);
    }
  }
  await flush();
  onProgress?.(report.listed);
  await hub.store.db.updateTable('connection').set({ last_sync_at: hub.clock.now().toISOString() }).where('id', '=', connectionId).execute();
  hub.cache.clear();
  return report;
}

export async function runPollJob(hub: Hub, job: Job): Promise<JobResult> {
  const { connectionId } = job.payload as { connectionId: string };
  try {
    const r = await pollConnection(hub, connectionId);
    return { ok: true, note: `listed ${r.listed}: ${Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}` };
  } catch (err) {
    if (err instanceof ConnectorError) return { ok: false, failure: err.failure, connectionId };
    return { ok: false, failure: { class: 'transient', message: (err as Error).message }, connectionId };
  }
}
