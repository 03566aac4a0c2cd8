// One REST route, declared once (method, path, scope, schemas, handler): the router and the OpenAPI
// document are both generated from the table of these (src/http/api.ts), so they cannot disagree.
// `defineRoute` lets Zod type each handler's params, query and body from the route's own schemas.
import { z } from 'zod';
import { isIanaZone } from '../domain/time.ts';
import type { Hub } from '../engine/hub/hub.ts';
import type { Scope } from '../engine/hub/apikeys.ts';
import type { Principal } from './auth.ts';

export interface RouteContext<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  hub: Hub;
  params: P;
  query: Q;
  body: B;
  actor: string;
  /** Who is asking (API key or staff session). */
  principal?: Principal;
}

/** A handler's answer sent as a file download instead of JSON. */
export class Download {
  constructor(public contentType: string, public filename: string, public body: string) {}
}

/** A handler's answer with response headers of its own (a cookie the browser must carry to a later request). */
export class WithHeaders {
  constructor(public headers: Record<string, string>, public body: unknown) {}
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify-style path under /api/v1 (`:id` parameters). */
  path: string;
  scope: Scope;
  summary: string;
  tag: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Status for success (200 unless said). */
  status?: number;
  /**
   * Typed per route by `defineRoute`; in the table the types are erased (the router parses params, query
   * and body with the route's own schemas before calling it, so what the handler was promised holds).
   */
  handler(ctx: RouteContext<any, any, any>): unknown;
}

/** What a schema parses to; `D` when the route has none. */
type Parsed<S, D> = S extends z.ZodType ? z.output<S> : D;

export interface RouteSpec<P extends z.ZodObject | undefined, Q extends z.ZodObject | undefined, B extends z.ZodType | undefined> extends Omit<Route, 'params' | 'query' | 'body' | 'handler'> {
  params?: P;
  query?: Q;
  body?: B;
  handler(ctx: RouteContext<Parsed<P, Record<string, never>>, Parsed<Q, Record<string, never>>, Parsed<B, undefined>>): unknown;
}

/** A route whose handler sees its params, query and body as its schemas parse them. */
export function defineRoute<P extends z.ZodObject | undefined = undefined, Q extends z.ZodObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(spec: RouteSpec<P, Q, B>): Route {
  return spec;
}

// ------------------------------------------------------------------ schemas several routes share

export const instant = z.string().refine((s) => Number.isFinite(Date.parse(s)) && /T.*(Z|[+-]\d\d:?\d\d)$/.test(s), 'an ISO-8601 instant with Z or an offset');
export const zone = z.string().refine(isIanaZone, 'an IANA time zone');
export const idParam = z.object({ id: z.string().min(1).max(200) });
export const limit = (max: number) => z.coerce.number().int().min(1).max(max).optional();
