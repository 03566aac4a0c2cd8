// SimplyBook.me as a booking source. Facts (with where they were read): ./FACTS.md.
// - The callback of the API custom feature is a JSON body of ids only (`booking_id`, `booking_hash`,
//   `company`, `notification_type` create | change | cancel | notify) and is not signed: the connection's
//   webhook URL carries `?token=<webhookToken>`, and every delivery is confirmed by reading the booking
//   back through the company administration JSON-RPC API before anything is applied.
// - Admin API: `getUserToken(company, login, password)` on `/login`, then `/admin` with the headers
//   `X-Company-Login` and `X-User-Token`. Read: `getBookingDetails(id)`, `getBookings(filter)`;
//   write: `cancelBooking(id)`, `editBook(id, eventId, unitId, clientId, date, time, endDate, endTime, 0, additional)`.
// - Times are company-local wall times (`Y-m-d H:i:s`) without an offset: the company's IANA zone comes
//   from the connection's `config.timeZone`. A reschedule keeps the booking id. There is no modified
//   stamp, so `occurredAt` is when Meridian started reading the booking (duplicates are caught by content).
import { requestJson } from '../../shared/json-api.ts';
import { urlTokenMatches } from '../../shared/signature.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ConnectorFailure, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest,
  type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { AppointmentStatus, SourceChange } from '../../../domain/types.ts';
import { isIanaZone, localToUtc, toUtc, utcToLocal } from '../../../domain/time.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'simplybook';
const NOTIFICATIONS: Record<string, SourceChange['kind'] | null> = { create: 'upsert', change: 'upsert', cancel: 'cancel', notify: null };
const WALL_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}(?::\d{2})?)$/;
const ID = /^\d{1,20}$/;

/** `getBookingDetails` (start_date_time, client_name, is_confirmed) or a `getBookings` row (start_date, client, is_confirm). */
interface Booking {
  id?: string | number;
  start_date_time?: string;
  end_date_time?: string;
  start_date?: string;
  end_date?: string;
  event_id?: string | number;
  unit_id?: string | number;
  client_id?: string | number;
  client_name?: string;
  client?: string;
  client_email?: string;
  client_phone?: string;
  is_confirmed?: string | number | boolean;
  is_confirm?: string | number | boolean;
  approve_status?: string;
  additional_fields?: { field_name?: string; value?: unknown }[];
}

const idOf = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number') && ID.test(String(v)) ? String(v) : undefined;

function callbackOf(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function verify(req: WebhookRequest, secrets: Record<string, string>, config?: Record<string, unknown>): VerifyResult {
  if (!secrets.webhookToken) throw new ConnectionMisconfigured('the SimplyBook.me connection has no webhookToken; unauthenticated callbacks are never accepted');
  if (!urlTokenMatches(req.url, secrets)) return { ok: false, reason: 'the callback URL token is missing or does not match' };
  // A callback names its company: one meant for another company must not make us read our own booking of that id.
  const company = callbackOf(req.rawBody)?.company;
  const ours = typeof config?.companyLogin === 'string' ? config.companyLogin : undefined;
  if (ours && typeof company === 'string' && company.toLowerCase() !== ours.toLowerCase()) return { ok: false, reason: 'the callback is for another company' };
  return { ok: true };
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const body = callbackOf(req.rawBody);
  if (!body) throw new UnreadablePayload('a SimplyBook.me callback is a JSON object');
  const type = String(body.notification_type ?? '');
  if (!Object.hasOwn(NOTIFICATIONS, type)) throw new UnreadablePayload(`unknown notification_type "${type.slice(0, 30)}"`);
  const kind = NOTIFICATIONS[type];
  if (kind === null) return []; // reminders ("notify") change nothing
  const id = idOf(body.booking_id);
  if (!id) throw new UnreadablePayload('the callback has no booking_id');
  return [{ platform: PLATFORM, externalId: id, kind, occurredAt: toUtc(req.now), needsFetch: true, appointment: {} }];
}

function instant(wall: unknown, zone: string, what: string): string {
  const m = typeof wall === 'string' ? WALL_TIME.exec(wall) : null;
  if (!m) throw new UnreadablePayload(`${what} is not a "Y-m-d H:i:s" time`);
  return localToUtc(`${m[1]}T${m[2]}`, zone);
}

const truthy = (v: unknown) => v === true || v === 1 || v === '1';

function statusOf(b: Booking): { kind: SourceChange['kind']; status: AppointmentStatus } {
  // Approve booking feature: 'new' waits for the admin (it counts as non-cancelled), 'cancelled' was refused.
  if (b.approve_status === 'new') return { kind: 'upsert', status: 'requested' };
  if (b.approve_status === 'cancelled') return { kind: 'cancel', status: 'cancelled' };
  return truthy(b.is_confirmed ?? b.is_confirm) ? { kind: 'upsert', status: 'booked' } : { kind: 'cancel', status: 'cancelled' };
}

function toChange(b: Booking, zone: string, readAt: Date): SourceChange {
  const id = idOf(b.id);
  if (!id) throw new UnreadablePayload('the booking has no id');
  const { kind, status } = statusOf(b);
  const name = (b.client_name ?? b.client ?? '').trim();
  return {
    platform: PLATFORM, externalId: id, kind, occurredAt: toUtc(readAt), needsFetch: false,
    appointment: {
      start: instant(b.start_date_time ?? b.start_date, zone, 'start'),
      end: instant(b.end_date_time ?? b.end_date, zone, 'end'),
      timeZone: zone, status,
      ...(idOf(b.unit_id) ? { practitionerRef: String(b.unit_id) } : {}),
      ...(idOf(b.event_id) ? { serviceRef: String(b.event_id) } : {}),
      patient: { name: name || 'Unknown patient', ...(b.client_email ? { email: b.client_email } : {}), ...(b.client_phone ? { phone: b.client_phone } : {}) },
    },
  };
}

/** One booking, a `getBookings` list (array, or object keyed by id), read as wall times in `zone`. */
export function parseRecord(record: unknown, zone: string, readAt = new Date()): SourceChange[] {
  if (!isIanaZone(zone)) throw new UnreadablePayload('the company time zone is not an IANA zone');
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, zone, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a SimplyBook.me record is a booking object or a list of them');
  if (!('id' in record)) return Object.values(record).flatMap((r) => parseRecord(r, zone, readAt));
  return [toChange(record as Booking, zone, readAt)];
}

/** The CLI has no connection: the company's zone travels with the record, `{ "timeZone": "…", "record": … }`. */
function parseWrappedRecord(input: unknown): SourceChange[] {
  const w = input as { timeZone?: unknown; record?: unknown } | null;
  if (!w || typeof w.timeZone !== 'string' || w.record === undefined) {
    throw new UnreadablePayload('SimplyBook.me times are company-local: pass { "timeZone": "<company IANA zone>", "record": <booking or list> }');
  }
  return parseRecord(w.record, w.timeZone);
}

// ---------------------------------------------------------------- the admin JSON-RPC API

function setting(ctx: ConnectionContext, key: string): string {
  const v = ctx.config[key] ?? ctx.secrets[key];
  if (typeof v !== 'string' || !v) throw new ConnectorError({ class: 'permanent', message: `SimplyBook.me: set ${key} on the connection` });
  return v;
}

function companyZone(ctx: ConnectionContext): string {
  const zone = setting(ctx, 'timeZone');
  if (!isIanaZone(zone)) throw new ConnectorError({ class: 'permanent', message: 'SimplyBook.me: config.timeZone must be the company\'s IANA time zone' });
  return zone;
}

function rpcFailure(method: string, err: { code?: unknown; message?: unknown }): ConnectorFailure {
  // Keep the platform's short message only; never echo what we sent (it may hold patient data).
  const detail = `${String(err.code ?? '')} ${String(err.message ?? '').slice(0, 160)}`.trim();
  return { class: method === 'getUserToken' ? 'auth' : 'permanent', message: `SimplyBook.me ${method} refused: ${detail}` };
}

let rpcId = 0;
async function rpc(ctx: ConnectionContext, path: '/login' | '/admin', method: string, params: unknown[], auth: Record<string, string> = {}): Promise<unknown> {
  const body = { jsonrpc: '2.0', method, params, id: ++rpcId };
  const answer = await requestJson(ctx, { method: 'POST', url: `${ctx.baseUrl.replace(/\/+$/, '')}${path}`, body }, auth) as { result?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
  if (answer?.error) throw new ConnectorError(rpcFailure(method, answer.error));
  if (!answer || !('result' in answer)) throw new ConnectorError({ class: 'transient', message: `SimplyBook.me ${method}: no JSON-RPC result` });
  return answer.result;
}

type Admin = (method: string, ...params: unknown[]) => Promise<unknown>;

/** A fresh user token per operation: its lifetime is not documented, and one login per job is cheap. */
async function admin(ctx: ConnectionContext): Promise<Admin> {
  const company = setting(ctx, 'companyLogin').toLowerCase();
  const token = await rpc(ctx, '/login', 'getUserToken', [company, setting(ctx, 'userLogin'), setting(ctx, 'userPassword')]);
  if (typeof token !== 'string' || !token) throw new ConnectorError({ class: 'auth', message: 'SimplyBook.me getUserToken returned no token' });
  return (method, ...params) => rpc(ctx, '/admin', method, params, { 'x-company-login': company, 'x-user-token': token });
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const zone = companyZone(ctx);
  const call = await admin(ctx);
  const readAt = ctx.now(); // taken before the read: a read started later sees the same or newer state
  const [full] = parseRecord(await call('getBookingDetails', change.externalId), zone, readAt);
  if (full.externalId !== change.externalId) throw new ConnectorError({ class: 'permanent', message: 'SimplyBook.me answered with another booking' });
  return { ...full, deliveryId: change.deliveryId };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const zone = companyZone(ctx);
  const day = (d: Date) => utcToLocal(d.toISOString(), zone).toPlainDate().toString();
  const call = await admin(ctx);
  // getBookings has no paging: one call per window, every booking type so cancellations are seen too.
  const readAt = ctx.now();
  const rows = await call('getBookings', { date_from: day(window.from), date_to: day(window.to), booking_type: 'all', order: 'start_date_asc' });
  yield* parseRecord(rows ?? [], zone, readAt);
}

function wall(instantUtc: string, zone: string): [date: string, time: string] {
  const z = utcToLocal(instantUtc, zone);
  return [z.toPlainDate().toString(), z.toPlainTime().toString({ smallestUnit: 'second' })];
}

async function reschedule(call: Admin, req: WriteBackRequest, zone: string): Promise<void> {
  // editBook restates the whole booking: keep its service, provider, client and intake answers.
  const b = await call('getBookingDetails', req.externalId) as Booking;
  const additional = Object.fromEntries((b.additional_fields ?? []).filter((f) => f.field_name).map((f) => [f.field_name!, f.value ?? null]));
  await call('editBook', req.externalId, idOf(b.event_id) ?? null, idOf(b.unit_id) ?? null, idOf(b.client_id) ?? null, ...wall(req.start, zone), ...wall(req.end, zone), 0, additional);
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  if (req.status !== 'cancelled' && req.status !== 'booked') {
    return fail({ class: 'permanent', message: `SimplyBook.me has no API to mark a booking as ${req.status.replace('_', '-')}` });
  }
  return outcomeOf(async () => {
    const zone = companyZone(ctx);
    const call = await admin(ctx);
    if (req.status === 'booked') return reschedule(call, req, zone);
    if ((await call('cancelBooking', req.externalId)) !== true) throw new ConnectorError({ class: 'permanent', message: 'SimplyBook.me did not cancel the booking' });
  });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'SimplyBook.me',
    defaultBaseUrl: 'https://user-api.simplybook.me',
    auth: [
      { key: 'webhookToken', label: 'Callback URL token', secret: true, required: true, help: 'An unguessable value; the Callback URL is the webhook URL with ?token=<this value>' },
      { key: 'userLogin', label: 'Admin user login (reads and writes bookings)', secret: true, required: true },
      { key: 'userPassword', label: 'Admin user password', secret: true, required: true },
    ],
    webhookSecret: 'webhookToken',
    signature: 'not signed by SimplyBook.me: ?token= in the Callback URL, and every callback is confirmed by reading the booking back',
    fidelity:
      'Callbacks carry ids only and are not signed: each is checked against the URL token and confirmed by reading the booking '
      + 'through the admin API before it is applied; reschedules keep their id. Times are company-local, read in config.timeZone '
      + '(with config.companyLogin). Polling by date window repairs missed callbacks. Staff cancellations and reschedules are '
      + 'written back; no-shows are not (SimplyBook.me statuses are company-defined).',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { webhooks: true, signedWebhooks: false, fetch: true, list: true, writeCancel: true, writeReschedule: true, writeNoShow: false },
  },
  verify,
  parseWebhook,
  parseRecord: parseWrappedRecord,
  fetch: fetchChange,
  list,
  writeBack,
};
