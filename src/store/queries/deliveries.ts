// Received webhook deliveries as staff list them (bodies are never listed).
import type { Exec } from '../repo.ts';

/** Deliveries, newest first, optionally of one status or one connection. */
export async function listDeliveries(db: Exec, q: { status?: string; connection?: string; limit?: number }) {
  let s = db.selectFrom('delivery').select(['id', 'connection_id', 'delivery_id', 'received_at', 'status', 'error', 'change_count', 'applied_at']);
  if (q.status) s = s.where('status', '=', q.status);
  if (q.connection) s = s.where('connection_id', '=', q.connection);
  return s.orderBy('received_at', 'desc').limit(q.limit ?? 100).execute();
}

/**
 * One connection's deliveries as its health shows them: when one was last applied, how many failed or could
 * not be read (kept for staff), and how many are stored but not yet applied (the inbox works them off).
 */
export async function connectionDeliveryHealth(db: Exec, connectionId: string): Promise<{ lastAppliedAt?: string; failed: number; waiting: number }> {
  const last = await db.selectFrom('delivery').select('applied_at').where('connection_id', '=', connectionId).where('applied_at', 'is not', null)
    .orderBy('applied_at', 'desc').limit(1).executeTakeFirst();
  const rows = await db.selectFrom('delivery').select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('connection_id', '=', connectionId).where('status', 'in', ['failed', 'unreadable', 'received']).groupBy('status').execute();
  const count = (...states: string[]) => rows.filter((d) => states.includes(d.status)).reduce((n, d) => n + Number(d.n), 0);
  return { lastAppliedAt: last?.applied_at ?? undefined, failed: count('failed', 'unreadable'), waiting: count('received') };
}
