// Where a connection's deliveries come in, and the subscription Meridian keeps at the platform for it.
// Platforms whose API can subscribe (`subscriptions` on the connector) get one made, with the signing key
// Meridian generates or the platform issues stored encrypted before the first delivery; re-made when the
// public URL changed; removed with the connection. The others get the exact URL (with its token) and the
// steps to paste it, and the page waits for the first delivery.
import { randomBytes } from 'node:crypto';
import { getConnector } from '../../connectors/registry.ts';
import type { Connector, SourceConnector } from '../../connectors/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { INACTIVE } from '../../store/repo.ts';
import { connectionContext, loadConnection, saveSecrets } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';

export type WebhookMode = 'managed' | 'manual' | 'none';

export interface WebhookView {
  mode: WebhookMode;
  /** The URL the platform posts to (with `?token=` where it signs nothing); absent without a public URL. */
  url?: string;
  events: string[];
  /** managed: active | failed | removed | none (not made yet); manual: waiting | receiving. */
  state: string;
  lastError?: string;
  lastDeliveryAt?: string;
  steps?: string[];
  template?: string;
  /** Why nothing can be made yet (no public URL, not connected). */
  note?: string;
}

function receivesWebhooks(c: Connector): boolean {
  const d = c.descriptor;
  return d.role === 'lead-form' || (d.role === 'source' && d.capabilities.webhooks) || (d.role === 'target' && Boolean((c as { verifyWebhook?: unknown }).verifyWebhook));
}

/** The auth field a platform that signs nothing checks the URL token against. */
const TOKEN_KEY = 'webhookToken';

function needsUrlToken(c: Connector, secrets: Record<string, string>): boolean {
  const d = c.descriptor;
  if (!d.auth.some((a) => a.key === TOKEN_KEY)) return false;
  if (d.role === 'source') return !d.capabilities.signedWebhooks;
  // A lead form that can sign does when it has its signing secret; otherwise the token in the URL vouches for it.
  if (d.role === 'lead-form') return !secrets.signingSecret;
  return false;
}

/** The URL a connection's platform posts to; a missing URL token is generated and stored first. */
export async function deliveryUrl(hub: Hub, connectionId: string): Promise<string | undefined> {
  if (!hub.publicUrl) return undefined;
  const c = await loadConnection(hub, connectionId);
  const base = `${hub.publicUrl.replace(/\/$/, '')}/${c.connector.descriptor.role === 'lead-form' ? 'leads' : 'webhooks'}/${encodeURIComponent(connectionId)}`;
  if (!needsUrlToken(c.connector, c.secrets)) return base;
  let token = c.secrets[TOKEN_KEY];
  if (!token) {
    token = randomBytes(24).toString('base64url');
    await saveSecrets(hub.store.db, hub, connectionId, { [TOKEN_KEY]: token });
  }
  return `${base}?token=${encodeURIComponent(token)}`;
}

async function lastDeliveryAt(hub: Hub, connectionId: string): Promise<string | undefined> {
  const r = await hub.store.db.selectFrom('delivery').select((eb) => eb.fn.max('received_at').as('at')).where('connection_id', '=', connectionId).executeTakeFirst();
  return (r?.at as string | null | undefined) ?? undefined;
}

function subscriber(c: Connector): SourceConnector['subscriptions'] {
  return c.descriptor.role === 'source' ? (c as SourceConnector).subscriptions : undefined;
}

/** For the Connections page: how a connection's deliveries come in, without making anything (no token generated). */
export async function webhookSummary(hub: Hub, connectionId: string, platform: string): Promise<{ mode: WebhookMode; state: string; lastDeliveryAt?: string }> {
  const c = getConnector(platform);
  if (!c || !receivesWebhooks(c)) return { mode: 'none', state: 'none' };
  const last = await lastDeliveryAt(hub, connectionId);
  if (subscriber(c)) {
    const row = await hub.store.db.selectFrom('webhook_subscription').select('state').where('connection_id', '=', connectionId).executeTakeFirst();
    return { mode: 'managed', state: row?.state ?? 'none', lastDeliveryAt: last };
  }
  return { mode: 'manual', state: last ? 'receiving' : 'waiting', lastDeliveryAt: last };
}

export async function webhookView(hub: Hub, connectionId: string): Promise<WebhookView> {
  const c = await loadConnection(hub, connectionId);
  if (!receivesWebhooks(c.connector)) return { mode: 'none', events: [], state: 'none' };
  const last = await lastDeliveryAt(hub, connectionId);
  const subs = subscriber(c.connector);
  const url = await deliveryUrl(hub, connectionId);
  const note = url ? undefined : 'Meridian does not know its public URL (MERIDIAN_PUBLIC_URL): the platform cannot reach it yet';
  if (subs) {
    const row = await hub.store.db.selectFrom('webhook_subscription').selectAll().where('connection_id', '=', connectionId).executeTakeFirst();
    return {
      mode: 'managed', url: row?.url ?? url, events: subs.events, state: row?.state ?? 'none', lastError: row?.last_error ?? undefined, lastDeliveryAt: last,
      ...(note ? { note } : row ? {} : { note: 'not made yet: connect the account, then Meridian subscribes' }),
    };
  }
  const manual = c.connector.descriptor.manualWebhook;
  const fill = (s: string) => (url ? s.replaceAll('{url}', url) : s);
  return {
    mode: 'manual', url, events: [], state: last ? 'receiving' : 'waiting', lastDeliveryAt: last,
    steps: manual?.steps.map(fill) ?? [`Give ${c.connector.descriptor.displayName} this URL as its webhook (notification) address.`],
    ...(manual?.template ? { template: fill(manual.template) } : {}), ...(note ? { note } : {}),
  };
}

async function audit(hub: Hub, connectionId: string, action: string, meta: Record<string, unknown>): Promise<void> {
  await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{ at: nowIso(hub), actor: 'meridian', action, entityType: 'connection', entityId: connectionId, meta }]));
}

async function saveRow(hub: Hub, connectionId: string, v: { remoteId: string | null; url: string; events: string[]; state: string; lastError?: string }): Promise<void> {
  const now = nowIso(hub);
  const row = { remote_id: v.remoteId, url: v.url, events: JSON.stringify(v.events), state: v.state, last_error: v.lastError ?? null, updated_at: now };
  await hub.store.db.insertInto('webhook_subscription').values({ connection_id: connectionId, ...row, created_at: now })
    .onConflict((oc) => oc.column('connection_id').doUpdateSet(row)).execute();
}

/**
 * Make sure the platform sends this connection's deliveries to the current public URL: nothing to do when the
 * subscription made for that URL is active (unless `force`); otherwise the old one is removed and a new one
 * made. Never throws for the platform's answers: the state and the error are kept for the page.
 */
export async function ensureSubscription(hub: Hub, connectionId: string, o: { force?: boolean } = {}): Promise<WebhookView> {
  const c = await loadConnection(hub, connectionId);
  const subs = subscriber(c.connector);
  const url = await deliveryUrl(hub, connectionId);
  if (!subs || !url) return webhookView(hub, connectionId);
  const row = await hub.store.db.selectFrom('webhook_subscription').selectAll().where('connection_id', '=', connectionId).executeTakeFirst();
  if (row && row.state === 'active' && row.url === url && !o.force) return webhookView(hub, connectionId);
  const ctx = connectionContext(hub, c);
  if (row?.remote_id && row.state !== 'removed') {
    const gone = await subs.remove(ctx, row.remote_id);
    if (!gone.ok) hub.log.warn({ connection: connectionId, failure: gone.failure.message }, 'could not remove the old webhook subscription');
  }
  const made = await subs.create(ctx, url);
  if (!made.ok) {
    await saveRow(hub, connectionId, { remoteId: null, url, events: subs.events, state: 'failed', lastError: made.failure.message });
    await audit(hub, connectionId, 'connection.subscription_failed', { url, error: made.failure.message });
  } else {
    if (made.value.secrets && Object.keys(made.value.secrets).length) await saveSecrets(hub.store.db, hub, connectionId, made.value.secrets);
    await saveRow(hub, connectionId, { remoteId: made.value.remoteId, url, events: subs.events, state: 'active' });
    await audit(hub, connectionId, 'connection.subscribed', { url, events: subs.events, replaced: Boolean(row?.remote_id) });
  }
  return webhookView(hub, connectionId);
}

/** Remove the subscription Meridian made (the connection is being removed). */
export async function removeSubscription(hub: Hub, connectionId: string): Promise<{ removed: boolean; error?: string }> {
  const row = await hub.store.db.selectFrom('webhook_subscription').selectAll().where('connection_id', '=', connectionId).executeTakeFirst();
  if (!row?.remote_id || row.state === 'removed') return { removed: false };
  const c = await loadConnection(hub, connectionId);
  const subs = subscriber(c.connector);
  if (!subs) return { removed: false };
  const r = await subs.remove(connectionContext(hub, c), row.remote_id);
  if (!r.ok) {
    await saveRow(hub, connectionId, { remoteId: row.remote_id, url: row.url, events: JSON.parse(row.events), state: 'failed', lastError: `could not remove: ${r.failure.message}` });
    return { removed: false, error: r.failure.message };
  }
  await saveRow(hub, connectionId, { remoteId: null, url: row.url, events: JSON.parse(row.events), state: 'removed' });
  await audit(hub, connectionId, 'connection.unsubscribed', { url: row.url });
  return { removed: true };
}

/** At start: subscriptions made for another public URL than today's are made again (the old ones removed). */
export async function reconcileSubscriptions(hub: Hub): Promise<number> {
  if (!hub.publicUrl) return 0;
  const rows = await hub.store.db.selectFrom('webhook_subscription').innerJoin('connection', 'connection.id', 'webhook_subscription.connection_id')
    .select(['webhook_subscription.connection_id as id', 'webhook_subscription.url', 'connection.status', 'connection.platform'])
    .where('webhook_subscription.state', '=', 'active').execute();
  let n = 0;
  for (const r of rows) {
    if (INACTIVE.has(r.status) || !getConnector(r.platform)) continue;
    const want = await deliveryUrl(hub, r.id);
    if (want && want !== r.url) {
      await ensureSubscription(hub, r.id, { force: true });
      n++;
    }
  }
  return n;
}
