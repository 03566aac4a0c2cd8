// Retention: records that hold patients' data are forgotten once their period (meridian.yaml `retention:`,
// domain/retention.ts) has passed and they have done their work. Run hourly by runtime.ts and on demand by
// `meridian prune`. Each run that deletes anything leaves one audit entry with the counts (never a row's
// content); the audit log itself is never pruned.
import { appendAudit } from '../../store/audit.ts';
import { loadRetentionPolicy, pruneExpired, saveRetentionRun, type RetentionCounts, type RetentionCutoffs } from '../../store/retention.ts';
import { RETENTION_KINDS, retentionMs, type RetentionPolicy } from '../../domain/retention.ts';
import type { Hub } from '../hub/hub.ts';

export interface RetentionRun {
  policy: RetentionPolicy;
  at: string;
  /** Rows deleted (or, in a dry run, that would be). */
  pruned: RetentionCounts;
  dryRun: boolean;
}

export async function pruneRetention(hub: Hub, o: { dryRun?: boolean; actor?: string } = {}): Promise<RetentionRun> {
  const db = hub.store.db;
  const policy = await loadRetentionPolicy(db);
  const now = hub.clock.now();
  const cutoffs = Object.fromEntries(RETENTION_KINDS.map((k) => {
    const ms = retentionMs(policy[k]);
    return [k, ms === undefined ? undefined : new Date(now.getTime() - ms).toISOString()];
  })) as RetentionCutoffs;
  const at = now.toISOString();
  const pruned = await pruneExpired(db, at, cutoffs, { dryRun: o.dryRun });
  if (o.dryRun) return { policy, at, pruned, dryRun: true };
  // A run that found nothing to delete changed nothing: it is recorded in `meta` (the health page shows
  // it) but not in the audit log, which would otherwise gain an entry every hour.
  if (RETENTION_KINDS.some((k) => pruned[k] > 0)) {
    await db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
      at, actor: o.actor ?? 'system:retention', action: 'retention.pruned', entityType: 'store', entityId: 'retention', meta: { ...pruned, policy },
    }]));
  }
  await saveRetentionRun(db, at, pruned);
  if (RETENTION_KINDS.some((k) => pruned[k] > 0)) hub.log.info({ pruned }, 'retention: old records deleted');
  return { policy, at, pruned, dryRun: false };
}
