// TimeTap as a booking source. Facts, with where each was read: ./FACTS.md.
// - API auth: `GET /sessionToken?apiKey&timestamp&signature` with signature = MD5 hex of apiKey + private key
//   (the private key is never sent); the session token then goes in `Authorization: Bearer …`. No lifetime is
//   documented, so a token is kept per connection in memory until the API refuses it (one fresh token, one retry).
// - Webhooks: TimeTap POSTs the whole appointment object on every booking, edit and deletion, and signs nothing.
//   The clinic's webhook URL carries `?token=<webhookToken>`; every delivery is only an id (`needsFetch`) and the
//   appointment is read back with `GET /appointments/{calendarId}` before anything is applied. A read that
//   answers 404 means the appointment was deleted: it is applied as a cancellation.
// - Times are wall-clock `startDate` (YYYY-MM-DD) + `startTime` (HHMM number) in the staff member's zone
//   (`staff.timeZoneCode.timeZoneCode`), falling back to `config.timeZone`; never guessed.
// - An edit keeps the `calendarId`. No version or modified stamp is documented: `occurredAt` is the read time,
//   and since every change is read back, a late delivery only ever applies the current state.
// - Write-back: cancellation only (`PUT /appointments/{id}/cancel/{sendStaffEmail}/{sendClientEmail}`); moves and
//   no-shows are not documented, so they fail permanently and Meridian marks the appointment as diverging.
import { jsonBody } from '../../shared/fields.ts';
import { createHash } from 'node:crypto';
import { callJson, requestJson, type JsonAnswer, type TokenSource } from '../../shared/json-api.ts';
import { failureFromAnswer } from '../../shared/http.ts';
import { verifyUrlToken } from '../../shared/signature.ts';
import {
  ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ConnectorFailure, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { AppointmentStatus, SourceChange } from '../../../domain/types.ts';
import { isIanaZone, localToUtc, toUtc } from '../../../domain/time.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'timetap';
/** The documented default page size of the report endpoints: a shorter page is surely the last. */
const PAGE_SIZE = 25;
/** 400 pages of 25 is 10,000 appointments in one poll window: more means the API is ignoring `pageNumber`. */
const MAX_PAGES = 400;

const STATUS: Record<string, { kind: SourceChange['kind']; status: AppointmentStatus }> = {
  OPEN: { kind: 'upsert', status: 'booked' },
  COMPLETED: { kind: 'upsert', status: 'completed' },
  CANCELLED: { kind: 'cancel', status: 'cancelled' },
  NO_SHOW: { kind: 'no_show', status: 'no_show' },
};

interface TimeTapAppointment {
  calendarId?: number | string;
  /** The webhook example in TimeTap's docs spells the id in lower case. */
  calendarid?: number | string;
  status?: string;
  startDate?: string;
  startTime?: number | string;
  endDate?: string;
  endTime?: number | string;
  reason?: { reasonId?: number | string; visitMinutes?: number };
  client?: { firstName?: string; lastName?: string; emailAddress?: string; cellPhone?: string };
  staff?: { professionalId?: number | string; email?: string; timeZoneCode?: { timeZoneCode?: string } };
  location?: { locationId?: number | string };
}

const idOf = (a: TimeTapAppointment): string | undefined => {
  const id = a.calendarId ?? a.calendarid;
  return id !== undefined && /^\d{1,20}$/.test(String(id)) ? String(id) : undefined;
};

/** `2026-02-17` + `830` in a zone → the UTC instant; `2400` is midnight at the end of the day. */
export function timetapInstant(date: unknown, time: unknown, zone: string, what: string): string {
  if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new UnreadablePayload(`${what}Date is missing`);
  // A real calendar day (2031-16-14 matches the pattern; Temporal would throw a RangeError on it).
  const midnight = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(midnight) || new Date(midnight).toISOString().slice(0, 10) !== date) throw new UnreadablePayload(`${what}Date is not a calendar date`);
  const hhmm = Number(time);
  if (!Number.isInteger(hhmm) || hhmm < 0 || hhmm > 2400 || hhmm % 100 >= 60) throw new UnreadablePayload(`${what}Time is not an HHMM time`);
  const day = hhmm === 2400 ? new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10) : date;
  const hh = String(Math.floor(hhmm / 100) % 24).padStart(2, '0');
  const mm = String(hhmm % 100).padStart(2, '0');
  return localToUtc(`${day}T${hh}:${mm}:00`, zone);
}

function zoneOf(a: TimeTapAppointment, fallback: string | undefined): string {
  const zone = [a.staff?.timeZoneCode?.timeZoneCode, fallback].find((z) => typeof z === 'string' && isIanaZone(z));
  if (!zone) throw new UnreadablePayload('the appointment carries no staff time zone and the connection has no config.timeZone');
  return zone;
}

function endOf(a: TimeTapAppointment, start: string, zone: string): string {
  if (a.endTime !== undefined) return timetapInstant(a.endDate ?? a.startDate, a.endTime, zone, 'end');
  const minutes = Number(a.reason?.visitMinutes);
  if (!Number.isFinite(minutes) || minutes <= 0) throw new UnreadablePayload('endTime is missing');
  return toUtc(new Date(Date.parse(start) + minutes * 60_000));
}

function toChange(a: TimeTapAppointment, readAt: Date, fallbackZone: string | undefined): SourceChange {
  const externalId = idOf(a);
  if (!externalId) throw new UnreadablePayload('the appointment has no calendarId');
  const st = Object.hasOwn(STATUS, a.status ?? '') ? STATUS[a.status!] : undefined;
  if (!st) throw new UnreadablePayload(`unknown appointment status "${String(a.status).slice(0, 30)}"`);
  const timeZone = zoneOf(a, fallbackZone);
  const start = timetapInstant(a.startDate, a.startTime, timeZone, 'start');
  const c = a.client ?? {};
  const name = [c.firstName, c.lastName].filter(Boolean).join(' ').trim();
  return {
    platform: PLATFORM, externalId, kind: st.kind, occurredAt: toUtc(readAt), needsFetch: false,
    appointment: {
      start, end: endOf(a, start, timeZone), timeZone, status: st.status,
      ...(a.staff?.professionalId !== undefined ? { practitionerRef: String(a.staff.professionalId) } : {}),
      ...(a.staff?.email ? { practitionerEmail: a.staff.email } : {}),
      ...(a.reason?.reasonId !== undefined ? { serviceRef: String(a.reason.reasonId) } : {}),
      ...(a.location?.locationId !== undefined ? { locationRef: String(a.location.locationId) } : {}),
      patient: { name: name || 'Unknown patient', ...(c.emailAddress ? { email: c.emailAddress } : {}), ...(c.cellPhone ? { phone: c.cellPhone } : {}) },
    },
  };
}

/** `GET /appointments/{calendarId}` (one object) or `GET /appointmentList/report` (a list); `occurredAt` is the read time. */
export function parseRecord(record: unknown, readAt = new Date(), fallbackZone?: string): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt, fallbackZone));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a TimeTap record is an appointment object or a list of them');
  return [toChange(record as TimeTapAppointment, readAt, fallbackZone)];
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'TimeTap');
}

/** The unsigned body is trusted for nothing but the id: the appointment is read back before it is applied. */
export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const body = jsonBody(req.rawBody);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new UnreadablePayload('the body is not a TimeTap appointment object');
  const externalId = idOf(body as TimeTapAppointment);
  if (!externalId) throw new UnreadablePayload('the delivery has no calendarId');
  return [{ platform: PLATFORM, externalId, kind: 'upsert', occurredAt: toUtc(req.now), needsFetch: true, appointment: {} }];
}

// ---------------------------------------------------------------- API

export function sessionSignature(apiKey: string, privateKey: string): string {
  return createHash('md5').update(apiKey + privateKey).digest('hex');
}

/** Session tokens by connection and credentials, reused until TimeTap refuses one. */
const sessions = new Map<string, string>();

function sessionSource(ctx: ConnectionContext): TokenSource {
  const { apiKey, privateKey } = ctx.secrets;
  const key = `${ctx.connectionId}\u0000${ctx.baseUrl}\u0000${apiKey}`;
  return async (rejected) => {
    if (!apiKey || !privateKey) return { class: 'auth', message: 'TimeTap: apiKey and privateKey are needed to read appointments' };
    const cached = sessions.get(key);
    if (cached && cached !== rejected) return cached;
    sessions.delete(key);
    const q = new URLSearchParams({ apiKey, timestamp: String(Math.floor(ctx.now().getTime() / 1000)), signature: sessionSignature(apiKey, privateKey) });
    try {
      const json = (await requestJson(ctx, { method: 'GET', url: `${ctx.baseUrl}/sessionToken?${q}` }, {})) as { sessionToken?: unknown } | undefined;
      if (typeof json?.sessionToken !== 'string' || !json.sessionToken) return { class: 'transient', message: 'TimeTap: the session token answer had no sessionToken' };
      sessions.set(key, json.sessionToken);
      return json.sessionToken;
    } catch (err) {
      if (!(err instanceof ConnectorError)) throw err;
      // A refused token request is a credentials problem, never "the appointment is gone".
      const f = err.failure;
      return f.class === 'throttled' || f.class === 'transient' ? f : { ...f, class: 'auth', message: `TimeTap refused the API key: ${f.message}` };
    }
  };
}

function send(ctx: ConnectionContext, method: string, path: string): Promise<JsonAnswer> {
  return callJson(ctx, { method, url: `${ctx.baseUrl}${path}` }, sessionSource(ctx), (t) => ({ authorization: `Bearer ${t}` }));
}

function failureOf(a: Exclude<JsonAnswer, { kind: 'ok' }>): ConnectorFailure {
  return a.kind === 'failed' ? a.failure : failureFromAnswer(a.status, a.json, a.retryAfterMs);
}

async function api(ctx: ConnectionContext, method: string, path: string): Promise<unknown> {
  const a = await send(ctx, method, path);
  if (a.kind !== 'ok') throw new ConnectorError(failureOf(a));
  return a.json;
}

const fallbackZone = (ctx: ConnectionContext) => (typeof ctx.config.timeZone === 'string' ? ctx.config.timeZone : undefined);

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const a = await send(ctx, 'GET', `/appointments/${encodeURIComponent(change.externalId)}`);
  if (a.kind === 'http' && a.status === 404) {
    // TimeTap fires a webhook when an appointment is deleted; reading it back confirms it is gone.
    return { platform: PLATFORM, externalId: change.externalId, kind: 'cancel', occurredAt: toUtc(ctx.now()), needsFetch: false, appointment: {}, deliveryId: change.deliveryId };
  }
  if (a.kind !== 'ok') throw new ConnectorError(failureOf(a));
  const [full] = parseRecord(a.json, ctx.now(), fallbackZone(ctx));
  return { ...full, deliveryId: change.deliveryId };
}

const dayOf = (d: Date, shiftDays: number) => new Date(d.getTime() + shiftDays * 86_400_000).toISOString().slice(0, 10);

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  // Report dates are the business's local days: a day either side keeps every UTC instant of the window.
  const base = { startDate: dayOf(window.from, -1), endDate: dayOf(window.to, 1), statusList: Object.keys(STATUS).join(','), pageSize: String(PAGE_SIZE) };
  for (let page = 1; page <= MAX_PAGES; page++) {
    const rows = await api(ctx, 'GET', `/appointmentList/report?${new URLSearchParams({ ...base, pageNumber: String(page) })}`);
    if (!Array.isArray(rows)) throw new ConnectorError({ class: 'transient', message: 'TimeTap: the appointment report is not a list' });
    yield* parseRecord(rows, ctx.now(), fallbackZone(ctx));
    if (rows.length < PAGE_SIZE) return;
  }
  throw new ConnectorError({ class: 'permanent', message: `TimeTap: more than ${MAX_PAGES} pages of appointments; shorten pollPastDays/pollFutureDays` });
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  if (req.status !== 'cancelled') {
    return fail({ class: 'permanent', message: `TimeTap's API documents no way to ${req.status === 'no_show' ? 'mark a no-show' : 'move or restore an appointment'}` });
  }
  // No e-mails from TimeTap: Meridian tells the patient and the practitioner itself.
  return outcomeOf(() => api(ctx, 'PUT', `/appointments/${encodeURIComponent(req.externalId)}/cancel/false/false`));
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'TimeTap',
    defaultBaseUrl: 'https://api.timetap.com/live',
    auth: [
      { key: 'apiKey', label: 'API key (Settings → Integrations → API Key)', secret: true, required: true },
      { key: 'privateKey', label: 'Private key (signs the session token request; never sent)', secret: true, required: true },
      { key: 'webhookToken', label: 'Webhook URL token', secret: true, required: true, help: 'An unguessable value; the webhook URL given to TimeTap ends in ?token=<this value>' },
    ],
    webhookSecret: 'webhookToken',
    signature: 'none from TimeTap: a ?token= in the webhook URL (webhookToken), and every booking is read back from the API before it is applied',
    fidelity:
      'TimeTap signs no webhooks, so a delivery only names an appointment, which Meridian then reads back from the API '
      + 'before applying it (deleted appointments become cancellations); edits keep their id. Polling by date range repairs '
      + 'missed webhooks. Staff cancellations are written back without TimeTap e-mails; moves and no-shows cannot be '
      + 'written through the API, so such edits are marked as diverging.',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { webhooks: true, signedWebhooks: false, fetch: true, list: true, writeCancel: true, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook,
  parseRecord: (r) => parseRecord(r),
  fetch: fetchChange,
  list,
  writeBack,
};
