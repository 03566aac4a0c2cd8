// Received webhook deliveries as staff list them (bodies are never listed).
import type { Exec } from '../repo.ts';

/** Deliveries, newest first, optionally of one status or one connection. */
export async function listDeliveries(db: Exec, q: { status?: string; connection?: string; limit?: number }) {
  let s = db.selectFrom('delivery').select(['id', 'connection_id', 'delivery_id', 'received_at', 'status', 'error', 'change_count', 'applied_at']);
  if (q.status) s = s.where('status', '=', q.status);
  if (q.connection) s = s.where('connection_id', '=', q.connection);
  return s.orderBy('received_at', 'desc').limit(q.limit ?? 100).execute();
}
