// SimplePractice as a booking source. It has no public API and no webhooks (FACTS.md): its
// appointments reach Meridian only through the calendar its Calendar Sync writes into. Published as
// an ICS feed, that calendar is read here exactly like `ics-feed` (../../shared/feed.ts); clinics whose
// synced calendar is Google, Microsoft 365 or iCloud without a feed address use `calendar-source`.
import { feedSource } from '../../shared/feed.ts';

export const PLATFORM = 'simplepractice';

export const connector = feedSource({
  id: PLATFORM,
  displayName: 'SimplePractice (via its synced calendar feed)',
  fidelity:
    'SimplePractice has no API: Meridian polls the calendar SimplePractice syncs into, published as an ICS feed. What '
    + 'arrives is the appointment times and the event title (as SimplePractice writes it, often initials only); no '
    + 'reliable patient contact, service or status beyond cancelled/removed, and nothing is written back. A removed '
    + 'event counts as cancelled. For a Google/Microsoft/iCloud calendar without a feed address, use calendar-source.',
});
