// Connecting a Google account from the web app (connect.md §1.1): authorization code with PKCE (S256) and
// the client secret, `access_type=offline` + `prompt=consent` so that every connection gets a refresh token
// (Google sends one only on the first consent otherwise). The refresh token is what createClient reads.
import { atAuthBase, authorizeUrlOf, exchangeCode, pkceParams, tokenSecrets } from '../../shared/oauth.ts';
import type { OAuthProfile } from '../../types.ts';

export const AUTHORIZE_URL = 'https://accounts.google.com/o/oauth2/v2/auth';
export const TOKEN_URL = 'https://oauth2.googleapis.com/token';
/**
 * Events in the calendars the account can edit (targets.md §1.1: insert, patch, delete, get, list, watch), and the
 * calendar list read-only, to pick each practitioner's calendar from. Not `calendar.events.owned`: a clinic
 * account usually writes to calendars its practitioners shared with it (writer access), which that scope excludes.
 */
export const SCOPES = ['https://www.googleapis.com/auth/calendar.events', 'https://www.googleapis.com/auth/calendar.calendarlist.readonly'];

export const googleOAuth: OAuthProfile = {
  pkce: true,
  clientSecret: true,
  variants: [{
    id: 'account',
    label: 'A Google account (Gmail or Google Workspace)',
    scopes: SCOPES,
    scopeHelp: 'See, create, change and delete events in the calendars this account can edit (its own and those shared with it), and see the list of its calendars to pick from. Nothing else: no e-mail, no contacts, no calendar settings or sharing.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(AUTHORIZE_URL, a.authBaseUrl), {
      response_type: 'code', client_id: a.clientId, redirect_uri: a.redirectUri, scope: SCOPES.join(' '),
      access_type: 'offline', prompt: 'consent', state: a.state, ...pkceParams(a),
    }),
    async complete(c) {
      const tokenUrl = atAuthBase(TOKEN_URL, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'Google', tokenUrl });
      return {
        secrets: tokenSecrets('Google', answer, c.now()),
        // Refreshes go where the code was exchanged (createClient reads config.tokenUrl).
        ...(tokenUrl !== TOKEN_URL ? { config: { tokenUrl } } : {}),
      };
    },
  }],
  guide: {
    console: 'https://console.cloud.google.com/apis/credentials',
    steps: [
      'In Google Cloud, enable the Google Calendar API and set up the OAuth consent screen (publish it: apps left in Testing lose access after 7 days).',
      'Create an OAuth client ID of type "Web application" and add the redirect URI shown on this page.',
      'Copy the client ID and client secret here.',
    ],
  },
};
