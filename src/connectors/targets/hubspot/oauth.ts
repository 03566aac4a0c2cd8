// Connecting a HubSpot account from the web app (connect.md §1.5, FACTS.md §1): authorization code with the
// app's client secret; the refresh token is what api.ts refreshes with (config.tokenUrl when the endpoints
// are moved). Scopes: contacts read/write authorise both the contacts and the meetings endpoints.
import { atAuthBase, authorizeUrlOf, exchangeCode, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import type { OAuthProfile } from '../../types.ts';

export const AUTHORIZE_URL = 'https://app.hubspot.com/oauth/authorize';
export const TOKEN_URL = 'https://api.hubapi.com/oauth/v1/token';
export const SCOPES = ['crm.objects.contacts.read', 'crm.objects.contacts.write', 'oauth'];

export const hubspotOAuth: OAuthProfile = {
  pkce: false,
  clientSecret: true,
  variants: [{
    id: 'account',
    label: 'A HubSpot account',
    scopes: SCOPES,
    scopeHelp: 'Read and write contacts, and the meetings logged on them. Nothing else in HubSpot.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(AUTHORIZE_URL, a.authBaseUrl), {
      client_id: a.clientId, redirect_uri: a.redirectUri, scope: SCOPES.join(' '), state: a.state,
    }),
    async complete(c) {
      refusedByCallback('HubSpot', c.callback);
      const tokenUrl = atAuthBase(TOKEN_URL, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'HubSpot', tokenUrl });
      return {
        secrets: tokenSecrets('HubSpot', answer, c.now()),
        // Who connected takes another call (GET /oauth/v1/access-tokens/…): not made.
        ...(tokenUrl !== TOKEN_URL ? { config: { tokenUrl } } : {}),
      };
    },
  }],
  guide: {
    console: 'https://developers.hubspot.com/',
    steps: [
      'In your HubSpot developer account, create an app (legacy public app) and open its Auth settings.',
      'Add the redirect URI shown on this page and the scopes crm.objects.contacts.read, crm.objects.contacts.write and oauth.',
      'Copy the client ID and client secret here (the same secret checks HubSpot\'s webhook signatures).',
    ],
  },
};
