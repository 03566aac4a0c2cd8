// Leads into CRMs: a lead-form submission becomes a lead / contact in every CRM bound at clinic level
// (`clinic.targets`) whose connection says it is covered by the clinic's data agreement — a lead is nothing
// but contact data, so a CRM outside the agreement gets none. One job per (lead, CRM), enqueued in the same
// transaction as the lead; the connector's `upsertLead` is idempotent per lead id where the CRM allows it.
import { getConnector, getTarget } from '../../connectors/registry.ts';
import type { CrmLead } from '../../connectors/types.ts';
import { CRM_LEAD, type Job, type JobResult, type NewJob } from '../../domain/jobs.ts';
import { INACTIVE, getConnectionRow, toConnection, type Exec, type TargetBinding } from '../../store/repo.ts';
import { appendAudit } from '../../store/audit.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { coveredByAgreement, privacyOf } from './render.ts';

export async function crmLeadJobs(db: Exec, clinicId: string, leadId: string): Promise<NewJob[]> {
  const c = await db.selectFrom('clinic').select('settings').where('id', '=', clinicId).executeTakeFirst();
  const bindings: TargetBinding[] = (c ? JSON.parse(c.settings).targets : undefined) ?? [];
  const jobs: NewJob[] = [];
  for (const b of bindings) {
    const row = await getConnectionRow(db, b.connection);
    if (!row || INACTIVE.has(row.status) || getTarget(row.platform)?.descriptor.kind !== 'crm' || !coveredByAgreement(toConnection(row))) continue;
    jobs.push({ kind: CRM_LEAD, payload: { leadId, targetId: b.connection }, dedupeKey: `${CRM_LEAD}:${leadId}:${b.connection}` });
  }
  return jobs;
}

export async function runCrmLeadJob(hub: Hub, job: Job<typeof CRM_LEAD>): Promise<JobResult> {
  const { leadId, targetId } = job.payload;
  const db = hub.store.db;
  const lead = await db.selectFrom('lead').selectAll().where('id', '=', leadId).executeTakeFirst();
  if (!lead) return { ok: true, note: 'gone' };
  const conn = await loadConnection(hub, targetId);
  const client = getTarget(conn.record.platform)?.client?.(connectionContext(hub, conn));
  if (!client?.upsertLead || INACTIVE.has(conn.record.status) || !coveredByAgreement(conn.record)) return { ok: true, note: 'skipped' };
  if (conn.record.status === 'needs_reauth') return { ok: false, failure: { class: 'auth', message: `connection ${targetId} needs reconnecting` }, connectionId: targetId };
  // What the patient wrote about their visit is health data: only at `full`.
  const full = privacyOf(conn.record) === 'full';
  const service = lead.service_id ? (await db.selectFrom('service').select('name').where('id', '=', lead.service_id).executeTakeFirst())?.name : lead.service_text;
  const description = [
    `Lead from ${getConnector(lead.platform)?.descriptor.displayName ?? lead.platform} via Meridian (ref ${leadId}).`,
    ...(full && service ? [`Service: ${service}`] : []),
    ...(full && lead.notes ? [`Notes: ${lead.notes}`] : []),
  ].join('\n');
  const input: CrmLead = {
    leadId, name: lead.patient_name, description, submittedAt: lead.submitted_at,
    ...(lead.patient_email ? { email: lead.patient_email } : {}), ...(lead.patient_phone ? { phone: lead.patient_phone } : {}),
  };
  const r = await client.upsertLead(input);
  if (!r.ok) return { ok: false, failure: r.failure, connectionId: targetId };
  await db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
    at: hub.clock.now().toISOString(), actor: `worker:${hub.nodeId}`, action: 'crm.lead_written', entityType: 'lead', entityId: leadId, meta: { target: targetId, remoteId: r.value.remoteId },
  }]));
  return { ok: true, note: 'written' };
}
