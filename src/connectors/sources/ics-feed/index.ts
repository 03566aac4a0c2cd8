// Any iCalendar subscription URL as a booking source (a practitioner's calendar published as ICS,
// a booking tool's export). Everything is in ../../shared/feed.ts, which SimplePractice and Doodle
// reuse; this folder only names the generic path. Connection settings:
// - secret `feedUrl` (preferred: such addresses usually embed a private token) or config `url`;
//   `webcal://` is read as https. Optional secrets `username` / `password` for HTTP Basic.
// - config `practitioner`: the practitioner ref for every event (map it in refs.practitioners), or
//   leave it out and set refs.defaultPractitioner; an ORGANIZER e-mail is matched as well.
// - config `timeZone`: zone for floating times; config `patientPattern`: a regular expression whose
//   first group is the patient's name in the event title (default: the whole title, "Busy" if empty).
import { feedSource } from '../../shared/feed.ts';

export const PLATFORM = 'ics-feed';

export const connector = feedSource({
  id: PLATFORM,
  displayName: 'iCalendar feed (ICS URL)',
  fidelity:
    'Polls an iCalendar subscription: times (recurring series expanded, time zones as RFC 5545 says), the event title as '
    + 'the patient name (often initials or "Busy"), cancellations when the feed marks them, and an event that leaves '
    + 'the feed counts as cancelled. No patient e-mail or phone, no services, no webhooks (changes arrive at the next '
    + 'poll) and no write-back. All-day and "free" events are not appointments.',
});
