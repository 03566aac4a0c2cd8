// The clinic's setup: practitioners, locations (and rooms), services, connections (and their secrets),
// calendar feeds, staff accounts, the connectors Meridian knows, and the configuration as YAML.
//
// Setup made in the app (issue 17): locations, rooms, services and practitioners are created, changed and
// removed here. A row a configuration file declares (`provisioned_by`) is read-only: any change answers 409
// `provisioned` naming the file. Removing something still in use (a service practitioners offer or
// appointments name, a location practitioners work at, a room or practitioner with appointments) answers 409
// `in_use` naming what uses it: history keeps pointing at it. A practitioner is retired with `active: false`.
import type { Transaction } from 'kysely';
import { z } from 'zod';
import { allDescriptors, getTarget } from '../../connectors/registry.ts';
import { connectionConfigIssues } from '../../config/validate.ts';
import { PRIVACY_LEVELS } from '../../domain/types.ts';
import { createFeed, listFeeds, rotateFeed } from '../../engine/effects/feeds.ts';
import { credentialsRenewed, saveSecrets, setupOfRow, shownStatus } from '../../engine/hub/connections.ts';
import type { SetupState } from '../../connectors/setup.ts';
import type { Hub } from '../../engine/hub/hub.ts';
import { appendAudit, type AuditInput } from '../../store/audit.ts';
import {
  deleteLocation, deletePractitioner, deleteRoom, deleteService, freeId, getLocation, getPractitionerView, getRoom, getService, insertLocation,
  insertPractitioner, insertRoom, insertService, listConnectionRows, listLocationsWithRooms, listPractitionerViews, listServices, renameRoom,
  setupRow, theClinic, updateConnection, updateLocation, updatePractitioner, updateService, usesOfLocation, usesOfPractitioner, usesOfRoom,
  usesOfService, type PractitionerChanges, type SetupTable,
} from '../../store/queries/setup.ts';
import { getConnectionRow, toConnection, type Exec } from '../../store/repo.ts';
import type { ConnectionTable, DB } from '../../store/schema.ts';
import { exportConfig } from '../../config/export.ts';
import { id as configId, targetBinding, weeklyHours } from '../../config/schema.ts';
import { createUser, listUsers, ROLES, setUserDisabled } from '../auth.ts';
import { HttpError } from '../errors.ts';
import { defineRoute, Download, idParam, zone, type Route } from '../route.ts';
import { ensurePush } from '../../engine/sync/push.ts';

/** A connection as the API shows it: `status` is `needs_setup` while it lacks secrets, `setup` says what is missing, `provisionedBy` the file that declares it. */
function connectionView(hub: Hub, row: ConnectionTable) {
  const setup: SetupState = setupOfRow(hub, row);
  const { secretRefs, hasStoredSecrets, ...rest } = toConnection(row);
  return { ...rest, status: shownStatus(rest.status, setup), setup, secrets: { fromEnvironment: Object.keys(secretRefs), stored: hasStoredSecrets }, provisionedBy: row.provisioned_by ?? null };
}

const LABEL: Record<SetupTable, string> = { location: 'Location', room: 'Room', service: 'Service', practitioner: 'Practitioner', connection: 'Connection' };

/** The row, or 404; 409 `provisioned` when a configuration file declares it (it is changed there). */
async function editable(db: Exec, table: SetupTable, id: string): Promise<{ name: string }> {
  const row = await setupRow(db, table, id);
  if (!row) throw new HttpError(table === 'room' ? 'unknown_room' : 'not_found', `no ${table} ${id}`);
  if (row.provisionedBy) {
    throw new HttpError('provisioned', `${LABEL[table]} "${row.name}" is provisioned by ${row.provisionedBy}; change it there (or remove it from the file to manage it here)`, { file: row.provisionedBy });
  }
  return row;
}

/** Open or stop the push channels of these connections in the background (engine/sync/push.ts). */
function pushSoon(hub: Hub, connections: string[]): void {
  for (const id of new Set(connections)) void ensurePush(hub, id).catch((e: Error) => hub.log.warn({ connection: id, err: { message: e.message } }, 'push channels could not be updated'));
}

/** 409 `in_use` naming what still uses the row. */
function refuseInUse(what: string, uses: string[], instead: string): void {
  if (uses.length) throw new HttpError('in_use', `${what} is still used by ${uses.join(', ')}: it cannot be removed (${instead})`, { usedBy: uses });
}

async function clinicOrRefuse(db: Exec) {
  const c = await theClinic(db);
  if (!c) throw new HttpError('no_clinic', 'there is no clinic yet: apply a configuration file with the clinic\'s name and time zone first');
  return c;
}

/** An id the caller chose (must be free), or one made from the name. */
async function newId(db: Exec, table: SetupTable, wanted: string | undefined, name: string): Promise<string> {
  if (!wanted) return freeId(db, table, name);
  const there = await setupRow(db, table, wanted);
  if (there) throw new HttpError('already_exists', `there is already a ${table} "${wanted}" (${there.name})`);
  return wanted;
}

/** Run `work` and its audit entry in one transaction; then the engine's caches forget the old setup. */
async function audited<T>(hub: Hub, work: (trx: Transaction<DB>) => Promise<{ result: T; audit: Omit<AuditInput, 'at' | 'actor'> }>, actor: string): Promise<T> {
  const out = await hub.store.db.transaction().execute(async (trx) => {
    const { result, audit } = await work(trx);
    await appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, ...audit }]);
    return result;
  });
  hub.cache.clear();
  return out;
}

const name = z.string().trim().min(1).max(200);
const roomInput = z.object({ id: configId.optional(), name }).strict();
const practitionerFields = {
  email: z.email().nullable().optional(), timeZone: zone.nullable().optional(),
  locations: z.array(z.string()).optional(), targets: z.array(targetBinding).optional(), active: z.boolean().optional(),
  services: z.array(z.string()).optional(), hours: weeklyHours.nullable().optional(),
};

/** Locations and services named exist, targets are target connections. */
async function checkPractitioner(db: Exec, b: PractitionerChanges): Promise<void> {
  for (const l of b.locations ?? []) if (!(await setupRow(db, 'location', l))) throw new HttpError('unknown_location', `no location ${l}`);
  for (const s of b.services ?? []) if (!(await setupRow(db, 'service', s))) throw new HttpError('unknown_service', `no service ${s}`);
  for (const t of b.targets ?? []) {
    const row = await getConnectionRow(db, t.connection);
    if (!row || allDescriptors().find((d) => d.id === row.platform)?.role !== 'target') throw new HttpError('unknown_target', `no target connection ${t.connection}`);
  }
}

/** A practitioner bound to a feed target gets their feed (as applying a file does). */
async function feedsFor(trx: Exec, hub: Hub, practitionerId: string, targets: { connection: string }[] | undefined): Promise<void> {
  for (const t of targets ?? []) {
    const row = await getConnectionRow(trx, t.connection);
    if (!row || !getTarget(row.platform)?.renderFeed) continue;
    const have = await trx.selectFrom('feed').select('id').where('connection_id', '=', t.connection).where('scope', '=', 'practitioner').where('scope_id', '=', practitionerId).executeTakeFirst();
    if (!have) await createFeed(trx, hub, t.connection, 'practitioner', practitionerId);
  }
}

const roomParams = z.object({ id: z.string().min(1).max(200), roomId: z.string().min(1).max(200) });

export const SETUP_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/practitioners', scope: 'read', tag: 'setup', summary: 'Practitioners (provisionedBy: the configuration file that declares one, null when made in the app)',
    handler: async ({ hub }) => ({ items: await listPractitionerViews(hub.store.db) }),
  }),
  defineRoute({
    method: 'POST', path: '/practitioners', scope: 'admin', tag: 'setup', status: 201,
    summary: 'Add a practitioner (name, e-mail, zone, locations, services offered, weekly hours, the calendars they are written to)',
    body: z.object({ id: configId.optional(), name, ...practitionerFields }).strict(),
    async handler({ hub, body, actor }) {
      const db = hub.store.db;
      const clinic = await clinicOrRefuse(db);
      await checkPractitioner(db, body);
      const id = await newId(db, 'practitioner', body.id, body.name);
      return audited(hub, async (trx) => {
        await insertPractitioner(trx, clinic.id, id, body);
        await feedsFor(trx, hub, id, body.targets);
        const after = await getPractitionerView(trx, id);
        return { result: after, audit: { action: 'practitioner.created', entityType: 'practitioner', entityId: id, after } };
      }, actor).then((made) => {
        pushSoon(hub, (made?.targets ?? []).map((t) => t.connection));
        return made;
      });
    },
  }),
  defineRoute({
    method: 'PATCH', path: '/practitioners/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a practitioner made in the app (name, e-mail, zone, locations, services, hours, the targets their appointments are written to, active)',
    body: z.object({ name: name.optional(), ...practitionerFields }).strict(),
    async handler({ hub, params, body, actor }) {
      const db = hub.store.db;
      await editable(db, 'practitioner', params.id);
      await checkPractitioner(db, body);
      const before = await getPractitionerView(db, params.id);
      const after = await audited(hub, async (trx) => {
        await updatePractitioner(trx, params.id, body);
        await feedsFor(trx, hub, params.id, body.targets);
        const view = await getPractitionerView(trx, params.id);
        return { result: view, audit: { action: 'practitioner.updated', entityType: 'practitioner', entityId: params.id, before, after: view } };
      }, actor);
      // A calendar newly picked (or dropped) gets its push channel now rather than at the next check.
      if (body.targets || body.active !== undefined) pushSoon(hub, [...(before?.targets ?? []), ...(after?.targets ?? [])].map((t) => t.connection));
      return after;
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/practitioners/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Remove a practitioner made in the app that nothing uses (one with appointments is retired with active: false instead)',
    async handler({ hub, params, actor }) {
      const db = hub.store.db;
      const row = await editable(db, 'practitioner', params.id);
      refuseInUse(`Practitioner "${row.name}"`, await usesOfPractitioner(db, params.id), 'set them inactive instead: their history stays');
      const before = await getPractitionerView(db, params.id);
      return audited(hub, async (trx) => {
        await deletePractitioner(trx, params.id);
        return { result: { id: params.id, deleted: true }, audit: { action: 'practitioner.deleted', entityType: 'practitioner', entityId: params.id, before } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'GET', path: '/locations', scope: 'read', tag: 'setup', summary: 'Locations with their rooms and time zones (provisionedBy: the configuration file that declares one)',
    handler: async ({ hub }) => ({ items: await listLocationsWithRooms(hub.store.db) }),
  }),
  defineRoute({
    method: 'POST', path: '/locations', scope: 'admin', tag: 'setup', status: 201, summary: 'Add a location (zone: the clinic\'s unless said), with rooms',
    body: z.object({ id: configId.optional(), name, timeZone: zone.optional(), address: z.string().max(500).nullable().optional(), rooms: z.array(roomInput).max(200).optional() }).strict(),
    async handler({ hub, body, actor }) {
      const db = hub.store.db;
      const clinic = await clinicOrRefuse(db);
      const id = await newId(db, 'location', body.id, body.name);
      const rooms: { id: string; name: string }[] = [];
      for (const r of body.rooms ?? []) {
        const rid = r.id ?? await freeId(db, 'room', `${id}-${r.name}`);
        if (rooms.some((x) => x.id === rid) || await setupRow(db, 'room', rid)) throw new HttpError('already_exists', `there is already a room "${rid}"`);
        rooms.push({ id: rid, name: r.name });
      }
      return audited(hub, async (trx) => {
        await insertLocation(trx, clinic.id, id, { name: body.name, timeZone: body.timeZone ?? clinic.timeZone, address: body.address });
        for (const r of rooms) await insertRoom(trx, id, r.id, r.name);
        const after = await getLocation(trx, id);
        return { result: after, audit: { action: 'location.created', entityType: 'location', entityId: id, after } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'PATCH', path: '/locations/:id', scope: 'admin', tag: 'setup', params: idParam, summary: 'Change a location made in the app (name, zone, address)',
    body: z.object({ name: name.optional(), timeZone: zone.optional(), address: z.string().max(500).nullable().optional() }).strict(),
    async handler({ hub, params, body, actor }) {
      const db = hub.store.db;
      await editable(db, 'location', params.id);
      const before = await getLocation(db, params.id);
      return audited(hub, async (trx) => {
        await updateLocation(trx, params.id, body);
        const after = await getLocation(trx, params.id);
        return { result: after, audit: { action: 'location.updated', entityType: 'location', entityId: params.id, before, after } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/locations/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Remove a location made in the app, with its rooms, when no practitioner, connection or appointment uses it',
    async handler({ hub, params, actor }) {
      const db = hub.store.db;
      const row = await editable(db, 'location', params.id);
      refuseInUse(`Location "${row.name}"`, await usesOfLocation(db, params.id), 'take it out of those practitioners\' locations first; a location with appointments stays for their history');
      const before = await getLocation(db, params.id);
      return audited(hub, async (trx) => {
        await deleteLocation(trx, params.id);
        return { result: { id: params.id, deleted: true }, audit: { action: 'location.deleted', entityType: 'location', entityId: params.id, before } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'POST', path: '/locations/:id/rooms', scope: 'admin', tag: 'setup', params: idParam, status: 201, summary: 'Add a room to a location made in the app',
    body: roomInput,
    async handler({ hub, params, body, actor }) {
      const db = hub.store.db;
      await editable(db, 'location', params.id);
      const rid = await newId(db, 'room', body.id, `${params.id}-${body.name}`);
      return audited(hub, async (trx) => {
        await insertRoom(trx, params.id, rid, body.name);
        const after = await getLocation(trx, params.id);
        return { result: after, audit: { action: 'room.created', entityType: 'room', entityId: rid, after: { locationId: params.id, name: body.name } } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'PATCH', path: '/locations/:id/rooms/:roomId', scope: 'admin', tag: 'setup', params: roomParams, summary: 'Rename a room made in the app',
    body: z.object({ name }).strict(),
    async handler({ hub, params, body, actor }) {
      const db = hub.store.db;
      await editable(db, 'location', params.id);
      const room = await getRoom(db, params.roomId);
      if (!room || room.location_id !== params.id) throw new HttpError('unknown_room', `no room ${params.roomId} at ${params.id}`);
      await editable(db, 'room', params.roomId);
      return audited(hub, async (trx) => {
        await renameRoom(trx, params.roomId, body.name);
        return { result: await getLocation(trx, params.id), audit: { action: 'room.updated', entityType: 'room', entityId: params.roomId, before: { name: room.name }, after: { name: body.name } } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/locations/:id/rooms/:roomId', scope: 'admin', tag: 'setup', params: roomParams, summary: 'Remove a room made in the app that no appointment uses',
    async handler({ hub, params, actor }) {
      const db = hub.store.db;
      await editable(db, 'location', params.id);
      const room = await getRoom(db, params.roomId);
      if (!room || room.location_id !== params.id) throw new HttpError('unknown_room', `no room ${params.roomId} at ${params.id}`);
      await editable(db, 'room', params.roomId);
      refuseInUse(`Room "${room.name}"`, await usesOfRoom(db, params.roomId), 'a room with appointments stays for their history; rename it instead');
      return audited(hub, async (trx) => {
        await deleteRoom(trx, params.roomId);
        return { result: await getLocation(trx, params.id), audit: { action: 'room.deleted', entityType: 'room', entityId: params.roomId, before: { locationId: params.id, name: room.name } } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'GET', path: '/services', scope: 'read', tag: 'setup', summary: 'Services (provisionedBy: the configuration file that declares one)',
    handler: async ({ hub }) => ({ items: await listServices(hub.store.db) }),
  }),
  defineRoute({
    method: 'POST', path: '/services', scope: 'admin', tag: 'setup', status: 201, summary: 'Add a service (name, usual length in minutes)',
    body: z.object({ id: configId.optional(), name, durationMinutes: z.number().int().positive().max(24 * 60).nullable().optional() }).strict(),
    async handler({ hub, body, actor }) {
      const db = hub.store.db;
      const clinic = await clinicOrRefuse(db);
      const id = await newId(db, 'service', body.id, body.name);
      return audited(hub, async (trx) => {
        await insertService(trx, clinic.id, id, body);
        const after = await getService(trx, id);
        return { result: after, audit: { action: 'service.created', entityType: 'service', entityId: id, after } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'PATCH', path: '/services/:id', scope: 'admin', tag: 'setup', params: idParam, summary: 'Change a service made in the app',
    body: z.object({ name: name.optional(), durationMinutes: z.number().int().positive().max(24 * 60).nullable().optional() }).strict(),
    async handler({ hub, params, body, actor }) {
      const db = hub.store.db;
      await editable(db, 'service', params.id);
      const before = await getService(db, params.id);
      return audited(hub, async (trx) => {
        await updateService(trx, params.id, body);
        const after = await getService(trx, params.id);
        return { result: after, audit: { action: 'service.updated', entityType: 'service', entityId: params.id, before, after } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/services/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Remove a service made in the app that no practitioner, connection, appointment, lead or notification rule uses',
    async handler({ hub, params, actor }) {
      const db = hub.store.db;
      const row = await editable(db, 'service', params.id);
      refuseInUse(`Service "${row.name}"`, await usesOfService(db, params.id), 'take it out of what offers or maps it first; a service with appointments stays for their history, rename it instead');
      const before = await getService(db, params.id);
      return audited(hub, async (trx) => {
        await deleteService(trx, params.id);
        return { result: { id: params.id, deleted: true }, audit: { action: 'service.deleted', entityType: 'service', entityId: params.id, before } };
      }, actor);
    },
  }),
  defineRoute({
    method: 'GET', path: '/connections', scope: 'read', tag: 'setup', summary: 'Connections with their status (secrets are never returned; `needs_setup` while one lacks secrets, with `setup: { complete, missing, unsetEnv }`; provisionedBy: the configuration file that declares one)',
    handler: async ({ hub }) => ({ items: (await listConnectionRows(hub.store.db)).map((r) => connectionView(hub, r)) }),
  }),
  defineRoute({
    method: 'GET', path: '/config/export', scope: 'admin', tag: 'setup',
    summary: 'The whole configuration as YAML (meridian.yaml): secrets only as references, never values; `meridian config check` accepts it',
    async handler({ hub }) {
      const at = hub.clock.now().toISOString();
      return new Download('application/yaml; charset=utf-8', `meridian-${at.slice(0, 10)}.yaml`, await exportConfig(hub, { at, from: hub.store.where }));
    },
  }),
  defineRoute({
    method: 'PATCH', path: '/connections/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a connection made in the app (privacy level, base URL, reference mappings, settings); one a configuration file declares is changed there',
    body: z.object({
      name: z.string().min(1).optional(), privacy: z.enum(PRIVACY_LEVELS).nullable().optional(), baseUrl: z.url().nullable().optional(),
      refs: z.object({
        practitioners: z.record(z.string(), z.string()).optional(), services: z.record(z.string(), z.string()).optional(),
        locations: z.record(z.string(), z.string()).optional(), defaultPractitioner: z.string().optional(),
      }).strict().optional(),
      config: z.record(z.string(), z.unknown()).optional(),
    }).strict(),
    async handler({ hub, params, body, actor }) {
      await editable(hub.store.db, 'connection', params.id);
      const row = (await getConnectionRow(hub.store.db, params.id))!;
      if (body.config !== undefined || body.privacy !== undefined) {
        // The checks `meridian validate` makes on the file, on the settings as they would be stored.
        const was = toConnection(row);
        const issues = connectionConfigIssues({ platform: row.platform, privacy: body.privacy === undefined ? was.privacy : body.privacy ?? undefined, config: body.config ?? was.config });
        if (issues.length) {
          throw new HttpError('invalid_request', `the settings are not valid: ${issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`, {
            issues: issues.map((x) => ({ field: ['config', ...x.path].join('.'), message: x.message })),
          });
        }
      }
      await hub.store.db.transaction().execute(async (trx) => {
        await updateConnection(trx, params.id, body, hub.clock.now().toISOString());
        await appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'connection.updated', entityType: 'connection', entityId: params.id, meta: { fields: Object.keys(body) } }]);
      });
      hub.cache.clear();
      const after = await getConnectionRow(hub.store.db, params.id);
      if (!after) throw new HttpError('not_found', `no connection ${params.id}`);
      return connectionView(hub, after);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/connections/:id/secrets', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Store secrets for a connection, encrypted (AES-256-GCM). Values are never returned.',
    body: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/), z.string().min(1).max(8192)),
    async handler({ hub, params, body, actor }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
      const d = allDescriptors().find((x) => x.id === row.platform);
      const known = new Set((d?.auth ?? []).filter((a) => a.secret).flatMap((a) => [a.key, `${a.key}Previous`]));
      const keys = Object.keys(body);
      const unknown = keys.filter((k) => !known.has(k));
      if (unknown.length) throw new HttpError('unknown_secret', `${d?.displayName ?? row.platform} has no secret ${unknown.join(', ')}`);
      await saveSecrets(hub.store.db, hub, params.id, body);
      // New credentials end a "needs reconnecting" state; this connection's waiting jobs run at the next poll.
      await credentialsRenewed(hub, params.id);
      await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'connection.secrets_stored', entityType: 'connection', entityId: params.id, meta: { keys } }]));
      return { stored: keys };
    },
  }),
  defineRoute({
    method: 'GET', path: '/feeds', scope: 'admin', tag: 'setup', summary: 'Published calendar feeds and their subscription paths (the path is the secret)',
    handler: async ({ hub }) => ({ items: await listFeeds(hub) }),
  }),
  defineRoute({
    method: 'POST', path: '/feeds/:id/rotate', scope: 'admin', tag: 'setup', params: idParam, summary: 'Give a feed a new secret URL (the old one stops working)',
    async handler({ hub, params }) {
      const token = await rotateFeed(hub, params.id);
      if (!token) throw new HttpError('not_found', `no feed ${params.id}`);
      return { path: `/feeds/${token}.ics` };
    },
  }),
  defineRoute({
    method: 'GET', path: '/users', scope: 'admin', tag: 'setup', summary: 'Staff accounts of the web app (password hashes are never returned)',
    handler: async ({ hub }) => ({ items: await listUsers(hub) }),
  }),
  defineRoute({
    method: 'POST', path: '/users', scope: 'admin', tag: 'setup', status: 201,
    summary: 'Add a staff account: owner (admin), front_desk (write) or practitioner (reads only their own schedule; needs practitionerId)',
    body: z.object({ email: z.string().min(3).max(320), name: z.string().max(200).optional(), role: z.enum(ROLES), password: z.string().min(1).max(200), practitionerId: z.string().optional() }).strict(),
    handler: ({ hub, body, actor }) => createUser(hub, body, actor),
  }),
  defineRoute({
    method: 'PATCH', path: '/users/:id', scope: 'admin', tag: 'setup', params: idParam, summary: 'Disable (signs them out everywhere) or re-enable a staff account',
    body: z.object({ disabled: z.boolean() }).strict(),
    handler: ({ hub, params, body, actor }) => setUserDisabled(hub, params.id, body.disabled, actor),
  }),
  defineRoute({
    method: 'GET', path: '/platforms', scope: 'read', tag: 'setup', summary: 'Every connector with its capabilities and fidelity',
    handler: async () => ({ items: allDescriptors() }),
  }),
];
