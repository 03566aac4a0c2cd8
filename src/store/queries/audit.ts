// Reading the audit log back: one entity's trail, and the filtered log staff browse and export.
import { sql } from 'kysely';
import type { AuditTable } from '../schema.ts';
import type { Exec } from '../repo.ts';

/** An audit row as the API shows it (the sealed columns parsed). */
export function auditEntryView(r: Pick<AuditTable, 'seq' | 'at' | 'actor' | 'action' | 'entity_type' | 'entity_id' | 'before' | 'after' | 'meta'>) {
  const j = (s: string | null) => (s === null ? undefined : JSON.parse(s));
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, entityType: r.entity_type, entityId: r.entity_id, before: j(r.before), after: j(r.after), meta: j(r.meta) };
}

/** Every audit row about one entity, oldest first. */
export function auditRowsOf(db: Exec, entityId: string) {
  return db.selectFrom('audit').selectAll().where('entity_id', '=', entityId).orderBy('seq').execute();
}

export interface AuditFilter {
  entity?: string;
  action?: string;
  actor?: string;
  patient?: string;
  from?: string;
  to?: string;
}

/** LIKE with an explicit escape character, so `%`, `_` and a backslash in a search match themselves on SQLite too. */
const escapeLike = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);
const likeEscaped = (column: string, pattern: string) => sql<boolean>`${sql.ref(column)} like ${pattern} escape '\\'`;
const lowerLikeEscaped = (column: string, pattern: string) => sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;

/** `x*` matches a prefix; anything else matches exactly. */
function textMatch(column: 'action' | 'actor', v: string) {
  return v.endsWith('*') ? likeEscaped(column, `${escapeLike(v.slice(0, -1))}%`) : sql<boolean>`${sql.ref(column)} = ${v}`;
}

/** The audit rows matching a filter, as a query the caller orders and limits. */
export async function selectAuditMatching(db: Exec, q: AuditFilter) {
  let s = db.selectFrom('audit').selectAll();
  if (q.entity) s = s.where('entity_id', '=', q.entity);
  if (q.action) s = s.where(textMatch('action', q.action));
  if (q.actor) s = s.where(textMatch('actor', q.actor));
  if (q.from) s = s.where('at', '>=', new Date(q.from).toISOString());
  if (q.to) s = s.where('at', '<', new Date(q.to).toISOString());
  if (q.patient) {
    // Matched on the appointments as they are now: the patient's whole trail, whatever each entry holds.
    const like = `%${escapeLike(q.patient.toLowerCase())}%`;
    const ids = await db.selectFrom('appointment').select('id')
      .where((eb) => eb.or([lowerLikeEscaped('patient_name', like), lowerLikeEscaped('patient_email', like)])).limit(5000).execute();
    s = s.where('entity_id', 'in', ids.length ? ids.map((r) => r.id) : ['']);
  }
  return s;
}
