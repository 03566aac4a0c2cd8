// The audit log: append-only, each entry holding the SHA-256 of the previous one. Appends happen in
// the caller's transaction, serialised by locking the single head row.
import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { AuditTable, DB } from './schema.ts';
import type { Dialect } from './migrations.ts';
import { canonicalJson } from '../domain/apply.ts';

export interface AuditInput {
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
  meta?: Record<string, unknown>;
  at: string;
}

export const GENESIS = '0'.repeat(64);

export function entryHash(prevHash: string, e: Omit<AuditTable, 'hash' | 'prev_hash'>): string {
  const body = canonicalJson({
    seq: e.seq, at: e.at, actor: e.actor, action: e.action, entity_type: e.entity_type, entity_id: e.entity_id,
    before: e.before, after: e.after, meta: e.meta,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

export async function appendAudit(trx: Transaction<DB>, dialect: Dialect, entries: AuditInput[]): Promise<void> {
  if (entries.length === 0) return;
  let q = trx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
  if (dialect === 'postgres') q = q.forUpdate();
  const head = await q.executeTakeFirstOrThrow();
  let { seq, hash } = head;
  const rows: AuditTable[] = [];
  for (const e of entries) {
    seq += 1;
    const row = {
      seq, at: e.at, actor: e.actor, action: e.action, entity_type: e.entityType, entity_id: e.entityId,
      before: e.before === undefined ? null : JSON.stringify(e.before),
      after: e.after === undefined ? null : JSON.stringify(e.after),
      meta: e.meta === undefined ? null : JSON.stringify(e.meta),
    };
    const h = entryHash(hash, row);
    rows.push({ ...row, prev_hash: hash, hash: h });
    hash = h;
  }
  await trx.insertInto('audit').values(rows).execute();
  await trx.updateTable('audit_head').set({ seq, hash }).where('id', '=', 1).execute();
}

export interface VerifyReport {
  ok: boolean;
  entries: number;
  /** First broken entry, if any. */
  brokenAt?: number;
  reason?: string;
  headHash: string;
}

export async function verifyAudit(db: Kysely<DB>, onProgress?: (n: number) => void): Promise<VerifyReport> {
  let prev = GENESIS;
  let expectSeq = 1;
  let n = 0;
  const page = 2000;
  for (;;) {
    const rows = await db.selectFrom('audit').selectAll().where('seq', '>=', expectSeq).orderBy('seq').limit(page).execute();
    for (const r of rows) {
      if (r.seq !== expectSeq) return { ok: false, entries: n, brokenAt: expectSeq, reason: `entry ${expectSeq} is missing`, headHash: prev };
      if (r.prev_hash !== prev) return { ok: false, entries: n, brokenAt: r.seq, reason: `entry ${r.seq} does not link to entry ${r.seq - 1}`, headHash: prev };
      const h = entryHash(prev, r);
      if (h !== r.hash) return { ok: false, entries: n, brokenAt: r.seq, reason: `entry ${r.seq} was altered (hash mismatch)`, headHash: prev };
      prev = h;
      expectSeq += 1;
      n += 1;
    }
    onProgress?.(n);
    if (rows.length < page) break;
  }
  const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  if (head && (head.seq !== n || head.hash !== prev)) {
    return { ok: false, entries: n, brokenAt: n + 1, reason: `the chain ends at entry ${n} but the head says ${head.seq} (entries removed?)`, headHash: prev };
  }
  return { ok: true, entries: n, headHash: prev };
}
