// Opening the store: SQLite (embedded default, WAL) or PostgreSQL (DATABASE_URL). One migration set.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { DB } from './schema.ts';
import { migrations, type Dialect } from './migrations.ts';

// int8 (count(*), bigint columns) as numbers, not strings.
pg.types.setTypeParser(20, (v) => Number(v));

export interface Store {
  db: Kysely<DB>;
  dialect: Dialect;
  /** Where it lives, for messages (file path or a URL without the password). */
  where: string;
  /** PostgreSQL schema in use, when not the default. */
  schema?: string;
  /**
   * What a committed transaction survives, as in force on the connection: SQLite's `synchronous`
   * (`FULL`: fsynced at every commit, survives a power cut; `NORMAL`: survives a crash of Meridian, not
   * of the machine) or PostgreSQL's `synchronous_commit` (`on` unless the server was configured otherwise).
   */
  durability: { setting: string; machineCrashSafe: boolean; describe: string };
  close(): Promise<void>;
}

/** SQLite's commit mode: `full` (the default) or the opt-out `normal`. */
export type SqliteSync = 'full' | 'normal';

/**
 * `MERIDIAN_SQLITE_SYNC`: unset (or `full`) for FULL, `normal` for the opt-out. Any other value is refused
 * (thrown), so a typo never silently weakens what an acknowledgement promises.
 */
export function sqliteSyncFromEnv(env: NodeJS.ProcessEnv): SqliteSync {
  const v = env.MERIDIAN_SQLITE_SYNC;
  if (v === undefined || v === '' || v === 'full') return 'full';
  if (v === 'normal') return 'normal';
  throw new Error(`MERIDIAN_SQLITE_SYNC must be "normal" (survives a crash of Meridian, not of the machine) or unset (the default, "full": every commit fsynced), not ${JSON.stringify(v)}`);
}

export interface OpenOptions {
  /** postgres://… selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  /** PostgreSQL schema to use (tests isolate themselves with one); created if missing. */
  pgSchema?: string;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
  /**
   * SQLite: copy the write-ahead log into the database file from a thread of its own (a long-running
   * server wants this). Otherwise SQLite does it inside whichever commit crosses the threshold, and the
   * event loop stops for that copy and its fsync (10–20 ms, every few hundred ms under a burst).
   */
  backgroundCheckpoints?: boolean;
  /** Where to say that the data folder can be read by other local users (default: stderr). */
  warn?: (message: string) => void;
  /**
   * SQLite: `full` (default) fsyncs the write-ahead log at every commit, so an acknowledged webhook survives
   * a power cut; `normal` syncs only at checkpoints (survives a crash of Meridian, not of the machine).
   * Group commit (commit.ts) shares each fsync among the units committed together.
   */
  sqliteSync?: SqliteSync;
}

export async function openStore(o: OpenOptions): Promise<Store> {
  if (o.databaseUrl && /^postgres(ql)?:\/\//.test(o.databaseUrl)) {
    const schema = o.pgSchema;
    if (schema) {
      if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
      const c = new pg.Client({ connectionString: o.databaseUrl });
      await c.connect();
      await c.query(`create schema if not exists ${schema}`);
      await c.end();
    }
    const pool = new pg.Pool({
      connectionString: o.databaseUrl,
      max: o.poolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    const u = new URL(o.databaseUrl);
    u.password = '';
    // Durability on PostgreSQL: Meridian never changes synchronous_commit (no SET, no SET LOCAL, no
    // connection option), so every commit waits for its WAL flush as the server is configured — `on` by
    // default. What is in force for this connection (server, database and role settings included) is read
    // here and reported; `off` (set by the operator) would lose acknowledged webhooks in a crash of the server.
    let setting: string;
    try {
      setting = String((await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(db)).rows[0]?.synchronous_commit);
    } catch (error) {
      await db.destroy();
      throw error;
    }
    const safe = setting !== 'off';
    const describe = safe
      ? `PostgreSQL synchronous_commit=${setting}: every commit flushed to disk before it is acknowledged`
      : 'PostgreSQL synchronous_commit=off (set on the server, database or role): a crash of the database server can lose the last acknowledged webhooks; set it back to on';
    return { db, dialect: 'postgres', schema, where: `${u.toString()}${schema ? ` (schema ${schema})` : ''}`, durability: { setting, machineCrashSafe: safe, describe }, close: () => db.destroy() };
  }
  const file = join(o.dataDir, 'meridian.db');
  privateDataDir(o.dataDir, o.warn ?? ((m) => process.stderr.write(`meridian: ${m}\n`)));
  // The database holds patients' data: readable by the service's own user only. The file is created (or
  // tightened) before SQLite opens it, because SQLite gives the -wal and -shm files it creates next to it
  // the database file's own mode, and it creates them at once (journal_mode = WAL below).
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // FULL: the write-ahead log is fsynced at every commit, so what was acknowledged survives a power cut
  // (NORMAL syncs only at checkpoints: it survives a crash of Meridian, not of the machine).
  const sync = o.sqliteSync ?? 'full';
  sqlite.pragma(`synchronous = ${sync === 'normal' ? 'NORMAL' : 'FULL'}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const checkpointer = o.backgroundCheckpoints ? startCheckpointer(file) : undefined;
  // The commit-time checkpoint stays as a fallback, at ten times SQLite's threshold (about 40 MB of log).
  if (checkpointer) sqlite.pragma('wal_autocheckpoint = 10000');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const setting = sync === 'normal' ? 'NORMAL' : 'FULL';
  const describe = sync === 'normal'
    ? 'SQLite synchronous=NORMAL (MERIDIAN_SQLITE_SYNC=normal): survives a crash of Meridian, not of the machine; a power cut can lose webhooks already acknowledged'
    : 'SQLite synchronous=FULL: every commit fsynced before it is acknowledged (survives a power cut)';
  return {
    db, dialect: 'sqlite', where: file, durability: { setting, machineCrashSafe: sync !== 'normal', describe },
    close: async () => {
      await checkpointer?.terminate();
      await db.destroy();
    },
  };
}

/**
 * Create the data folder readable by the service's own user only (0700; the mode is set explicitly, so
 * it does not depend on the umask). A folder that already exists is left as it is (it may be one the
 * operator chose and shares on purpose), but a folder that other local users can read is reported.
 */
export function privateDataDir(dir: string, warn: (message: string) => void): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    return;
  }
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o077) warn(`the data folder ${dir} can be read by other local users (mode ${mode.toString(8)}); it holds patients' data: chmod 700 ${dir}`);
}

const CHECKPOINT_EVERY_MS = 250;

/**
 * A worker thread with its own connection running PASSIVE checkpoints (they never wait for, nor block,
 * the server's readers and writers). The code is inline so that it runs the same from the sources and
 * from the bundle; better-sqlite3 is resolved here and handed over.
 */
function startCheckpointer(file: string): Worker {
  const w = new Worker(`
    const { workerData } = require('node:worker_threads');
    const Database = require(workerData.driver);
    const db = new Database(workerData.file);
    db.pragma('busy_timeout = 1000');
    setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.everyMs);
  `, { eval: true, workerData: { file, driver: createRequire(import.meta.url).resolve('better-sqlite3'), everyMs: CHECKPOINT_EVERY_MS } });
  w.unref();
  w.on('error', () => undefined); // the commit-time checkpoint takes over
  return w;
}

/**
 * Kysely prepares every query anew; better-sqlite3 statements are reusable, and preparing is a
 * measurable share of a webhook's cost. Cache them by SQL text (bounded).
 */
function withStatementCache(sqlite: SQLite.Database): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  return new Proxy(sqlite, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (source: string) => {
          let st = cache.get(source);
          if (!st) {
            if (cache.size >= 1000) cache.clear();
            st = target.prepare(source);
            cache.set(source, st);
          }
          return st;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export async function migrate(store: Store): Promise<string[]> {
  // Name the schema: Kysely otherwise finds its bookkeeping tables in any schema of the database.
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations(store.dialect) },
    ...(store.schema ? { migrationTableSchema: store.schema } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    // Kysely looks for its bookkeeping tables by listing the tables of EVERY schema (with
    // pg_get_serial_sequence per column); another schema dropped meanwhile (another Meridian's tests, a
    // tenant removed) fails that listing with "schema (or relation, or column) … does not exist". Nothing was
    // migrated: look again.
    if (attempt < 20 && droppedElsewhere(error, store.schema)) {
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      continue;
    }
    throw error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * PostgreSQL's "schema / table / column does not exist" (3F000, 42P01, 42703) met while listing what another
 * schema held as it was dropped (the listing reads each table's columns and their sequences one after the
 * other), not about our own schema.
 */
function droppedElsewhere(error: unknown, ours: string | undefined): boolean {
  const e = error as { code?: string; message?: string };
  return ['3F000', '42P01', '42703'].includes(e?.code ?? '') && !(ours && e.message?.includes(`"${ours}"`));
}
