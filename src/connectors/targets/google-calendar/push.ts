// Google Calendar push (issue 18; targets.md §1.6, connect.md §3.1). A channel is made with events.watch and
// ended with channels.stop; Google has no renewal (the engine makes a new channel, then stops the old one).
// Notifications are body-less POSTs whose X-Goog-* headers say only "look again": `parse` reads them into
// notices and judges nothing (the engine checks the channel id and its token, then runs the incremental sync).
import { fail, ok, type PushNotice, type WatchChannel, type WatchRequest, type WebhookRequest, type WriteOutcome } from '../../types.ts';
import type { GoogleCalendarApi } from './client.ts';
import { toFailure } from './errors.ts';

/** `/push/google/<connection>`. */
export const PUSH_PATH = 'google';

/** Google's reason for a notification address that is not https (the message reads "WebHook callback must be HTTPS: …"). */
const NOT_HTTPS_REASONS = new Set(['push.webhookUrlNotHttps', 'webhookUrlNotHttps']);

/** A Unix-milliseconds string (Google's int64) as a UTC instant; undefined when it is not one. */
function instantOfMs(ms: string | null | undefined): string | undefined {
  if (ms == null || !/^\d{1,16}$/.test(String(ms))) return undefined;
  const d = new Date(Number(ms));
  return Number.isFinite(d.getTime()) ? d.toISOString() : undefined;
}

/** events.watch on one calendar: the channel as Google made it (its expiration may be earlier than asked). */
export async function watchCalendar(api: GoogleCalendarApi, calendarId: string, req: WatchRequest): Promise<WriteOutcome<WatchChannel>> {
  const r = await api.watch(calendarId, {
    id: req.id,
    type: 'web_hook',
    address: req.address,
    token: req.token,
    // int64 in the discovery document: a JSON string of Unix milliseconds.
    expiration: String(req.expiration.getTime()),
  });
  if (r.kind !== 'ok') {
    if (r.kind === 'http' && r.status === 400 && (r.error.reasons.some((x) => NOT_HTTPS_REASONS.has(x)) || /https/i.test(r.error.message ?? ''))) {
      const f = await toFailure(r, 'watch');
      return fail({ ...f, class: 'permanent', message: `${f.message}: Google sends push notifications only to an https address; set Meridian's public URL to an https one (the calendar is still synchronised by sweeps)` });
    }
    return fail(await toFailure(r, 'watch'));
  }
  const ch = r.data ?? {};
  if (!ch.resourceId) {
    return fail({ class: 'permanent', status: r.status, message: 'Google Calendar watch: the answer names no resourceId, so the channel could not be stopped; it ends at its expiration' });
  }
  return ok({
    id: ch.id ?? req.id,
    resourceId: ch.resourceId,
    expiration: instantOfMs(ch.expiration) ?? req.expiration.toISOString(),
  });
}

/** channels.stop; a channel Google no longer knows (stopped, expired: 404) is already gone, which is success. */
export async function stopChannel(api: GoogleCalendarApi, channel: WatchChannel): Promise<WriteOutcome<void>> {
  if (!channel.resourceId) {
    return fail({ class: 'permanent', message: 'Google Calendar stop: the channel has no resourceId (channels.stop needs it); it ends at its expiration' });
  }
  const r = await api.stopChannel({ id: channel.id, resourceId: channel.resourceId });
  if (r.kind === 'ok') return ok(undefined);
  if (r.kind === 'http' && (r.status === 404 || r.status === 410)) return ok(undefined);
  return fail(await toFailure(r, 'stop'));
}

const STATES: Record<string, 'sync' | 'changed'> = { sync: 'sync', exists: 'changed', not_exists: 'changed' };

/** One notification's headers (lower-cased) as a notice; none for a request that is not one. Never throws. */
export function parsePush(req: WebhookRequest): PushNotice[] {
  const h = req?.headers ?? {};
  const header = (name: string): string | undefined => {
    const v = h[name];
    if (typeof v !== 'string') return undefined;
    const t = v.trim();
    return t ? t : undefined;
  };
  const channelId = header('x-goog-channel-id');
  const kind = STATES[header('x-goog-resource-state') ?? ''];
  if (!channelId || !kind) return [];
  const token = header('x-goog-channel-token');
  const resourceId = header('x-goog-resource-id');
  const n = header('x-goog-message-number');
  const messageNumber = n && /^\d{1,15}$/.test(n) ? Number(n) : undefined;
  return [{
    kind, channelId,
    ...(token !== undefined ? { token } : {}),
    ...(resourceId !== undefined ? { resourceId } : {}),
    ...(messageNumber !== undefined ? { messageNumber } : {}),
  }];
}

export const googlePush = { path: PUSH_PATH, parse: parsePush };
