// Microsoft Graph change notifications for calendars (connect.md §3.2, targets.md §2.6; issue 18).
// - watch: POST /v1.0/subscriptions on the calendar's events collection (`/me/events`,
//   `/me/calendars/{id}/events`, `/users/{mailbox}/events`, `/users/{mailbox}/calendars/{id}/events`), changes
//   created,updated,deleted, our token as `clientState` (≤ 128 characters), lifecycle notices to
//   `lifecycleAddress` (else the same address: it cannot be added later). Graph validates both URLs before it
//   answers (the engine's route answers the handshake); a refused handshake comes back as 400 ValidationError.
// - Expiry: at most 10,080 minutes for Outlook events without resource data, asked with a margin; the answer's
//   `expirationDateTime` is the truth.
// - renewWatch: PATCH /v1.0/subscriptions/{id} {expirationDateTime} (also the answer to
//   `reauthorizationRequired`); 404 = gone (the engine makes a new one). unwatch: DELETE, 404 = done.
// - push.parse: `?validationToken=` → the URL-decoded token to echo; `{value: [...]}` → one notice per item
//   (lifecycle events by kind, else `changed`), never judged here: the engine checks subscription id and
//   clientState.
import { fail, ok, type ConnectionContext, type ConnectorFailure, type PushNotice, type TargetClient, type TargetConnector, type WatchChannel, type WebhookRequest } from '../../types.ts';
import type { JsonAnswer } from '../../shared/json-api.ts';

/** Graph's maximum lifetime of an Outlook event subscription without resource data (minutes). */
export const MAX_SUBSCRIPTION_MINUTES = 10_080;
/** Asked below the maximum so clock skew and request time never push it over. */
const MARGIN_MINUTES = 30;
const MAX_CLIENT_STATE = 128;

type Where = { user: string; coll?: string };
interface Deps {
  ctx: ConnectionContext;
  where(calendarId: string | undefined): Where | ConnectorFailure;
  /** One request (never batched) through the connector's token and gate plumbing. */
  direct(gate: string, r: { method: string; path: string; body?: unknown }): Promise<JsonAnswer>;
  failure(a: Exclude<JsonAnswer, { kind: 'ok' }>, op: string): ConnectorFailure;
}

/** A path as a subscription's `resource` (no base URL): the connector's encoded path, with `@` and `=` left readable. */
function resourceOf(w: Where): string {
  return `${w.coll ?? w.user}/events`.replace(/%40/gi, '@').replace(/%3D/gi, '=');
}

function expiryFor(now: Date, wanted: Date): string {
  const cap = now.getTime() + (MAX_SUBSCRIPTION_MINUTES - MARGIN_MINUTES) * 60_000;
  return new Date(Math.min(wanted.getTime(), cap)).toISOString();
}

function channelOf(json: Record<string, unknown> | undefined, fallback: { id?: string; expiration: string }): WatchChannel | undefined {
  const id = typeof json?.id === 'string' ? json.id : fallback.id;
  if (!id) return undefined;
  const raw = json?.expirationDateTime;
  const ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
  return { id, expiration: new Date(Number.isFinite(ms) ? ms : Date.parse(fallback.expiration)).toISOString() };
}

const SUBSCRIPTIONS = '/subscriptions';

/** watch / renewWatch / unwatch for one connection's client. */
export function watchMethods(d: Deps): Required<Pick<TargetClient, 'watch' | 'renewWatch' | 'unwatch'>> {
  const { ctx } = d;
  const errorCode = (a: JsonAnswer) => (a.kind === 'http' ? (a.json?.error as { code?: unknown } | undefined)?.code : undefined);
  return {
    async watch(calendarId, req) {
      const w = d.where(calendarId);
      if ('class' in w) return fail(w);
      if (req.token.length > MAX_CLIENT_STATE) return fail({ class: 'permanent', message: `Microsoft Graph subscription: the channel token is longer than ${MAX_CLIENT_STATE} characters (clientState)` });
      const expirationDateTime = expiryFor(ctx.now(), req.expiration);
      const body = {
        changeType: 'created,updated,deleted',
        notificationUrl: req.address,
        lifecycleNotificationUrl: req.lifecycleAddress ?? req.address,
        resource: resourceOf(w),
        expirationDateTime,
        clientState: req.token,
      };
      const r = await d.direct(SUBSCRIPTIONS, { method: 'POST', path: SUBSCRIPTIONS, body });
      if (r.kind === 'ok') {
        const ch = channelOf(r.json, { expiration: expirationDateTime });
        return ch ? ok(ch) : fail({ class: 'transient', message: 'Microsoft Graph subscription: the answer names no subscription id' });
      }
      const f = d.failure(r, 'subscription');
      if (errorCode(r) === 'ValidationError') {
        return fail({ ...f, class: 'permanent', message: `${f.message}: the notification URL did not pass Graph's validation (it must answer 200 text/plain with the decoded validationToken within 10 s, over HTTPS)` });
      }
      return fail(f);
    },

    async renewWatch(channel, expiration) {
      const expirationDateTime = expiryFor(ctx.now(), expiration);
      const r = await d.direct(SUBSCRIPTIONS, { method: 'PATCH', path: `${SUBSCRIPTIONS}/${encodeURIComponent(channel.id)}`, body: { expirationDateTime } });
      if (r.kind === 'ok') return ok({ ...channel, ...channelOf(r.json, { id: channel.id, expiration: expirationDateTime })! });
      const f = d.failure(r, 'subscription renewal');
      if (r.kind === 'http' && r.status === 404) return fail({ ...f, class: 'gone' });
      return fail(f);
    },

    async unwatch(channel) {
      const r = await d.direct(SUBSCRIPTIONS, { method: 'DELETE', path: `${SUBSCRIPTIONS}/${encodeURIComponent(channel.id)}` });
      if (r.kind === 'ok' || (r.kind === 'http' && (r.status === 404 || r.status === 410))) return ok(undefined);
      return fail(d.failure(r, 'subscription delete'));
    },
  };
}

type Kind = Exclude<PushNotice['kind'], 'validation'>;
const LIFECYCLE = new Map<unknown, Kind>([['reauthorizationRequired', 'reauthorize'], ['subscriptionRemoved', 'removed'], ['missed', 'missed']]);
const CHANGES = new Set(['created', 'updated', 'deleted']);

/** Read one request at `/push/graph/<connection>` into notices; anything unreadable gives none. */
export function parsePush(req: WebhookRequest): PushNotice[] {
  try {
    const token = new URL(req.url, 'http://localhost').searchParams.get('validationToken');
    if (token !== null) return [{ kind: 'validation', answer: token }];
    const body = JSON.parse(req.rawBody.toString('utf8')) as { value?: unknown };
    if (!body || !Array.isArray(body.value)) return [];
    const out: PushNotice[] = [];
    for (const item of body.value as Record<string, unknown>[]) {
      if (!item || typeof item !== 'object' || typeof item.subscriptionId !== 'string' || !item.subscriptionId) continue;
      let kind: Kind | undefined;
      if (item.lifecycleEvent != null) kind = LIFECYCLE.get(item.lifecycleEvent);
      else if (typeof item.changeType === 'string' && item.changeType.split(',').some((c) => CHANGES.has(c.trim()))) kind = 'changed';
      if (!kind) continue;
      out.push({
        kind, channelId: item.subscriptionId,
        ...(typeof item.clientState === 'string' ? { token: item.clientState } : {}),
        ...(typeof item.resource === 'string' ? { resourceId: item.resource } : {}),
      });
    }
    return out;
  } catch {
    return [];
  }
}

export const graphPush: NonNullable<TargetConnector['push']> = { path: 'graph', parse: parsePush, answerStatus: 202 };
