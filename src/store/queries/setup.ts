// Reads and writes of the clinic's setup that the REST API needs (locations and rooms, services,
// practitioners, connections, clinics' notification settings). Audit entries are the caller's: it knows
// who acted. `provisionedBy`: the configuration file that declares a row (read-only in the app), or null.
import type { PrivacyLevel } from '../../domain/types.ts';
import type { WeeklyHours } from '../../domain/slots.ts';
import { toPractitioner, type Exec, type TargetBinding } from '../repo.ts';
import type { ConnectionTable, PractitionerTable } from '../schema.ts';

/** Every location with its rooms, by name. */
export async function listLocationsWithRooms(db: Exec) {
  const locs = await db.selectFrom('location').selectAll().orderBy('name').orderBy('id').execute();
  const rooms = await db.selectFrom('room').selectAll().orderBy('name').orderBy('id').execute();
  return locs.map((l) => ({
    id: l.id, clinicId: l.clinic_id, name: l.name, timeZone: l.time_zone, address: l.address ?? undefined,
    rooms: rooms.filter((r) => r.location_id === l.id).map((r) => ({ id: r.id, name: r.name, provisionedBy: r.provisioned_by ?? null })),
    provisionedBy: l.provisioned_by ?? null,
  }));
}

export async function getLocation(db: Exec, id: string) {
  return (await listLocationsWithRooms(db)).find((l) => l.id === id);
}

/** Every service, by name. */
export async function listServices(db: Exec) {
  const rows = await db.selectFrom('service').selectAll().orderBy('name').orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, clinicId: r.clinic_id, name: r.name, durationMinutes: r.duration_minutes ?? undefined, provisionedBy: r.provisioned_by ?? null }));
}

export async function getService(db: Exec, id: string) {
  const r = await db.selectFrom('service').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? { id: r.id, clinicId: r.clinic_id, name: r.name, durationMinutes: r.duration_minutes ?? undefined, provisionedBy: r.provisioned_by ?? null } : undefined;
}

export function practitionerView(r: PractitionerTable) {
  return { ...toPractitioner(r), provisionedBy: r.provisioned_by ?? null };
}

/** Every practitioner, by name, with the file that provisions them. */
export async function listPractitionerViews(db: Exec) {
  return (await db.selectFrom('practitioner').selectAll().orderBy('name').orderBy('id').execute()).map(practitionerView);
}

export async function getPractitionerView(db: Exec, id: string) {
  const r = await db.selectFrom('practitioner').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? practitionerView(r) : undefined;
}

/** Every connection row, by id. */
export async function listConnectionRows(db: Exec): Promise<ConnectionTable[]> {
  // A removed connection is kept for the history only.
  return db.selectFrom('connection').selectAll().where('status', '!=', 'removed').orderBy('id').execute();
}

export type SetupTable = 'location' | 'room' | 'service' | 'practitioner' | 'connection';

/** The row's name and the file that provisions it; undefined when there is no such row. */
export async function setupRow(db: Exec, table: SetupTable, id: string): Promise<{ name: string; provisionedBy: string | null } | undefined> {
  const r = await db.selectFrom(table).select(['name', 'provisioned_by']).where('id', '=', id).executeTakeFirst();
  return r ? { name: r.name, provisionedBy: r.provisioned_by ?? null } : undefined;
}

/** The clinic rows made in the app belong to (a store holds one clinic). */
export async function theClinic(db: Exec): Promise<{ id: string; timeZone: string } | undefined> {
  const r = await db.selectFrom('clinic').select(['id', 'time_zone']).orderBy('id').executeTakeFirst();
  return r ? { id: r.id, timeZone: r.time_zone } : undefined;
}

/** An id for a row made from `name` ("Dr. Ada Okafor" → "dr-ada-okafor"), unused in `table` (then "-2", "-3", …). */
export async function freeId(db: Exec, table: SetupTable, name: string): Promise<string> {
  const base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 56) || table;
  const taken = new Set((await db.selectFrom(table).select('id').where('id', 'like', `${base}%`).execute()).map((r) => r.id));
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

const count = async (q: { executeTakeFirst(): Promise<{ n: unknown } | undefined> }) => Number((await q.executeTakeFirst())?.n ?? 0);
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** Connections whose reference mappings name `id` as a practitioner, service or location. */
async function mappedBy(db: Exec, kind: 'practitioners' | 'services' | 'locations', id: string): Promise<string[]> {
  const rows = await db.selectFrom('connection').select(['id', 'name', 'refs']).where('status', '!=', 'disabled').orderBy('id').execute();
  return rows.filter((r) => {
    const refs = JSON.parse(r.refs) as { practitioners?: Record<string, string>; services?: Record<string, string>; locations?: Record<string, string>; defaultPractitioner?: string };
    return Object.values(refs[kind] ?? {}).includes(id) || (kind === 'practitioners' && refs.defaultPractitioner === id);
  }).map((r) => `connection ${r.name} (maps it)`);
}

/** What still uses a service: practitioners offering it, connections mapping to it, appointments and leads naming it, notification rules. */
export async function usesOfService(db: Exec, id: string): Promise<string[]> {
  const out: string[] = [];
  const ps = await db.selectFrom('practitioner').select(['name', 'services']).orderBy('name').execute();
  out.push(...ps.filter((p) => (JSON.parse(p.services ?? '[]') as string[]).includes(id)).map((p) => `practitioner ${p.name} (offers it)`));
  out.push(...await mappedBy(db, 'services', id));
  const appts = await count(db.selectFrom('appointment').select((eb) => eb.fn.countAll().as('n')).where('service_id', '=', id));
  if (appts) out.push(plural(appts, 'appointment'));
  const leads = await count(db.selectFrom('lead').select((eb) => eb.fn.countAll().as('n')).where('service_id', '=', id));
  if (leads) out.push(plural(leads, 'lead'));
  const clinics = await db.selectFrom('clinic').select('settings').execute();
  if (clinics.some((c) => JSON.parse(c.settings).notifications?.services?.[id])) out.push('the notification rules');
  return out;
}

/** What still uses a location: practitioners working there, connections mapping to it, appointments there. */
export async function usesOfLocation(db: Exec, id: string): Promise<string[]> {
  const out: string[] = [];
  const ps = await db.selectFrom('practitioner').select(['name', 'location_ids']).orderBy('name').execute();
  out.push(...ps.filter((p) => (JSON.parse(p.location_ids) as string[]).includes(id)).map((p) => `practitioner ${p.name} (works there)`));
  out.push(...await mappedBy(db, 'locations', id));
  const appts = await count(db.selectFrom('appointment').select((eb) => eb.fn.countAll().as('n')).where('location_id', '=', id));
  if (appts) out.push(plural(appts, 'appointment'));
  return out;
}

/** What still uses a room: appointments in it. */
export async function usesOfRoom(db: Exec, id: string): Promise<string[]> {
  const appts = await count(db.selectFrom('appointment').select((eb) => eb.fn.countAll().as('n')).where('room_id', '=', id));
  return appts ? [plural(appts, 'appointment')] : [];
}

/** What still uses a practitioner: appointments, leads and staff accounts naming them, connections mapping to them. */
export async function usesOfPractitioner(db: Exec, id: string): Promise<string[]> {
  const out: string[] = [];
  const appts = await count(db.selectFrom('appointment').select((eb) => eb.fn.countAll().as('n')).where('practitioner_id', '=', id));
  if (appts) out.push(plural(appts, 'appointment'));
  const leads = await count(db.selectFrom('lead').select((eb) => eb.fn.countAll().as('n')).where('practitioner_id', '=', id));
  if (leads) out.push(plural(leads, 'lead'));
  const users = await db.selectFrom('staff_user').select('email').where('practitioner_id', '=', id).orderBy('email').execute();
  out.push(...users.map((u) => `staff account ${u.email}`));
  out.push(...await mappedBy(db, 'practitioners', id));
  return out;
}

export interface LocationInput { name: string; timeZone: string; address?: string | null }

export async function insertLocation(db: Exec, clinicId: string, id: string, l: LocationInput): Promise<void> {
  await db.insertInto('location').values({ id, clinic_id: clinicId, name: l.name, time_zone: l.timeZone, address: l.address ?? null, provisioned_by: null }).execute();
}

export async function updateLocation(db: Exec, id: string, l: Partial<LocationInput>): Promise<void> {
  const set = {
    ...(l.name !== undefined ? { name: l.name } : {}),
    ...(l.timeZone !== undefined ? { time_zone: l.timeZone } : {}),
    ...(l.address !== undefined ? { address: l.address } : {}),
  };
  if (Object.keys(set).length) await db.updateTable('location').set(set).where('id', '=', id).execute();
}

/** Remove a location and its rooms. */
export async function deleteLocation(db: Exec, id: string): Promise<void> {
  await db.deleteFrom('room').where('location_id', '=', id).execute();
  await db.deleteFrom('location').where('id', '=', id).execute();
}

export async function getRoom(db: Exec, id: string) {
  return db.selectFrom('room').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertRoom(db: Exec, locationId: string, id: string, name: string): Promise<void> {
  await db.insertInto('room').values({ id, location_id: locationId, name, provisioned_by: null }).execute();
}

export async function renameRoom(db: Exec, id: string, name: string): Promise<void> {
  await db.updateTable('room').set({ name }).where('id', '=', id).execute();
}

export async function deleteRoom(db: Exec, id: string): Promise<void> {
  await db.deleteFrom('room').where('id', '=', id).execute();
}

export interface ServiceInput { name: string; durationMinutes?: number | null }

export async function insertService(db: Exec, clinicId: string, id: string, s: ServiceInput): Promise<void> {
  await db.insertInto('service').values({ id, clinic_id: clinicId, name: s.name, duration_minutes: s.durationMinutes ?? null, provisioned_by: null }).execute();
}

export async function updateService(db: Exec, id: string, s: Partial<ServiceInput>): Promise<void> {
  const set = { ...(s.name !== undefined ? { name: s.name } : {}), ...(s.durationMinutes !== undefined ? { duration_minutes: s.durationMinutes } : {}) };
  if (Object.keys(set).length) await db.updateTable('service').set(set).where('id', '=', id).execute();
}

export async function deleteService(db: Exec, id: string): Promise<void> {
  await db.deleteFrom('service').where('id', '=', id).execute();
}

export interface PractitionerChanges {
  name?: string;
  email?: string | null;
  timeZone?: string | null;
  locations?: string[];
  targets?: (TargetBinding & { privacy?: PrivacyLevel })[];
  active?: boolean;
  services?: string[];
  /** Weekly working hours; null: the clinic's. */
  hours?: WeeklyHours | null;
}

export async function insertPractitioner(db: Exec, clinicId: string, id: string, p: PractitionerChanges & { name: string }): Promise<void> {
  await db.insertInto('practitioner').values({
    id, clinic_id: clinicId, name: p.name, email: p.email?.toLowerCase() ?? null, time_zone: p.timeZone ?? null,
    location_ids: JSON.stringify(p.locations ?? []), targets: JSON.stringify(p.targets ?? []), active: p.active === false ? 0 : 1,
    services: JSON.stringify(p.services ?? []), hours: p.hours ? JSON.stringify(p.hours) : null, provisioned_by: null,
  }).execute();
}

/** Set the given fields of a practitioner (the others are left as they are). */
export async function updatePractitioner(db: Exec, id: string, b: PractitionerChanges): Promise<void> {
  const set = {
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.email !== undefined ? { email: b.email?.toLowerCase() ?? null } : {}),
    ...(b.timeZone !== undefined ? { time_zone: b.timeZone } : {}),
    ...(b.locations ? { location_ids: JSON.stringify(b.locations) } : {}),
    ...(b.targets ? { targets: JSON.stringify(b.targets) } : {}),
    ...(b.active !== undefined ? { active: b.active ? 1 : 0 } : {}),
    ...(b.services ? { services: JSON.stringify(b.services) } : {}),
    ...(b.hours !== undefined ? { hours: b.hours && Object.keys(b.hours).length ? JSON.stringify(b.hours) : null } : {}),
  };
  if (Object.keys(set).length) await db.updateTable('practitioner').set(set).where('id', '=', id).execute();
}

/** Remove a practitioner (one nothing uses: see usesOfPractitioner) with their feeds and busy blocks. */
export async function deletePractitioner(db: Exec, id: string): Promise<void> {
  await db.deleteFrom('feed').where('scope', '=', 'practitioner').where('scope_id', '=', id).execute();
  await db.deleteFrom('busy_block').where('practitioner_id', '=', id).execute();
  await db.deleteFrom('practitioner').where('id', '=', id).execute();
}

export interface ConnectionChanges {
  name?: string;
  privacy?: string | null;
  baseUrl?: string | null;
  refs?: object;
  config?: object;
}

/** Set the given fields of a connection and stamp it updated at `at`. */
export async function updateConnection(db: Exec, id: string, b: ConnectionChanges, at: string): Promise<void> {
  await db.updateTable('connection').set({
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.privacy !== undefined ? { privacy: b.privacy } : {}),
    ...(b.baseUrl !== undefined ? { base_url: b.baseUrl } : {}),
    ...(b.refs ? { refs: JSON.stringify(b.refs) } : {}),
    ...(b.config ? { config: JSON.stringify(b.config) } : {}),
    updated_at: at,
  }).where('id', '=', id).execute();
}

/** Each clinic's notification rules as applied from the configuration file (null: it sends none). */
export async function clinicNotificationSettings(db: Exec) {
  const rows = await db.selectFrom('clinic').select(['id', 'settings']).orderBy('id').execute();
  return rows.map((r) => ({ clinic: r.id, notifications: JSON.parse(r.settings).notifications ?? null }));
}
