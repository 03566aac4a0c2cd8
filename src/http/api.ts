// REST API v1. Each route is declared once in ROUTES (method, path, scope, schemas, handler); the
// router and the OpenAPI document are both generated from that table, so they cannot disagree.
import { sql } from 'kysely';
import { z } from 'zod';
import { allDescriptors } from '../connectors/registry.ts';
import { APPOINTMENT_STATUSES, PRIVACY_LEVELS, type Appointment } from '../domain/types.ts';
import { isIanaZone } from '../domain/time.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { staffCancel, staffCreate, staffReschedule, staffSetStatus } from '../engine/edits/staff.ts';
import { listOutboundDeliveries, replayOutboundDelivery } from '../engine/effects/webhooks-out.ts';
import { LEAD_STATUSES, listLeads, type LeadStatus } from '../engine/inbound/leads.ts';
import { confirmLead, declineLead, type ConfirmInput } from '../engine/edits/leads.ts';
import { listFeeds, rotateFeed } from '../engine/effects/feeds.ts';
import { saveSecrets, setConnectionStatus } from '../engine/hub/connections.ts';
import { type Scope } from '../engine/hub/apikeys.ts';
import { verifyAudit } from '../store/audit.ts';
import { enqueue, jobCounts, listJobs, retryJob } from '../store/outbox.ts';
import { sweepJob } from '../engine/sync/sweep.ts';
import { decideHeld, listHeld, pollJob } from '../engine/sync/poll.ts';
import { getAppointment, getConnectionRow, getPractitioner, listAppointments, listConnections, listPractitioners, toConnection } from '../store/repo.ts';
import { appendAudit } from '../store/audit.ts';
import { erasePatient } from '../engine/appointments/erase.ts';
import { HttpError } from './errors.ts';
import { replayAnswer } from './inbound.ts';
import { contactRef, listNotifications, listOptOuts, optIn, optOut } from '../engine/effects/notify.ts';
import { createUser, listUsers, ROLES, setUserDisabled, type Principal, type Role } from './auth.ts';

const instant = z.string().refine((s) => Number.isFinite(Date.parse(s)) && /T.*(Z|[+-]\d\d:?\d\d)$/.test(s), 'an ISO-8601 instant with Z or an offset');
const zone = z.string().refine(isIanaZone, 'an IANA time zone');
const idParam = z.object({ id: z.string().min(1).max(200) });

export interface RouteContext {
  hub: Hub;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  actor: string;
  /** Who is asking (API key or staff session). */
  principal?: Principal;
}

/** A handler's answer sent as a file download instead of JSON. */
export class Download {
  constructor(public contentType: string, public filename: string, public body: string) {}
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify-style path under /api/v1 (`:id` parameters). */
  path: string;
  scope: Scope;
  summary: string;
  tag: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Status for success (200 unless said). */
  status?: number;
  handler(ctx: RouteContext): Promise<unknown>;
}

const appointmentQuery = z.object({
  from: instant.optional(),
  to: instant.optional(),
  practitioner: z.string().optional(),
  location: z.string().optional(),
  status: z.string().optional().describe('comma-separated statuses'),
  diverged: z.enum(['true', 'false']).optional().describe('true: only appointments whose booking platform still shows something else (a staff edit it could not take)'),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

const patient = z.object({
  name: z.string().min(1).max(200),
  email: z.email().optional(),
  phone: z.string().max(40).optional(),
  timeZone: zone.optional(),
}).strict();

const createBody = z.object({
  practitionerId: z.string().min(1),
  start: instant,
  end: instant,
  timeZone: zone.optional(),
  patient,
  serviceId: z.string().optional(),
  locationId: z.string().optional(),
  roomId: z.string().optional(),
  notes: z.string().max(4000).optional(),
  status: z.enum(['booked', 'requested']).optional(),
  override: z.boolean().optional().describe('book even though it double-books'),
}).strict();

const rescheduleBody = z.object({
  start: instant,
  end: instant,
  practitionerId: z.string().optional(),
  roomId: z.string().optional(),
  override: z.boolean().optional(),
}).strict();

const targetBinding = z.object({ connection: z.string().min(1), calendar: z.string().optional() }).strict();

const auditQuery = z.object({
  entity: z.string().optional().describe('an appointment (or other entity) id'),
  action: z.string().optional().describe('an action; `appointment.*` for every action starting so'),
  actor: z.string().optional().describe('an actor (`user:…`, `api:…`, `worker:…`); a trailing * matches a prefix'),
  patient: z.string().min(2).max(200).optional().describe('part of a patient\'s name or e-mail: entries about their appointments'),
  from: instant.optional(), to: instant.optional(),
});
type AuditFilter = z.infer<typeof auditQuery>;
const AUDIT_EXPORT_MAX = 200_000;

async function appointmentOr404(hub: Hub, id: string): Promise<Appointment> {
  const a = await getAppointment(hub.store.db, id);
  if (!a) throw new HttpError('not_found', `no appointment ${id}`);
  return a;
}

function connectionView(c: ReturnType<typeof toConnection>) {
  const { secretRefs, hasStoredSecrets, ...rest } = c;
  return { ...rest, secrets: { fromEnvironment: Object.keys(secretRefs), stored: hasStoredSecrets } };
}

export const ROUTES: Route[] = [
  {
    method: 'GET', path: '/appointments', scope: 'read', tag: 'appointments', summary: 'List appointments overlapping a time range',
    query: appointmentQuery,
    async handler({ hub, query }) {
      const q = query as z.infer<typeof appointmentQuery>;
      const status = q.status?.split(',').filter(Boolean);
      const bad = status?.filter((s) => !(APPOINTMENT_STATUSES as readonly string[]).includes(s));
      if (bad?.length) throw new HttpError('invalid_request', `unknown status ${bad.join(', ')}`);
      const items = await listAppointments(hub.store.db, {
        from: q.from && new Date(q.from).toISOString(), to: q.to && new Date(q.to).toISOString(),
        practitionerId: q.practitioner, locationId: q.location, status: status as Appointment['status'][] | undefined, diverged: q.diverged === 'true', limit: q.limit,
      });
      return { items };
    },
  },
  {
    method: 'GET', path: '/appointments/:id', scope: 'read', tag: 'appointments', summary: 'One appointment', params: idParam,
    handler: ({ hub, params }) => appointmentOr404(hub, params.id),
  },
  {
    method: 'POST', path: '/appointments', scope: 'write', tag: 'appointments', status: 201,
    summary: 'Book an appointment (front desk). 409 double_booking with the conflicting appointments unless `override`.',
    body: createBody,
    handler: ({ hub, body, actor }) => staffCreate(hub, body as z.infer<typeof createBody>, actor),
  },
  {
    method: 'POST', path: '/appointments/:id/reschedule', scope: 'write', tag: 'appointments', params: idParam, body: rescheduleBody,
    summary: 'Move an appointment (and optionally reassign it). 409 double_booking unless `override`.',
    handler: ({ hub, params, body, actor }) => staffReschedule(hub, params.id, body as z.infer<typeof rescheduleBody>, actor),
  },
  {
    method: 'POST', path: '/appointments/:id/cancel', scope: 'write', tag: 'appointments', params: idParam,
    body: z.object({ reason: z.string().max(500).optional() }).strict(), summary: 'Cancel an appointment',
    handler: ({ hub, params, body, actor }) => staffCancel(hub, params.id, (body as { reason?: string } | undefined)?.reason, actor),
  },
  {
    method: 'POST', path: '/appointments/:id/status', scope: 'write', tag: 'appointments', params: idParam,
    body: z.object({ status: z.enum(APPOINTMENT_STATUSES), override: z.boolean().optional() }).strict(),
    summary: 'Set the status (no_show, completed, booked, …)',
    handler: ({ hub, params, body, actor }) => {
      const b = body as { status: Appointment['status']; override?: boolean };
      return staffSetStatus(hub, params.id, b.status, actor, b.override);
    },
  },
  {
    method: 'GET', path: '/appointments/:id/audit', scope: 'read', tag: 'audit', params: idParam, summary: 'The audit trail of one appointment',
    async handler({ hub, params }) {
      await appointmentOr404(hub, params.id);
      const rows = await hub.store.db.selectFrom('audit').selectAll().where('entity_id', '=', params.id).orderBy('seq').execute();
      return { items: rows.map(auditRow) };
    },
  },
  {
    method: 'GET', path: '/practitioners', scope: 'read', tag: 'setup', summary: 'Practitioners',
    handler: async ({ hub }) => ({ items: await listPractitioners(hub.store.db) }),
  },
  {
    method: 'PATCH', path: '/practitioners/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a practitioner (name, e-mail, zone, locations, the targets their appointments are written to, active)',
    body: z.object({
      name: z.string().min(1).optional(), email: z.email().nullable().optional(), timeZone: zone.nullable().optional(),
      locations: z.array(z.string()).optional(), targets: z.array(targetBinding).optional(), active: z.boolean().optional(),
    }).strict(),
    async handler({ hub, params, body, actor }) {
      const before = await getPractitioner(hub.store.db, params.id);
      if (!before) throw new HttpError('not_found', `no practitioner ${params.id}`);
      const b = body as { name?: string; email?: string | null; timeZone?: string | null; locations?: string[]; targets?: { connection: string }[]; active?: boolean };
      for (const t of b.targets ?? []) {
        const row = await getConnectionRow(hub.store.db, t.connection);
        if (!row || allDescriptors().find((d) => d.id === row.platform)?.role !== 'target') throw new HttpError('unknown_target', `no target connection ${t.connection}`);
      }
      await hub.store.db.transaction().execute(async (trx) => {
        await trx.updateTable('practitioner').set({
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.email !== undefined ? { email: b.email?.toLowerCase() ?? null } : {}),
          ...(b.timeZone !== undefined ? { time_zone: b.timeZone } : {}),
          ...(b.locations ? { location_ids: JSON.stringify(b.locations) } : {}),
          ...(b.targets ? { targets: JSON.stringify(b.targets) } : {}),
          ...(b.active !== undefined ? { active: b.active ? 1 : 0 } : {}),
        }).where('id', '=', params.id).execute();
        const after = await getPractitioner(trx, params.id);
        await appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'practitioner.updated', entityType: 'practitioner', entityId: params.id, before, after }]);
      });
      hub.cache.clear();
      return getPractitioner(hub.store.db, params.id);
    },
  },
  {
    method: 'GET', path: '/locations', scope: 'read', tag: 'setup', summary: 'Locations with their rooms and time zones',
    async handler({ hub }) {
      const locs = await hub.store.db.selectFrom('location').selectAll().orderBy('name').execute();
      const rooms = await hub.store.db.selectFrom('room').selectAll().orderBy('name').execute();
      return {
        items: locs.map((l) => ({
          id: l.id, clinicId: l.clinic_id, name: l.name, timeZone: l.time_zone, address: l.address ?? undefined,
          rooms: rooms.filter((r) => r.location_id === l.id).map((r) => ({ id: r.id, name: r.name })),
        })),
      };
    },
  },
  {
    method: 'GET', path: '/services', scope: 'read', tag: 'setup', summary: 'Services',
    async handler({ hub }) {
      const rows = await hub.store.db.selectFrom('service').selectAll().orderBy('name').execute();
      return { items: rows.map((r) => ({ id: r.id, clinicId: r.clinic_id, name: r.name, durationMinutes: r.duration_minutes ?? undefined })) };
    },
  },
  {
    method: 'GET', path: '/connections', scope: 'read', tag: 'setup', summary: 'Connections with their status (secrets are never returned)',
    handler: async ({ hub }) => ({ items: (await listConnections(hub.store.db)).map(connectionView) }),
  },
  {
    method: 'PATCH', path: '/connections/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a connection (privacy level, base URL, reference mappings, settings)',
    body: z.object({
      name: z.string().min(1).optional(), privacy: z.enum(PRIVACY_LEVELS).nullable().optional(), baseUrl: z.url().nullable().optional(),
      refs: z.object({
        practitioners: z.record(z.string(), z.string()).optional(), services: z.record(z.string(), z.string()).optional(),
        locations: z.record(z.string(), z.string()).optional(), defaultPractitioner: z.string().optional(),
      }).strict().optional(),
      config: z.record(z.string(), z.unknown()).optional(),
    }).strict(),
    async handler({ hub, params, body, actor }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
      const b = body as { name?: string; privacy?: string | null; baseUrl?: string | null; refs?: object; config?: object };
      await hub.store.db.transaction().execute(async (trx) => {
        await trx.updateTable('connection').set({
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.privacy !== undefined ? { privacy: b.privacy } : {}),
          ...(b.baseUrl !== undefined ? { base_url: b.baseUrl } : {}),
          ...(b.refs ? { refs: JSON.stringify(b.refs) } : {}),
          ...(b.config ? { config: JSON.stringify(b.config) } : {}),
          updated_at: hub.clock.now().toISOString(),
        }).where('id', '=', params.id).execute();
        await appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'connection.updated', entityType: 'connection', entityId: params.id, meta: { fields: Object.keys(b) } }]);
      });
      hub.cache.clear();
      return connectionView(toConnection((await getConnectionRow(hub.store.db, params.id))!));
    },
  },
  {
    method: 'PUT', path: '/connections/:id/secrets', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Store secrets for a connection, encrypted (AES-256-GCM). Values are never returned.',
    body: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/), z.string().min(1).max(8192)),
    async handler({ hub, params, body, actor }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
      const d = allDescriptors().find((x) => x.id === row.platform);
      const known = new Set((d?.auth ?? []).filter((a) => a.secret).flatMap((a) => [a.key, `${a.key}Previous`]));
      const keys = Object.keys(body as object);
      const unknown = keys.filter((k) => !known.has(k));
      if (unknown.length) throw new HttpError('unknown_secret', `${d?.displayName ?? row.platform} has no secret ${unknown.join(', ')}`);
      await saveSecrets(hub.store.db, hub, params.id, body as Record<string, string>);
      // New credentials end a "needs reconnecting" state; its waiting jobs run at the next poll.
      if (row.status === 'needs_reauth') {
        await setConnectionStatus(hub, params.id, 'active');
        await hub.store.db.updateTable('job').set({ run_at: hub.clock.now().toISOString() }).where('state', '=', 'pending')
          .where('last_error', 'like', 'auth:%').execute();
        hub.onJobs();
      }
      await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'connection.secrets_stored', entityType: 'connection', entityId: params.id, meta: { keys } }]));
      return { stored: keys };
    },
  },
  {
    method: 'POST', path: '/connections/:id/sync', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Poll this booking source for a window of bookings now (repairs missed webhooks; also runs periodically)',
    async handler({ hub, params }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
      if (!allDescriptors().some((d) => d.id === row.platform && d.role === 'source' && 'capabilities' in d && (d.capabilities as { list: boolean }).list)) {
        throw new HttpError('not_pollable', `${row.platform} cannot be polled`);
      }
      await enqueue(hub.store.db, [pollJob(params.id)], hub.clock.now().toISOString());
      hub.onJobs();
      return { queued: 'source.poll', connection: params.id };
    },
  },
  {
    method: 'GET', path: '/held-changes', scope: 'read', tag: 'operations', query: z.object({ status: z.enum(['pending', 'approved', 'rejected', 'superseded']).optional() }),
    summary: 'Mass cancellations a poll held back for approval (a feed that came back empty, say), with the appointments they would cancel',
    handler: async ({ hub, query }) => ({ items: await listHeld(hub, (query as { status?: string }).status) }),
  },
  {
    method: 'POST', path: '/held-changes/:id/approve', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Apply the held cancellations now (each through the usual path: audit, calendars, write-back)',
    handler: ({ hub, params, actor }) => decideHeld(hub, params.id, 'approve', actor),
  },
  {
    method: 'POST', path: '/held-changes/:id/reject', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Keep the appointments; the same set of cancellations is not held again',
    handler: ({ hub, params, actor }) => decideHeld(hub, params.id, 'reject', actor),
  },
  {
    method: 'POST', path: '/connections/:id/sweep', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Check this calendar for events deleted or changed by hand and repair them (also runs periodically)',
    async handler({ hub, params }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
      await enqueue(hub.store.db, [sweepJob(params.id)], hub.clock.now().toISOString());
      hub.onJobs();
      return { queued: 'target.sweep', connection: params.id };
    },
  },
  {
    method: 'GET', path: '/feeds', scope: 'admin', tag: 'setup', summary: 'Published calendar feeds and their subscription paths (the path is the secret)',
    handler: async ({ hub }) => ({ items: await listFeeds(hub) }),
  },
  {
    method: 'POST', path: '/feeds/:id/rotate', scope: 'admin', tag: 'setup', params: idParam, summary: 'Give a feed a new secret URL (the old one stops working)',
    async handler({ hub, params }) {
      const token = await rotateFeed(hub, params.id);
      if (!token) throw new HttpError('not_found', `no feed ${params.id}`);
      return { path: `/feeds/${token}.ics` };
    },
  },
  {
    method: 'GET', path: '/audit', scope: 'read', tag: 'audit', summary: 'The audit log, newest first',
    query: auditQuery.extend({
      before: z.coerce.number().int().optional().describe('sequence number to page from'), limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    async handler({ hub, query }) {
      const q = query as AuditFilter & { before?: number; limit?: number };
      let s = await auditSelect(hub, q);
      if (q.before) s = s.where('seq', '<', q.before);
      const rows = await s.orderBy('seq', 'desc').limit(q.limit ?? 100).execute();
      return { items: rows.map(auditRow) };
    },
  },
  {
    method: 'GET', path: '/audit/export', scope: 'read', tag: 'audit',
    summary: 'The audit entries matching the same filters as /audit, oldest first, as CSV or JSON Lines (with each entry\'s hash and its predecessor\'s)',
    query: auditQuery.extend({ format: z.enum(['csv', 'jsonl']).default('jsonl') }),
    async handler({ hub, query }) {
      const q = query as AuditFilter & { format: 'csv' | 'jsonl' };
      const rows = await (await auditSelect(hub, q)).orderBy('seq').limit(AUDIT_EXPORT_MAX).execute();
      const stamp = hub.clock.now().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      if (q.format === 'jsonl') return new Download('application/x-ndjson; charset=utf-8', `meridian-audit-${stamp}.jsonl`, rows.map((r) => `${JSON.stringify({ ...auditRow(r), prevHash: r.prev_hash, hash: r.hash })}\n`).join(''));
      const cols = ['seq', 'at', 'actor', 'action', 'entity_type', 'entity_id', 'before', 'after', 'meta', 'prev_hash', 'hash'] as const;
      const lines = [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))];
      return new Download('text/csv; charset=utf-8', `meridian-audit-${stamp}.csv`, `${lines.join('\r\n')}\r\n`);
    },
  },
  {
    method: 'GET', path: '/users', scope: 'admin', tag: 'setup', summary: 'Staff accounts of the web app (password hashes are never returned)',
    handler: async ({ hub }) => ({ items: await listUsers(hub) }),
  },
  {
    method: 'POST', path: '/users', scope: 'admin', tag: 'setup', status: 201,
    summary: 'Add a staff account: owner (admin), front_desk (write) or practitioner (reads only their own schedule; needs practitionerId)',
    body: z.object({ email: z.string().min(3).max(320), name: z.string().max(200).optional(), role: z.enum(ROLES), password: z.string().min(1).max(200), practitionerId: z.string().optional() }).strict(),
    handler: ({ hub, body, actor }) => createUser(hub, body as { email: string; name?: string; role: Role; password: string; practitionerId?: string }, actor),
  },
  {
    method: 'PATCH', path: '/users/:id', scope: 'admin', tag: 'setup', params: idParam, summary: 'Disable (signs them out everywhere) or re-enable a staff account',
    body: z.object({ disabled: z.boolean() }).strict(),
    handler: ({ hub, params, body, actor }) => setUserDisabled(hub, params.id, (body as { disabled: boolean }).disabled, actor),
  },
  {
    method: 'POST', path: '/patients/erase', scope: 'admin', tag: 'privacy',
    summary: 'Erase a patient\'s personal data everywhere Meridian keeps it (appointments stay as "Erased patient", calendars are re-rendered, the audit chain still verifies). Erase them at the booking platform too, or its next delivery brings the data back.',
    body: z.object({ email: z.email() }).strict(),
    handler: ({ hub, body, actor }) => erasePatient(hub, body as { email: string }, actor),
  },
  {
    method: 'GET', path: '/health/connections', scope: 'read', tag: 'operations',
    summary: 'Each connection\'s health: status, last successful sync (poll, webhook or calendar write), last error, jobs waiting / retrying / dead, failed deliveries, deliveries waiting to be applied',
    async handler({ hub }) {
      const db = hub.store.db;
      const roles = new Map(allDescriptors().map((d) => [d.id, { role: d.role, displayName: d.displayName }]));
      const items = [];
      for (const c of await listConnections(db)) {
        // Jobs name their connection in the payload (targetId for calendar writes, connectionId otherwise).
        const mine = (q: ReturnType<typeof db.selectFrom<'job'>>) => q.where((eb) => eb.or([eb('payload', 'like', `%"targetId":${JSON.stringify(c.id)}%`), eb('payload', 'like', `%"connectionId":${JSON.stringify(c.id)}%`)]));
        const open = await mine(db.selectFrom('job')).select(['state', 'last_error']).where('state', 'in', ['pending', 'running', 'dead']).execute();
        const lastJob = await mine(db.selectFrom('job')).select('updated_at').where('state', '=', 'done').orderBy('updated_at', 'desc').limit(1).executeTakeFirst();
        const lastDelivery = await db.selectFrom('delivery').select('applied_at').where('connection_id', '=', c.id).where('applied_at', 'is not', null).orderBy('applied_at', 'desc').limit(1).executeTakeFirst();
        // Failed for staff, and stored but not yet applied (the inbox works them off after a burst).
        const deliveries = await db.selectFrom('delivery').select(['status', (eb) => eb.fn.countAll<number>().as('n')])
          .where('connection_id', '=', c.id).where('status', 'in', ['failed', 'unreadable', 'received']).groupBy('status').execute();
        const deliveriesIn = (...states: string[]) => deliveries.filter((d) => states.includes(d.status)).reduce((n, d) => n + Number(d.n), 0);
        const lastSuccessAt = [c.lastSyncAt, lastJob?.updated_at, lastDelivery?.applied_at ?? undefined].filter((x): x is string => Boolean(x)).sort().at(-1);
        items.push({
          id: c.id, name: c.name, platform: c.platform, platformName: roles.get(c.platform)?.displayName ?? c.platform, role: roles.get(c.platform)?.role,
          status: c.status, needsReconnect: c.status === 'needs_reauth', lastError: c.lastError, lastPollAt: c.lastSyncAt, lastSuccessAt,
          jobs: { waiting: open.filter((j) => j.state !== 'dead' && !j.last_error).length, retrying: open.filter((j) => j.state !== 'dead' && j.last_error).length, dead: open.filter((j) => j.state === 'dead').length },
          failedDeliveries: deliveriesIn('failed', 'unreadable'),
          waitingDeliveries: deliveriesIn('received'),
        });
      }
      return { items, jobs: await jobCounts(db) };
    },
  },
  {
    method: 'GET', path: '/audit/verify', scope: 'read', tag: 'audit', summary: 'Check the audit hash chain end to end',
    handler: ({ hub }) => verifyAudit(hub.store.db),
  },
  {
    method: 'GET', path: '/jobs', scope: 'read', tag: 'operations', summary: 'Jobs (outbox) by state; `dead` is the dead-letter list',
    query: z.object({ state: z.enum(['pending', 'running', 'done', 'dead']).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    async handler({ hub, query }) {
      const q = query as { state?: 'pending' | 'running' | 'done' | 'dead'; limit?: number };
      return { counts: await jobCounts(hub.store.db), items: await listJobs(hub.store.db, q) };
    },
  },
  {
    method: 'POST', path: '/jobs/:id/retry', scope: 'write', tag: 'operations', params: idParam, summary: 'Retry a dead or waiting job now',
    async handler({ hub, params }) {
      if (!(await retryJob(hub.store.db, params.id, hub.clock.now().toISOString()))) throw new HttpError('not_found', `no retryable job ${params.id}`);
      hub.onJobs();
      return { retried: params.id };
    },
  },
  {
    method: 'GET', path: '/deliveries', scope: 'read', tag: 'operations', summary: 'Received webhook deliveries (bodies are not listed)',
    query: z.object({ status: z.string().optional(), connection: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    async handler({ hub, query }) {
      const q = query as { status?: string; connection?: string; limit?: number };
      let s = hub.store.db.selectFrom('delivery').select(['id', 'connection_id', 'delivery_id', 'received_at', 'status', 'error', 'change_count', 'applied_at']);
      if (q.status) s = s.where('status', '=', q.status);
      if (q.connection) s = s.where('connection_id', '=', q.connection);
      return { items: await s.orderBy('received_at', 'desc').limit(q.limit ?? 100).execute() };
    },
  },
  {
    method: 'POST', path: '/deliveries/:id/replay', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Parse and apply a stored delivery again (after fixing a mapping)',
    handler: ({ hub, params }) => replayAnswer(hub, params.id),
  },
  {
    method: 'GET', path: '/outbound-deliveries', scope: 'read', tag: 'operations',
    summary: 'Outbound webhook deliveries, newest first: status (pending, retrying, delivered, failed), attempts and the receiver\'s answer code (bodies are not listed)',
    query: z.object({
      status: z.enum(['pending', 'retrying', 'delivered', 'failed']).optional(), connection: z.string().optional(),
      entity: z.string().optional().describe('an appointment or lead id'), limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    handler: async ({ hub, query }) => ({ items: await listOutboundDeliveries(hub.store.db, query as { status?: string; connection?: string; entity?: string; limit?: number }) }),
  },
  {
    method: 'POST', path: '/outbound-deliveries/:id/replay', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Send an outbound webhook delivery again now (the same webhook-id, a fresh timestamp and signature)',
    async handler({ hub, params, actor }) {
      const d = await replayOutboundDelivery(hub, params.id, actor);
      if (!d) throw new HttpError('not_found', `no outbound delivery ${params.id}`);
      return d;
    },
  },
  {
    method: 'GET', path: '/leads', scope: 'read', tag: 'leads',
    summary: 'Lead-form submissions, newest first: `requested` (Meridian placed a requested appointment), `needs_triage` (nothing fitted: staff place it), `booked`, `declined`',
    query: z.object({ status: z.enum(LEAD_STATUSES).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    handler: async ({ hub, query }) => ({ items: await listLeads(hub, query as { status?: LeadStatus; limit?: number }) }),
  },
  {
    method: 'POST', path: '/leads/:id/confirm', scope: 'write', tag: 'leads', params: idParam,
    summary: 'Confirm a lead: its appointment becomes booked and goes to calendars. Optionally put it elsewhere (practitionerId, start, end); a lead in triage needs practitionerId and start. 409 double_booking unless `override`.',
    body: z.object({ practitionerId: z.string().min(1).optional(), start: instant.optional(), end: instant.optional(), override: z.boolean().optional() }).strict(),
    handler: ({ hub, params, body, actor }) => confirmLead(hub, params.id, (body ?? {}) as ConfirmInput, actor),
  },
  {
    method: 'POST', path: '/leads/:id/decline', scope: 'write', tag: 'leads', params: idParam,
    summary: 'Decline a lead: its requested appointment (if any) is cancelled with the reason',
    body: z.object({ reason: z.string().max(500).optional() }).strict(),
    handler: ({ hub, params, body, actor }) => declineLead(hub, params.id, (body as { reason?: string } | undefined)?.reason, actor),
  },
  {
    method: 'GET', path: '/notifications', scope: 'read', tag: 'notifications',
    query: z.object({ appointment: z.string().min(1).max(200).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    summary: 'Messages sent, suppressed (with why) or refused, newest first; addresses masked',
    handler: async ({ hub, query }) => {
      const q = query as { appointment?: string; limit?: number };
      return { items: await listNotifications(hub, { appointmentId: q.appointment, limit: q.limit }) };
    },
  },
  {
    method: 'GET', path: '/notification-settings', scope: 'read', tag: 'notifications',
    summary: 'The clinics\' notification rules as applied from the configuration file (`notifications:`); null when a clinic sends none',
    handler: async ({ hub }) => {
      const rows = await hub.store.db.selectFrom('clinic').select(['id', 'settings']).orderBy('id').execute();
      return { items: rows.map((r) => ({ clinic: r.id, notifications: JSON.parse(r.settings).notifications ?? null })) };
    },
  },
  {
    method: 'GET', path: '/opt-outs', scope: 'read', tag: 'notifications', summary: 'Addresses that receive no messages (masked), with where the opt-out came from',
    handler: async ({ hub }) => ({ items: await listOptOuts(hub) }),
  },
  {
    method: 'POST', path: '/opt-outs', scope: 'write', tag: 'notifications', status: 201,
    summary: 'Opt an e-mail address or phone number out of every message, at once',
    body: z.object({ address: z.string().min(3).max(200), source: z.string().max(100).optional() }).strict(),
    handler: async ({ hub, body, actor }) => {
      const b = body as { address: string; source?: string };
      await optOut(hub, b.address, b.source ?? 'staff', actor);
      return { contact: contactRef(b.address), optedOut: true };
    },
  },
  {
    method: 'POST', path: '/opt-outs/remove', scope: 'write', tag: 'notifications',
    summary: 'The patient consents again: messages to this address resume (the address is in the body, never the URL)',
    body: z.object({ address: z.string().min(3).max(200) }).strict(),
    handler: async ({ hub, body, actor }) => {
      const b = body as { address: string };
      if (!(await optIn(hub, b.address, actor))) throw new HttpError('not_found', 'that address is not opted out');
      return { contact: contactRef(b.address), optedOut: false };
    },
  },
  {
    method: 'GET', path: '/platforms', scope: 'read', tag: 'setup', summary: 'Every connector with its capabilities and fidelity',
    handler: async () => ({ items: allDescriptors() }),
  },
];


/** LIKE with an explicit escape character, so `%`, `_` and a backslash in a search match themselves on SQLite too. */
const escapeLike = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);
const likeEscaped = (column: string, pattern: string) => sql<boolean>`${sql.ref(column)} like ${pattern} escape '\\'`;
const lowerLikeEscaped = (column: string, pattern: string) => sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;

/** `x*` matches a prefix; anything else matches exactly. */
function textMatch(column: 'action' | 'actor', v: string) {
  return v.endsWith('*') ? likeEscaped(column, `${escapeLike(v.slice(0, -1))}%`) : sql<boolean>`${sql.ref(column)} = ${v}`;
}

async function auditSelect(hub: Hub, q: AuditFilter) {
  let s = hub.store.db.selectFrom('audit').selectAll();
  if (q.entity) s = s.where('entity_id', '=', q.entity);
  if (q.action) s = s.where(textMatch('action', q.action));
  if (q.actor) s = s.where(textMatch('actor', q.actor));
  if (q.from) s = s.where('at', '>=', new Date(q.from).toISOString());
  if (q.to) s = s.where('at', '<', new Date(q.to).toISOString());
  if (q.patient) {
    // Matched on the appointments as they are now: the patient's whole trail, whatever each entry holds.
    const like = `%${escapeLike(q.patient.toLowerCase())}%`;
    const ids = await hub.store.db.selectFrom('appointment').select('id')
      .where((eb) => eb.or([lowerLikeEscaped('patient_name', like), lowerLikeEscaped('patient_email', like)])).limit(5000).execute();
    s = s.where('entity_id', 'in', ids.length ? ids.map((r) => r.id) : ['']);
  }
  return s;
}

/** One CSV cell (RFC 4180 quoting); a leading = + - @ is defused so a spreadsheet never runs it as a formula. */
function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let t = String(v);
  if (/^[=+\-@\t\r]/.test(t)) t = `'${t}`;
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

function auditRow(r: { seq: number; at: string; actor: string; action: string; entity_type: string; entity_id: string; before: string | null; after: string | null; meta: string | null }) {
  const j = (s: string | null) => (s === null ? undefined : JSON.parse(s));
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, entityType: r.entity_type, entityId: r.entity_id, before: j(r.before), after: j(r.after), meta: j(r.meta) };
}

/** The OpenAPI 3.1 document, generated from ROUTES. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
  for (const r of ROUTES) {
    const p = `/api/v1${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
    const parameters: unknown[] = [];
    for (const [name] of Object.entries(r.params?.shape ?? {})) parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    for (const [name, s] of Object.entries(r.query?.shape ?? {})) parameters.push({ name, in: 'query', required: false, schema: schema(s as z.ZodType) });
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\/:?([a-z])/gi, (_m, c: string) => c.toUpperCase()).replace(/[^A-Za-z]/g, '')}`,
      'x-scope': r.scope,
      security: [{ apiKey: [] }],
      parameters,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(r.body) } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: 'Success', content: { 'application/json': { schema: {} } } },
        '4XX': { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Meridian API', version, description: 'Appointment hub API. Authenticate with `Authorization: Bearer mer_…` (an API key; scopes read < write < admin).' },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Meridian API key (mer_…)' } },
      schemas: {
        Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } },
      },
    },
    paths,
  };
}
