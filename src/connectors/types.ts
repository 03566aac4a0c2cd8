// Connector interfaces (DESIGN.md §2). A platform lives in one folder under sources/ or targets/,
// exports a descriptor and implements one of these interfaces. Connectors never touch the store:
// everything they need is passed in (config, decrypted secrets, fetch, clock).

import type { AppointmentStatus, PrivacyLevel, SourceChange } from '../domain/types.ts';

export type ConnectorRole = 'source' | 'target' | 'notifier' | 'lead-form';

export interface AuthField {
  key: string;
  label: string;
  /** Stored encrypted, never shown back. */
  secret: boolean;
  required: boolean;
  help?: string;
}

export interface SourceCapabilities {
  webhooks: boolean;
  /** The webhook is signed by the platform (else a URL token plus fetch-back confirms it). */
  signedWebhooks: boolean;
  fetch: boolean;
  list: boolean;
  writeCancel: boolean;
  writeReschedule: boolean;
  writeNoShow: boolean;
  /**
   * A listing holds every live booking of the window (a calendar feed, Setmore): a booking it no longer
   * lists was cancelled. The poll then cancels by absence, behind the mass-change safety valve.
   */
  listComplete?: boolean;
}

export interface TargetCapabilities {
  /** Meridian pushes writes (jobs); false for pull-based targets such as a published feed. */
  push: boolean;
  readChanges: boolean;
  freeBusy: boolean;
  deterministicIds: boolean;
}

export const NO_SOURCE_CAPABILITIES: SourceCapabilities = {
  webhooks: false, signedWebhooks: false, fetch: false, list: false,
  writeCancel: false, writeReschedule: false, writeNoShow: false,
};

export const NO_TARGET_CAPABILITIES: TargetCapabilities = {
  push: false, readChanges: false, freeBusy: false, deterministicIds: false,
};

interface DescriptorBase {
  id: string;
  displayName: string;
  auth: AuthField[];
  /** Plain words on what this path can and cannot do. */
  fidelity: string;
  /** Default API base URL; every connection may override it (`baseUrl`). */
  defaultBaseUrl?: string;
  /** The provider revokes a refresh token unused for this many days (Microsoft: 90). */
  refreshTokenIdleDays?: number;
  /** Connect with OAuth 2.0 from the web app (authorization code, PKCE where the provider supports it). */
  oauth?: OAuthProfile;
  /**
   * Alternative sets of secrets that each make the connection usable (Graph: delegated `refreshToken`, or
   * `clientSecret` for application permissions); absent: every `required` auth field. A connection that meets
   * none "Needs setup".
   */
  authSets?: string[][];
  /**
   * Sets of secrets with which Meridian can call the platform's API (polls, fetches, write-back), where that
   * differs from `authSets` (Calendly's webhooks need only the signing key; polling it needs a token).
   */
  apiSets?: string[][];
  /**
   * Where the platform cannot be told by API to send webhooks (or a clinic prefers to set it by hand): what the
   * owner pastes into the platform, in plain words. `{url}` in a step or the template is replaced by the
   * connection's webhook URL with its token.
   */
  manualWebhook?: { steps: string[]; template?: string };
  /** The connection's non-secret settings (`config`) the web app offers as a form; others stay editable in the file or the API. */
  configFields?: ConfigField[];
}

/** One setting of a connection's `config`, for the web app's settings form. */
export interface ConfigField {
  key: string;
  label: string;
  type: 'text' | 'url' | 'email' | 'number' | 'boolean' | 'select' | 'list';
  required?: boolean;
  /** For `select`. */
  options?: { value: string; label: string }[];
  placeholder?: string;
  help?: string;
  /** What the connector does when the key is absent (a checkbox shows it ticked, a select has it chosen). */
  default?: string | number | boolean;
}

// ---------------------------------------------------------------- connecting an account (issue 17)

/** What the owner types before being sent to the provider (Salesforce My Domain, Jane clinic host, a Microsoft tenant). */
export interface OAuthInput {
  key: string;
  label: string;
  placeholder?: string;
  /** A regular expression the value must match (checked before anything is sent). */
  pattern?: string;
  required: boolean;
}

export interface OAuthAuthorize {
  clientId: string;
  /** Exactly `<public-url>/oauth/callback`, the same at authorize and at the code exchange. */
  redirectUri: string;
  state: string;
  /** S256 challenge of the verifier, when the profile uses PKCE. */
  codeChallenge?: string;
  inputs: Record<string, string>;
  /** Replaces the origin of the provider's authorization and token endpoints (a fake in tests, a sovereign cloud). */
  authBaseUrl?: string;
}

export interface OAuthComplete {
  /** Every query parameter of the redirect back (code, state, and what the provider adds: Zoho's accounts-server, Microsoft's tenant…). */
  callback: URLSearchParams;
  clientId: string;
  clientSecret?: string;
  redirectUri: string;
  codeVerifier?: string;
  inputs: Record<string, string>;
  authBaseUrl?: string;
  fetch: typeof fetch;
  now: () => Date;
}

/** What a finished authorisation gives the connection. */
export interface OAuthResult {
  /** Stored encrypted (with clientId/clientSecret, which the flow adds itself): refresh and access tokens, tenant, instance URL… */
  secrets: Record<string, string>;
  /** Non-secret settings learnt from the provider (Zoho's data centre, a Graph tenant, …), merged into the connection's config. */
  config?: Record<string, unknown>;
  /** The API base URL the account lives at (Salesforce instance_url, Zoho's data centre), when not the default. */
  baseUrl?: string;
  /** Who or what was connected, for the page ("ada@clinic.example", "Org 00D…"), when the provider says. */
  account?: string;
}

export interface OAuthVariant {
  id: string;
  /** What the owner chooses between ("Outlook.com or one Microsoft 365 user", "All mailboxes of an Office 365 tenant"). */
  label: string;
  inputs?: OAuthInput[];
  /** The minimal scopes asked for, as the provider names them… */
  scopes: string[];
  /** …and what they allow, in plain words. */
  scopeHelp: string;
  /** `admin_consent`: Microsoft's tenant-wide consent (the redirect carries the tenant, no code; the app's own credentials follow). */
  grant?: 'code' | 'admin_consent';
  authorizeUrl(a: OAuthAuthorize): string;
  complete(c: OAuthComplete): Promise<OAuthResult>;
}

export interface OAuthProfile {
  /** PKCE with S256 (RFC 7636): a verifier per authorisation, its challenge at authorize, the verifier at the code exchange. */
  pkce: boolean;
  /** The app registration takes a client secret (confidential client); false for public PKCE clients. */
  clientSecret: boolean;
  variants: OAuthVariant[];
  /** The short in-app guide: the console page where the owner registers the app, and what to do there (the redirect URI is added by the page). */
  guide: { console: string; steps: string[] };
}

/** Thrown by `OAuthVariant.complete` when the provider refuses (error in the callback, code refused): the message is for the owner. */
export class OAuthRefused extends Error {
  constructor(message: string, public code = 'refused') {
    super(message);
    this.name = 'OAuthRefused';
  }
}

/** One person, service, location or calendar as a platform lists it, to map onto Meridian's without pasting ids. */
export interface DirectoryEntry {
  /** Exactly the ref the connector's parser puts in SourceChange (`practitionerRef`, `serviceRef`, `locationRef`). */
  ref: string;
  name: string;
  email?: string;
}

export interface Directory {
  staff: DirectoryEntry[];
  services: DirectoryEntry[];
  locations?: DirectoryEntry[];
}

/** A calendar of the connected account (Google calendarList, Graph calendars, CalDAV discovery, Zoho calendars). */
export interface CalendarInfo {
  /** What a practitioner's target binding names as `calendar` (and TargetEvent.calendarId). */
  id: string;
  name: string;
  primary?: boolean;
  /** The account may create and change events in it. */
  writable: boolean;
  /** Whose calendar it is (an e-mail), when the platform says: suggestions match it to practitioners. */
  owner?: string;
  timeZone?: string;
}

/** Webhook subscriptions Meridian creates and removes at the platform through its API. */
export interface WebhookSubscriptions {
  /** The platform's event names subscribed to, shown on the Connections page. */
  events: string[];
  /**
   * Subscribe `url` (`<public-url>/webhooks/<connection>`, with `?token=` where the platform signs nothing).
   * Where Meridian chooses the signing key (Calendly, Cal.com) the connector generates it; where the platform
   * issues one (Square) it is returned: either way in `secrets`, stored encrypted before the first delivery.
   * `remoteId` is opaque to everything but the connector (several ids where the platform makes one per event).
   */
  create(ctx: ConnectionContext, url: string): Promise<WriteOutcome<{ remoteId: string; secrets?: Record<string, string> }>>;
  /** Remove it; already gone is success. */
  remove(ctx: ConnectionContext, remoteId: string): Promise<WriteOutcome<void>>;
  /** Whether it still exists and is enabled at the platform (Calendly disables one after a day of failures). */
  check(ctx: ConnectionContext, remoteId: string): Promise<WriteOutcome<{ active: boolean; url?: string; detail?: string }>>;
}

export interface SourceDescriptor extends DescriptorBase {
  role: 'source';
  /** How webhooks are authenticated, for humans (`platforms` command, UI). */
  signature: string;
  /** The auth field (secret) that webhook verification uses, if any. */
  webhookSecret?: string;
  capabilities: SourceCapabilities;
}

export interface TargetDescriptor extends DescriptorBase {
  role: 'target';
  kind: 'calendar' | 'crm' | 'feed';
  capabilities: TargetCapabilities;
  defaultPrivacy: PrivacyLevel;
}

export interface LeadFormCapabilities {
  /** Deliveries carry the tool's own signature (else a URL token is all that vouches for them). */
  signedWebhooks: boolean;
  /** The tool can send a date answer as a date (not only as free text). */
  structuredDates: boolean;
  /** A question can be mapped by its stable ref/key in the connection's `config.fields`. */
  fieldRefs: boolean;
}

export interface LeadFormDescriptor extends DescriptorBase {
  role: 'lead-form';
  /** How deliveries are authenticated, for humans. */
  signature: string;
  capabilities: LeadFormCapabilities;
}

export type Descriptor = SourceDescriptor | TargetDescriptor | LeadFormDescriptor | NotifierDescriptor;

/** What a connector gets to do its work for one connection. */
export interface ConnectionContext {
  connectionId: string;
  /** Non-secret settings from the connection's config (free-form per platform). */
  config: Record<string, unknown>;
  /** Decrypted secrets by auth field key. */
  secrets: Record<string, string>;
  /** The API base URL: the connection's override or the descriptor's default. */
  baseUrl: string;
  fetch: typeof fetch;
  now: () => Date;
  /** Persist changed secrets (refreshed OAuth tokens). */
  saveSecrets?: (patch: Record<string, string>) => Promise<void>;
  /**
   * Non-secret sync cursors kept between polls (ETag, Last-Modified, an updated-since stamp). `list` reads
   * and changes them in place; the poll saves them only once what was listed has been applied, so a poll
   * that fails half-way is repeated in full rather than skipped.
   */
  syncState?: Record<string, string>;
  /** Meridian's public URL for this connection's inbound callbacks (notifiers: delivery statuses, replies), when known. */
  inboundUrl?: string;
  /** The hub's data folder (the e-mail notifier's embedded file transport writes `.eml` files under it). */
  dataDir?: string;
}

// ---------------------------------------------------------------- sources

export interface WebhookRequest {
  rawBody: Buffer;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** The full notification URL the platform posted to (Square signs it). */
  url: string;
  now: Date;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Thrown by parsers for a payload that verified but cannot be understood. */
export class UnreadablePayload extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadablePayload';
  }
}

/** Thrown for a connection configured without what it needs (e.g. the signing secret). */
export class ConnectionMisconfigured extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionMisconfigured';
  }
}

/** Thrown by `fetch`/`list` with the platform's answer classified (auth, throttled, …). */
export class ConnectorError extends Error {
  constructor(public failure: ConnectorFailure) {
    super(failure.message);
    this.name = 'ConnectorError';
  }
}

export interface ListWindow {
  from: Date;
  to: Date;
}

/**
 * Thrown by `list` when the platform answers that nothing changed since the cursors in `syncState`
 * (HTTP 304): there is nothing to apply, and nothing is missing.
 */
export class NotModified extends Error {
  constructor(message = 'not modified since the last poll') {
    super(message);
    this.name = 'NotModified';
  }
}

export interface WriteBackRequest {
  externalId: string;
  start: string;
  end: string;
  timeZone: string;
  status: AppointmentStatus;
  reason?: string;
}

export interface SourceConnector {
  descriptor: SourceDescriptor;
  /** Check the signature on the raw bytes. Never throws for bad input; throws ConnectionMisconfigured when a secret is missing. */
  verify(req: WebhookRequest, secrets: Record<string, string>, config?: Record<string, unknown>): VerifyResult;
  /** Parse a verified webhook into changes; throws UnreadablePayload when it cannot. Returns [] for events we deliberately ignore. */
  parseWebhook(req: WebhookRequest): SourceChange[];
  /** Parse a record fetched from the platform's API (one object or a list). */
  parseRecord?(record: unknown): SourceChange[];
  /** Complete a change whose payload carried only ids. */
  fetch?(change: SourceChange, ctx: ConnectionContext): Promise<SourceChange>;
  /** List bookings in a window (periodic synchronisation). */
  list?(window: ListWindow, ctx: ConnectionContext): AsyncIterable<SourceChange>;
  /** Write a staff edit back to the platform. */
  writeBack?(req: WriteBackRequest, ctx: ConnectionContext): Promise<WriteOutcome<void>>;
  /** The platform's staff, services (and locations) to map onto Meridian's; also proves the credentials work. */
  directory?(ctx: ConnectionContext): Promise<WriteOutcome<Directory>>;
  /** Create and remove webhook subscriptions through the platform's API. */
  subscriptions?: WebhookSubscriptions;
  /** A signed webhook as the platform would send it, for the demo, docs and tests. */
  sampleWebhook?(b: SampleBooking, secrets: Record<string, string>, now: Date): { rawBody: Buffer; headers: Record<string, string> };
}

/** A booking event described without any platform's field names (see `sampleWebhook`). */
export interface SampleBooking {
  event: 'created' | 'canceled' | 'no_show';
  /** Platform-neutral id of the booking; the connector turns it into its own id form. */
  bookingId: string;
  start: string;
  end: string;
  timeZone: string;
  patient: { name: string; email?: string };
  /** The host/practitioner reference in the platform's form, when known. */
  hostRef?: string;
  hostEmail?: string;
  serviceRef?: string;
  /** For a reschedule pair: the booking this one replaces (created) or is replaced by (canceled). */
  replaces?: string;
  replacedBy?: string;
}

// ---------------------------------------------------------------- targets

/** What a calendar target should hold for one appointment (already rendered at the privacy level). */
export interface TargetEvent {
  appointmentId: string;
  revision: number;
  /** Which calendar of the connection (e.g. Google calendarId, Graph user id); connector default when absent. */
  calendarId?: string;
  title: string;
  description: string;
  location?: string;
  start: string;
  end: string;
  timeZone: string;
  status: AppointmentStatus;
  /** The practitioner (our id): CRMs map it to the record's owner. */
  practitionerId?: string;
  /**
   * The patient, for CRM targets only and only when the connection says the CRM is covered by the clinic's
   * data agreement (`coveredByAgreement: true`): the CRM links the record to this person (found by e-mail).
   */
  person?: { name: string; email: string; phone?: string };
}

/** A lead-form submission as a CRM target receives it (only for CRMs covered by the clinic's data agreement). */
export interface CrmLead {
  /** Our lead id: the CRM's idempotency key where it has one. */
  leadId: string;
  name: string;
  email?: string;
  phone?: string;
  /** Rendered at the connection's privacy level (service and notes only at `full`). */
  description: string;
  submittedAt: string;
}

/** What Meridian remembers about one event it wrote. Opaque to everything but the connector. */
export interface LinkState {
  remoteId: string;
  calendarId?: string;
  etag?: string;
  /** Bumped when the platform refuses to reuse a deleted id (Google generation suffix). */
  generation: number;
  data?: Record<string, unknown>;
}

export type FailureClass = 'throttled' | 'transient' | 'auth' | 'conflict' | 'gone' | 'permanent';

export interface ConnectorFailure {
  class: FailureClass;
  message: string;
  status?: number;
  retryAfterMs?: number;
}

export type WriteOutcome<T> = { ok: true; value: T } | { ok: false; failure: ConnectorFailure };

/** What a target holds for one of our events, compared with what it should hold. */
export type DriftState = 'in_sync' | 'missing' | 'changed';

export interface TargetClient {
  /** Make the remote event match `event`. `link` is what we stored last time (undefined: never written). */
  upsert(event: TargetEvent, link: LinkState | undefined): Promise<WriteOutcome<LinkState>>;
  /** Remove the event. Already gone is success. */
  remove(link: LinkState, appointmentId: string): Promise<WriteOutcome<void>>;
  /**
   * Remove the event an interrupted create may have left without our having recorded it (the platform
   * answered, the process died before the link was saved). Targets that can find that event without a
   * link (`deterministicIds`: the id of `generation` for this appointment, or a lookup by our marker) look
   * for it. Answers whether an event of ours was there and is now gone; nothing there, or someone else's
   * event, is left alone.
   */
  removeUnrecorded?(appointmentId: string, calendarId: string | undefined, generation: number): Promise<WriteOutcome<boolean>>;
  /** Read the event back: gone, changed by someone (times or title), or as we wrote it. */
  inspect?(event: TargetEvent, link: LinkState): Promise<WriteOutcome<Inspection>>;
  /** What changed in a calendar since `token` (all of it, `full`, when there is no valid token). */
  changes?(calendarId: string | undefined, token: string | undefined): Promise<WriteOutcome<ChangeSet>>;
  /** Busy intervals in a calendar that are not our events (personal time, other meetings). */
  busy?(window: ListWindow, calendarId: string | undefined): Promise<WriteOutcome<BusyInterval[]>>;
  /** Every event of a calendar in a window, recurring ones expanded: the calendar read as a booking source. */
  events?(window: ListWindow, calendarId: string | undefined): Promise<WriteOutcome<CalendarEvent[]>>;
  /**
   * Push (issue 18): ask the platform to notify `req.address` whenever the calendar changes (Google events.watch,
   * Graph subscriptions). The channel is an accelerator only: sweeps still repair what a lost notice missed.
   */
  watch?(calendarId: string | undefined, req: WatchRequest): Promise<WriteOutcome<WatchChannel>>;
  /** Extend a channel before it ends (Graph PATCH); absent: the engine makes a new channel and stops the old one. */
  renewWatch?(channel: WatchChannel, expiration: Date): Promise<WriteOutcome<WatchChannel>>;
  /** Stop a channel (Google channels.stop, Graph DELETE); already gone is success. */
  unwatch?(channel: WatchChannel): Promise<WriteOutcome<void>>;
  /** The account's calendars (to pick each practitioner's from); also proves the credentials work. */
  calendars?(): Promise<WriteOutcome<CalendarInfo[]>>;
  /** CRMs (which have no calendars): one cheap authenticated read that proves the credentials work. */
  ping?(): Promise<WriteOutcome<{ account?: string }>>;
  /** CRMs: make a lead-form submission a lead / contact in the CRM (idempotent per `leadId` where the CRM allows). */
  upsertLead?(lead: CrmLead): Promise<WriteOutcome<{ remoteId: string }>>;
}

/** What Meridian asks a calendar to notify it of (see `TargetClient.watch`). */
export interface WatchRequest {
  /** An id Meridian chose, unique (Google: the channel id, at most 64 characters). */
  id: string;
  /** Where notifications go: `<public-url>/push/<path>/<connection>` (https). */
  address: string;
  /** Where lifecycle notices go (Graph's lifecycleNotificationUrl), when the platform sends them apart. */
  lifecycleAddress?: string;
  /** A secret the platform sends back with every notification (Google's channel token, Graph's clientState). */
  token: string;
  /** When Meridian would like the channel to end; the platform may answer with an earlier time. */
  expiration: Date;
}

/** A push channel as the platform made it. */
export interface WatchChannel {
  /** The channel's id as notifications name it (Google: ours; Graph: the subscription id it made). */
  id: string;
  /** What the platform says is watched (Google's resourceId: channels.stop needs it). */
  resourceId?: string;
  /** When the platform ends it (UTC instant). */
  expiration: string;
}

/**
 * One notification as the platform sent it, read only for "look again": the engine checks the channel and its
 * secret before anything, and never trusts a notice for what changed (the calendar is read back).
 */
export type PushNotice =
  /** Graph's handshake: answer 200 `text/plain` with exactly `answer` (the URL-decoded validation token). */
  | { kind: 'validation'; answer: string }
  | {
    /** `sync`: the channel now exists (Google's first message); `changed`: something in the calendar changed;
     * `reauthorize`, `removed`, `missed`: Graph's lifecycle notices. */
    kind: 'sync' | 'changed' | 'reauthorize' | 'removed' | 'missed';
    channelId: string;
    /** The secret the notification carries (Google's X-Goog-Channel-Token, Graph's clientState). */
    token?: string;
    resourceId?: string;
    /** Google's X-Goog-Message-Number: rises with each message of a channel. */
    messageNumber?: number;
  };

export interface ChangeSet {
  /** The token was missing or expired: everything must be checked. */
  full: boolean;
  /** Remote ids (as in LinkState.remoteId) that changed or were deleted since the token. */
  changed: string[];
  /** Token for the next call. */
  token: string | undefined;
}

export interface BusyInterval {
  start: string;
  end: string;
}

/** One event as a calendar holds it (`events`), in no platform's field names. */
export interface CalendarEvent {
  /** The event's id in the calendar (one per occurrence of a recurring event). */
  remoteId: string;
  /** UTC instants; an all-day event's dates at 00:00Z. */
  start: string;
  end: string;
  /** The IANA zone the event names, when it names one. */
  timeZone?: string;
  title: string;
  description?: string;
  status: 'confirmed' | 'cancelled';
  /** When the calendar last changed the event (UTC instant). */
  updated?: string;
  /** The attendees' e-mail addresses (the calendar's own owner left out where the platform marks it). */
  attendees?: string[];
  /** The event carries our markers: Meridian wrote it. */
  ours: boolean;
  allDay: boolean;
  /** Shows as free. */
  transparent: boolean;
}

/** A read-back: the drift, and the times the target holds now (UTC instants) when it holds the event. */
export interface Inspection {
  state: DriftState;
  start?: string;
  end?: string;
}

/** The comparison every connector makes on read-back: same instants and same title. */
export function driftOf(expected: TargetEvent, remote: { start?: string | null; end?: string | null; title?: string | null } | undefined): Inspection {
  if (!remote) return { state: 'missing' };
  const instant = (t: string | null | undefined) => (t != null && Number.isFinite(Date.parse(t)) ? new Date(t).toISOString() : undefined);
  const start = instant(remote.start);
  const end = instant(remote.end);
  const same = start === new Date(expected.start).toISOString() && end === new Date(expected.end).toISOString() && (remote.title ?? '') === expected.title;
  return { state: same ? 'in_sync' : 'changed', start, end };
}

/** One appointment in a published feed: the rendered event plus its lifecycle stamps. */
export interface FeedEvent extends TargetEvent {
  createdAt: string;
  updatedAt: string;
}

export interface FeedInput {
  /** Calendar name shown by subscribers. */
  name: string;
  timeZone?: string;
  events: FeedEvent[];
  now: Date;
  /** Meridian's public URL (UID domain). */
  publicUrl?: string;
}

export interface TargetConnector {
  descriptor: TargetDescriptor;
  /** A client for one connection; undefined for pull-based targets (feeds). */
  client?(ctx: ConnectionContext): TargetClient;
  /** Pull-based targets: the whole feed as it should be served now. */
  renderFeed?(feed: FeedInput): string;
  /**
   * Targets that notify us of edits made on their side (HubSpot webhooks): check the delivery on its raw
   * bytes (never throws for bad input; ConnectionMisconfigured without the secret), then name the remote ids
   * (as in LinkState.remoteId) that changed. The engine reads those back through `inspect` under the
   * connection's two-way policy, exactly as a sweep would; the payload itself is never trusted for times.
   */
  verifyWebhook?(req: WebhookRequest, secrets: Record<string, string>, config?: Record<string, unknown>): VerifyResult;
  changedRemoteIds?(req: WebhookRequest): string[];
  /**
   * Calendars that push (issue 18): notifications arrive at `/push/<path>/<connection>`; `parse` reads one request
   * into notices without judging them (never throws for bad input: an unreadable request gives no notice).
   * `answer` is what the platform expects back for an accepted request (Graph: 202).
   */
  push?: { path: string; parse(req: WebhookRequest): PushNotice[]; answerStatus?: number };
}

// ---------------------------------------------------------------- lead forms

/** Where an answer goes in a lead. `firstName`/`lastName` are joined into `name`. */
export const LEAD_FIELDS = ['name', 'firstName', 'lastName', 'email', 'phone', 'service', 'practitioner', 'preferredTimes', 'notes', 'ignore'] as const;
export type LeadField = (typeof LEAD_FIELDS)[number];

/** A preferred time as the patient gave it: words, a date (optionally with a time range), or instants. */
export type TimePreference =
  | { text: string }
  | { date: string; from?: string; to?: string }
  | { start: string; end: string };

/** One form submission, normalized (no tool's field names). */
export interface Lead {
  submissionId: string;
  /** UTC instant with Z. */
  submittedAt: string;
  /** The delivery's own id, when the tool sends one (Typeform event_id, Tally eventId). */
  deliveryId?: string;
  name: string;
  email?: string;
  phone?: string;
  service?: string;
  practitioner?: string;
  preferences: TimePreference[];
  notes?: string;
}

export interface LeadFormConnector {
  descriptor: LeadFormDescriptor;
  /** Check the delivery on the raw bytes. Never throws for bad input; throws ConnectionMisconfigured when a secret is missing. */
  verify(req: WebhookRequest, secrets: Record<string, string>, config?: Record<string, unknown>): VerifyResult;
  /** Read a verified delivery; `config.fields` maps question refs/labels to lead fields. Throws UnreadablePayload. */
  parseLead(req: WebhookRequest, config: Record<string, unknown>): Lead;
}

// ---------------------------------------------------------------- notifiers

export interface NotifierCapabilities {
  /** Sends e-mail (with an iMIP invitation when the message carries one). */
  email: boolean;
  sms: boolean;
  /** Signed HTTP deliveries to the clinic's own tools (Standard Webhooks). */
  webhooks: boolean;
  /** The provider calls back with delivery status (sent, delivered, failed). */
  deliveryStatus: boolean;
  /** Patients can answer (SMS replies: C confirms, X cancels, STOP opts out). */
  replies: boolean;
}

export interface NotifierDescriptor extends DescriptorBase {
  role: 'notifier';
  /** How inbound callbacks (status, replies) are authenticated, for humans; absent when there are none. */
  signature?: string;
  capabilities: NotifierCapabilities;
}

/** One message to one recipient, already rendered (no platform's field names). */
export interface OutboundMessage {
  /** Stable per (appointment, revision, purpose, recipient): a retried send carries the same key. */
  key: string;
  to: { name?: string; email?: string; phone?: string; url?: string };
  subject?: string;
  text: string;
  html?: string;
  /** iMIP (RFC 6047): the iTIP object to attach as text/calendar with this METHOD. */
  calendar?: { method: 'REQUEST' | 'CANCEL'; ics: string };
  /**
   * An invitation for the recipient's own calendar, described without iCalendar: the e-mail notifier turns it
   * into the iTIP object (RFC 5546) with its own sender as ORGANIZER and the recipient as ATTENDEE (iMIP).
   */
  invitation?: Invitation;
  /** For webhook deliveries: the event type and its JSON payload. */
  event?: { type: string; payload: Record<string, unknown> };
}

/** One state of a calendar entry, as iTIP sends it: REQUEST (booked, moved) or CANCEL, same UID, rising SEQUENCE. */
export interface Invitation {
  method: 'REQUEST' | 'CANCEL';
  /** Stable for the appointment; the notifier adds `@<its sender's domain>` when it has no `@`. */
  uid: string;
  sequence: number;
  start: string;
  end: string;
  timeZone: string;
  summary: string;
  description?: string;
  location?: string;
}

export interface NotifierClient {
  /** Send one message; the value is the provider's message id when it gives one. */
  send(m: OutboundMessage): Promise<WriteOutcome<{ providerId?: string; /** The provider's HTTP answer code. */ status?: number }>>;
}

/** What a provider tells us on its own (a delivery status, a patient's reply). */
export type InboundEvent =
  | { kind: 'status'; providerId: string; status: 'queued' | 'sent' | 'delivered' | 'failed' | 'undelivered'; error?: string }
  | { kind: 'reply'; providerId?: string; from: string; text: string };

export interface NotifierConnector {
  descriptor: NotifierDescriptor;
  client(ctx: ConnectionContext): NotifierClient;
  /** Inbound callbacks: verify on the raw bytes (never throws for bad input; ConnectionMisconfigured without the secret). */
  verifyInbound?(req: WebhookRequest, secrets: Record<string, string>, config?: Record<string, unknown>): VerifyResult;
  parseInbound?(req: WebhookRequest): InboundEvent[];
  /** What the provider expects as the answer to an accepted callback (Twilio: empty TwiML); JSON when absent. */
  inboundAnswer?: { contentType: string; body: string };
  /** Try the credentials without sending anything (SMTP login, the provider's account read): before they are saved. */
  verifyCredentials?(ctx: ConnectionContext): Promise<WriteOutcome<{ account?: string }>>;
  /** Problems with the connection's own settings (`config`), for `meridian validate` and startup. */
  checkConfig?(config: Record<string, unknown>): { key: string; message: string }[];
}

export type Connector = SourceConnector | TargetConnector | LeadFormConnector | NotifierConnector;

export function ok<T>(value: T): WriteOutcome<T> {
  return { ok: true, value };
}

export function fail<T = never>(failure: ConnectorFailure): WriteOutcome<T> {
  return { ok: false, failure };
}

/** Run API work that throws ConnectorError on failure and turn it into a WriteOutcome. */
export async function outcomeOf(work: () => Promise<unknown>): Promise<WriteOutcome<void>> {
  try {
    await work();
    return ok(undefined);
  } catch (err) {
    if (err instanceof ConnectorError) return fail(err.failure);
    throw err;
  }
}
