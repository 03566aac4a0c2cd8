// Shared start-up for CLI commands: where the data lives, opening the hub, applying the config.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openHub, type Hub } from '../engine/hub/hub.ts';
import { applyConfig, type ApplySummary } from '../config/apply.ts';
import { loadConfigFile, type ConfigIssue, type LoadedConfig } from '../config/load.ts';
import { secretIssues } from '../config/secrets.ts';
import { storedSecretKeys } from '../engine/hub/connections.ts';

export interface GlobalOptions {
  data?: string;
  database?: string;
  config?: string;
}

export function dataDirOf(o: GlobalOptions): string {
  return resolve(o.data ?? process.env.MERIDIAN_DATA ?? 'data');
}

/** The config file: --config, MERIDIAN_CONFIG, or meridian.yaml in the data folder when present. */
export function configFileOf(o: GlobalOptions): string | undefined {
  const explicit = o.config ?? process.env.MERIDIAN_CONFIG;
  if (explicit) return resolve(explicit);
  const inData = join(dataDirOf(o), 'meridian.yaml');
  return existsSync(inData) ? inData : undefined;
}

export async function open(o: GlobalOptions, extra: { quietLog?: boolean; server?: boolean } = {}): Promise<Hub> {
  const env = { ...process.env, ...(extra.quietLog && !process.env.LOG_LEVEL ? { LOG_LEVEL: 'warn' } : {}) };
  return openHub({ dataDir: dataDirOf(o), databaseUrl: o.database ?? process.env.DATABASE_URL, pgSchema: process.env.MERIDIAN_PG_SCHEMA || undefined, env, backgroundCheckpoints: extra.server });
}

/** Where a store would be: PostgreSQL when a database URL is given, else the SQLite file in the data folder. */
export function storeOf(o: GlobalOptions): { exists: boolean; where: string } {
  const url = o.database ?? process.env.DATABASE_URL;
  if (url) return { exists: true, where: 'the PostgreSQL database' };
  const file = join(dataDirOf(o), 'meridian.db');
  return { exists: existsSync(file), where: file };
}

/** The keys each connection of the store holds encrypted (what `secretIssues` needs from the store). */
export async function storedKeysOf(hub: Hub): Promise<(connectionId: string) => string[] | undefined> {
  const rows = await hub.store.db.selectFrom('connection').select(['id', 'secrets_enc']).execute();
  const byId = new Map(rows.map((r) => [r.id, storedSecretKeys(hub, r.secrets_enc)]));
  return (id) => byId.get(id);
}

/** The file's secret problems in this hub's environment and store, located in the file. */
export async function secretProblems(hub: Hub, loaded: LoadedConfig): Promise<ConfigIssue[]> {
  return secretIssues(loaded.config, hub.env, await storedKeysOf(hub)).map((p) => loaded.issueAt(p.path, p.message));
}

/**
 * Validate and apply the config file if there is one (only when its content changed). A secret missing from the
 * environment or the store does not stop it (`serve` must start for the other connections): it is returned in
 * `secretIssues`, which `config apply` reports as errors and `serve` logs.
 */
export async function applyConfigFile(hub: Hub, o: GlobalOptions, force = false): Promise<(ApplySummary & { file: string; secretIssues: ConfigIssue[] }) | undefined> {
  const file = configFileOf(o);
  if (!file) return undefined;
  const loaded = loadConfigFile(file);
  const s = await applyConfig(hub, loaded.config, loaded.hash, 'config:file', { force, file: loaded.file });
  return { ...s, file, secretIssues: await secretProblems(hub, loaded) };
}
