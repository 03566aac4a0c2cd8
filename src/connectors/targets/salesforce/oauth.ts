// Connecting a Salesforce org from the web app (connect.md §1.4): the web-server flow with PKCE (S256) and
// the consumer secret, at the org's login host: production (login.salesforce.com), sandbox
// (test.salesforce.com) or the org's My Domain. Scopes `api refresh_token`. The token answer's `instance_url`
// is where every REST call goes (kept as the `instanceUrl` secret, as auth.ts keeps it); the connection's base
// URL stays the login host, where auth.ts sends its refreshes.
import { atAuthBase, authorizeUrlOf, exchangeCode, pkceParams, refusedByCallback, tokenSecrets } from '../../shared/oauth.ts';
import { OAuthRefused, type OAuthProfile, type OAuthVariant } from '../../types.ts';

export const SCOPES = ['api', 'refresh_token'];
/** A My Domain login host: `clinic.my.salesforce.com`, `clinic--uat.sandbox.my.salesforce.com`, … */
const MY_DOMAIN = '^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,80}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9-]+)*\\.(?:my\\.salesforce\\.com|my\\.salesforce\\.mil|my\\.sfcrmproducts\\.cn|cloudforce\\.com)$';

function myDomainOf(inputs: Record<string, string>): string {
  const host = (inputs.myDomain ?? '').trim().replace(/^https:\/\//, '').replace(/\/.*$/, '').toLowerCase();
  if (!new RegExp(MY_DOMAIN).test(host)) throw new OAuthRefused('Salesforce: the My Domain looks like yourclinic.my.salesforce.com', 'bad_input');
  return `https://${host}`;
}

/** `https://login.salesforce.com/id/00Dxx…/005xx…` → `Org 00Dxx…`. */
function accountOf(id: unknown): string | undefined {
  const m = typeof id === 'string' ? /\/id\/(00D[A-Za-z0-9]{12,15})\//.exec(id) : null;
  return m ? `Org ${m[1]}` : undefined;
}

function variant(id: string, label: string, loginHost: (inputs: Record<string, string>) => string, extra: Partial<OAuthVariant> = {}): OAuthVariant {
  return {
    id, label,
    scopes: SCOPES,
    scopeHelp: 'Use the Salesforce API as the user who connects (create and update Events, Contacts and Leads that user may), and keep that access without signing in again.',
    grant: 'code',
    authorizeUrl: (a) => authorizeUrlOf(atAuthBase(`${loginHost(a.inputs)}/services/oauth2/authorize`, a.authBaseUrl), {
      response_type: 'code', client_id: a.clientId, redirect_uri: a.redirectUri, scope: SCOPES.join(' '), state: a.state, ...pkceParams(a),
    }),
    async complete(c) {
      refusedByCallback('Salesforce', c.callback);
      // The login host, moved like the endpoints: the code is exchanged and later refreshed there.
      const login = atAuthBase(`${loginHost(c.inputs)}/`, c.authBaseUrl).replace(/\/$/, '');
      const answer = await exchangeCode(c, { provider: 'Salesforce', tokenUrl: `${login}/services/oauth2/token` });
      const instanceUrl = typeof answer.instance_url === 'string' && /^https?:\/\/[^/]+$/.test(answer.instance_url.replace(/\/$/, '')) ? answer.instance_url.replace(/\/$/, '') : undefined;
      if (!instanceUrl) throw new OAuthRefused('Salesforce answered without the org\'s instance URL; connect again', 'no_instance_url');
      const { accessToken, refreshToken } = tokenSecrets('Salesforce', answer, c.now());
      const account = accountOf(answer.id);
      return { secrets: { accessToken, refreshToken: refreshToken!, instanceUrl }, baseUrl: login, ...(account ? { account } : {}) };
    },
    ...extra,
  };
}

export const salesforceOAuth: OAuthProfile = {
  pkce: true,
  clientSecret: true,
  variants: [
    variant('production', 'Production org (login.salesforce.com)', () => 'https://login.salesforce.com'),
    variant('sandbox', 'Sandbox (test.salesforce.com)', () => 'https://test.salesforce.com'),
    variant('mydomain', 'My Domain login (production or sandbox)', myDomainOf, {
      inputs: [{ key: 'myDomain', label: 'Your My Domain', placeholder: 'yourclinic.my.salesforce.com', pattern: MY_DOMAIN, required: true }],
    }),
  ],
  guide: {
    console: 'https://login.salesforce.com/lightning/setup/NavigationMenus/home',
    steps: [
      'In Salesforce Setup, open App Manager and create a connected app (or an external client app) with OAuth settings enabled.',
      'Enter the redirect URI shown on this page as the callback URL and select the scopes "api" and "refresh_token, offline_access"; keep "Require PKCE" on.',
      'Copy the consumer key and consumer secret here.',
    ],
  },
};
