// Patient erasure on request (`meridian patients erase --email`, POST /api/v1/patients/erase): the
// patient's personal data is removed or pseudonymised everywhere Meridian keeps it — appointments, lead
// rows, the raw bodies of the webhook deliveries about them, held changes, waiting jobs, notification
// addresses and the audit log's before/after snapshots (store/audit.ts erases those without breaking
// the hash chain). The appointments themselves stay (times, practitioner, status: the clinic's schedule
// and its books need them) under the name "Erased patient", and every calendar/CRM target is re-rendered
// so no event keeps the name. Delivery rows stay too (their ids keep a resend from being applied again).
//
// What this cannot reach: the booking platform itself (erase the patient there too, or its next webhook
// or poll brings the data back), copies already sent to external calendars' trash or a CRM's history,
// and audit entries written before erasable entries existed (counted in `auditLegacy`). On SQLite the
// freed pages are zeroed (secure_delete) and the WAL checkpointed; on PostgreSQL old row versions remain
// until VACUUM.
import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { DB } from '../../store/schema.ts';
import type { Dialect } from '../../store/migrations.ts';
import { appendAudit, erasedEntry, personalValues } from '../../store/audit.ts';
import { getAppointment } from '../../store/repo.ts';
import { commitAppointment } from './commit.ts';
import type { Hub } from '../hub/hub.ts';

export const ERASED_NAME = 'Erased patient';
const ERASED_BODY = 'erased:';

export interface ErasureReport {
  /** Appointments pseudonymised (ids). */
  appointments: string[];
  leads: number;
  deliveries: number;
  auditEntries: number;
  /** Audit entries about the patient written before 0009, which cannot be erased without breaking the chain. */
  auditLegacy: number;
  heldChanges: number;
  jobs: number;
  notifications: number;
  /** Calendar/CRM writes queued to re-render the events. */
  targetJobs: number;
}

/** Rows whose `col` contains any of `needles` (lower-cased), portable across SQLite and PostgreSQL. */
function containsAny(dialect: Dialect, col: string, needles: string[]) {
  const text = sql`lower(coalesce(${sql.ref(col)}, ''))`;
  const f = (n: string) => (dialect === 'sqlite' ? sql<boolean>`instr(${text}, ${n}) > 0` : sql<boolean>`strpos(${text}, ${n}) > 0`);
  return sql<boolean>`(${sql.join(needles.map(f), sql` or `)})`;
}

/** Replace the personal values in a JSON text that `hit` selects; undefined when nothing changed. */
function scrubJson(text: string, hit: (v: string) => boolean): string | undefined {
  let changed = false;
  const out = personalValues(JSON.parse(text), (_p, v) => {
    if (!hit(v)) return undefined;
    changed = true;
    return '[erased]';
  });
  return changed ? JSON.stringify(out) : undefined;
}

export async function erasePatient(hub: Hub, input: { email: string }, actor: string): Promise<ErasureReport> {
  const email = input.email.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new Error('an e-mail address is needed to find the patient');
  const at = hub.clock.now().toISOString();
  const report: ErasureReport = { appointments: [], leads: 0, deliveries: 0, auditEntries: 0, auditLegacy: 0, heldChanges: 0, jobs: 0, notifications: 0, targetJobs: 0 };
  if (hub.store.dialect === 'sqlite') await sql`pragma secure_delete = on`.execute(hub.store.db);

  const d = hub.store.dialect;
  await hub.store.db.transaction().execute(async (trx) => {
    const appts = await trx.selectFrom('appointment').selectAll().where(sql<boolean>`lower(patient_email) = ${email}`).execute();
    const leads = await trx.selectFrom('lead').selectAll().where(sql<boolean>`lower(patient_email) = ${email}`).execute();
    // What identifies them: the e-mail, and the names and phones found with it.
    const names = new Set([...appts, ...leads].map((r) => r.patient_name.trim().toLowerCase()).filter((n) => n && n !== ERASED_NAME.toLowerCase()));
    const phones = new Set([...appts, ...leads].map((r) => r.patient_phone?.trim()).filter((p): p is string => Boolean(p)));
    const strong = [email, encodeURIComponent(email).toLowerCase(), ...phones];
    const isStrong = (v: string) => v.trim().toLowerCase() === email || phones.has(v.trim());
    const isTheirs = (v: string) => isStrong(v) || names.has(v.trim().toLowerCase());
    const entityIds = [...appts.map((a) => a.id), ...leads.map((l) => l.id), ...leads.map((l) => l.appointment_id).filter((x): x is string => Boolean(x))];

    // Audit entries: everything personal in the entries about their appointments and leads; elsewhere
    // only where their e-mail or phone appears (a name alone could be someone else's).
    const deliveryIds = new Set(leads.map((l) => l.delivery_row_id).filter((x): x is string => Boolean(x)));
    const audit = await trx.selectFrom('audit').selectAll()
      .where((eb) => eb.or([
        ...(entityIds.length ? [eb('entity_id', 'in', entityIds)] : []),
        containsAny(d, 'before', strong), containsAny(d, 'after', strong), containsAny(d, 'meta', strong),
      ])).orderBy('seq').execute();
    for (const r of audit) {
      const mine = entityIds.includes(r.entity_id);
      const meta = r.meta ? JSON.parse(r.meta) as Record<string, unknown> : {};
      if (mine && typeof meta.delivery === 'string') deliveryIds.add(meta.delivery);
      const mentions = mine || [r.before, r.after, r.meta].some((t) => t !== null && strong.some((s) => t.toLowerCase().includes(s)));
      if (!mentions) continue;
      if (r.pii === null) {
        if ([r.before, r.after, r.meta].some((t) => t !== null && scrubJson(t, isTheirs) !== undefined)) report.auditLegacy += 1;
        continue;
      }
      const patch = erasedEntry(r, (_path, v) => mine || isTheirs(v));
      if (!patch) continue;
      await trx.updateTable('audit').set(patch).where('seq', '=', r.seq).execute();
      report.auditEntries += 1;
    }

    // Webhook deliveries about them: by link, and any whose raw body names their e-mail or phone.
    const byBody = await trx.selectFrom('delivery').select('id').where((eb) => eb.and([eb('body', '!=', ERASED_BODY), containsAny(d, 'body', strong)])).execute();
    for (const d of byBody) deliveryIds.add(d.id);
    for (const ids of chunks([...deliveryIds], 500)) {
      const r = await trx.updateTable('delivery').set({ body: ERASED_BODY }).where('id', 'in', ids).where('body', '!=', ERASED_BODY).executeTakeFirst();
      report.deliveries += Number(r.numUpdatedRows);
    }

    for (const l of leads) {
      await trx.updateTable('lead').set({ patient_name: ERASED_NAME, patient_email: null, patient_phone: null, notes: null, updated_at: at }).where('id', '=', l.id).execute();
      report.leads += 1;
    }

    // Held changes and waiting jobs may carry a SourceChange with the patient in it.
    for (const h of await trx.selectFrom('held_change').select(['id', 'changes']).where(containsAny(d, 'changes', strong)).execute()) {
      const next = scrubJson(h.changes, isTheirs);
      if (next) await trx.updateTable('held_change').set({ changes: next }).where('id', '=', h.id).execute();
      if (next) report.heldChanges += 1;
    }
    for (const j of await trx.selectFrom('job').select(['id', 'payload']).where(containsAny(d, 'payload', strong)).execute()) {
      const next = scrubJson(j.payload, isTheirs);
      if (next) await trx.updateTable('job').set({ payload: next }).where('id', '=', j.id).execute();
      if (next) report.jobs += 1;
    }
    const n = await trx.updateTable('notification').set({ address: null })
      .where((eb) => eb.or([eb(sql`lower(address)`, 'in', [email, ...phones]), ...(entityIds.length ? [eb.and([eb('appointment_id', 'in', entityIds), eb('audience', '=', 'patient')])] : [])]))
      .executeTakeFirst();
    report.notifications = Number(n.numUpdatedRows);

    // The appointments: pseudonymised, a new revision, and every target re-rendered from it.
    for (const row of appts) {
      const before = (await getAppointment(trx, row.id))!;
      const next = { ...before, patient: { name: ERASED_NAME }, notes: undefined, revision: before.revision + 1, updatedAt: at };
      // No audit entry of its own (the erasure is audited once below, without whom) and no message.
      const done = await commitAppointment(trx, hub, { before, next, actor, effects: 'rerender' });
      report.targetJobs += done.effectJobs;
      report.appointments.push(row.id);
    }
    await auditErasure(trx, hub, at, actor, report);
  });

  if (hub.store.dialect === 'sqlite') {
    // Earlier page splits leave stale copies of rows in unused page space: only a rebuild removes them all.
    await sql`vacuum`.execute(hub.store.db);
    await sql`pragma secure_delete = off`.execute(hub.store.db);
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(hub.store.db);
  }
  hub.onJobs();
  hub.log.info({ appointments: report.appointments.length, auditEntries: report.auditEntries, deliveries: report.deliveries }, 'patient erased');
  return report;
}

/** The erasure itself is audited — without saying whom it was about. */
async function auditErasure(trx: Transaction<DB>, hub: Hub, at: string, actor: string, r: ErasureReport): Promise<void> {
  const { appointments, ...counts } = r;
  await appendAudit(trx, hub.store.dialect, [{ at, actor, action: 'patient.erased', entityType: 'patient', entityId: randomUUID(), meta: { appointments, ...counts } }]);
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
