// Connecting a Square seller from the web app (connect.md §1.7): the code flow with the application secret
// (ObtainToken takes JSON), `session=false`. Codes live 5 minutes; access tokens 30 days, so index.ts
// refreshes them ahead of expiry with the refresh token (the code flow's refresh answer keeps the same one).
import { atAuthBase, authorizeUrlOf, exchangeCode, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import type { OAuthProfile, OAuthVariant } from '../../types.ts';

export const PRODUCTION = 'https://connect.squareup.com';
export const SANDBOX = 'https://connect.squareupsandbox.com';
/**
 * Seller-level bookings (every booking of the seller, Dashboard ones too) read and written (staff cancellations
 * and moves), and the customer each booking is for.
 */
export const SCOPES = ['APPOINTMENTS_READ', 'APPOINTMENTS_ALL_READ', 'APPOINTMENTS_WRITE', 'APPOINTMENTS_ALL_WRITE', 'CUSTOMERS_READ'];

function variant(id: string, label: string, host: string): OAuthVariant {
  return {
    id, label,
    scopes: SCOPES,
    scopeHelp: 'See every booking of your business and the customer it is for, and cancel or move bookings when staff do so in Meridian. Nothing about payments or orders.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(`${host}/oauth2/authorize`, a.authBaseUrl), {
      client_id: a.clientId, scope: SCOPES.join(' '), session: 'false', state: a.state, redirect_uri: a.redirectUri,
    }),
    async complete(c) {
      refusedByCallback('Square', c.callback);
      const tokenUrl = atAuthBase(`${host}/oauth2/token`, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'Square', tokenUrl, format: 'json' });
      const config: Record<string, unknown> = { ...(tokenUrl !== `${PRODUCTION}/oauth2/token` ? { tokenUrl } : {}) };
      return {
        secrets: tokenSecrets('Square', answer, c.now()),
        ...(Object.keys(config).length ? { config } : {}),
        ...(host !== PRODUCTION ? { baseUrl: host } : {}),
        ...(typeof answer.merchant_id === 'string' ? { account: `Square seller ${answer.merchant_id}` } : {}),
      };
    },
  };
}

export const squareOAuth: OAuthProfile = {
  pkce: false,
  clientSecret: true,
  variants: [
    variant('production', 'A Square seller account', PRODUCTION),
    variant('sandbox', 'A Square sandbox test account', SANDBOX),
  ],
  guide: {
    console: 'https://developer.squareup.com/apps',
    steps: [
      'In the Square Developer Console, open (or create) your application and go to OAuth.',
      'Enter the redirect URI shown on this page (production needs HTTPS).',
      'Copy the application ID and the application secret here.',
    ],
  },
};
