// Setmore as a booking source, polled. Facts, with where each was read: ./FACTS.md.
// - Auth: the clinic's long-lived refresh token is exchanged with `GET /o/oauth2/token?refreshToken=…` for an
//   access token (`data.token.access_token`, `expires_in`), sent as `Authorization: Bearer …`. The access token
//   is kept in memory per connection and re-minted a minute before it expires (or once when Setmore refuses it);
//   nothing is stored unless Setmore hands back a new refresh token (then through ctx.saveSecrets).
// - No webhooks and no status field: a cancelled appointment simply stops being listed. `list` returns every
//   appointment of the window (listComplete) and the engine cancels the ones missing, behind its safety valve.
//   So a page that cannot be read fails the whole poll: a partial listing would cancel real bookings.
// - `GET /bookingapi/appointments?startDate&endDate` takes DD-MM-YYYY dates; which zone Setmore reads them in is
//   not documented, so the window's UTC dates are widened by a day each side and the answer filtered by instant.
//   Paged by `cursor` (`data.cursor`) until a page is empty or carries no cursor.
// - Times are UTC with minute precision (`2026-02-24T17:00Z`). No modified stamp exists: `occurredAt` is the
//   read time, and unchanged appointments are caught by the engine's content hash.
// - No write-back: the documented API creates appointments but documents no update, reschedule or cancel.
import { createHash } from 'node:crypto';
import { callJson, requestJson, type TokenSource } from '../../shared/json-api.ts';
import { failureFromAnswer } from '../../shared/http.ts';
import { instantField } from '../../shared/fields.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload,
  type ConnectionContext, type ConnectorFailure, type ListWindow, type SourceConnector, type VerifyResult,
} from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { toUtc } from '../../../domain/time.ts';
import { directory } from './directory.ts';

export const PLATFORM = 'setmore';
const DAY_MS = 86_400_000;
/** Re-mint this long before the access token's stated expiry, so a poll never starts with a dying token. */
const EARLY_MS = 60_000;
/** 500 pages is far beyond any clinic's window: more means the cursor is not advancing. */
const MAX_PAGES = 500;

interface SetmoreAppointment {
  key?: string;
  duration?: number | string;
  start_time?: string;
  end_time?: string;
  staff_key?: string;
  service_key?: string;
  customer?: { first_name?: string; last_name?: string; email_id?: string };
}

/** A UTC date as Setmore's query wants it: `2026-03-08T07:30:00Z` → `08-03-2026`. */
export function setmoreDate(d: Date): string {
  const [y, m, day] = d.toISOString().slice(0, 10).split('-');
  return `${day}-${m}-${y}`;
}

/** The query dates covering a window: its UTC dates widened by one day each side. */
export function queryDates(window: ListWindow): { startDate: string; endDate: string } {
  return { startDate: setmoreDate(new Date(window.from.getTime() - DAY_MS)), endDate: setmoreDate(new Date(window.to.getTime() + DAY_MS)) };
}

function toChange(a: SetmoreAppointment, readAt: Date): SourceChange {
  if (typeof a.key !== 'string' || !a.key) throw new UnreadablePayload('the appointment has no key');
  const start = instantField(a.start_time, 'start_time');
  let end: string;
  if (a.end_time !== undefined) end = instantField(a.end_time, 'end_time');
  else {
    const minutes = Number(a.duration);
    if (!Number.isFinite(minutes) || minutes <= 0) throw new UnreadablePayload('end_time and duration are missing');
    end = toUtc(new Date(Date.parse(start) + minutes * 60_000));
  }
  const c = a.customer ?? {};
  const name = [c.first_name, c.last_name].filter(Boolean).join(' ').trim();
  return {
    platform: PLATFORM, externalId: a.key, kind: 'upsert', occurredAt: toUtc(readAt), needsFetch: false,
    appointment: {
      start, end, status: 'booked',
      ...(a.staff_key ? { practitionerRef: a.staff_key } : {}),
      ...(a.service_key ? { serviceRef: a.service_key } : {}),
      patient: { name: name || 'Unknown patient', ...(c.email_id ? { email: c.email_id } : {}) },
    },
  };
}

/** One appointment, a list of them, or a whole `GET /bookingapi/appointments` answer; `occurredAt` is the read time. */
export function parseRecord(record: unknown, readAt = new Date()): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap((r) => parseRecord(r, readAt));
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Setmore record is an appointment object or a list of them');
  const rows = (record as { data?: { appointments?: unknown } }).data?.appointments;
  if (rows !== undefined) return parseRecord(rows, readAt);
  return [toChange(record as SetmoreAppointment, readAt)];
}

export function verify(): VerifyResult {
  throw new ConnectionMisconfigured('Setmore sends no webhooks: a Setmore connection is polled, never posted to');
}

// ---------------------------------------------------------------- API

interface AccessToken {
  value: string;
  /** Epoch ms; undefined when Setmore stated no lifetime (then kept until refused). */
  expiresAt?: number;
}

/** Access tokens and in-flight mints by connection (and refresh token, so a replaced one is never mixed up). */
const tokens = new Map<string, AccessToken>();
const minting = new Map<string, Promise<string | ConnectorFailure>>();

async function mint(ctx: ConnectionContext, key: string, refreshToken: string): Promise<string | ConnectorFailure> {
  let json: { response?: unknown; data?: { token?: { access_token?: unknown; expires_in?: unknown; refresh_token?: unknown } } } | undefined;
  try {
    json = (await requestJson(ctx, { method: 'GET', url: `${ctx.baseUrl}/o/oauth2/token?${new URLSearchParams({ refreshToken })}` }, {})) as typeof json;
  } catch (err) {
    if (!(err instanceof ConnectorError)) throw err;
    const f = err.failure;
    // A refused exchange is a credentials problem, never "the appointment is gone".
    return f.class === 'throttled' || f.class === 'transient' ? f : { ...f, class: 'auth', message: `Setmore refused the refresh token: ${f.message}` };
  }
  const t = json?.data?.token;
  if (json?.response === false || typeof t?.access_token !== 'string' || !t.access_token) {
    return { class: 'auth', message: 'Setmore refused the refresh token (no access token in the answer)' };
  }
  const seconds = Number(t.expires_in);
  tokens.set(key, { value: t.access_token, expiresAt: Number.isFinite(seconds) && seconds > 0 ? ctx.now().getTime() + seconds * 1000 : undefined });
  if (typeof t.refresh_token === 'string' && t.refresh_token && t.refresh_token !== refreshToken) await ctx.saveSecrets?.({ refreshToken: t.refresh_token });
  return t.access_token;
}

export function tokenSource(ctx: ConnectionContext): TokenSource {
  const refreshToken = ctx.secrets.refreshToken;
  const key = `${ctx.connectionId}\u0000${ctx.baseUrl}\u0000${createHash('sha256').update(refreshToken ?? '').digest('hex')}`;
  return async (rejected) => {
    if (!refreshToken) return { class: 'auth', message: 'Setmore: the connection has no refreshToken' };
    const t = tokens.get(key);
    if (t && t.value !== rejected && (t.expiresAt === undefined || ctx.now().getTime() < t.expiresAt - EARLY_MS)) return t.value;
    let p = minting.get(key);
    if (!p) {
      tokens.delete(key);
      p = mint(ctx, key, refreshToken).finally(() => minting.delete(key));
      minting.set(key, p);
    }
    return p;
  };
}

async function api(ctx: ConnectionContext, path: string): Promise<unknown> {
  const a = await callJson(ctx, { method: 'GET', url: `${ctx.baseUrl}${path}` }, tokenSource(ctx), (t) => ({ authorization: `Bearer ${t}` }));
  if (a.kind === 'ok') return a.json;
  throw new ConnectorError(a.kind === 'failed' ? a.failure : failureFromAnswer(a.status, a.json, a.retryAfterMs));
}

const startsIn = (c: SourceChange, w: ListWindow) => {
  const t = Date.parse(c.appointment.start!);
  return t >= w.from.getTime() && t <= w.to.getTime();
};

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const staffKey = typeof ctx.config.staffKey === 'string' && ctx.config.staffKey ? ctx.config.staffKey : undefined;
  const base = { ...queryDates(window), customerDetails: 'true', ...(staffKey ? { staff_key: staffKey } : {}) };
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = (await api(ctx, `/bookingapi/appointments?${new URLSearchParams({ ...base, ...(cursor ? { cursor } : {}) })}`)) as { data?: { appointments?: unknown; cursor?: unknown } } | undefined;
    const rows = body?.data?.appointments;
    if (!Array.isArray(rows)) throw new ConnectorError({ class: 'transient', message: 'Setmore: the appointment list has no data.appointments' });
    for (const c of parseRecord(rows, ctx.now())) if (startsIn(c, window)) yield c;
    const next = body?.data?.cursor;
    if (rows.length === 0 || typeof next !== 'string' || !next) return;
    if (seen.has(next)) throw new ConnectorError({ class: 'permanent', message: 'Setmore: the appointment cursor repeats' });
    seen.add(next);
    cursor = next;
  }
  throw new ConnectorError({ class: 'permanent', message: `Setmore: more than ${MAX_PAGES} pages of appointments; shorten pollPastDays/pollFutureDays` });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Setmore',
    defaultBaseUrl: 'https://developer.setmore.com/api/v1',
    auth: [
      { key: 'refreshToken', label: 'Refresh token (issued by Setmore on request to api@setmore.com)', secret: true, required: true },
    ],
    signature: 'none: Setmore sends no webhooks, the connection is polled',
    fidelity:
      'Setmore has no webhooks, so Meridian polls its appointment list; changes show up at the next poll. Setmore '
      + 'marks no cancellations: an appointment that is no longer listed is cancelled (behind a safety valve against '
      + 'mass cancellation). Setmore\'s API documents no way to move or cancel an appointment, so staff edits made in '
      + 'Meridian are marked as diverging and must be repeated in Setmore.',
    capabilities: { webhooks: false, signedWebhooks: false, fetch: false, list: true, listComplete: true, writeCancel: false, writeReschedule: false, writeNoShow: false },
  },
  verify,
  parseWebhook: () => {
    throw new UnreadablePayload('Setmore sends no webhooks');
  },
  parseRecord: (r) => parseRecord(r),
  list,
  directory: (ctx) => directory(ctx, api),
};
