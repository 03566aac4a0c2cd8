// Connections: secrets from environment references or stored encrypted; the context a connector gets.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ConnectionContext, Connector } from '../../connectors/types.ts';
import { getConnector } from '../../connectors/registry.ts';
import { connectionSetup, setupDescriptor, type SetupState } from '../../connectors/setup.ts';
import { INACTIVE, getConnectionRow, toConnection, type ConnectionRecord } from '../../store/repo.ts';
import type { ConnectionTable } from '../../store/schema.ts';
import { rerunAuthWaiting } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import type { Hub } from './hub.ts';
import { nowIso } from './hub.ts';
import { listConnectionRows } from '../../store/queries/setup.ts';

export interface LoadedConnection {
  record: ConnectionRecord;
  connector: Connector;
  secrets: Record<string, string>;
}

export class ConnectionError extends Error {
  constructor(public code: 'not_found' | 'unknown_platform' | 'misconfigured', message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

export function storedSecrets(hub: Hub, enc: string | null): Record<string, string> {
  return enc ? hub.box.decryptJson<Record<string, string>>(enc) : {};
}

/**
 * Stored secret recording, per key, a digest of the environment value a provider's rotation replaced (a
 * refresh token the provider exchanged for a new one): while the environment still holds that old value, the
 * stored newer one is used; once someone puts a new value in the environment, that wins again.
 */
const ROTATED_FROM = '__rotatedFrom';
const digest = (v: string) => createHash('sha256').update(v).digest('hex');

/** Stored secrets, overlaid by environment references (which win, unless the provider rotated that very value). */
export function resolveSecrets(hub: Hub, enc: string | null, refs: Record<string, string>): Record<string, string> {
  const { [ROTATED_FROM]: rotatedJson, ...out } = storedSecrets(hub, enc);
  const rotated = rotatedJson ? (JSON.parse(rotatedJson) as Record<string, string>) : {};
  for (const [key, envName] of Object.entries(refs)) {
    const v = hub.env[envName];
    if (v !== undefined && v !== '' && rotated[key] !== digest(v)) out[key] = v;
  }
  return out;
}

/** The keys of a connection's secrets stored encrypted (bookkeeping entries and empty values left out). */
export function storedSecretKeys(hub: Hub, enc: string | null): string[] {
  return Object.entries(storedSecrets(hub, enc)).filter(([k, v]) => k !== ROTATED_FROM && typeof v === 'string' && v !== '').map(([k]) => k);
}

/**
 * Whether a connection is set up (connectors/setup.ts): its stored keys, and its environment references read
 * from this process's environment. `secretRefs` may be given to check a file's references before they are applied.
 */
export function setupOfRow(hub: Hub, row: Pick<ConnectionTable, 'platform' | 'config' | 'secret_refs' | 'secrets_enc'>, secretRefs?: Record<string, string>): SetupState {
  const d = setupDescriptor(row.platform, JSON.parse(row.config) as Record<string, unknown>);
  const envRefs = secretRefs ?? (JSON.parse(row.secret_refs) as Record<string, string>);
  if (!d) return { complete: false, missing: [], unsetEnv: [] };
  return connectionSetup(d, { envRefs, env: hub.env, stored: storedSecretKeys(hub, row.secrets_enc) });
}

/** The same answer for a loaded connection (its secrets are the stored ones overlaid by the set environment references). */
export function setupOf(hub: Hub, c: LoadedConnection): SetupState {
  const d = setupDescriptor(c.record.platform, c.record.config) ?? c.connector.descriptor;
  return connectionSetup(d, { envRefs: c.record.secretRefs, env: hub.env, stored: Object.keys(c.secrets).filter((k) => c.secrets[k] !== '') });
}

/** The status a connection shows: `needs_setup` while it lacks secrets (computed, never stored); disabled stays disabled. */
export function shownStatus(status: string, setup: SetupState): string {
  return !INACTIVE.has(status) && !setup.complete ? 'needs_setup' : status;
}

/** Every connection with whether it is set up, and the status it shows (see `shownStatus`). */
export async function listConnectionsWithSetup(hub: Hub): Promise<(ConnectionRecord & { setup: SetupState })[]> {
  const rows = await listConnectionRows(hub.store.db);
  return rows.map((r) => {
    const setup = setupOfRow(hub, r);
    const record = toConnection(r);
    return { ...record, status: shownStatus(record.status, setup), setup };
  });
}

export async function loadConnection(hub: Hub, id: string): Promise<LoadedConnection> {
  const c = await hub.cache.get(`connection:${id}`, () => loadConnectionNow(hub, id));
  // Callers may add refreshed tokens to `secrets`: give each its own copy.
  return { ...c, secrets: { ...c.secrets } };
}

async function loadConnectionNow(hub: Hub, id: string): Promise<LoadedConnection> {
  const row = await getConnectionRow(hub.store.db, id);
  // A removed connection is kept for history only: to everything that would use it, it is gone.
  if (!row || row.status === 'removed') throw new ConnectionError('not_found', `no connection ${id}`);
  const connector = getConnector(row.platform);
  if (!connector) throw new ConnectionError('unknown_platform', `connection ${id} uses an unknown platform ${row.platform}`);
  return { record: toConnection(row), connector, secrets: resolveSecrets(hub, row.secrets_enc, JSON.parse(row.secret_refs)) };
}

/** Merge `patch` into the stored (encrypted) secrets of a connection. */
export async function saveSecrets(db: Kysely<DB>, hub: Hub, id: string, patch: Record<string, string>): Promise<void> {
  const row = await getConnectionRow(db, id);
  if (!row) throw new ConnectionError('not_found', `no connection ${id}`);
  const merged = { ...storedSecrets(hub, row.secrets_enc), ...patch };
  await db.updateTable('connection').set({ secrets_enc: hub.box.encryptJson(merged), updated_at: nowIso(hub) }).where('id', '=', id).execute();
  hub.cache.clear();
}

export function connectionContext(hub: Hub, c: LoadedConnection): ConnectionContext {
  return {
    connectionId: c.record.id,
    config: c.record.config,
    secrets: c.secrets,
    baseUrl: (c.record.baseUrl ?? c.connector.descriptor.defaultBaseUrl ?? '').replace(/\/$/, ''),
    fetch: hub.fetch,
    now: () => hub.clock.now(),
    // Where notifier callbacks for this connection go (the /notify route), once the public URL is known.
    inboundUrl: hub.publicUrl ? `${hub.publicUrl.replace(/\/$/, '')}/notify/${encodeURIComponent(c.record.id)}` : undefined,
    saveSecrets: async (patch) => {
      // A rotated secret that came from the environment: remember which value it replaced (see resolveSecrets).
      const row = await getConnectionRow(hub.store.db, c.record.id);
      const refs: Record<string, string> = row ? JSON.parse(row.secret_refs) : {};
      const before = row ? storedSecrets(hub, row.secrets_enc)[ROTATED_FROM] : undefined;
      const rotated: Record<string, string> = before ? JSON.parse(before) : {};
      for (const key of Object.keys(patch)) {
        const envValue = refs[key] ? hub.env[refs[key]] : undefined;
        if (envValue && envValue !== patch[key]) rotated[key] = digest(envValue);
      }
      Object.assign(c.secrets, patch);
      await saveSecrets(hub.store.db, hub, c.record.id, Object.keys(rotated).length ? { ...patch, [ROTATED_FROM]: JSON.stringify(rotated) } : patch);
    },
  };
}

export async function setConnectionStatus(hub: Hub, id: string, status: string, error?: string): Promise<void> {
  await hub.store.db
    .updateTable('connection')
    .set({ status, last_error: error ?? null, updated_at: nowIso(hub) })
    .where('id', '=', id)
    .execute();
  hub.cache.clear();
}

/**
 * New credentials were stored for a connection (API, CLI): a connection waiting to be reconnected is active
 * again and its jobs that waited for it run now. Only its own: other lapsed connections keep waiting.
 * Returns how many jobs were put forward.
 */
export async function credentialsRenewed(hub: Hub, id: string): Promise<number> {
  const row = await getConnectionRow(hub.store.db, id);
  if (row?.status !== 'needs_reauth') return 0;
  await setConnectionStatus(hub, id, 'active');
  const n = await rerunAuthWaiting(hub.store.db, id, nowIso(hub));
  hub.onJobs();
  return n;
}
