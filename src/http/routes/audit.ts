// The audit log: one appointment's trail, the filtered log, its export, and the hash chain's check.
import { z } from 'zod';
import { verifyAudit } from '../../store/audit.ts';
import { auditEntryView, auditRowsOf, selectAuditMatching } from '../../store/queries/audit.ts';
import { Download, defineRoute, idParam, instant, type Route } from '../route.ts';
import { appointmentOr404 } from './appointments.ts';

const auditQuery = z.object({
  entity: z.string().optional().describe('an appointment (or other entity) id'),
  action: z.string().optional().describe('an action; `appointment.*` for every action starting so'),
  actor: z.string().optional().describe('an actor (`user:…`, `api:…`, `worker:…`); a trailing * matches a prefix'),
  patient: z.string().min(2).max(200).optional().describe('part of a patient\'s name or e-mail: entries about their appointments'),
  from: instant.optional(), to: instant.optional(),
});
const AUDIT_EXPORT_MAX = 200_000;

/** One CSV cell (RFC 4180 quoting); a leading = + - @ is defused so a spreadsheet never runs it as a formula. */
function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let t = String(v);
  if (/^[=+\-@\t\r]/.test(t)) t = `'${t}`;
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

export const AUDIT_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/appointments/:id/audit', scope: 'read', tag: 'audit', params: idParam, summary: 'The audit trail of one appointment',
    async handler({ hub, params }) {
      await appointmentOr404(hub, params.id);
      return { items: (await auditRowsOf(hub.store.db, params.id)).map(auditEntryView) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/audit/verify', scope: 'read', tag: 'audit', summary: 'Check the audit hash chain end to end',
    handler: ({ hub }) => verifyAudit(hub.store.db),
  }),
  defineRoute({
    method: 'GET', path: '/audit', scope: 'read', tag: 'audit', summary: 'The audit log, newest first',
    query: auditQuery.extend({
      before: z.coerce.number().int().optional().describe('sequence number to page from'), limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    async handler({ hub, query: q }) {
      let s = await selectAuditMatching(hub.store.db, q);
      if (q.before) s = s.where('seq', '<', q.before);
      const rows = await s.orderBy('seq', 'desc').limit(q.limit ?? 100).execute();
      return { items: rows.map(auditEntryView) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/audit/export', scope: 'read', tag: 'audit',
    summary: 'The audit entries matching the same filters as /audit, oldest first, as CSV or JSON Lines (with each entry\'s hash and its predecessor\'s)',
    query: auditQuery.extend({ format: z.enum(['csv', 'jsonl']).default('jsonl') }),
    async handler({ hub, query: q }) {
      const rows = await (await selectAuditMatching(hub.store.db, q)).orderBy('seq').limit(AUDIT_EXPORT_MAX).execute();
      const stamp = hub.clock.now().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      if (q.format === 'jsonl') return new Download('application/x-ndjson; charset=utf-8', `meridian-audit-${stamp}.jsonl`, rows.map((r) => `${JSON.stringify({ ...auditEntryView(r), prevHash: r.prev_hash, hash: r.hash })}\n`).join(''));
      const cols = ['seq', 'at', 'actor', 'action', 'entity_type', 'entity_id', 'before', 'after', 'meta', 'prev_hash', 'hash'] as const;
      const lines = [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))];
      return new Download('text/csv; charset=utf-8', `meridian-audit-${stamp}.csv`, `${lines.join('\r\n')}\r\n`);
    },
  }),
];
