// Row <-> domain mapping and the queries the engine and the API share.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { AppointmentTable, AppointmentRefTable, ConnectionTable, DB, PractitionerTable } from './schema.ts';
import type { Appointment, AppointmentStatus, ChangeKind, PrivacyLevel, Practitioner } from '../domain/types.ts';
import type { RefState } from '../domain/apply.ts';
import { toUtc } from '../domain/time.ts';
import { MAX_APPOINTMENT_MS } from '../domain/conflicts.ts';
import type { WeeklyHours } from '../domain/slots.ts';

export type Exec = Kysely<DB> | Transaction<DB>;

const orUndef = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/**
 * Instants are stored in one fixed-width form (`Date#toISOString`, milliseconds always present) so
 * that text comparison in SQL is time order on both SQLite and PostgreSQL. The domain's shorter form
 * (`…:00Z`) is restored on the way out.
 */
export function dbInstant(instant: string): string {
  return new Date(instant).toISOString();
}

export function toAppointment(r: AppointmentTable): Appointment {
  return {
    id: r.id,
    clinicId: r.clinic_id,
    locationId: orUndef(r.location_id),
    practitionerId: r.practitioner_id,
    serviceId: orUndef(r.service_id),
    roomId: orUndef(r.room_id),
    patient: {
      name: r.patient_name,
      email: orUndef(r.patient_email),
      phone: orUndef(r.patient_phone),
      timeZone: orUndef(r.patient_tz),
    },
    start: toUtc(r.start_at),
    end: toUtc(r.end_at),
    timeZone: r.time_zone,
    status: r.status as AppointmentStatus,
    notes: orUndef(r.notes),
    origin: { platform: r.origin_platform, connectionId: r.origin_connection_id, externalId: r.origin_external_id },
    revision: r.revision,
    conflicts: JSON.parse(r.conflicts) as string[],
    ...(r.diverged ? { diverged: r.diverged } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function fromAppointment(a: Appointment): AppointmentTable {
  return {
    id: a.id,
    clinic_id: a.clinicId,
    location_id: a.locationId ?? null,
    practitioner_id: a.practitionerId,
    service_id: a.serviceId ?? null,
    room_id: a.roomId ?? null,
    patient_name: a.patient.name,
    patient_email: a.patient.email ?? null,
    patient_phone: a.patient.phone ?? null,
    patient_tz: a.patient.timeZone ?? null,
    start_at: dbInstant(a.start),
    end_at: dbInstant(a.end),
    time_zone: a.timeZone,
    status: a.status,
    notes: a.notes ?? null,
    origin_platform: a.origin.platform,
    origin_connection_id: a.origin.connectionId,
    origin_external_id: a.origin.externalId,
    revision: a.revision,
    conflicts: JSON.stringify(a.conflicts),
    diverged: a.diverged ?? null,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}

export async function getAppointment(db: Exec, id: string): Promise<Appointment | undefined> {
  const r = await db.selectFrom('appointment').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toAppointment(r) : undefined;
}

/**
 * Insert a new appointment, or update one that still has the revision `expectRevision` the caller read it
 * at. Answers false when it has not: someone else wrote it in between (on PostgreSQL the update waits for
 * their commit and then finds the revision moved on), and the caller must read again rather than write
 * over their change with its older copy.
 */
export async function saveAppointment(db: Exec, a: Appointment, isNew: boolean, expectRevision?: number): Promise<boolean> {
  const row = fromAppointment(a);
  if (isNew) {
    await db.insertInto('appointment').values(row).execute();
    return true;
  }
  const { id, ...rest } = row;
  const r = await db.updateTable('appointment').set(rest).where('id', '=', id)
    .$if(expectRevision !== undefined, (q) => q.where('revision', '=', expectRevision!)).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export interface AppointmentQuery {
  from?: string;
  to?: string;
  practitionerId?: string;
  practitionerIds?: string[];
  locationId?: string;
  status?: AppointmentStatus[];
  /** Only appointments whose source platform still shows something else. */
  diverged?: boolean;
  limit?: number;
}

export async function listAppointments(db: Exec, q: AppointmentQuery): Promise<Appointment[]> {
  let s = db.selectFrom('appointment').selectAll();
  if (q.from) s = s.where('end_at', '>', dbInstant(q.from));
  if (q.to) s = s.where('start_at', '<', dbInstant(q.to));
  if (q.practitionerId) s = s.where('practitioner_id', '=', q.practitionerId);
  if (q.practitionerIds) s = s.where('practitioner_id', 'in', q.practitionerIds.length ? q.practitionerIds : ['']);
  if (q.locationId) s = s.where('location_id', '=', q.locationId);
  if (q.status?.length) s = s.where('status', 'in', q.status);
  if (q.diverged) s = s.where('diverged', 'is not', null);
  const rows = await s.orderBy('start_at').orderBy('id').limit(q.limit ?? 5000).execute();
  return rows.map(toAppointment);
}

/** Active appointments that could collide with [start, end) for this practitioner or room (an index range scan: none is longer than MAX_APPOINTMENT_MS). */
export async function overlapCandidates(db: Exec, a: Pick<Appointment, 'practitionerId' | 'roomId' | 'start' | 'end'>): Promise<Appointment[]> {
  const rows = await db
    .selectFrom('appointment')
    .selectAll()
    .where('start_at', '<', dbInstant(a.end))
    .where('start_at', '>', new Date(Date.parse(a.start) - MAX_APPOINTMENT_MS).toISOString())
    .where('end_at', '>', dbInstant(a.start))
    .where('status', 'in', ['requested', 'booked'])
    .where((eb) => (a.roomId ? eb.or([eb('practitioner_id', '=', a.practitionerId), eb('room_id', '=', a.roomId)]) : eb('practitioner_id', '=', a.practitionerId)))
    .execute();
  return rows.map(toAppointment);
}

/** A busy block in a practitioner's own calendar, as a conflict id: `busy:<connection>:<start>`. */
export function busyId(connectionId: string, startAt: string): string {
  return `busy:${connectionId}:${startAt}`;
}

/** Busy blocks (read from the practitioner's calendars) that overlap an active appointment. */
export async function busyOverlaps(db: Exec, a: Pick<Appointment, 'practitionerId' | 'start' | 'end' | 'status'>): Promise<{ id: string; connectionId: string; start: string; end: string }[]> {
  if (a.status !== 'booked' && a.status !== 'requested') return [];
  const rows = await db.selectFrom('busy_block').selectAll()
    .where('practitioner_id', '=', a.practitionerId)
    .where('start_at', '<', dbInstant(a.end))
    .where('start_at', '>', new Date(Date.parse(a.start) - MAX_APPOINTMENT_MS).toISOString())
    .where('end_at', '>', dbInstant(a.start))
    .execute();
  return rows.map((r) => ({ id: busyId(r.connection_id, r.start_at), connectionId: r.connection_id, start: toUtc(r.start_at), end: toUtc(r.end_at) }));
}

export function toRef(r: AppointmentRefTable): RefState {
  return {
    externalId: r.external_id,
    appointmentId: orUndef(r.appointment_id) || undefined,
    superseded: r.superseded === 1,
    lastOccurredAt: orUndef(r.last_occurred_at),
    lastVersion: r.last_version === null ? undefined : Number(r.last_version),
    lastHash: orUndef(r.last_hash),
    lastKind: orUndef(r.last_kind) as ChangeKind | undefined,
  };
}

export async function getRef(db: Exec, connectionId: string, externalId: string): Promise<RefState | undefined> {
  const r = await db.selectFrom('appointment_ref').selectAll().where('connection_id', '=', connectionId).where('external_id', '=', externalId).executeTakeFirst();
  return r ? toRef(r) : undefined;
}

/** A value kept in the `meta` table (the applied config's hash, sync tokens, retention runs), or undefined. */
export async function getMeta(db: Exec, key: string): Promise<string | undefined> {
  return (await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst())?.value;
}

export async function putMeta(db: Exec, key: string, value: string): Promise<void> {
  await db.insertInto('meta').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
}

/**
 * On PostgreSQL, hold a lock on these bookings of a connection until the transaction ends, so that two
 * changes about one booking (two processes, or two jobs, fetching it at once) are decided one after the
 * other: the second sees what the first wrote, instead of both creating an appointment. SQLite has one
 * writer at a time already. Taken in a fixed order, so two holders never wait on each other.
 */
export async function lockBookings(trx: Exec, dialect: 'sqlite' | 'postgres', connectionId: string, externalIds: string[]): Promise<void> {
  if (dialect !== 'postgres') return;
  for (const id of [...new Set(externalIds)].sort()) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`booking:${connectionId}:${id}`}, 0))`.execute(trx);
  }
}

export async function saveRef(db: Exec, connectionId: string, ref: RefState): Promise<void> {
  const row: AppointmentRefTable = {
    connection_id: connectionId,
    external_id: ref.externalId,
    appointment_id: ref.appointmentId || null,
    superseded: ref.superseded ? 1 : 0,
    last_occurred_at: ref.lastOccurredAt ?? null,
    last_version: ref.lastVersion ?? null,
    last_hash: ref.lastHash ?? null,
    last_kind: ref.lastKind ?? null,
  };
  const { connection_id, external_id, ...rest } = row;
  await db
    .insertInto('appointment_ref')
    .values(row)
    .onConflict((oc) => oc.columns(['connection_id', 'external_id']).doUpdateSet(rest))
    .execute();
}

// ------------------------------------------------------------------ connections

export interface TargetBinding {
  connection: string;
  calendar?: string;
  /** What is written there for this binding; absent: the connection's level. */
  privacy?: PrivacyLevel;
}

export interface ConnectionRecord {
  id: string;
  clinicId: string;
  platform: string;
  name: string;
  config: Record<string, unknown>;
  refs: ConnectionRefs;
  privacy?: PrivacyLevel;
  baseUrl?: string;
  /** Secret name -> environment variable that holds it. */
  secretRefs: Record<string, string>;
  hasStoredSecrets: boolean;
  status: string;
  lastSyncAt?: string;
  lastError?: string;
}

export interface ConnectionRefs {
  practitioners?: Record<string, string>;
  services?: Record<string, string>;
  locations?: Record<string, string>;
  defaultPractitioner?: string;
}

export function toConnection(r: ConnectionTable): ConnectionRecord {
  return {
    id: r.id,
    clinicId: r.clinic_id,
    platform: r.platform,
    name: r.name,
    config: JSON.parse(r.config),
    refs: JSON.parse(r.refs),
    privacy: orUndef(r.privacy) as PrivacyLevel | undefined,
    baseUrl: orUndef(r.base_url),
    secretRefs: JSON.parse(r.secret_refs),
    hasStoredSecrets: Boolean(r.secrets_enc),
    status: r.status,
    lastSyncAt: orUndef(r.last_sync_at),
    lastError: orUndef(r.last_error),
  };
}

export async function getConnectionRow(db: Exec, id: string): Promise<ConnectionTable | undefined> {
  return db.selectFrom('connection').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Connection statuses whose connection does nothing: disabled (by the file) or removed (in the app; kept for history). */
export const INACTIVE: ReadonlySet<string> = new Set(['disabled', 'removed']);


// ------------------------------------------------------------------ practitioners

export interface PractitionerRecord extends Practitioner {
  targets: TargetBinding[];
  /** Service ids offered. */
  services: string[];
  /** Weekly working hours in the practitioner's zone; undefined: the clinic's. */
  hours?: WeeklyHours;
}

export function toPractitioner(r: PractitionerTable): PractitionerRecord {
  return {
    id: r.id,
    clinicId: r.clinic_id,
    name: r.name,
    email: orUndef(r.email),
    timeZone: orUndef(r.time_zone),
    locationIds: JSON.parse(r.location_ids),
    targets: JSON.parse(r.targets),
    active: r.active === 1,
    services: JSON.parse(r.services ?? '[]'),
    ...(r.hours ? { hours: JSON.parse(r.hours) as WeeklyHours } : {}),
  };
}

export async function getPractitioner(db: Exec, id: string): Promise<PractitionerRecord | undefined> {
  const r = await db.selectFrom('practitioner').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toPractitioner(r) : undefined;
}

export async function listPractitioners(db: Exec): Promise<PractitionerRecord[]> {
  return (await db.selectFrom('practitioner').selectAll().orderBy('name').execute()).map(toPractitioner);
}
