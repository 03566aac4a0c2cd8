// Cal.com's people and event types, to map onto Meridian's. The refs are what index.ts puts into a SourceChange:
// `practitionerRef` = the organizer's / first host's e-mail, `serviceRef` = String(eventTypeId).
// - `GET /v2/me` → the API key's user (`email`, `name`): the practitioner of a personal account.
// - `GET /v2/event-types` (cal-api-version 2024-06-14) → the user's event types (`id`, `title`); Cal.com answers
//   404 "Event types not found" when there are none. Where an event type names its hosts or users with an e-mail,
//   they are listed too.
// No locations list (a booking's location is free text).
import { attempt, isGone } from '../../shared/subscription.ts';
import type { ConnectionContext, Directory, DirectoryEntry, WriteOutcome } from '../../types.ts';
import { calApi } from './subscriptions.ts';
import { EVENT_TYPES_VERSION } from './version.ts';

interface Person { email?: string; name?: string | null; username?: string | null }
interface EventType { id?: number | string; title?: string; slug?: string; hidden?: boolean; hosts?: Person[]; users?: Person[] }

export function directory(ctx: ConnectionContext): Promise<WriteOutcome<Directory>> {
  return attempt(async () => {
    const me = ((await calApi(ctx, 'GET', '/me')).data ?? {}) as Person;
    let types: EventType[] = [];
    try {
      const { data } = await calApi(ctx, 'GET', '/event-types', undefined, EVENT_TYPES_VERSION);
      types = Array.isArray(data) ? (data as EventType[]) : [];
    } catch (err) {
      if (!isGone(err)) throw err;
    }
    const people = new Map<string, DirectoryEntry>();
    for (const p of [me, ...types.flatMap((t) => [...(t.hosts ?? []), ...(t.users ?? [])])]) {
      if (typeof p?.email !== 'string' || !p.email || people.has(p.email)) continue;
      people.set(p.email, { ref: p.email, name: p.name || p.username || p.email, email: p.email });
    }
    const services: DirectoryEntry[] = types.filter((t) => t.id !== undefined && t.id !== null)
      .map((t) => ({ ref: String(t.id), name: `${t.title || t.slug || t.id}${t.hidden ? ' (hidden)' : ''}` }));
    return { staff: [...people.values()], services };
  });
}
