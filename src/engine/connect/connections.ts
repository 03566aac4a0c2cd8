// Connections made and removed in the web app (the configuration file's own are read-only there).
import { getConnector, platformIds } from '../../connectors/registry.ts';
import { PRIVACY_LEVELS, type PrivacyLevel } from '../../domain/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { getConnectionRow, listPractitioners, type Exec } from '../../store/repo.ts';
import { freeId } from '../../store/queries/setup.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';
import { ConnectError } from './errors.ts';
import { removeSubscription } from './webhooks.ts';
import { stopPush } from '../sync/push.ts';

export interface NewConnection {
  id?: string;
  platform: string;
  name: string;
  baseUrl?: string;
  privacy?: PrivacyLevel;
  config?: Record<string, unknown>;
}

const ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Edits (insert, delete, replace) between two short strings. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** " (did you mean <id>?)" for a platform id with a typo (a close id), else the list of ids. */
export function didYouMean(platform: string): string {
  const ids = platformIds();
  const p = platform.toLowerCase();
  const near = ids.map((x) => ({ x, d: x.includes(p) || p.includes(x) ? 1 : distance(p, x) })).filter((c) => c.d <= Math.max(2, Math.floor(c.x.length / 4))).sort((a, b) => a.d - b.d);
  return near.length ? ` (did you mean ${near.slice(0, 3).map((c) => c.x).join(' or ')}?)` : ` (one of ${ids.join(', ')})`;
}

async function clinicId(db: Exec): Promise<string> {
  const c = await db.selectFrom('clinic').select('id').orderBy('id').executeTakeFirst();
  if (!c) throw new ConnectError('invalid_request', 'there is no clinic yet: start Meridian with a configuration (or the demo) first');
  return c.id;
}

export async function createConnection(hub: Hub, b: NewConnection, actor: string) {
  const connector = getConnector(b.platform);
  if (!connector) throw new ConnectError('unknown_platform', `no platform "${b.platform}"${didYouMean(b.platform)}`);
  if (b.privacy && !PRIVACY_LEVELS.includes(b.privacy)) throw new ConnectError('invalid_request', `privacy is one of ${PRIVACY_LEVELS.join(', ')}`);
  const db = hub.store.db;
  let id = b.id;
  if (id !== undefined) {
    if (!ID.test(id)) throw new ConnectError('invalid_request', 'a connection id is 1–63 lower-case letters, digits, ".", "_" or "-"');
    if (await getConnectionRow(db, id)) throw new ConnectError('connection_exists', `there is already a connection "${id}" (a removed one keeps its id for the history): choose another`);
  } else id = await freeId(db, 'connection', b.name);
  const now = nowIso(hub);
  const connectionId = id;
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('connection').values({
      id: connectionId, clinic_id: await clinicId(trx), platform: b.platform, name: b.name, config: JSON.stringify(b.config ?? {}), refs: '{}',
      privacy: b.privacy ?? null, base_url: b.baseUrl ?? null, secrets_enc: null, secret_refs: '{}', status: 'active', last_sync_at: null, last_error: null,
      created_at: now, updated_at: now, sync_state: '{}', poll_lease_until: null, poll_lease_by: null, provisioned_by: null,
    }).execute();
    await appendAudit(trx, hub.store.dialect, [{ at: now, actor, action: 'connection.created', entityType: 'connection', entityId: connectionId, meta: { platform: b.platform, name: b.name } }]);
  });
  hub.cache.clear();
  return { id: connectionId, platform: b.platform, name: b.name, displayName: connector.descriptor.displayName, role: connector.descriptor.role };
}

/**
 * Remove a connection made in the app: the subscription Meridian made at the platform first, then its
 * stored credentials, the practitioners' bindings to it and its waiting jobs. The row stays (status
 * `removed`) so the audit log and the appointments that came from it still name it. Events already written
 * to its calendar stay there.
 */
export async function removeConnection(hub: Hub, id: string, actor: string) {
  const db = hub.store.db;
  const row = await getConnectionRow(db, id);
  if (!row || row.status === 'removed') throw new ConnectError('not_found', `no connection ${id}`);
  if (row.provisioned_by) throw new ConnectError('provisioned', `connection "${id}" is provisioned by ${row.provisioned_by}; remove it there`);
  const subscription = await removeSubscription(hub, id);
  // A calendar's push channels stop too (they would otherwise notify until they end).
  await stopPush(hub, id);
  const now = nowIso(hub);
  const unbound: string[] = [];
  await db.transaction().execute(async (trx) => {
    for (const p of await listPractitioners(trx)) {
      if (!p.targets.some((t) => t.connection === id)) continue;
      await trx.updateTable('practitioner').set({ targets: JSON.stringify(p.targets.filter((t) => t.connection !== id)) }).where('id', '=', p.id).execute();
      unbound.push(p.id);
    }
    for (const c of await trx.selectFrom('clinic').select(['id', 'settings']).execute()) {
      const s = JSON.parse(c.settings) as { targets?: { connection: string }[] };
      if (!s.targets?.some((t) => t.connection === id)) continue;
      await trx.updateTable('clinic').set({ settings: JSON.stringify({ ...s, targets: s.targets.filter((t) => t.connection !== id) }) }).where('id', '=', c.id).execute();
    }
    const jobs = await trx.updateTable('job').set({ state: 'done', last_error: 'the connection was removed', updated_at: now })
      .where('connection_id', '=', id).where('state', 'in', ['pending', 'dead']).executeTakeFirst();
    await trx.updateTable('connection').set({ status: 'removed', secrets_enc: null, secret_refs: '{}', updated_at: now }).where('id', '=', id).execute();
    await appendAudit(trx, hub.store.dialect, [{
      at: now, actor, action: 'connection.removed', entityType: 'connection', entityId: id,
      meta: { platform: row.platform, unboundPractitioners: unbound, jobsDropped: Number(jobs.numUpdatedRows), subscriptionRemoved: subscription.removed, ...(subscription.error ? { subscriptionError: subscription.error } : {}) },
    }]);
  });
  hub.cache.clear();
  return { removed: id, subscription, unboundPractitioners: unbound };
}
