// The hub's shared context: store, secrets, clock, logger, metrics. Passed explicitly everywhere.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { openStore, migrate, sqliteSyncFromEnv, type Store } from '../../store/db.ts';
import { loadSecretBox, type SecretBox } from '../../store/crypto.ts';
import { TtlCache } from './cache.ts';
import { GroupCommitter } from '../../store/commit.ts';
import { IngestPressure } from './pressure.ts';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface Metrics {
  registry: Registry;
  webhooks: Counter<'platform' | 'outcome'>;
  changes: Counter<'outcome'>;
  jobs: Counter<'kind' | 'outcome'>;
  ingestSeconds: Histogram<'platform'>;
  jobSeconds: Histogram<'kind'>;
  jobsWaiting: Gauge<'state'>;
  drift: Counter<'platform' | 'kind'>;
  reauth: Counter<'connection'>;
}

export interface Hub {
  store: Store;
  box: SecretBox;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  /** This process's name in job leases. */
  nodeId: string;
  /** Global fetch, replaceable in tests. */
  fetch: typeof fetch;
  /** Called after a transaction enqueued jobs (wakes local workers). */
  onJobs: () => void;
  /** Public base URL (for webhook URLs shown to staff and Square's signature). */
  publicUrl?: string;
  /** Reference data read on every webhook; cleared by every setup change made in this process. */
  cache: TtlCache;
  /** Transactions for webhook ingest (group commit on SQLite). */
  commits: GroupCommitter;
  /** The rate of incoming deliveries; background work yields to a burst of them. */
  pressure: IngestPressure;
}

/** Paths and values that must never reach a log line. */
export const REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.secret', '*.secrets', '*.password',
  '*.token', '*.accessToken', '*.refreshToken', '*.apiKey', '*.patient', '*.email', '*.phone', 'body', '*.body',
];

export function makeLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'meridian' } }, destination as never);
}

export function makeMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'meridian_' });
  return {
    registry,
    webhooks: new Counter({ name: 'meridian_webhooks_total', help: 'Webhook deliveries by outcome', labelNames: ['platform', 'outcome'], registers: [registry] }),
    changes: new Counter({ name: 'meridian_changes_total', help: 'Source changes by outcome', labelNames: ['outcome'], registers: [registry] }),
    jobs: new Counter({ name: 'meridian_jobs_total', help: 'Jobs run by outcome', labelNames: ['kind', 'outcome'], registers: [registry] }),
    ingestSeconds: new Histogram({ name: 'meridian_ingest_seconds', help: 'Webhook verify+commit time', labelNames: ['platform'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    jobSeconds: new Histogram({ name: 'meridian_job_seconds', help: 'Job run time', labelNames: ['kind'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 1, 5, 15], registers: [registry] }),
    jobsWaiting: new Gauge({ name: 'meridian_jobs', help: 'Jobs by state', labelNames: ['state'], registers: [registry] }),
    reauth: new Counter({ name: 'meridian_connection_reauth_total', help: 'Times a connection lost its authorisation and needs reconnecting', labelNames: ['connection'], registers: [registry] }),
    drift: new Counter({ name: 'meridian_target_drift_total', help: 'Target events found deleted or changed by hand (then repaired)', labelNames: ['platform', 'kind'], registers: [registry] }),
  };
}

export interface HubOptions {
  dataDir: string;
  databaseUrl?: string;
  pgSchema?: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  log?: Logger;
  fetch?: typeof fetch;
  publicUrl?: string;
  /** SQLite: checkpoint the write-ahead log from a thread of its own (`serve` does). */
  backgroundCheckpoints?: boolean;
}

export async function openHub(o: HubOptions): Promise<Hub> {
  const env = o.env ?? process.env;
  const log = o.log ?? makeLogger(env.LOG_LEVEL ?? 'info');
  // Checked before anything opens: a value other than the documented ones is refused, never guessed at.
  const sqliteSync = sqliteSyncFromEnv(env);
  const store = await openStore({
    databaseUrl: o.databaseUrl ?? env.DATABASE_URL, dataDir: o.dataDir, pgSchema: o.pgSchema, backgroundCheckpoints: o.backgroundCheckpoints,
    warn: (m) => log.warn(m), sqliteSync,
  });
  await migrate(store);
  const box = loadSecretBox(join(o.dataDir, 'secret.key'), env);
  return {
    store,
    box,
    clock: o.clock ?? systemClock,
    log,
    metrics: makeMetrics(),
    dataDir: o.dataDir,
    env,
    nodeId: `${process.pid}-${randomUUID().slice(0, 8)}`,
    fetch: o.fetch ?? globalThis.fetch,
    onJobs: () => {},
    publicUrl: o.publicUrl ?? env.MERIDIAN_PUBLIC_URL,
    cache: new TtlCache(),
    commits: new GroupCommitter(store.db, store.dialect),
    pressure: new IngestPressure(),
  };
}

export function nowIso(hub: Pick<Hub, 'clock'>): string {
  return hub.clock.now().toISOString();
}
