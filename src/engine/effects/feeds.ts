// Published calendar feeds (pull-based targets): tokens, and the feed body rendered on request from
// the appointments as they are now, at the feed connection's privacy level.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { getTarget } from '../../connectors/registry.ts';
import type { FeedEvent } from '../../connectors/types.ts';
import { INACTIVE, listAppointments, toConnection, type Exec } from '../../store/repo.ts';
import type { Hub } from '../hub/hub.ts';
import { NameBook } from './render.ts';

/** Past appointments stay in a feed this long (and cancelled ones, so subscribers remove them). */
const PAST_DAYS = 30;
const FUTURE_DAYS = 400;

export function feedTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createFeed(db: Exec, hub: Hub, connectionId: string, scope: 'clinic' | 'practitioner', scopeId: string): Promise<string> {
  const token = randomBytes(24).toString('base64url');
  await db.insertInto('feed').values({
    id: randomUUID(), connection_id: connectionId, scope, scope_id: scopeId, token_hash: feedTokenHash(token),
    token_enc: hub.box.encrypt(token), created_at: hub.clock.now().toISOString(),
  }).execute();
  return token;
}

export interface FeedInfo {
  id: string;
  connectionId: string;
  scope: string;
  scopeId: string;
  /** Path of the subscription URL (join with the public URL). */
  path: string;
}

export async function listFeeds(hub: Hub): Promise<FeedInfo[]> {
  const rows = await hub.store.db.selectFrom('feed').selectAll().orderBy('scope').orderBy('scope_id').execute();
  return rows.map((r) => ({ id: r.id, connectionId: r.connection_id, scope: r.scope, scopeId: r.scope_id, path: `/feeds/${hub.box.decrypt(r.token_enc)}.ics` }));
}

/** Replace a feed's token (the old URL stops working at once). */
export async function rotateFeed(hub: Hub, feedId: string): Promise<string | undefined> {
  const token = randomBytes(24).toString('base64url');
  const r = await hub.store.db.updateTable('feed').set({ token_hash: feedTokenHash(token), token_enc: hub.box.encrypt(token) }).where('id', '=', feedId).executeTakeFirst();
  return Number(r.numUpdatedRows) ? token : undefined;
}

export interface RenderedFeed {
  body: string;
  etag: string;
}

export async function renderFeedForToken(hub: Hub, token: string): Promise<RenderedFeed | undefined> {
  const db = hub.store.db;
  const feed = await db.selectFrom('feed').selectAll().where('token_hash', '=', feedTokenHash(token)).executeTakeFirst();
  if (!feed) return undefined;
  const connRow = await db.selectFrom('connection').selectAll().where('id', '=', feed.connection_id).executeTakeFirst();
  if (!connRow || INACTIVE.has(connRow.status)) return undefined;
  const target = getTarget(connRow.platform);
  if (!target?.renderFeed) return undefined;
  const conn = toConnection(connRow);
  const now = hub.clock.now();
  const from = new Date(now.getTime() - PAST_DAYS * 86_400_000).toISOString();
  const to = new Date(now.getTime() + FUTURE_DAYS * 86_400_000).toISOString();
  let name: string;
  let timeZone: string | undefined;
  let appts;
  if (feed.scope === 'practitioner') {
    const p = await db.selectFrom('practitioner').select(['name', 'time_zone', 'clinic_id']).where('id', '=', feed.scope_id).executeTakeFirst();
    if (!p) return undefined;
    const clinic = await db.selectFrom('clinic').select(['name', 'time_zone']).where('id', '=', p.clinic_id).executeTakeFirst();
    name = `${p.name} · ${clinic?.name ?? 'Meridian'}`;
    timeZone = p.time_zone ?? clinic?.time_zone;
    appts = await listAppointments(db, { from, to, practitionerId: feed.scope_id, limit: 20_000 });
  } else {
    const clinic = await db.selectFrom('clinic').select(['name', 'time_zone']).where('id', '=', feed.scope_id).executeTakeFirst();
    if (!clinic) return undefined;
    name = clinic.name;
    timeZone = clinic.time_zone;
    appts = (await listAppointments(db, { from, to, limit: 50_000 })).filter((a) => a.clinicId === feed.scope_id);
  }
  const book = new NameBook(db);
  const events: FeedEvent[] = [];
  for (const a of appts) {
    const text = await book.render(a, conn);
    events.push({
      appointmentId: a.id, revision: a.revision, title: text.title, description: text.description, location: text.location,
      start: a.start, end: a.end, timeZone: a.timeZone, status: a.status, createdAt: a.createdAt, updatedAt: a.updatedAt,
    });
  }
  // The ETag covers content, not the generation time, so unchanged feeds answer 304.
  const etag = `"${createHash('sha256').update(JSON.stringify([name, timeZone, conn.privacy, conn.config.template ?? null, events])).digest('base64url').slice(0, 27)}"`;
  const body = target.renderFeed({ name, timeZone, events, now, publicUrl: hub.publicUrl });
  return { body, etag };
}
