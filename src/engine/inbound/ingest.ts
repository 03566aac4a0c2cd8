// Webhook ingest: verify on the raw bytes, parse, commit the delivery, then apply it with its effects
// (appointment, audit, outbox) in one transaction through the inbox (inbox.ts). A verified delivery
// that cannot be read is kept for staff.
import { randomUUID } from 'node:crypto';
import { Gauge } from 'prom-client';
import { ConnectorError, UnreadablePayload, type SourceConnector, type WebhookRequest } from '../../connectors/types.ts';
import type { SourceChange } from '../../domain/types.ts';
import type { Transaction } from 'kysely';
import type { DB } from '../../store/schema.ts';
import { enqueue } from '../../store/outbox.ts';
import { FETCH_CHANGE, type Job, type JobResult } from '../../domain/jobs.ts';
import { applyChange, type ApplyResult } from './apply.ts';
import { ConnectionError, connectionContext, loadConnection, type LoadedConnection } from '../hub/connections.ts';
import { receive, rejected, type Door, type InboundOutcome, type IncomingWebhook } from './pipeline.ts';
import type { Hub } from '../hub/hub.ts';
import { MeridianError } from '../../domain/errors.ts';
import { targetChangesEntry } from './target-changes.ts';
import { Inbox, WAIT_AHEAD, type Applied, type ApplyStored } from './inbox.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function storableBody(raw: Buffer): string {
  try {
    const text = utf8.decode(raw);
    // PostgreSQL text cannot hold a NUL character: such a body is kept as bytes, like invalid UTF-8.
    if (!text.includes('\u0000')) return text;
  } catch {
    // not UTF-8
  }
  return `base64:${raw.toString('base64')}`;
}

export function bodyBytes(stored: string): Buffer {
  return stored.startsWith('base64:') ? Buffer.from(stored.slice(7), 'base64') : Buffer.from(stored, 'utf8');
}

/** A stored delivery as its connector parses it (its URL only mattered to verification). */
function storedRequest(d: { body: string; headers: string }, now: Date): WebhookRequest {
  return { rawBody: bodyBytes(d.body), headers: JSON.parse(d.headers), url: '', now };
}

const KEEP_OUT = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** The headers kept with a stored delivery or lead: every one but credentials. */
export function storableHeaders(h: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(h).filter(([k]) => !KEEP_OUT.has(k))));
}

function summarise(results: ApplyResult[]): { status: string; error?: string } {
  const failed = results.filter((r) => r.outcome === 'failed');
  if (failed.length === 0) return { status: results.some((r) => r.outcome === 'fetch_queued') ? 'fetching' : 'applied' };
  return { status: 'failed', error: failed.map((f) => `${f.error?.code}: ${f.error?.message}`).join('; ') };
}

const KINDS = new Set(['upsert', 'cancel', 'no_show']);
const isText = (v: unknown, max = 10_000) => typeof v === 'string' && v.length <= max;
const optText = (v: unknown, max?: number) => v === undefined || v === null || isText(v, max);

/** Why a parser's output cannot be applied (a wrong type anywhere), or undefined; never quotes a value. */
export function malformedChanges(changes: unknown): string | undefined {
  if (!Array.isArray(changes)) return 'the parser returned no list of changes';
  for (const c of changes as Record<string, unknown>[]) {
    if (!c || typeof c !== 'object') return 'a change is not an object';
    if (!isText(c.externalId, 1000) || !c.externalId) return 'a change has no booking id';
    if (!KINDS.has(c.kind as string)) return 'a change has an unknown kind';
    for (const k of ['occurredAt', 'deliveryId', 'replacesExternalId'] as const) if (!optText(c[k], 1000)) return `a change's ${k} is not text`;
    const a = c.appointment as Record<string, unknown> | undefined;
    if (a === undefined) continue;
    if (!a || typeof a !== 'object') return 'a change\'s appointment is not an object';
    for (const k of ['start', 'end', 'timeZone', 'status', 'practitionerRef', 'serviceRef', 'locationRef', 'notes'] as const) if (!optText(a[k])) return `a change's ${k} is not text`;
    const p = a.patient as Record<string, unknown> | undefined;
    if (p !== undefined && (!p || typeof p !== 'object' || !optText(p.name, 500) || !optText(p.email, 500) || !optText(p.phone, 100) || !optText(p.timeZone, 100))) return 'a change\'s patient fields are not text';
  }
  return undefined;
}

export type { IncomingWebhook } from './pipeline.ts';

const WEBHOOK: Door = { notFound: 'no such webhook endpoint', thing: 'delivery', refusedLog: 'webhook refused', rejectedLog: 'webhook signature rejected' };

/** A booking platform's webhook (or a target's change notice, which arrives at the same URL). */
export async function ingestWebhook(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<InboundOutcome> {
  return receive(hub, connectionId, incoming, WEBHOOK, (conn) => {
    // A target that tells us about edits on its side (a CRM): its records are read back under the two-way policy.
    if (conn.connector.descriptor.role === 'target') return targetChangesEntry(hub, conn);
    if (conn.connector.descriptor.role !== 'source') return undefined;
    const connector = conn.connector as SourceConnector;
    // A polled source has no webhook endpoint: a post to it is the sender's mistake, not ours to retry.
    if (!connector.descriptor.capabilities.webhooks) return rejected('no_webhooks', 'this connection is polled; it receives no webhooks');
    return { verify: (req) => connector.verify(req, conn.secrets, conn.record.config), accept: (req) => storeDelivery(hub, conn, connector, incoming, req) };
  });
}

/** A verified delivery: parse it, commit it, then apply it (or leave it to the inbox under a burst). */
async function storeDelivery(hub: Hub, conn: LoadedConnection, connector: SourceConnector, incoming: IncomingWebhook, req: WebhookRequest): Promise<InboundOutcome> {
  const connectionId = conn.record.id;
  const platform = conn.record.platform;
  let changes: SourceChange[] = [];
  let unreadable: string | undefined;
  try {
    changes = connector.parseWebhook(req);
    unreadable = malformedChanges(changes);
  } catch (err) {
    // A parser that trips over a verified body (a TypeError on an odd type, say) still leaves the delivery
    // kept for staff, not a 500 that the platform retries forever. Only the error's class is kept: the
    // message of a foreign error may quote the body.
    if (err instanceof UnreadablePayload) unreadable = err.message;
    else {
      unreadable = `${platform} could not read this delivery (${(err as Error).name ?? 'error'})`;
      hub.log.error({ connection: connectionId, err: { name: (err as Error).name, stack: (err as Error).stack } }, 'a source parser failed on a verified delivery');
    }
  }
  if (unreadable) changes = [];
  const inbox = inboxOf(hub);
  // Past the bound on unapplied deliveries, refuse before storing anything: the platform keeps the
  // delivery and sends it again, which is better than a backlog that grows without limit.
  if (inbox.full) {
    hub.metrics.webhooks.inc({ platform, outcome: 'busy' });
    hub.log.warn({ connection: connectionId, waiting: inbox.waiting }, 'webhook refused: too many deliveries waiting to be applied');
    return { kind: 'unavailable', reason: 'busy', retryAfter: BUSY_RETRY_SECONDS, message: `${inbox.waiting} deliveries are waiting to be applied; send this one again in ${BUSY_RETRY_SECONDS} s` };
  }
  const rowId = randomUUID();
  const stored = await inbox.store({
    id: rowId, connection_id: connectionId, delivery_id: changes.find((c) => c.deliveryId)?.deliveryId ?? null, received_at: hub.clock.now().toISOString(),
    content_type: incoming.headers['content-type'] ?? null, headers: storableHeaders(incoming.headers),
    body: storableBody(incoming.rawBody), status: unreadable ? 'unreadable' : 'received', error: unreadable ?? null,
    change_count: changes.length, applied_at: null, external_ids: bookingsOf(changes),
  });
  if (!stored) {
    hub.metrics.webhooks.inc({ platform, outcome: 'duplicate' });
    return { kind: 'duplicate', message: 'this delivery was already received' };
  }
  if (unreadable) {
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    hub.log.warn({ connection: connectionId, delivery: rowId }, 'verified delivery could not be read; kept for staff');
    return { kind: 'stored', delivery: rowId, reason: 'unreadable_payload', message: unreadable };
  }
  // The delivery is committed: from here on it cannot be lost. Answer with its outcome when the apply
  // comes at once; under a burst, answer now and let the inbox apply it in turn.
  const queued = inbox.enqueue(rowId, connectionId);
  const applied = queued.ahead < WAIT_AHEAD ? await queued.result() : undefined;
  if (applied?.applied) {
    hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
    return {
      kind: 'accepted',
      details: {
        delivery: rowId,
        changes: applied.results.map((r) => ({ outcome: r.outcome, appointmentId: r.appointmentId, conflicts: r.conflicts?.length ? r.conflicts : undefined, error: r.error })),
      },
    };
  }
  if (applied?.reason === 'failed') {
    hub.metrics.webhooks.inc({ platform, outcome: 'failed' });
    return { kind: 'stored', delivery: rowId, reason: 'apply_failed', message: 'the delivery is kept but could not be applied; staff can replay it' };
  }
  hub.metrics.webhooks.inc({ platform, outcome: 'queued' });
  return { kind: 'queued', delivery: rowId, message: 'the delivery is stored and will be applied shortly' };
}

const BUSY_RETRY_SECONDS = 30;

/** Run parsed changes of a stored delivery and record the delivery's outcome, inside `trx`. */
async function applyParsed(trx: Transaction<DB>, hub: Hub, conn: LoadedConnection, rowId: string, changes: SourceChange[], actor: string, meta: Record<string, unknown>): Promise<ApplyResult[]> {
  const at = hub.clock.now().toISOString();
  const results: ApplyResult[] = [];
  for (const c of changes) {
    if (c.needsFetch) {
      await enqueue(trx, [{ kind: FETCH_CHANGE, payload: { connectionId: conn.record.id, deliveryRowId: rowId, change: c }, maxAttempts: 10 }], at);
      results.push({ outcome: 'fetch_queued' });
    } else {
      results.push(await applyChange(trx, hub, conn.record, c, actor, { delivery: rowId, ...meta }));
    }
  }
  const s = summarise(results);
  await trx.updateTable('delivery').set({ status: s.status, error: s.error ?? null, applied_at: at }).where('id', '=', rowId).execute();
  return results;
}

/**
 * The inbox's apply of one stored delivery: parsed again from the stored bytes (the same path a
 * delivery left by a crashed process takes) and applied in one transaction with the row's new state.
 * A row no longer 'received', or locked by another node applying it, is left alone.
 */
const applyStored: ApplyStored<ApplyResult> = {
  async prepare(hub, rowId, connectionId) {
    let conn: LoadedConnection;
    try {
      conn = await loadConnection(hub, connectionId);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      await hub.store.db.updateTable('delivery').set({ status: 'failed', error: `its connection is gone: ${err.message}` }).where('id', '=', rowId).where('status', '=', 'received').execute();
      return { applied: false, reason: 'gone', error: err.message };
    }
    const connector = conn.connector as SourceConnector;
    return async (trx): Promise<Applied<ApplyResult>> => {
      let q = trx.selectFrom('delivery').select(['headers', 'body', 'received_at']).where('id', '=', rowId).where('status', '=', 'received');
      if (hub.store.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const d = await q.executeTakeFirst();
      if (!d) return { applied: false, reason: 'elsewhere' };
      let changes: SourceChange[] | undefined;
      let unreadable: string | undefined;
      try {
        // Read as at its arrival: a platform that dates its changes by arrival orders them by that.
        changes = connector.parseWebhook(storedRequest(d, new Date(d.received_at)));
        unreadable = malformedChanges(changes);
      } catch (err) {
        unreadable = err instanceof UnreadablePayload ? err.message : `could not be read again (${(err as Error).name ?? 'error'})`;
      }
      if (unreadable || !changes) {
        await trx.updateTable('delivery').set({ status: 'unreadable', error: unreadable ?? 'unreadable' }).where('id', '=', rowId).execute();
        return { applied: false, reason: 'failed', error: unreadable };
      }
      const results = await applyParsed(trx, hub, conn, rowId, changes, `source:${connectionId}`, {});
      return { applied: true, status: summarise(results).status, results };
    };
  },
  applied(hub, out) {
    if (out.applied) for (const r of out.results) hub.metrics.changes.inc({ outcome: r.outcome });
  },
};

/**
 * Before a staff edit of a booking from `connectionId`: apply every stored, not yet applied delivery
 * about that booking first (under a burst some wait in the inbox). In the order things reached
 * Meridian, those came before the edit; applied after it, they could undo it. Usually there are none,
 * and this is one indexed query.
 */
export async function settleDeliveriesFor(hub: Hub, connectionId: string, externalId: string): Promise<void> {
  const rows = await hub.store.db.selectFrom('delivery').select(['id', 'external_ids', 'headers', 'body', 'received_at'])
    .where('status', '=', 'received').where('connection_id', '=', connectionId)
    // (A % or _ in the id only widens the LIKE; the exact test follows.)
    .where((eb) => eb.or([eb('external_ids', 'like', `%|${externalId}|%`), eb('external_ids', 'is', null)]))
    .orderBy('received_at').execute();
  if (rows.length === 0) return;
  let connector: SourceConnector;
  try {
    connector = (await loadConnection(hub, connectionId)).connector as SourceConnector;
  } catch (err) {
    // A connection that is gone has nothing that could still be applied; anything else (the store
    // failing) must reach the edit, which then is not made.
    if (err instanceof ConnectionError) return;
    throw err;
  }
  // Rows stored before the bookings were recorded beside them are read to find out.
  const about = rows.filter((d) => {
    if (d.external_ids) return d.external_ids.includes(`|${externalId}|`);
    try {
      return connector.parseWebhook(storedRequest(d, new Date(d.received_at)))
        .some((c) => c.externalId === externalId || c.replacesExternalId === externalId);
    } catch {
      return false;
    }
  });
  if (about.length === 0) return;
  const outcomes = await inboxOf(hub).expedite(about.map((d) => ({ id: d.id, connectionId })));
  // Not applied in time (the store is slow or failing): the edit must wait, not overtake them.
  if (outcomes.some((o) => o === undefined)) throw new MeridianError('unavailable', 'deliveries about this booking are still waiting to be applied; try again in a moment');
}

/** `|id|id|` of the bookings `changes` are about (those they replace included). */
function bookingsOf(changes: SourceChange[]): string | null {
  const ids = new Set(changes.flatMap((c) => [c.externalId, c.replacesExternalId].filter((x): x is string => Boolean(x))));
  return ids.size ? `|${[...ids].join('|')}|` : null;
}

const inboxes = new WeakMap<Hub, Inbox<ApplyResult>>();

/** The hub's webhook inbox (made on first use). `serve` starts its scan for deliveries left unapplied. */
export function inboxOf(hub: Hub): Inbox<ApplyResult> {
  let i = inboxes.get(hub);
  if (!i) {
    const inbox = new Inbox(hub, applyStored);
    inboxes.set(hub, (i = inbox));
    new Gauge({ name: 'meridian_inbox_waiting', help: 'Webhook deliveries stored and not yet applied (this process)', registers: [hub.metrics.registry], collect() { this.set(inbox.waiting); } });
  }
  return i;
}

/** Apply changes found by a poll or a fetch, each in its own transaction. */
export async function applyChanges(hub: Hub, conn: LoadedConnection, changes: SourceChange[], actor: string, meta: Record<string, unknown> = {}): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (const c of changes) {
    out.push(await hub.store.db.transaction().execute((trx) => applyChange(trx, hub, conn.record, c, actor, meta)));
  }
  hub.onJobs();
  return out;
}

export async function runFetchJob(hub: Hub, job: Job<typeof FETCH_CHANGE>): Promise<JobResult> {
  const { connectionId, deliveryRowId, change } = job.payload;
  const conn = await loadConnection(hub, connectionId);
  const connector = conn.connector as SourceConnector;
  if (!connector.fetch) return { ok: false, failure: { class: 'permanent', message: `${connector.descriptor.displayName} cannot fetch bookings` } };
  let full: SourceChange;
  try {
    full = await connector.fetch(change, connectionContext(hub, conn));
  } catch (err) {
    if (err instanceof ConnectorError) return { ok: false, failure: err.failure, connectionId };
    return { ok: false, failure: { class: 'transient', message: (err as Error).message }, connectionId };
  }
  const at = hub.clock.now().toISOString();
  const result = await hub.store.db.transaction().execute(async (trx) => {
    const r = await applyChange(trx, hub, conn.record, { ...full, needsFetch: false }, `source:${connectionId}`, { delivery: deliveryRowId, fetched: true });
    if (deliveryRowId) {
      const s = summarise([r]);
      await trx.updateTable('delivery').set({ status: s.status, error: s.error ?? null, applied_at: at }).where('id', '=', deliveryRowId).execute();
    }
    return r;
  });
  hub.onJobs();
  return { ok: true, note: result.outcome };
}

/** Run a stored delivery through parsing and apply again (after staff fixed a mapping, say). */
export async function replayDelivery(hub: Hub, deliveryRowId: string): Promise<InboundOutcome> {
  const d = await hub.store.db.selectFrom('delivery').selectAll().where('id', '=', deliveryRowId).executeTakeFirst();
  if (!d) return rejected('not_found', `no delivery ${deliveryRowId}`);
  const conn = await loadConnection(hub, d.connection_id);
  const connector = conn.connector as SourceConnector;
  const req = storedRequest(d, hub.clock.now());
  let changes: SourceChange[];
  try {
    changes = connector.parseWebhook(req);
  } catch (err) {
    return { kind: 'unprocessable', reason: 'unreadable_payload', message: (err as Error).message };
  }
  const results = await hub.store.db.transaction().execute((trx) => applyParsed(trx, hub, conn, deliveryRowId, changes, 'staff:replay', { replay: true }));
  hub.onJobs();
  return { kind: 'replayed', changes: results };
}
