// Square Appointments (Bookings API) as a booking source. Facts: ../shared/platforms/sources-a.md §3.
// - `x-square-hmacsha256-signature`: base64 HMAC-SHA256 (signature key, verbatim) over the notification URL
//   exactly as registered followed by the raw body. The URL comes from the connection's configuration
//   (`config.notificationUrl`), never rebuilt from the request (a proxy changing the scheme breaks it);
//   the request URL is the fallback.
// - `booking.created` / `booking.updated`; the booking's `version` orders changes (a lower version never
//   overwrites a higher one; Square retries for 72 hours); `event_id` is the delivery id.
// - The payload has no patient: the change is completed by reading the booking and its customer back
//   (`needsFetch`). End = start_at + the segments' durations (the transition time is a buffer, not visit).
// - Polls: ListBookings serves at most 31 days of start times per call (longer is refused 400), so the poll
//   window is read as consecutive ranges of at most 31 days, each booking yielded once.
import { instantField, jsonBody } from '../../shared/fields.ts';
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { requestJson } from '../../shared/json-api.ts';
import { heldTokens } from '../../shared/oauth.ts';
import { PRODUCTION, squareOAuth } from './oauth.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { AppointmentStatus, SourceChange } from '../../../domain/types.ts';
import { toUtc } from '../../../domain/time.ts';
import { subscriptions } from './subscriptions.ts';
import { directory } from './directory.ts';

export const PLATFORM = 'square';
const API_VERSION = '2025-08-20';

interface Segment { duration_minutes?: number; team_member_id?: string; service_variation_id?: string }
interface Booking {
  id?: string;
  version?: number;
  status?: string;
  updated_at?: string;
  created_at?: string;
  location_id?: string;
  customer_id?: string;
  customer_note?: string;
  start_at?: string;
  appointment_segments?: Segment[];
}
interface Customer { given_name?: string; family_name?: string; email_address?: string; phone_number?: string }

const STATUS: Record<string, { kind: SourceChange['kind']; status: AppointmentStatus }> = {
  PENDING: { kind: 'upsert', status: 'requested' },
  ACCEPTED: { kind: 'upsert', status: 'booked' },
  DECLINED: { kind: 'cancel', status: 'cancelled' },
  CANCELLED_BY_CUSTOMER: { kind: 'cancel', status: 'cancelled' },
  CANCELLED_BY_SELLER: { kind: 'cancel', status: 'cancelled' },
  NO_SHOW: { kind: 'no_show', status: 'no_show' },
};

export function toChange(b: Booking, o: { deliveryId?: string; customer?: Customer } = {}): SourceChange {
  if (typeof b.id !== 'string' || !b.id) throw new UnreadablePayload('the booking has no id');
  const st = Object.hasOwn(STATUS, b.status ?? '') ? STATUS[b.status!] : undefined;
  if (!st) throw new UnreadablePayload(`unknown booking status "${String(b.status).slice(0, 30)}"`);
  const start = instantField(b.start_at, 'start_at');
  const minutes = (b.appointment_segments ?? []).reduce((n, s) => n + (Number(s.duration_minutes) || 0), 0);
  if (minutes <= 0) throw new UnreadablePayload('the booking has no duration');
  const seg = b.appointment_segments?.[0];
  const c = o.customer;
  const name = [c?.given_name, c?.family_name].filter(Boolean).join(' ').trim();
  return {
    platform: PLATFORM,
    externalId: b.id,
    kind: st.kind,
    occurredAt: instantField(b.updated_at ?? b.created_at, 'updated_at'),
    ...(typeof b.version === 'number' ? { version: b.version } : {}),
    ...(o.deliveryId ? { deliveryId: o.deliveryId } : {}),
    needsFetch: !c && Boolean(b.customer_id),
    appointment: {
      start, end: toUtc(new Date(Date.parse(start) + minutes * 60_000)), status: st.status,
      ...(seg?.team_member_id ? { practitionerRef: seg.team_member_id } : {}),
      ...(seg?.service_variation_id ? { serviceRef: seg.service_variation_id } : {}),
      ...(b.location_id ? { locationRef: b.location_id } : {}),
      ...(c ? { patient: { name: name || 'Unknown patient', ...(c.email_address ? { email: c.email_address } : {}), ...(c.phone_number ? { phone: c.phone_number } : {}) } } : {}),
      ...(b.customer_note ? { notes: b.customer_note } : {}),
    },
  };
}

export function verify(req: WebhookRequest, secrets: Record<string, string>, config: Record<string, unknown> = {}): VerifyResult {
  const keys = secretsFor(secrets, 'signatureKey');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Square connection has no signatureKey; unsigned deliveries are never accepted');
  const sig = req.headers['x-square-hmacsha256-signature'];
  if (!sig) return { ok: false, reason: 'missing x-square-hmacsha256-signature header' };
  const url = (config.notificationUrl as string | undefined) ?? req.url;
  return keys.some((k) => signatureMatches(sig, hmacSha256(k, url, req.rawBody), 'base64'))
    ? { ok: true }
    : { ok: false, reason: 'signature does not match (is config.notificationUrl exactly the URL registered with Square?)' };
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const env = jsonBody(req.rawBody) as { type?: string; event_id?: string; data?: { object?: { booking?: Booking } } };
  if (!env || typeof env !== 'object') throw new UnreadablePayload('not a Square event');
  if (env.type !== 'booking.created' && env.type !== 'booking.updated') return [];
  const booking = env.data?.object?.booking;
  if (!booking || typeof booking !== 'object') throw new UnreadablePayload(`${env.type} without a booking`);
  return [toChange(booking, { deliveryId: typeof env.event_id === 'string' ? env.event_id : undefined })];
}

/** `RetrieveBookingResponse` / `ListBookingsResponse` bodies, a Booking, or `{ booking, customer }`. */
export function parseRecord(record: unknown): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap(parseRecord);
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Square record is a booking (or a list of them)');
  const r = record as { bookings?: unknown[]; booking?: Booking; customer?: Customer };
  if (Array.isArray(r.bookings)) return r.bookings.flatMap(parseRecord);
  if (r.booking) return [toChange(r.booking, { customer: r.customer })];
  return [toChange(record as Booking)];
}

/**
 * The access token; with a refresh token and the application's credentials (connected from the web app) it is
 * refreshed ahead of its expiry (30 days) through ObtainToken (JSON), the same refresh token staying valid.
 */
async function bearer(ctx: ConnectionContext): Promise<string> {
  const s = ctx.secrets;
  if (s.refreshToken && s.clientId && s.clientSecret) {
    const t = await heldTokens(ctx, () => ({
      tokenUrl: String(ctx.config.tokenUrl ?? `${ctx.baseUrl || PRODUCTION}/oauth2/token`), clientId: s.clientId, clientSecret: s.clientSecret,
      refreshToken: s.refreshToken, accessToken: s.accessToken || undefined, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined, format: 'json',
    }))();
    if (typeof t !== 'string') throw new ConnectorError({ ...t, message: `Square: ${t.message}` });
    return t;
  }
  if (!s.accessToken) throw new ConnectorError({ class: 'auth', message: 'Square: an access token is needed to read bookings' });
  return s.accessToken;
}

async function api(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const token = await bearer(ctx);
  const json = await requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body, headers: { 'square-version': API_VERSION } }, { authorization: `Bearer ${token}` });
  return (json ?? {}) as Record<string, unknown>;
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const { booking } = (await api(ctx, 'GET', `/v2/bookings/${encodeURIComponent(change.externalId)}`)) as { booking?: Booking };
  if (!booking) throw new ConnectorError({ class: 'transient', message: 'Square: the booking answer had no booking' });
  const customer = booking.customer_id
    ? ((await api(ctx, 'GET', `/v2/customers/${encodeURIComponent(booking.customer_id)}`)) as { customer?: Customer }).customer
    : undefined;
  return { ...toChange(booking, { customer: customer ?? {} }), deliveryId: change.deliveryId };
}

/** The longest start_at range one ListBookings call may ask for (Square: 31 days; longer is refused with 400). */
export const MAX_LIST_RANGE_MS = 31 * 86_400_000;

/** The poll window cut into consecutive start_at ranges of at most MAX_LIST_RANGE_MS each. */
export function listRanges(window: ListWindow): { min: Date; max: Date }[] {
  const out: { min: Date; max: Date }[] = [];
  const end = window.to.getTime();
  let from = window.from.getTime();
  do {
    const to = Math.min(from + MAX_LIST_RANGE_MS, end);
    out.push({ min: new Date(from), max: new Date(to) });
    from = to;
  } while (from < end);
  return out;
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  // ListBookings serves at most 31 days of start times per call: a longer poll window (7 days back + 90 ahead by
  // default) is read as consecutive ranges. Ranges share their boundary instant, so a booking starting exactly
  // there can come back twice: each booking is yielded once.
  const seen = new Set<string>();
  for (const range of listRanges(window)) {
    let cursor: string | undefined;
    do {
      const q = new URLSearchParams({ start_at_min: range.min.toISOString(), start_at_max: range.max.toISOString(), limit: '100', ...(cursor ? { cursor } : {}) });
      const page = (await api(ctx, 'GET', `/v2/bookings?${q}`)) as { bookings?: Booking[]; cursor?: string };
      for (const b of page.bookings ?? []) {
        if (typeof b.id === 'string') {
          if (seen.has(b.id)) continue;
          seen.add(b.id);
        }
        yield toChange(b);
      }
      cursor = page.cursor;
    } while (cursor);
  }
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  if (req.status === 'no_show') return fail({ class: 'permanent', message: 'Square has no API to mark a no-show' });
  const id = encodeURIComponent(req.externalId);
  return outcomeOf(async () => {
    const { booking } = (await api(ctx, 'GET', `/v2/bookings/${id}`)) as { booking?: Booking };
    const version = booking?.version;
    const key = `${req.externalId}:${req.status}:${req.start}`;
    if (req.status === 'cancelled') await api(ctx, 'POST', `/v2/bookings/${id}/cancel`, { idempotency_key: key, booking_version: version });
    else await api(ctx, 'PUT', `/v2/bookings/${id}`, { idempotency_key: key, booking: { version, start_at: req.start } });
  });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Square Appointments',
    oauth: squareOAuth,
    defaultBaseUrl: 'https://connect.squareup.com',
    auth: [
      { key: 'signatureKey', label: 'Webhook subscription signature key', secret: true, required: true },
      { key: 'accessToken', label: 'Access token (OAuth, APPOINTMENTS_ALL_READ)', secret: true, required: true },
      { key: 'refreshToken', label: 'Refresh token (from connecting the seller; the access token is then refreshed automatically)', secret: true, required: false },
      { key: 'clientId', label: 'Application ID (OAuth)', secret: true, required: false },
      { key: 'clientSecret', label: 'Application secret (OAuth)', secret: true, required: false },
      { key: 'applicationToken', label: 'Application personal access token (only to create the webhook subscription)', secret: true, required: false, help: 'The access token of your Square application itself, shown in the Square Developer Console on the application\'s Credentials page. Square accepts only this token for webhook subscriptions, never a seller\'s OAuth token; without it, add the subscription by hand (Webhooks → Subscriptions) and paste its signature key.' },
    ],
    authSets: [['signatureKey', 'accessToken']],
    webhookSecret: 'signatureKey',
    signature: 'x-square-hmacsha256-signature: base64 HMAC-SHA256 of the notification URL (config.notificationUrl) + raw body',
    fidelity:
      'Real-time webhooks for every booking change (seller-level scopes and Appointments Plus/Premium needed for '
      + 'Dashboard bookings); the patient is read from the Customers API; Square\'s version orders changes, so a late '
      + 'retry never undoes a newer state. Staff cancellations and moves are written back; no-shows cannot be.',
    capabilities: { webhooks: true, signedWebhooks: true, fetch: true, list: true, writeCancel: true, writeReschedule: true, writeNoShow: false },
  },
  verify,
  parseWebhook,
  parseRecord,
  fetch: fetchChange,
  list,
  writeBack,
  subscriptions,
  directory: (ctx) => directory(ctx, api),
};
