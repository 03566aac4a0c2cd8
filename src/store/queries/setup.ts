// Reads and writes of the clinic's setup that the REST API needs (locations, services, practitioners,
// connections, clinics' notification settings). Audit entries are the caller's: it knows who acted.
import type { Exec } from '../repo.ts';

/** Every location with its rooms, by name. */
export async function listLocationsWithRooms(db: Exec) {
  const locs = await db.selectFrom('location').selectAll().orderBy('name').execute();
  const rooms = await db.selectFrom('room').selectAll().orderBy('name').execute();
  return locs.map((l) => ({
    id: l.id, clinicId: l.clinic_id, name: l.name, timeZone: l.time_zone, address: l.address ?? undefined,
    rooms: rooms.filter((r) => r.location_id === l.id).map((r) => ({ id: r.id, name: r.name })),
  }));
}

/** Every service, by name. */
export async function listServices(db: Exec) {
  const rows = await db.selectFrom('service').selectAll().orderBy('name').execute();
  return rows.map((r) => ({ id: r.id, clinicId: r.clinic_id, name: r.name, durationMinutes: r.duration_minutes ?? undefined }));
}

export interface PractitionerChanges {
  name?: string;
  email?: string | null;
  timeZone?: string | null;
  locations?: string[];
  targets?: { connection: string; calendar?: string }[];
  active?: boolean;
}

/** Set the given fields of a practitioner (the others are left as they are). */
export async function updatePractitioner(db: Exec, id: string, b: PractitionerChanges): Promise<void> {
  await db.updateTable('practitioner').set({
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.email !== undefined ? { email: b.email?.toLowerCase() ?? null } : {}),
    ...(b.timeZone !== undefined ? { time_zone: b.timeZone } : {}),
    ...(b.locations ? { location_ids: JSON.stringify(b.locations) } : {}),
    ...(b.targets ? { targets: JSON.stringify(b.targets) } : {}),
    ...(b.active !== undefined ? { active: b.active ? 1 : 0 } : {}),
  }).where('id', '=', id).execute();
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
