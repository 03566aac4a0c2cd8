// ICS publish target: a subscription URL per practitioner (and per clinic) that calendar apps poll.
// Pull-based, so no jobs: the HTTP layer asks `renderFeed` for the current state on every request.
// The engine owns the feed tokens and picks the appointments; this renders them as RFC 5545.
import { icsEventOf, renderCalendar, type IcsEvent } from '../../shared/icalendar.ts';
import { NO_TARGET_CAPABILITIES, type FeedInput, type TargetConnector } from '../../types.ts';

function uidDomain(publicUrl: string | undefined): string {
  try {
    return publicUrl ? new URL(publicUrl).hostname || 'meridian.local' : 'meridian.local';
  } catch {
    return 'meridian.local';
  }
}

export function renderFeed(feed: FeedInput): string {
  const domain = uidDomain(feed.publicUrl);
  // The UID is stable for the life of the appointment, whatever happens to it.
  const events: IcsEvent[] = feed.events.map((e) => ({ ...icsEventOf(e, `${e.appointmentId}@${domain}`), created: e.createdAt, lastModified: e.updatedAt }));
  return renderCalendar({ name: feed.name, timeZone: feed.timeZone, events, stamp: feed.now, ttlSeconds: 900 });
}

export const connector: TargetConnector = {
  descriptor: {
    id: 'ics-publish',
    role: 'target',
    kind: 'feed',
    displayName: 'ICS subscription feed',
    auth: [],
    fidelity:
      'Read-only iCalendar feed (RFC 5545) per practitioner and per clinic at a secret URL; any calendar app can subscribe. '
      + 'Changes appear when the subscriber next polls (Google Calendar polls every few hours, Apple Calendar as configured). '
      + 'Cancelled appointments stay in the feed as STATUS:CANCELLED for 30 days so subscribers remove them.',
    capabilities: { ...NO_TARGET_CAPABILITIES, deterministicIds: true },
    defaultPrivacy: 'minimal',
  },
  renderFeed,
};
