// OAuth 2.0 authorization code flows (RFC 6749 §4.1) started from the web app. The engine's part is
// provider-neutral: each connector's `oauth` profile builds the authorize URL and turns the redirect back
// into secrets. Here: the state (unguessable, stored hashed, bound to the signed-in session and to this
// browser, ten minutes, single use), the PKCE verifier (RFC 7636, S256), the exact redirect URI
// `<public-url>/oauth/callback`, and storing what the provider gave, encrypted, in one audited step.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { OAuthRefused } from '../../connectors/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { getConnectionRow } from '../../store/repo.ts';
import { credentialsRenewed, saveSecrets } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';
import { oauthProfile, providerClient } from './clients.ts';
import { ConnectError } from './errors.ts';

/** How long the owner has to consent at the provider. */
export const STATE_TTL_MS = 10 * 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** RFC 7636 §4.2, S256: base64url(SHA-256(ASCII(verifier))). */
const challengeS256 = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

export function redirectUri(hub: Hub): string {
  if (!hub.publicUrl) throw new ConnectError('no_public_url', 'Meridian does not know its public URL (set MERIDIAN_PUBLIC_URL or --public-url): the provider could not send you back');
  return `${hub.publicUrl.replace(/\/$/, '')}/oauth/callback`;
}

interface Held {
  verifier?: string;
  inputs: Record<string, string>;
  /** SHA-256 of the browser nonce (the cookie set when the flow started). */
  nonce: string;
}

export interface Started {
  authorizeUrl: string;
  /** Goes to the browser as a cookie the redirect back must carry (SameSite=Lax: sent on the provider's redirect). */
  browserNonce: string;
}

/** Begin connecting `connectionId` with its provider's `variant`, for the signed-in session `sessionHash`. */
export async function startAuthorization(hub: Hub, o: { connectionId: string; variant?: string; inputs?: Record<string, string>; sessionHash: string }): Promise<Started> {
  const row = await getConnectionRow(hub.store.db, o.connectionId);
  if (!row || row.status === 'removed') throw new ConnectError('not_found', `no connection ${o.connectionId}`);
  const found = oauthProfile(row.platform);
  if (!found) throw new ConnectError('no_oauth', `${row.platform} connections are not connected with OAuth: enter their credentials instead`);
  const { descriptor, profile } = found;
  const variant = o.variant ? profile.variants.find((v) => v.id === o.variant) : profile.variants[0];
  if (!variant) throw new ConnectError('invalid_request', `${descriptor.displayName} has no way to connect called "${o.variant}" (${profile.variants.map((v) => v.id).join(', ')})`);
  const client = await providerClient(hub, row.platform);
  if (!client) throw new ConnectError('oauth_not_configured', `set up the ${descriptor.displayName} app first (its client id${profile.clientSecret ? ' and secret' : ''}): the Connections page shows how`);
  const inputs: Record<string, string> = {};
  for (const f of variant.inputs ?? []) {
    const v = (o.inputs?.[f.key] ?? '').trim();
    if (!v && f.required) throw new ConnectError('invalid_request', `${f.label} is needed to connect ${descriptor.displayName}`);
    if (v && f.pattern && !new RegExp(`^(?:${f.pattern})$`).test(v)) throw new ConnectError('invalid_request', `${f.label}: "${v.slice(0, 80)}" is not in the expected form${f.placeholder ? ` (e.g. ${f.placeholder})` : ''}`);
    if (v) inputs[f.key] = v;
  }
  const unknown = Object.keys(o.inputs ?? {}).filter((k) => !(variant.inputs ?? []).some((f) => f.key === k));
  if (unknown.length) throw new ConnectError('invalid_request', `unknown input ${unknown.join(', ')} for ${descriptor.displayName}`);
  const state = randomBytes(32).toString('base64url');
  const browserNonce = randomBytes(32).toString('base64url');
  const verifier = profile.pkce ? randomBytes(32).toString('base64url') : undefined;
  const uri = redirectUri(hub);
  const now = hub.clock.now();
  const held: Held = { verifier, inputs, nonce: sha256(browserNonce) };
  await hub.store.db.transaction().execute(async (trx) => {
    // States nobody came back with are of no use once expired.
    await trx.deleteFrom('oauth_state').where('expires_at', '<', now.toISOString()).execute();
    await trx.insertInto('oauth_state').values({
      state_hash: sha256(state), session_hash: o.sessionHash, platform: row.platform, connection_id: row.id, variant: variant.id,
      secret_enc: hub.box.encryptJson(held), redirect_uri: uri, created_at: now.toISOString(), expires_at: new Date(now.getTime() + STATE_TTL_MS).toISOString(), used_at: null,
    }).execute();
  });
  const authorizeUrl = variant.authorizeUrl({
    clientId: client.clientId, redirectUri: uri, state, codeChallenge: verifier ? challengeS256(verifier) : undefined, inputs, authBaseUrl: client.authBaseUrl,
  });
  return { authorizeUrl, browserNonce };
}

export interface Completed {
  connectionId: string;
  platform: string;
  account?: string;
}

const equalHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * The provider sent the browser back to `/oauth/callback` with `query`. `browserNonce` is the cookie the
 * start set; `ownerOf` names the owner still signed in in the session the flow was bound to (undefined: none). Nothing is
 * stored unless every check passes and the provider's tokens are in hand; the state is spent first, so a
 * replayed redirect (or a second tab) cannot use it again.
 */
export async function completeAuthorization(hub: Hub, query: URLSearchParams, browserNonce: string | undefined, ownerOf: (sessionHash: string) => Promise<string | undefined>): Promise<Completed> {
  const state = query.get('state');
  if (!state) throw new ConnectError('state_missing', 'the provider sent you back without the state Meridian gave it, so this cannot be trusted');
  const row = await hub.store.db.selectFrom('oauth_state').selectAll().where('state_hash', '=', sha256(state)).executeTakeFirst();
  if (!row) throw new ConnectError('state_unknown', 'this answer does not belong to a connection started here (a wrong or altered link)');
  if (row.used_at) throw new ConnectError('state_used', 'this answer was already used: a sign-in link works once. Start connecting again');
  const now = hub.clock.now();
  if (row.expires_at <= now.toISOString()) throw new ConnectError('state_expired', `this answer came more than ${STATE_TTL_MS / 60_000} minutes after connecting started. Start again`);
  const held = hub.box.decryptJson<Held>(row.secret_enc);
  if (!browserNonce || !equalHex(sha256(browserNonce), held.nonce)) throw new ConnectError('other_session', 'this answer belongs to a connection started in another browser or session; nothing was stored. Start connecting from this browser');
  // The owner still signed in in the session that started (their actor name for the audit entry).
  const actor = await ownerOf(row.session_hash);
  if (!actor) throw new ConnectError('signed_out', 'the session that started connecting has ended; sign in and start again');
  // Spend the state before anything else: one redirect, one use, even when two arrive at once.
  const spent = await hub.store.db.updateTable('oauth_state').set({ used_at: now.toISOString() }).where('state_hash', '=', row.state_hash).where('used_at', 'is', null).executeTakeFirst();
  if (Number(spent.numUpdatedRows) !== 1) throw new ConnectError('state_used', 'this answer was already used: a sign-in link works once. Start connecting again');

  const found = oauthProfile(row.platform);
  const variant = found?.profile.variants.find((v) => v.id === row.variant);
  const client = await providerClient(hub, row.platform);
  if (!found || !variant || !client) throw new ConnectError('oauth_not_configured', `the ${row.platform} app is no longer set up in Meridian`);
  const name = found.descriptor.displayName;
  const error = query.get('error');
  if (error) {
    const words = error === 'access_denied' ? 'consent was not given' : error.replace(/[^\w .-]/g, '').slice(0, 60);
    const detail = (query.get('error_description') ?? '').replace(/[^\w .,:;'()-]/g, '').slice(0, 200);
    throw new ConnectError('denied', `${name} answered: ${words}${detail ? ` (${detail})` : ''}. Nothing was stored.`);
  }
  let result;
  try {
    result = await variant.complete({
      callback: query, clientId: client.clientId, clientSecret: client.clientSecret, redirectUri: row.redirect_uri, codeVerifier: held.verifier,
      inputs: held.inputs, authBaseUrl: client.authBaseUrl, fetch: hub.fetch, now: () => hub.clock.now(),
    });
  } catch (err) {
    if (err instanceof OAuthRefused) throw new ConnectError(err.code === 'access_denied' ? 'denied' : 'refused', `${err.message}. Nothing was stored.`);
    throw err;
  }
  const conn = await getConnectionRow(hub.store.db, row.connection_id);
  if (!conn || conn.status === 'removed') throw new ConnectError('not_found', `the connection ${row.connection_id} was removed while you were at ${name}`);
  const secrets = { clientId: client.clientId, ...(client.clientSecret ? { clientSecret: client.clientSecret } : {}), ...result.secrets };
  await saveSecrets(hub.store.db, hub, conn.id, secrets);
  const config = result.config ? { ...JSON.parse(conn.config), ...result.config } : undefined;
  await hub.store.db.transaction().execute(async (trx) => {
    await trx.updateTable('connection').set({
      ...(config ? { config: JSON.stringify(config) } : {}), ...(result.baseUrl ? { base_url: result.baseUrl } : {}), updated_at: nowIso(hub),
    }).where('id', '=', conn.id).execute();
    await appendAudit(trx, hub.store.dialect, [{
      at: nowIso(hub), actor, action: 'connection.connected', entityType: 'connection', entityId: conn.id,
      meta: { platform: conn.platform, variant: variant.id, scopes: variant.scopes, keys: Object.keys(secrets), ...(result.account ? { account: result.account } : {}) },
    }]);
  });
  hub.cache.clear();
  await credentialsRenewed(hub, conn.id);
  return { connectionId: conn.id, platform: conn.platform, account: result.account };
}
