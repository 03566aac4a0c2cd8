// Applying a validated configuration to the store, in one transaction, audited. The file is the
// source of truth for what it declares (configuration as code, Grafana-style): every row it declares is
// marked `provisioned_by` the file (read-only in the app), rows made in the app are left alone. Of the
// rows a file provisioned, those it no longer lists are released to the app: practitioners deactivated
// (their history stays), connections disabled, locations, rooms and services kept as they are.
// Secrets: only environment references come from the file; values stored encrypted through the API are kept.
import { getTarget } from '../connectors/registry.ts';
import { appendAudit } from '../store/audit.ts';
import { getMeta, putMeta, type Exec } from '../store/repo.ts';
import { saveRetentionPolicy } from '../store/retention.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { createFeed } from '../engine/effects/feeds.ts';
import type { ClinicConfig } from './schema.ts';
import { replanClinic } from '../engine/effects/notify.ts';
import type { NotificationSettings } from '../domain/notify-plan.ts';

export const CONFIG_HASH_KEY = 'config_hash';
/** Meta: per connection, the secret keys the applied file declares `{ stored: true }` (the export names them even before a value is stored). */
export const STORED_SECRETS_KEY = 'config_stored_secrets';
/** What `provisioned_by` says when the file's path is not known (and what migration 0014 wrote on existing rows). */
export const UNKNOWN_FILE = 'a configuration file';

type SetupTable = 'clinic' | 'location' | 'room' | 'service' | 'practitioner' | 'connection';

/** The ids of each setup table the configuration declares. */
function declared(c: ClinicConfig): Record<SetupTable, string[]> {
  return {
    clinic: [c.clinic.id],
    location: c.locations.map((l) => l.id),
    room: c.locations.flatMap((l) => l.rooms.map((r) => r.id)),
    service: c.services.map((s) => s.id),
    practitioner: c.practitioners.map((p) => p.id),
    connection: c.connections.map((x) => x.id),
  };
}

/** Mark every declared row as provisioned by `file` (one update per table; rows already marked are not touched). */
async function markProvisioned(db: Exec, c: ClinicConfig, file: string): Promise<void> {
  for (const [table, ids] of Object.entries(declared(c)) as [SetupTable, string[]][]) {
    if (!ids.length) continue;
    await db.updateTable(table).set({ provisioned_by: file }).where('id', 'in', ids)
      .where((eb) => eb.or([eb('provisioned_by', 'is', null), eb('provisioned_by', '!=', file)])).execute();
  }
}

export interface ApplySummary {
  applied: boolean;
  practitioners: number;
  connections: number;
  feedsCreated: number;
}

async function upsert<T extends Record<string, unknown>>(trx: Exec, table: Exclude<SetupTable, 'connection'>, row: T & { id: string }): Promise<void> {
  const { id, ...rest } = row;
  await trx.insertInto(table).values(row as never).onConflict((oc) => oc.column('id').doUpdateSet(rest as never)).execute();
}

/**
 * Apply `c` (the content of `o.file`, whose SHA-256 is `hash`). An unchanged file is not applied again,
 * but the rows it declares are still marked as provisioned by it (a store from before 0014, or a file moved).
 * With `seed` the rows are made as if in the app instead (nothing marked provisioned): the demo's clinic.
 */
export async function applyConfig(hub: Hub, c: ClinicConfig, hash: string, actor: string, o: { force?: boolean; file?: string; seed?: boolean } = {}): Promise<ApplySummary> {
  const db = hub.store.db;
  const file = o.file ?? UNKNOWN_FILE;
  const current = await getMeta(db, CONFIG_HASH_KEY);
  if (current === hash && !o.force && !o.seed) {
    await markProvisioned(db, c, file);
    hub.cache.clear();
    return { applied: false, practitioners: c.practitioners.length, connections: c.connections.length, feedsCreated: 0 };
  }
  const now = hub.clock.now().toISOString();
  let feedsCreated = 0;
  let prevNotifications: unknown;
  await db.transaction().execute(async (trx) => {
    const prev = await trx.selectFrom('clinic').select('settings').where('id', '=', c.clinic.id).executeTakeFirst();
    prevNotifications = prev ? JSON.parse(prev.settings).notifications : undefined;
    const settings = { ...(prev ? JSON.parse(prev.settings) : {}), targets: c.clinic.targets, hours: c.clinic.hours ?? null, notifications: c.notifications ?? null };
    // `seed`: the rows are made as if in the app (the demo): nothing provisioned, all editable there.
    const provisioned_by = o.seed ? null : file;
    await upsert(trx, 'clinic', { id: c.clinic.id, name: c.clinic.name, time_zone: c.clinic.timeZone, language: c.clinic.language, settings: JSON.stringify(settings), updated_at: now, provisioned_by });
    for (const l of c.locations) {
      await upsert(trx, 'location', { id: l.id, clinic_id: c.clinic.id, name: l.name, time_zone: l.timeZone ?? c.clinic.timeZone, address: l.address ?? null, provisioned_by });
      for (const r of l.rooms) await upsert(trx, 'room', { id: r.id, location_id: l.id, name: r.name, provisioned_by });
    }
    for (const s of c.services) await upsert(trx, 'service', { id: s.id, clinic_id: c.clinic.id, name: s.name, duration_minutes: s.durationMinutes ?? null, provisioned_by });
    for (const p of c.practitioners) {
      await upsert(trx, 'practitioner', {
        id: p.id, clinic_id: c.clinic.id, name: p.name, email: p.email?.toLowerCase() ?? null, time_zone: p.timeZone ?? null,
        location_ids: JSON.stringify(p.locations), targets: JSON.stringify(p.targets), active: p.active ? 1 : 0,
        services: JSON.stringify(p.services), hours: p.hours ? JSON.stringify(p.hours) : null, provisioned_by,
      });
    }
    // Only rows a file provisioned are the file's to retire; rows made in the app are not touched.
    const ids = declared(c);
    const notListed = (list: string[]) => (list.length ? list : ['']);
    await trx.updateTable('practitioner').set({ active: 0, provisioned_by: null }).where('clinic_id', '=', c.clinic.id)
      .where('provisioned_by', 'is not', null).where('id', 'not in', notListed(ids.practitioner)).execute();
    await trx.updateTable('location').set({ provisioned_by: null }).where('clinic_id', '=', c.clinic.id)
      .where('provisioned_by', 'is not', null).where('id', 'not in', notListed(ids.location)).execute();
    await trx.updateTable('room').set({ provisioned_by: null }).where('provisioned_by', 'is not', null).where('id', 'not in', notListed(ids.room)).execute();
    await trx.updateTable('service').set({ provisioned_by: null }).where('clinic_id', '=', c.clinic.id)
      .where('provisioned_by', 'is not', null).where('id', 'not in', notListed(ids.service)).execute();

    for (const x of c.connections) {
      // `{ stored: true }` names a secret kept encrypted in the store: nothing to reference, the stored value stays.
      const secretRefs = Object.fromEntries(Object.entries(x.secrets).flatMap(([k, v]) => ('env' in (v as object) ? [[k, (v as { env: string }).env]] : [])));
      const row = {
        clinic_id: c.clinic.id, platform: x.platform, name: x.name ?? x.id, config: JSON.stringify(x.config), refs: JSON.stringify(x.refs),
        privacy: x.privacy ?? null, base_url: x.baseUrl ?? null, secret_refs: JSON.stringify(secretRefs), updated_at: now, provisioned_by,
      };
      const exists = await trx.selectFrom('connection').select(['id', 'status']).where('id', '=', x.id).executeTakeFirst();
      if (exists) {
        await trx.updateTable('connection').set({ ...row, ...(exists.status === 'disabled' || exists.status === 'removed' ? { status: 'active' } : {}) }).where('id', '=', x.id).execute();
      } else {
        await trx.insertInto('connection').values({ id: x.id, ...row, secrets_enc: null, status: 'active', last_sync_at: null, last_error: null, created_at: now, sync_state: '{}', poll_lease_until: null, poll_lease_by: null }).execute();
      }
    }
    await trx.updateTable('connection').set({ status: 'disabled', updated_at: now, provisioned_by: null }).where('clinic_id', '=', c.clinic.id)
      .where('provisioned_by', 'is not', null).where('id', 'not in', notListed(ids.connection)).execute();
    const storedDeclared = Object.fromEntries(c.connections.map((x) => [x.id, Object.entries(x.secrets).filter(([, v]) => 'stored' in (v as object)).map(([k]) => k).sort()]).filter(([, keys]) => keys.length));
    await putMeta(trx, STORED_SECRETS_KEY, JSON.stringify(storedDeclared));

    // Published feeds: one per practitioner bound to a feed target, one per clinic-wide binding.
    const feedTargets = new Set(c.connections.filter((x) => getTarget(x.platform)?.renderFeed).map((x) => x.id));
    const wanted: { connection: string; scope: 'clinic' | 'practitioner'; scopeId: string }[] = [];
    for (const t of c.clinic.targets) if (feedTargets.has(t.connection)) wanted.push({ connection: t.connection, scope: 'clinic', scopeId: c.clinic.id });
    for (const p of c.practitioners) for (const t of p.targets) if (feedTargets.has(t.connection)) wanted.push({ connection: t.connection, scope: 'practitioner', scopeId: p.id });
    for (const w of wanted) {
      const have = await trx.selectFrom('feed').select('id').where('connection_id', '=', w.connection).where('scope', '=', w.scope).where('scope_id', '=', w.scopeId).executeTakeFirst();
      if (!have) {
        await createFeed(trx, hub, w.connection, w.scope, w.scopeId);
        feedsCreated++;
      }
    }

    // The retention periods are read by the hourly pruning (engine/sync/retention.ts), which has no config file.
    await saveRetentionPolicy(trx, c.retention);
    if (!o.seed) await putMeta(trx, CONFIG_HASH_KEY, hash);
    await appendAudit(trx, hub.store.dialect, [{
      at: now, actor, action: 'config.applied', entityType: 'clinic', entityId: c.clinic.id,
      meta: { hash, file, practitioners: c.practitioners.length, connections: c.connections.length, feedsCreated },
    }]);
  });
  hub.cache.clear();
  // New or removed reminder/follow-up rules reach the bookings already made.
  if (JSON.stringify(prevNotifications ?? null) !== JSON.stringify(c.notifications ?? null)) await replanClinic(hub, c.clinic.id, prevNotifications as NotificationSettings | null | undefined);
  return { applied: true, practitioners: c.practitioners.length, connections: c.connections.length, feedsCreated };
}
