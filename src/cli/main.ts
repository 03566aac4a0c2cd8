// `meridian` — serve, migrate, demo, audit, jobs, keys, connections, platforms, parse-webhook, parse-record.
// Exit codes: 0 ok, 1 failure, 2 usage error; parse-webhook/parse-record: 3 signature rejected, 4 not understood
// (parse-webhook also reads lead forms: src/cli/parse-lead.ts).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { applyConfig } from '../config/apply.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { sql } from 'kysely';
import cliProgress from 'cli-progress';
import { allDescriptors, getConnector, getLeadForm, getSource, getTarget } from '../connectors/registry.ts';
import { ConnectionMisconfigured, UnreadablePayload, type LeadFormConnector, type SourceConnector } from '../connectors/types.ts';
import { ConfigError, formatIssue, loadConfigFile, type ConfigIssue, type LoadedConfig } from '../config/load.ts';
import { exportConfig, NothingToExport } from '../config/export.ts';
import { declaresStored, secretIssues } from '../config/secrets.ts';
import { createApiKey, listApiKeys, revokeApiKey, SCOPES, type Scope } from '../engine/hub/apikeys.ts';
import { credentialsRenewed, listConnectionsWithSetup, loadConnection, saveSecrets, setupOfRow, storedSecrets } from '../engine/hub/connections.ts';
import { listFeeds } from '../engine/effects/feeds.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { startRuntime } from '../engine/runtime.ts';
import { verifyAudit } from '../store/audit.ts';
import { jobCounts, listJobs, retryJob } from '../store/outbox.ts';
import { PAST_MS, reconcileConnection, repairReconciled } from '../engine/sync/reconcile.ts';
import { pollConnection, type PollReport } from '../engine/sync/poll.ts';
import { buildServer, VERSION } from '../http/server.ts';
import { applyConfigFile, configFileOf, dataDirOf, open, secretProblems, storeOf, type GlobalOptions } from './runtime.ts';
import { demoLogins, seedDemoSchedule } from './demo-staff.ts';
import { LeadUsageError, parseLeadCommand } from './parse-lead.ts';
import { createUser, listUsers, ROLES, type Role } from '../http/auth.ts';
import { dropOlderKeys, prependKeyFile, reencryptStore } from '../store/crypto.ts';
import { erasePatient } from '../engine/appointments/erase.ts';
import { pruneRetention } from '../engine/sync/retention.ts';
import { INACTIVE } from '../store/repo.ts';
import { ConnectError } from '../engine/connect/errors.ts';
import { createConnection, removeConnection } from '../engine/connect/connections.ts';
import { saveCheckedCredentials, testConnection } from '../engine/connect/probe.ts';
import { webhookView } from '../engine/connect/webhooks.ts';
import { listProviders, setProviderClient } from '../engine/connect/clients.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

class UsageError extends Error {}

function fail(message: string, code = 1): never {
  process.stderr.write(`meridian: ${message}\n`);
  process.exit(code);
}

function out(v: unknown): void {
  process.stdout.write(`${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`);
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

async function withHub<T>(o: GlobalOptions, f: (hub: Hub) => Promise<T>): Promise<T> {
  const hub = await open(o, { quietLog: true });
  try {
    return await f(hub);
  } finally {
    await hub.store.close();
  }
}

/** A refusal while connecting, said plainly (exit 1). */
function connectFailure(err: unknown): never {
  if (err instanceof ConnectError) fail(err.message);
  throw err;
}

function reportConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`meridian: the configuration is not valid:\n${err.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`);
    process.exit(1);
  }
  throw err;
}

/**
 * Once at start: each connection that is not set up, and each environment reference whose variable is unset,
 * as a warning naming the connection, the secret and the variable (never a value). The server still starts.
 */
async function warnSetupProblems(hub: Hub): Promise<void> {
  for (const c of await listConnectionsWithSetup(hub)) {
    if (c.status === 'disabled') continue;
    const { missing, unsetEnv } = c.setup;
    for (const u of unsetEnv) {
      const needed = missing.includes(u.key);
      hub.log.warn({ connection: c.id, key: u.key, env: u.env, needsSetup: needed }, `connection ${c.id}: ${u.env} is not set in the environment (secret ${u.key})${needed ? '; the connection needs setup and takes nothing until it is set' : ''}`);
    }
    const bare = missing.filter((k) => !unsetEnv.some((u) => u.key === k));
    if (bare.length) {
      hub.log.warn({ connection: c.id, missing: bare, needsSetup: true }, `connection ${c.id} needs setup: it lacks ${bare.join(', ')} (add { env: … } references, store them with \`meridian connections set-secret ${c.id} <key>\`, or connect it in the web app)`);
    }
  }
}

// ------------------------------------------------------------------ serve

interface ServeOptions extends GlobalOptions {
  port?: string;
  host?: string;
  workers?: string;
  publicUrl?: string;
}

async function serve(o: ServeOptions, banner?: (url: string, hub: Hub) => Promise<void>): Promise<void> {
  const port = Number(o.port ?? process.env.PORT ?? process.env.MERIDIAN_PORT ?? 7400);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0–65535, not ${o.port}`);
  const host = o.host ?? process.env.MERIDIAN_HOST ?? '127.0.0.1';
  const hub = await open(o, { server: true });
  if (o.publicUrl) hub.publicUrl = o.publicUrl;
  // Once at start: what an acknowledged webhook survives (the commit mode in force).
  const d = hub.store.durability;
  hub.log[d.machineCrashSafe ? 'info' : 'warn']({ store: hub.store.dialect, synchronous: d.setting }, d.describe);
  try {
    const applied = await applyConfigFile(hub, o);
    if (applied?.applied) hub.log.info({ file: applied.file, practitioners: applied.practitioners, connections: applied.connections }, 'configuration applied');
  } catch (err) {
    await hub.store.close();
    reportConfigError(err);
  }
  await warnSetupProblems(hub);
  const app = await buildServer(hub, { trustProxy: process.env.MERIDIAN_TRUST_PROXY === '1' });
  let address: string;
  try {
    address = await app.listen({ port, host });
  } catch (err) {
    await hub.store.close();
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use (choose another with --port)` : `cannot listen on ${host}:${port}: ${(err as Error).message}`);
  }
  // The background work (worker, inbox, token check, pruning, sweeps, polls) starts once the port is ours;
  // --workers overrides MERIDIAN_WORKERS, the other intervals come from the environment (runtime.ts).
  const runtime = await startRuntime(hub, { workers: o.workers === undefined ? undefined : Number(o.workers) });
  const url = address.replace('[::1]', 'localhost').replace('127.0.0.1', 'localhost');
  hub.publicUrl ??= url;
  if (banner) await banner(url, hub);
  process.stdout.write(`Meridian ${VERSION} listening on ${url} (store: ${hub.store.where})\n`);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    hub.log.info({ signal }, 'shutting down');
    // Stop taking requests first, then the background work, then close the store they all use.
    await app.close();
    await runtime.stop();
    await hub.store.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

// ------------------------------------------------------------------ demo

const DEMO_KEY_FILE = 'demo-api-key.txt';

async function demoSetup(o: GlobalOptions): Promise<void> {
  const dataDir = dataDirOf(o);
  await import('node:fs').then((fs) => fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 }));
  // The demo clinic is made as if in the app (examples/demo.yaml, applied once to an empty store, marks nothing
  // as provisioned), so every part of it can be changed in the web app: connecting Dr. Okafor's Google Calendar
  // and picking it for her is a few clicks. `meridian config export` writes it as a file. A configuration file
  // given with --config (or kept as data/meridian.yaml by an earlier demo) is applied as usual instead.
  const demoFile = join(ROOT, 'examples/demo.yaml');
  await withHub(o, async (hub) => {
    try {
      if (configFileOf(o)) await applyConfigFile(hub, o);
      else if (!(await hub.store.db.selectFrom('clinic').select('id').executeTakeFirst())) {
        const seed = loadConfigFile(demoFile);
        await applyConfig(hub, seed.config, seed.hash, 'demo', { seed: true });
      }
    } catch (err) {
      reportConfigError(err);
    }
    // The demo ships no connection that needs setup: each source's webhook secret, each secret the file keeps
    // in the store (`{ stored: true }`: the website form's token) and whatever else a connection still lacks
    // gets a random value, stored encrypted (never in the file).
    const { randomBytes } = await import('node:crypto');
    const demoSecret = () => `demo-${randomBytes(18).toString('base64url')}`;
    const file = configFileOf(o) ?? demoFile;
    const declared = new Map(loadConfigFile(file).config.connections.map((x) => [x.id, Object.entries(x.secrets).filter(([, r]) => r !== null && typeof r === 'object' && 'stored' in r).map(([k]) => k)]));
    const fill = async (c: { id: string; secrets_enc: string | null }, keys: Iterable<string>) => {
      const have = storedSecrets(hub, c.secrets_enc);
      const patch = Object.fromEntries([...new Set(keys)].filter((k) => !have[k]).map((k) => [k, demoSecret()]));
      if (Object.keys(patch).length) await saveSecrets(hub.store.db, hub, c.id, patch);
    };
    for (const c of await hub.store.db.selectFrom('connection').selectAll().where('status', '!=', 'disabled').execute()) {
      const key = getSource(c.platform)?.descriptor.webhookSecret;
      await fill(c, [...(key ? [key] : []), ...(declared.get(c.id) ?? [])]);
    }
    for (const c of await hub.store.db.selectFrom('connection').selectAll().where('status', '!=', 'disabled').execute()) {
      const setup = setupOfRow(hub, c);
      if (!setup.complete) await fill(c, setup.missing);
    }
    const keyFile = join(dataDir, DEMO_KEY_FILE);
    if (!existsSync(keyFile)) {
      const { key } = await createApiKey(hub, 'demo', ['admin']);
      writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    }
    // People who can sign in to the web app, and a day's schedule to look at.
    await demoLogins(hub, dataDir);
    await seedDemoSchedule(hub);
  });
}

async function demoBanner(url: string, hub: Hub, o: GlobalOptions): Promise<void> {
  const key = readFileSync(join(dataDirOf(o), DEMO_KEY_FILE), 'utf8').trim();
  const feeds = await listFeeds(hub);
  const conns = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('status', '!=', 'disabled').execute();
  const sources = conns.filter((c) => getSource(c.platform));
  const forms = [];
  for (const c of conns.filter((x) => getLeadForm(x.platform))) {
    const token = (await loadConnection(hub, c.id)).secrets.webhookToken;
    if (token) forms.push(`  Lead form:  POST ${url}/leads/${c.id}?token=${token}   (the website's appointment requests)`);
  }
  const lines = [
    '',
    'Meridian demo clinic is ready.',
    // The only place Meridian prints secrets: a demo has nothing worth protecting and must be usable at once.
    '  Demo only: these credentials are printed because this is a demo; `serve` never prints secrets.',
    `  Web:        ${url}/`,
    ...(await demoLogins(hub, dataDirOf(o))).map((l) => `  Sign in:    ${l.email} / ${l.password}   (${l.role === 'owner' ? 'owner: everything' : `practitioner: only ${l.practitionerId}'s schedule`})`),
    `  API:        ${url}/api/v1/openapi.json   (API key: ${key})`,
    `  Try:        curl -H "Authorization: Bearer ${key}" ${url}/api/v1/appointments`,
    ...sources.map((s) => `  Webhook:    ${url}/webhooks/${s.id}`),
    ...forms,
    '  Send a signed sample booking (new, then cancel) from another terminal:',
    ...sources.map((s) => `    bin/meridian send-sample ${s.id} --to ${url}${o.data ? ` --data ${o.data}` : ''}`),
    '  Calendar feeds (subscribe in any calendar app):',
    ...feeds.map((f) => `    ${f.scope === 'clinic' ? 'whole clinic' : f.scopeId}: ${url}${f.path}`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ------------------------------------------------------------------ parse-webhook / parse-record

function parseHeaderOption(h: string): [string, string] {
  const i = h.indexOf(':');
  if (i <= 0) throw new UsageError(`--header must look like "Name: value", not "${h}"`);
  return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()];
}

function sourceOrUsage(platform: string): SourceConnector {
  const s = getSource(platform);
  if (!s) {
    const ids = (role: string) => allDescriptors().filter((d) => d.role === role).map((d) => d.id).join(', ');
    throw new UsageError(`unknown source platform "${platform}" (sources: ${ids('source')}; lead forms, for parse-webhook: ${ids('lead-form')})`);
  }
  return s;
}

function readBody(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read --body ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

interface ParseWebhookOptions { platform: string; body: string; header: string[]; secret?: string; url?: string; now?: string; zone?: string; connection?: string }

/** A lead form's delivery: verified and read as the server would, its preferred times in the clinic's zone. */
function parseLeadWebhook(lead: LeadFormConnector, o: ParseWebhookOptions & GlobalOptions, rawBody: Buffer, headers: Record<string, string>, now: Date): number {
  const file = configFileOf(o);
  let config: LoadedConfig | undefined;
  if (file) {
    try {
      config = loadConfigFile(file);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`the configuration is not valid:\n${err.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
      throw err;
    }
  }
  try {
    const r = parseLeadCommand({ connector: lead, rawBody, headers, url: o.url ?? '', now, secret: o.secret, zone: o.zone, config: config?.config, configFile: config?.file, connection: o.connection });
    out(JSON.stringify(r.output));
    return r.code;
  } catch (err) {
    if (err instanceof LeadUsageError) throw new UsageError(err.message);
    throw err;
  }
}

function parseWebhookCommand(o: ParseWebhookOptions & GlobalOptions): number {
  const lead = getLeadForm(o.platform);
  if (!lead && (o.zone !== undefined || o.connection !== undefined)) throw new UsageError('--zone and --connection are for lead forms (typeform, tally, jotform, lead-form)');
  const src = lead ? undefined : sourceOrUsage(o.platform);
  const rawBody = readBody(o.body);
  const headers = Object.fromEntries(o.header.map(parseHeaderOption));
  const now = o.now ? new Date(o.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError(`--now must be an ISO-8601 instant, not "${o.now}"`);
  if (lead) return parseLeadWebhook(lead, o, rawBody, headers, now);
  if (!src) throw new UsageError(`unknown platform "${o.platform}"`);
  const secretKey = src.descriptor.webhookSecret ?? src.descriptor.auth.find((a) => a.secret)?.key;
  const secrets: Record<string, string> = o.secret && secretKey ? { [secretKey]: o.secret } : {};
  const req = { rawBody, headers, url: o.url ?? '', now };
  let verified;
  try {
    verified = src.verify(req, secrets);
  } catch (err) {
    if (err instanceof ConnectionMisconfigured) throw new UsageError(`${src.descriptor.displayName} signs its webhooks: pass --secret (${err.message})`);
    throw err;
  }
  if (!verified.ok) {
    out(JSON.stringify({ verified: false, changes: [], reason: verified.reason }));
    return 3;
  }
  try {
    out(JSON.stringify({ verified: true, changes: src.parseWebhook(req) }));
    return 0;
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    out(JSON.stringify({ verified: true, changes: [], error: err.message }));
    return 4;
  }
}

function parseRecordCommand(o: { platform: string; body: string }): number {
  const src = sourceOrUsage(o.platform);
  if (!src.parseRecord) throw new UsageError(`${src.descriptor.displayName} has no record parser`);
  let record: unknown;
  try {
    record = JSON.parse(readBody(o.body).toString('utf8'));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    out(JSON.stringify({ changes: [], error: 'the body is not JSON' }));
    return 4;
  }
  try {
    out(JSON.stringify({ changes: src.parseRecord(record) }));
    return 0;
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    out(JSON.stringify({ changes: [], error: err.message }));
    return 4;
  }
}

// ------------------------------------------------------------------ program

const program = new Command('meridian')
  .description('Meridian: one appointment hub for every booking tool, calendar and CRM of a clinic')
  .version(VERSION)
  .option('--data <dir>', 'data folder (SQLite database, key file, config)', process.env.MERIDIAN_DATA)
  .option('--database <url>', 'PostgreSQL URL (default: SQLite in the data folder; or DATABASE_URL)')
  .option('--config <file>', 'clinic configuration (default: meridian.yaml in the data folder; or MERIDIAN_CONFIG)')
  .exitOverride()
  .showHelpAfterError();

program.command('serve').description('run the HTTP server and the job workers')
  .option('--port <n>', 'port (default 7400, or PORT)')
  .option('--host <addr>', 'interface to listen on (default 127.0.0.1)')
  .option('--workers <n>', 'concurrent jobs in this process', '4')
  .option('--public-url <url>', 'the URL platforms reach this server at (used in webhook URLs and feed UIDs)')
  .action(async (_o, cmd: Command) => serve(cmd.optsWithGlobals() as ServeOptions));

program.command('demo').description('set up the demo clinic (and with --serve, run it)')
  .option('--serve', 'start the server afterwards')
  .option('--port <n>', 'port when serving (default 7400)')
  .option('--host <addr>', 'interface when serving (default 127.0.0.1)')
  .action(async (_o, cmd: Command) => {
    const o = cmd.optsWithGlobals() as ServeOptions & { serve?: boolean };
    await demoSetup(o);
    if (o.serve) await serve(o, (url, hub) => demoBanner(url, hub, o));
    else out(`Demo clinic set up in ${dataDirOf(o)}. Start it with: bin/meridian demo --serve${o.data ? ` --data ${o.data}` : ''}`);
  });

program.command('send-sample').argument('<connection>', 'a source connection id')
  .description('send a signed sample booking to a running server: a new booking, or with --cancel its cancellation')
  .option('--to <url>', 'server URL', 'http://localhost:7400')
  .option('--cancel <bookingId>', 'cancel this sample booking instead of creating one')
  .action(async (connection: string, _o, cmd: Command) => {
    const o = cmd.optsWithGlobals() as GlobalOptions & { to: string; cancel?: string };
    const { rawBody, headers, bookingId } = await withHub(o, async (hub) => {
      const conn = await loadConnection(hub, connection).catch(() => fail(`no connection ${connection}`));
      const src = getSource(conn.record.platform);
      if (!src?.sampleWebhook) return fail(`${conn.record.platform} cannot make sample webhooks`);
      const clinic = await hub.store.db.selectFrom('clinic').select('time_zone').executeTakeFirstOrThrow();
      const tomorrow = new Date(Date.now() + 86_400_000);
      const day = tomorrow.toISOString().slice(0, 10);
      const { localToUtc } = await import('../domain/time.ts');
      const start = localToUtc(`${day}T10:00:00`, clinic.time_zone);
      const id = o.cancel ?? (await import('node:crypto')).randomUUID();
      const hostRef = Object.keys(conn.record.refs.practitioners ?? {})[0];
      const serviceRef = Object.keys(conn.record.refs.services ?? {})[0];
      const sample = src.sampleWebhook({
        event: o.cancel ? 'canceled' : 'created', bookingId: id, start, end: new Date(Date.parse(start) + 45 * 60_000).toISOString().replace('.000Z', 'Z'),
        timeZone: clinic.time_zone, patient: { name: 'Jordan Rivera', email: 'jordan.rivera@example.org' }, hostRef, serviceRef,
      }, conn.secrets, new Date());
      return { ...sample, bookingId: id };
    });
    const res = await fetch(`${o.to.replace(/\/$/, '')}/webhooks/${connection}`, { method: 'POST', headers, body: new Uint8Array(rawBody) }).catch((e: Error) => fail(`cannot reach ${o.to}: ${e.message}`));
    out(`${res.status} ${await res.text()}`);
    if (!o.cancel) out(`Cancel it with: bin/meridian send-sample ${connection} --to ${o.to} --cancel ${bookingId}${o.data ? ` --data ${o.data}` : ''}`);
    if (!res.ok) process.exitCode = 1;
  });

/** One line per connection: what the poll found and did. */
function pollSummary(id: string, r: PollReport): string {
  if (r.busy) return `${id}: another Meridian process is polling it right now; nothing done`;
  if (r.notModified) return `${id}: not modified since the last poll`;
  const o = r.outcomes;
  const n = (k: string) => o[k] ?? 0;
  const parts = [`created ${n('created')}`, `updated ${n('updated')}`, `cancelled ${n('cancelled')}`,
    `unchanged ${n('unchanged') + n('duplicate') + n('stale') + n('superseded') + n('tombstone')}`,
    `held for approval ${r.held?.cancellations ?? 0}`, `failed ${n('failed')}`];
  return `${id}: ${r.listed} bookings listed; ${parts.join(', ')}${r.held ? ` (held ${r.held.id}: approve or reject it in the API, /api/v1/held-changes)` : ''}`;
}

program.command('sync').description('poll booking sources for a window of bookings now (with progress)')
  .option('--connection <id>', 'only this connection (default: every source that can be polled)')
  .option('--since <date>', 'start the window at this date or instant (default: the connection\'s pollPastDays, 7 days)')
  .action(async (o: { connection?: string; since?: string }, cmd: Command) => {
    const since = o.since ? new Date(o.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw new UsageError(`--since must be a date (2026-12-01) or an ISO-8601 instant, not "${o.since}"`);
    await withHub(globals(cmd), async (hub) => {
      const rows = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('status', 'not in', [...INACTIVE]).execute();
      const ids = rows.filter((r) => (o.connection ? r.id === o.connection : Boolean(getSource(r.platform)?.list))).map((r) => r.id);
      if (o.connection && !ids.length) throw new UsageError(`no connection ${o.connection}`);
      for (const id of ids) {
        const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: `${id} {bar} {value} bookings`, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
        bar?.start(0, 0);
        try {
          const r = await pollConnection(hub, id, { since, onProgress: (n) => { bar?.setTotal(n); bar?.update(n); } });
          bar?.stop();
          out(pollSummary(id, r));
          if ((r.outcomes.failed ?? 0) > 0) process.exitCode = 1;
        } catch (err) {
          bar?.stop();
          process.exitCode = 1;
          process.stderr.write(`meridian: ${id}: ${(err as Error).message}\n`);
        }
      }
    });
  });

program.command('reconcile').description('compare each calendar target with the store in full: missing, moved or retitled, orphaned events (exit 3: drift found and not repaired)')
  .option('--connection <id>', 'only this target connection (default: every calendar target that can list its events)')
  .option('--days <n>', 'how far ahead to compare (default 180; from yesterday)')
  .option('--repair', 'write again every event found missing or changed (orphans are only listed)')
  .action(async (o: { connection?: string; days?: string; repair?: boolean }, cmd: Command) => {
    const days = o.days === undefined ? 180 : Number(o.days);
    if (!Number.isInteger(days) || days < 1 || days > 3660) throw new UsageError(`--days must be a whole number of days from 1 to 3660, not "${o.days}"`);
    await withHub(globals(cmd), async (hub) => {
      const rows = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('status', 'not in', [...INACTIVE]).execute();
      const ids = rows.filter((r) => (o.connection ? r.id === o.connection : getTarget(r.platform)?.descriptor.kind === 'calendar')).map((r) => r.id);
      if (o.connection && !ids.length) throw new UsageError(`no connection ${o.connection}`);
      const now = hub.clock.now().getTime();
      const window = { from: new Date(now - PAST_MS), to: new Date(now + days * 86_400_000) };
      for (const id of ids) {
        const r = await reconcileConnection(hub, id, { window });
        if (!r.ok) {
          process.exitCode = 1;
          process.stderr.write(`meridian: ${id}: ${r.failure.message}\n`);
          continue;
        }
        const v = r.value;
        const list = (f: { count: number; ids: string[] }) => (f.count ? ` (${f.ids.slice(0, 10).join(', ')}${f.count > 10 ? ', …' : ''})` : '');
        out(`${id}: ${v.checked} appointments in ${v.calendars} calendar(s), ${v.inSync} in sync; missing ${v.missing.count}${list(v.missing)}; changed ${v.changed.count}${list(v.changed)}; orphaned ${v.orphaned.count}${list(v.orphaned)}`);
        if (o.repair && v.missing.count + v.changed.count > 0) {
          const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: `${id} repairing {bar} {value}/{total}`, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
          bar?.start(v.missing.ids.length + v.changed.ids.length, 0);
          const fixed = await repairReconciled(hub, id, v, (done) => bar?.update(done));
          bar?.stop();
          out(`${id}: repaired ${fixed.repaired}${fixed.failed.length ? `, ${fixed.failed.length} failed: ${fixed.failed.slice(0, 5).map((f) => `${f.appointmentId} ${f.error}`).join('; ')}` : ''}`);
          if (fixed.failed.length) process.exitCode = 1;
        } else if (v.missing.count + v.changed.count > 0 && !process.exitCode) process.exitCode = 3;
      }
    });
  });

program.command('migrate').description('create or upgrade the database schema')
  .action(async (_o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => out(`database is up to date (${hub.store.where})`));
  });

const config = program.command('config').description('the clinic configuration file');
config.command('check').argument('[file]').description('validate a configuration file (errors name file:line:column and the field)')
  .action(async (file: string | undefined, _o, cmd: Command) => {
    const o = globals(cmd);
    const f = file ?? configFileOf(o);
    if (!f) throw new UsageError('no configuration file given or found');
    let loaded: LoadedConfig;
    try {
      loaded = loadConfigFile(resolve(f));
    } catch (err) {
      reportConfigError(err);
    }
    // Secrets: each environment reference is set, each connection has what it needs; stored ones with a store.
    const c = loaded.config;
    const store = storeOf(o);
    const withoutStore = () => secretIssues(c, process.env).map((p) => loaded.issueAt(p.path, p.message));
    let problems: ConfigIssue[];
    let note: string | undefined;
    if (store.exists) {
      try {
        problems = await withHub(o, (hub) => secretProblems(hub, loaded));
      } catch (err) {
        problems = withoutStore();
        note = `stored secrets not checked (cannot read the store at ${store.where}: ${(err as Error).message})`;
      }
    } else {
      problems = withoutStore();
      if (declaresStored(c)) note = `stored secrets not checked (no store at ${store.where})`;
    }
    if (problems.length) {
      if (note) process.stderr.write(`meridian: note: ${note}\n`);
      reportConfigError(new ConfigError(problems));
    }
    out(`${f}: valid (${c.practitioners.length} practitioners, ${c.locations.length} locations, ${c.connections.length} connections)`);
    if (note) out(`note: ${note}`);
  });
config.command('apply').description('apply the configuration file now (also done at every start when it changed)')
  .action(async (_o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      try {
        const s = await applyConfigFile(hub, globals(cmd), true);
        if (!s) throw new UsageError('no configuration file given or found');
        out(`applied ${s.file}: ${s.practitioners} practitioners, ${s.connections} connections, ${s.feedsCreated} new feeds`);
        if (s.secretIssues.length) {
          process.stderr.write(`meridian: applied, but connections are not set up (they take nothing until they are):\n${s.secretIssues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`);
          process.exitCode = 1;
        }
      } catch (err) {
        if (err instanceof UsageError) throw err;
        reportConfigError(err);
      }
    });
  });

config.command('export').description('write the whole configuration in the store (made in the app or by files) as YAML; secrets only as references')
  .option('--out <file>', 'write to this file instead of standard output')
  .action(async (o: { out?: string }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      let text: string;
      try {
        text = await exportConfig(hub, { at: hub.clock.now().toISOString(), from: hub.store.where });
      } catch (err) {
        if (err instanceof NothingToExport) throw new UsageError(err.message);
        throw err;
      }
      if (o.out) {
        writeFileSync(resolve(o.out), text, { mode: 0o600 });
        process.stderr.write(`wrote ${o.out}\n`);
      } else process.stdout.write(text);
    });
  });

const audit = program.command('audit').description('the tamper-evident audit log');
audit.command('verify').description('check the hash chain from the first entry to the last')
  .action(async (_o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const total = Number((await hub.store.db.selectFrom('audit').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
      const bar = process.stderr.isTTY && total > 5000 ? new cliProgress.SingleBar({ format: 'verifying {bar} {value}/{total}' }, cliProgress.Presets.shades_classic) : undefined;
      bar?.start(total, 0);
      const r = await verifyAudit(hub.store.db, (n) => bar?.update(n));
      bar?.stop();
      if (r.ok) out(`audit chain intact: ${r.entries} entries, head ${r.headHash.slice(0, 16)}…`);
      else fail(`audit chain BROKEN at entry ${r.brokenAt}: ${r.reason}`, 1);
    });
  });
audit.command('export').description('write the audit log as JSON Lines to stdout')
  .action(async (_o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      let after = 0;
      for (;;) {
        const rows = await hub.store.db.selectFrom('audit').selectAll().where('seq', '>', after).orderBy('seq').limit(1000).execute();
        if (!rows.length) break;
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        after = rows[rows.length - 1].seq;
      }
    });
  });

const secrets = program.command('secrets').description('secrets at rest (connection secrets and feed tokens, AES-256-GCM)');
secrets.command('rotate')
  .description('re-encrypt every stored secret with the newest key. With MERIDIAN_SECRET_KEY=<new>,<old>: to <new> (then drop <old> and restart). With the key file: a fresh key is made, everything re-encrypted, and the old keys removed from the file (restart the server afterwards)')
  .option('--keep-old', 'key file: keep the older keys in the file')
  .action(async (o: { keepOld?: boolean }, cmd: Command) => {
    const keyFile = join(dataDirOf(globals(cmd)), 'secret.key');
    const inFile = !process.env.MERIDIAN_SECRET_KEY && existsSync(keyFile);
    if (inFile) prependKeyFile(keyFile);
    await withHub(globals(cmd), async (hub) => {
      // Old ciphertexts must not linger in freed pages or the WAL (the old key may be the compromised one).
      if (hub.store.dialect === 'sqlite') await sql`pragma secure_delete = on`.execute(hub.store.db);
      const r = await reencryptStore(hub.store.db, hub.box);
      if (hub.store.dialect === 'sqlite') await sql`pragma wal_checkpoint(TRUNCATE)`.execute(hub.store.db);
      const dropped = inFile && !o.keepOld ? dropOlderKeys(keyFile) : 0;
      out(`${r.reencrypted} of ${r.total} stored secrets re-encrypted with key ${hub.box.currentKeyId}${dropped ? `; ${dropped} older key(s) removed from ${keyFile}` : ''}`);
      if (!inFile) out('every secret now uses the first key of MERIDIAN_SECRET_KEY: the others can be dropped');
    });
  });

const patients = program.command('patients').description('patients\' personal data');
patients.command('erase').requiredOption('--email <address>', 'the patient\'s e-mail address')
  .description('erase a patient\'s personal data everywhere Meridian keeps it (appointments stay, as "Erased patient"; calendars are re-rendered; the audit chain still verifies)')
  .action(async (o: { email: string }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const r = await erasePatient(hub, { email: o.email }, 'cli:patients-erase');
      out(r);
      if (r.auditLegacy) process.stderr.write(`meridian: ${r.auditLegacy} audit entries from before erasable entries still hold this patient's data (erasing them would break the chain)\n`);
    });
  });

program.command('prune').description('delete records past their retention period now (meridian.yaml `retention:`; also runs hourly)')
  .option('--dry-run', 'only count what would be deleted')
  .action(async (o: { dryRun?: boolean }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const r = await pruneRetention(hub, { dryRun: o.dryRun, actor: 'cli' });
      for (const [k, n] of Object.entries(r.pruned)) out(`${k.padEnd(14)} ${String(n).padStart(7)} ${r.dryRun ? 'would be deleted' : 'deleted'} (kept ${r.policy[k as keyof typeof r.policy] === 'off' ? 'forever' : r.policy[k as keyof typeof r.policy]})`);
    });
  });

const jobs = program.command('jobs').description('the outbox: calendar writes, fetches, write-backs');
jobs.command('list').description('list jobs (newest first)')
  .addOption(new Option('--state <state>', 'only this state').choices(['pending', 'running', 'done', 'dead']))
  .option('--json', 'JSON output')
  .action(async (o: { state?: 'pending' | 'running' | 'done' | 'dead'; json?: boolean }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const items = await listJobs(hub.store.db, { state: o.state, limit: 200 });
      if (o.json) return out({ counts: await jobCounts(hub.store.db), items });
      const c = await jobCounts(hub.store.db);
      out(`pending ${c.pending} · running ${c.running} · done ${c.done} · dead ${c.dead}`);
      for (const j of items) out(`${j.id}  ${j.state.padEnd(7)}  ${j.kind.padEnd(18)} attempts ${j.attempts}/${j.maxAttempts}  next ${j.runAt}${j.lastError ? `  last error: ${j.lastError}` : ''}`);
    });
  });
jobs.command('retry').argument('<id>').description('run a dead or waiting job again now')
  .action(async (id: string, _o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      if (!(await retryJob(hub.store.db, id, new Date().toISOString()))) fail(`no retryable job ${id}`);
      out(`job ${id} will run at the next poll of a running server`);
    });
  });

/** A password typed at the terminal without echo (twice), or read from stdin with --password-stdin. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password: pipe it in with --password-stdin');
  const { createInterface } = await import('node:readline');
  const ask = (q: string) => new Promise<string>((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const w = rl as unknown as { _writeToOutput(s: string): void };
    w._writeToOutput = (s: string) => { if (s.startsWith(q)) process.stderr.write(q); };
    rl.question(q, (a) => { rl.close(); process.stderr.write('\n'); resolve(a); });
  });
  const first = await ask('Password: ');
  if ((await ask('Again: ')) !== first) throw new UsageError('the two passwords differ');
  return first;
}

const users = program.command('users').description('staff accounts of the web app');
users.command('add').argument('<email>')
  .description('add a staff account (the first one is usually the owner)')
  .addOption(new Option('--role <role>', 'owner (everything), front_desk (schedule and operations), practitioner (own schedule only)').choices([...ROLES]).makeOptionMandatory())
  .option('--name <name>', 'display name')
  .option('--practitioner <id>', 'the practitioner a practitioner account belongs to')
  .option('--password-stdin', 'read the password from stdin instead of asking')
  .action(async (email: string, o: { role: Role; name?: string; practitioner?: string; passwordStdin?: boolean }, cmd: Command) => {
    const password = await readPassword(Boolean(o.passwordStdin));
    await withHub(globals(cmd), async (hub) => {
      try {
        const u = await createUser(hub, { email, name: o.name, role: o.role, password, practitionerId: o.practitioner }, 'cli:users');
        out(`added ${u.email} (${u.role}${u.practitionerId ? `, ${u.practitionerId}` : ''}); sign in at the server's web address`);
      } catch (err) {
        if ((err as { status?: number }).status && (err as { status: number }).status < 500) fail((err as Error).message, 2);
        throw err;
      }
    });
  });
users.command('list').action(async (_o, cmd: Command) => {
  await withHub(globals(cmd), async (hub) => {
    for (const u of await listUsers(hub)) out(`${u.email}  ${u.role}${u.practitionerId ? ` (${u.practitionerId})` : ''}${u.disabled ? '  DISABLED' : ''}`);
  });
});

const keys = program.command('keys').description('API keys');
keys.command('create').argument('<name>')
  .addOption(new Option('--scope <scope>', 'read < write < admin').choices([...SCOPES]).default('write'))
  .description('create an API key (shown once)')
  .action(async (name: string, o: { scope: Scope }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const { key, info } = await createApiKey(hub, name, [o.scope]);
      out(`${key}\n(id ${info.id}, scope ${o.scope}; store it now: it is not shown again)`);
    });
  });
keys.command('list').action(async (_o, cmd: Command) => {
  await withHub(globals(cmd), async (hub) => {
    for (const k of await listApiKeys(hub)) out(`${k.id}  ${k.name}  mer_${k.prefix}…  ${k.scopes.join(',')}  ${k.revoked ? 'REVOKED' : `last used ${k.lastUsedAt ?? 'never'}`}`);
  });
});
keys.command('revoke').argument('<id>').action(async (id: string, _o, cmd: Command) => {
  await withHub(globals(cmd), async (hub) => {
    if (!(await revokeApiKey(hub, id))) fail(`no API key ${id}`);
    out(`revoked ${id}`);
  });
});

const connections = program.command('connections').description('connections to booking tools, calendars and CRMs');
connections.command('list').action(async (_o, cmd: Command) => {
  await withHub(globals(cmd), async (hub) => {
    for (const c of await listConnectionsWithSetup(hub)) {
      const setup = c.status === 'needs_setup' ? `  (lacks ${c.setup.missing.join(', ')}${c.setup.unsetEnv.length ? `; unset: ${c.setup.unsetEnv.map((u) => u.env).join(', ')}` : ''})` : '';
      out(`${c.id}  ${c.platform}  ${c.status}${setup}${c.lastError ? `  (${c.lastError})` : ''}`);
    }
  });
});
connections.command('set-secret').argument('<connection>').argument('<key>')
  .description('store a secret encrypted (value read from stdin, or from --from-env)')
  .option('--from-env <var>', 'read the value from this environment variable')
  .action(async (connection: string, key: string, o: { fromEnv?: string }, cmd: Command) => {
    let value = o.fromEnv ? process.env[o.fromEnv] : readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    if (!value) throw new UsageError(o.fromEnv ? `${o.fromEnv} is not set` : 'no value on stdin');
    await withHub(globals(cmd), async (hub) => {
      const conn = await loadConnection(hub, connection).catch(() => fail(`no connection ${connection}`));
      const known = conn.connector.descriptor.auth.filter((a) => a.secret).flatMap((a) => [a.key, `${a.key}Previous`]);
      if (!known.includes(key)) throw new UsageError(`${conn.connector.descriptor.displayName} has no secret "${key}" (known: ${known.join(', ')})`);
      await saveSecrets(hub.store.db, hub, connection, { [key]: value! });
      value = undefined;
      // As through the API: a connection waiting to be reconnected is active again, and its waiting jobs run.
      const rerun = await credentialsRenewed(hub, connection);
      out(`stored ${key} for ${connection} (encrypted)${rerun ? `; ${rerun} waiting job(s) run now` : ''}`);
    });
  });

connections.command('add').argument('<platform>').argument('<name>')
  .description('add a connection (as the web app does); then store its credentials (`connections credentials`) or connect it by OAuth in the web app')
  .option('--id <id>', 'its id (default: from the name)')
  .option('--base-url <url>', 'the platform\'s API base URL, when not the default')
  .action(async (platform: string, name: string, o: { id?: string; baseUrl?: string }, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const made = await createConnection(hub, { platform, name, id: o.id, baseUrl: o.baseUrl }, 'cli').catch(connectFailure);
      out(`added ${made.id} (${made.displayName})`);
      const hook = await webhookView(hub, made.id);
      if (hook.mode === 'manual' && hook.url) out(`its webhook URL: ${hook.url}`);
      if (getConnector(platform)?.descriptor.oauth) out(`connect it in the web app: Connections → ${made.id} → Connect with ${made.displayName}`);
    });
  });
connections.command('credentials').argument('<connection>')
  .description('store credentials once the platform accepted them; reads KEY=VALUE lines from stdin (e.g. apiKey=…)')
  .action(async (connection: string, _o, cmd: Command) => {
    const fields: Record<string, string> = {};
    for (const line of readFileSync(0, 'utf8').split(/\r?\n/)) {
      const i = line.indexOf('=');
      if (i > 0) fields[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    await withHub(globals(cmd), async (hub) => {
      const r = await saveCheckedCredentials(hub, connection, fields, 'cli').catch(connectFailure);
      out(`stored ${r.stored.join(', ')} for ${connection} (encrypted). ${r.message}`);
    });
  });
connections.command('test').argument('<connection>').description('test a connection: credentials, calendars, subscription, last delivery')
  .action(async (connection: string, _o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const r = await testConnection(hub, connection).catch(connectFailure);
      for (const c of r.checks) out(`${c.ok ? '✓' : '✗'} ${c.message}${c.next ? `\n    → ${c.next}` : ''}`);
      if (!r.ok) process.exitCode = 1;
    });
  });
connections.command('remove').argument('<connection>').description('remove a connection made in the app (its webhook subscription is removed at the platform; its history stays)')
  .action(async (connection: string, _o, cmd: Command) => {
    await withHub(globals(cmd), async (hub) => {
      const r = await removeConnection(hub, connection, 'cli').catch(connectFailure);
      out(`removed ${r.removed}${r.subscription.removed ? '; its webhook subscription was removed' : ''}${r.subscription.error ? `; the subscription could not be removed (${r.subscription.error}): remove it at the platform` : ''}`);
    });
  });
const oauthApps = program.command('oauth-app').description('the OAuth apps (client id and secret) Meridian connects accounts with');
oauthApps.command('list').action(async (_o, cmd: Command) => {
  await withHub(globals(cmd), async (hub) => {
    const ps = await listProviders(hub);
    if (hub.publicUrl) out(`redirect URI to register with each provider: ${hub.publicUrl.replace(/\/$/, '')}/oauth/callback`);
    for (const p of ps) out(`${p.platform.padEnd(18)} ${p.client.configured ? `set (${p.client.from}): ${p.client.clientId}` : 'not set'}  — ${p.guide.console}`);
  });
});
oauthApps.command('set').argument('<platform>').description('set a provider\'s OAuth app; the client secret is read from stdin')
  .requiredOption('--client-id <id>', 'the app\'s client id')
  .action(async (platform: string, o: { clientId: string }, cmd: Command) => {
    const secret = process.stdin.isTTY ? '' : readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    await withHub(globals(cmd), async (hub) => {
      await setProviderClient(hub, platform, { clientId: o.clientId, ...(secret ? { clientSecret: secret } : {}) }, 'cli').catch(connectFailure);
      out(`set the ${platform} app (${o.clientId})${secret ? ' with its secret (encrypted)' : ''}`);
    });
  });

program.command('platforms').description('every connector with its capabilities and fidelity')
  .option('--json', 'JSON output')
  .action((o: { json?: boolean }) => {
    const ds = allDescriptors();
    if (o.json) return out(ds);
    const idWidth = Math.max(...ds.map((d) => d.id.length)) + 1;
    const roleWidth = Math.max(...ds.map((d) => d.role.length)) + 1;
    const indent = ' '.repeat(idWidth + roleWidth + 2);
    for (const d of ds) {
      const caps = Object.entries(d.capabilities).filter(([, v]) => v).map(([k]) => k).join(', ') || 'none';
      out(`${d.id.padEnd(idWidth)} ${d.role.padEnd(roleWidth)} ${d.displayName}\n${indent}capabilities: ${caps}\n${indent}${'signature' in d && d.signature ? `webhooks: ${d.signature}\n${indent}` : ''}fidelity: ${d.fidelity}`);
    }
  });

program.command('parse-webhook').description('show what Meridian makes of a webhook (verifies, then parses): a booking platform\'s changes, or a lead form\'s lead')
  .requiredOption('--platform <id>', 'source platform id, or a lead form: typeform, tally, jotform, lead-form')
  .requiredOption('--body <file>', 'raw body file (bytes as received)')
  .option('--header <header>', '"Name: value", repeatable (a form body needs its Content-Type)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--secret <s>', 'the webhook signing secret (Jotform: the URL token; lead-form: the signing secret when the delivery has X-Meridian-Signature, else the URL token)')
  .option('--url <url>', 'the URL the platform posted to (with its ?token= where the platform signs nothing)')
  .option('--now <instant>', 'pin the clock (replay windows; a lead\'s horizon and relative days)')
  .option('--zone <iana>', 'lead forms: the zone preferred times are read in (default: the clinic\'s in --config, else UTC)')
  .option('--connection <id>', 'lead forms: the connection of --config whose fields mapping, horizon and refs apply (default: the only one of the platform)')
  .addHelpText('after', `
Exit codes: 0 parsed, 2 usage (a missing --secret, an unknown platform or zone), 3 signature refused, 4 verified but
not understood. Output is JSON: for a booking platform { verified, changes }, for a lead form { verified, lead, read }
where read gives the service and practitioner the lead resolves to in the clinic's configuration (--config, or
MERIDIAN_CONFIG, or meridian.yaml in the data folder) and the preferred times as instants in the clinic's zone
(windows within the slot search's horizon, before working hours and busy time are applied).`)
  .action((_o, cmd: Command) => {
    process.exitCode = parseWebhookCommand(cmd.optsWithGlobals() as ParseWebhookOptions & GlobalOptions);
  });

program.command('parse-record').description('show what Meridian makes of a record fetched from a platform API')
  .requiredOption('--platform <id>', 'source platform id')
  .requiredOption('--body <file>', 'JSON file: one record or a list')
  .action((o) => {
    process.exitCode = parseRecordCommand(o);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof UsageError) fail(err.message, 2);
  process.stderr.write(`meridian: ${(err as Error).message}\n`);
  if (process.env.MERIDIAN_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
}
