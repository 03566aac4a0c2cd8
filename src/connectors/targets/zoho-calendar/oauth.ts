// Connecting a Zoho account from the web app (connect.md §1.3, targets.md §4.1): authorization code with
// the client secret, always started at accounts.zoho.com; the redirect back names the user's data centre
// (`location`, `accounts-server`) and the code is exchanged at THAT accounts server. createClient then reads
// config.accountsServer for refreshes and derives the Calendar host from it.
import { atAuthBase, authorizeUrlOf, exchangeCode, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import { OAuthRefused, type OAuthProfile } from '../../types.ts';

export const AUTHORIZE_URL = 'https://accounts.zoho.com/oauth/v2/auth';
export const SCOPES = ['ZohoCalendar.calendar.ALL', 'ZohoCalendar.event.ALL'];
/** Zoho's accounts servers: accounts.zoho.{com,eu,in,com.au,jp,sa,com.cn,uk} and accounts.zohocloud.ca. */
const ACCOUNTS_SERVER = /^https:\/\/accounts\.(?:zoho\.(?:com|eu|in|com\.au|jp|sa|com\.cn|uk|ae)|zohocloud\.ca)$/;

/**
 * The accounts server of the redirect, checked: the client secret goes there, and the redirect passed through
 * the browser. Only Zoho's own servers, or, when the endpoints are moved (authBaseUrl), that same origin.
 */
export function accountsServerOf(callback: URLSearchParams, authBaseUrl: string | undefined): string {
  const raw = (callback.get('accounts-server') ?? '').replace(/\/+$/, '');
  if (!raw) return 'https://accounts.zoho.com';
  if (ACCOUNTS_SERVER.test(raw)) return raw;
  if (authBaseUrl && URL.canParse(raw) && new URL(raw).origin === new URL(authBaseUrl).origin) return raw;
  throw new OAuthRefused('Zoho: the redirect named an accounts server that is not Zoho\'s; connect again', 'bad_accounts_server');
}

/** `https://accounts.zoho.eu` → `https://calendar.zoho.eu` (undefined for a server that is not Zoho's own). */
function calendarHostOf(accountsServer: string): string | undefined {
  const m = /^https:\/\/accounts\.(zoho\.[a-z.]+|zohocloud\.ca)$/.exec(accountsServer);
  return m ? `https://calendar.${m[1]}` : undefined;
}

export const zohoOAuth: OAuthProfile = {
  pkce: false,
  clientSecret: true,
  variants: [{
    id: 'account',
    label: 'A Zoho account (any data centre)',
    scopes: SCOPES,
    scopeHelp: 'Read your calendars, and create, change and delete events in them. Nothing else in Zoho.',
    grant: 'code',
    // Zoho separates scopes with commas; `prompt=consent` brings a refresh token on every connection.
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(AUTHORIZE_URL, a.authBaseUrl), {
      scope: SCOPES.join(','), client_id: a.clientId, response_type: 'code', access_type: 'offline', prompt: 'consent',
      redirect_uri: a.redirectUri, state: a.state,
    }),
    async complete(c) {
      refusedByCallback('Zoho', c.callback);
      const accountsServer = accountsServerOf(c.callback, c.authBaseUrl);
      const answer = await exchangeCode(c, { provider: 'Zoho', tokenUrl: `${accountsServer}/oauth/v2/token` });
      const location = c.callback.get('location');
      const baseUrl = calendarHostOf(accountsServer);
      return {
        secrets: tokenSecrets('Zoho', answer, c.now()),
        config: { accountsServer, ...(location && /^[a-z]{2,3}$/.test(location) ? { location } : {}) },
        ...(baseUrl ? { baseUrl } : {}),
      };
    },
  }],
  guide: {
    console: 'https://api-console.zoho.com/',
    steps: [
      'In the Zoho API Console, add a "Server-based Application" and enter the redirect URI shown on this page.',
      'Under Settings, turn on multi-DC so that users of every Zoho data centre can connect.',
      'Copy the client ID and client secret here.',
    ],
  },
};
