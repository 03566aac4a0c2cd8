// The audit log: append-only, each entry holding the SHA-256 of the previous one. Appends happen in
// the caller's transaction, serialised by locking the single head row.
//
// Erasable personal data: the chain does not cover a patient's name, e-mail, phone or notes directly but a
// salted digest of each (SHA-256 of a random per-value salt, the value's path and the value). The salts sit
// in the entry's `pii` column, outside the hash. Erasing a value replaces it with `erased:<its digest>` and
// drops its salt, so the entry hashes exactly as before while nothing is left to re-identify the patient
// (without the salt, a guess cannot be checked against the digest). Any other edit, a changed salt or a
// value slipped in where there was none still breaks the chain. Entries written before this scheme
// (`pii` null) hash their raw JSON as they always did.
import { createHash, randomBytes } from 'node:crypto';
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

/** Keys whose string value is a patient's personal data; under `patient` every string is. */
const PERSONAL_KEYS = new Set(['notes', 'patientName', 'patientEmail', 'patientPhone', 'patient_name', 'patient_email', 'patient_phone']);
const ERASED = /^erased:([0-9a-f]{64})$/;
export const SEALED_COLUMNS = ['before', 'after', 'meta'] as const;
type SealedColumn = (typeof SEALED_COLUMNS)[number];

/** Visit every personal string in a parsed JSON value with its path (`patient.email`, `items.0.notes`). */
export function personalValues(v: unknown, visit: (path: string, value: string) => string | void, path = '', inPatient = false): unknown {
  if (typeof v === 'string') return inPatient ? (visit(path, v) ?? v) : v;
  if (!v || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x, i) => personalValues(x, visit, path ? `${path}.${i}` : String(i), inPatient));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const p = path ? `${path}.${k}` : k;
    out[k] = personalValues(x, visit, p, inPatient || k === 'patient' || (PERSONAL_KEYS.has(k) && typeof x === 'string'));
  }
  return out;
}

function digest(salt: string, path: string, value: string): string {
  return createHash('sha256').update(salt).update('\n').update(path).update('\n').update(value).digest('hex');
}

/** The form of a column the chain covers: personal values replaced by their digests. */
function sealedText(col: SealedColumn, text: string | null, salts: Record<string, string>): string | null {
  if (text === null) return null;
  let found = false;
  const sealed = personalValues(JSON.parse(text), (path, value) => {
    found = true;
    const erased = ERASED.exec(value);
    return `sealed:${erased ? erased[1] : digest(salts[`${col}.${path}`] ?? '', `${col}.${path}`, value)}`;
  });
  return found ? JSON.stringify(sealed) : text;
}

export function entryHash(prevHash: string, e: Omit<AuditTable, 'hash' | 'prev_hash'>): string {
  const salts: Record<string, string> | undefined = e.pii === null || e.pii === undefined ? undefined : JSON.parse(e.pii);
  const col = (c: SealedColumn) => (salts ? sealedText(c, e[c], salts) : e[c]);
  const body = canonicalJson({
    seq: e.seq, at: e.at, actor: e.actor, action: e.action, entity_type: e.entity_type, entity_id: e.entity_id,
    before: col('before'), after: col('after'), meta: col('meta'),
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** A fresh salt for every personal value in the entry's columns. */
function saltsFor(row: Pick<AuditTable, SealedColumn>): string {
  const salts: Record<string, string> = {};
  for (const c of SEALED_COLUMNS) {
    const text = row[c];
    if (text !== null) personalValues(JSON.parse(text), (path) => { salts[`${c}.${path}`] = randomBytes(16).toString('hex'); });
  }
  return JSON.stringify(salts);
}

/**
 * Erase the personal values of one stored entry that `which(path, value)` selects: each becomes
 * `erased:<digest>` and loses its salt. The entry's hash is unchanged. Returns the changed columns, or
 * undefined when nothing was selected (or the entry predates erasable entries).
 */
export function erasedEntry(r: Pick<AuditTable, SealedColumn | 'pii'>, which: (path: string, value: string) => boolean): Partial<Pick<AuditTable, SealedColumn | 'pii'>> | undefined {
  if (r.pii === null) return undefined;
  const salts = JSON.parse(r.pii) as Record<string, string>;
  const out: Partial<Pick<AuditTable, SealedColumn | 'pii'>> = {};
  for (const c of SEALED_COLUMNS) {
    const text = r[c];
    if (text === null) continue;
    let changed = false;
    const next = personalValues(JSON.parse(text), (path, value) => {
      const key = `${c}.${path}`;
      if (ERASED.test(value) || !which(path, value)) return undefined;
      changed = true;
      const d = digest(salts[key] ?? '', key, value);
      delete salts[key];
      return `erased:${d}`;
    });
    if (changed) out[c] = JSON.stringify(next);
  }
  if (Object.keys(out).length === 0) return undefined;
  out.pii = JSON.stringify(salts);
  return out;
}

/** Transactions whose audit entries are held until their work is done (see withDeferredAudit). */
const deferred = new WeakMap<Transaction<DB>, AuditInput[]>();

/**
 * Run `work` in `trx` with its audit entries held back and appended, in the same order, once it has
 * returned: the last statements before COMMIT. Appending locks the chain's head row until COMMIT and so
 * serialises every writer on PostgreSQL; held to the end, the lock covers two statements and the commit
 * instead of everything after the first entry. All or nothing as before: it is the same transaction.
 */
export async function withDeferredAudit<T>(trx: Transaction<DB>, dialect: Dialect, work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  const held: AuditInput[] = [];
  const value = await holdAudit(trx, held, work);
  await appendAudit(trx, dialect, held);
  return value;
}

/** Run `work` with the audit entries it appends in `trx` collected into `held` instead (the caller appends them). */
export async function holdAudit<T>(trx: Transaction<DB>, held: AuditInput[], work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  deferred.set(trx, held);
  try {
    return await work(trx);
  } finally {
    deferred.delete(trx);
  }
}

export async function appendAudit(trx: Transaction<DB>, dialect: Dialect, entries: AuditInput[]): Promise<void> {
  if (entries.length === 0) return;
  const held = deferred.get(trx);
  if (held) {
    held.push(...entries);
    return;
  }
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
    const sealed = { ...row, pii: saltsFor(row) };
    const h = entryHash(hash, sealed);
    rows.push({ ...sealed, prev_hash: hash, hash: h });
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
