// Calendly's people and event types, to map onto Meridian's practitioners and services. The refs are what
// index.ts puts into a SourceChange: `practitionerRef` = the host's user URI (`event_memberships[0].user`),
// `serviceRef` = the event type URI (`scheduled_event.event_type`). Calendly has no locations list (a booking's
// location is free text), so none is given.
// - People: `GET /organization_memberships?organization=…` (every member, with e-mail), paged by page_token;
//   a user who may not list the organization gets only themself (`GET /users/me`).
// - Event types: `GET /event_types?organization=…`, else `?user=…` when the organization listing is refused.
import { allPages, attempt } from '../../shared/subscription.ts';
import { ConnectorError, type ConnectionContext, type Directory, type DirectoryEntry, type WriteOutcome } from '../../types.ts';
import { calendlyApi, currentUser } from './subscriptions.ts';

interface UserRes { uri?: string; name?: string; email?: string }
interface EventTypeRes { uri?: string; name?: string | null; active?: boolean; slug?: string | null }
interface Page<T> { collection?: T[]; pagination?: { next_page_token?: string | null } }

const refused = (err: unknown) => err instanceof ConnectorError && err.failure.status === 403;

function pages<T>(ctx: ConnectionContext, path: string, params: Record<string, string>, what: string): Promise<T[]> {
  return allPages(async (cursor) => {
    const q = new URLSearchParams({ ...params, count: '100', ...(cursor ? { page_token: cursor } : {}) });
    const p = ((await calendlyApi(ctx, 'GET', `${path}?${q}`)) ?? {}) as Page<T>;
    return { items: p.collection ?? [], next: p.pagination?.next_page_token };
  }, what);
}

export function directory(ctx: ConnectionContext): Promise<WriteOutcome<Directory>> {
  return attempt(async () => {
    const me = await currentUser(ctx);
    const organization = me.current_organization;
    let users: UserRes[];
    try {
      users = (await pages<{ user?: UserRes }>(ctx, '/organization_memberships', { organization }, 'Calendly memberships')).map((m) => m.user ?? {});
    } catch (err) {
      if (!refused(err)) throw err;
      users = [me];
    }
    let types: EventTypeRes[];
    try {
      types = await pages<EventTypeRes>(ctx, '/event_types', { organization }, 'Calendly event types');
    } catch (err) {
      if (!refused(err)) throw err;
      types = await pages<EventTypeRes>(ctx, '/event_types', { user: me.uri }, 'Calendly event types');
    }
    const staff: DirectoryEntry[] = users.filter((u) => u.uri).map((u) => ({ ref: u.uri!, name: u.name || u.email || u.uri!, ...(u.email ? { email: u.email } : {}) }));
    const services: DirectoryEntry[] = types.filter((t) => t.uri).map((t) => ({ ref: t.uri!, name: `${t.name || t.slug || t.uri}${t.active === false ? ' (inactive)' : ''}` }));
    return { staff, services };
  });
}
