// Acuity Scheduling (Squarespace Scheduling) as a booking source. Facts: ../shared/platforms/sources-a.md §1.
// - Webhooks are form-encoded ids only (`action`, `id`, `calendarID`, `appointmentTypeID`), signed with
//   `X-Acuity-Signature: base64(HMAC-SHA256(API key, raw body))`, no timestamp: every delivery becomes a
//   `needsFetch` change and the appointment is read back with `GET /appointments/:id`; duplicates are
//   caught by the content hash of what was fetched.
// - Static webhooks send `action=scheduled`, dynamic ones `action=appointment.scheduled`: both are read.
// - A reschedule keeps the id. Status: `canceled` (+ `noShow` on canceled records).
// - `datetime` carries an offset without a colon (`-0500`); end = datetime + `duration` minutes.
import { instantField } from '../../shared/fields.ts';
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { requestJson } from '../../shared/json-api.ts';
import { acuityOAuth } from './oauth.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { isIanaZone, toUtc } from '../../../domain/time.ts';
import { subscriptions } from './subscriptions.ts';
import { directory } from './directory.ts';

export const PLATFORM = 'acuity';
const ACTIONS = new Set(['scheduled', 'rescheduled', 'canceled', 'changed']);

interface AcuityAppointment {
  id?: number | string;
  firstName?: string;
  lastName?: string;
  email?: string;
  phone?: string;
  datetime?: string;
  duration?: string | number;
  calendarID?: number | string;
  appointmentTypeID?: number | string;
  location?: string;
  notes?: string;
  timezone?: string;
  calendarTimezone?: string;
  canceled?: boolean;
  noShow?: boolean;
}

/** `2026-02-17T10:00:00-0500` → `2026-02-17T15:00:00Z`. */
export function acuityInstant(v: unknown): string {
  return instantField(typeof v === 'string' ? v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2') : v, 'datetime');
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'apiKey');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Acuity connection has no apiKey; unsigned deliveries are never accepted');
  const sig = req.headers['x-acuity-signature'];
  if (!sig) return { ok: false, reason: 'missing X-Acuity-Signature header' };
  return keys.some((k) => signatureMatches(sig, hmacSha256(k, req.rawBody), 'base64')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const form = new URLSearchParams(req.rawBody.toString('utf8'));
  const action = (form.get('action') ?? '').replace(/^appointment\./, '');
  if (action.startsWith('order.') || action === 'order') return []; // packages, gift certificates
  if (!ACTIONS.has(action)) throw new UnreadablePayload(`unknown Acuity action "${action.slice(0, 40)}"`);
  const id = form.get('id');
  if (!id || !/^\d{1,20}$/.test(id)) throw new UnreadablePayload('the delivery has no appointment id');
  return [{
    platform: PLATFORM, externalId: id, kind: action === 'canceled' ? 'cancel' : 'upsert', occurredAt: toUtc(req.now), needsFetch: true,
    appointment: {
      ...(form.get('calendarID') ? { practitionerRef: form.get('calendarID')! } : {}),
      ...(form.get('appointmentTypeID') ? { serviceRef: form.get('appointmentTypeID')! } : {}),
    },
  }];
}

function toChange(a: AcuityAppointment, occurredAt: string): SourceChange {
  if (a.id === undefined || !/^\d{1,20}$/.test(String(a.id))) throw new UnreadablePayload('the appointment has no id');
  const start = acuityInstant(a.datetime);
  const minutes = Number(a.duration);
  if (!Number.isFinite(minutes) || minutes <= 0) throw new UnreadablePayload('duration is missing');
  const end = toUtc(new Date(Date.parse(start) + minutes * 60_000));
  const kind: SourceChange['kind'] = a.canceled ? (a.noShow ? 'no_show' : 'cancel') : 'upsert';
  const zone = [a.calendarTimezone, a.timezone].find((z) => typeof z === 'string' && isIanaZone(z));
  const name = [a.firstName, a.lastName].filter(Boolean).join(' ').trim();
  return {
    platform: PLATFORM, externalId: String(a.id), kind, occurredAt, needsFetch: false,
    appointment: {
      start, end, status: kind === 'cancel' ? 'cancelled' : kind === 'no_show' ? 'no_show' : 'booked',
      ...(zone ? { timeZone: zone } : {}),
      ...(a.calendarID !== undefined ? { practitionerRef: String(a.calendarID) } : {}),
      ...(a.appointmentTypeID !== undefined ? { serviceRef: String(a.appointmentTypeID) } : {}),
      ...(a.location ? { locationRef: a.location } : {}),
      patient: {
        name: name || 'Unknown patient', ...(a.email ? { email: a.email } : {}), ...(a.phone ? { phone: a.phone } : {}),
        ...(a.timezone && isIanaZone(a.timezone) ? { timeZone: a.timezone } : {}),
      },
      ...(a.notes ? { notes: a.notes } : {}),
    },
  };
}

/** `GET /appointments/:id` (one object) or `GET /appointments` (a list). `occurredAt` is the read time. */
export function parseRecord(record: unknown, readAt = new Date()): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('an Acuity record is an appointment object or a list of them');
  return [toChange(record as AcuityAppointment, toUtc(readAt))];
}

function api(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<unknown> {
  // Connected from the web app (OAuth for apps): the access token as Bearer.
  if (ctx.secrets.accessToken) return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Bearer ${ctx.secrets.accessToken}` });
  const user = ctx.secrets.userId ?? (ctx.config.userId as string | undefined);
  if (!user || !ctx.secrets.apiKey) throw new ConnectorError({ class: 'auth', message: 'Acuity: userId and apiKey (or an OAuth accessToken) are needed to read appointments' });
  return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Basic ${Buffer.from(`${user}:${ctx.secrets.apiKey}`).toString('base64')}` });
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const record = await api(ctx, 'GET', `/appointments/${encodeURIComponent(change.externalId)}`);
  const [full] = parseRecord(record, ctx.now());
  return { ...full, deliveryId: change.deliveryId };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const q = new URLSearchParams({ minDate: window.from.toISOString().slice(0, 10), maxDate: window.to.toISOString().slice(0, 10), showall: 'true', max: '5000' });
  yield* parseRecord(await api(ctx, 'GET', `/appointments?${q}`), ctx.now());
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  const id = encodeURIComponent(req.externalId);
  return outcomeOf(() => (req.status === 'cancelled' || req.status === 'no_show'
    ? api(ctx, 'PUT', `/appointments/${id}/cancel?admin=true&noEmail=true`, { cancelNote: req.reason ?? 'Cancelled by the clinic', ...(req.status === 'no_show' ? { noShow: true } : {}) })
    : api(ctx, 'PUT', `/appointments/${id}/reschedule?admin=true`, { datetime: req.start })));
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Acuity Scheduling',
    oauth: acuityOAuth,
    defaultBaseUrl: 'https://acuityscheduling.com/api/v1',
    auth: [
      { key: 'apiKey', label: 'API key (signs webhooks; with the user id, reads appointments)', secret: true, required: true },
      { key: 'userId', label: 'User ID (Integrations page)', secret: true, required: true },
      { key: 'accessToken', label: 'OAuth access token (from connecting the account; used instead of user ID + API key to read and write)', secret: true, required: false },
    ],
    authSets: [['apiKey', 'userId'], ['accessToken']],
    webhookSecret: 'apiKey',
    signature: 'X-Acuity-Signature: base64 HMAC-SHA256 of the raw body with the API key (no timestamp: duplicates are caught by content)',
    fidelity:
      'Webhooks carry ids only: every delivery is confirmed by reading the appointment back (so nothing unverified is '
      + 'applied), then applied; reschedules keep their id. Polling by date window repairs missed webhooks. Staff '
      + 'cancellations, no-shows and reschedules are written back (admin mode, no e-mail from Acuity).',
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
