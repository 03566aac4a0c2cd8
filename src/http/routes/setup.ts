// The clinic's setup: practitioners, locations, services, connections (and their secrets), calendar
// feeds, staff accounts and the connectors Meridian knows.
import { z } from 'zod';
import { allDescriptors } from '../../connectors/registry.ts';
import { connectionConfigIssues } from '../../config/validate.ts';
import { PRIVACY_LEVELS } from '../../domain/types.ts';
import { listFeeds, rotateFeed } from '../../engine/effects/feeds.ts';
import { credentialsRenewed, saveSecrets } from '../../engine/hub/connections.ts';
import { appendAudit } from '../../store/audit.ts';
import { listLocationsWithRooms, listServices, updateConnection, updatePractitioner } from '../../store/queries/setup.ts';
import { getConnectionRow, getPractitioner, listConnections, listPractitioners, toConnection } from '../../store/repo.ts';
import { createUser, listUsers, ROLES, setUserDisabled } from '../auth.ts';
import { HttpError } from '../errors.ts';
import { defineRoute, idParam, zone, type Route } from '../route.ts';

const targetBinding = z.object({ connection: z.string().min(1), calendar: z.string().optional() }).strict();

function connectionView(c: ReturnType<typeof toConnection>) {
  const { secretRefs, hasStoredSecrets, ...rest } = c;
  return { ...rest, secrets: { fromEnvironment: Object.keys(secretRefs), stored: hasStoredSecrets } };
}

export const SETUP_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/practitioners', scope: 'read', tag: 'setup', summary: 'Practitioners',
    handler: async ({ hub }) => ({ items: await listPractitioners(hub.store.db) }),
  }),
  defineRoute({
    method: 'PATCH', path: '/practitioners/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a practitioner (name, e-mail, zone, locations, the targets their appointments are written to, active)',
    body: z.object({
      name: z.string().min(1).optional(), email: z.email().nullable().optional(), timeZone: zone.nullable().optional(),
      locations: z.array(z.string()).optional(), targets: z.array(targetBinding).optional(), active: z.boolean().optional(),
    }).strict(),
    async handler({ hub, params, body, actor }) {
      const before = await getPractitioner(hub.store.db, params.id);
      if (!before) throw new HttpError('not_found', `no practitioner ${params.id}`);
      for (const t of body.targets ?? []) {
        const row = await getConnectionRow(hub.store.db, t.connection);
        if (!row || allDescriptors().find((d) => d.id === row.platform)?.role !== 'target') throw new HttpError('unknown_target', `no target connection ${t.connection}`);
      }
      await hub.store.db.transaction().execute(async (trx) => {
        await updatePractitioner(trx, params.id, body);
        const after = await getPractitioner(trx, params.id);
        await appendAudit(trx, hub.store.dialect, [{ at: hub.clock.now().toISOString(), actor, action: 'practitioner.updated', entityType: 'practitioner', entityId: params.id, before, after }]);
      });
      hub.cache.clear();
      return getPractitioner(hub.store.db, params.id);
    },
  }),
  defineRoute({
    method: 'GET', path: '/locations', scope: 'read', tag: 'setup', summary: 'Locations with their rooms and time zones',
    handler: async ({ hub }) => ({ items: await listLocationsWithRooms(hub.store.db) }),
  }),
  defineRoute({
    method: 'GET', path: '/services', scope: 'read', tag: 'setup', summary: 'Services',
    handler: async ({ hub }) => ({ items: await listServices(hub.store.db) }),
  }),
  defineRoute({
    method: 'GET', path: '/connections', scope: 'read', tag: 'setup', summary: 'Connections with their status (secrets are never returned)',
    handler: async ({ hub }) => ({ items: (await listConnections(hub.store.db)).map(connectionView) }),
  }),
  defineRoute({
    method: 'PATCH', path: '/connections/:id', scope: 'admin', tag: 'setup', params: idParam,
    summary: 'Change a connection (privacy level, base URL, reference mappings, settings)',
    body: z.object({
      name: z.string().min(1).optional(), privacy: z.enum(PRIVACY_LEVELS).nullable().optional(), baseUrl: z.url().nullable().optional(),
      refs: z.object({
        practitioners: z.record(z.string(), z.string()).optional(), services: z.record(z.string(), z.string()).optional(),
        locations: z.record(z.string(), z.string()).optional(), defaultPractitioner: z.string().optional(),
      }).strict().optional(),
      config: z.record(z.string(), z.unknown()).optional(),
    }).strict(),
    async handler({ hub, params, body, actor }) {
      const row = await getConnectionRow(hub.store.db, params.id);
      if (!row) throw new HttpError('not_found', `no connection ${params.id}`);
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
      return connectionView(toConnection(after));
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
