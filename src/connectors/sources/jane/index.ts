// Jane App through the Jane Developer Platform (partner API, read-only). Facts, with where each was read: ./FACTS.md.
// - Per-clinic host and dated version: `https://<clinicHost>/api/2026-01-01` (a connection's baseUrl overrides).
//   OAuth 2.0 code + PKCE, short-lived bearer tokens, rotating refresh tokens: ./oauth.ts.
// - Polling: the first poll lists the window by `start_at`; every later one asks only for what changed,
//   `updated_at[gte]=<stamp>`, paged by `page[cursor]`. Appointment records carry no `updated_at` of their own,
//   so the stamp kept in syncState is the time the poll started, less an overlap for clock skew (what the
//   overlap lists twice is caught by the engine's content hash).
// - Appointments name their patient by id only: `GET /patients/{id}`, once per patient per poll.
// - 100 requests per minute per endpoint: a poll waits out a 429's Retry-After (a big first poll reads many
//   patients); a single fetch hands the throttled failure to the engine, which retries after it.
// - Webhook deliveries are not publicly documented (body, signature): a delivery is only a trigger, accepted
//   with the `?token=` URL token, naming an appointment that is read back before anything is applied.
// - A reschedule keeps the appointment id. No write-back: the API has no create, move or cancel.
import { callJson } from '../../shared/json-api.ts';
import { failureFromAnswer } from '../../shared/http.ts';
import { instantField, jsonBody } from '../../shared/fields.ts';
import { verifyUrlToken } from '../../shared/signature.ts';
import {
  ConnectorError, UnreadablePayload,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest,
} from '../../types.ts';
import type { AppointmentStatus, Patient, SourceChange } from '../../../domain/types.ts';
import { toUtc } from '../../../domain/time.ts';
import { janeOAuth, janeTokens } from './oauth.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'jane';
export const API_VERSION = '2026-01-01';
/** Re-list this much before the last poll's start: Jane's clock and ours may differ a little. */
const OVERLAP_MS = 5 * 60_000;
/** Wait out at most this long per 429 during a poll, and at most this many times per request. */
const MAX_WAIT_MS = 60_000;
const MAX_WAITS = 3;
const MAX_PAGES = 1000;

/** `archived` counts as cancelled: the booking no longer holds the practitioner's time, so it must leave the calendars. */
const STATES: Record<string, { kind: SourceChange['kind']; status: AppointmentStatus }> = {
  reserved: { kind: 'upsert', status: 'booked' },
  booked: { kind: 'upsert', status: 'booked' },
  arrived: { kind: 'upsert', status: 'booked' },
  no_show: { kind: 'no_show', status: 'no_show' },
  cancelled: { kind: 'cancel', status: 'cancelled' },
  archived: { kind: 'cancel', status: 'cancelled' },
};

interface JaneAppointment {
  id?: string;
  start_at?: string;
  end_at?: string;
  staff_member_id?: string;
  patient_id?: string;
  location_id?: string;
  treatment_id?: string;
  state?: string;
}

interface JanePatient {
  first_name?: string;
  last_name?: string;
  email?: string;
  phone_numbers?: { type?: string; number?: string }[];
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const idOf = (v: unknown): string | undefined => (typeof v === 'string' && ID.test(v) ? v : undefined);

/** Instants to the second, as Jane's date-time filters require. */
const stamp = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export function patientOf(p: JanePatient): Patient {
  const name = [p.first_name, p.last_name].filter(Boolean).join(' ').trim();
  const phones = p.phone_numbers ?? [];
  const phone = (phones.find((n) => n.type === 'mobile') ?? phones[0])?.number;
  return { name: name || 'Unknown patient', ...(p.email ? { email: p.email } : {}), ...(phone ? { phone } : {}) };
}

/** `GET /appointments/{id}` (one object) or a list page's `items`; `occurredAt` is the read time (no updated stamp). */
export function parseRecord(record: unknown, readAt = new Date(), patient?: Patient): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Jane record is an appointment object or a list of them');
  const items = (record as { items?: unknown }).items;
  if (items !== undefined) return parseRecord(items, readAt);
  const a = record as JaneAppointment;
  const externalId = idOf(a.id);
  if (!externalId) throw new UnreadablePayload('the appointment has no id');
  const st = Object.hasOwn(STATES, a.state ?? '') ? STATES[a.state!] : undefined;
  if (!st) throw new UnreadablePayload(`unknown appointment state "${String(a.state).slice(0, 20)}"`);
  return [{
    platform: PLATFORM, externalId, kind: st.kind, occurredAt: toUtc(readAt), needsFetch: false,
    appointment: {
      start: instantField(a.start_at, 'start_at'), end: instantField(a.end_at, 'end_at'), status: st.status,
      ...(a.staff_member_id ? { practitionerRef: a.staff_member_id } : {}),
      ...(a.treatment_id ? { serviceRef: a.treatment_id } : {}),
      ...(a.location_id ? { locationRef: a.location_id } : {}),
      ...(patient ? { patient } : {}),
    },
  }];
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'Jane');
}

/** A delivery only triggers a read-back of the appointment it names; one naming none (a ping) is ignored. */
export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const body = jsonBody(req.rawBody) as { id?: unknown; appointment_id?: unknown; event_id?: unknown; data?: { id?: unknown; appointment_id?: unknown } };
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new UnreadablePayload('the body is not a JSON object');
  const data = body.data && typeof body.data === 'object' ? body.data : {};
  // The appointment's own field first: a top-level `id` may be the event's.
  const externalId = idOf(body.appointment_id) ?? idOf(data.appointment_id) ?? idOf(data.id) ?? idOf(body.id);
  if (!externalId) return [];
  const deliveryId = idOf(body.event_id);
  return [{ platform: PLATFORM, externalId, kind: 'upsert', occurredAt: toUtc(req.now), needsFetch: true, appointment: {}, ...(deliveryId ? { deliveryId } : {}) }];
}

// ---------------------------------------------------------------- API

const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;

function apiBase(ctx: ConnectionContext): string {
  if (ctx.baseUrl) return ctx.baseUrl;
  const host = ctx.config.clinicHost;
  if (typeof host !== 'string' || !HOST.test(host)) throw new ConnectorError({ class: 'permanent', message: 'Jane: config.clinicHost must be the clinic\'s Jane host, e.g. myclinic.janeapp.com' });
  return `https://${host}/api/${API_VERSION}`;
}

async function get(ctx: ConnectionContext, path: string): Promise<Record<string, unknown> | undefined> {
  const a = await callJson(ctx, { method: 'GET', url: `${apiBase(ctx)}${path}` }, janeTokens(ctx), (t) => ({ authorization: `Bearer ${t}` }));
  if (a.kind === 'ok') return a.json;
  throw new ConnectorError(a.kind === 'failed' ? a.failure : failureFromAnswer(a.status, a.json, a.retryAfterMs));
}

/** For polls: a 429 is waited out (Retry-After, bounded) instead of failing a listing half-way. */
async function patiently<T>(work: () => Promise<T>): Promise<T> {
  for (let waits = 0; ; waits++) {
    try {
      return await work();
    } catch (err) {
      const f = err instanceof ConnectorError ? err.failure : undefined;
      if (f?.class !== 'throttled' || waits >= MAX_WAITS || (f.retryAfterMs ?? MAX_WAIT_MS + 1) > MAX_WAIT_MS) throw err;
      await new Promise((r) => setTimeout(r, f.retryAfterMs));
    }
  }
}

/** The patient of an appointment; undefined when Jane no longer has them (the stored name is kept). */
async function readPatient(ctx: ConnectionContext, id: string | undefined): Promise<Patient | undefined> {
  if (!id || !ID.test(id)) return undefined;
  try {
    return patientOf((await get(ctx, `/patients/${encodeURIComponent(id)}`)) ?? {});
  } catch (err) {
    if (err instanceof ConnectorError && err.failure.class === 'gone') return undefined;
    throw err;
  }
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const record = (await get(ctx, `/appointments/${encodeURIComponent(change.externalId)}`)) as JaneAppointment | undefined;
  const readAt = ctx.now();
  const [full] = parseRecord(record ?? {}, readAt, await readPatient(ctx, record?.patient_id));
  return { ...full, deliveryId: change.deliveryId };
}

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const state = ctx.syncState ?? {};
  const startedAt = ctx.now().getTime();
  const since = Number.isFinite(Date.parse(state.updatedSince ?? '')) ? state.updatedSince : undefined;
  const filter: Record<string, string> = since
    ? { 'updated_at[gte]': since, sort: 'updated_at' }
    : { 'start_at[gte]': stamp(window.from.getTime()), 'start_at[lte]': stamp(window.to.getTime()), sort: 'start_at' };
  const patients = new Map<string, Patient | undefined>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = new URLSearchParams({ ...filter, ...(cursor ? { 'page[cursor]': cursor } : {}) });
    const body = await patiently(() => get(ctx, `/appointments?${q}`));
    if (!Array.isArray(body?.items)) throw new ConnectorError({ class: 'transient', message: 'Jane: the appointment list has no items' });
    const readAt = ctx.now();
    for (const a of body.items as JaneAppointment[]) {
      const pid = a?.patient_id;
      if (pid && !patients.has(pid)) patients.set(pid, await patiently(() => readPatient(ctx, pid)));
      yield* parseRecord(a, readAt, pid ? patients.get(pid) : undefined);
    }
    if (body.hasNextPage !== true) {
      // Only once everything was listed; the engine saves it after applying what was yielded.
      state.updatedSince = stamp(Math.max(startedAt - OVERLAP_MS, since ? Date.parse(since) : 0));
      return;
    }
    if (typeof body.cursor !== 'string' || !body.cursor || body.cursor === cursor) throw new ConnectorError({ class: 'permanent', message: 'Jane: a next page was announced without a new cursor' });
    cursor = body.cursor;
  }
  throw new ConnectorError({ class: 'permanent', message: `Jane: more than ${MAX_PAGES} pages of appointments` });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Jane App (partner API)',
    oauth: janeOAuth,
    auth: [
      { key: 'clientId', label: 'OAuth client id (Jane Developer Platform partner app)', secret: true, required: true },
      { key: 'clientSecret', label: 'OAuth client secret (confidential clients only)', secret: true, required: false },
      { key: 'refreshToken', label: 'Refresh token (from connecting the clinic; Jane rotates it, Meridian stores each new one)', secret: true, required: true },
      { key: 'webhookToken', label: 'Webhook URL token', secret: true, required: false, help: 'Only for webhooks: an unguessable value; the webhook target_url registered with Jane ends in ?token=<this value>' },
    ],
    webhookSecret: 'webhookToken',
    signature: 'none verifiable (Jane\'s signing is not publicly documented): a ?token= in the webhook URL (webhookToken), and every appointment is read back from the API',
    fidelity:
      'For clinics whose Jane account has partner API access (Jane Developer Platform); others can use an ICS calendar '
      + 'feed instead. Meridian polls Jane for changed appointments; webhooks only make that faster, since each delivery '
      + 'is read back from the API before anything is applied. Cancelled and archived appointments become cancellations, '
      + 'no-shows are kept; reschedules keep their id. Jane\'s API is read-only, so staff edits in Meridian are marked as '
      + 'diverging and must be repeated in Jane.',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { webhooks: true, signedWebhooks: false, fetch: true, list: true, writeCancel: false, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook,
  parseRecord: (r) => parseRecord(r),
  fetch: fetchChange,
  list,
};
