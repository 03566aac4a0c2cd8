// API keys: shown once, stored as SHA-256 (keys are 192-bit random, so a fast hash is enough),
// looked up by hash. Scopes: read < write < admin.
import { randomBytes, randomUUID } from 'node:crypto';
import { sha256Hex } from '../../store/crypto.ts';
import type { Hub } from './hub.ts';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
}

export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  const rank = (s: Scope) => SCOPES.indexOf(s);
  return granted.some((g) => rank(g) >= rank(needed));
}

export async function createApiKey(hub: Hub, name: string, scopes: Scope[]): Promise<{ key: string; info: ApiKeyInfo }> {
  const secret = randomBytes(24).toString('base64url');
  const prefix = secret.slice(0, 8);
  const key = `mer_${secret}`;
  const id = randomUUID();
  await hub.store.db.insertInto('api_key').values({
    id, name, prefix, key_hash: sha256Hex(key), scopes: JSON.stringify(scopes), created_at: hub.clock.now().toISOString(), last_used_at: null, revoked: 0,
  }).execute();
  return { key, info: { id, name, prefix, scopes } };
}

const lastTouch = new Map<string, number>();

export async function checkApiKey(hub: Hub, key: string): Promise<ApiKeyInfo | undefined> {
  if (!key.startsWith('mer_') || key.length > 200) return undefined;
  const r = await hub.store.db.selectFrom('api_key').selectAll().where('key_hash', '=', sha256Hex(key)).where('revoked', '=', 0).executeTakeFirst();
  if (!r) return undefined;
  // Record use at most once a minute per key: no write on every request.
  const now = hub.clock.now().getTime();
  if ((lastTouch.get(r.id) ?? 0) < now - 60_000) {
    lastTouch.set(r.id, now);
    await hub.store.db.updateTable('api_key').set({ last_used_at: new Date(now).toISOString() }).where('id', '=', r.id).execute();
  }
  return { id: r.id, name: r.name, prefix: r.prefix, scopes: JSON.parse(r.scopes) };
}

export async function listApiKeys(hub: Hub): Promise<(ApiKeyInfo & { createdAt: string; lastUsedAt: string | null; revoked: boolean })[]> {
  const rows = await hub.store.db.selectFrom('api_key').selectAll().orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, name: r.name, prefix: r.prefix, scopes: JSON.parse(r.scopes), createdAt: r.created_at, lastUsedAt: r.last_used_at, revoked: r.revoked === 1 }));
}

export async function revokeApiKey(hub: Hub, id: string): Promise<boolean> {
  const r = await hub.store.db.updateTable('api_key').set({ revoked: 1 }).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
