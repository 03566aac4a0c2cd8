// A fake calendar-subscription server (RFC 5545 over HTTP, conditional GET per RFC 9110 §13): each path
// serves an iCalendar body with a strong ETag (a hash of the body) and a Last-Modified stamp that moves
// when the body changes; `If-None-Match` / `If-Modified-Since` that still match are answered 304. A path
// may require HTTP Basic (401 without it) or be served chunked with no Content-Length. Only GET and
// HEAD exist; anything else is answered 405 and recorded in `violations`, as is a conditional request
// carrying an ETag this server never issued for that path.
//
//   const s = await startIcsServer();  s.serve('/a.ics', text, { basic: { user, pass } });  s.url('/a.ics')
//   s.requests (method, path, lower-cased headers), s.violations, s.close()
import http from 'node:http';
import { createHash } from 'node:crypto';

export interface FeedRoute {
  basic?: { user: string; pass: string };
  /** Send the body chunked, without Content-Length (for the size bound). */
  chunked?: boolean;
  contentType?: string;
}

interface Held extends FeedRoute {
  body: string;
  etag: string;
  lastModified: Date;
  issued: Set<string>;
}

export interface IcsServer {
  /** Serve (or replace) the body at `path`; the ETag and Last-Modified move only when the body changes. */
  serve(path: string, body: string, route?: FeedRoute): void;
  remove(path: string): void;
  url(path: string): string;
  /** Every request, with when it arrived (ms since the epoch). */
  requests: { method: string; path: string; headers: Record<string, string>; at: number }[];
  violations: string[];
  close(): Promise<void>;
}

const etagOf = (body: string) => `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;

export async function startIcsServer(): Promise<IcsServer> {
  const routes = new Map<string, Held>();
  const requests: IcsServer['requests'] = [];
  const violations: string[] = [];
  // Last-Modified has one-second resolution: each change moves it by a whole second.
  let clock = Date.parse('2026-10-01T00:00:00Z');

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    requests.push({ method: req.method ?? '', path, headers, at: Date.now() });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      violations.push(`${req.method} ${path}: a feed is only read`);
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const r = routes.get(path);
    if (!r) return void res.writeHead(404).end();
    if (r.basic && headers.authorization !== `Basic ${Buffer.from(`${r.basic.user}:${r.basic.pass}`).toString('base64')}`) {
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="calendar"' }).end();
    }
    const inm = headers['if-none-match'];
    if (inm && !r.issued.has(inm)) violations.push(`${path}: If-None-Match ${inm} was never issued`);
    const ims = headers['if-modified-since'];
    const fresh = inm ? inm === r.etag : ims !== undefined && Date.parse(ims) >= Math.floor(r.lastModified.getTime() / 1000) * 1000;
    const validators = { etag: r.etag, 'last-modified': r.lastModified.toUTCString() };
    if (fresh) return void res.writeHead(304, validators).end();
    r.issued.add(r.etag);
    const bytes = Buffer.from(r.body, 'utf8');
    res.writeHead(200, {
      ...validators,
      'content-type': r.contentType ?? 'text/calendar; charset=utf-8',
      ...(r.chunked ? {} : { 'content-length': String(bytes.length) }),
    });
    if (req.method === 'HEAD') return void res.end();
    if (!r.chunked) return void res.end(bytes);
    for (let i = 0; i < bytes.length; i += 1 << 20) res.write(bytes.subarray(i, i + (1 << 20)));
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    serve(path, body, route = {}) {
      const prev = routes.get(path);
      const etag = etagOf(body);
      const changed = prev?.etag !== etag;
      if (changed) clock += 1000;
      routes.set(path, { ...route, body, etag, lastModified: changed ? new Date(clock) : prev!.lastModified, issued: prev?.issued ?? new Set() });
    },
    remove: (path) => void routes.delete(path),
    url: (path) => `http://127.0.0.1:${port}${path}`,
    requests,
    violations,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
