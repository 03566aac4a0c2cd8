// Setmore's staff and services, to map onto Meridian's. The refs are what index.ts puts into a SourceChange:
// `practitionerRef` = `staff_key`, `serviceRef` = `service_key`. `GET /bookingapi/staffs` (paged by `cursor`,
// `data.staffs[]` { key, first_name, last_name, email_id }) and `GET /bookingapi/services` (`data.services[]`
// { key, service_name }, followed by `cursor` too if Setmore gives one) — PipedreamHQ/pipedream
// `components/setmoreappointments/setmoreappointments.app.mjs` (listStaff, listServices, paginate). Setmore has
// no locations. The call is index.ts's own `api` (access token minted from the refresh token).
import { allPages, attempt } from '../../shared/subscription.ts';
import type { ConnectionContext, Directory, WriteOutcome } from '../../types.ts';

type Api = (ctx: ConnectionContext, path: string) => Promise<unknown>;

interface Staff { key?: string; first_name?: string; last_name?: string; email_id?: string; email?: string }
interface Service { key?: string; service_name?: string }

function listed<T>(ctx: ConnectionContext, api: Api, path: string, field: string): Promise<T[]> {
  return allPages(async (cursor) => {
    const body = (await api(ctx, `${path}${cursor ? `?${new URLSearchParams({ cursor })}` : ''}`)) as { data?: Record<string, unknown> } | undefined;
    const items = body?.data?.[field];
    const list = Array.isArray(items) ? (items as T[]) : [];
    const next = body?.data?.cursor;
    return { items: list, next: list.length && typeof next === 'string' && next ? next : undefined };
  }, `Setmore ${field}`, 500);
}

export function directory(ctx: ConnectionContext, api: Api): Promise<WriteOutcome<Directory>> {
  return attempt(async () => {
    const staff = await listed<Staff>(ctx, api, '/bookingapi/staffs', 'staffs');
    const services = await listed<Service>(ctx, api, '/bookingapi/services', 'services');
    return {
      staff: staff.filter((s) => s.key).map((s) => {
        const email = s.email_id ?? s.email;
        return { ref: s.key!, name: [s.first_name, s.last_name].filter(Boolean).join(' ').trim() || email || s.key!, ...(email ? { email } : {}) };
      }),
      services: services.filter((s) => s.key).map((s) => ({ ref: s.key!, name: s.service_name || s.key! })),
    };
  });
}
