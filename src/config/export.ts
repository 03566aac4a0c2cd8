// The whole configuration as it is in the store, written as meridian.yaml (`meridian config export`,
// GET /api/v1/config/export): what the app made and what files provisioned, in the file's own shape, so
// `config check` accepts it and applying it to an empty store gives the same setup (and the same export).
// Secrets are references only, never values: `{ env: NAME }` where the connection reads the environment,
// `{ stored: true }` for keys kept encrypted in the store (or declared so by the applied file).
// Not exported: staff accounts, API keys, feed URLs (secret), OAuth clients, and disabled connections
// (removed from the setup; bindings to them are left out too).
import { stringify } from 'yaml';
import { getConnector } from '../connectors/registry.ts';
import { storedSecrets } from '../engine/hub/connections.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { getMeta, type TargetBinding } from '../store/repo.ts';
import { loadRetentionPolicy } from '../store/retention.ts';
import { STORED_SECRETS_KEY } from './apply.ts';

export interface ExportHeader {
  /** When (ISO instant), said in the header comment. */
  at: string;
  /** Which store (hub.store.where), said in the header comment. */
  from: string;
}

export class NothingToExport extends Error {}

/** Drop keys whose value is undefined, an empty object or an empty list (the file's defaults). */
function tidy<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null
    && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0))) as Partial<T>;
}

function bindingOut(b: TargetBinding): Record<string, unknown> {
  return tidy({ connection: b.connection, calendar: b.calendar, privacy: b.privacy });
}

/** The configuration as YAML text with a header comment. */
export async function exportConfig(hub: Hub, header: ExportHeader): Promise<string> {
  const db = hub.store.db;
  const clinic = await db.selectFrom('clinic').selectAll().orderBy('id').executeTakeFirst();
  if (!clinic) throw new NothingToExport('there is no clinic in this store yet: nothing to export');
  const settings = JSON.parse(clinic.settings) as { targets?: TargetBinding[]; hours?: unknown; notifications?: unknown };

  const connRows = (await db.selectFrom('connection').selectAll().where('clinic_id', '=', clinic.id).orderBy('id').execute()).filter((c) => c.status !== 'disabled');
  const live = new Set(connRows.map((c) => c.id));
  const bindings = (list: TargetBinding[] | undefined) => (list ?? []).filter((b) => live.has(b.connection)).map(bindingOut);
  const declaredStored = JSON.parse((await getMeta(db, STORED_SECRETS_KEY)) ?? '{}') as Record<string, string[]>;

  const locs = await db.selectFrom('location').selectAll().where('clinic_id', '=', clinic.id).orderBy('id').execute();
  const rooms = await db.selectFrom('room').selectAll().orderBy('id').execute();
  const services = await db.selectFrom('service').selectAll().where('clinic_id', '=', clinic.id).orderBy('id').execute();
  const practitioners = await db.selectFrom('practitioner').selectAll().where('clinic_id', '=', clinic.id).orderBy('id').execute();

  const config = tidy({
    clinic: tidy({
      id: clinic.id, name: clinic.name, timeZone: clinic.time_zone, language: clinic.language,
      targets: bindings(settings.targets), hours: settings.hours ?? undefined,
    }),
    locations: locs.map((l) => tidy({
      id: l.id, name: l.name, timeZone: l.time_zone, address: l.address ?? undefined,
      rooms: rooms.filter((r) => r.location_id === l.id).map((r) => ({ id: r.id, name: r.name })),
    })),
    services: services.map((s) => tidy({ id: s.id, name: s.name, durationMinutes: s.duration_minutes ?? undefined })),
    practitioners: practitioners.map((p) => tidy({
      id: p.id, name: p.name, email: p.email ?? undefined, timeZone: p.time_zone ?? undefined,
      locations: JSON.parse(p.location_ids) as string[], targets: bindings(JSON.parse(p.targets) as TargetBinding[]),
      active: p.active === 1 ? undefined : false,
      services: JSON.parse(p.services ?? '[]') as string[], hours: p.hours ? JSON.parse(p.hours) : undefined,
    })),
    connections: connRows.map((c) => {
      const known = new Set((getConnector(c.platform)?.descriptor.auth ?? []).filter((a) => a.secret).map((a) => a.key));
      const isKnown = (k: string) => known.has(k.endsWith('Previous') ? k.slice(0, -'Previous'.length) : k);
      const env = JSON.parse(c.secret_refs) as Record<string, string>;
      const stored = new Set([...Object.keys(storedSecrets(hub, c.secrets_enc)), ...(declaredStored[c.id] ?? [])].filter((k) => isKnown(k) && !(k in env)));
      const secrets: Record<string, unknown> = {};
      for (const k of [...Object.keys(env), ...stored].sort()) secrets[k] = k in env ? { env: env[k] } : { stored: true };
      return tidy({
        id: c.id, platform: c.platform, name: c.name, baseUrl: c.base_url ?? undefined, privacy: c.privacy ?? undefined,
        config: JSON.parse(c.config) as Record<string, unknown>, secrets, refs: JSON.parse(c.refs) as Record<string, unknown>,
      });
    }),
    notifications: settings.notifications ?? undefined,
    retention: await loadRetentionPolicy(db),
  });
  const head = [
    'Meridian configuration (meridian.yaml), exported from the store: configuration as code.',
    `Exported at ${header.at} from ${header.from}.`,
    'Secrets are references, never values: { env: NAME } reads the environment, { stored: true } is kept encrypted in Meridian.',
    'Not included: staff accounts, API keys, feed URLs, OAuth clients, disabled connections.',
    'Rows this file declares become read-only in the web app once it is applied (remove one here to manage it there).',
  ];
  return `${head.map((l) => `# ${l}`).join('\n')}\n${stringify(config, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
