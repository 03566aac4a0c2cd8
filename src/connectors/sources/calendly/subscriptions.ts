// Calendly webhook subscriptions made through the API (sources-a.md §2; connect.md §2):
// `POST /webhook_subscriptions` { url, events, organization, user (user scope), scope, signing_key }, then
// `GET` / `DELETE /webhook_subscriptions/{uuid}`. The signing key is Meridian's own (generated here, returned as
// the `signingKey` secret that `verify` checks): without one Calendly sends unsigned deliveries.
// - Scope: `organization` when the connection polls an organization (config.organization), else `user`.
// - Webhooks need a paid Calendly plan: a 403 asking to upgrade (or a 402) is a permanent failure saying so.
// - "Hook with this url already exists" (409): the earlier subscription's key is unknown, so it is deleted and
//   the subscription made again with a fresh key.
// - After 24 hours of failed deliveries Calendly disables a subscription (`state: disabled`): `check` says so.
// - Not verified: OAuth apps may sign with the app's own key from Calendly's developer portal instead of the one
//   sent here (sources-a.md §2); then deliveries fail verification and "Test connection" shows it.
import { requestJson } from '../../shared/json-api.ts';
import { attempt, generatedSecret, isGone } from '../../shared/subscription.ts';
import { ConnectorError, fail, ok, type ConnectionContext, type WebhookSubscriptions } from '../../types.ts';

/** Every booking event `parseWebhook` reads (the test checks each one parses). */
export const EVENTS = ['invitee.created', 'invitee.canceled', 'invitee_no_show.created', 'invitee_no_show.deleted'];

interface Me { uri?: string; name?: string; email?: string; current_organization?: string }
interface Subscription { uri?: string; callback_url?: string; state?: string }

/** One API call with the connection's token (a personal access token, else the OAuth access token), as index.ts does. */
export function calendlyApi(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = ctx.secrets.personalAccessToken ?? ctx.secrets.accessToken;
  if (!token) throw new ConnectorError({ class: 'auth', message: 'the Calendly connection has no access token' });
  return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Bearer ${token}` });
}

/** The connected user (`GET /users/me`): its URI and organization. */
export async function currentUser(ctx: ConnectionContext): Promise<Required<Pick<Me, 'uri' | 'current_organization'>> & Me> {
  const me = ((await calendlyApi(ctx, 'GET', '/users/me')) as { resource?: Me } | undefined)?.resource;
  if (!me?.uri || !me.current_organization) throw new ConnectorError({ class: 'transient', message: 'Calendly: /users/me named no user or organization' });
  return me as Required<Pick<Me, 'uri' | 'current_organization'>> & Me;
}

/** A subscription's API path from the URI Meridian keeps as its remote id (a bare uuid is accepted too). */
function pathOf(remoteId: string): string {
  return /^https?:\/\//.test(remoteId) ? new URL(remoteId).pathname : `/webhook_subscriptions/${encodeURIComponent(remoteId)}`;
}

/** Calendly's refusals of a subscription, in words for the owner. */
function refusal(err: unknown): never {
  if (err instanceof ConnectorError) {
    const { status, message } = err.failure;
    if (status === 402 || (status === 403 && /upgrade|professional|plan/i.test(message))) {
      throw new ConnectorError({ class: 'permanent', status, message: `Calendly sends webhooks only on a paid Calendly plan (Standard or above); upgrade the Calendly account, or let Meridian poll instead (Calendly said: ${message})` });
    }
    if (status === 403) {
      throw new ConnectorError({ class: 'permanent', status, message: `Calendly refused to create the webhook subscription: the connected user may not (an organization-wide subscription needs an organization admin or owner). Calendly said: ${message}` });
    }
  }
  throw err;
}

async function subscribe(ctx: ConnectionContext, url: string, signingKey: string): Promise<string> {
  const me = await currentUser(ctx);
  const scope = ctx.config.organization ? 'organization' : 'user';
  const body = { url, events: EVENTS, organization: me.current_organization, ...(scope === 'user' ? { user: me.uri } : {}), scope, signing_key: signingKey };
  let created: Subscription | undefined;
  try {
    created = ((await calendlyApi(ctx, 'POST', '/webhook_subscriptions', body)) as { resource?: Subscription } | undefined)?.resource;
  } catch (err) {
    if (!(err instanceof ConnectorError && err.failure.status === 409)) refusal(err);
    // The URL is already subscribed (an earlier attempt whose answer was lost): its key is unknown, so replace it.
    const q = new URLSearchParams({ organization: me.current_organization, scope, ...(scope === 'user' ? { user: me.uri } : {}), count: '100' });
    const list = ((await calendlyApi(ctx, 'GET', `/webhook_subscriptions?${q}`)) as { collection?: Subscription[] } | undefined)?.collection ?? [];
    for (const s of list.filter((x) => x.callback_url === url && x.uri)) {
      await calendlyApi(ctx, 'DELETE', pathOf(s.uri!)).catch((e) => { if (!isGone(e)) throw e; });
    }
    created = ((await calendlyApi(ctx, 'POST', '/webhook_subscriptions', body).catch(refusal)) as { resource?: Subscription } | undefined)?.resource;
  }
  if (!created?.uri) throw new ConnectorError({ class: 'transient', message: 'Calendly: the new subscription has no uri' });
  return created.uri;
}

export const subscriptions: WebhookSubscriptions = {
  events: EVENTS,
  create: (ctx, url) => attempt(async () => {
    const signingKey = generatedSecret();
    return { remoteId: await subscribe(ctx, url, signingKey), secrets: { signingKey } };
  }),
  remove: (ctx, remoteId) => attempt(async () => {
    try {
      await calendlyApi(ctx, 'DELETE', pathOf(remoteId));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }),
  check: async (ctx, remoteId) => {
    let res: unknown;
    try {
      res = await calendlyApi(ctx, 'GET', pathOf(remoteId));
    } catch (err) {
      if (isGone(err)) return ok({ active: false, detail: 'the subscription no longer exists at Calendly' });
      if (err instanceof ConnectorError) return fail(err.failure);
      throw err;
    }
    const s = (res as { resource?: Subscription } | undefined)?.resource ?? {};
    if (s.state === 'active') return ok({ active: true, url: s.callback_url });
    return ok({
      active: false, url: s.callback_url,
      detail: s.state === 'disabled'
        ? 'Calendly disabled the subscription (it stops after 24 hours of failed deliveries); create it again'
        : `Calendly reports the subscription as "${String(s.state).slice(0, 20)}"`,
    });
  },
};
