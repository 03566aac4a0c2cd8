// Outbound webhooks to the clinic's own tools. A subscription is a connection whose notifier sends
// webhooks (`webhook-out`), configured with a `url`, the event `types` it wants and `includePatient`.
// Each matching event becomes one outbound_delivery row plus one job, written in the same transaction as
// the change that caused it; the job sends it (the worker retries with backoff), the row logs status,
// attempts and the receiver's answer code (never a body), and a replay sends it again under the same id.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { getNotifier } from '../../connectors/registry.ts';
import type { NotifierConnector, WriteOutcome } from '../../connectors/types.ts';
import type { Appointment } from '../../domain/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { WEBHOOK_DELIVER, type Job, type JobResult, type NewJob } from '../../domain/jobs.ts';
import { enqueue } from '../../store/outbox.ts';
import { INACTIVE, getAppointment, type Exec } from '../../store/repo.ts';
import type { DB, OutboundDeliveryTable } from '../../store/schema.ts';
import { cached, type TtlCache } from '../hub/cache.ts';
import { ConnectionError, connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';

export const OUTBOUND_EVENTS = [
  'appointment.created', 'appointment.updated', 'appointment.cancelled', 'appointment.no_show', 'appointment.completed', 'lead.received',
] as const;
export type OutboundEvent = (typeof OUTBOUND_EVENTS)[number];

/** Retries span hours (backoff capped at 15 minutes), as the spec's multi-day schedule suggests; then staff replay. */
const MAX_ATTEMPTS = 20;

interface Subscription {
  connectionId: string;
  events: string[];
}

/** A subscription's event types (`config.events`); validated by `meridian validate`. */
function eventsOf(config: Record<string, unknown>): string[] {
  return Array.isArray(config.events) ? config.events.filter((e): e is string => typeof e === 'string') : [];
}

async function subscriptions(db: Exec, clinicId: string, cache?: TtlCache): Promise<Subscription[]> {
  return cached(cache, `webhook-subscriptions:${clinicId}`, async () => {
    const rows = await db.selectFrom('connection').select(['id', 'platform', 'config'])
      .where('clinic_id', '=', clinicId).where('status', 'not in', [...INACTIVE]).orderBy('id').execute();
    return rows.filter((r) => getNotifier(r.platform)?.descriptor.capabilities.webhooks)
      .map((r) => ({ connectionId: r.id, events: eventsOf(JSON.parse(r.config)) }));
  });
}

/** What happened to the appointment, in the outbound vocabulary (a rebooking is an update). */
export function eventTypeFor(next: Appointment, before: Appointment | undefined): OutboundEvent {
  if (!before) return 'appointment.created';
  if (before.status !== next.status) {
    if (next.status === 'cancelled') return 'appointment.cancelled';
    if (next.status === 'no_show') return 'appointment.no_show';
    if (next.status === 'completed') return 'appointment.completed';
  }
  return 'appointment.updated';
}

/** The event's data: ids, times and statuses; no patient data (that is added at send time, when asked for). */
function appointmentData(a: Appointment, before: Appointment | undefined): Record<string, unknown> {
  return {
    id: a.id, status: a.status, start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId,
    locationId: a.locationId, serviceId: a.serviceId, roomId: a.roomId, revision: a.revision,
    source: { platform: a.origin.platform, connectionId: a.origin.connectionId, externalId: a.origin.externalId },
    ...(before ? { previous: { status: before.status, start: before.start, end: before.end, practitionerId: before.practitionerId } } : {}),
  };
}

async function queueEvent(trx: Exec, clinicId: string, type: OutboundEvent, entity: { type: string; id: string }, data: Record<string, unknown>, at: string, cache?: TtlCache): Promise<NewJob[]> {
  const jobs: NewJob[] = [];
  for (const s of await subscriptions(trx, clinicId, cache)) {
    if (!s.events.includes(type)) continue;
    // The Standard Webhooks id: unique per (subscription, event), kept across retries and replays; no ".".
    const id = `msg_${randomUUID().replace(/-/g, '')}`;
    await trx.insertInto('outbound_delivery').values({
      id, connection_id: s.connectionId, event_type: type, entity_type: entity.type, entity_id: entity.id, occurred_at: at,
      data: JSON.stringify(data), status: 'pending', attempts: 0, response_code: null, last_error: null, created_at: at, updated_at: at, delivered_at: null,
    }).execute();
    jobs.push(deliverJob(id));
  }
  return jobs;
}

function deliverJob(deliveryId: string): NewJob {
  return { kind: WEBHOOK_DELIVER, payload: { deliveryId }, dedupeKey: `${WEBHOOK_DELIVER}:${deliveryId}`, maxAttempts: MAX_ATTEMPTS };
}

/** Deliveries (rows written in `trx`) and their jobs for a material change of an appointment. */
export async function webhookJobsFor(trx: Exec, next: Appointment, before: Appointment | undefined, at: string, cache?: TtlCache): Promise<NewJob[]> {
  return queueEvent(trx, next.clinicId, eventTypeFor(next, before), { type: 'appointment', id: next.id }, appointmentData(next, before), at, cache);
}

/** Deliveries and jobs for a lead just received (for the lead-form engine to call in its transaction). */
export async function leadWebhookJobs(trx: Exec, lead: { id: string; clinicId: string; connectionId: string; platform: string; submittedAt: string; serviceId?: string; practitionerId?: string }, at: string, cache?: TtlCache): Promise<NewJob[]> {
  const data = { id: lead.id, submittedAt: lead.submittedAt, serviceId: lead.serviceId, practitionerId: lead.practitionerId, source: { platform: lead.platform, connectionId: lead.connectionId } };
  return queueEvent(trx, lead.clinicId, 'lead.received', { type: 'lead', id: lead.id }, data, at, cache);
}

/** Contact data for a subscription that asked for it, read now (so a correction or an erasure is honoured). */
async function patientOf(hub: Hub, row: OutboundDeliveryTable): Promise<Record<string, unknown> | undefined> {
  if (row.entity_type === 'appointment') return (await getAppointment(hub.store.db, row.entity_id))?.patient as Record<string, unknown> | undefined;
  const l = await hub.store.db.selectFrom('lead').select(['patient_name', 'patient_email', 'patient_phone']).where('id', '=', row.entity_id).executeTakeFirst();
  return l && { name: l.patient_name, email: l.patient_email ?? undefined, phone: l.patient_phone ?? undefined };
}

async function settle(hub: Hub, row: OutboundDeliveryTable, job: Job, r: WriteOutcome<{ status?: number }>): Promise<void> {
  const at = hub.clock.now().toISOString();
  const f = r.ok ? undefined : r.failure;
  // The same verdict the worker reaches: permanent, or out of (counted) attempts, is dead.
  const dead = f !== undefined && (f.class === 'permanent' || (f.class !== 'throttled' && f.class !== 'auth' && job.attempts >= job.maxAttempts));
  const status = r.ok ? 'delivered' : dead ? 'failed' : 'retrying';
  await hub.store.db.transaction().execute(async (trx: Transaction<DB>) => {
    await trx.updateTable('outbound_delivery').set({
      status, attempts: row.attempts + 1, response_code: r.ok ? (r.value.status ?? null) : (f?.status ?? null),
      last_error: f ? `${f.class}: ${f.message}`.slice(0, 500) : null, updated_at: at, ...(r.ok ? { delivered_at: at } : {}),
    }).where('id', '=', row.id).execute();
    if (status === 'retrying') return;
    await appendAudit(trx, hub.store.dialect, [{
      at, actor: `worker:${hub.nodeId}`, action: r.ok ? 'webhook.delivered' : 'webhook.failed', entityType: row.entity_type, entityId: row.entity_id,
      meta: { delivery: row.id, connection: row.connection_id, event: row.event_type, ...(r.ok ? { status: r.value.status } : { reason: f?.message }) },
    }]);
  });
}

/** Send one delivery (job handler). */
export async function runWebhookJob(hub: Hub, job: Job<typeof WEBHOOK_DELIVER>): Promise<JobResult> {
  const { deliveryId } = job.payload;
  const row = await hub.store.db.selectFrom('outbound_delivery').selectAll().where('id', '=', deliveryId).executeTakeFirst();
  if (!row) return { ok: true, note: 'no such delivery' };
  if (row.status === 'delivered') return { ok: true, note: 'already delivered' };
  let outcome: WriteOutcome<{ status?: number }>;
  try {
    const conn = await loadConnection(hub, row.connection_id);
    const notifier = conn.connector as NotifierConnector;
    if (INACTIVE.has(conn.record.status) || !notifier.descriptor.capabilities?.webhooks) {
      outcome = { ok: false, failure: { class: 'permanent', message: 'the subscription is disabled or no longer sends webhooks' } };
    } else {
      const data = JSON.parse(row.data) as Record<string, unknown>;
      if (conn.record.config.includePatient === true) data.patient = await patientOf(hub, row);
      outcome = await notifier.client(connectionContext(hub, conn)).send({
        key: row.id, to: {}, text: '', event: { type: row.event_type, payload: { timestamp: row.occurred_at, data } },
      });
    }
  } catch (err) {
    if (!(err instanceof ConnectionError)) throw err;
    outcome = { ok: false, failure: { class: 'permanent', message: 'the subscription no longer exists' } };
  }
  await settle(hub, row, job, outcome);
  return outcome.ok ? { ok: true, note: `HTTP ${outcome.value.status}` } : { ok: false, failure: outcome.failure };
}

export interface OutboundDeliveryView {
  id: string; connectionId: string; eventType: string; entityType: string; entityId: string; status: string;
  attempts: number; responseCode?: number; lastError?: string; createdAt: string; updatedAt: string; deliveredAt?: string;
}

function view(r: OutboundDeliveryTable): OutboundDeliveryView {
  return {
    id: r.id, connectionId: r.connection_id, eventType: r.event_type, entityType: r.entity_type, entityId: r.entity_id, status: r.status,
    attempts: r.attempts, responseCode: r.response_code ?? undefined, lastError: r.last_error ?? undefined,
    createdAt: r.created_at, updatedAt: r.updated_at, deliveredAt: r.delivered_at ?? undefined,
  };
}

/** The delivery log, newest first (no bodies). */
export async function listOutboundDeliveries(db: Exec, q: { status?: string; connection?: string; entity?: string; limit?: number } = {}): Promise<OutboundDeliveryView[]> {
  let s = db.selectFrom('outbound_delivery').selectAll();
  if (q.status) s = s.where('status', '=', q.status);
  if (q.connection) s = s.where('connection_id', '=', q.connection);
  if (q.entity) s = s.where('entity_id', '=', q.entity);
  return (await s.orderBy('created_at', 'desc').orderBy('id').limit(q.limit ?? 100).execute()).map(view);
}

/** Send a delivery again (same webhook-id, a fresh timestamp and signature); undefined when there is no such delivery. */
export async function replayOutboundDelivery(hub: Hub, id: string, actor: string): Promise<OutboundDeliveryView | undefined> {
  const at = hub.clock.now().toISOString();
  const row = await hub.store.db.transaction().execute(async (trx) => {
    const r = await trx.selectFrom('outbound_delivery').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    await trx.updateTable('outbound_delivery').set({ status: 'pending', last_error: null, updated_at: at }).where('id', '=', id).execute();
    await enqueue(trx, [deliverJob(id)], at);
    await appendAudit(trx, hub.store.dialect, [{ at, actor, action: 'webhook.replayed', entityType: r.entity_type, entityId: r.entity_id, meta: { delivery: id, connection: r.connection_id, event: r.event_type } }]);
    return { ...r, status: 'pending', last_error: null, updated_at: at };
  });
  if (row) hub.onJobs();
  return row && view(row);
}
