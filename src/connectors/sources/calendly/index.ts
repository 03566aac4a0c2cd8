// Calendly (API v2) as a booking source. Facts: ../shared/platforms/sources-a.md §2.
// - Webhooks: `Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(signingKey, "<t>.<raw body>")>`,
//   3-minute replay window. No delivery id: duplicates are caught by the engine's content hash.
// - The external id is the invitee URI (not the scheduled event: group events have many invitees).
// - A reschedule is `invitee.canceled` (rescheduled: true, new_invitee) + `invitee.created` (old_invitee).
// - Write-back cancel: a second cancel is answered 403 "Event is already canceled"; an event found cancelled
//   after a 403 counts as done (a write-back retried after a crash, or the patient was quicker).
import { instantField } from '../../shared/fields.ts';
import { hmacSha256, parseKeyValueHeader, secretsFor, signatureMatches, withinWindow } from '../../shared/signature.ts';
import { requestJson } from '../../shared/json-api.ts';
import { heldTokens } from '../../shared/oauth.ts';
import { calendlyOAuth, TOKEN_URL } from './oauth.ts';
import {
  ConnectionMisconfigured, ConnectorError, UnreadablePayload, fail, outcomeOf,
  type ConnectionContext, type ListWindow, type SourceConnector, type VerifyResult, type WebhookRequest, type WriteBackRequest, type WriteOutcome,
} from '../../types.ts';
import type { SourceChange } from '../../../domain/types.ts';
import { isIanaZone } from '../../../domain/time.ts';
import { sampleWebhook } from './sample.ts';
import { subscriptions } from './subscriptions.ts';
import { directory } from './directory.ts';

export const PLATFORM = 'calendly';
const HEADER = 'calendly-webhook-signature';
const TOLERANCE_SECONDS = 180;

// ------------------------------------------------------------------ payload shapes (only what we read)

interface Membership { user?: string; user_email?: string | null }
interface ScheduledEvent {
  uri?: string;
  start_time?: string;
  end_time?: string;
  event_type?: string;
  status?: string;
  location?: { type?: string; location?: string | null } | null;
  event_memberships?: Membership[];
}
interface Invitee {
  uri?: string;
  name?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
  status?: string;
  timezone?: string | null;
  created_at?: string;
  updated_at?: string;
  rescheduled?: boolean;
  old_invitee?: string | null;
  new_invitee?: string | null;
  text_reminder_number?: string | null;
  no_show?: { uri?: string; created_at?: string } | null;
  cancellation?: { created_at?: string } | null;
  questions_and_answers?: { question?: string; answer?: string }[] | null;
  scheduled_event?: ScheduledEvent | null;
  event?: string;
}
interface Envelope { event?: string; created_at?: string; payload?: Invitee }

const INVITEE_URI = /^https:\/\/[^/]+\/scheduled_events\/[^/]+\/invitees\/[^/]+$/;

/** One invitee (with its embedded scheduled event) as a change of `kind`. */
function toChange(inv: Invitee, kind: SourceChange['kind'], occurredAt: string, event?: ScheduledEvent | null): SourceChange {
  if (typeof inv.uri !== 'string' || !INVITEE_URI.test(inv.uri)) throw new UnreadablePayload('the invitee has no valid uri');
  const ev = event ?? inv.scheduled_event ?? undefined;
  const host = ev?.event_memberships?.[0];
  // Types are checked, not trusted: a field of the wrong type is as unreadable as a missing one.
  const name = (typeof inv.name === 'string' ? inv.name.trim() : '') || [inv.first_name, inv.last_name].filter((x) => typeof x === 'string' && x).join(' ').trim();
  const notes = (Array.isArray(inv.questions_and_answers) ? inv.questions_and_answers : [])
    .filter((q) => q && typeof q.answer === 'string' && q.answer)
    .map((q) => `${q.question ?? 'Question'}: ${q.answer}`)
    .join('\n');
  const appointment: SourceChange['appointment'] = {
    status: kind === 'cancel' ? 'cancelled' : kind === 'no_show' ? 'no_show' : 'booked',
  };
  if (ev?.start_time !== undefined || ev?.end_time !== undefined) {
    appointment.start = instantField(ev.start_time, 'scheduled_event.start_time');
    appointment.end = instantField(ev.end_time, 'scheduled_event.end_time');
  }
  // Calendly's zone is the invitee's (for the patient's display); the location decides the appointment's.
  if (inv.timezone && isIanaZone(inv.timezone)) appointment.timeZone = inv.timezone;
  if (host?.user) appointment.practitionerRef = host.user;
  if (host?.user_email) appointment.practitionerEmail = host.user_email;
  if (ev?.event_type) appointment.serviceRef = ev.event_type;
  if (ev?.location?.location) appointment.locationRef = ev.location.location;
  if (name || inv.email) {
    appointment.patient = {
      name: name || 'Unknown patient',
      ...(inv.email ? { email: inv.email } : {}),
      ...(inv.text_reminder_number ? { phone: inv.text_reminder_number } : {}),
      ...(inv.timezone && isIanaZone(inv.timezone) ? { timeZone: inv.timezone } : {}),
    };
  }
  if (notes) appointment.notes = notes;
  return {
    platform: PLATFORM,
    externalId: inv.uri,
    kind,
    occurredAt,
    ...(kind === 'upsert' && inv.old_invitee ? { replacesExternalId: inv.old_invitee } : {}),
    appointment,
    needsFetch: false,
  };
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new UnreadablePayload('the body is not JSON');
  }
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'signingKey');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Calendly connection has no signingKey; unsigned deliveries are never accepted');
  const header = req.headers[HEADER];
  if (!header) return { ok: false, reason: 'missing Calendly-Webhook-Signature header' };
  const parts = parseKeyValueHeader(header);
  const t = parts.get('t')?.[0];
  const sigs = parts.get('v1') ?? [];
  if (!t || !/^\d{1,12}$/.test(t) || sigs.length === 0) return { ok: false, reason: 'malformed Calendly-Webhook-Signature header' };
  if (!withinWindow(Number(t), req.now, TOLERANCE_SECONDS)) return { ok: false, reason: 'signature timestamp outside the 3-minute window (replay or clock skew)' };
  for (const key of keys) {
    const expected = hmacSha256(key, t, '.', req.rawBody);
    if (sigs.some((s) => signatureMatches(s, expected, 'hex'))) return { ok: true };
  }
  return { ok: false, reason: 'signature does not match' };
}

/** Booking events and what they mean (sources-a.md §2, "Status values and reschedules"). */
const EVENT_KINDS: Record<string, SourceChange['kind']> = {
  'invitee.created': 'upsert',
  'invitee.canceled': 'cancel',
  'invitee_no_show.created': 'no_show',
  'invitee_no_show.deleted': 'upsert',
};

export function parseWebhook(req: WebhookRequest): SourceChange[] {
  const env = parseJson(req.rawBody) as Envelope;
  if (!env || typeof env !== 'object' || typeof env.event !== 'string') throw new UnreadablePayload('not a Calendly webhook envelope (no event)');
  const inv = env.payload;
  const occurredAt = () => instantField(env.created_at ?? inv?.updated_at, 'created_at');
  const kind = Object.hasOwn(EVENT_KINDS, env.event) ? EVENT_KINDS[env.event] : undefined;
  if (!kind) return []; // routing forms, event types, recaps: not bookings
  if (!inv || typeof inv !== 'object') throw new UnreadablePayload(`${env.event} without a payload`);
  return [toChange(inv, kind, occurredAt())];
}

/**
 * A record from the API: an Invitee resource (`GET /scheduled_events/{e}/invitees/{i}` → `resource`),
 * optionally with its event as `{ invitee, event }`, the wrapper `{ resource }`, or a list of these.
 */
export function parseRecord(record: unknown): SourceChange[] {
  if (Array.isArray(record)) return record.flatMap(parseRecord);
  if (!record || typeof record !== 'object') throw new UnreadablePayload('a Calendly record is an object or a list of objects');
  const r = record as { resource?: unknown; invitee?: Invitee; event?: ScheduledEvent | string; collection?: unknown[] };
  if (Array.isArray(r.collection)) return r.collection.flatMap(parseRecord);
  if (r.resource) return parseRecord(r.resource);
  const inv: Invitee = r.invitee ?? (record as Invitee);
  const ev = typeof r.event === 'object' ? r.event : inv.scheduled_event;
  const occurred = instantField(inv.updated_at ?? inv.created_at, 'updated_at');
  const kind: SourceChange['kind'] = inv.status === 'canceled' || ev?.status === 'canceled' ? 'cancel' : inv.no_show ? 'no_show' : 'upsert';
  return [toChange(inv, kind, occurred, ev)];
}

// ------------------------------------------------------------------ API (fetch, list, write-back)

/**
 * The connection's bearer token: the personal access token, or the OAuth access token refreshed before it
 * expires (2 h) when the connection holds a refresh token (single-use: one held session per connection).
 */
async function bearer(ctx: ConnectionContext): Promise<string> {
  const s = ctx.secrets;
  if (s.personalAccessToken) return s.personalAccessToken;
  if (s.refreshToken && s.clientId) {
    const t = await heldTokens(ctx, () => ({
      tokenUrl: String(ctx.config.tokenUrl ?? TOKEN_URL), clientId: s.clientId, clientSecret: s.clientSecret || undefined,
      refreshToken: s.refreshToken, accessToken: s.accessToken || undefined, expiresAt: s.expiresAt ? Number(s.expiresAt) : undefined,
    }))();
    if (typeof t !== 'string') throw new ConnectorError({ ...t, message: `Calendly: ${t.message}` });
    return t;
  }
  if (s.accessToken) return s.accessToken;
  throw new ConnectorError({ class: 'auth', message: 'the Calendly connection has no access token' });
}

/** One API call with the connection's token; failures are thrown classified (ConnectorError). */
async function api(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = await bearer(ctx);
  return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Bearer ${token}` });
}

/** A path under the connection's base URL for a Calendly resource URI (base URL overridable in tests). */
function pathOf(uri: string): string {
  return new URL(uri).pathname;
}

async function fetchChange(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange> {
  const inv = ((await api(ctx, 'GET', pathOf(change.externalId))) as { resource?: Invitee } | undefined)?.resource ?? {};
  // The scheduled event adds times and host; without it the invitee alone is still applied.
  const event = inv.event
    ? await api(ctx, 'GET', pathOf(inv.event)).then((r) => (r as { resource?: ScheduledEvent } | undefined)?.resource, () => undefined)
    : undefined;
  const [c] = parseRecord({ invitee: inv, event });
  return { ...c, kind: change.kind, occurredAt: change.occurredAt, deliveryId: change.deliveryId };
}

interface Page<T> { collection?: T[]; pagination?: { next_page_token?: string | null } }

async function* list(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange> {
  const owner = (ctx.config.organization as string | undefined) ?? (ctx.config.user as string | undefined);
  if (!owner) throw new ConnectionMisconfigured('set config.organization (or config.user) to the Calendly URI to poll');
  const scope = ctx.config.organization ? 'organization' : 'user';
  const eventsPath = (pageToken?: string) => `/scheduled_events?${new URLSearchParams({
    [scope]: owner, min_start_time: window.from.toISOString(), max_start_time: window.to.toISOString(), count: '100', sort: 'start_time:asc',
    ...(pageToken ? { page_token: pageToken } : {}),
  })}`;
  let next: string | undefined = eventsPath();
  while (next) {
    const page = ((await api(ctx, 'GET', next)) ?? {}) as Page<ScheduledEvent>;
    for (const ev of page.collection ?? []) {
      if (!ev.uri) continue;
      const inviteesPath = (pageToken?: string) => `${pathOf(ev.uri!)}/invitees?count=100${pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : ''}`;
      let inviteesNext: string | undefined = inviteesPath();
      while (inviteesNext) {
        const ib = ((await api(ctx, 'GET', inviteesNext)) ?? {}) as Page<Invitee>;
        for (const i of ib.collection ?? []) yield* parseRecord({ invitee: i, event: ev });
        const tok = ib.pagination?.next_page_token;
        inviteesNext = tok ? inviteesPath(tok) : undefined;
      }
    }
    const tok = page.pagination?.next_page_token;
    next = tok ? eventsPath(tok) : undefined;
  }
}

/** Whether the scheduled event at `eventPath` is cancelled at Calendly (a failed read counts as no). */
async function alreadyCancelled(ctx: ConnectionContext, eventPath: string): Promise<boolean> {
  const ev = await api(ctx, 'GET', eventPath).then((r) => (r as { resource?: ScheduledEvent } | undefined)?.resource, () => undefined);
  return ev?.status === 'canceled';
}

async function writeBack(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>> {
  if (req.status === 'cancelled') {
    const eventPath = pathOf(req.externalId).replace(/\/invitees\/[^/]+$/, '');
    return outcomeOf(async () => {
      try {
        await api(ctx, 'POST', `${eventPath}/cancellation`, { reason: req.reason ?? 'Cancelled by the clinic' });
      } catch (err) {
        // Calendly refuses a second cancel with 403 "Event is already canceled" (its OpenAPI lists that message
        // beside "not allowed" and "Event in the past"). A write-back retried after a crash, or an event the
        // patient cancelled meanwhile, is already where we want it: read the event, and a cancelled one is done.
        if (!(err instanceof ConnectorError) || err.failure.status !== 403 || !(await alreadyCancelled(ctx, eventPath))) throw err;
      }
    });
  }
  if (req.status === 'no_show') return outcomeOf(() => api(ctx, 'POST', '/invitee_no_shows', { invitee: req.externalId }));
  return fail({ class: 'permanent', message: 'Calendly has no API to move a booking; the patient must use the reschedule link' });
}

export const connector: SourceConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'source',
    displayName: 'Calendly',
    oauth: calendlyOAuth,
    defaultBaseUrl: 'https://api.calendly.com',
    auth: [
      { key: 'signingKey', label: 'Webhook signing key', secret: true, required: true, help: 'The signing_key of the webhook subscription (always set one: without it Calendly sends unsigned deliveries).' },
      { key: 'personalAccessToken', label: 'Personal access token', secret: true, required: false, help: 'For polling, fetching and writing cancellations / no-shows back.' },
      { key: 'accessToken', label: 'OAuth access token (refreshed automatically)', secret: true, required: false },
      { key: 'refreshToken', label: 'OAuth refresh token (from connecting the account; Calendly rotates it, Meridian stores each new one)', secret: true, required: false },
      { key: 'clientId', label: 'OAuth app client id', secret: true, required: false },
      { key: 'clientSecret', label: 'OAuth app client secret', secret: true, required: false },
    ],
    // Webhooks carry the whole booking: the signing key alone makes the connection work; polls and write-back need a token.
    apiSets: [['personalAccessToken'], ['accessToken']],
    webhookSecret: 'signingKey',
    signature: 'Calendly-Webhook-Signature: HMAC-SHA256 (hex) of "<t>.<raw body>" with the subscription signing key; 3-minute replay window',
    fidelity:
      'Real-time webhooks for new bookings, cancellations and no-shows (paid Calendly plans); reschedules arrive as a '
      + 'cancel + new booking pair and are stitched into one appointment. Polling by start-time window repairs missed '
      + 'webhooks. Staff cancellations and no-shows are written back; Calendly has no API to move a booking.',
    capabilities: { webhooks: true, signedWebhooks: true, fetch: true, list: true, writeCancel: true, writeReschedule: false, writeNoShow: true },
  },
  verify,
  parseWebhook,
  parseRecord,
  fetch: fetchChange,
  list,
  writeBack,
  sampleWebhook,
  subscriptions,
  directory,
};
