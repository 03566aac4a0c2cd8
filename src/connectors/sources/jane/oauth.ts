// Jane's OAuth 2.0: authorization code with PKCE (S256 is mandatory) against Jane's Keycloak, then refresh
// tokens that rotate. Facts: ./FACTS.md. `janeOAuth` is the profile the web app connects a clinic with
// (authorize URL → code exchange); `janeTokens` is what fetch and list use.
import { atAuthBase, authorizeUrlOf, codeChallengeS256, createCodeVerifier, exchangeCode, heldTokens, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import type { TokenSource } from '../../shared/json-api.ts';
import { OAuthRefused, type ConnectionContext, type OAuthProfile, type OAuthVariant } from '../../types.ts';

export { codeChallengeS256, createCodeVerifier };

export const DEFAULT_AUTH_SERVER = 'https://login.id.janeapp.com/realms/jane';
export const SANDBOX_AUTH_SERVER = 'https://login.id.janeapp.com/realms/jane_partner_sandbox';
/** Read-only: appointments, and the patient each one is for. */
export const DEFAULT_SCOPES = ['appointments:read', 'patients:read'];
/** A clinic's Jane host (`myclinic.janeapp.com`). */
export const CLINIC_HOST = '^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$';

/** The Keycloak realm (production `…/realms/jane`, sandbox `…/realms/jane_partner_sandbox`); config.authServer overrides. */
export const authServerOf = (config: Record<string, unknown>) => String(config.authServer ?? DEFAULT_AUTH_SERVER).replace(/\/$/, '');
export const tokenUrlOf = (authServer: string) => `${authServer}/protocol/openid-connect/token`;

function clinicHostOf(inputs: Record<string, string>): string {
  const host = (inputs.clinicHost ?? '').trim().replace(/^https?:\/\//, '').replace(/\/.*$/, '').toLowerCase();
  if (!new RegExp(CLINIC_HOST).test(host)) throw new OAuthRefused('Jane: the clinic host looks like myclinic.janeapp.com', 'bad_input');
  return host;
}

function variant(id: string, label: string, realm: string): OAuthVariant {
  return {
    id, label,
    inputs: [{ key: 'clinicHost', label: 'Your clinic\'s Jane address', placeholder: 'myclinic.janeapp.com', pattern: CLINIC_HOST, required: true }],
    scopes: DEFAULT_SCOPES,
    scopeHelp: 'Read your clinic\'s appointments and the patient each one is for. Meridian cannot change anything in Jane.',
    grant: 'code',
    // Jane's documented form carries `resource` (the clinic) and `prompt=consent`.
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(`${realm}/protocol/openid-connect/auth`, a.authBaseUrl), {
      response_type: 'code', client_id: a.clientId, redirect_uri: a.redirectUri, scope: DEFAULT_SCOPES.join(' '), state: a.state,
      code_challenge: a.codeChallenge, code_challenge_method: a.codeChallenge ? 'S256' : undefined,
      resource: `https://${clinicHostOf(a.inputs)}`, prompt: 'consent',
    }),
    async complete(c) {
      refusedByCallback('Jane', c.callback);
      const clinicHost = clinicHostOf(c.inputs);
      const authServer = atAuthBase(realm, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'Jane', tokenUrl: tokenUrlOf(authServer) });
      const now = c.now();
      const secrets = tokenSecrets('Jane', answer, now);
      // Jane's access tokens are reported to last 300 s.
      secrets.expiresAt ??= String(now.getTime() + 300_000);
      secrets.refreshedAt = String(now.getTime());
      return { secrets, config: { clinicHost, ...(authServer !== DEFAULT_AUTH_SERVER ? { authServer } : {}) }, account: clinicHost };
    },
  };
}

export const janeOAuth: OAuthProfile = {
  pkce: true,
  // Public or confidential is not documented: a secret, when the app has one, is sent at the code exchange.
  clientSecret: false,
  variants: [
    variant('clinic', 'A Jane clinic (partner app)', DEFAULT_AUTH_SERVER),
    variant('sandbox', 'Jane partner sandbox', SANDBOX_AUTH_SERVER),
  ],
  guide: {
    console: 'https://developers.janeapp.com/',
    steps: [
      'Sign in to the Jane Developer Platform with your partner account and open your app.',
      'Add the redirect URI shown on this page to the app\'s allowed redirect URIs.',
      'Copy the app\'s client id (and client secret, if it has one) here.',
    ],
  },
};

// ---------------------------------------------------------------- tokens for API calls

/** Bearer tokens for callJson: refreshed before expiry, and once more when Jane refuses one (401). */
export function janeTokens(ctx: ConnectionContext): TokenSource {
  return heldTokens(ctx, () => {
    const s = ctx.secrets;
    if (!s.clientId || !s.refreshToken) return { class: 'auth', message: 'Jane: the connection has no clientId or refreshToken; connect it again' };
    return {
      tokenUrl: tokenUrlOf(authServerOf(ctx.config)), clientId: s.clientId, clientSecret: s.clientSecret || undefined, refreshToken: s.refreshToken,
      accessToken: s.accessToken || undefined, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined,
    };
  });
}
