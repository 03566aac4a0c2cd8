// Bookafy as a booking source. Facts, with where each was read and what is NOT documented: ./FACTS.md.
// - REST API with the account's API key as a Bearer token. There is no documented "get one appointment"
//   call: an appointment is read by listing each staff member's appointments (`GET /appointments?email=`,
//   staff from `GET /staff_members`) and picking it by id. No documented date filter: the window is applied here.
// - Webhooks are unsigned and their payload is not documented: the connection's webhook URL carries
//   `?token=<webhookToken>`, the body is only a hint naming the appointment, and every delivery becomes a
//   `needsFetch` change confirmed by reading the appointment back. An appointment no longer listed (the API's
//   cancel is a delete) or `is_active: false` is a cancellation.
// - Write-back: cancel = `DELETE /appointments/:id`, reschedule = `PUT /appointments/:id` (form-encoded,
//   date + 12-hour times + a time-zone label, sent in UTC). No no-show in the API.
import { instantField, jsonBody } from '../../shared/fields.ts';
import { verifyUrlToken } from '../../shared/signature.ts';
import { requestJson } from '../../shared/json-api.ts';
import { failureFromResponse, networkFailure } from '../../shared/http.ts';
import {
  ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { isIanaZone, toUtc } from '../../../domain/time.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'bookafy';
/** Pagination is not in Bookafy's reference (see FACTS.md): follow `next_page` when given, never forever. */
const MAX_PAGES = 100;

export interface BookafyAppointment {
  id?: number | string;
  appointment_start_time?: string;
  appointment_end_time?: string;
  duration?: number | string;
  time_zone?: string;
  title?: string;
  description?: string;
  is_active?: boolean;
  soft_delete?: boolean;
  user_id?: number | string;
  service_id?: number | string;
  customer?: { customer_detail_hstore?: { name?: string; email?: string; phone?: string } };
}
interface StaffMember { id?: number | string; email?: string }

const ID = /^\d{1,20}$/;
const idOf = (v: unknown): string | undefined => (typeof v === 'number' || typeof v === 'string') && ID.test(String(v)) ? String(v) : undefined;

/** Bookafy's instants carry `Z` or an offset; one without would be read in the server's zone, so it is refused. */
function bookafyInstant(v: unknown, what: string): string {
  if (typeof v === 'string' && !/(Z|[+-]\d{2}:?\d{2})$/i.test(v.trim())) throw new UnreadablePayload(`${what} has no UTC offset`);
  return instantField(v, what);
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'Bookafy');
}

/** The body names an appointment (as the API's `appointment` object, or a bare appointment record); nothing in it is trusted. */
export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const body = jsonBody(req.rawBody, 'a Bookafy delivery must be JSON') as Record<string, unknown>;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new UnreadablePayload('a Bookafy delivery must be a JSON object');
  const event = String(body.event ?? body.event_type ?? '');
  const record = (body.appointment && typeof body.appointment === 'object' ? body.appointment : body) as BookafyAppointment;
  const id = idOf(record.id);
  if (!id || (record === body && record.appointment_start_time === undefined)) {
    if (/^(customer|routing_form)/.test(event)) return []; // customer records are not bookings
    throw new UnreadablePayload(`the delivery${event ? ` (${event.slice(0, 40)})` : ''} names no appointment`);
  }
  return [{
    platform: PLATFORM, externalId: id, kind: /cancel|delete/i.test(event) ? 'cancel' : 'upsert', occurredAt: toUtc(req.now), needsFetch: true,
    appointment: {
      ...(idOf(record.user_id) ? { practitionerRef: idOf(record.user_id) } : {}),
      ...(idOf(record.service_id) ? { serviceRef: idOf(record.service_id) } : {}),
    },
  }];
}

export function toChange(a: BookafyAppointment, readAt: Date): SourceChange {
  const id = idOf(a.id);
  if (!id) throw new UnreadablePayload('the appointment has no id');
  const start = bookafyInstant(a.appointment_start_time, 'appointment_start_time');
  let end: string;
  if (a.appointment_end_time !== undefined) end = bookafyInstant(a.appointment_end_time, 'appointment_end_time');
  else {
    const minutes = Number(a.duration);
    if (!Number.isFinite(minutes) || minutes <= 0) throw new UnreadablePayload('the appointment has neither an end time nor a duration');
    end = toUtc(new Date(Date.parse(start) + minutes * 60_000));
  }
  const cancelled = a.is_active === false || a.soft_delete === true;
  const who = a.customer?.customer_detail_hstore ?? {};
  return {
    // The listing carries no updated stamp, and every change is a fresh read of the current state: the read
    // time (Meridian's clock, also used when a deleted appointment is missing) orders them.
    platform: PLATFORM, externalId: id, kind: cancelled ? 'cancel' : 'upsert', occurredAt: toUtc(readAt), needsFetch: false,
    appointment: {
      start, end, status: cancelled ? 'cancelled' : 'booked',
      // `time_zone` is a Rails label ("Central Time (US & Canada)"); only an IANA name is usable as is.
      ...(a.time_zone && isIanaZone(a.time_zone) ? { timeZone: a.time_zone } : {}),
      ...(idOf(a.user_id) ? { practitionerRef: idOf(a.user_id) } : {}),
      ...(idOf(a.service_id) ? { serviceRef: idOf(a.service_id) } : {}),
      patient: {
        name: (typeof who.name === 'string' && who.name.trim()) || 'Unknown patient',
        ...(who.email ? { email: who.email } : {}), ...(who.phone ? { phone: who.phone } : {}),
      },
      ...(a.description ? { notes: a.description } : {}),
    },
  };
}

/** One appointment, a list of them, or the list answer `{ response: { appointment: [...] } }`. */
export function parseRecord(record: unknown, readAt = new Date()): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Bookafy record is an appointment object or a list of them');
  const listed = (record as { response?: { appointment?: unknown } }).response?.appointment;
  if (listed !== undefined) return parseRecord(listed, readAt);
  return [toChange(record as BookafyAppointment, readAt)];
}

function auth(ctx: ConnectionContext): Record<string, string> {
  if (!ctx.secrets.apiKey) throw new ConnectorError({ class: 'auth', message: 'Bookafy: the apiKey is needed to read appointments' });
  return { authorization: `Bearer ${ctx.secrets.apiKey}` };
}

async function getJson(ctx: ConnectionContext, path: string, query: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const q = new URLSearchParams(query).toString();
  const json = await requestJson(ctx, { method: 'GET', url: `${ctx.baseUrl}${path}${q ? `?${q}` : ''}` }, auth(ctx));
  return ((json as { response?: Record<string, unknown> } | undefined)?.response ?? {});
}

/** Writes are form-encoded (Rails `appointment[...]` fields), which requestJson does not send. */
async function sendForm(ctx: ConnectionContext, method: 'PUT' | 'DELETE', path: string, fields: Record<string, string>): Promise<void> {
  let res: Response;
  try {
    res = await ctx.fetch(`${ctx.baseUrl}${path}`, {
      method, body: new URLSearchParams(fields).toString(), signal: AbortSignal.timeout(30_000),
      headers: { ...auth(ctx), accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    });
  } catch (err) {
    throw new ConnectorError(networkFailure(err));
  }
  if (!res.ok) throw new ConnectorError(await failureFromResponse(res));
  await res.body?.cancel();
}

/** Every staff member's appointments, page by page. Throws rather than return a partial list (absence means cancelled). */
async function allAppointments(ctx: ConnectionContext): Promise<BookafyAppointment[]> {
  const staff = (await getJson(ctx, '/staff_members')).staff_members;
  if (!Array.isArray(staff)) throw new ConnectorError({ class: 'permanent', message: 'Bookafy: the staff list has no staff_members' });
  const out: BookafyAppointment[] = [];
  for (const s of staff as StaffMember[]) {
    if (!s.email) continue;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const r = await getJson(ctx, '/appointments', { email: s.email, page: String(page) });
      if (!Array.isArray(r.appointment)) throw new ConnectorError({ class: 'permanent', message: 'Bookafy: the appointment list has no appointment array' });
      out.push(...(r.appointment as BookafyAppointment[]));
      if (!(Number(r.next_page) > page)) break;
    }
  }
  return out;
}

async function findAppointment(ctx: ConnectionContext, externalId: string): Promise<BookafyAppointment | undefined> {
  return (await allAppointments(ctx)).find((a) => idOf(a.id) === externalId);
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const found = await findAppointment(ctx, change.externalId);
  const readAt = ctx.now();
  const full: SourceChange = found
    ? toChange(found, readAt)
    // Bookafy's cancel deletes the appointment: a complete listing without it confirms it is gone.
    : { platform: PLATFORM, externalId: change.externalId, kind: 'cancel', occurredAt: toUtc(readAt), needsFetch: false, appointment: { status: 'cancelled' } };
  return { ...full, ...(change.deliveryId ? { deliveryId: change.deliveryId } : {}) };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const readAt = ctx.now();
  for (const a of await allAppointments(ctx)) {
    const [c] = parseRecord(a, readAt);
    const t = Date.parse(c.appointment.start!);
    if (t >= window.from.getTime() && t < window.to.getTime()) yield c;
  }
}

/** `2026-03-10T14:05:00Z` → `["2026-03-10", "02:05 PM"]` in UTC, the form Bookafy's update takes. */
export function bookafyDateTime(instant: string): [string, string] {
  const d = new Date(instant);
  const h = d.getUTCHours();
  const hh = String(h % 12 === 0 ? 12 : h % 12).padStart(2, '0');
  return [d.toISOString().slice(0, 10), `${hh}:${String(d.getUTCMinutes()).padStart(2, '0')} ${h < 12 ? 'AM' : 'PM'}`];
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  if (req.status === 'no_show' || req.status === 'completed') {
    return fail({ class: 'permanent', message: `Bookafy's API cannot mark an appointment ${req.status === 'no_show' ? 'as a no-show' : 'completed'}` });
  }
  return outcomeOf(async () => {
    const a = await findAppointment(ctx, req.externalId);
    if (!a) throw new ConnectorError({ class: 'gone', message: 'the appointment is no longer in Bookafy' });
    const path = `/appointments/${encodeURIComponent(req.externalId)}`;
    const owner = { 'appointment[user_id]': String(a.user_id ?? '') };
    if (req.status === 'cancelled') return sendForm(ctx, 'DELETE', path, owner);
    const [date, start] = bookafyDateTime(req.start);
    const name = a.customer?.customer_detail_hstore?.name;
    return sendForm(ctx, 'PUT', path, {
      ...owner,
      ...(a.service_id !== undefined ? { 'appointment[service_id]': String(a.service_id) } : {}),
      'appointment[appointment_date]': date,
      'appointment[appointment_start_time]': start,
      'appointment[appointment_end_time]': bookafyDateTime(req.end)[1],
      'appointment[duration]': String(Math.round((Date.parse(req.end) - Date.parse(req.start)) / 60_000)),
      'appointment[time_zone]': 'UTC',
      ...(name ? { 'customer[name]': name } : {}),
    });
  });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Bookafy',
    defaultBaseUrl: 'https://app.bookafy.com/api/v2',
    auth: [
      { key: 'apiKey', label: 'API key (Settings → Integrations → API)', secret: true, required: true },
      { key: 'webhookToken', label: 'Webhook token (Meridian generates it; put it in the webhook URL as ?token=…)', secret: true, required: true },
    ],
    webhookSecret: 'webhookToken',
    signature: 'Bookafy signs nothing: the webhook URL carries ?token=<webhookToken>, and every delivery is confirmed by reading the appointment back',
    fidelity:
      'Bookafy documents no webhook payload or signature, so a delivery (to a URL carrying a secret token) only tells Meridian '
      + 'which appointment to re-read; nothing is applied before it is read back from the API. There is no API call for one '
      + 'appointment, so each read lists every staff member\'s appointments; an appointment no longer listed is treated as '
      + 'cancelled. Polling repairs missed webhooks. Staff cancellations (a delete in Bookafy) and moves are written back; '
      + 'no-shows cannot be. Time zones come from the practitioner unless Bookafy gives an IANA name.',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { webhooks: true, signedWebhooks: false, fetch: true, list: true, writeCancel: true, writeReschedule: true, writeNoShow: false, listComplete: true },
  },
  verify,
  parseWebhook,
  parseRecord: (r) => parseRecord(r),
  fetch: fetchChange,
  list,
  writeBack,
};
