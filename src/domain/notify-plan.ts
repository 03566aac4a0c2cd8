// Notification rules and planning, pure (no I/O): what an audience must be told now given what it was
// last told, when each reminder and follow-up is due (quiet hours in the patient's zone, DST-safe), and
// whether a due message still fits the appointment as it is. The engine (engine/notify.ts) stores the
// plan in the outbox in the same transaction as every change and asks these functions again at send time.
import { Temporal } from 'temporal-polyfill';
import type { Appointment, PrivacyLevel } from './types.ts';

export type NoticePurpose = 'confirmation' | 'change' | 'cancellation';
export type FollowUpKind = 'thank_you' | 'form' | 'no_show';
export type Purpose = NoticePurpose | 'reminder' | FollowUpKind;
export const PURPOSES: readonly Purpose[] = ['confirmation', 'change', 'cancellation', 'reminder', 'thank_you', 'form', 'no_show'];

/** `patient`, or `practitioner:<id>` (a practitioner taken off an appointment is told it is cancelled for them). */
export type Audience = 'patient' | `practitioner:${string}`;

export interface Template {
  subject: string;
  text: string;
}

export interface ReminderRule {
  id?: string;
  /** How long before the start, e.g. "48h", "90m", "2d". */
  before: string;
  /** Notifier connection ids or kinds (`email`, `sms`), tried in order. */
  channel?: string[];
}

export interface FollowUpRule {
  id?: string;
  kind: FollowUpKind;
  /** How long after the end. */
  after: string;
  channel?: string[];
  /** Rebooking link (thank_you), form link (form), rebooking link (no_show). */
  link?: string;
}

export interface QuietHours {
  /** Local wall-clock "HH:MM" in the patient's zone; `from` > `to` spans midnight. */
  from: string;
  to: string;
}

export interface RuleSet {
  confirmations?: boolean;
  changes?: boolean;
  cancellations?: boolean;
  reminders?: ReminderRule[];
  followUps?: FollowUpRule[];
}

/** The clinic's `notifications:` block as validated by config/schema.ts and stored in the clinic's settings. */
export interface NotificationSettings extends RuleSet {
  /** Default channels for patient messages. */
  channel: string[];
  graceMinutes: number;
  quietHours?: QuietHours;
  templates?: Partial<Record<Purpose, Template>>;
  /** Per-service overrides of the rules (each key replaces the clinic's). */
  services?: Record<string, RuleSet>;
  practitioners?: { notify: boolean; privacy: PrivacyLevel; channel?: string[] };
  staff?: { emails: string[]; channel?: string[] };
}

/** Rules in effect for one appointment, with every default filled in. */
export interface Rules {
  channel: string[];
  graceMs: number;
  quietHours?: QuietHours;
  confirmations: boolean;
  changes: boolean;
  cancellations: boolean;
  reminders: Required<ReminderRule>[];
  followUps: (Required<Omit<FollowUpRule, 'link'>> & { link?: string })[];
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(m|h|d)$/;
export const DURATION_PATTERN = DURATION;

export function durationMs(s: string): number {
  const m = DURATION.exec(s.trim());
  if (!m) throw new RangeError(`not a duration like "48h", "90m" or "2d": ${s}`);
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
}

export function rulesFor(s: NotificationSettings, serviceId: string | undefined): Rules {
  const o: RuleSet = (serviceId && s.services?.[serviceId]) || {};
  const pick = <K extends keyof RuleSet>(k: K): RuleSet[K] => (o[k] !== undefined ? o[k] : s[k]);
  return {
    channel: s.channel,
    graceMs: s.graceMinutes * 60_000,
    quietHours: s.quietHours,
    confirmations: pick('confirmations') ?? true,
    changes: pick('changes') ?? true,
    cancellations: pick('cancellations') ?? true,
    reminders: (pick('reminders') ?? []).map((r) => ({ id: r.id ?? `reminder-${r.before}`, before: r.before, channel: r.channel ?? s.channel })),
    followUps: (pick('followUps') ?? []).map((f) => ({ id: f.id ?? `${f.kind}-${f.after}`, kind: f.kind, after: f.after, channel: f.channel ?? s.channel, link: f.link })),
  };
}

/** Every reminder/follow-up rule id the settings can give any appointment (the clinic's and each service's). */
export function allRuleIds(s: NotificationSettings): string[] {
  const ids = new Set<string>();
  for (const sid of [undefined, ...Object.keys(s.services ?? {})]) {
    const r = rulesFor(s, sid);
    for (const x of [...r.reminders, ...r.followUps]) ids.add(x.id);
  }
  return [...ids];
}

// ------------------------------------------------------------------ what was told, what to tell

/** What one audience knows (or should know) of an appointment. */
export interface Snapshot {
  state: 'booked' | 'cancelled';
  start: string;
  end: string;
  timeZone: string;
  practitionerId: string;
  locationId?: string;
  serviceId?: string;
}

export interface Told extends Snapshot {
  /** The iTIP SEQUENCE of the last invitation sent. */
  sequence: number;
}

/**
 * What the audience should know now; undefined when there is nothing to announce (a request not yet
 * booked; a visit that ended as completed or no-show keeps what was said, the follow-ups take over).
 */
export function snapshotFor(a: Appointment, audience: Audience, told: Told | undefined): Snapshot | undefined {
  const base = { start: a.start, end: a.end, timeZone: a.timeZone, practitionerId: a.practitionerId, locationId: a.locationId, serviceId: a.serviceId };
  const mine = audience === 'patient' || audience === `practitioner:${a.practitionerId}`;
  if (!mine || a.status === 'cancelled') return { ...(told ?? base), state: 'cancelled' };
  if (a.status === 'booked') return { ...base, state: 'booked' };
  return told ? { ...told, state: told.state } : undefined;
}

function sameVisit(a: Snapshot, b: Snapshot): boolean {
  return a.start === b.start && a.end === b.end && a.timeZone === b.timeZone && a.practitionerId === b.practitionerId
    && (a.locationId ?? null) === (b.locationId ?? null) && (a.serviceId ?? null) === (b.serviceId ?? null);
}

/** The one message that brings the audience from what it was told to `now` (nothing when they agree). */
export function noticeFor(told: Told | undefined, now: Snapshot | undefined): NoticePurpose | undefined {
  if (!now) return undefined;
  const knowsBooked = told?.state === 'booked';
  if (now.state === 'cancelled') return knowsBooked ? 'cancellation' : undefined;
  if (!knowsBooked) return 'confirmation';
  return sameVisit(told!, now) ? undefined : 'change';
}

/** iTIP SEQUENCE: never below the revision, always above what was sent before (receivers ignore a lower one). */
export function nextSequence(told: Told | undefined, revision: number): number {
  return Math.max(revision, (told?.sequence ?? -1) + 1);
}

// ------------------------------------------------------------------ quiet hours

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
export const HHMM_PATTERN = HHMM;

function minutes(hhmm: string): number {
  const m = HHMM.exec(hhmm);
  if (!m) throw new RangeError(`not a time like "21:00": ${hhmm}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function zoned(ms: number, zone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(zone);
}

/** The instant a date's wall-clock `hhmm` names in `zone` (a time the clocks skip moves forward, RFC 5545 style). */
function wallClock(date: Temporal.PlainDate, hhmm: string, zone: string): number {
  const m = minutes(hhmm);
  return date.toZonedDateTime({ timeZone: zone, plainTime: new Temporal.PlainTime(Math.floor(m / 60), m % 60) }).epochMilliseconds;
}

export function inQuietHours(ms: number, zone: string, q: QuietHours | undefined): boolean {
  if (!q) return false;
  const from = minutes(q.from);
  const to = minutes(q.to);
  if (from === to) return false;
  const z = zoned(ms, zone);
  const m = z.hour * 60 + z.minute;
  return from < to ? m >= from && m < to : m >= from || m < to;
}

/** The first instant after `ms` at which quiet hours end. */
export function quietEnd(ms: number, zone: string, q: QuietHours): number {
  const date = zoned(ms, zone).toPlainDate();
  const today = wallClock(date, q.to, zone);
  return today > ms ? today : wallClock(date.add({ days: 1 }), q.to, zone);
}

/** One minute before the quiet hours that hold `ms` began. */
export function beforeQuiet(ms: number, zone: string, q: QuietHours): number {
  const date = zoned(ms, zone).toPlainDate();
  const today = wallClock(date, q.from, zone);
  return (today <= ms ? today : wallClock(date.subtract({ days: 1 }), q.from, zone)) - 60_000;
}

/**
 * When a message due at `ms` may go out. Reminders move earlier (to before quiet hours began: a reminder
 * must never arrive later than planned), everything else waits until quiet hours end.
 */
export function outsideQuietHours(ms: number, zone: string, q: QuietHours | undefined, direction: 'earlier' | 'later'): number {
  if (!q || !inQuietHours(ms, zone, q)) return ms;
  return direction === 'earlier' ? beforeQuiet(ms, zone, q) : quietEnd(ms, zone, q);
}

/** The zone quiet hours are read in: the patient's own when known, else the appointment's. */
export function patientZone(a: Appointment): string {
  return a.patient.timeZone ?? a.timeZone;
}

// ------------------------------------------------------------------ reminders and follow-ups

export type TimedKind = 'reminder' | FollowUpKind;

/** A planned reminder or follow-up: the appointment state it is for travels with it, and is checked at send time. */
export interface TimedPlan {
  ruleId: string;
  kind: TimedKind;
  /** When it should go out (UTC ms); in the past for a follow-up that is late but still worth sending. */
  runAt: number;
  start: string;
  end: string;
}

/** A follow-up more than this late (e.g. a visit imported long after it happened) is not sent at all. */
export const FOLLOW_UP_MAX_LATE_MS = 3 * 86_400_000;

function followUpFits(kind: FollowUpKind, a: Appointment): boolean {
  return kind === 'no_show' ? a.status === 'no_show' : a.status === 'booked' || a.status === 'completed';
}

/**
 * Every reminder and follow-up the appointment should have, as it is now. A rule missing here must not
 * have a pending job. Reminders whose time has passed are left out (the confirmation just told the patient;
 * the engine keeps a job that is already due for this very start), late follow-ups go out now.
 */
export function planTimed(a: Appointment, rules: Rules, nowMs: number): TimedPlan[] {
  const out: TimedPlan[] = [];
  const zone = patientZone(a);
  const start = Date.parse(a.start);
  const end = Date.parse(a.end);
  if (a.status === 'booked') {
    for (const r of rules.reminders) {
      const at = outsideQuietHours(start - durationMs(r.before), zone, rules.quietHours, 'earlier');
      if (at >= nowMs && at < start) out.push({ ruleId: r.id, kind: 'reminder', runAt: at, start: a.start, end: a.end });
    }
  }
  for (const f of rules.followUps) {
    if (!followUpFits(f.kind, a)) continue;
    const due = end + durationMs(f.after);
    if (nowMs - due > FOLLOW_UP_MAX_LATE_MS) continue;
    out.push({ ruleId: f.id, kind: f.kind, runAt: outsideQuietHours(Math.max(due, nowMs), zone, rules.quietHours, 'later'), start: a.start, end: a.end });
  }
  return out;
}

/** Why a due reminder or follow-up must not go out for the appointment as it is now (undefined: send it). */
export function timedSuppression(p: Pick<TimedPlan, 'kind' | 'start' | 'end'>, a: Appointment | undefined, nowMs: number): string | undefined {
  if (!a) return 'the appointment no longer exists';
  if (p.kind === 'reminder') {
    if (a.status !== 'booked') return `the appointment is ${a.status}`;
    if (a.start !== p.start) return 'the appointment was moved';
    if (nowMs >= Date.parse(a.start)) return 'the appointment has already started';
    return undefined;
  }
  if (!followUpFits(p.kind, a)) return `the appointment is ${a.status}`;
  if (a.end !== p.end) return 'the appointment was moved';
  if (nowMs < Date.parse(a.end)) return 'the appointment has not ended';
  if (nowMs - Date.parse(a.end) > FOLLOW_UP_MAX_LATE_MS) return 'too long after the visit';
  return undefined;
}

// ------------------------------------------------------------------ templates

/** Placeholders every message may use; patient messages may also name the patient (it is their own visit). */
export const TIME_VARS = ['when', 'date', 'time', 'previous.when', 'link', 'address'] as const;
export const PATIENT_VARS = ['clinic', 'practitioner', 'service', 'location', 'ref', 'patient.name', 'patient.firstName', ...TIME_VARS] as const;

const EN: Record<Purpose, Template> = {
  confirmation: {
    subject: 'Appointment confirmed: {{service}}, {{when}}',
    text: 'Hello {{patient.firstName}},\n\nyour {{service}} appointment with {{practitioner}} is booked for {{when}}.\n{{location}}\n{{address}}\n\nThe invitation in this e-mail adds it to your calendar.\n\n{{clinic}}',
  },
  change: {
    subject: 'Appointment moved: {{service}}, now {{when}}',
    text: 'Hello {{patient.firstName}},\n\nyour {{service}} appointment with {{practitioner}} has changed.\nNow: {{when}}\nBefore: {{previous.when}}\n{{location}}\n\n{{clinic}}',
  },
  cancellation: {
    subject: 'Appointment cancelled: {{service}}, {{when}}',
    text: 'Hello {{patient.firstName}},\n\nyour {{service}} appointment with {{practitioner}} on {{when}} is cancelled.\n\n{{clinic}}',
  },
  reminder: {
    subject: 'Reminder: {{service}}, {{when}}',
    text: 'Hello {{patient.firstName}},\n\na reminder of your {{service}} appointment with {{practitioner}} on {{when}}.\n{{location}}\n{{address}}\n\n{{clinic}}',
  },
  thank_you: {
    subject: 'Thank you for your visit',
    text: 'Hello {{patient.firstName}},\n\nthank you for your visit to {{clinic}}. You can book your next appointment here: {{link}}\n\n{{clinic}}',
  },
  form: {
    subject: 'A few questions about your visit',
    text: 'Hello {{patient.firstName}},\n\nplease take a moment to fill in this form: {{link}}\n\n{{clinic}}',
  },
  no_show: {
    subject: 'We missed you today',
    text: 'Hello {{patient.firstName}},\n\nwe missed you at your {{service}} appointment on {{when}}. You can book a new time here: {{link}}\n\n{{clinic}}',
  },
};

const DE: Record<Purpose, Template> = {
  confirmation: {
    subject: 'Termin bestätigt: {{service}}, {{when}}',
    text: 'Guten Tag {{patient.name}},\n\nIhr Termin ({{service}}) bei {{practitioner}} ist gebucht: {{when}}.\n{{location}}\n{{address}}\n\nMit der Einladung in dieser E-Mail landet er in Ihrem Kalender.\n\n{{clinic}}',
  },
  change: {
    subject: 'Termin verschoben: {{service}}, jetzt {{when}}',
    text: 'Guten Tag {{patient.name}},\n\nIhr Termin ({{service}}) bei {{practitioner}} wurde geändert.\nNeu: {{when}}\nBisher: {{previous.when}}\n{{location}}\n\n{{clinic}}',
  },
  cancellation: {
    subject: 'Termin abgesagt: {{service}}, {{when}}',
    text: 'Guten Tag {{patient.name}},\n\nIhr Termin ({{service}}) bei {{practitioner}} am {{when}} ist abgesagt.\n\n{{clinic}}',
  },
  reminder: {
    subject: 'Erinnerung: {{service}}, {{when}}',
    text: 'Guten Tag {{patient.name}},\n\nwir erinnern an Ihren Termin ({{service}}) bei {{practitioner}}: {{when}}.\n{{location}}\n{{address}}\n\n{{clinic}}',
  },
  thank_you: {
    subject: 'Danke für Ihren Besuch',
    text: 'Guten Tag {{patient.name}},\n\nvielen Dank für Ihren Besuch. Ihren nächsten Termin können Sie hier buchen: {{link}}\n\n{{clinic}}',
  },
  form: {
    subject: 'Ein paar Fragen zu Ihrem Besuch',
    text: 'Guten Tag {{patient.name}},\n\nbitte nehmen Sie sich einen Moment für dieses Formular: {{link}}\n\n{{clinic}}',
  },
  no_show: {
    subject: 'Wir haben Sie heute vermisst',
    text: 'Guten Tag {{patient.name}},\n\nwir haben Sie zu Ihrem Termin ({{service}}) am {{when}} vermisst. Einen neuen Termin können Sie hier buchen: {{link}}\n\n{{clinic}}',
  },
};

const BUILT_IN: Record<string, Record<Purpose, Template>> = { en: EN, de: DE };

/** A text message is the subject line; a reminder adds how to answer (engine/edits/replies.ts recordInbound). */
const REPLY_HINT: Record<string, string> = {
  en: 'Reply C to confirm or X to cancel.',
  de: 'Antworten Sie C zum Bestätigen oder X zum Absagen.',
};

export function smsText(purpose: Purpose, subject: string, language: string): string {
  if (purpose !== 'reminder') return subject;
  return `${subject}. ${REPLY_HINT[language.slice(0, 2).toLowerCase()] ?? REPLY_HINT.en}`;
}

/** Practitioners' notices: only what their calendar's privacy level allows (see domain/render.ts). */
export const PRACTITIONER_TEMPLATES: Record<NoticePurpose, Template> = {
  confirmation: { subject: 'New appointment: {{title}}, {{when}}', text: 'New appointment: {{title}}\n{{when}}\n{{description}}' },
  change: { subject: 'Appointment moved: {{title}}, now {{when}}', text: 'Appointment moved: {{title}}\nNow: {{when}}\nBefore: {{previous.when}}\n{{description}}' },
  cancellation: { subject: 'Appointment cancelled: {{title}}, {{when}}', text: 'Appointment cancelled: {{title}}\n{{when}}\n{{description}}' },
};

export function templateFor(purpose: Purpose, language: string, custom?: Partial<Record<Purpose, Template>>): Template {
  return custom?.[purpose] ?? (BUILT_IN[language.slice(0, 2).toLowerCase()] ?? EN)[purpose];
}

const PLACEHOLDER = /\{\{\s*([a-zA-Z.]+)\s*\}\}/g;

/** Placeholders in a template that are not in `allowed`. */
export function unknownPlaceholders(t: Template, allowed: readonly string[]): string[] {
  const bad = new Set<string>();
  for (const text of [t.subject, t.text]) for (const m of text.matchAll(PLACEHOLDER)) if (!allowed.includes(m[1])) bad.add(m[1]);
  return [...bad].sort();
}

/** Fill a template; a line left empty by a missing value is dropped, placeholders outside `allowed` stay empty. */
export function fill(t: Template, values: Record<string, string | undefined>, allowed: readonly string[]): Template {
  const put = (text: string) => text.replace(PLACEHOLDER, (_m, k: string) => (allowed.includes(k) ? (values[k] ?? '') : ''));
  const lines = put(t.text).split('\n');
  const text = lines.filter((l, i) => l.trim() !== '' || (i > 0 && lines[i - 1].trim() !== '')).join('\n').trim();
  return { subject: put(t.subject).replace(/\s+/g, ' ').trim(), text };
}

/** "Fri 12 Mar 2027, 10:00–11:00 (Europe/Berlin)" in the clinic's language. */
export function whenText(start: string, end: string, zone: string, language: string): string {
  const locale = language.length === 2 ? `${language}-${language === 'en' ? 'GB' : language.toUpperCase()}` : language;
  const safe = (() => { try { return new Intl.DateTimeFormat(locale).resolvedOptions().locale; } catch { return 'en-GB'; } })();
  const d = new Intl.DateTimeFormat(safe, { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  const t = new Intl.DateTimeFormat(safe, { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return `${d.format(new Date(start))}, ${t.format(new Date(start))}–${t.format(new Date(end))} (${zone})`;
}

/** Plain text as simple HTML (escaped; paragraphs and line breaks kept; links clickable). */
export function htmlOf(text: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  return text.split(/\n{2,}/).map((p) => `<p>${esc(p).replace(/https?:\/\/[^\s<]+/g, (u) => `<a href="${u}">${u}</a>`).replace(/\n/g, '<br>')}</p>`).join('\n');
}
