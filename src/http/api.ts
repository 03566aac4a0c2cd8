// REST API v1. Every route is declared once, in the file of its OpenAPI tag (src/http/routes/), with
// `defineRoute` (src/http/route.ts); ROUTES assembles them into the one table that both the router
// (server.ts) and the OpenAPI document below are generated from, so they cannot disagree.
import { z } from 'zod';
import type { Route } from './route.ts';
import { APPOINTMENT_ROUTES } from './routes/appointments.ts';
import { AUDIT_ROUTES } from './routes/audit.ts';
import { SETUP_ROUTES } from './routes/setup.ts';
import { OPERATIONS_ROUTES } from './routes/operations.ts';
import { LEAD_ROUTES } from './routes/leads.ts';
import { NOTIFICATION_ROUTES } from './routes/notifications.ts';
import { PRIVACY_ROUTES } from './routes/privacy.ts';
import { CONNECT_ROUTES } from './routes/connect.ts';

export { Download, type Route, type RouteContext } from './route.ts';

export const ROUTES: Route[] = [
  ...APPOINTMENT_ROUTES, ...AUDIT_ROUTES, ...SETUP_ROUTES, ...OPERATIONS_ROUTES, ...LEAD_ROUTES, ...NOTIFICATION_ROUTES, ...PRIVACY_ROUTES, ...CONNECT_ROUTES,
];

/** The OpenAPI 3.1 document, generated from ROUTES. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
  for (const r of ROUTES) {
    const p = `/api/v1${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
    const parameters: unknown[] = [];
    for (const [name] of Object.entries(r.params?.shape ?? {})) parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    for (const [name, s] of Object.entries(r.query?.shape ?? {})) parameters.push({ name, in: 'query', required: false, schema: schema(s) });
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\/:?([a-z])/gi, (_m, c: string) => c.toUpperCase()).replace(/[^A-Za-z]/g, '')}`,
      'x-scope': r.scope,
      security: [{ apiKey: [] }],
      parameters,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(r.body) } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: 'Success', content: { 'application/json': { schema: {} } } },
        '4XX': { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Meridian API', version, description: 'Appointment hub API. Authenticate with `Authorization: Bearer mer_…` (an API key; scopes read < write < admin).' },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Meridian API key (mer_…)' } },
      schemas: {
        Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } },
      },
    },
    paths,
  };
}
