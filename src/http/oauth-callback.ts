// GET /oauth/callback: where every provider sends the owner's browser back. The session cookie is
// SameSite=Strict, so the provider's (cross-site) redirect does not carry it; the flow is bound instead to
// a nonce cookie set when it started (SameSite=Lax, path /oauth/, ten minutes) and to the session that
// started it (still signed in, still an owner). Success goes on to the connection's page; every failure ends
// on a plain page that says what happened, that nothing was stored, and the way back.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConnectError } from '../engine/connect/errors.ts';
import { completeAuthorization, STATE_TTL_MS } from '../engine/connect/oauth.ts';
import { ensureSubscription } from '../engine/connect/webhooks.ts';
import { getSource } from '../connectors/registry.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { cookieOf, ownerSessionByHash } from './auth.ts';
import { statusOfCode } from './errors.ts';

export const OAUTH_COOKIE = 'meridian_oauth';

/** The cookie that binds an authorisation to the browser that started it. */
export function oauthCookie(hub: Hub, nonce: string, secure: boolean): string {
  const s = secure || hub.publicUrl?.startsWith('https:') ? '; Secure' : '';
  return `${OAUTH_COOKIE}=${nonce}; Path=/oauth/; HttpOnly; SameSite=Lax; Max-Age=${STATE_TTL_MS / 1000}${s}`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(reply: FastifyReply, status: number, title: string, message: string, back: string): FastifyReply {
  return reply.status(status).type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>${esc(title)} · Meridian</title>
<body style="font:16px system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b"><main>
<h1>${esc(title)}</h1><p role="alert">${esc(message)}</p>
<p><a href="${esc(back)}">Back to Meridian</a></p></main></body></html>`);
}

export function registerOAuthCallback(app: FastifyInstance, hub: Hub): void {
  app.get('/oauth/callback', async (req: FastifyRequest, reply: FastifyReply) => {
    const query = new URLSearchParams(req.url.split('?')[1] ?? '');
    // The nonce is spent with the state: clear it whatever happens.
    reply.header('set-cookie', `${OAUTH_COOKIE}=; Path=/oauth/; HttpOnly; SameSite=Lax; Max-Age=0`);
    const base = (hub.publicUrl ?? '').replace(/\/$/, '');
    try {
      const done = await completeAuthorization(hub, query, cookieOf(req, OAUTH_COOKIE), async (hash) => {
        const owner = await ownerSessionByHash(hub, hash);
        return owner ? `user:${owner.email}` : undefined;
      });
      // A booking platform that can subscribe does it as soon as Meridian can sign in to it.
      if (getSource(done.platform)?.subscriptions) await ensureSubscription(hub, done.connectionId);
      return reply.redirect(`${base}/#/connection?id=${encodeURIComponent(done.connectionId)}&connected=1`, 303);
    } catch (err) {
      if (err instanceof ConnectError) {
        hub.log.info({ code: err.code }, 'an OAuth authorisation was not completed');
        return page(reply, statusOfCode(err.code), 'Connecting did not work', err.message, `${base}/#/connections`);
      }
      throw err;
    }
  });
}
