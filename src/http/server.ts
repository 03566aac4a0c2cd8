// The HTTP server: webhooks (raw bytes, verified before parsing), calendar feeds, the REST API,
// health and metrics. Fastify with its own JSON logger off (we log through the hub's redacting pino).
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { sql } from 'kysely';
import { z } from 'zod';
import { MeridianError } from '../domain/errors.ts';
import { ConnectError } from '../engine/connect/errors.ts';
import { leadAnswer, notifierAnswer, webhookAnswer } from './inbound.ts';
import { renderFeedForToken } from '../engine/effects/feeds.ts';
import { hasScope, type ApiKeyInfo } from '../engine/hub/apikeys.ts';
import { updateJobGauges } from '../engine/jobs/worker.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { Download, ROUTES, openApiDocument } from './api.ts';
import { WithHeaders } from './route.ts';
import { registerOAuthCallback } from './oauth-callback.ts';
import { receivePush } from '../engine/sync/push.ts';
import { authenticate, guardRoute, redactFor, registerAuth } from './auth.ts';
import { registerUi } from './ui-assets.ts';
import { HttpError, errorBody, statusOf, statusOfCode, type HttpCode } from './errors.ts';
import { RateLimiter, bucketOf, rateLimitsFromEnv, type RateLimitOptions } from './ratelimit.ts';

export const VERSION = '0.1.0';
/** Webhook bodies above this are refused (413) before verification. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;
/** Lead-form bodies above this are refused (413) before verification, whatever a connection's maxBodyBytes says. */
export const LEAD_BODY_LIMIT = 256 * 1024;

export interface ServerOptions {
  /** Trust X-Forwarded-* (behind a reverse proxy). */
  trustProxy?: boolean;
  /** Per-client limits on the public routes (default: MERIDIAN_RATE_LIMIT_* from the hub's environment). */
  rateLimit?: RateLimitOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKeyInfo;
  }
}

function lowerHeaders(h: FastifyRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

function publicUrlOf(hub: Hub, req: FastifyRequest): string {
  return (hub.publicUrl ?? `${req.protocol}://${req.host}`).replace(/\/$/, '');
}

/** Objects and arrays inside one another deeper than this are refused in API bodies. */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of `{` and `[` in JSON text (brackets inside strings do not count); invalid text is left to the parser. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  // Hashing both sides first makes the comparison constant-time whatever the lengths.
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(header.slice(7).trim()), digest(token));
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
const LOOPBACK_ADDRESS = /^(127\.|::1$|::ffff:127\.)/;

/** Whether the request's Host (X-Forwarded-Host behind a trusted proxy) is ours. */
function hostAllowed(allowed: string, req: FastifyRequest): boolean {
  let name: string;
  try {
    name = new URL(`http://${req.host}`).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (name === allowed) return true;
  return LOOPBACK_NAMES.has(name) && LOOPBACK_ADDRESS.test(req.socket.localAddress ?? '');
}

export async function buildServer(hub: Hub, o: ServerOptions = {}): Promise<FastifyInstance> {
  const securityHeaders = (reply: FastifyReply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    // Nothing but the web app's own page (which sets its own policy) may run or embed anything.
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
    if (hub.publicUrl?.startsWith('https:')) reply.header('strict-transport-security', 'max-age=31536000');
  };
  const app = Fastify({
    logger: false, trustProxy: o.trustProxy ?? false, bodyLimit: 256 * 1024, return503OnClosing: true,
    // The router's own refusals (a malformed %-escape, an over-long id) get our headers and error shape too.
    frameworkErrors: (err, _req, res) => {
      const reply = res as unknown as FastifyReply;
      securityHeaders(reply);
      const code: HttpCode = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'invalid_url';
      return reply.status(statusOfCode(code)).send(errorBody(code, code === 'uri_too_long' ? 'a path segment is too long' : 'the URL is not valid'));
    },
  });
  await app.register(formbody);
  // The API's JSON: bodies nested deeper than MAX_JSON_DEPTH are refused (400) before they are parsed, so
  // no validator, redaction or audit walk ever recurses through 50,000 levels (that was a 500). The rest
  // is Fastify's own parser (it also refuses __proto__ keys).
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = String(body);
    if (jsonDepth(text) > MAX_JSON_DEPTH) return done(new HttpError('invalid_request', `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    return defaultJson(req, text, done);
  });

  // DNS rebinding: a foreign page whose host name is pointed at this server would otherwise read our
  // answers as its own origin. With a public URL configured (--public-url / MERIDIAN_PUBLIC_URL, read once
  // here, before `serve` fills in the listening address), only its host is answered, plus the loopback
  // names when the connection arrived on a loopback address (a reverse proxy on the same host sends those).
  // Without a public URL every host is answered as before: then bind to loopback (the default) or set one.
  // Liveness and readiness stay open to any Host: orchestrators probe them by IP, and they reveal nothing.
  const allowedHost = hub.publicUrl ? new URL(hub.publicUrl).hostname.toLowerCase() : undefined;
  if (allowedHost) {
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz' || req.url === '/readyz') return;
      if (hostAllowed(allowedHost, req)) return;
      return reply.status(statusOfCode('misdirected')).send(errorBody('misdirected', `this server answers for ${allowedHost}, not for the host name this request was sent to`));
    });
  }

  app.addHook('onSend', async (_req, reply, payload) => {
    securityHeaders(reply);
    return payload;
  });

  // Public routes draw from a per-client token bucket before anything is read or parsed.
  const limiter = new RateLimiter(o.rateLimit ?? rateLimitsFromEnv(hub.env));
  app.addHook('onRequest', async (req, reply) => {
    const bucket = bucketOf(req.method, req.url);
    const wait = bucket ? limiter.take(bucket, req.ip) : 0;
    if (wait > 0) return reply.status(statusOfCode('rate_limited')).header('retry-after', String(wait)).send(errorBody('rate_limited', `too many requests from this address: try again in ${wait} s`));
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HttpError || err instanceof MeridianError) return reply.status(statusOf(err) ?? 500).send(errorBody(err.code, err.message, err.details));
    if (err instanceof ConnectError) return reply.status(statusOf(err) ?? 500).send(errorBody(err.code, err.message));
    if (err instanceof z.ZodError) {
      return reply.status(400).send(errorBody('invalid_request', 'the request is not valid', {
        issues: err.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
      }));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 413) {
      const limitBytes = req.routeOptions.bodyLimit;
      return reply.status(status).send(errorBody('body_too_large', limitBytes ? `the request body is larger than ${limitBytes} bytes` : 'the request body is too large', limitBytes ? { limitBytes } : undefined));
    }
    if (status < 500) return reply.status(status).send(errorBody(err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_request', err.message));
    hub.log.error({ err: { message: err.message, stack: err.stack }, url: req.routeOptions.url }, 'request failed');
    return reply.status(statusOfCode('internal')).send(errorBody('internal', 'something went wrong on our side; it has been logged'));
  });
  app.setNotFoundHandler((_req, reply) => reply.status(statusOfCode('not_found')).send(errorBody('not_found', 'no such route')));

  // ---------------------------------------------------------------- webhooks (raw bytes)
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { connectionId: string } }>('/webhooks/:connectionId', async (req, reply) => {
      const t0 = process.hrtime.bigint();
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const url = `${publicUrlOf(hub, req)}${req.url}`;
      const out = await webhookAnswer(hub, req.params.connectionId, { rawBody: raw, headers: lowerHeaders(req.headers), url });
      hub.metrics.ingestSeconds.observe({ platform: 'all' }, Number(process.hrtime.bigint() - t0) / 1e9);
      if (out.headers) reply.headers(out.headers);
      return reply.status(out.status).send(out.body);
    });
    // Lead forms (Typeform, Jotform, Tally, a plain JSON or form post): the same raw bytes, verified first.
    // A form needs little: the route's own limit is far below the webhooks' (each connection's maxBodyBytes,
    // 16 KB by default, is checked by the engine); the client address feeds the per-client lead limits.
    scope.post<{ Params: { connectionId: string } }>('/leads/:connectionId', { bodyLimit: LEAD_BODY_LIMIT }, async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const out = await leadAnswer(hub, req.params.connectionId, { rawBody: raw, headers: lowerHeaders(req.headers), url: `${publicUrlOf(hub, req)}${req.url}`, client: req.ip });
      if (out.headers) reply.headers(out.headers);
      return reply.status(out.status).send(out.body);
    });
    // Calendars' push notifications (Google channels, Graph subscriptions; issue 18): the channel and its secret
    // are checked before anything; a notice only queues a read of that calendar.
    scope.post<{ Params: { path: string; connectionId: string } }>('/push/:path/:connectionId', async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const out = await receivePush(hub, req.params.path, req.params.connectionId, { rawBody: raw, headers: lowerHeaders(req.headers), url: `${publicUrlOf(hub, req)}${req.url}`, now: hub.clock.now() });
      if ('text' in out) return reply.status(out.status).type('text/plain; charset=utf-8').send(out.text);
      return reply.status(out.status).send(out.json);
    });
    // Notification providers' callbacks (SMS delivery statuses and replies): verified on these bytes too.
    scope.post<{ Params: { connectionId: string } }>('/notify/:connectionId', async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const out = await notifierAnswer(hub, req.params.connectionId, { rawBody: raw, headers: lowerHeaders(req.headers), url: `${publicUrlOf(hub, req)}${req.url}` });
      return reply.status(out.status).type(out.contentType).send(out.body);
    });
  });

  // ---------------------------------------------------------------- feeds
  app.get<{ Params: { file: string } }>('/feeds/:file', async (req, reply) => {
    const m = /^([A-Za-z0-9_-]{16,64})\.ics$/.exec(req.params.file);
    const feed = m ? await renderFeedForToken(hub, m[1]) : undefined;
    if (!feed) return reply.status(statusOfCode('not_found')).send(errorBody('not_found', 'no such feed'));
    reply.header('etag', feed.etag).header('cache-control', 'private, max-age=300');
    if (req.headers['if-none-match'] === feed.etag) return reply.status(304).send();
    return reply.type('text/calendar; charset=utf-8').send(feed.body);
  });

  // ---------------------------------------------------------------- health and metrics
  app.get('/healthz', async () => ({ status: 'ok', version: VERSION }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await sql`select 1`.execute(hub.store.db);
      return { status: 'ready', store: hub.store.dialect };
    } catch {
      return reply.status(statusOfCode('not_ready')).send(errorBody('not_ready', 'the database is not reachable'));
    }
  });
  // Metrics name connections and show traffic: with MERIDIAN_METRICS_TOKEN set they need
  // `Authorization: Bearer <token>` (compared in constant time); without it they stay open as before.
  const metricsToken = hub.env.MERIDIAN_METRICS_TOKEN?.trim() || undefined;
  app.get('/metrics', async (req, reply) => {
    if (metricsToken && !bearerMatches(req.headers.authorization, metricsToken)) {
      return reply.status(statusOfCode('unauthenticated')).header('www-authenticate', 'Bearer realm="metrics"').send(errorBody('unauthenticated', 'send the metrics token (Authorization: Bearer <MERIDIAN_METRICS_TOKEN>)'));
    }
    await updateJobGauges(hub);
    return reply.type(hub.metrics.registry.contentType).send(await hub.metrics.registry.metrics());
  });

  // ---------------------------------------------------------------- API
  app.get('/api/v1/openapi.json', async () => openApiDocument(VERSION));
  // An API key, or a staff session cookie (then unsafe methods need the CSRF token and our own origin).
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/api/v1/') || req.url.startsWith('/api/v1/openapi.json')) return;
    req.principal = await authenticate(hub, req);
  });
  await registerAuth(app, hub);
  registerOAuthCallback(app, hub);
  for (const r of ROUTES) {
    app.route({
      method: r.method,
      url: `/api/v1${r.path}`,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const who = req.principal!;
        if (!hasScope(who.scopes, r.scope)) throw new HttpError('forbidden', who.kind === 'key' ? `this API key lacks the "${r.scope}" scope` : `your role (${who.user?.role}) cannot do this`);
        const params = r.params ? r.params.parse(req.params) : (req.params as Record<string, string>);
        const query = r.query ? r.query.parse(req.query ?? {}) : {};
        const body = r.body ? r.body.parse(req.body ?? {}) : undefined;
        await guardRoute(hub, who, r, params as Record<string, string>, query);
        const result = await r.handler({ hub, params: params as Record<string, string>, query, body, actor: who.actor, principal: who });
        if (result instanceof Download) return reply.type(result.contentType).header('content-disposition', `attachment; filename="${result.filename}"`).send(result.body);
        if (result instanceof WithHeaders) return reply.status(r.status ?? 200).headers(result.headers).send(redactFor(who, result.body));
        return reply.status(r.status ?? 200).send(redactFor(who, result));
      },
    });
  }

  // The web app (built from src/ui by `npm run build:ui`, which `npm start` runs first).
  if (!registerUi(app)) app.get('/', async (req, reply) => {
    const base = publicUrlOf(hub, req);
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Meridian</title>
<body style="font:16px system-ui;max-width:40rem;margin:3rem auto;color:#1b1b1b"><h1>Meridian is running</h1>
<p>Appointment hub API: <a href="${base}/api/v1/openapi.json">OpenAPI document</a> · <a href="${base}/healthz">health</a> · <a href="${base}/metrics">metrics</a>.</p>
<p>Webhooks go to <code>${base}/webhooks/&lt;connection id&gt;</code>.</p>
<p>The web app is not built: run <code>npm run build:ui</code> and restart.</p></body></html>`);
  });
  return app;
}
