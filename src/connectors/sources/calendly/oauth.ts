// Connecting a Calendly account from the web app (connect.md §1.6): authorization code with PKCE (S256,
// which Calendly recommends for every app) and the client secret. Refresh tokens are single-use and rotate:
// index.ts refreshes through one held session per connection and stores each new one. The token answer
// names the user who connected (`owner`), which the poll lists by (config.user).
import { atAuthBase, authorizeUrlOf, exchangeCode, pkceParams, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import type { OAuthProfile } from '../../types.ts';

export const AUTHORIZE_URL = 'https://auth.calendly.com/oauth/authorize';
export const TOKEN_URL = 'https://auth.calendly.com/oauth/token';
/** `:write` includes `:read` in the same domain: bookings read, cancel and no-show; webhook subscriptions. */
export const SCOPES = ['scheduled_events:write', 'webhooks:write'];

export const calendlyOAuth: OAuthProfile = {
  pkce: true,
  clientSecret: true,
  variants: [{
    id: 'account',
    label: 'A Calendly account',
    scopes: SCOPES,
    scopeHelp: 'Read your scheduled events and their invitees, cancel events and mark no-shows (when staff do so in Meridian), and create the webhook subscription that tells Meridian about new bookings.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(AUTHORIZE_URL, a.authBaseUrl), {
      client_id: a.clientId, response_type: 'code', redirect_uri: a.redirectUri, scope: SCOPES.join(' '), state: a.state, ...pkceParams(a),
    }),
    async complete(c) {
      refusedByCallback('Calendly', c.callback);
      const tokenUrl = atAuthBase(TOKEN_URL, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'Calendly', tokenUrl });
      const owner = typeof answer.owner === 'string' && /^https:\/\/api\.calendly\.com\/users\/[\w-]+$/.test(answer.owner) ? answer.owner : undefined;
      const config: Record<string, unknown> = { ...(owner ? { user: owner } : {}), ...(tokenUrl !== TOKEN_URL ? { tokenUrl } : {}) };
      return {
        secrets: tokenSecrets('Calendly', answer, c.now()),
        ...(Object.keys(config).length ? { config } : {}),
        ...(owner ? { account: owner } : {}),
      };
    },
  }],
  guide: {
    console: 'https://developer.calendly.com/console/apps',
    steps: [
      'In the Calendly developer portal, create an OAuth app (Production; the Sandbox only allows http://localhost).',
      'Add the redirect URI shown on this page and request the scopes scheduled_events:write and webhooks:write.',
      'Copy the client ID and client secret here; the webhook signing key of the app is set on the webhook step.',
    ],
  },
};
