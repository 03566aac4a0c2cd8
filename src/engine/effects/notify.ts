// Notifications, reminders and follow-ups that are never wrong (issue 7).
// - Planned in the transaction of every change (`planNotifications`, called next to targetJobsFor in both
//   commit paths): one notice job per appointment held for the grace period (a burst of edits, or a cancel
//   + new booking, becomes one message), and every reminder/follow-up job set exactly or withdrawn.
// - At send time everything is asked again of the appointment as it is: a notice says the difference from
//   what the audience was last told (nothing when it came back to that), a reminder for a moved or cancelled
//   visit is suppressed with the reason. Each message has a key; a key sent once is never sent again.
// - Every message sent, suppressed or refused is in the audit log (no addresses there or in the logs).
import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { getNotifier, getTarget } from '../../connectors/registry.ts';
import { ConnectionMisconfigured, type ConnectorFailure, type Invitation, type OutboundMessage, type WriteOutcome } from '../../connectors/types.ts';
import {
  PATIENT_VARS, PRACTITIONER_TEMPLATES, allRuleIds, TIME_VARS, fill, htmlOf, inQuietHours, nextSequence, noticeFor, patientZone, planTimed, quietEnd,
  rulesFor, snapshotFor, templateFor, timedSuppression, whenText, smsText, FOLLOW_UP_MAX_LATE_MS,
  type Audience, type NoticePurpose, type NotificationSettings, type Purpose, type Rules, type Snapshot, type Told,
} from '../../domain/notify-plan.ts';
import { PLACEHOLDERS, renderEventText } from '../../domain/render.ts';
import type { Appointment } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import { NOTIFY_NOTICE, NOTIFY_STAFF, NOTIFY_TIMED, type Job, type JobResult, type NewJob, type StaffAlert, type StaffAlertType } from '../../domain/jobs.ts';
import { enqueue, pendingJobs, setPendingJob } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import { INACTIVE, getAppointment, toAppointment, type Exec } from '../../store/repo.ts';
import { cached, type TtlCache } from '../hub/cache.ts';
import { connectionContext, loadConnection, type LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';

export type { StaffAlert, StaffAlertType };

// ------------------------------------------------------------------ settings

interface ClinicNotify {
  name: string;
  language: string;
  settings: NotificationSettings;
}

export async function clinicNotify(db: Exec, clinicId: string, cache?: TtlCache): Promise<ClinicNotify | undefined> {
  return cached(cache, `notify:${clinicId}`, async () => {
    const c = await db.selectFrom('clinic').select(['name', 'language', 'settings']).where('id', '=', clinicId).executeTakeFirst();
    const settings = c ? (JSON.parse(c.settings).notifications as NotificationSettings | null | undefined) : undefined;
    return c && settings ? { name: c.name, language: c.language, settings } : undefined;
  });
}

// ------------------------------------------------------------------ planning (in the change's transaction)

const noticeKey = (id: string) => `${NOTIFY_NOTICE}:${id}`;
const timedPrefix = (id: string) => `${NOTIFY_TIMED}:${id}:`;

/** A change the patient or practitioner would notice (notes or a room do not make a message). */
function noticeable(before: Appointment | undefined, next: Appointment): boolean {
  if (!before) return true;
  return before.status !== next.status || before.start !== next.start || before.end !== next.end || before.timeZone !== next.timeZone
    || before.practitionerId !== next.practitionerId || before.locationId !== next.locationId || before.serviceId !== next.serviceId;
}

/**
 * Re-plan the appointment's messages inside the change's transaction. Reminders and follow-ups are written
 * exactly (set, moved later or earlier, or withdrawn); the returned notice job goes into the caller's
 * outbox batch, where a second change within the grace period keeps the first one's (earlier) run time.
 */
export async function planNotifications(trx: Transaction<DB>, hub: Hub, next: Appointment, before: Appointment | undefined): Promise<NewJob[]> {
  const cn = await clinicNotify(trx, next.clinicId, hub.cache);
  if (!cn) return [];
  const now = hub.clock.now();
  await replanTimed(trx, next, cn.settings, now);
  // A visit already over (a history import, a status set afterwards) needs no notice: follow-ups take over.
  const over = (x: Appointment | undefined) => !x || Date.parse(x.end) <= now.getTime();
  if (!noticeable(before, next) || (over(next) && over(before))) return [];
  const graceMs = rulesFor(cn.settings, next.serviceId).graceMs;
  return [{ kind: NOTIFY_NOTICE, payload: { appointmentId: next.id }, dedupeKey: noticeKey(next.id), runAt: new Date(now.getTime() + graceMs).toISOString() }];
}

/** Set every reminder/follow-up job of the appointment exactly as the rules want it now; withdraw the rest. */
async function replanTimed(trx: Exec, a: Appointment, settings: NotificationSettings, now: Date, formerRuleIds: string[] = []): Promise<void> {
  const at = now.toISOString();
  const wanted = new Set<string>();
  for (const p of planTimed(a, rulesFor(settings, a.serviceId), now.getTime())) {
    const key = `${timedPrefix(a.id)}${p.ruleId}`;
    wanted.add(key);
    await setPendingJob(trx, key, {
      kind: NOTIFY_TIMED, payload: { appointmentId: a.id, ruleId: p.ruleId, kind: p.kind, start: p.start, end: p.end }, runAt: new Date(p.runAt).toISOString(),
    }, at);
  }
  // Jobs of rules the settings no longer have (unless named as former) find that out at send time, and say so.
  const ruleIds = [...new Set([...allRuleIds(settings), ...formerRuleIds])];
  for (const j of await pendingJobs(trx, ruleIds.map((id) => `${timedPrefix(a.id)}${id}`))) {
    if (wanted.has(j.dedupeKey!) || j.kind !== NOTIFY_TIMED) continue;
    // A reminder already due for this very state stays (its time passed only because the worker is busy).
    const p = j.payload;
    if (Date.parse(j.runAt) <= now.getTime() && !timedSuppression(p, a, now.getTime())) continue;
    await setPendingJob(trx, j.dedupeKey!, undefined, at, `withdrawn: revision ${a.revision} no longer needs it`);
  }
}

/**
 * The clinic's rules changed (a config apply): re-plan the reminders and follow-ups of every appointment
 * still ahead or just ended, so a new rule reaches existing bookings and a removed one stops. No notices.
 */
export async function replanClinic(hub: Hub, clinicId: string, former?: NotificationSettings | null): Promise<number> {
  hub.cache.clear();
  const cn = await clinicNotify(hub.store.db, clinicId);
  // Without notifications, jobs still pending find nothing to send when they come due.
  if (!cn) return 0;
  const now = hub.clock.now();
  const since = new Date(now.getTime() - FOLLOW_UP_MAX_LATE_MS).toISOString();
  const rows = await hub.store.db.selectFrom('appointment').selectAll().where('clinic_id', '=', clinicId).where('end_at', '>', since).execute();
  for (let i = 0; i < rows.length; i += 200) {
    await hub.store.db.transaction().execute(async (trx) => {
      for (const r of rows.slice(i, i + 200)) await replanTimed(trx, toAppointment(r), cn.settings, now, former ? allRuleIds(former) : []);
    });
  }
  hub.onJobs();
  return rows.length;
}

// ------------------------------------------------------------------ staff alerts

const ALERT_TITLES: Record<StaffAlertType, string> = {
  double_booking: 'Double booking', dead_letter: 'A job failed for good', needs_reauth: 'A connection needs reconnecting',
  held_changes: 'Mass changes held for approval', patient_cancelled: 'A patient cancelled by reply',
  account_locked: 'A staff sign-in was locked',
};

/** Jobs that e-mail the staff of `clinicId` (every clinic with staff addresses when unknown). */
export async function staffAlertJobs(db: Exec, clinicId: string | undefined, alert: StaffAlert, cache?: TtlCache): Promise<NewJob[]> {
  const ids = clinicId ? [clinicId] : (await db.selectFrom('clinic').select('id').execute()).map((c) => c.id);
  const out: NewJob[] = [];
  for (const id of ids) {
    const cn = await clinicNotify(db, id, cache);
    if (cn?.settings.staff?.emails.length) out.push({ kind: NOTIFY_STAFF, payload: { clinicId: id, ...alert }, dedupeKey: `${NOTIFY_STAFF}:${id}:${alert.ref}` });
  }
  return out;
}

/** Alert staff from outside a change's transaction (the worker, the poll). */
export async function alertStaff(hub: Hub, clinicId: string | undefined, alert: StaffAlert): Promise<void> {
  const jobs = await staffAlertJobs(hub.store.db, clinicId, alert, hub.cache);
  if (!jobs.length) return;
  await enqueue(hub.store.db, jobs, hub.clock.now().toISOString());
  hub.onJobs();
}

/** The clinic a job works for, from the ids it carries. */
export async function clinicOfJob(db: Exec, payload: Record<string, unknown>): Promise<string | undefined> {
  if (typeof payload.appointmentId === 'string') {
    const a = await db.selectFrom('appointment').select('clinic_id').where('id', '=', payload.appointmentId).executeTakeFirst();
    if (a) return a.clinic_id;
  }
  for (const k of ['connectionId', 'targetId', 'clinicId'] as const) {
    const v = payload[k];
    if (typeof v !== 'string') continue;
    if (k === 'clinicId') return v;
    const c = await db.selectFrom('connection').select('clinic_id').where('id', '=', v).executeTakeFirst();
    if (c) return c.clinic_id;
  }
  return undefined;
}

// ------------------------------------------------------------------ addresses, consent

/** E-mail addresses lower-cased; phone numbers as + and digits. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return a.includes('@') ? a.toLowerCase() : a.replace(/[^\d+]/g, '');
}

/** An address's stand-in in the audit log and API answers. */
export function contactRef(address: string): string {
  return `contact-${createHash('sha256').update(normalizeAddress(address)).digest('hex').slice(0, 16)}`;
}

export function maskAddress(address: string | null): string | null {
  if (!address) return null;
  if (address.includes('@')) {
    const [local, domain] = address.split('@');
    return `${local.slice(0, 1)}…@${domain}`;
  }
  return `…${address.slice(-3)}`;
}

export async function audit(hub: Hub, entries: Omit<AuditInput, 'at'>[]): Promise<void> {
  const at = hub.clock.now().toISOString();
  await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, entries.map((e) => ({ at, ...e }))));
}

export async function isOptedOut(db: Exec, address: string): Promise<boolean> {
  return Boolean(await db.selectFrom('notify_optout').select('address').where('address', '=', normalizeAddress(address)).executeTakeFirst());
}

/**
 * Opt an address out of every message, at once (the next send checks it). Audited when it changes something:
 * the same opt-out again (a retried request, a second STOP) is no second entry, as an opt-in of an address
 * not opted out is none.
 */
export async function optOut(hub: Hub, address: string, source: string, actor: string): Promise<void> {
  const a = normalizeAddress(address);
  const at = hub.clock.now().toISOString();
  await hub.store.db.transaction().execute(async (trx) => {
    const r = await trx.insertInto('notify_optout').values({ address: a, channel: a.includes('@') ? 'email' : 'sms', source, created_at: at })
      .onConflict((oc) => oc.column('address').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return;
    await appendAudit(trx, hub.store.dialect, [{ at, actor, action: 'notify.opted_out', entityType: 'contact', entityId: contactRef(a), meta: { source } }]);
  });
}

export async function optIn(hub: Hub, address: string, actor: string): Promise<boolean> {
  const a = normalizeAddress(address);
  const r = await hub.store.db.deleteFrom('notify_optout').where('address', '=', a).executeTakeFirst();
  if (Number(r.numDeletedRows) > 0) await audit(hub, [{ actor, action: 'notify.opted_in', entityType: 'contact', entityId: contactRef(a) }]);
  return Number(r.numDeletedRows) > 0;
}

export async function listOptOuts(hub: Hub): Promise<{ contact: string; address: string; channel: string; source: string; createdAt: string }[]> {
  const rows = await hub.store.db.selectFrom('notify_optout').selectAll().orderBy('created_at', 'desc').limit(1000).execute();
  return rows.map((r) => ({ contact: contactRef(r.address), address: maskAddress(r.address)!, channel: r.channel, source: r.source, createdAt: r.created_at }));
}

export async function listNotifications(hub: Hub, q: { appointmentId?: string; limit?: number }): Promise<Record<string, unknown>[]> {
  let s = hub.store.db.selectFrom('notification').selectAll().orderBy('created_at', 'desc').limit(q.limit ?? 200);
  if (q.appointmentId) s = s.where('appointment_id', '=', q.appointmentId);
  return (await s.execute()).map((r) => ({
    key: r.key, appointmentId: r.appointment_id, audience: r.audience, purpose: r.purpose, connection: r.connection_id, channel: r.channel,
    to: maskAddress(r.address), state: r.state, reason: r.reason, providerId: r.provider_id, deliveryStatus: r.delivery_status,
    sequence: r.sequence, createdAt: r.created_at, updatedAt: r.updated_at,
  }));
}

// ------------------------------------------------------------------ delivery

type Kind = 'email' | 'sms';

export function kindOf(c: LoadedConnection): Kind | undefined {
  const d = c.connector.descriptor;
  if (d.role !== 'notifier') return undefined;
  return d.capabilities.email ? 'email' : d.capabilities.sms ? 'sms' : undefined;
}

/** Channel names (connection ids or kinds) as the clinic's usable notifier connections, in order. */
async function resolveChannels(hub: Hub, clinicId: string, names: string[]): Promise<{ conn: LoadedConnection; kind: Kind }[]> {
  const rows = await hub.store.db.selectFrom('connection').select(['id', 'platform']).where('clinic_id', '=', clinicId).where('status', 'not in', [...INACTIVE]).orderBy('id').execute();
  const notifiers = rows.filter((r) => getNotifier(r.platform));
  const out: { conn: LoadedConnection; kind: Kind }[] = [];
  for (const name of names) {
    for (const r of notifiers) {
      const conn = await loadConnection(hub, r.id);
      const kind = kindOf(conn);
      if (kind && (r.id === name || kind === name) && !out.some((o) => o.conn.record.id === r.id)) {
        out.push({ conn, kind });
        break;
      }
    }
  }
  return out;
}

interface Send {
  key: string;
  clinicId: string;
  appointmentId?: string;
  audience: Audience | 'staff';
  purpose: Purpose | 'staff_alert';
  channels: string[];
  to: { name?: string; email?: string; phone?: string };
  subject: string;
  text: string;
  /** What a text message says (the e-mail's subject line when absent). */
  sms?: string;
  invitation?: Invitation;
  sequence?: number;
}

type Delivered =
  | { outcome: 'sent' | 'duplicate' }
  | { outcome: 'suppressed' | 'refused'; reason: string }
  | { outcome: 'retry'; failure: ConnectorFailure; connectionId?: string };

async function record(hub: Hub, s: Send, row: { state: string; reason?: string; connectionId?: string; channel?: string; address?: string; providerId?: string }, entry?: Omit<AuditInput, 'at'>): Promise<void> {
  const at = hub.clock.now().toISOString();
  const values = {
    clinic_id: s.clinicId, appointment_id: s.appointmentId ?? null, audience: s.audience, purpose: s.purpose, connection_id: row.connectionId ?? null,
    channel: row.channel ?? null, address: row.address ?? null, state: row.state, reason: row.reason ?? null, provider_id: row.providerId ?? null,
    sequence: s.sequence ?? null, updated_at: at,
  };
  await hub.store.db.transaction().execute(async (trx) => {
    await trx.insertInto('notification').values({ key: s.key, delivery_status: null, created_at: at, ...values })
      .onConflict((oc) => oc.column('key').doUpdateSet(values)).execute();
    if (entry) await appendAudit(trx, hub.store.dialect, [{ at, ...entry }]);
  });
}

/** Send one message through the first of its channels that can reach the recipient; record and audit the outcome. */
async function deliver(hub: Hub, s: Send): Promise<Delivered> {
  const prior = await hub.store.db.selectFrom('notification').select(['state', 'reason']).where('key', '=', s.key).executeTakeFirst();
  if (prior?.state === 'sent') return { outcome: 'duplicate' };
  const entity = s.appointmentId ? { entityType: 'appointment', entityId: s.appointmentId } : { entityType: 'clinic', entityId: s.clinicId };
  const base = { key: s.key, purpose: s.purpose, audience: s.audience.startsWith('practitioner:') ? 'practitioner' : s.audience, ...(s.audience.startsWith('practitioner:') ? { practitioner: s.audience.slice(13) } : {}) };
  const actor = `worker:${hub.nodeId}`;
  const suppress = async (reason: string): Promise<Delivered> => {
    // The same message suppressed for the same reason before (its job ran again after a crash): once in the audit.
    if (prior?.state !== 'suppressed' || prior.reason !== reason) await record(hub, s, { state: 'suppressed', reason }, { actor, action: 'notify.suppressed', ...entity, meta: { ...base, reason } });
    return { outcome: 'suppressed', reason };
  };
  const channels = await resolveChannels(hub, s.clinicId, s.channels);
  if (!channels.length) return suppress(`no notifier connection for ${s.channels.join(', ')}`);
  let why = 'no address for any channel';
  for (const { conn, kind } of channels) {
    const address = kind === 'email' ? s.to.email : s.to.phone;
    if (!address) continue;
    if (await isOptedOut(hub.store.db, address)) {
      why = 'the recipient opted out';
      continue;
    }
    if (conn.record.status === 'needs_reauth') return { outcome: 'retry', failure: { class: 'auth', message: `connection ${conn.record.id} needs reconnecting` }, connectionId: conn.record.id };
    const m: OutboundMessage = {
      key: s.key, to: { name: s.to.name, [kind === 'email' ? 'email' : 'phone']: address }, subject: s.subject, text: kind === 'email' ? s.text : (s.sms ?? s.subject),
      ...(kind === 'email' ? { html: htmlOf(s.text), invitation: s.invitation } : {}),
    };
    const row = { connectionId: conn.record.id, channel: kind, address: normalizeAddress(address) };
    const meta = { ...base, connection: conn.record.id, channel: kind, ...(kind === 'email' && s.invitation ? { method: s.invitation.method, sequence: s.invitation.sequence } : {}) };
    let r: WriteOutcome<{ providerId?: string }>;
    try {
      const notifier = getNotifier(conn.record.platform)!;
      await record(hub, s, { state: 'sending', ...row });
      r = await notifier.client({ ...connectionContext(hub, conn), dataDir: hub.dataDir }).send(m);
    } catch (err) {
      if (!(err instanceof ConnectionMisconfigured)) throw err;
      r = { ok: false, failure: { class: 'permanent', message: err.message } };
    }
    if (r.ok) {
      await record(hub, s, { state: 'sent', ...row, providerId: r.value.providerId }, { actor, action: 'notify.sent', ...entity, meta: { ...meta, providerId: r.value.providerId } });
      return { outcome: 'sent' };
    }
    if (r.failure.class !== 'permanent') return { outcome: 'retry', failure: r.failure, connectionId: conn.record.id };
    await record(hub, s, { state: 'failed', reason: r.failure.message, ...row }, { actor, action: 'notify.failed', ...entity, meta: { ...meta, reason: r.failure.message } });
    return { outcome: 'refused', reason: r.failure.message };
  }
  return suppress(why);
}

// ------------------------------------------------------------------ rendering

interface Names {
  clinic: string;
  language: string;
  practitioner?: { name: string; email?: string; hasCalendar: boolean };
  service?: string;
  location?: string;
  address?: string;
}

async function namesFor(hub: Hub, a: { clinicId: string; practitionerId: string; serviceId?: string; locationId?: string }, cn: ClinicNotify): Promise<Names> {
  const db = hub.store.db;
  const p = await db.selectFrom('practitioner').select(['name', 'email', 'targets']).where('id', '=', a.practitionerId).executeTakeFirst();
  const s = a.serviceId ? await db.selectFrom('service').select('name').where('id', '=', a.serviceId).executeTakeFirst() : undefined;
  const l = a.locationId ? await db.selectFrom('location').select(['name', 'address']).where('id', '=', a.locationId).executeTakeFirst() : undefined;
  let hasCalendar = false;
  for (const b of (p ? JSON.parse(p.targets) : []) as { connection: string }[]) {
    const row = await db.selectFrom('connection').select(['platform', 'status']).where('id', '=', b.connection).executeTakeFirst();
    const t = row && !INACTIVE.has(row.status) ? getTarget(row.platform) : undefined;
    if (t?.descriptor.kind === 'calendar' && t.descriptor.capabilities.push) hasCalendar = true;
  }
  return {
    clinic: cn.name, language: cn.language, service: s?.name, location: l?.name, address: l?.address ?? undefined,
    practitioner: p ? { name: p.name, email: p.email ?? undefined, hasCalendar } : undefined,
  };
}

function patientMessage(purpose: Purpose, a: Appointment, at: Snapshot, told: Told | undefined, n: Names, cn: ClinicNotify, link?: string): { subject: string; text: string } {
  const values: Record<string, string | undefined> = {
    clinic: n.clinic, practitioner: n.practitioner?.name, service: n.service ?? (n.language.startsWith('de') ? 'Termin' : 'appointment'),
    location: n.location, address: n.address, ref: a.id, 'patient.name': a.patient.name, 'patient.firstName': a.patient.name.trim().split(/\s+/)[0],
    when: whenText(at.start, at.end, a.timeZone, n.language), date: whenText(at.start, at.end, a.timeZone, n.language).split(', ').slice(0, 2).join(', '),
    time: new Intl.DateTimeFormat('en-GB', { timeZone: a.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(at.start)),
    'previous.when': told ? whenText(told.start, told.end, told.timeZone, n.language) : undefined, link,
  };
  return fill(templateFor(purpose, n.language, cn.settings.templates), values, PATIENT_VARS);
}

function invitationOf(a: Appointment, at: Snapshot, method: Invitation['method'], sequence: number, summary: string, description: string, location?: string): Invitation {
  return { method, uid: `meridian-${a.id}`, sequence, start: at.start, end: at.end, timeZone: at.timeZone, summary, description, location };
}

// ------------------------------------------------------------------ jobs

async function loadTold(hub: Hub, appointmentId: string): Promise<Map<string, Told>> {
  const rows = await hub.store.db.selectFrom('notify_told').selectAll().where('appointment_id', '=', appointmentId).execute();
  return new Map(rows.map((r) => [r.audience, JSON.parse(r.told) as Told]));
}

async function saveTold(hub: Hub, appointmentId: string, audience: Audience, told: Told): Promise<void> {
  const at = hub.clock.now().toISOString();
  await hub.store.db.insertInto('notify_told').values({ appointment_id: appointmentId, audience, told: JSON.stringify(told), updated_at: at })
    .onConflict((oc) => oc.columns(['appointment_id', 'audience']).doUpdateSet({ told: JSON.stringify(told), updated_at: at })).execute();
}

const ENABLED: Record<NoticePurpose, keyof Pick<Rules, 'confirmations' | 'changes' | 'cancellations'>> = {
  confirmation: 'confirmations', change: 'changes', cancellation: 'cancellations',
};

function retry(d: Extract<Delivered, { outcome: 'retry' }>): JobResult {
  return { ok: false, failure: d.failure, connectionId: d.connectionId };
}

/** The grace period is over: tell each audience the difference between what it was told and what is true now. */
export async function runNotice(hub: Hub, job: Job<typeof NOTIFY_NOTICE>): Promise<JobResult> {
  const { appointmentId } = job.payload;
  const a = await getAppointment(hub.store.db, appointmentId);
  const cn = a ? await clinicNotify(hub.store.db, a.clinicId, hub.cache) : undefined;
  if (!a || !cn) return { ok: true, note: 'nothing to notify' };
  const rules = rulesFor(cn.settings, a.serviceId);
  const told = await loadTold(hub, a.id);
  const names = await namesFor(hub, a, cn);
  const audiences: Audience[] = ['patient'];
  if (cn.settings.practitioners?.notify !== false) {
    audiences.push(`practitioner:${a.practitionerId}`);
    for (const k of told.keys()) if (k.startsWith('practitioner:') && !audiences.includes(k as Audience)) audiences.push(k as Audience);
  }
  const notes: string[] = [];
  for (const audience of audiences) {
    const was = told.get(audience);
    const now = snapshotFor(a, audience, was);
    const purpose = noticeFor(was, now);
    if (now && Date.parse(now.end) <= hub.clock.now().getTime()) continue;
    if (!purpose || !now) {
      if (audience === 'patient' && was && now) notes.push('unchanged');
      continue;
    }
    const sequence = nextSequence(was, a.revision);
    const key = `${purpose}:${a.id}:${audience}:${sequence}`;
    const tell = { ...now, sequence };
    if (audience === 'patient' && !rules[ENABLED[purpose]]) {
      // The clinic's booking tool says it itself: remember it as said, so the next change is told right.
      await saveTold(hub, a.id, audience, tell);
      await record(hub, { key, clinicId: a.clinicId, appointmentId: a.id, audience, purpose, channels: [], to: {}, subject: '', text: '', sequence }, { state: 'suppressed', reason: 'turned off in the clinic\'s rules' },
        { actor: `worker:${hub.nodeId}`, action: 'notify.suppressed', entityType: 'appointment', entityId: a.id, meta: { key, purpose, audience, reason: 'turned off in the clinic\'s rules' } });
      continue;
    }
    const method = purpose === 'cancellation' ? 'CANCEL' : 'REQUEST';
    let send: Send;
    if (audience === 'patient') {
      const text = patientMessage(purpose, a, now, was, names, cn);
      const summary = `${names.service ?? 'Appointment'} - ${names.clinic}`;
      const description = [names.service, names.practitioner?.name].filter(Boolean).join(', ');
      send = {
        key, clinicId: a.clinicId, appointmentId: a.id, audience, purpose, channels: rules.channel, to: a.patient, ...text, sequence,
        invitation: invitationOf(a, now, method, sequence, summary, description, [names.location, names.address].filter(Boolean).join(', ') || undefined),
      };
    } else {
      const pid = audience.slice('practitioner:'.length);
      const pn = pid === a.practitionerId ? names : await namesFor(hub, { ...a, practitionerId: pid }, cn);
      if (!pn.practitioner?.email) continue;
      const level = cn.settings.practitioners?.privacy ?? 'minimal';
      const ev = renderEventText({ ...a, ...now, status: purpose === 'cancellation' ? 'cancelled' : 'booked' }, { clinicName: pn.clinic, practitionerName: pn.practitioner.name, serviceName: pn.service, locationName: pn.location }, level);
      const text = fill(PRACTITIONER_TEMPLATES[purpose], {
        title: ev.title, description: ev.description, when: whenText(now.start, now.end, a.timeZone, pn.language),
        'previous.when': was ? whenText(was.start, was.end, was.timeZone, pn.language) : undefined,
      }, [...PLACEHOLDERS[level], 'title', 'description', ...TIME_VARS]);
      send = {
        key, clinicId: a.clinicId, appointmentId: a.id, audience, purpose, channels: cn.settings.practitioners?.channel ?? ['email'],
        to: { name: pn.practitioner.name, email: pn.practitioner.email }, ...text, sequence,
        // A practitioner whose calendar Meridian writes to gets the event there already: an invitation would duplicate it.
        invitation: pn.practitioner.hasCalendar ? undefined : invitationOf(a, now, method, sequence, ev.title, ev.description, ev.location),
      };
    }
    const d = await deliver(hub, send);
    if (d.outcome === 'retry') return retry(d);
    if (d.outcome === 'sent' || d.outcome === 'duplicate') await saveTold(hub, a.id, audience, tell);
    notes.push(`${audience} ${purpose} ${d.outcome}`);
  }
  if (notes.includes('unchanged') && notes.length === 1) {
    await audit(hub, [{ actor: `worker:${hub.nodeId}`, action: 'notify.suppressed', entityType: 'appointment', entityId: a.id, meta: { purpose: 'change', audience: 'patient', reason: 'back to what the patient was last told' } }]);
  }
  return { ok: true, note: notes.join('; ') || 'nothing to tell' };
}

/** A reminder or follow-up is due: send it only if it still fits the appointment as it is. */
export async function runTimed(hub: Hub, job: Job<typeof NOTIFY_TIMED>): Promise<JobResult> {
  const p = job.payload;
  const a = await getAppointment(hub.store.db, p.appointmentId);
  const cn = a ? await clinicNotify(hub.store.db, a.clinicId, hub.cache) : undefined;
  if (!a || !cn) return { ok: true, note: 'nothing to notify' };
  const rules = rulesFor(cn.settings, a.serviceId);
  const now = hub.clock.now().getTime();
  const key = `${p.kind}:${a.id}:${p.ruleId}:${p.kind === 'reminder' ? p.start : p.end}`;
  const base: Send = { key, clinicId: a.clinicId, appointmentId: a.id, audience: 'patient', purpose: p.kind, channels: [], to: a.patient, subject: '', text: '' };
  const suppress = async (reason: string): Promise<JobResult> => {
    await record(hub, base, { state: 'suppressed', reason }, { actor: `worker:${hub.nodeId}`, action: 'notify.suppressed', entityType: 'appointment', entityId: a.id, meta: { key, purpose: p.kind, audience: 'patient', rule: p.ruleId, reason } });
    return { ok: true, note: `suppressed: ${reason}` };
  };
  const rule = p.kind === 'reminder' ? rules.reminders.find((r) => r.id === p.ruleId) : rules.followUps.find((f) => f.id === p.ruleId && f.kind === p.kind);
  if (!rule) return suppress('the rule is no longer in the clinic\'s settings');
  const why = timedSuppression(p, a, now);
  if (why) return suppress(why);
  const zone = patientZone(a);
  if (inQuietHours(now, zone, rules.quietHours)) {
    // Running late into quiet hours (a backlog, retries): wait for the morning if that is still in time.
    const later = quietEnd(now, zone, rules.quietHours!);
    if (p.kind === 'reminder' && later >= Date.parse(a.start)) return suppress('quiet hours last until the appointment starts');
    await setPendingJob(hub.store.db, job.dedupeKey!, { kind: job.kind, payload: job.payload, runAt: new Date(later).toISOString() }, hub.clock.now().toISOString());
    return { ok: true, note: 'deferred: quiet hours' };
  }
  const names = await namesFor(hub, a, cn);
  const snap: Snapshot = { state: 'booked', start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId };
  const text = patientMessage(p.kind, a, snap, undefined, names, cn, 'link' in rule ? rule.link : undefined);
  const d = await deliver(hub, { ...base, channels: rule.channel, ...text, sms: smsText(p.kind, text.subject, cn.language) });
  if (d.outcome === 'retry') return retry(d);
  return { ok: true, note: d.outcome };
}

export async function runStaffAlert(hub: Hub, job: Job<typeof NOTIFY_STAFF>): Promise<JobResult> {
  const p = job.payload;
  const cn = await clinicNotify(hub.store.db, p.clinicId, hub.cache);
  const staff = cn?.settings.staff;
  if (!cn || !staff) return { ok: true, note: 'no staff addresses' };
  const link = hub.publicUrl ? `\n\n${hub.publicUrl.replace(/\/$/, '')}/` : '';
  for (const email of staff.emails) {
    const d = await deliver(hub, {
      key: `staff:${p.type}:${p.ref}:${contactRef(email)}`, clinicId: p.clinicId, audience: 'staff', purpose: 'staff_alert',
      channels: staff.channel ?? ['email'], to: { email }, subject: `[Meridian] ${ALERT_TITLES[p.type]}`, text: `${p.summary}${link}`,
    });
    if (d.outcome === 'retry') return retry(d);
  }
  return { ok: true, note: 'sent' };
}
