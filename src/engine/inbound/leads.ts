// Lead forms (the "new lead with appointment preference" trigger): verify the delivery on its raw bytes,
// then in ONE transaction store the delivery and the lead, find the first free slot that fits the
// patient's preferred times, and create a `requested` appointment there (audit + calendar jobs) — or
// keep the lead as `needs_triage` for staff when nothing fits. A lead is a row of its own, so an
// unplaced request needs no practitioner; the `lead.received` audit entry is the event CRM targets read.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { getLeadForm } from '../../connectors/registry.ts';
import { ConnectionMisconfigured, UnreadablePayload, type Lead, type LeadFormConnector, type WebhookRequest } from '../../connectors/types.ts';
import { firstFreeSlot, intersect, preferenceWindows, workingWindows, type Horizon, type Interval, type WeeklyHours } from '../../domain/slots.ts';
import { cleanEmail } from '../../domain/contact.ts';
import type { Appointment } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import { enqueue } from '../../store/outbox.ts';
import type { DB, LeadTable } from '../../store/schema.ts';
import { INACTIVE, busyOverlaps, listPractitioners, overlapCandidates, type ConnectionRecord, type Exec, type PractitionerRecord } from '../../store/repo.ts';
import { commitAppointment } from '../appointments/commit.ts';
import type { LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { receive, rejected, type Door, type InboundOutcome, type IncomingWebhook } from './pipeline.ts';
import { storableHeaders } from './ingest.ts';
import { crmLeadJobs } from '../effects/crm.ts';
import { leadWebhookJobs } from '../effects/webhooks-out.ts';

export const LEAD_STATUSES = ['requested', 'needs_triage', 'booked', 'declined'] as const;
export type LeadStatus = (typeof LEAD_STATUSES)[number];

export const DEFAULTS = { searchWeeks: 4, minNoticeHours: 2, defaultDurationMinutes: 60 };

// ------------------------------------------------------------------ abuse: what a public form may hold

/**
 * A website form's `?token=` is visible in the page that posts it, so anyone can send leads. What one
 * form, one client and one contact may hold is limited: a form needs a few KB, and past a limit the lead is
 * still kept (nothing is lost) but waits for staff without a slot or a calendar event (nothing is held).
 */
export const ABUSE_DEFAULTS = {
  maxBodyBytes: 16 * 1024,
  honeypot: 'website',
  /** Requested appointments waiting per e-mail / phone; per client address in a day; per form in a day. */
  limits: { perContact: 2, perClientPerDay: 10, perFormPerDay: 200 },
};
const CHALLENGES = {
  turnstile: { verifyUrl: 'https://challenges.cloudflare.com/turnstile/v0/siteverify', field: 'cf-turnstile-response' },
  hcaptcha: { verifyUrl: 'https://api.hcaptcha.com/siteverify', field: 'h-captcha-response' },
} as const;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {});

function limitsOf(config: Record<string, unknown>) {
  const l = obj(config.limits);
  const d = ABUSE_DEFAULTS.limits;
  return { perContact: num(l.perContact, d.perContact), perClientPerDay: num(l.perClientPerDay, d.perClientPerDay), perFormPerDay: num(l.perFormPerDay, d.perFormPerDay) };
}

/** The top-level fields of a JSON object or form-encoded body (honeypot, challenge token); {} otherwise. */
function topFields(incoming: IncomingWebhook): Record<string, unknown> {
  const ct = (incoming.headers['content-type'] ?? '').toLowerCase();
  try {
    if (ct.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(incoming.rawBody.toString('utf8')));
    return obj(JSON.parse(incoming.rawBody.toString('utf8')));
  } catch {
    return {};
  }
}

const filled = (v: unknown) => (typeof v === 'string' ? v.trim() !== '' : v !== undefined && v !== null && v !== false);

/**
 * The form's hosted challenge (Turnstile, hCaptcha), verified server-side with the provider's siteverify
 * endpoint. Undefined when it passed or none is configured; else why not. An unreachable provider counts as
 * a failure: the form cannot retry later, and letting it through would open the door the challenge closes.
 */
async function challengeFailure(hub: Hub, conn: LoadedConnection, fields: Record<string, unknown>, client: string | undefined): Promise<string | undefined> {
  const c = obj(conn.record.config.challenge);
  if (c.provider === undefined) return undefined;
  const provider = CHALLENGES[c.provider as keyof typeof CHALLENGES];
  if (!provider) throw new ConnectionMisconfigured(`challenge.provider must be turnstile or hcaptcha, not ${String(c.provider)}`);
  const secret = conn.secrets.challengeSecret;
  if (!secret) throw new ConnectionMisconfigured('the form has a challenge but the connection has no challengeSecret');
  const token = fields[typeof c.field === 'string' ? c.field : provider.field];
  if (typeof token !== 'string' || token === '') return 'the form\'s challenge was not answered';
  const form = new URLSearchParams({ secret, response: token, ...(client ? { remoteip: client } : {}) });
  try {
    const res = await hub.fetch(typeof c.verifyUrl === 'string' ? c.verifyUrl : provider.verifyUrl, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), signal: AbortSignal.timeout(10_000),
    });
    const body = obj(await res.json().catch(() => ({})));
    if (res.ok && body.success === true) return undefined;
    return `the form's challenge did not verify${Array.isArray(body['error-codes']) ? ` (${body['error-codes'].join(', ')})` : ''}`;
  } catch (err) {
    hub.log.warn({ connection: conn.record.id, err: { message: (err as Error).message } }, 'lead challenge could not be verified');
    return 'the form\'s challenge could not be verified';
  }
}

/** Why a lead must not hold a slot now (a limit is reached), or undefined. Counted in the ingest transaction. */
async function limitReached(trx: Exec, conn: ConnectionRecord, lead: Lead, client: string | undefined, at: string): Promise<string | undefined> {
  const l = limitsOf(conn.config);
  const dayAgo = new Date(Date.parse(at) - 86_400_000).toISOString();
  const waiting = () => trx.selectFrom('lead').select((eb) => eb.fn.countAll().as('n')).where('status', '=', 'requested');
  const n = async (q: ReturnType<typeof waiting>) => Number((await q.executeTakeFirstOrThrow()).n);
  if (lead.email || lead.phone) {
    const held = await n(waiting().where('clinic_id', '=', conn.clinicId).where((eb) => eb.or([
      ...(lead.email ? [eb('patient_email', '=', lead.email)] : []), ...(lead.phone ? [eb('patient_phone', '=', lead.phone)] : []),
    ])));
    if (held >= l.perContact) return `limit reached: ${held} requested appointments already wait for this e-mail or phone (at most ${l.perContact})`;
  }
  if (client) {
    const held = await n(waiting().where('client_address', '=', client).where('received_at', '>=', dayAgo));
    if (held >= l.perClientPerDay) return `limit reached: ${held} requested appointments from this client address in the last day (at most ${l.perClientPerDay})`;
  }
  const held = await n(waiting().where('connection_id', '=', conn.id).where('received_at', '>=', dayAgo));
  if (held >= l.perFormPerDay) return `limit reached: ${held} requested appointments from this form in the last day (at most ${l.perFormPerDay})`;
  return undefined;
}
export const NO_PREFERENCE = /^(no preference|none|any(one| one| practitioner)?|either|doesn'?t matter|no)$/i;

// ------------------------------------------------------------------ resolving what the patient asked for

const norm = (s: string) => s.toLowerCase().replace(/\b(dr|doctor|mr|mrs|ms|miss|prof)\b\.?/g, ' ').replace(/[^a-z0-9]+/g, ' ').trim();

/**
 * A mapped ref (connection refs, case-insensitive), else the one name that equals or contains the text.
 * (Also what `meridian parse-webhook` shows for a lead's service and practitioner.)
 */
export function resolveNamed<T extends { id: string; name: string }>(text: string | undefined, refs: Record<string, string> | undefined, items: T[]): T | undefined {
  if (!text) return undefined;
  const key = norm(text);
  const mapped = Object.entries(refs ?? {}).find(([k]) => norm(k) === key)?.[1];
  if (mapped) return items.find((i) => i.id === mapped);
  const exact = items.filter((i) => norm(i.name) === key || i.id === text);
  if (exact.length === 1) return exact[0];
  const near = items.filter((i) => key.length >= 3 && (norm(i.name).includes(key) || key.includes(norm(i.name))));
  return near.length === 1 ? near[0] : undefined;
}

interface Placement {
  practitioner: PractitionerRecord;
  slot: Interval;
  timeZone: string;
  locationId?: string;
}

interface SlotSearch {
  serviceId?: string;
  practitionerId?: string;
  placement?: Placement;
  triageReason?: string;
}

const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/** Service, practitioner and the first free slot for a lead (inside the ingest transaction). */
async function findPlacement(trx: Exec, hub: Hub, conn: ConnectionRecord, lead: Lead): Promise<SlotSearch> {
  const services = await trx.selectFrom('service').selectAll().where('clinic_id', '=', conn.clinicId).execute();
  const service = resolveNamed(lead.service, conn.refs.services, services);
  const all = (await listPractitioners(trx)).filter((p) => p.active && p.clinicId === conn.clinicId);
  const wanted = lead.practitioner && !NO_PREFERENCE.test(lead.practitioner.trim()) ? resolveNamed(lead.practitioner, conn.refs.practitioners, all) : undefined;
  const out: SlotSearch = { serviceId: service?.id, practitionerId: wanted?.id };
  if (!service) return { ...out, triageReason: lead.service ? 'the service asked for is not one of the clinic\'s' : 'the form gave no service' };
  const offering = all.filter((p) => p.services.includes(service.id));
  const candidates = wanted && offering.some((p) => p.id === wanted.id) ? [wanted] : offering;
  if (candidates.length === 0) return { ...out, triageReason: `no practitioner offers ${service.name}` };

  const clinic = await trx.selectFrom('clinic').select(['time_zone', 'settings']).where('id', '=', conn.clinicId).executeTakeFirstOrThrow();
  const clinicHours = (JSON.parse(clinic.settings) as { hours?: WeeklyHours | null }).hours ?? undefined;
  const duration = service.duration_minutes ?? num(conn.config.defaultDurationMinutes, DEFAULTS.defaultDurationMinutes);
  const from = new Date(hub.clock.now().getTime() + num(conn.config.minNoticeHours, DEFAULTS.minNoticeHours) * 3_600_000);
  const to = new Date(from.getTime() + num(conn.config.searchWeeks, DEFAULTS.searchWeeks) * 7 * 86_400_000);
  // The patient's words are read in the clinic's zone; each practitioner's hours in their own.
  const prefs = preferenceWindows(lead.preferences, { timeZone: clinic.time_zone, from, to }, duration);
  if (prefs.windows.length === 0) return { ...out, triageReason: prefs.unread.length ? 'the preferred times could not be read' : 'the preferred times are all outside the next weeks' };

  let best: Placement | undefined;
  for (const p of candidates) {
    const hours = p.hours ?? clinicHours;
    if (!hours) continue;
    const locationId = p.locationIds.length === 1 ? p.locationIds[0] : undefined;
    const loc = locationId ? await trx.selectFrom('location').select('time_zone').where('id', '=', locationId).executeTakeFirst() : undefined;
    const timeZone = p.timeZone ?? loc?.time_zone ?? clinic.time_zone;
    const h: Horizon = { timeZone, from, to };
    const span = { practitionerId: p.id, start: from.toISOString(), end: to.toISOString() };
    const busy: Interval[] = [
      ...(await overlapCandidates(trx, span)).map((a) => ({ start: a.start, end: a.end })),
      ...(await busyOverlaps(trx, { ...span, status: 'requested' })),
    ];
    const slot = firstFreeSlot(intersect(prefs.windows, workingWindows(hours, h)), busy, duration);
    if (slot && (!best || Date.parse(slot.start) < Date.parse(best.slot.start))) best = { practitioner: p, slot, timeZone, locationId };
  }
  if (!best) return { ...out, triageReason: candidates.some((p) => p.hours ?? clinicHours) ? 'no free slot matches the preferred times' : 'no working hours are set for the practitioners who offer it' };
  return { ...out, placement: best };
}

// ------------------------------------------------------------------ ingest

export interface LeadView {
  id: string;
  connectionId: string;
  platform: string;
  submissionId: string;
  submittedAt: string;
  receivedAt: string;
  status: LeadStatus;
  appointmentId?: string;
  patient: { name: string; email?: string; phone?: string };
  service: { text?: string; id?: string };
  practitioner: { text?: string; id?: string };
  preferences: Lead['preferences'];
  notes?: string;
  triageReason?: string;
  decidedBy?: string;
  decisionReason?: string;
  updatedAt: string;
}

export function leadView(r: LeadTable): LeadView {
  const o = <T>(v: T | null) => (v === null ? undefined : v);
  return {
    id: r.id, connectionId: r.connection_id, platform: r.platform, submissionId: r.submission_id, submittedAt: r.submitted_at,
    receivedAt: r.received_at, status: r.status as LeadStatus, appointmentId: o(r.appointment_id),
    patient: { name: r.patient_name, email: o(r.patient_email), phone: o(r.patient_phone) },
    service: { text: o(r.service_text), id: o(r.service_id) }, practitioner: { text: o(r.practitioner_text), id: o(r.practitioner_id) },
    preferences: JSON.parse(r.preferences), notes: o(r.notes), triageReason: o(r.triage_reason), decidedBy: o(r.decided_by),
    decisionReason: o(r.decision_reason), updatedAt: r.updated_at,
  };
}

const LEAD_FORM: Door = { notFound: 'no such lead form endpoint', thing: 'delivery', refusedLog: 'lead delivery refused', rejectedLog: 'lead delivery rejected' };

export async function ingestLead(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<InboundOutcome> {
  return receive(hub, connectionId, incoming, LEAD_FORM, (conn) => {
    const connector = getLeadForm(conn.record.platform);
    if (!connector || INACTIVE.has(conn.record.status)) return undefined;
    // Refused before anything is verified, parsed or stored.
    const limitBytes = num(conn.record.config.maxBodyBytes, ABUSE_DEFAULTS.maxBodyBytes);
    if (incoming.rawBody.length > limitBytes) return rejected('body_too_large', `a lead form's body may be at most ${limitBytes} bytes`, { limitBytes });
    return {
      verify: (req) => connector.verify(req, conn.secrets, conn.record.config),
      accept: async (req) => {
        const fields = topFields(incoming);
        // A challenge without its secret or with an unknown provider throws ConnectionMisconfigured: the
        // pipeline refuses the delivery for now, as for any connection not fully configured.
        const failed = await challengeFailure(hub, conn, fields, incoming.client);
        if (failed) {
          hub.metrics.webhooks.inc({ platform: conn.record.platform, outcome: 'rejected' });
          return rejected('challenge_failed', failed);
        }
        const honeypot = typeof conn.record.config.honeypot === 'string' ? conn.record.config.honeypot : ABUSE_DEFAULTS.honeypot;
        return storeLead(hub, conn, connector, incoming, req, Boolean(honeypot) && filled(fields[honeypot]));
      },
    };
  });
}

/** A verified lead: the delivery and the lead (with its placement, if any) in one transaction. */
async function storeLead(hub: Hub, conn: LoadedConnection, connector: LeadFormConnector, incoming: IncomingWebhook, req: WebhookRequest, spam: boolean): Promise<InboundOutcome> {
  const connectionId = conn.record.id;
  const platform = conn.record.platform;
  let lead: Lead | undefined;
  let unreadable: string | undefined;
  try {
    lead = connector.parseLead(req, conn.record.config);
    // An e-mail that is not one plausible address (CR/LF, a list) is not kept at all (domain/contact.ts).
    const email = cleanEmail(lead.email);
    lead = { ...lead, email };
    if (!email) delete lead.email;
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    unreadable = err.message;
  }
  const at = req.now.toISOString();
  const deliveryRowId = randomUUID();
  const outcome = await hub.commits.run(async (trx) => {
    const inserted = await trx.insertInto('delivery').values({
      id: deliveryRowId, connection_id: connectionId, delivery_id: lead?.deliveryId ?? null, received_at: at,
      content_type: incoming.headers['content-type'] ?? null, headers: storableHeaders(incoming.headers),
      body: `base64:${incoming.rawBody.toString('base64')}`, status: unreadable ? 'unreadable' : 'received', error: unreadable ?? null,
      change_count: lead ? 1 : 0, applied_at: null,
    }).onConflict((oc) => oc.columns(['connection_id', 'delivery_id']).doNothing()).returning('id').execute();
    if (inserted.length === 0) return { duplicate: true as const };
    if (!lead) return { unreadable: unreadable! };
    const r = await recordLead(trx, hub, conn.record, lead, deliveryRowId, at, { client: incoming.client, spam });
    await trx.updateTable('delivery').set({ status: r ? 'applied' : 'duplicate', applied_at: at }).where('id', '=', deliveryRowId).execute();
    return r ?? { duplicate: true as const };
  });
  if ('duplicate' in outcome) {
    hub.metrics.webhooks.inc({ platform, outcome: 'duplicate' });
    return { kind: 'duplicate', message: 'this submission was already received' };
  }
  if ('unreadable' in outcome) {
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    hub.log.warn({ connection: connectionId, delivery: deliveryRowId }, 'verified lead could not be read; kept for staff');
    return { kind: 'stored', delivery: deliveryRowId, reason: 'unreadable_payload', message: outcome.unreadable };
  }
  hub.onJobs();
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  hub.log.info({ connection: connectionId, lead: outcome.leadId, status: outcome.status }, 'lead received');
  // A honeypot hit is answered like any lead waiting for staff, so a bot learns nothing from the answer.
  if (spam) return { kind: 'accepted', details: { lead: outcome.leadId, leadStatus: 'needs_triage' } };
  return { kind: 'accepted', details: { lead: outcome.leadId, leadStatus: outcome.status, appointmentId: outcome.appointmentId, triageReason: outcome.triageReason } };
}

/** The lead row, the appointment (if a slot fits) and the audit, in `trx`. Undefined: a duplicate submission. */
async function recordLead(trx: Transaction<DB>, hub: Hub, conn: ConnectionRecord, lead: Lead, deliveryRowId: string, at: string, o: { client?: string; spam?: boolean } = {}) {
  const id = randomUUID();
  const inserted = await trx.insertInto('lead').values({
    id, clinic_id: conn.clinicId, connection_id: conn.id, platform: conn.platform, submission_id: lead.submissionId, delivery_row_id: deliveryRowId,
    submitted_at: lead.submittedAt, received_at: at, status: 'needs_triage', appointment_id: null,
    patient_name: lead.name, patient_email: lead.email ?? null, patient_phone: lead.phone ?? null,
    service_text: lead.service ?? null, service_id: null, practitioner_text: lead.practitioner ?? null, practitioner_id: null,
    preferences: JSON.stringify(lead.preferences), notes: lead.notes ?? null, triage_reason: null, decided_by: null, decision_reason: null, updated_at: at,
    client_address: o.client ?? null,
  }).onConflict((oc) => oc.columns(['connection_id', 'submission_id']).doNothing()).returning('id').execute();
  if (inserted.length === 0) return undefined;
  const actor = `lead:${conn.id}`;

  // A bot filled the hidden field: kept (declined, reason honeypot) for the record, but it holds nothing and
  // reaches no CRM or webhook.
  if (o.spam) {
    await trx.updateTable('lead').set({ status: 'declined', decided_by: 'meridian:honeypot', decision_reason: 'honeypot' }).where('id', '=', id).execute();
    await appendAudit(trx, hub.store.dialect, [{ at, actor, action: 'lead.spam', entityType: 'lead', entityId: id, meta: { connection: conn.id, reason: 'honeypot' } }]);
    return { leadId: id, status: 'declined' as LeadStatus, appointmentId: undefined, triageReason: undefined };
  }

  // Past a limit the lead waits for staff with no slot held. Two leads counted at the same instant on
  // PostgreSQL may both pass: a limit can be overshot by the few racing at its edge, never by a flood.
  const held = await limitReached(trx, conn, lead, o.client, at);
  const found: SlotSearch = held ? { triageReason: held } : await findPlacement(trx, hub, conn, lead);
  const audit: AuditInput[] = [];
  let appointmentId: string | undefined;
  if (found.placement) {
    const { practitioner, slot, timeZone, locationId } = found.placement;
    const appt: Appointment = {
      id: randomUUID(), clinicId: conn.clinicId, locationId, practitionerId: practitioner.id, serviceId: found.serviceId,
      patient: { name: lead.name, email: lead.email, phone: lead.phone }, start: slot.start, end: slot.end, timeZone,
      status: 'requested', notes: lead.notes, origin: { platform: conn.platform, connectionId: conn.id, externalId: lead.submissionId },
      revision: 1, conflicts: [], createdAt: at, updatedAt: at,
    };
    await commitAppointment(trx, hub, { before: undefined, next: appt, actor, action: 'appointment.created', meta: { lead: id } });
    appointmentId = appt.id;
  }
  const status: LeadStatus = appointmentId ? 'requested' : 'needs_triage';
  await trx.updateTable('lead').set({
    status, appointment_id: appointmentId ?? null, service_id: found.serviceId ?? null, practitioner_id: found.placement?.practitioner.id ?? found.practitionerId ?? null,
    triage_reason: appointmentId ? null : found.triageReason ?? null,
  }).where('id', '=', id).execute();
  // No contact data in the event: a CRM target reads the lead row by its id.
  audit.push({
    at, actor, action: 'lead.received', entityType: 'lead', entityId: id,
    meta: { connection: conn.id, platform: conn.platform, submissionId: lead.submissionId, status, appointmentId, triageReason: appointmentId ? undefined : found.triageReason },
  });
  await appendAudit(trx, hub.store.dialect, audit);
  const event = { id, clinicId: conn.clinicId, connectionId: conn.id, platform: conn.platform, submittedAt: lead.submittedAt, serviceId: found.serviceId, practitionerId: found.placement?.practitioner.id };
  await enqueue(trx, [...await crmLeadJobs(trx, conn.clinicId, id), ...await leadWebhookJobs(trx, event, at, hub.cache)], at);
  return { leadId: id, status, appointmentId, triageReason: appointmentId ? undefined : found.triageReason };
}

// ------------------------------------------------------------------ staff: the list (confirm and decline: edits/leads.ts)

export async function listLeads(hub: Hub, q: { status?: LeadStatus; limit?: number } = {}): Promise<LeadView[]> {
  let s = hub.store.db.selectFrom('lead').selectAll();
  if (q.status) s = s.where('status', '=', q.status);
  return (await s.orderBy('received_at', 'desc').orderBy('id').limit(q.limit ?? 200).execute()).map(leadView);
}
