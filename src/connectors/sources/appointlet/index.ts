// Appointlet as a booking source. Facts (with sources, and what the docs do not say) in FACTS.md beside this file.
// - Appointlet signs nothing: the webhook URL carries `?token=<webhookToken>`, compared in constant time.
// - Appointlet has no public API (nothing to fetch, list or write back through). A verified delivery is
//   therefore applied as sent: it carries the whole meeting, and the URL token is the only proof of origin.
//   No write capability either, so the engine marks every staff edit of an Appointlet booking as diverging.
// - Body: an Activity `{ id, type: "Activity", created_at, action: "Meeting.scheduled", entity: Meeting }`;
//   the Meeting has `id`, `name` (its meeting type's), `location`, `start`, `end` (UTC, `Z`) and `cancelled`.
//   The Activity id is the delivery id and its `created_at` orders late deliveries. A reschedule is an
//   action on the same meeting, so it keeps the id.
import { instantField, jsonBody } from '../../shared/fields.ts';
import { verifyUrlToken } from '../../shared/signature.ts';
import { UnreadablePayload, type SourceConnector, type VerifyResult, type WebhookRequest } from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'appointlet';

/** Meeting actions that change a booking, by the verb after `Meeting.`. */
const MEETING_KINDS: Record<string, SourceChange['kind']> = {
  scheduled: 'upsert', rescheduled: 'upsert', approved: 'upsert', cancelled: 'cancel', declined: 'cancel',
};
/** Tags change neither time nor status. */
const IGNORED_MEETING_VERBS = new Set(['tagged', 'untagged']);

interface Meeting {
  id?: number | string;
  type?: string;
  name?: string | null;
  location?: string | null;
  start?: string;
  end?: string;
  cancelled?: boolean | null;
}

interface Activity {
  id?: number | string;
  type?: string;
  created_at?: string;
  action?: string;
  entity?: Meeting | null;
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'Appointlet');
}

function readActivity(raw: Buffer): Activity {
  const body = jsonBody(raw);
  if (!body || typeof body !== 'object' || (body as Activity).type !== 'Activity' || typeof (body as Activity).action !== 'string') {
    throw new UnreadablePayload('the body is not an Appointlet activity');
  }
  return body as Activity;
}

/** `Meeting.Cancelled` / `Meeting.canceled` → `cancelled` (the docs spell it both ways in prose). */
function verbOf(action: string): { model: string; verb: string } {
  const [model, verb = ''] = action.split('.', 2);
  return { model, verb: verb.toLowerCase().replace(/^canceled$/, 'cancelled') };
}

function meetingId(m: Meeting | null | undefined): string {
  const id = m?.id;
  if ((typeof id !== 'number' && typeof id !== 'string') || !/^\d{1,20}$/.test(String(id))) throw new UnreadablePayload('the meeting has no id');
  if (m!.type !== undefined && m!.type !== 'Meeting') throw new UnreadablePayload('the activity entity is not a meeting');
  return String(id);
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const act = readActivity(req.rawBody);
  const { model, verb } = verbOf(act.action!);
  // Attendee.* (per attendee of a possibly group meeting, reminders) and meeting type / member / field
  // events are not bookings of their own; the Meeting.* events carry every change to the meeting.
  if (model !== 'Meeting' || IGNORED_MEETING_VERBS.has(verb)) return [];
  const actionKind = Object.hasOwn(MEETING_KINDS, verb) ? MEETING_KINDS[verb] : undefined;
  if (!actionKind) throw new UnreadablePayload(`unknown Appointlet meeting action "${verb.slice(0, 40)}"`);
  const m = act.entity!;
  const externalId = meetingId(m);
  const kind = m.cancelled === true ? 'cancel' : actionKind;
  const meetingType = typeof m.name === 'string' && m.name.trim() ? m.name.trim() : undefined;
  return [{
    platform: PLATFORM,
    externalId,
    kind,
    occurredAt: instantField(act.created_at, 'created_at'),
    ...(act.id !== undefined && act.id !== null ? { deliveryId: String(act.id) } : {}),
    needsFetch: false,
    appointment: {
      start: instantField(m.start, 'start'),
      end: instantField(m.end, 'end'),
      status: kind === 'cancel' ? 'cancelled' : 'booked',
      // The documented meeting names no host: its meeting type's name is what a connection maps to a
      // practitioner (or it sets a default practitioner) and to a service.
      ...(meetingType ? { practitionerRef: meetingType, serviceRef: meetingType } : {}),
      ...(typeof m.location === 'string' && m.location.trim() ? { locationRef: m.location.trim() } : {}),
    },
  }];
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Appointlet',
    auth: [{
      key: 'webhookToken', label: 'Webhook URL token', secret: true, required: true,
      help: 'An unguessable value; in Appointlet (Settings → Webhooks → Add Webhook) use this connection\'s webhook URL with ?token=<this value> appended',
    }],
    webhookSecret: 'webhookToken',
    signature: 'none from Appointlet: the webhook URL carries ?token=<webhookToken> (compared in constant time); no timestamp',
    fidelity:
      'Real-time webhooks for scheduled, approved, rescheduled, cancelled and declined meetings; a reschedule keeps '
      + 'the meeting id and late deliveries are ordered by the activity time. Appointlet signs nothing and has no public '
      + 'API, so a delivery is trusted on the URL token alone, nothing missed can be polled, the documented payload '
      + 'gives no attendee details (appointments show "Unknown patient") and staff edits cannot be written back: '
      + 'each is marked as diverging.',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { webhooks: true, signedWebhooks: false, fetch: false, list: false, writeCancel: false, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook,
};
