// YouCanBookMe (YCBM) as a booking source. Facts and their sources: ./FACTS.md.
// - Webhooks are "notification actions" whose JSON body the clinic writes from shorthand codes. They are not
//   signed, so the connection's webhook URL carries `?token=<webhookToken>` and every delivery is only a hint:
//   the booking is read back with `GET /v1/bookings/{id}` (needsFetch) before anything is applied.
// - The body we ask clinics to paste is WEBHOOK_TEMPLATES below (event word + booking id, no patient data).
// - A reschedule moves the same booking (same id; YCBM keeps `rescheduledAt`/`startRescheduledFrom`).
// - `startsAt`/`endsAt` are wall-clock times in the booking's `timeZone` (no offset); an offset or `Z` is honoured.
// - Write-back: `PATCH /v1/bookings/{id}` with `cancelled`, `noShow` or `startsAt`/`endsAt`/`timeZone`; the
//   answer is read back and a time YCBM did not take is a permanent failure (the appointment diverges).
import { instantField, jsonBody } from '../../shared/fields.ts';
import { requestJson } from '../../shared/json-api.ts';
import { verifyUrlToken } from '../../shared/signature.ts';
import {
  ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { AppointmentStatus, SourceChange } from '../../../domain/types.ts';
import { isIanaZone, localToUtc, toUtc, utcToLocal } from '../../../domain/time.ts';
import { manualWebhook } from './manual-webhook.ts';

export const PLATFORM = 'youcanbookme';

/** The payload clinics paste into the webhook action of each trigger (Method POST, no headers needed). */
export const WEBHOOK_TEMPLATES = {
  'When a booking is made': '{"event": "created", "bookingId": "{ID}"}',
  'When a booking is rescheduled': '{"event": "rescheduled", "bookingId": "{ID}"}',
  'When a booking is cancelled': '{"event": "cancelled", "bookingId": "{ID}"}',
  'When the booking is marked as a no-show': '{"event": "no_show", "bookingId": "{ID}"}',
} as const;

const EVENTS: Record<string, SourceChange['kind']> = { created: 'upsert', rescheduled: 'upsert', cancelled: 'cancel', canceled: 'cancel', no_show: 'no_show' };
/** Reminder and follow-up triggers can carry a webhook too; they say nothing new about the booking. */
const IGNORED = new Set(['reminder', 'follow_up', 'followup']);
const ID = /^[A-Za-z0-9_-]{1,128}$/;
/** The default field set leaves out the booker's answers and the stamps, so every read names its fields. */
const FIELDS = 'id,profileId,teamMemberId,appointmentTypesIds,createdAt,updatedAt,rescheduledAt,cancelledAt,noShowAt,'
  + 'startsAt,endsAt,timeZone,cancelled,noShow,tentative,answers,answers.code,answers.string';
const PAGE = 500;
const MAX_PAGES = 100;

interface Answer { code?: string; string?: string | null }
interface YcbmBooking {
  id?: string;
  profileId?: string;
  teamMemberId?: string | null;
  appointmentTypesIds?: string[] | null;
  createdAt?: string;
  updatedAt?: string;
  rescheduledAt?: string | null;
  cancelledAt?: string | null;
  noShowAt?: string | null;
  startsAt?: string;
  endsAt?: string;
  timeZone?: string;
  cancelled?: boolean;
  noShow?: boolean;
  tentative?: string;
  answers?: Answer[] | null;
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'YouCanBookMe');
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const body = jsonBody(req.rawBody, 'the delivery is not JSON; paste the payload template exactly');
  const { event, bookingId } = (body ?? {}) as { event?: unknown; bookingId?: unknown };
  const word = typeof event === 'string' ? event.trim().toLowerCase() : '';
  if (IGNORED.has(word)) return [];
  if (!Object.hasOwn(EVENTS, word)) throw new UnreadablePayload(`unknown event "${word.slice(0, 30)}"`);
  if (typeof bookingId !== 'string' || bookingId.includes('{')) throw new UnreadablePayload('bookingId is missing or its shorthand code was not filled in');
  if (!ID.test(bookingId)) throw new UnreadablePayload('bookingId is not a booking id');
  return [{ platform: PLATFORM, externalId: bookingId, kind: EVENTS[word], occurredAt: toUtc(req.now), needsFetch: true, appointment: {} }];
}

/** `startsAt` as YCBM gives it: a wall time in `zone`, or an instant with an offset. */
function bookingInstant(v: unknown, zone: string | undefined, what: string): string {
  if (typeof v === 'string' && /(Z|[+-]\d{2}:?\d{2})$/i.test(v)) return instantField(v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'), what);
  if (typeof v !== 'string') throw new UnreadablePayload(`${what} is missing`);
  if (!zone) throw new UnreadablePayload(`${what} has no offset and the booking no time zone`);
  try {
    return localToUtc(v, zone);
  } catch {
    throw new UnreadablePayload(`${what} is not a date-time`);
  }
}

/** The latest of the booking's own change stamps, so a late read never overwrites a newer one. */
function changedAt(b: YcbmBooking, readAt: Date): string {
  const stamps = [b.updatedAt, b.rescheduledAt, b.cancelledAt, b.noShowAt, b.createdAt]
    .map((s) => (typeof s === 'string' ? Date.parse(s) : NaN)).filter(Number.isFinite);
  return toUtc(stamps.length ? new Date(Math.max(...stamps)) : readAt);
}

function kindOf(b: YcbmBooking): { kind: SourceChange['kind']; status: AppointmentStatus } {
  if (b.cancelled || b.tentative === 'REJECTED') return { kind: 'cancel', status: 'cancelled' };
  if (b.noShow) return { kind: 'no_show', status: 'no_show' };
  return { kind: 'upsert', status: b.tentative === 'UNDECIDED' ? 'requested' : 'booked' };
}

function patientOf(answers: Answer[] | null | undefined) {
  const a = new Map((answers ?? []).filter((x) => x.code && x.string).map((x) => [x.code!.toUpperCase(), x.string!.trim()]));
  const name = [a.get('FNAME'), a.get('LNAME')].filter(Boolean).join(' ');
  return { name: name || 'Unknown patient', ...(a.get('EMAIL') ? { email: a.get('EMAIL') } : {}), ...(a.get('PHONE') ? { phone: a.get('PHONE') } : {}) };
}

function toChange(b: YcbmBooking, readAt: Date): SourceChange {
  if (typeof b.id !== 'string' || !ID.test(b.id)) throw new UnreadablePayload('the booking has no id');
  const zone = typeof b.timeZone === 'string' && isIanaZone(b.timeZone) ? b.timeZone : undefined;
  const start = bookingInstant(b.startsAt, zone, 'startsAt');
  const end = bookingInstant(b.endsAt, zone, 'endsAt');
  if (Date.parse(end) <= Date.parse(start)) throw new UnreadablePayload('endsAt is not after startsAt');
  const { kind, status } = kindOf(b);
  const practitioner = b.teamMemberId || b.profileId;
  const service = b.appointmentTypesIds?.[0];
  return {
    platform: PLATFORM, externalId: b.id, kind, occurredAt: changedAt(b, readAt), needsFetch: false,
    appointment: {
      start, end, status, ...(zone ? { timeZone: zone } : {}),
      ...(practitioner ? { practitionerRef: practitioner } : {}), ...(service ? { serviceRef: service } : {}),
      patient: { ...patientOf(b.answers), ...(zone ? { timeZone: zone } : {}) },
    },
  };
}

/** `GET /v1/bookings/{id}` (one booking) or the bookings query (a list). */
export function parseRecord(record: unknown, readAt = new Date()): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a YouCanBookMe record is a booking object or a list of them');
  return [toChange(record as YcbmBooking, readAt)];
}

function accountOf(ctx: ConnectionContext): string {
  const account = ctx.secrets.accountId ?? (ctx.config.accountId as string | undefined);
  if (!account || !ctx.secrets.apiKey) throw new ConnectorError({ class: 'auth', message: 'YouCanBookMe: accountId and apiKey are needed to read bookings' });
  return account;
}

function api(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<unknown> {
  const basic = Buffer.from(`${accountOf(ctx)}:${ctx.secrets.apiKey}`).toString('base64');
  return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Basic ${basic}` });
}

const bookingPath = (id: string) => `/bookings/${encodeURIComponent(id)}?fields=${encodeURIComponent(FIELDS)}`;

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  let record: unknown;
  try {
    record = await api(ctx, 'GET', bookingPath(change.externalId));
  } catch (err) {
    // The API confirms a booking announced as cancelled is gone (deleted): that is the cancellation.
    if (err instanceof ConnectorError && err.failure.class === 'gone' && change.kind === 'cancel') {
      return { ...change, occurredAt: toUtc(ctx.now()), needsFetch: false, appointment: { status: 'cancelled' } };
    }
    throw err;
  }
  const [full] = parseRecord(record, ctx.now());
  if (full.externalId !== change.externalId) throw new UnreadablePayload('YouCanBookMe answered with another booking');
  return { ...full, ...(change.deliveryId ? { deliveryId: change.deliveryId } : {}) };
}

const isoSeconds = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;

/** The bookings query pages with a `fromBookingId` cursor; pages are read one after another. */
async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const path = `/accounts/${encodeURIComponent(accountOf(ctx))}/bookings/query`;
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = new URLSearchParams({ after: isoSeconds(window.from), before: isoSeconds(window.to), maxResults: String(PAGE), fields: FIELDS });
    if (cursor) q.set('fromBookingId', cursor);
    const rows = await api(ctx, 'GET', `${path}?${q}`);
    if (!Array.isArray(rows)) throw new UnreadablePayload('the bookings query did not answer a list');
    const fresh = rows.filter((r: YcbmBooking) => typeof r?.id === 'string' && !seen.has(r.id));
    for (const r of fresh) seen.add((r as YcbmBooking).id!);
    yield* parseRecord(fresh, ctx.now());
    if (rows.length < PAGE || fresh.length === 0) return;
    cursor = (rows[rows.length - 1] as YcbmBooking).id;
  }
}

/** YCBM's own form of an instant: the wall time in the zone, seconds precision, no offset. */
function wallTime(instant: string, zone: string): string {
  return utcToLocal(instant, zone).toPlainDateTime().toString({ smallestUnit: 'second' });
}

function patchFor(req: WriteBackRequest): Record<string, unknown> | undefined {
  if (req.status === 'cancelled') return { cancelled: true };
  if (req.status === 'no_show') return { noShow: true };
  if (req.status === 'booked' || req.status === 'requested') {
    return { startsAt: wallTime(req.start, req.timeZone), endsAt: wallTime(req.end, req.timeZone), timeZone: req.timeZone };
  }
  return undefined;
}

/** Read the answer back: a booking that shows another state or time than we wrote must not pass as written. */
function confirmWritten(answer: unknown, req: WriteBackRequest): void {
  if (!answer || typeof answer !== 'object') return; // no body: nothing to compare
  const b = answer as YcbmBooking;
  const zone = b.timeZone && isIanaZone(b.timeZone) ? b.timeZone : req.timeZone;
  const sameTimes = () => {
    try {
      return bookingInstant(b.startsAt, zone, 'startsAt') === toUtc(req.start) && bookingInstant(b.endsAt, zone, 'endsAt') === toUtc(req.end);
    } catch {
      return false;
    }
  };
  // Only what the answer shows is compared: a field it leaves out is no evidence either way.
  const kept = req.status === 'cancelled' ? b.cancelled !== false : req.status === 'no_show' ? b.noShow !== false : b.startsAt === undefined || sameTimes();
  if (!kept) throw new ConnectorError({ class: 'permanent', message: 'YouCanBookMe did not keep the change (the booking shows another state or time)' });
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  const patch = patchFor(req);
  if (!patch) return fail({ class: 'permanent', message: `YouCanBookMe has no "${req.status}" state to write` });
  if (patch.timeZone !== undefined && !isIanaZone(req.timeZone)) return fail({ class: 'permanent', message: 'the appointment has no IANA time zone to write' });
  return outcomeOf(async () => confirmWritten(await api(ctx, 'PATCH', bookingPath(req.externalId), patch), req));
}

const templateHelp = Object.entries(WEBHOOK_TEMPLATES).map(([trigger, body]) => `${trigger}: ${body}`).join(' · ');

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'YouCanBookMe',
    defaultBaseUrl: 'https://api.youcanbook.me/v1',
    auth: [
      { key: 'accountId', label: 'Account ID (a UUID, under Account > Security; the Basic-auth user name)', secret: true, required: true },
      { key: 'apiKey', label: 'API key (starts with ak_; on a team plan, the organisation owner\'s)', secret: true, required: true },
      {
        key: 'webhookToken', label: 'Webhook token (put it in the webhook URL as ?token=…)', secret: true, required: true,
        help: `In each booking page's Notifications, add a Webhook action (Method POST, Destination URL = this connection's webhook URL with ?token=<this value>) with exactly this payload per trigger — ${templateHelp}. Put no patient fields in it.`,
      },
    ],
    webhookSecret: 'webhookToken',
    signature: 'unsigned: ?token= in the webhook URL (constant-time compare), and every delivery is confirmed by reading the booking from the API',
    fidelity:
      'YouCanBookMe signs nothing: a webhook (a JSON template with the event and booking id that the clinic pastes into '
      + 'the new-booking, reschedule, cancellation and no-show triggers, see the webhook token help) is checked by its URL '
      + 'token and the booking is read back from the API before anything is applied; reschedules keep the booking id, and '
      + 'polling repairs missed webhooks. Staff cancellations, no-shows and moves are written back and read back; a change '
      + 'YouCanBookMe does not keep marks the appointment as diverging.',
    manualWebhook: manualWebhook(WEBHOOK_TEMPLATES),
    capabilities: { webhooks: true, signedWebhooks: false, fetch: true, list: true, writeCancel: true, writeReschedule: true, writeNoShow: true },
  },
  verify,
  parseWebhook,
  parseRecord: (r) => parseRecord(r),
  fetch: fetchChange,
  list,
  writeBack,
};
