// Connecting an Acuity Scheduling account from the web app (connect.md §1.8): the authorization-code flow
// for apps, scope `api-v1`, with the client secret. The answer is an access token (no refresh token is
// documented); index.ts sends it as a Bearer token when the connection holds one, else Basic user id + API key.
import { atAuthBase, authorizeUrlOf, exchangeCode, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import type { OAuthProfile } from '../../types.ts';

export const AUTHORIZE_URL = 'https://acuityscheduling.com/oauth2/authorize';
export const TOKEN_URL = 'https://acuityscheduling.com/oauth2/token';
export const SCOPES = ['api-v1'];

export const acuityOAuth: OAuthProfile = {
  pkce: false,
  clientSecret: true,
  variants: [{
    id: 'account',
    label: 'An Acuity Scheduling account',
    scopes: SCOPES,
    scopeHelp: 'Use the Acuity API for this account: read appointments, and cancel, move or mark no-shows when staff do so in Meridian. Acuity has no narrower scope.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(AUTHORIZE_URL, a.authBaseUrl), {
      response_type: 'code', scope: SCOPES.join(' '), client_id: a.clientId, redirect_uri: a.redirectUri, state: a.state,
    }),
    async complete(c) {
      refusedByCallback('Acuity', c.callback);
      const answer = await exchangeCode(c, { provider: 'Acuity', tokenUrl: atAuthBase(TOKEN_URL, c.authBaseUrl) });
      const { accessToken } = tokenSecrets('Acuity', answer, c.now(), { refresh: 'optional' });
      return { secrets: { accessToken } };
    },
  }],
  guide: {
    console: 'https://acuityscheduling.com/oauth2/register',
    steps: [
      'Register an OAuth2 client with Acuity Scheduling, entering the redirect URI shown on this page.',
      'Copy the client ID and client secret here.',
      'For signed webhooks, also paste the account\'s API key (Integrations page in Acuity) in the connection\'s credentials.',
    ],
  },
};
