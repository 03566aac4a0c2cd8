// The job catalogue's types: every kind of job the outbox carries, the payload each kind holds, and what
// a handler answers. Pure types and constructors (no I/O): producers in every engine room build their jobs
// from these, the store writes them, and src/engine/jobs/catalogue.ts maps each kind to its handler, so
// the compiler rejects a kind without a handler and a payload that does not fit its kind.
import type { ConnectorFailure } from '../connectors/types.ts';
import type { TimedKind } from './notify-plan.ts';
import type { SourceChange } from './types.ts';

export const TARGET_SYNC = 'target.sync';
export const FETCH_CHANGE = 'source.fetch';
export const WRITE_BACK = 'source.writeback';
export const TARGET_SWEEP = 'target.sweep';
export const SOURCE_POLL = 'source.poll';
export const CRM_LEAD = 'crm.lead';
export const WEBHOOK_DELIVER = 'webhook.deliver';
export const NOTIFY_NOTICE = 'notify.notice';
export const NOTIFY_TIMED = 'notify.timed';
export const NOTIFY_STAFF = 'notify.staff';

export type StaffAlertType = 'double_booking' | 'dead_letter' | 'needs_reauth' | 'held_changes' | 'patient_cancelled' | 'account_locked';

export interface StaffAlert {
  type: StaffAlertType;
  /** Unique per occurrence (the message key is built from it). */
  ref: string;
  /** Plain words without patient data: staff mailboxes are outside the hub. */
  summary: string;
}

/** Kind → payload. A job carries ids, not state: its handler reads the current state when it runs. */
export interface JobPayloads {
  /** Make one calendar / CRM target match the appointment as it is now. */
  [TARGET_SYNC]: { appointmentId: string; targetId: string };
  /** Fetch a booking the platform only named (`needsFetch`), then apply it. */
  [FETCH_CHANGE]: { connectionId: string; deliveryRowId?: string; change: SourceChange };
  /** Write a staff edit back to the booking platform the appointment came from. */
  [WRITE_BACK]: { appointmentId: string };
  /**
   * Read back a calendar target (all of it, or the records a target webhook named); `quick`: only what its
   * calendars report changed since the last look (the frequent check of calendars that do not push); `calendars`:
   * only these ('' = the connection's default one: a calendar's push notice).
   */
  [TARGET_SWEEP]: { connectionId: string; remoteIds?: string[]; quick?: boolean; calendars?: string[] };
  /** List a booking source's window of bookings. */
  [SOURCE_POLL]: { connectionId: string; scheduled?: boolean };
  /** Put a lead into one CRM. */
  [CRM_LEAD]: { leadId: string; targetId: string };
  /** Send one stored outbound webhook delivery (the row names its subscription). */
  [WEBHOOK_DELIVER]: { deliveryId: string };
  /** Tell patient and practitioners what changed, once the grace period is over. */
  [NOTIFY_NOTICE]: { appointmentId: string };
  /** A reminder or follow-up, for the visit as it was planned (checked again at send time). */
  [NOTIFY_TIMED]: { appointmentId: string; ruleId: string; kind: TimedKind; start: string; end: string };
  /** E-mail a clinic's staff. */
  [NOTIFY_STAFF]: { clinicId: string } & StaffAlert;
}

export type JobKind = keyof JobPayloads;

export type JobState = 'pending' | 'running' | 'done' | 'dead';

/** What enqueueing needs besides kind and payload. */
export interface JobOptions {
  /** At most one pending job per key; a second enqueue only moves the pending one earlier. */
  dedupeKey?: string;
  runAt?: string;
  maxAttempts?: number;
}

export interface NewJobOf<K extends JobKind> extends JobOptions {
  kind: K;
  payload: JobPayloads[K];
}

/** A job to enqueue. Without a kind argument: any kind, with the payload of that kind (a tagged union). */
export type NewJob<K extends JobKind = JobKind> = { [P in K]: NewJobOf<P> }[K];

/** A stored job of kind K, as a handler receives it. */
export interface JobOf<K extends JobKind> {
  id: string;
  kind: K;
  payload: JobPayloads[K];
  dedupeKey?: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  runAt: string;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
}

/** A stored job. Without a kind argument: a tagged union, narrowed by testing `kind`. */
export type Job<K extends JobKind = JobKind> = { [P in K]: JobOf<P> }[K];

/** A handler's answer; a failure names the connection it failed on, so an auth failure marks that one. */
export type JobResult = { ok: true; note?: string } | { ok: false; failure: ConnectorFailure; connectionId?: string };

/**
 * The connection a job acts for, stored beside it (`job.connection_id`) so a connection's jobs are found by
 * index: the target of a calendar or CRM write, the source or target of a fetch, poll or sweep. Kinds whose
 * payload names no connection (messages, write-backs, outbound webhooks) get theirs when one fails them.
 */
const CONNECTION_OF: { [K in JobKind]: (p: JobPayloads[K]) => string | undefined } = {
  [TARGET_SYNC]: (p) => p.targetId,
  [FETCH_CHANGE]: (p) => p.connectionId,
  [WRITE_BACK]: () => undefined,
  [TARGET_SWEEP]: (p) => p.connectionId,
  [SOURCE_POLL]: (p) => p.connectionId,
  [CRM_LEAD]: (p) => p.targetId,
  [WEBHOOK_DELIVER]: () => undefined,
  [NOTIFY_NOTICE]: () => undefined,
  [NOTIFY_TIMED]: () => undefined,
  [NOTIFY_STAFF]: () => undefined,
};

export function connectionOf<K extends JobKind>(j: { kind: K; payload: JobPayloads[K] }): string | undefined {
  // An unknown kind (a row from an older version) has no connection.
  return Object.hasOwn(CONNECTION_OF, j.kind) ? CONNECTION_OF[j.kind](j.payload) : undefined;
}

/** A calendar sweep of one connection (periodic or on demand). */
export function sweepJob(connectionId: string): NewJob<typeof TARGET_SWEEP> {
  return { kind: TARGET_SWEEP, payload: { connectionId }, dedupeKey: `${TARGET_SWEEP}:${connectionId}`, maxAttempts: 3 };
}

/**
 * A calendar's push notice (issue 18): read what changed in that calendar ('' = the connection's default one) as the
 * quick check does (nothing changed: nothing read back). Notices in a burst coalesce: one pending job per calendar, run a moment after the first.
 */
export function calendarChangedJob(connectionId: string, calendarId: string): NewJob<typeof TARGET_SWEEP> {
  return { kind: TARGET_SWEEP, payload: { connectionId, calendars: [calendarId], quick: true }, dedupeKey: `${TARGET_SWEEP}:${connectionId}:calendar:${calendarId}`, maxAttempts: 3 };
}

/** A sweep of one remote record the target told us changed (a CRM's webhook): read back and judged like any sweep. */
export function remoteChangeJob(connectionId: string, remoteId: string): NewJob<typeof TARGET_SWEEP> {
  return { kind: TARGET_SWEEP, payload: { connectionId, remoteIds: [remoteId] }, dedupeKey: `${TARGET_SWEEP}:${connectionId}:${remoteId}`, maxAttempts: 3 };
}

/**
 * A quick calendar check of one connection: what its calendars report changed since the last look, judged as a
 * sweep judges it (periodic, every MERIDIAN_CHECK_MINUTES, for calendars that do not push). Its own key, so it
 * neither waits behind nor replaces the full sweep.
 */
export function calendarCheckJob(connectionId: string): NewJob<typeof TARGET_SWEEP> {
  return { kind: TARGET_SWEEP, payload: { connectionId, quick: true }, dedupeKey: `${TARGET_SWEEP}:${connectionId}:quick`, maxAttempts: 3 };
}
