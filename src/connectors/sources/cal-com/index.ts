// Cal.com as a booking source. Facts (with sources) in FACTS.md beside this file.
// - `X-Cal-Signature-256`: hex HMAC-SHA256 of the raw body with the webhook secret (`sha256=` prefix accepted).
// - BOOKING_CREATED / REQUESTED / RESCHEDULED / CANCELLED / REJECTED; a reschedule is a new uid with
//   `rescheduleUid` pointing at the booking it replaces. No delivery id: duplicates by content hash.
import { instantField } from '../../shared/fields.ts';
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { ConnectionMisconfigured, UnreadablePayload, type SourceConnector, type VerifyResult, type WebhookRequest } from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { isIanaZone } from '../../../domain/time.ts';

export const PLATFORM = 'cal-com';

interface Person { name?: string; email?: string; timeZone?: string }
interface Payload {
  uid?: string;
  rescheduleUid?: string | null;
  startTime?: string;
  endTime?: string;
  organizer?: Person;
  attendees?: Person[];
  eventTypeId?: number | string | null;
  location?: string | null;
  status?: string;
  additionalNotes?: string | null;
}

const KINDS: Record<string, SourceChange['kind']> = {
  BOOKING_CREATED: 'upsert', BOOKING_REQUESTED: 'upsert', BOOKING_RESCHEDULED: 'upsert', BOOKING_CANCELLED: 'cancel', BOOKING_REJECTED: 'cancel',
};

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'webhookSecret');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Cal.com connection has no webhookSecret; unsigned deliveries are never accepted');
  const sig = req.headers['x-cal-signature-256']?.replace(/^sha256=/, '');
  if (!sig) return { ok: false, reason: 'missing X-Cal-Signature-256 header' };
  return keys.some((k) => signatureMatches(sig, hmacSha256(k, req.rawBody), 'hex')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  let env: { triggerEvent?: string; createdAt?: string; payload?: Payload };
  try {
    env = JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    throw new UnreadablePayload('the body is not JSON');
  }
  const trigger = env?.triggerEvent ?? '';
  const kind = Object.hasOwn(KINDS, trigger) ? KINDS[trigger] : undefined;
  if (!kind) return []; // meetings started/ended, recordings, forms, payments
  const p = env.payload;
  if (!p || typeof p.uid !== 'string' || !p.uid) throw new UnreadablePayload(`${trigger} without a booking uid`);
  const patient = p.attendees?.[0];
  const pending = trigger === 'BOOKING_REQUESTED' || p.status === 'PENDING';
  return [{
    platform: PLATFORM,
    externalId: p.uid,
    kind,
    occurredAt: instantField(env.createdAt, 'createdAt'),
    ...(trigger === 'BOOKING_RESCHEDULED' && p.rescheduleUid && p.rescheduleUid !== p.uid ? { replacesExternalId: p.rescheduleUid } : {}),
    needsFetch: false,
    appointment: {
      status: kind === 'cancel' ? 'cancelled' : pending ? 'requested' : 'booked',
      ...(p.startTime !== undefined ? { start: instantField(p.startTime, 'startTime'), end: instantField(p.endTime, 'endTime') } : {}),
      ...(p.organizer?.email ? { practitionerRef: p.organizer.email, practitionerEmail: p.organizer.email } : {}),
      ...(p.eventTypeId != null ? { serviceRef: String(p.eventTypeId) } : {}),
      ...(p.location ? { locationRef: p.location } : {}),
      ...(patient ? {
        patient: {
          name: patient.name?.trim() || 'Unknown patient', ...(patient.email ? { email: patient.email } : {}),
          ...(patient.timeZone && isIanaZone(patient.timeZone) ? { timeZone: patient.timeZone } : {}),
        },
      } : {}),
      ...(p.additionalNotes ? { notes: p.additionalNotes } : {}),
    },
  }];
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Cal.com',
    defaultBaseUrl: 'https://api.cal.com/v2',
    auth: [{ key: 'webhookSecret', label: 'Webhook secret (set one: without it Cal.com signs nothing)', secret: true, required: true }],
    webhookSecret: 'webhookSecret',
    signature: 'X-Cal-Signature-256: hex HMAC-SHA256 of the raw body with the webhook secret (no timestamp)',
    fidelity:
      'Real-time webhooks for new, requested, rescheduled, cancelled and rejected bookings (default payload, not a '
      + 'custom template); reschedules are a new booking pointing back and are stitched into one appointment. No '
      + 'polling or write-back yet.',
    capabilities: { webhooks: true, signedWebhooks: true, fetch: false, list: false, writeCancel: false, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook,
};
