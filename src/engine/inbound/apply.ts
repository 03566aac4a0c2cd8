// A source's change → a decision (src/domain/apply.ts) → the appointment door (appointments/commit.ts), in the
// caller's transaction; what the decision ignores or only remembers is audited here.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { ChangeRejected, contentHash, decide, type Decision } from '../../domain/apply.ts';
import type { SourceChange } from '../../domain/types.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import type { DB } from '../../store/schema.ts';
import {
  getAppointment, getRef, lockBookings, saveRef, type ConnectionRecord, type Exec,
} from '../../store/repo.ts';
import type { Hub } from '../hub/hub.ts';
import { commitAppointment } from '../appointments/commit.ts';
import { cached, type TtlCache } from '../hub/cache.ts';

export type ApplyOutcome =
  | 'created' | 'updated' | 'unchanged' | 'duplicate' | 'stale' | 'superseded' | 'tombstone' | 'failed' | 'fetch_queued';

export interface ApplyResult {
  outcome: ApplyOutcome;
  appointmentId?: string;
  conflicts?: string[];
  error?: { code: string; message: string };
}

interface Mapped {
  practitionerId?: string;
  serviceId?: string;
  locationId?: string;
  timeZone?: string;
}

async function mapRefs(trx: Exec, cache: TtlCache, conn: ConnectionRecord, c: SourceChange): Promise<Mapped> {
  const a = c.appointment;
  const refs = conn.refs;
  let practitionerId = a.practitionerRef ? refs.practitioners?.[a.practitionerRef] : undefined;
  const email = a.practitionerEmail ?? (a.practitionerRef?.includes('@') ? a.practitionerRef : undefined);
  if (!practitionerId && email) {
    const p = await cached(cache, `practitioner-email:${email.toLowerCase()}`, () =>
      trx.selectFrom('practitioner').select('id').where('email', '=', email.toLowerCase()).where('active', '=', 1).executeTakeFirst());
    practitionerId = p?.id;
  }
  practitionerId ??= refs.defaultPractitioner;
  const serviceId = a.serviceRef ? refs.services?.[a.serviceRef] : undefined;
  let locationId = a.locationRef ? refs.locations?.[a.locationRef] : undefined;
  let timeZone: string | undefined;
  if (practitionerId) {
    const id = practitionerId;
    const p = await cached(cache, `practitioner:${id}`, () =>
      trx.selectFrom('practitioner').select(['location_ids', 'time_zone']).where('id', '=', id).executeTakeFirst());
    if (!p) practitionerId = undefined;
    else {
      const locs = JSON.parse(p.location_ids) as string[];
      if (!locationId && locs.length === 1) locationId = locs[0];
      timeZone = p.time_zone ?? undefined;
    }
  }
  if (locationId) {
    const id = locationId;
    const l = await cached(cache, `location:${id}`, () => trx.selectFrom('location').select('time_zone').where('id', '=', id).executeTakeFirst());
    if (l) timeZone = l.time_zone;
    else locationId = undefined;
  }
  return { practitionerId, serviceId, locationId, timeZone };
}

async function clinicZone(trx: Exec, cache: TtlCache, clinicId: string): Promise<string> {
  const c = await cached(cache, `clinic:${clinicId}`, () => trx.selectFrom('clinic').select('time_zone').where('id', '=', clinicId).executeTakeFirst());
  return c?.time_zone ?? 'UTC';
}

/** Write the outcome of a decision: appointment, refs, conflicts, audit, jobs. */
async function commitDecision(trx: Transaction<DB>, hub: Hub, conn: ConnectionRecord, c: SourceChange, d: Decision, actor: string, meta: Record<string, unknown>): Promise<ApplyResult> {
  const at = hub.clock.now().toISOString();
  const audit: AuditInput[] = [];
  let result: ApplyResult;
  const changeMeta = { ...meta, platform: c.platform, externalId: c.externalId, kind: c.kind, occurredAt: c.occurredAt };
  if (d.action === 'ignore') {
    audit.push({ at, actor, action: 'change.ignored', entityType: 'external_ref', entityId: `${conn.id}:${c.externalId}`, meta: { ...changeMeta, reason: d.reason } });
    result = { outcome: d.reason };
  } else if (d.action === 'tombstone') {
    await saveRef(trx, conn.id, d.ref);
    audit.push({ at, actor, action: 'change.remembered', entityType: 'external_ref', entityId: `${conn.id}:${c.externalId}`, meta: changeMeta });
    result = { outcome: 'tombstone' };
  } else {
    const isNew = d.action === 'create';
    const before = d.action === 'update' ? d.before : undefined;
    const next = d.next;
    const material = isNew || (d.action === 'update' && d.material);
    const action = !material ? 'change.no_effect'
      : isNew ? 'appointment.created' : before!.status !== next.status ? `appointment.${next.status === 'booked' ? 'rebooked' : next.status}` : 'appointment.updated';
    const done = await commitAppointment(trx, hub, {
      before, next, actor, action, meta: changeMeta, effects: material ? 'all' : 'unchanged', alertStaff: { from: c.platform },
    });
    await saveRef(trx, conn.id, d.ref);
    if (d.replacedRef) await saveRef(trx, conn.id, d.replacedRef);
    result = material ? { outcome: isNew ? 'created' : 'updated', appointmentId: next.id, conflicts: done.conflicts } : { outcome: 'unchanged', appointmentId: next.id };
  }
  if (audit.length) await appendAudit(trx, hub.store.dialect, audit);
  return result;
}

/** Apply one change from a source connection inside `trx`. A rejected change is recorded, not thrown. */
export async function applyChange(trx: Transaction<DB>, hub: Hub, conn: ConnectionRecord, change: SourceChange, actor: string, meta: Record<string, unknown> = {}): Promise<ApplyResult> {
  const hash = contentHash(change);
  await lockBookings(trx, hub.store.dialect, conn.id, [change.externalId, ...(change.replacesExternalId ? [change.replacesExternalId] : [])]);
  const ref = await getRef(trx, conn.id, change.externalId);
  const replacedRef = change.replacesExternalId ? await getRef(trx, conn.id, change.replacesExternalId) : undefined;
  const apptId = ref?.appointmentId ?? replacedRef?.appointmentId;
  const existing = apptId ? await getAppointment(trx, apptId) : undefined;
  const mapped = await mapRefs(trx, hub.cache, conn, change);
  const c: SourceChange = mapped.timeZone ? { ...change, appointment: { ...change.appointment, timeZone: mapped.timeZone } } : change;
  let d: Decision;
  try {
    d = decide({
      change: c, hash, connectionId: conn.id, clinicId: conn.clinicId, ref, replacedRef, existing, mapped,
      newId: randomUUID(), now: hub.clock.now().toISOString(), defaultTimeZone: await clinicZone(trx, hub.cache, conn.clinicId),
    });
  } catch (err) {
    if (!(err instanceof ChangeRejected)) throw err;
    await appendAudit(trx, hub.store.dialect, [{
      at: hub.clock.now().toISOString(), actor, action: 'change.rejected', entityType: 'external_ref',
      entityId: `${conn.id}:${change.externalId}`, meta: { ...meta, code: err.code, message: err.message },
    }]);
    return { outcome: 'failed', error: { code: err.code, message: err.message } };
  }
  return commitDecision(trx, hub, conn, c, d, actor, meta);
}
