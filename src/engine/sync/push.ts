// Calendar push (issue 18): the channels a calendar keeps to tell Meridian, within seconds, that something in it
// changed (Google events.watch, Microsoft Graph subscriptions), and what Meridian does with a notification. A
// notice only says "look again": it queues a read of that calendar's changes (the sweep's own incremental read,
// coalesced: one pending job per calendar), never trusting the notice for what changed. Push is an accelerator:
// sweeps stay, so a lost notice, an expired channel or a server that was down is repaired at the next sweep.
//
// Channels exist only with a public https URL (a platform cannot reach anything else; Google and Graph refuse
// it). MERIDIAN_PUSH_INSECURE=1 allows plain http for fakes and local trials only.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { getTarget } from '../../connectors/registry.ts';
import type { PushNotice, TargetClient, TargetConnector, WatchChannel, WebhookRequest } from '../../connectors/types.ts';
import { calendarChangedJob } from '../../domain/jobs.ts';
import { appendAudit } from '../../store/audit.ts';
import { enqueue } from '../../store/outbox.ts';
import { getConnectionRow, type TargetBinding } from '../../store/repo.ts';
import type { PushChannelTable } from '../../store/schema.ts';
import { connectionContext, loadConnection } from '../hub/connections.ts';
import { boundCalendars } from './sweep.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';

/** How long Meridian asks a channel to live; platforms may answer with less (Graph: under 7 days for events). */
export const CHANNEL_DAYS = 7;
/** A channel ending sooner than this is renewed (or replaced) at the next check. */
export const RENEW_BEFORE_MS = 24 * 3_600_000;
/** Notices in a burst for one calendar wait this long, so they become one read. */
export const COALESCE_MS = 1_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Whether push can be on here, and why not. */
export function pushAvailability(hub: Hub): { on: true } | { on: false; why: string } {
  if (!hub.publicUrl) return { on: false, why: 'Meridian does not know its public URL (MERIDIAN_PUBLIC_URL): calendars cannot reach it' };
  if (hub.publicUrl.startsWith('https:') || hub.env.MERIDIAN_PUSH_INSECURE === '1') return { on: true };
  return { on: false, why: `the public URL ${hub.publicUrl} is not https: Google and Microsoft send notifications only to https addresses` };
}

function pushOf(platform: string): TargetConnector['push'] | undefined {
  return getTarget(platform)?.push;
}

/** The calendars of a connection that Meridian writes to: each practitioner's binding ('' = the connector's default calendar), and the clinic's. */
async function writtenCalendars(hub: Hub, connectionId: string): Promise<string[]> {
  const out = await boundCalendars(hub, connectionId);
  for (const c of await hub.store.db.selectFrom('clinic').select('settings').execute()) {
    for (const b of (JSON.parse(c.settings).targets ?? []) as TargetBinding[]) if (b.connection === connectionId) out.add(b.calendar ?? '');
  }
  return [...out];
}

function addressOf(hub: Hub, path: string, connectionId: string): string {
  return `${hub.publicUrl!.replace(/\/$/, '')}/push/${path}/${encodeURIComponent(connectionId)}`;
}

const channelOf = (r: PushChannelTable): WatchChannel => ({ id: r.id, resourceId: r.resource_id ?? undefined, expiration: r.expires_at });

async function audit(hub: Hub, connectionId: string, action: string, meta: Record<string, unknown>): Promise<void> {
  await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{ at: nowIso(hub), actor: 'meridian', action, entityType: 'connection', entityId: connectionId, meta }]));
}

async function stopChannel(hub: Hub, client: TargetClient | undefined, row: PushChannelTable, why: string): Promise<void> {
  if (client?.unwatch && row.state === 'active') {
    const r = await client.unwatch(channelOf(row));
    if (!r.ok) hub.log.warn({ connection: row.connection_id, failure: r.failure.message }, 'could not stop a push channel (it ends at its expiry)');
  }
  await hub.store.db.updateTable('push_channel').set({ state: 'stopped', last_error: why, updated_at: nowIso(hub) }).where('id', '=', row.id).execute();
}

async function openChannel(hub: Hub, client: TargetClient, connectionId: string, calendarId: string, address: string): Promise<void> {
  const token = randomBytes(32).toString('base64url');
  const id = randomUUID();
  const now = hub.clock.now();
  const r = await client.watch!(calendarId || undefined, { id, address, token, expiration: new Date(now.getTime() + CHANNEL_DAYS * 86_400_000) });
  const at = now.toISOString();
  if (!r.ok) {
    // A row of its own says why this calendar has no channel (the page shows it); the next check tries again.
    await hub.store.db.deleteFrom('push_channel').where('connection_id', '=', connectionId).where('calendar_id', '=', calendarId).where('state', '=', 'failed').execute();
    await hub.store.db.insertInto('push_channel').values({
      id, connection_id: connectionId, calendar_id: calendarId, resource_id: null, token_hash: sha256(token), address, expires_at: at, state: 'failed',
      last_message: null, last_notice_at: null, last_error: r.failure.message, created_at: at, updated_at: at,
    }).execute();
    hub.log.warn({ connection: connectionId, failure: r.failure.message }, 'could not open a push channel; the calendar is checked by sweeps');
    return;
  }
  await hub.store.db.deleteFrom('push_channel').where('connection_id', '=', connectionId).where('calendar_id', '=', calendarId).where('state', '=', 'failed').execute();
  await hub.store.db.insertInto('push_channel').values({
    id: r.value.id, connection_id: connectionId, calendar_id: calendarId, resource_id: r.value.resourceId ?? null, token_hash: sha256(token), address,
    expires_at: new Date(r.value.expiration).toISOString(), state: 'active', last_message: null, last_notice_at: null, last_error: null, created_at: at, updated_at: at,
  }).execute();
  await audit(hub, connectionId, 'push.channel_opened', { calendar: calendarId || '(default)', expires: r.value.expiration });
}

/**
 * Make a connection's channels match what it should have: one live channel per calendar Meridian writes to, at
 * today's public URL, renewed (or replaced) before it ends; channels of calendars no longer written to, of a
 * removed connection, or for another address, stopped. Never throws for the platform's answers.
 */
export function ensurePush(hub: Hub, connectionId: string): Promise<{ opened: number; renewed: number; stopped: number }> {
  // One at a time per connection in this process (the timer and a picked calendar may ask at once): no twin channels.
  const key = `${hub.nodeId}:${connectionId}`;
  const run = (inFlight.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => ensurePushNow(hub, connectionId));
  inFlight.set(key, run);
  void run.finally(() => { if (inFlight.get(key) === run) inFlight.delete(key); }).catch(() => undefined);
  return run;
}

const inFlight = new Map<string, Promise<unknown>>();

async function ensurePushNow(hub: Hub, connectionId: string): Promise<{ opened: number; renewed: number; stopped: number }> {
  const out = { opened: 0, renewed: 0, stopped: 0 };
  const row = await getConnectionRow(hub.store.db, connectionId);
  const push = row ? pushOf(row.platform) : undefined;
  const channels = await hub.store.db.selectFrom('push_channel').selectAll().where('connection_id', '=', connectionId).where('state', '=', 'active').execute();
  let client: TargetClient | undefined;
  if (row && row.status !== 'removed' && row.status !== 'disabled') {
    const conn = await loadConnection(hub, connectionId);
    client = (conn.connector as TargetConnector).client?.(connectionContext(hub, conn));
  }
  const available = pushAvailability(hub);
  const wanted = row && push && client?.watch && available.on && row.status === 'active' ? await writtenCalendars(hub, connectionId) : [];
  const address = wanted.length ? addressOf(hub, push!.path, connectionId) : '';
  const now = hub.clock.now().getTime();
  for (const ch of channels) {
    if (!wanted.includes(ch.calendar_id) || ch.address !== address) {
      await stopChannel(hub, client, ch, !available.on ? available.why : ch.address !== address ? 'the public URL changed' : 'the calendar is no longer written to');
      out.stopped++;
    }
  }
  for (const calendar of wanted) {
    const live = channels.filter((c) => c.calendar_id === calendar && c.address === address).sort((a, b) => b.expires_at.localeCompare(a.expires_at));
    const fresh = live.find((c) => Date.parse(c.expires_at) - now > RENEW_BEFORE_MS);
    if (fresh) {
      // Twins (two nodes opened one each at the same moment): the one that lasts longest stays.
      for (const twin of live.filter((c) => c !== fresh)) {
        await stopChannel(hub, client, twin, 'a second channel for the same calendar');
        out.stopped++;
      }
      continue;
    }
    const ending = live[0];
    if (ending && client!.renewWatch) {
      const r = await client!.renewWatch(channelOf(ending), new Date(now + CHANNEL_DAYS * 86_400_000));
      if (r.ok) {
        await hub.store.db.updateTable('push_channel').set({ expires_at: new Date(r.value.expiration).toISOString(), last_error: null, updated_at: nowIso(hub) }).where('id', '=', ending.id).execute();
        out.renewed++;
        continue;
      }
      hub.log.warn({ connection: connectionId, failure: r.failure.message }, 'could not renew a push channel; opening a new one');
    }
    // A new channel first, then the old one stopped: no gap in which a change goes unnoticed.
    await openChannel(hub, client!, connectionId, calendar, address);
    out.opened++;
    for (const old of live) {
      await stopChannel(hub, client, old, 'replaced before it ended');
      out.stopped++;
    }
  }
  return out;
}

/** Every calendar connection that can push: at start, then every few minutes (cheap when nothing is due). */
export async function reconcilePush(hub: Hub): Promise<void> {
  const conns = await hub.store.db.selectFrom('connection').select(['id', 'platform']).execute();
  const withChannels = new Set((await hub.store.db.selectFrom('push_channel').select('connection_id').where('state', '=', 'active').execute()).map((r) => r.connection_id));
  for (const c of conns) {
    if (!pushOf(c.platform) && !withChannels.has(c.id)) continue;
    await ensurePush(hub, c.id).catch((e: Error) => hub.log.warn({ connection: c.id, err: { message: e.message } }, 'push channels could not be checked'));
  }
}

/** Stop every channel of a connection (it is being removed, or disabled). */
export async function stopPush(hub: Hub, connectionId: string): Promise<number> {
  const row = await getConnectionRow(hub.store.db, connectionId);
  let client: TargetClient | undefined;
  if (row) {
    const conn = await loadConnection(hub, connectionId).catch(() => undefined);
    client = conn ? (conn.connector as TargetConnector).client?.(connectionContext(hub, conn)) : undefined;
  }
  const channels = await hub.store.db.selectFrom('push_channel').selectAll().where('connection_id', '=', connectionId).where('state', '=', 'active').execute();
  for (const ch of channels) await stopChannel(hub, client, ch, 'the connection was removed');
  return channels.length;
}

// ---------------------------------------------------------------- notifications

export type PushAnswer =
  | { status: number; text: string }
  | { status: number; json: Record<string, unknown> };

const tokenMatches = (token: string | undefined, hash: string) => token !== undefined && timingSafeEqual(Buffer.from(sha256(token)), Buffer.from(hash));

/**
 * One notification request at `/push/<path>/<connection>`. The channel and its secret are checked before
 * anything (401 otherwise); a notice for a channel that was stopped or has ended is refused (410); a replayed
 * one (a message number already seen) changes nothing (409). A change queues one read of that calendar.
 */
export async function receivePush(hub: Hub, path: string, connectionId: string, req: WebhookRequest): Promise<PushAnswer> {
  const row = await getConnectionRow(hub.store.db, connectionId);
  const push = row && row.status !== 'removed' ? pushOf(row.platform) : undefined;
  if (!push || push.path !== path) return { status: 404, json: { code: 'not_found', message: 'no calendar connection takes push notifications here' } };
  const notices: PushNotice[] = push.parse(req);
  const validation = notices.find((n): n is Extract<PushNotice, { kind: 'validation' }> => n.kind === 'validation');
  // Graph's handshake while a subscription is made: echo its token, as text, and nothing else.
  if (validation) return { status: 200, text: validation.answer.slice(0, 2048) };
  if (!notices.length) return { status: 400, json: { code: 'unreadable_payload', message: 'not a notification' } };
  const now = hub.clock.now();
  let verified = 0;
  let stale = 0;
  let replayed = 0;
  const calendars = new Set<string>();
  const renew: string[] = [];
  for (const n of notices) {
    if (n.kind === 'validation') continue;
    const ch = await hub.store.db.selectFrom('push_channel').selectAll().where('id', '=', n.channelId).where('connection_id', '=', connectionId).executeTakeFirst();
    if (!ch || !tokenMatches(n.token, ch.token_hash)) continue;
    verified++;
    if (ch.state !== 'active' || Date.parse(ch.expires_at) <= now.getTime()) {
      stale++;
      continue;
    }
    if (n.messageNumber !== undefined && ch.last_message !== null && n.messageNumber <= ch.last_message) {
      replayed++;
      continue;
    }
    await hub.store.db.updateTable('push_channel').set({
      ...(n.messageNumber !== undefined ? { last_message: n.messageNumber } : {}), last_notice_at: now.toISOString(), updated_at: now.toISOString(),
    }).where('id', '=', ch.id).execute();
    if (n.kind === 'sync') continue;
    if (n.kind === 'reauthorize') renew.push(ch.id);
    if (n.kind === 'removed') {
      await hub.store.db.updateTable('push_channel').set({ state: 'stopped', last_error: 'removed by the platform', updated_at: now.toISOString() }).where('id', '=', ch.id).execute();
      renew.push(ch.id);
    }
    // A change, a missed batch or a removed channel: read the calendar's changes (and after a removal, make it again).
    if (n.kind !== 'reauthorize') calendars.add(ch.calendar_id);
  }
  if (!verified) {
    hub.log.warn({ connection: connectionId, notices: notices.length }, 'push notification refused: unknown channel or wrong token');
    return { status: 401, json: { code: 'bad_signature', message: 'unknown channel or wrong token' } };
  }
  if (calendars.size) {
    const runAt = new Date(now.getTime() + COALESCE_MS).toISOString();
    await enqueue(hub.store.db, [...calendars].map((c) => ({ ...calendarChangedJob(connectionId, c), runAt })), now.toISOString());
    hub.onJobs();
  }
  if (renew.length) {
    // Graph wants its answer within seconds: renewing (or making the channel again) happens after it.
    await hub.store.db.updateTable('push_channel').set({ expires_at: now.toISOString() }).where('id', 'in', renew).where('state', '=', 'active').execute();
    void ensurePush(hub, connectionId).catch((e: Error) => hub.log.warn({ connection: connectionId, err: { message: e.message } }, 'renewing a push channel failed'));
  }
  if (stale === verified) return { status: 410, json: { code: 'gone', message: 'this channel was stopped or has ended' } };
  if (replayed + stale === verified && !calendars.size && !renew.length && replayed) return { status: 409, json: { code: 'replayed', message: 'this notification was already received' } };
  return { status: push.answerStatus ?? 200, json: { accepted: verified - stale - replayed, reads: calendars.size } };
}

/** What the Connections page shows for a connection's push: live channels with their expiry, or why there are none. */
export async function pushStatus(hub: Hub, connectionId: string, platform: string) {
  if (!pushOf(platform)) return { mode: 'none' as const };
  const available = pushAvailability(hub);
  const rows = await hub.store.db.selectFrom('push_channel').selectAll().where('connection_id', '=', connectionId).where('state', 'in', ['active', 'failed']).orderBy('calendar_id').execute();
  return {
    mode: 'push' as const,
    on: available.on,
    ...(available.on ? {} : { why: available.why }),
    calendars: rows.map((r) => ({ calendar: r.calendar_id, state: r.state === 'active' && Date.parse(r.expires_at) > hub.clock.now().getTime() ? 'live' : r.state === 'failed' ? 'failed' : 'ended', expiresAt: r.expires_at, lastNoticeAt: r.last_notice_at ?? undefined, error: r.last_error ?? undefined })),
  };
}
