// Connecting Microsoft calendars from the web app (connect.md §1.2):
// - delegated: one user (Outlook.com or Microsoft 365) signs in; authorization code with PKCE and the client
//   secret; `offline_access` brings the refresh token createClient reads. Tenant `common` unless one is given.
// - application: a tenant admin consents for the whole tenant (v2.0 admin consent: the redirect carries
//   `admin_consent=True&tenant`, no code); a client-credentials token for `https://graph.microsoft.com/.default`
//   then proves the app's own credentials work. The connection becomes `mode: application` for that tenant.
//   The tenant used is the one the owner typed (Microsoft warns the redirect's `tenant` can be forged).
import { atAuthBase, authorizeUrlOf, exchangeCode, pkceParams, refusedByCallback, requestToken, tokenSecrets } from '../../shared/oauth.ts';
import { OAuthRefused, type OAuthProfile } from '../../types.ts';

const LOGIN = 'https://login.microsoftonline.com';
export const DELEGATED_SCOPES = ['offline_access', 'Calendars.ReadWrite'];
export const APP_SCOPE = 'https://graph.microsoft.com/.default';
/** A tenant id (GUID) or a verified domain. */
const TENANT = '^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+)$';
/** Sign-in audiences, not tenants: admin consent and client credentials need one tenant. */
const AUDIENCES = new Set(['common', 'organizations', 'consumers']);

export const tokenUrlFor = (tenant: string) => `${LOGIN}/${tenant}/oauth2/v2.0/token`;

function delegatedTenant(inputs: Record<string, string>): string {
  const t = (inputs.tenant ?? '').trim();
  if (!t) return 'common';
  if (AUDIENCES.has(t.toLowerCase()) || new RegExp(TENANT).test(t)) return t;
  throw new OAuthRefused('Microsoft: the tenant is a tenant id (GUID) or a domain such as clinic.onmicrosoft.com', 'bad_input');
}

function appTenant(inputs: Record<string, string>): string {
  const t = (inputs.tenant ?? '').trim();
  if (!new RegExp(TENANT).test(t) || AUDIENCES.has(t.toLowerCase())) {
    throw new OAuthRefused('Microsoft: tenant-wide consent needs your tenant id (GUID) or domain such as clinic.onmicrosoft.com, not "common"', 'bad_input');
  }
  return t;
}

export const graphOAuth: OAuthProfile = {
  pkce: true,
  clientSecret: true,
  variants: [
    {
      id: 'delegated',
      label: 'Outlook.com or one Microsoft 365 user',
      inputs: [{ key: 'tenant', label: 'Microsoft 365 tenant (leave empty for personal and most work accounts)', placeholder: 'clinic.onmicrosoft.com', pattern: `^$|^(?:common|organizations|consumers)$|${TENANT}`, required: false }],
      scopes: DELEGATED_SCOPES,
      scopeHelp: 'Read and write the calendars of the account that signs in, and keep that access without signing in again (offline access). Nothing else: no mail, no contacts.',
      grant: 'code',
      authorizeUrl: (a) => authorizeUrlOf(atAuthBase(`${LOGIN}/${delegatedTenant(a.inputs)}/oauth2/v2.0/authorize`, a.authBaseUrl), {
        client_id: a.clientId, response_type: 'code', redirect_uri: a.redirectUri, response_mode: 'query',
        scope: DELEGATED_SCOPES.join(' '), state: a.state, ...pkceParams(a),
      }),
      async complete(c) {
        refusedByCallback('Microsoft', c.callback);
        const tenant = delegatedTenant(c.inputs);
        const tokenUrl = atAuthBase(tokenUrlFor(tenant), c.authBaseUrl);
        const answer = await exchangeCode(c, { provider: 'Microsoft', tokenUrl, extra: { scope: DELEGATED_SCOPES.join(' ') } });
        return {
          secrets: tokenSecrets('Microsoft', answer, c.now()),
          // createClient reads config.tenant (default common) and config.tokenUrl (refreshes go where the code went).
          config: { mode: 'delegated', ...(tenant !== 'common' ? { tenant } : {}), ...(c.authBaseUrl ? { tokenUrl } : {}) },
        };
      },
    },
    {
      id: 'application',
      label: 'Every practitioner\'s mailbox in an Office 365 tenant (admin consent)',
      inputs: [{ key: 'tenant', label: 'Your tenant id or domain', placeholder: 'clinic.onmicrosoft.com', pattern: TENANT, required: true }],
      scopes: [APP_SCOPE],
      scopeHelp: 'The application permission Calendars.ReadWrite granted in the app registration: read and write the calendar of every mailbox in the tenant, without anyone signing in. A tenant administrator must consent.',
      grant: 'admin_consent',
      authorizeUrl: (a) => authorizeUrlOf(atAuthBase(`${LOGIN}/${appTenant(a.inputs)}/v2.0/adminconsent`, a.authBaseUrl), {
        client_id: a.clientId, scope: APP_SCOPE, redirect_uri: a.redirectUri, state: a.state,
      }),
      async complete(c) {
        refusedByCallback('Microsoft', c.callback);
        const tenant = appTenant(c.inputs);
        if (c.callback.get('admin_consent')?.toLowerCase() !== 'true') throw new OAuthRefused('Microsoft: the administrator did not grant consent for the tenant', 'access_denied');
        const told = c.callback.get('tenant');
        if (told && /^[0-9a-f-]{36}$/i.test(tenant) && told.toLowerCase() !== tenant.toLowerCase()) {
          throw new OAuthRefused('Microsoft: consent was given for another tenant than the one entered; connect again from that tenant', 'tenant_mismatch');
        }
        if (!c.clientSecret) throw new OAuthRefused('Microsoft: application permissions need the app\'s client secret; add it in the provider settings', 'invalid_client');
        // The app's own token proves the consent and the secret work (createClient asks for the same).
        const tokenUrl = atAuthBase(tokenUrlFor(tenant), c.authBaseUrl);
        await requestToken({
          provider: 'Microsoft', tokenUrl, fetch: c.fetch,
          params: { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: APP_SCOPE },
        });
        return { secrets: {}, config: { mode: 'application', tenant, ...(c.authBaseUrl ? { tokenUrl } : {}) }, account: `Tenant ${tenant}` };
      },
    },
  ],
  guide: {
    console: 'https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationsListBlade',
    steps: [
      'In Microsoft Entra, register an application ("Accounts in any organizational directory and personal Microsoft accounts" for Outlook.com) and add the redirect URI shown on this page as a Web redirect URI.',
      'Under API permissions add Microsoft Graph Calendars.ReadWrite: delegated for one user, application for every mailbox of the tenant.',
      'Under Certificates & secrets create a client secret, then copy the application (client) ID and the secret value here.',
    ],
  },
};
