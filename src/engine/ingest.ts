// Webhook ingest: verify on the raw bytes, parse, and commit the delivery together with its effects
// (appointment, audit, outbox) in one transaction. A verified delivery that cannot be read is kept.
import { randomUUID } from 'node:crypto';
import { ConnectionMisconfigured, ConnectorError, UnreadablePayload, type SourceConnector, type WebhookRequest } from '../connectors/types.ts';
import type { SourceChange } from '../domain/types.ts';
import { enqueue } from '../store/outbox.ts';
import type { Job } from '../store/outbox.ts';
import { applyChange, type ApplyResult } from './apply.ts';
import { ConnectionError, connectionContext, loadConnection, type LoadedConnection } from './connections.ts';
import type { Hub } from './hub.ts';
import type { JobResult } from './worker.ts';
import { ingestTargetChanges } from './drift.ts';

export const FETCH_CHANGE = 'source.fetch';

export interface WebhookOutcome {
  status: number;
  body: Record<string, unknown>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function storableBody(raw: Buffer): string {
  try {
    return utf8.decode(raw);
  } catch {
    return `base64:${raw.toString('base64')}`;
  }
}

export function bodyBytes(stored: string): Buffer {
  return stored.startsWith('base64:') ? Buffer.from(stored.slice(7), 'base64') : Buffer.from(stored, 'utf8');
}

const KEEP_OUT = new Set(['authorization', 'cookie', 'proxy-authorization']);

function storableHeaders(h: Record<string, string>): string {
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

export interface IncomingWebhook {
  rawBody: Buffer;
  headers: Record<string, string>;
  url: string;
}

export async function ingestWebhook(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<WebhookOutcome> {
  let conn: LoadedConnection;
  try {
    conn = await loadConnection(hub, connectionId);
  } catch (err) {
    if (err instanceof ConnectionError) return { status: 404, body: { code: 'unknown_connection', message: 'no such webhook endpoint' } };
    throw err;
  }
  // A target that tells us about edits on its side (a CRM): its records are read back under the two-way policy.
  if (conn.connector.descriptor.role === 'target') return ingestTargetChanges(hub, conn, incoming);
  if (conn.connector.descriptor.role !== 'source') {
    return { status: 404, body: { code: 'unknown_connection', message: 'no such webhook endpoint' } };
  }
  const platform = conn.record.platform;
  const connector = conn.connector as SourceConnector;
  // A polled source has no webhook endpoint: a post to it is the sender's mistake (4xx), not ours to retry.
  if (!connector.descriptor.capabilities.webhooks) {
    return { status: 404, body: { code: 'no_webhooks', message: 'this connection is polled; it receives no webhooks' } };
  }
  const req: WebhookRequest = { rawBody: incoming.rawBody, headers: incoming.headers, url: incoming.url, now: hub.clock.now() };
  let verified;
  try {
    verified = connector.verify(req, conn.secrets, conn.record.config);
  } catch (err) {
    if (err instanceof ConnectionMisconfigured) {
      hub.metrics.webhooks.inc({ platform, outcome: 'misconfigured' });
      hub.log.error({ connection: connectionId }, `webhook refused: ${err.message}`);
      return { status: 503, body: { code: 'connection_misconfigured', message: 'this connection is not fully configured; the delivery was not accepted' } };
    }
    throw err;
  }
  if (!verified.ok) {
    hub.metrics.webhooks.inc({ platform, outcome: 'rejected' });
    hub.log.warn({ connection: connectionId, reason: verified.reason }, 'webhook signature rejected');
    return { status: 401, body: { code: 'bad_signature', message: verified.reason } };
  }

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
  const at = hub.clock.now().toISOString();
  const rowId = randomUUID();
  const deliveryId = changes.find((c) => c.deliveryId)?.deliveryId ?? null;
  const outcome = await hub.commits.run(async (trx) => {
    const inserted = await trx
      .insertInto('delivery')
      .values({
        id: rowId, connection_id: connectionId, delivery_id: deliveryId, received_at: at,
        content_type: incoming.headers['content-type'] ?? null, headers: storableHeaders(incoming.headers),
        body: storableBody(incoming.rawBody), status: unreadable ? 'unreadable' : 'received', error: unreadable ?? null,
        change_count: changes.length, applied_at: null,
      })
      .onConflict((oc) => oc.columns(['connection_id', 'delivery_id']).doNothing())
      .returning('id')
      .execute();
    if (inserted.length === 0) return { duplicate: true as const };
    if (unreadable) return { unreadable };
    const results: ApplyResult[] = [];
    for (const c of changes) {
      if (c.needsFetch) {
        await enqueue(trx, [{ kind: FETCH_CHANGE, payload: { connectionId, deliveryRowId: rowId, change: c }, maxAttempts: 10 }], at);
        results.push({ outcome: 'fetch_queued' });
      } else {
        results.push(await applyChange(trx, hub, conn.record, c, `source:${connectionId}`, { delivery: rowId }));
      }
    }
    const s = summarise(results);
    await trx.updateTable('delivery').set({ status: s.status, error: s.error ?? null, applied_at: at }).where('id', '=', rowId).execute();
    return { results };
  });
  if ('duplicate' in outcome) {
    hub.metrics.webhooks.inc({ platform, outcome: 'duplicate' });
    return { status: 200, body: { status: 'duplicate', message: 'this delivery was already received' } };
  }
  if ('unreadable' in outcome) {
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    hub.log.warn({ connection: connectionId, delivery: rowId }, 'verified delivery could not be read; kept for staff');
    return { status: 202, body: { status: 'stored', delivery: rowId, code: 'unreadable_payload', message: outcome.unreadable } };
  }
  hub.onJobs();
  for (const r of outcome.results) hub.metrics.changes.inc({ outcome: r.outcome });
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  return {
    status: 200,
    body: {
      status: 'accepted',
      delivery: rowId,
      changes: outcome.results.map((r) => ({ outcome: r.outcome, appointmentId: r.appointmentId, conflicts: r.conflicts?.length ? r.conflicts : undefined, error: r.error })),
    },
  };
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

export async function runFetchJob(hub: Hub, job: Job): Promise<JobResult> {
  const { connectionId, deliveryRowId, change } = job.payload as { connectionId: string; deliveryRowId?: string; change: SourceChange };
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
export async function replayDelivery(hub: Hub, deliveryRowId: string): Promise<WebhookOutcome> {
  const d = await hub.store.db.selectFrom('delivery').selectAll().where('id', '=', deliveryRowId).executeTakeFirst();
  if (!d) return { status: 404, body: { code: 'not_found', message: `no delivery ${deliveryRowId}` } };
  const conn = await loadConnection(hub, d.connection_id);
  const connector = conn.connector as SourceConnector;
  const req: WebhookRequest = { rawBody: bodyBytes(d.body), headers: JSON.parse(d.headers), url: '', now: hub.clock.now() };
  let changes: SourceChange[];
  try {
    changes = connector.parseWebhook(req);
  } catch (err) {
    return { status: 422, body: { code: 'unreadable_payload', message: (err as Error).message } };
  }
  const at = hub.clock.now().toISOString();
  const results = await hub.store.db.transaction().execute(async (trx) => {
    const rs: ApplyResult[] = [];
    for (const c of changes) {
      if (c.needsFetch) {
        await enqueue(trx, [{ kind: FETCH_CHANGE, payload: { connectionId: conn.record.id, deliveryRowId, change: c } }], at);
        rs.push({ outcome: 'fetch_queued' });
      } else rs.push(await applyChange(trx, hub, conn.record, c, 'staff:replay', { delivery: deliveryRowId, replay: true }));
    }
    const s = summarise(rs);
    await trx.updateTable('delivery').set({ status: s.status, error: s.error ?? null, applied_at: at }).where('id', '=', deliveryRowId).execute();
    return rs;
  });
  hub.onJobs();
  return { status: 200, body: { status: 'replayed', changes: results } };
}
