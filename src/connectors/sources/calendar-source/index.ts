// A calendar read as a booking source (issue 5): for platforms with no API of their own that sync their
// appointments into a practitioner's calendar — SimplePractice's Calendar Sync, Jane through a calendar the
// practitioner keeps — Meridian reads that calendar with a calendar target's own read path (Google events.list,
// Graph calendarView, CalDAV calendar-query), and each event becomes a booking. Facts: ./FACTS.md.
// - The connection is the chosen calendar platform's connection: the same secrets and base URL (its default
//   when none is set) and its settings in config (tokenUrl, mode, tenant, …), plus `calendarPlatform`.
// - Polled; no webhooks. The listing holds every event of the window, so an event that disappears was
//   cancelled (listComplete, behind the engine's safety valve); an event the calendar marks cancelled is an
//   explicit cancel.
// - Left out: our own events (Meridian's markers: a clinic may write to the calendar it reads), all-day events
//   and events that show as free (holidays, reminders, focus time), and titles listed in `ignoreTitles`.
// - The title is all there is of the patient (SimplePractice writes initials or "Busy", by its privacy
//   setting); the e-mail only when the event has exactly one attendee other than the calendar's owner.
// - occurredAt is the calendar's last-modified stamp, so an unchanged event lists the same change every poll.
// - No write-back: the platform that syncs into the calendar owns those events and would overwrite (or
//   duplicate) any change we made there; staff edits are marked as diverging and must be made in the platform.
import type { SourceChange } from '../../../domain/types.ts';
import { toUtc } from '../../../domain/time.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload,
  type AuthField, type CalendarEvent, type ConnectionContext, type ListWindow, type SourceConnector, type TargetConnector, type VerifyResult,
} from '../../types.ts';
import { connector as googleCalendar } from '../../targets/google-calendar/index.ts';
import { connector as microsoftGraph } from '../../targets/microsoft-graph/index.ts';
import { connector as caldav } from '../../targets/caldav/index.ts';
import { POLL_MINUTES } from '../../shared/settings.ts';

export const PLATFORM = 'calendar-source';
/** The calendar targets whose read path this source uses (their descriptors give the auth fields). */
const CALENDARS: TargetConnector[] = [googleCalendar, microsoftGraph, caldav];
const UNKNOWN_PATIENT = 'Unknown patient';

interface Settings {
  platform: string;
  calendar?: string;
  practitioner?: string;
  ignoreTitles: Set<string>;
}

const normTitle = (t: string) => t.trim().toLowerCase();

function settingsOf(config: Record<string, unknown>): Settings {
  const platform = config.calendarPlatform;
  if (typeof platform !== 'string' || !CALENDARS.some((c) => c.descriptor.id === platform)) {
    throw new ConnectorError({ class: 'permanent', message: `calendar-source: config.calendarPlatform must be one of ${CALENDARS.map((c) => c.descriptor.id).join(', ')}` });
  }
  const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
  const ignore = Array.isArray(config.ignoreTitles) ? config.ignoreTitles.filter((t): t is string => typeof t === 'string') : [];
  return { platform, calendar: text(config.calendar), practitioner: text(config.practitioner), ignoreTitles: new Set(ignore.map(normTitle)) };
}

/** The auth fields of every calendar platform, once each: which are needed depends on `calendarPlatform`. */
function authUnion(): AuthField[] {
  const byKey = new Map<string, { field: AuthField; requiredBy: string[]; usedBy: string[] }>();
  for (const c of CALENDARS) {
    for (const f of c.descriptor.auth) {
      const e = byKey.get(f.key) ?? { field: f, requiredBy: [], usedBy: [] };
      (f.required ? e.requiredBy : e.usedBy).push(c.descriptor.id);
      byKey.set(f.key, e);
    }
  }
  return [...byKey.values()].map(({ field, requiredBy, usedBy }) => ({
    ...field, required: false,
    help: [requiredBy.length ? `Required for ${requiredBy.join(', ')}` : '', usedBy.length ? `used by ${usedBy.join(', ')}` : ''].filter(Boolean).join('; '),
  }));
}

/** The change one calendar event stands for; undefined for events that are not bookings. */
export function changeOf(e: CalendarEvent, s: Pick<Settings, 'calendar' | 'practitioner' | 'ignoreTitles'>, readAt: Date): SourceChange | undefined {
  if (e.ours || e.allDay || e.transparent || s.ignoreTitles.has(normTitle(e.title))) return undefined;
  const practitionerRef = s.practitioner ?? s.calendar;
  const base = { platform: PLATFORM, externalId: e.remoteId, occurredAt: e.updated ?? toUtc(readAt), needsFetch: false };
  const when = { start: e.start, end: e.end, ...(e.timeZone ? { timeZone: e.timeZone } : {}), ...(practitionerRef ? { practitionerRef } : {}) };
  if (e.status === 'cancelled') return { ...base, kind: 'cancel', appointment: { ...when, status: 'cancelled' } };
  const email = e.attendees?.length === 1 ? e.attendees[0] : undefined;
  return { ...base, kind: 'upsert', appointment: { ...when, status: 'booked', patient: { name: e.title.trim() || UNKNOWN_PATIENT, ...(email ? { email } : {}) } } };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const s = settingsOf(ctx.config);
  // Through the registry, imported here: the registry imports this module, so a static import would be a cycle.
  const { getTarget } = await import('../../registry.ts');
  const target = getTarget(s.platform);
  if (!target?.client) throw new ConnectorError({ class: 'permanent', message: `calendar-source: ${s.platform} is not an available calendar platform` });
  const missing = target.descriptor.auth.filter((f) => f.required && !ctx.secrets[f.key]).map((f) => f.key);
  if (missing.length) throw new ConnectorError({ class: 'permanent', message: `calendar-source (${s.platform}): the connection lacks ${missing.join(', ')}` });
  const client = target.client({ ...ctx, baseUrl: ctx.baseUrl || (target.descriptor.defaultBaseUrl ?? '') });
  if (!client.events) throw new ConnectorError({ class: 'permanent', message: `calendar-source: ${s.platform} cannot list a calendar's events` });
  const r = await client.events(window, s.calendar);
  if (!r.ok) throw new ConnectorError(r.failure);
  const readAt = ctx.now();
  for (const e of r.value) {
    const c = changeOf(e, s, readAt);
    if (c) yield c;
  }
}

function verify(): VerifyResult {
  throw new ConnectionMisconfigured('calendar-source receives no webhooks: the calendar is polled, never posted to');
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Calendar as a source (SimplePractice, Jane)',
    auth: authUnion(),
    configFields: [
      { key: 'calendarPlatform', label: 'Calendar platform', type: 'select', required: true, options: CALENDARS.map((c) => ({ value: c.descriptor.id, label: c.descriptor.displayName })) },
      { key: 'calendar', label: 'Calendar', type: 'text', help: 'The calendar\'s id at the platform; empty: the account\'s default calendar.' },
      { key: 'practitioner', label: 'Practitioner', type: 'text', help: 'The name or id every event belongs to (default: the calendar); map it to a Meridian practitioner.' },
      { key: 'ignoreTitles', label: 'Titles to ignore', type: 'list', placeholder: 'Lunch, Admin', help: 'Events with exactly these titles are not bookings.' },
      POLL_MINUTES,
    ],
    signature: 'none: the calendar is polled',
    fidelity:
      'For SimplePractice and Jane, which offer no API: Meridian reads the Google, Microsoft 365/Outlook.com or CalDAV '
      + 'calendar the platform syncs appointments into, at each poll. Only the time and the event title (often just '
      + 'initials or "Busy") are known; all-day and free events, our own events and ignored titles are left out, and '
      + 'an event that disappears is cancelled. Nothing is written back: the platform would overwrite it, so staff '
      + 'edits are marked as diverging and must be made in the platform.',
    capabilities: { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook: () => {
    throw new UnreadablePayload('calendar-source receives no webhooks');
  },
  list,
};
