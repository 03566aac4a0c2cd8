// Connecting a clinic's accounts from the web app (src/engine/connect/CONTRACT.md): the providers' OAuth
// apps, connections made and removed, OAuth authorisations, credentials checked before saving, calendars
// and directories to pick from, the webhook subscription, and Test connection.
import { z } from 'zod';
import { PRIVACY_LEVELS } from '../../domain/types.ts';
import { clientBody, listProviders, oauthProfile, setProviderClient } from '../../engine/connect/clients.ts';
import { createConnection, removeConnection } from '../../engine/connect/connections.ts';
import { ConnectError } from '../../engine/connect/errors.ts';
import { redirectUri, startAuthorization } from '../../engine/connect/oauth.ts';
import { accountCalendars, platformDirectory, saveCheckedCredentials, testConnection } from '../../engine/connect/probe.ts';
import { ensureSubscription, webhookView } from '../../engine/connect/webhooks.ts';
import { getConnectionRow } from '../../store/repo.ts';
import type { Hub } from '../../engine/hub/hub.ts';
import { oauthCookie } from '../oauth-callback.ts';
import { defineRoute, idParam, WithHeaders, type Route } from '../route.ts';

async function live(hub: Hub, id: string) {
  const row = await getConnectionRow(hub.store.db, id);
  if (!row || row.status === 'removed') throw new ConnectError('not_found', `no connection ${id}`);
  return row;
}

const platformParam = z.object({ platform: z.string().min(1).max(80) });

/** A handler for one connection's route: 404 for a connection that is not there (or removed), then `work`. */
const onConnection = <T>(work: (hub: Hub, id: string) => Promise<T>) => async ({ hub, params }: { hub: Hub; params: { id: string } }): Promise<T> => {
  await live(hub, params.id);
  return work(hub, params.id);
};

export const CONNECT_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/oauth/providers', scope: 'admin', tag: 'connect',
    summary: 'Providers connected with OAuth: ways to connect, scopes in words, the console guide, the redirect URI to register, and whether the app (client) is set',
    handler: async ({ hub }) => ({ redirectUri: hub.publicUrl ? redirectUri(hub) : null, items: await listProviders(hub) }),
  }),
  defineRoute({
    method: 'PUT', path: '/oauth/providers/:platform', scope: 'admin', tag: 'connect', params: platformParam, body: clientBody,
    summary: 'Set a provider\'s OAuth app: client id and secret (stored encrypted; never returned). The environment wins where it sets one',
    async handler({ hub, params, body, actor }) {
      await setProviderClient(hub, params.platform, body, actor);
      return (await listProviders(hub)).find((p) => p.platform === params.platform);
    },
  }),
  defineRoute({
    method: 'POST', path: '/connections', scope: 'admin', tag: 'connect', status: 201,
    summary: 'Add a connection (made in the app; it needs its credentials or an OAuth authorisation next)',
    body: z.object({
      id: z.string().max(63).optional(), platform: z.string().min(1).max(80), name: z.string().trim().min(1).max(120),
      baseUrl: z.url().optional(), privacy: z.enum(PRIVACY_LEVELS).optional(), config: z.record(z.string(), z.unknown()).optional(),
    }).strict(),
    handler: ({ hub, body, actor }) => createConnection(hub, body, actor),
  }),
  defineRoute({
    method: 'DELETE', path: '/connections/:id', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Remove a connection made in the app: the webhook subscription Meridian made is removed at the platform, its credentials deleted; its history stays',
    handler: ({ hub, params, actor }) => removeConnection(hub, params.id, actor),
  }),
  defineRoute({
    method: 'POST', path: '/connections/:id/oauth', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Start connecting with OAuth: answers the provider\'s authorization URL for the browser to open (state bound to this session and browser, PKCE where supported)',
    body: z.object({ variant: z.string().max(40).optional(), inputs: z.record(z.string(), z.string().max(300)).optional() }).strict(),
    async handler({ hub, params, body, principal }) {
      const row = await live(hub, params.id);
      if (!oauthProfile(row.platform)) throw new ConnectError('no_oauth', `${row.platform} connections are not connected with OAuth: enter their credentials instead`);
      if (!principal?.sessionHash) throw new ConnectError('invalid_request', 'connecting with OAuth needs a signed-in owner in a browser (an API key has no browser to send to the provider)');
      const started = await startAuthorization(hub, { connectionId: params.id, variant: body.variant, inputs: body.inputs, sessionHash: principal.sessionHash });
      return new WithHeaders({ 'set-cookie': oauthCookie(hub, started.browserNonce, false) }, { authorizeUrl: started.authorizeUrl });
    },
  }),
  defineRoute({
    method: 'PUT', path: '/connections/:id/credentials', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Store API keys or passwords, once the platform accepted them (422 credentials_refused with its answer otherwise). Values are never returned',
    body: z.record(z.string().max(64), z.string().min(1).max(8192)),
    async handler({ hub, params, body, actor }) {
      await live(hub, params.id);
      return saveCheckedCredentials(hub, params.id, body, actor);
    },
  }),
  defineRoute({
    method: 'GET', path: '/connections/:id/calendars', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'The connected account\'s calendars (writable or not), with the calendar each practitioner most likely uses',
    handler: onConnection(accountCalendars),
  }),
  defineRoute({
    method: 'GET', path: '/connections/:id/directory', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'The booking platform\'s staff and services, with the practitioners and services they most likely are (by e-mail, then name)',
    handler: onConnection(platformDirectory),
  }),
  defineRoute({
    method: 'POST', path: '/connections/:id/test', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Test a connection: credentials accepted, calendars reachable and writable, subscription active, last delivery — each in words with what to do next',
    handler: onConnection(testConnection),
  }),
  defineRoute({
    method: 'GET', path: '/connections/:id/webhook', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Where the connection\'s deliveries come in: the subscription Meridian made (managed), or the URL with its token and the steps to paste it (manual)',
    handler: onConnection(webhookView),
  }),
  defineRoute({
    method: 'POST', path: '/connections/:id/webhook', scope: 'admin', tag: 'connect', params: idParam,
    summary: 'Make the webhook subscription at the platform again (the old one is removed first)',
    handler: onConnection((hub, id) => ensureSubscription(hub, id, { force: true })),
  }),
];
