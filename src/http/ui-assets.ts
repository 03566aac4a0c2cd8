// The web app's files (src/ui built by Vite into dist/ui): index.html at `/`, hashed assets under
// /assets/ cached for a year. A tiny handler instead of a static-files plugin: the app is one page.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

export const UI_DIR = resolve(fileURLToPath(new URL('../../dist/ui', import.meta.url)));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.woff2': 'font/woff2', '.json': 'application/json', '.ico': 'image/x-icon',
};

// Scripts only from our own origin; inline styles are allowed because the calendar sets style attributes.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Serve the built app when it exists; returns false (and serves nothing) when it was never built. */
export function registerUi(app: FastifyInstance, dir = UI_DIR): boolean {
  const index = join(dir, 'index.html');
  if (!existsSync(index)) return false;
  const html = readFileSync(index);
  // The asset list is read once: Vite names every file by its content hash, so nothing changes under us.
  const assets = new Map<string, Buffer>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) for (const f of readdirSync(assetDir)) assets.set(f, readFileSync(join(assetDir, f)));
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).send(html));
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
    const body = assets.get(req.params.file);
    if (!body) return reply.status(404).send({ code: 'not_found', message: 'no such asset' });
    return reply.type(TYPES[extname(req.params.file)] ?? 'application/octet-stream').header('cache-control', 'public, max-age=31536000, immutable').send(body);
  });
  return true;
}
