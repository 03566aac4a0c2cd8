// Square's team, bookable services and locations, to map onto Meridian's. The refs are what index.ts puts into a
// SourceChange: `practitionerRef` = `appointment_segments[0].team_member_id`, `serviceRef` =
// `appointment_segments[0].service_variation_id` (an ITEM_VARIATION of an APPOINTMENTS_SERVICE item, not the
// item), `locationRef` = `location_id`. Read with the seller's token (the same `api` as bookings):
// - `POST /v2/team-members/search` { limit, cursor } → `team_members[]` (id, given/family name, email_address);
// - `GET /v2/catalog/list?types=ITEM` → items whose `item_data.product_type` is APPOINTMENTS_SERVICE, one entry
//   per variation;
// - `GET /v2/locations` → `locations[]`.
// Every listing is followed by `cursor` until Square gives none.
import { allPages, attempt } from '../../shared/subscription.ts';
import type { ConnectionContext, Directory, DirectoryEntry, WriteOutcome } from '../../types.ts';

type Api = (ctx: ConnectionContext, method: string, path: string, body?: unknown) => Promise<Record<string, unknown>>;

interface TeamMember { id?: string; given_name?: string; family_name?: string; email_address?: string; status?: string }
interface Variation { id?: string; type?: string; is_deleted?: boolean; item_variation_data?: { name?: string } }
interface CatalogItem { id?: string; type?: string; is_deleted?: boolean; item_data?: { name?: string; product_type?: string; variations?: Variation[] } }
interface Location { id?: string; name?: string; status?: string }

export function directory(ctx: ConnectionContext, api: Api): Promise<WriteOutcome<Directory>> {
  return attempt(async () => {
    const members = await allPages(async (cursor) => {
      const p = await api(ctx, 'POST', '/v2/team-members/search', { limit: 100, ...(cursor ? { cursor } : {}) });
      return { items: (p.team_members ?? []) as TeamMember[], next: p.cursor as string | undefined };
    }, 'Square team members');
    const items = await allPages(async (cursor) => {
      const q = new URLSearchParams({ types: 'ITEM', ...(cursor ? { cursor } : {}) });
      const p = await api(ctx, 'GET', `/v2/catalog/list?${q}`);
      return { items: (p.objects ?? []) as CatalogItem[], next: p.cursor as string | undefined };
    }, 'Square catalog');
    const locations = ((await api(ctx, 'GET', '/v2/locations')).locations ?? []) as Location[];

    const staff: DirectoryEntry[] = members.filter((m) => m.id).map((m) => {
      const name = [m.given_name, m.family_name].filter(Boolean).join(' ').trim() || m.email_address || m.id!;
      return { ref: m.id!, name: m.status && m.status !== 'ACTIVE' ? `${name} (inactive)` : name, ...(m.email_address ? { email: m.email_address } : {}) };
    });
    const services: DirectoryEntry[] = items
      .filter((i) => i.type === 'ITEM' && !i.is_deleted && i.item_data?.product_type === 'APPOINTMENTS_SERVICE')
      .flatMap((i) => {
        const variations = (i.item_data?.variations ?? []).filter((v) => v.id && !v.is_deleted);
        return variations.map((v) => {
          const vn = v.item_variation_data?.name;
          const name = i.item_data?.name ?? v.id!;
          return { ref: v.id!, name: variations.length > 1 && vn ? `${name} — ${vn}` : name };
        });
      });
    return {
      staff, services,
      locations: locations.filter((l) => l.id).map((l) => ({ ref: l.id!, name: `${l.name ?? l.id}${l.status && l.status !== 'ACTIVE' ? ' (inactive)' : ''}` })),
    };
  });
}
