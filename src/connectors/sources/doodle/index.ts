// Doodle as a booking source. No public developer API is documented today (FACTS.md); a booking made
// on a Doodle booking page lands as an event in the organiser's connected calendar (Google, Microsoft
// 365, iCloud). That calendar, published as an ICS feed, is read here like `ics-feed`
// (../../shared/feed.ts); without a feed address, `calendar-source` reads it through its own API.
import { feedSource } from '../../shared/feed.ts';

export const PLATFORM = 'doodle';

export const connector = feedSource({
  id: PLATFORM,
  displayName: 'Doodle (via the connected calendar feed)',
  fidelity:
    'Doodle offers no API Meridian can use: its booking-page bookings are read from the organiser\'s connected calendar, '
    + 'published as an ICS feed and polled. What arrives is the times and the event title; the booker\'s name and e-mail '
    + 'only if the title holds them, no status beyond cancelled/removed (a removed event counts as cancelled), and '
    + 'nothing is written back to Doodle.',
});
