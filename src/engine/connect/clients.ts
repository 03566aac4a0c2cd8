// The OAuth apps (clients) of each provider, set once by the owner: in the environment
// (MERIDIAN_OAUTH_<PLATFORM>_CLIENT_ID / _CLIENT_SECRET / _AUTH_BASE_URL, which win) or in the web app
// (stored, the secret encrypted). A connection made by OAuth gets its own copy of the client id and secret
// with its tokens, as the connectors read them from the connection's secrets.
import { z } from 'zod';
import { allDescriptors, getConnector } from '../../connectors/registry.ts';
import type { Descriptor, OAuthProfile } from '../../connectors/types.ts';
import { appendAudit } from '../../store/audit.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';
import { ConnectError } from './errors.ts';

export interface ProviderClient {
  clientId: string;
  clientSecret?: string;
  /** Replaces the origin of the provider's authorization and token endpoints (a test fake, a sovereign cloud). */
  authBaseUrl?: string;
  from: 'environment' | 'app';
}

/** `google-calendar` → `MERIDIAN_OAUTH_GOOGLE_CALENDAR_`. */
export const envPrefix = (platform: string) => `MERIDIAN_OAUTH_${platform.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;

export function oauthProfile(platform: string): { descriptor: Descriptor; profile: OAuthProfile } | undefined {
  const d = getConnector(platform)?.descriptor;
  return d?.oauth ? { descriptor: d, profile: d.oauth } : undefined;
}

export async function providerClient(hub: Hub, platform: string): Promise<ProviderClient | undefined> {
  const p = envPrefix(platform);
  const env = (k: string) => (hub.env[p + k] ? String(hub.env[p + k]) : undefined);
  if (env('CLIENT_ID')) return { clientId: env('CLIENT_ID')!, clientSecret: env('CLIENT_SECRET'), authBaseUrl: env('AUTH_BASE_URL'), from: 'environment' };
  const row = await hub.store.db.selectFrom('oauth_client').selectAll().where('platform', '=', platform).executeTakeFirst();
  if (!row) return undefined;
  const settings = JSON.parse(row.settings) as { authBaseUrl?: string };
  return { clientId: row.client_id, clientSecret: row.secret_enc ? hub.box.decrypt(row.secret_enc) : undefined, authBaseUrl: env('AUTH_BASE_URL') ?? settings.authBaseUrl, from: 'app' };
}

export const clientBody = z.object({
  clientId: z.string().trim().min(1).max(512),
  clientSecret: z.string().min(1).max(4096).optional(),
  authBaseUrl: z.url().refine((u) => /^https?:\/\//.test(u), 'an http(s) URL').optional(),
}).strict();

export async function setProviderClient(hub: Hub, platform: string, b: z.output<typeof clientBody>, actor: string): Promise<void> {
  const found = oauthProfile(platform);
  if (!found) throw new ConnectError('no_oauth', `${getConnector(platform)?.descriptor.displayName ?? platform} is not connected with OAuth`);
  if (hub.env[`${envPrefix(platform)}CLIENT_ID`]) throw new ConnectError('set_in_environment', `the ${found.descriptor.displayName} app is set in the environment (${envPrefix(platform)}CLIENT_ID); change it there`);
  const before = await hub.store.db.selectFrom('oauth_client').selectAll().where('platform', '=', platform).executeTakeFirst();
  // A new client id without a secret keeps no old secret: it belonged to the other app.
  const keepSecret = before && before.client_id === b.clientId && !b.clientSecret ? before.secret_enc : null;
  if (found.profile.clientSecret && !b.clientSecret && !keepSecret) throw new ConnectError('invalid_request', `${found.descriptor.displayName} needs the app's client secret too`);
  const row = {
    client_id: b.clientId, secret_enc: b.clientSecret ? hub.box.encrypt(b.clientSecret) : keepSecret,
    settings: JSON.stringify(b.authBaseUrl ? { authBaseUrl: b.authBaseUrl } : {}), updated_at: nowIso(hub),
  };
  await hub.store.db.transaction().execute(async (trx) => {
    await trx.insertInto('oauth_client').values({ platform, ...row }).onConflict((oc) => oc.column('platform').doUpdateSet(row)).execute();
    await appendAudit(trx, hub.store.dialect, [{ at: nowIso(hub), actor, action: 'oauth_client.set', entityType: 'oauth_client', entityId: platform, meta: { clientId: b.clientId, secret: Boolean(row.secret_enc) } }]);
  });
}

/** Every provider Meridian connects by OAuth: variants, scopes in words, the guide, and whether its app is set. */
export async function listProviders(hub: Hub) {
  const items = [];
  for (const d of allDescriptors()) {
    if (!d.oauth) continue;
    const c = await providerClient(hub, d.id);
    items.push({
      platform: d.id, displayName: d.displayName, role: d.role, pkce: d.oauth.pkce, clientSecret: d.oauth.clientSecret, guide: d.oauth.guide,
      variants: d.oauth.variants.map((v) => ({ id: v.id, label: v.label, inputs: v.inputs ?? [], scopes: v.scopes, scopeHelp: v.scopeHelp, grant: v.grant ?? 'code' })),
      client: c ? { configured: true, clientId: c.clientId, from: c.from } : { configured: false, from: null },
    });
  }
  return items;
}
