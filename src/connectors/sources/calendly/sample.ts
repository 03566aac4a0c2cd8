// Signed Calendly webhooks made from a platform-neutral SampleBooking: for `meridian send-sample`,
// the demo, the end-to-end test and the benchmark. The shape follows the captured samples in
// ../shared/platforms/samples/calendly (invitee.created / invitee.canceled / invitee_no_show.created).
import { createHash, createHmac } from 'node:crypto';
import { ConnectionMisconfigured, type SampleBooking } from '../../types.ts';

const API = 'https://api.calendly.com';

function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The invitee URI Meridian uses as the external id of a sample booking. */
export function sampleInviteeUri(bookingId: string): string {
  return `${API}/scheduled_events/${uuidFrom(`event:${bookingId}`)}/invitees/${bookingId}`;
}

function micro(iso: string): string {
  return new Date(iso).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function sampleWebhook(b: SampleBooking, secrets: Record<string, string>, now: Date): { rawBody: Buffer; headers: Record<string, string> } {
  const key = secrets.signingKey;
  if (!key) throw new ConnectionMisconfigured('the Calendly connection has no signingKey');
  const at = micro(now.toISOString());
  const uri = sampleInviteeUri(b.bookingId);
  const eventUri = uri.slice(0, uri.indexOf('/invitees/'));
  const host = b.hostRef ?? `${API}/users/${uuidFrom('host')}`;
  const payload = {
    cancel_url: `https://calendly.com/cancellations/${b.bookingId}`,
    ...(b.event === 'canceled' ? { cancellation: { canceled_by: b.patient.name, canceler_type: 'invitee', created_at: at, reason: b.replacedBy ? 'Rescheduled' : 'Cannot make it' } } : {}),
    created_at: at,
    email: b.patient.email ?? null,
    event: eventUri,
    first_name: null,
    invitee_scheduled_by: null,
    last_name: null,
    name: b.patient.name,
    new_invitee: b.replacedBy ? sampleInviteeUri(b.replacedBy) : null,
    no_show: b.event === 'no_show' ? { uri: `${API}/invitee_no_shows/${uuidFrom(`noshow:${b.bookingId}`)}`, created_at: at } : null,
    old_invitee: b.replaces ? sampleInviteeUri(b.replaces) : null,
    payment: null,
    questions_and_answers: [],
    reconfirmation: null,
    reschedule_url: `https://calendly.com/reschedulings/${b.bookingId}`,
    rescheduled: Boolean(b.event === 'canceled' && b.replacedBy),
    routing_form_submission: null,
    scheduled_event: {
      created_at: at,
      end_time: micro(b.end),
      event_guests: [],
      event_memberships: [{ user: host, user_email: b.hostEmail ?? null, user_name: null }],
      event_type: b.serviceRef ?? `${API}/event_types/${uuidFrom('service')}`,
      invitees_counter: { total: 1, active: b.event === 'canceled' ? 0 : 1, limit: 1 },
      location: { type: 'physical', location: 'Clinic' },
      meeting_notes_html: null,
      meeting_notes_plain: null,
      name: 'Appointment',
      start_time: micro(b.start),
      status: b.event === 'canceled' ? 'canceled' : 'active',
      updated_at: at,
      uri: eventUri,
    },
    scheduling_method: null,
    status: b.event === 'canceled' ? 'canceled' : 'active',
    text_reminder_number: null,
    timezone: b.timeZone,
    tracking: { utm_campaign: null, utm_source: null, utm_medium: null, utm_content: null, utm_term: null, salesforce_uuid: null },
    updated_at: at,
    uri,
  };
  const event = b.event === 'created' ? 'invitee.created' : b.event === 'canceled' ? 'invitee.canceled' : 'invitee_no_show.created';
  const body = JSON.stringify({ created_at: at, created_by: host, event, payload });
  const t = Math.floor(now.getTime() / 1000);
  const sig = createHmac('sha256', key).update(`${t}.${body}`).digest('hex');
  return { rawBody: Buffer.from(body), headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${sig}` } };
}
