// Square webhook subscriptions (connect.md §2): the Webhook Subscriptions API — `POST /v2/webhooks/subscriptions`
// { idempotency_key, subscription { name, event_types, notification_url, api_version } }, `GET` / `DELETE
// /v2/webhooks/subscriptions/{id}`. Subscriptions belong to the Square application, not to a seller, so Square
// accepts only the APPLICATION's personal access token here (`applicationToken`), never the seller's OAuth
// token (https://developer.squareup.com/docs/webhooks/webhook-subscriptions-api). One subscription serves every
// seller who authorised the application; deliveries name the seller in `merchant_id`.
// - Square issues the signature key (`signature_key`): returned as the `signatureKey` secret `verify` checks.
// - Square signs the notification URL followed by the body, so the URL subscribed must be exactly the URL the
//   connection verifies with (config.notificationUrl, else the URL Square posted to): it is sent as given, and an
//   answer naming any other URL is undone and refused.
// - `check`: `enabled` (Square disables a subscription that gets no 2xx for three weeks, sources-a.md §3).
import { randomUUID } from 'node:crypto';
import { failureFromAnswer, networkFailure, retryAfterMs } from '../../shared/http.ts';
import { attempt, isGone } from '../../shared/subscription.ts';
import { ConnectorError, fail, ok, type ConnectionContext, type WebhookSubscriptions } from '../../types.ts';

export const API_VERSION = '2025-08-20';
/** The booking events `parseWebhook` reads. */
export const EVENTS = ['booking.created', 'booking.updated'];

interface Subscription { id?: string; enabled?: boolean; notification_url?: string; signature_key?: string }

/** One call with the application's personal access token; Square's own error detail kept in the failure. */
async function appCall(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const token = ctx.secrets.applicationToken;
  if (!token) {
    throw new ConnectorError({ class: 'auth', message: 'Square: webhook subscriptions need the application\'s personal access token (applicationToken); a seller\'s OAuth token is not accepted there' });
  }
  let res: Response;
  try {
    res = await ctx.fetch(`${ctx.baseUrl}${path}`, {
      method,
      headers: { accept: 'application/json', authorization: `Bearer ${token}`, 'square-version': API_VERSION, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new ConnectorError(networkFailure(err));
  }
  const text = await res.text().catch(() => '');
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON */
  }
  if (res.ok) return json;
  const first = (json.errors as { code?: string; detail?: string }[] | undefined)?.[0];
  const detail = [first?.code, first?.detail].filter(Boolean).join(': ').slice(0, 200);
  const f = failureFromAnswer(res.status, json, retryAfterMs(res.headers), `HTTP ${res.status}${detail ? `: ${detail}` : ''}`);
  if (res.status === 401 || res.status === 403) {
    f.class = 'auth';
    f.message = `Square refused the application token for webhook subscriptions (it must be the application's personal access token, not a seller's OAuth token): ${f.message}`;
  }
  throw new ConnectorError(f);
}

const path = (id: string) => `/v2/webhooks/subscriptions/${encodeURIComponent(id)}`;

export const subscriptions: WebhookSubscriptions = {
  events: EVENTS,
  create: (ctx, url) => attempt(async () => {
    const answer = await appCall(ctx, 'POST', '/v2/webhooks/subscriptions', {
      idempotency_key: randomUUID(),
      subscription: { name: `Meridian ${ctx.connectionId}`.slice(0, 64), event_types: EVENTS, notification_url: url, api_version: API_VERSION },
    });
    const s = (answer.subscription ?? {}) as Subscription;
    if (!s.id || !s.signature_key) throw new ConnectorError({ class: 'transient', message: 'Square: the new subscription has no id or signature key' });
    if (s.notification_url !== undefined && s.notification_url !== url) {
      await appCall(ctx, 'DELETE', path(s.id)).catch(() => undefined);
      throw new ConnectorError({ class: 'permanent', message: `Square registered ${s.notification_url} instead of ${url}; Square signs the URL, so deliveries could not be verified` });
    }
    return { remoteId: s.id, secrets: { signatureKey: s.signature_key } };
  }),
  remove: (ctx, remoteId) => attempt(async () => {
    try {
      await appCall(ctx, 'DELETE', path(remoteId));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }),
  check: async (ctx, remoteId) => {
    let s: Subscription;
    try {
      s = ((await appCall(ctx, 'GET', path(remoteId))).subscription ?? {}) as Subscription;
    } catch (err) {
      if (isGone(err)) return ok({ active: false, detail: 'the subscription no longer exists at Square' });
      if (err instanceof ConnectorError) return fail(err.failure);
      throw err;
    }
    return s.enabled === false
      ? ok({ active: false, url: s.notification_url, detail: 'the subscription is disabled at Square (Square disables one that gets no 2xx answer for three weeks); create it again' })
      : ok({ active: true, url: s.notification_url });
  },
};
