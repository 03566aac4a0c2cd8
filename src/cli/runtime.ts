// Shared start-up for CLI commands: where the data lives, opening the hub, applying the config.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openHub, type Hub } from '../engine/hub/hub.ts';
import { applyConfig, type ApplySummary } from '../config/apply.ts';
import { loadConfigFile } from '../config/load.ts';

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

/** Validate and apply the config file if there is one (only when its content changed). */
export async function applyConfigFile(hub: Hub, o: GlobalOptions, force = false): Promise<(ApplySummary & { file: string }) | undefined> {
  const file = configFileOf(o);
  if (!file) return undefined;
  const loaded = loadConfigFile(file);
  const s = await applyConfig(hub, loaded.config, loaded.hash, 'config:file', { force, file: loaded.file });
  return { ...s, file };
}
