// The HTTP server: webhooks (raw bytes, verified before parsing), calendar feeds, the REST API,
// health and metrics. Fastify with its own JSON logger off (we log through the hub's redacting pino).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { sql } from 'kysely';
import { z } from 'zod';
import { ingestWebhook } from '../engine/ingest.ts';
import { renderFeedForToken } from '../engine/feeds.ts';
import { checkApiKey, hasScope, type ApiKeyInfo } from '../engine/apikeys.ts';
import { StaffError } from '../engine/staff.ts';
import { updateJobGauges } from '../engine/worker.ts';
import type { Hub } from '../engine/hub.ts';
import { ROUTES, openApiDocument } from './api.ts';
import { HttpError, errorBody } from './errors.ts';

export const VERSION = '0.1.0';
/** Webhook bodies above this are refused (413) before verification. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface ServerOptions {
  /** Trust X-Forwarded-* (behind a reverse proxy). */
  trustProxy?: boolean;
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

export async function buildServer(hub: Hub, o: ServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, trustProxy: o.trustProxy ?? false, bodyLimit: 256 * 1024, return503OnClosing: true });
  await app.register(formbody);

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HttpError || err instanceof StaffError) return reply.status(err.status).send(errorBody(err.code, err.message, err.details));
    if (err instanceof z.ZodError) {
      return reply.status(400).send(errorBody('invalid_request', 'the request is not valid', {
        issues: err.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
      }));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 413) return reply.status(413).send(errorBody('body_too_large', 'the request body is too large'));
    if (status < 500) return reply.status(status).send(errorBody(err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_request', err.message));
    hub.log.error({ err: { message: err.message, stack: err.stack }, url: req.routeOptions.url }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'something went wrong on our side; it has been logged'));
  });
  app.setNotFoundHandler((_req, reply) => reply.status(404).send(errorBody('not_found', 'no such route')));

  // ---------------------------------------------------------------- webhooks (raw bytes)
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { connectionId: string } }>('/webhooks/:connectionId', async (req, reply) => {
      const t0 = process.hrtime.bigint();
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const url = `${publicUrlOf(hub, req)}${req.url}`;
      const out = await ingestWebhook(hub, req.params.connectionId, { rawBody: raw, headers: lowerHeaders(req.headers), url });
      hub.metrics.ingestSeconds.observe({ platform: 'all' }, Number(process.hrtime.bigint() - t0) / 1e9);
      return reply.status(out.status).send(out.body);
    });
  });

  // ---------------------------------------------------------------- feeds
  app.get<{ Params: { file: string } }>('/feeds/:file', async (req, reply) => {
    const m = /^([A-Za-z0-9_-]{16,64})\.ics$/.exec(req.params.file);
    const feed = m ? await renderFeedForToken(hub, m[1]) : undefined;
    if (!feed) return reply.status(404).send(errorBody('not_found', 'no such feed'));
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
      return reply.status(503).send(errorBody('not_ready', 'the database is not reachable'));
    }
  });
  app.get('/metrics', async (_req, reply) => {
    await updateJobGauges(hub);
    return reply.type(hub.metrics.registry.contentType).send(await hub.metrics.registry.metrics());
  });

  // ---------------------------------------------------------------- API
  app.get('/api/v1/openapi.json', async () => openApiDocument(VERSION));
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/api/v1/') || req.url.startsWith('/api/v1/openapi.json')) return;
    const auth = req.headers.authorization;
    const key = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : (req.headers['x-api-key'] as string | undefined);
    if (!key) throw new HttpError(401, 'unauthenticated', 'send an API key: Authorization: Bearer mer_…');
    const info = await checkApiKey(hub, key);
    if (!info) throw new HttpError(401, 'unauthenticated', 'this API key is not valid or was revoked');
    req.apiKey = info;
  });
  for (const r of ROUTES) {
    app.route({
      method: r.method,
      url: `/api/v1${r.path}`,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const key = req.apiKey!;
        if (!hasScope(key.scopes, r.scope)) throw new HttpError(403, 'forbidden', `this API key lacks the "${r.scope}" scope`);
        const params = r.params ? r.params.parse(req.params) : (req.params as Record<string, string>);
        const query = r.query ? r.query.parse(req.query ?? {}) : {};
        const body = r.body ? r.body.parse(req.body ?? {}) : undefined;
        const result = await r.handler({ hub, params: params as Record<string, string>, query, body, actor: `api:${key.name}` });
        return reply.status(r.status ?? 200).send(result);
      },
    });
  }

  app.get('/', async (req, reply) => {
    const base = publicUrlOf(hub, req);
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Meridian</title>
<body style="font:16px system-ui;max-width:40rem;margin:3rem auto;color:#1b1b1b"><h1>Meridian is running</h1>
<p>Appointment hub API: <a href="${base}/api/v1/openapi.json">OpenAPI document</a> · <a href="${base}/healthz">health</a> · <a href="${base}/metrics">metrics</a>.</p>
<p>Webhooks go to <code>${base}/webhooks/&lt;connection id&gt;</code>.</p></body></html>`);
  });
  return app;
}
