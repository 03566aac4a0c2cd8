// Cal.com webhooks made through API v2 (connect.md §2; calcom/cal.com `apps/api/v2/src/modules/webhooks`):
// `POST /v2/webhooks` { subscriberUrl, triggers, active, secret } → 201 `{ status, data: { id, subscriberUrl,
// triggers, active, payloadTemplate, secret? } }`; `GET` / `DELETE /v2/webhooks/{id}`. API key as Bearer.
// - The secret is Meridian's own (generated here, returned as the `webhookSecret` secret `verify` checks):
//   without one Cal.com signs nothing.
// - No `payloadTemplate`: the parser reads Cal.com's default payload.
// - Triggers: every booking event `parseWebhook` reads.
import { requestJson } from '../../shared/json-api.ts';
import { attempt, generatedSecret, isGone } from '../../shared/subscription.ts';
import { ConnectorError, fail, ok, type ConnectionContext, type WebhookSubscriptions } from '../../types.ts';
import { API_VERSION } from './version.ts';

export const TRIGGERS = ['BOOKING_CREATED', 'BOOKING_REQUESTED', 'BOOKING_RESCHEDULED', 'BOOKING_CANCELLED', 'BOOKING_REJECTED', 'BOOKING_NO_SHOW_UPDATED'];

interface Webhook { id?: number | string; subscriberUrl?: string; active?: boolean }

/** One call with the API key; `version` is the cal-api-version the endpoint documents (bookings' by default). */
export async function calApi(ctx: ConnectionContext, method: string, path: string, body?: unknown, version = API_VERSION): Promise<{ data?: unknown }> {
  const key = ctx.secrets.apiKey;
  if (!key) throw new ConnectorError({ class: 'auth', message: 'Cal.com: an API key (apiKey) is needed to manage webhooks and read the directory' });
  const json = await requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body, headers: { 'cal-api-version': version } }, { authorization: `Bearer ${key}` });
  return (json ?? {}) as { data?: unknown };
}

const path = (id: string) => `/webhooks/${encodeURIComponent(id)}`;

export const subscriptions: WebhookSubscriptions = {
  events: TRIGGERS,
  create: (ctx, url) => attempt(async () => {
    const webhookSecret = generatedSecret();
    const { data } = await calApi(ctx, 'POST', '/webhooks', { subscriberUrl: url, triggers: TRIGGERS, active: true, secret: webhookSecret });
    const id = (data as Webhook | undefined)?.id;
    if (id === undefined || id === null) throw new ConnectorError({ class: 'transient', message: 'Cal.com: the new webhook has no id' });
    return { remoteId: String(id), secrets: { webhookSecret } };
  }),
  remove: (ctx, remoteId) => attempt(async () => {
    try {
      await calApi(ctx, 'DELETE', path(remoteId));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }),
  check: async (ctx, remoteId) => {
    let w: Webhook;
    try {
      w = ((await calApi(ctx, 'GET', path(remoteId))).data ?? {}) as Webhook;
    } catch (err) {
      if (isGone(err)) return ok({ active: false, detail: 'the webhook no longer exists at Cal.com' });
      if (err instanceof ConnectorError) return fail(err.failure);
      throw err;
    }
    return w.active === false
      ? ok({ active: false, url: w.subscriberUrl, detail: 'the webhook is switched off in Cal.com; switch it on or create it again' })
      : ok({ active: true, url: w.subscriberUrl });
  },
};
