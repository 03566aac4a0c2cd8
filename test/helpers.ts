// Test support: a fresh store on SQLite (temp folder) or PostgreSQL (a schema of its own).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openHub, makeLogger, type Hub, type HubOptions } from '../src/engine/hub/hub.ts';
import { parseConfig } from '../src/config/load.ts';
import { applyConfig } from '../src/config/apply.ts';

export const PG_URL = process.env.MERIDIAN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

let pgChecked: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers; else why not. */
export function pgUnavailable(): Promise<string | undefined> {
  pgChecked ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('select 1');
      return undefined;
    } catch (e) {
      return `PostgreSQL is not reachable at ${PG_URL} (${(e as Error).message}); start it or set MERIDIAN_TEST_PG`;
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return pgChecked;
}

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS: Backend[] = ['sqlite', 'postgres'];

/**
 * Options for a test on `backend`: SQLite in a temp folder, or a PostgreSQL schema of its own.
 * Returns `skip` (a reason) outside CI when PostgreSQL is missing; in CI a missing service fails.
 */
export async function backendFor(backend: Backend): Promise<{ dataDir: string; databaseUrl?: string; pgSchema?: string; cleanup(): Promise<void>; skip?: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meridian-test-'));
  const rmDir = () => rmSync(dataDir, { recursive: true, force: true });
  if (backend === 'sqlite') return { dataDir, cleanup: async () => rmDir() };
  const why = await pgUnavailable();
  if (why) {
    if (process.env.CI) throw new Error(why);
    return { dataDir, cleanup: async () => rmDir(), skip: why };
  }
  const pgSchema = `t_${randomBytes(6).toString('hex')}`;
  return {
    dataDir, databaseUrl: PG_URL, pgSchema,
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop schema if exists ${pgSchema} cascade`);
      await c.end();
      rmDir();
    },
  };
}

export function tempDir(prefix = 'meridian-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * An in-process hub on `o.dataDir` with a clinic configuration applied, as `bin/meridian` applies its
 * file at start: the setup most engine and connector tests share. Logs are silent unless `o.log` says.
 */
export async function configuredHub(yaml: string, o: HubOptions): Promise<Hub> {
  const hub = await openHub({ log: makeLogger('silent'), ...o });
  const c = parseConfig(yaml, 'test.yaml');
  await applyConfig(hub, c.config, c.hash, 'test', { file: c.file });
  return hub;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `bin/meridian <args>` as staff run it, `input` on its stdin: its exit code (0 on success) and what it printed. */
export function meridian(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile(process.execPath, ['bin/meridian', ...args], { cwd: ROOT, env: { ...process.env, ...o.env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    p.stdin!.end(o.input ?? '');
  });
}
