// Cal.com as a booking source. Facts (with sources) in FACTS.md beside this file.
// - `X-Cal-Signature-256`: hex HMAC-SHA256 of the raw body with the webhook secret (`sha256=` prefix accepted).
// - BOOKING_CREATED / REQUESTED / RESCHEDULED / CANCELLED / REJECTED; a reschedule is a new uid with
//   `rescheduleUid` pointing at the booking it replaces. No delivery id: duplicates by content hash.
// - BOOKING_NO_SHOW_UPDATED: `payload.bookingUid` and `attendees[] { email, noShow }` only (no times): an
//   attendee marked absent is a no-show, unmarked is its undo; read back when the connection has an API key.
// - API v2 (`cal-api-version: 2024-08-13`, Bearer API key): get one booking, list by start window, cancel,
//   reschedule (a new uid again: the old booking's `rescheduledToUid` points at it), mark an attendee absent.
import { instantField, jsonBody } from '../../shared/fields.ts';
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { requestJson } from '../../shared/json-api.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload, fail, ok, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { AppointmentStatus, SourceChange } from '../../../domain/types.ts';
import { isIanaZone, toUtc } from '../../../domain/time.ts';
import { subscriptions } from './subscriptions.ts';
import { directory } from './directory.ts';

export const PLATFORM = 'cal-com';
export const API_VERSION = '2024-08-13';
const PAGE = 100;
/** How far a write-back follows `rescheduledToUid` to the latest booking of a chain. */
const MAX_CHAIN = 10;

interface Person { name?: string; email?: string; timeZone?: string; phoneNumber?: string; absent?: boolean }
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
/** The BOOKING_NO_SHOW_UPDATED payload: the attendees whose mark changed, and nothing about the booking's times. */
interface NoShowPayload { bookingUid?: string; bookingId?: number; message?: string; attendees?: { email?: string; noShow?: boolean }[] }
/** BookingOutput_2024_08_13 (only what we read). */
interface Booking {
  uid?: string;
  status?: string;
  start?: string;
  end?: string;
  hosts?: Person[];
  attendees?: Person[];
  eventTypeId?: number | null;
  eventType?: { id?: number } | null;
  location?: string | null;
  rescheduledFromUid?: string | null;
  rescheduledToUid?: string | null;
  createdAt?: string;
  updatedAt?: string;
}

const NO_SHOW_UPDATED = 'BOOKING_NO_SHOW_UPDATED';
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

function patientOf(p: Person | undefined): NonNullable<SourceChange['appointment']['patient']> | undefined {
  if (!p) return undefined;
  return {
    name: (typeof p.name === 'string' && p.name.trim()) || 'Unknown patient', ...(p.email ? { email: p.email } : {}), ...(p.phoneNumber ? { phone: p.phoneNumber } : {}),
    ...(p.timeZone && isIanaZone(p.timeZone) ? { timeZone: p.timeZone } : {}),
  };
}

/**
 * An attendee marked (or unmarked) absent after the meeting. The payload names only the attendees whose mark
 * changed: every one absent is a no-show, none absent its undo (back to booked). Some absent and some not
 * cannot be told apart from the webhook alone (which attendee is the patient?): the first listed decides
 * until the read-back, which follows the booking's first attendee as `recordChange` does. The change carries
 * no times, so the booking is read back (`needsFetch`) when the connection has an API key; without one it
 * changes the status of an appointment Meridian already holds, and is only remembered for one it never saw.
 * Cal.com sends no webhook for a host marked absent (`noShowHost`): that is not a patient's no-show.
 */
function noShowChange(env: { createdAt?: string; payload?: NoShowPayload }): SourceChange[] {
  const p = env.payload;
  if (!p || typeof p.bookingUid !== 'string' || !p.bookingUid) throw new UnreadablePayload('BOOKING_NO_SHOW_UPDATED without a bookingUid');
  const marks = Array.isArray(p.attendees) ? p.attendees.filter((a) => a && typeof a.noShow === 'boolean') : [];
  if (marks.length === 0) return []; // nothing about an attendee: no change for the appointment
  const absent = marks[0].noShow === true;
  return [{
    platform: PLATFORM,
    externalId: p.bookingUid,
    kind: absent ? 'no_show' : 'upsert',
    occurredAt: instantField(env.createdAt, 'createdAt'),
    needsFetch: true,
    appointment: { status: absent ? 'no_show' : 'booked' },
  }];
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const env = jsonBody(req.rawBody) as { triggerEvent?: string; createdAt?: string; payload?: Payload };
  const trigger = env?.triggerEvent ?? '';
  if (trigger === NO_SHOW_UPDATED) return noShowChange(env as { createdAt?: string; payload?: NoShowPayload });
  const kind = Object.hasOwn(KINDS, trigger) ? KINDS[trigger] : undefined;
  if (!kind) return []; // meetings started/ended, recordings, forms, payments
  const p = env.payload;
  if (!p || typeof p.uid !== 'string' || !p.uid) throw new UnreadablePayload(`${trigger} without a booking uid`);
  const patient = patientOf(p.attendees?.[0]);
  const pending = trigger === 'BOOKING_REQUESTED' || p.status === 'PENDING';
  return [{
    platform: PLATFORM,
    externalId: p.uid,
    kind,
    occurredAt: instantField(env.createdAt, 'createdAt'),
    ...(trigger === 'BOOKING_RESCHEDULED' && p.rescheduleUid && p.rescheduleUid !== p.uid ? { replacesExternalId: p.rescheduleUid } : {}),
    // A cancellation may name a uid Meridian never saw: the booking a write-back reschedule created (its
    // answer cannot be stored). Reading it back gives `rescheduledFromUid`, which finds the appointment.
    needsFetch: trigger === 'BOOKING_CANCELLED',
    appointment: {
      status: kind === 'cancel' ? 'cancelled' : pending ? 'requested' : 'booked',
      ...(p.startTime !== undefined ? { start: instantField(p.startTime, 'startTime'), end: instantField(p.endTime, 'endTime') } : {}),
      ...(p.organizer?.email ? { practitionerRef: p.organizer.email, practitionerEmail: p.organizer.email } : {}),
      ...(p.eventTypeId != null ? { serviceRef: String(p.eventTypeId) } : {}),
      ...(p.location ? { locationRef: p.location } : {}),
      ...(patient ? { patient } : {}),
      ...(p.additionalNotes ? { notes: p.additionalNotes } : {}),
    },
  }];
}

const RECORD_STATUS: Record<string, { kind: SourceChange['kind']; status: AppointmentStatus }> = {
  accepted: { kind: 'upsert', status: 'booked' },
  pending: { kind: 'upsert', status: 'requested' },
  cancelled: { kind: 'cancel', status: 'cancelled' },
  rejected: { kind: 'cancel', status: 'cancelled' },
};

function recordChange(b: Booking, readAt: Date): SourceChange {
  if (typeof b.uid !== 'string' || !b.uid) throw new UnreadablePayload('the booking has no uid');
  const base = Object.hasOwn(RECORD_STATUS, b.status ?? '') ? RECORD_STATUS[b.status!] : undefined;
  if (!base) throw new UnreadablePayload(`unknown booking status "${String(b.status).slice(0, 20)}"`);
  const attendee = b.attendees?.[0];
  const st = base.kind === 'upsert' && attendee?.absent ? { kind: 'no_show' as const, status: 'no_show' as const } : base;
  const host = b.hosts?.[0];
  const service = b.eventType?.id ?? b.eventTypeId;
  const patient = patientOf(attendee);
  return {
    platform: PLATFORM,
    externalId: b.uid,
    kind: st.kind,
    occurredAt: b.updatedAt ?? b.createdAt ? instantField(b.updatedAt ?? b.createdAt, 'updatedAt') : toUtc(readAt),
    ...(b.rescheduledFromUid && b.rescheduledFromUid !== b.uid ? { replacesExternalId: b.rescheduledFromUid } : {}),
    needsFetch: false,
    appointment: {
      status: st.status, start: instantField(b.start, 'start'), end: instantField(b.end, 'end'),
      ...(host?.email ? { practitionerRef: host.email, practitionerEmail: host.email } : {}),
      ...(service != null ? { serviceRef: String(service) } : {}),
      ...(b.location ? { locationRef: b.location } : {}),
      ...(patient ? { patient } : {}),
    },
  };
}

/** `GET /v2/bookings/{uid}` or `GET /v2/bookings` answers (`{ status, data }`), a booking, or a list of them. */
export function parseRecord(record: unknown, readAt = new Date()): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Cal.com record is a booking (or a list of them)');
  const r = record as { data?: unknown };
  if (r.data !== undefined) return parseRecord(r.data, readAt);
  return [recordChange(record as Booking, readAt)];
}

// ------------------------------------------------------------------ API (fetch, list, write-back)

async function api(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<{ data?: unknown; pagination?: { hasNextPage?: boolean } }> {
  const key = ctx.secrets.apiKey;
  if (!key) throw new ConnectorError({ class: 'auth', message: 'Cal.com: an API key is needed to read or change bookings' });
  const json = await requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body, headers: { 'cal-api-version': API_VERSION } }, { authorization: `Bearer ${key}` });
  return (json ?? {}) as { data?: unknown };
}

async function getBooking(ctx: ConnectionContext, uid: string): Promise<Booking> {
  const { data } = await api(ctx, 'GET', `/bookings/${encodeURIComponent(uid)}`);
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ConnectorError({ class: 'permanent', message: 'Cal.com: the answer is not one booking (a recurring series?)' });
  return data as Booking;
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  // Without an API key the signed webhook is all there is, and it is applied as it came.
  if (!ctx.secrets.apiKey) return { ...change, needsFetch: false };
  const [full] = parseRecord(await getBooking(ctx, change.externalId), ctx.now());
  // The booking read now is at least as new as the webhook that asked for it. Its `updatedAt` may be older:
  // marking an attendee absent changes the attendee, not the booking, so a read-back stamped only with
  // `updatedAt` could lose to (or tie with) the booking's own creation and be ignored as stale.
  const occurredAt = Date.parse(change.occurredAt) > Date.parse(full.occurredAt) ? change.occurredAt : full.occurredAt;
  return { ...full, occurredAt, deliveryId: change.deliveryId };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const all: Booking[] = [];
  for (let skip = 0; ; skip += PAGE) {
    const q = new URLSearchParams({
      afterStart: window.from.toISOString(), beforeEnd: window.to.toISOString(), status: 'upcoming,past,cancelled,unconfirmed',
      sortStart: 'asc', take: String(PAGE), skip: String(skip),
    });
    const page = await api(ctx, 'GET', `/bookings?${q}`);
    const items = Array.isArray(page.data) ? (page.data as Booking[]) : [];
    all.push(...items);
    if (!(page.pagination?.hasNextPage ?? items.length === PAGE)) break;
  }
  // A booking replaced by a reschedule comes last, once its successor has marked it superseded, so a
  // poll never cancels an appointment on its way to the new time.
  const ordered = [...all.filter((b) => !b.rescheduledToUid), ...all.filter((b) => b.rescheduledToUid)];
  for (const b of ordered) yield recordChange(b, ctx.now());
}

/** The latest booking of a reschedule chain (Meridian may still know an earlier uid of it). */
async function latestOf(ctx: ConnectionContext, uid: string): Promise<Booking & { uid: string }> {
  let b = await getBooking(ctx, uid);
  for (let hops = 0; b.rescheduledToUid && hops < MAX_CHAIN; hops++) b = await getBooking(ctx, b.rescheduledToUid);
  return { ...b, uid: b.uid ?? uid };
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  let b: Booking & { uid: string };
  try {
    b = await latestOf(ctx, req.externalId);
  } catch (err) {
    if (err instanceof ConnectorError) return fail(err.failure);
    throw err;
  }
  const path = `/bookings/${encodeURIComponent(b.uid)}`;
  const closed = b.status === 'cancelled' || b.status === 'rejected';
  if (req.status === 'cancelled') {
    return closed ? ok(undefined) : outcomeOf(() => api(ctx, 'POST', `${path}/cancel`, { cancellationReason: req.reason ?? 'Cancelled by the clinic' }));
  }
  if (closed) return fail({ class: 'permanent', message: 'the Cal.com booking is cancelled; Cal.com cannot reopen or move it' });
  const absent = req.status === 'no_show';
  const attendee = b.attendees?.[0];
  if (Boolean(attendee?.absent) !== absent) {
    if (!attendee?.email) return fail({ class: 'permanent', message: 'the Cal.com booking has no attendee to mark' });
    return outcomeOf(() => api(ctx, 'POST', `${path}/mark-absent`, { attendees: [{ email: attendee.email, absent }] }));
  }
  if (absent || Date.parse(b.start ?? '') === Date.parse(req.start)) return ok(undefined); // nothing to move (also a retried write)
  if (Date.parse(req.end) - Date.parse(req.start) !== Date.parse(b.end ?? '') - Date.parse(b.start ?? '')) {
    return fail({ class: 'permanent', message: 'Cal.com keeps the event type\'s length: only the start of a booking can be moved' });
  }
  return outcomeOf(() => api(ctx, 'POST', `${path}/reschedule`, { start: req.start, reschedulingReason: req.reason ?? 'Moved by the clinic' }));
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Cal.com',
    defaultBaseUrl: 'https://api.cal.com/v2',
    auth: [
      { key: 'webhookSecret', label: 'Webhook secret (set one: without it Cal.com signs nothing)', secret: true, required: true },
      { key: 'apiKey', label: 'API key (cal_…), for polling, read-back and writing staff edits back', secret: true, required: false },
    ],
    webhookSecret: 'webhookSecret',
    signature: 'X-Cal-Signature-256: hex HMAC-SHA256 of the raw body with the webhook secret (no timestamp)',
    fidelity:
      'Real-time webhooks for new, requested, rescheduled, cancelled and rejected bookings, and attendee no-shows '
      + 'marked or taken back (default payload, not a '
      + 'custom template); reschedules are a new booking pointing back and are stitched into one appointment. With an '
      + 'API key: cancellations are read back to follow the chain, polling by start window repairs missed webhooks, and '
      + 'staff cancellations, no-shows and moves are written back (a move keeps the event type\'s length and gives the '
      + 'booking a new uid in Cal.com).',
    capabilities: { webhooks: true, signedWebhooks: true, fetch: true, list: true, writeCancel: true, writeReschedule: true, writeNoShow: true },
  },
  verify,
  parseWebhook,
  parseRecord: (r) => parseRecord(r),
  fetch: fetchChange,
  list,
  writeBack,
  subscriptions,
  directory,
};
