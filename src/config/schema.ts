// The clinic's setup as declared in meridian.yaml. Validated with zod for shape, then against the
// connector registry and itself for references (validate.ts). Secrets are never values here: each
// one is a reference `{ env: NAME }` to an environment variable, or is stored encrypted via the API.
import { z } from 'zod';
import { isIanaZone } from '../domain/time.ts';
import { PRIVACY_LEVELS } from '../domain/types.ts';
import { HOURS_RANGE, WEEKDAYS } from '../domain/slots.ts';
import { DEFAULT_RETENTION, normaliseRetention, RETENTION_MESSAGE } from '../domain/retention.ts';
import { DURATION_PATTERN, HHMM_PATTERN, PURPOSES, type Purpose } from '../domain/notify-plan.ts';

export const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/i, 'ids are 1–63 letters, digits, ".", "_" or "-"');
const zone = z.string().refine(isIanaZone, { message: 'not an IANA time zone (e.g. "Europe/London")' });

/**
 * A calendar (or CRM) an appointment is written to: the target connection, the calendar in it, and the privacy
 * level of what is written there for this binding (default: the connection's own).
 */
export const targetBinding = z.object({ connection: id, calendar: z.string().min(1).optional(), privacy: z.enum(PRIVACY_LEVELS).optional() }).strict();

/** Weekly working hours, e.g. `{ mon: ["09:00-12:00", "13:00-17:00"], … }`, in the practitioner's zone. */
export const weeklyHours = z.partialRecord(
  z.enum(WEEKDAYS),
  z.array(z.string().regex(HOURS_RANGE, 'a range like "09:00-12:30" (24-hour clock)')
    .refine((r) => r.slice(0, 5) < r.slice(6), 'a range ends after it starts')),
);

/** Notifier connection ids or kinds (`email`, `sms`), tried in order; one name or a list. */
const channels = z.union([id, z.array(id).min(1)]).transform((c) => (Array.isArray(c) ? c : [c]));
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "48h", "90m" or "2d"');
const message = z.object({ subject: z.string().min(1), text: z.string().min(1) }).strict();
const ruleSet = {
  confirmations: z.boolean().optional(),
  changes: z.boolean().optional(),
  cancellations: z.boolean().optional(),
  reminders: z.array(z.object({ id: id.optional(), before: duration, channel: channels.optional() }).strict()).optional(),
  followUps: z.array(z.object({
    id: id.optional(), kind: z.enum(['thank_you', 'form', 'no_show']), after: duration, channel: channels.optional(), link: z.url().optional(),
  }).strict()).optional(),
};

/** Messages to patients, practitioners and staff (engine/notify.ts); absent: Meridian sends none. */
export const notificationsSchema = z.object({
  channel: channels.default(['email']),
  /** Change notices wait this long so a burst of edits (or cancel + rebook) becomes one message. */
  graceMinutes: z.number().min(0).max(60).default(3),
  quietHours: z.object({
    from: z.string().regex(HHMM_PATTERN, 'a time like "21:00"'), to: z.string().regex(HHMM_PATTERN, 'a time like "08:00"'),
  }).strict().optional(),
  ...ruleSet,
  templates: z.partialRecord(z.enum(PURPOSES as [Purpose, ...Purpose[]]), message).optional(),
  services: z.record(id, z.object(ruleSet).strict()).optional(),
  practitioners: z.object({ notify: z.boolean().default(true), privacy: z.enum(PRIVACY_LEVELS).default('minimal'), channel: channels.optional() }).strict().optional(),
  staff: z.object({ emails: z.array(z.email()).min(1), channel: channels.optional() }).strict().optional(),
}).strict();

/** One retention period (domain/retention.ts): `30d`, `12h`, `1y`, or `0` / `off` to keep forever. */
const retentionPeriod = z.unknown().transform((v, ctx) => {
  const p = normaliseRetention(v);
  if (p === undefined) {
    ctx.addIssue({ code: 'custom', message: `${RETENTION_MESSAGE}, not ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return p;
});

/** How long records holding patients' data are kept (absent kinds: the defaults). The audit log is not pruned. */
export const retentionSchema = z.object({
  deliveries: retentionPeriod.default(DEFAULT_RETENTION.deliveries),
  leads: retentionPeriod.default(DEFAULT_RETENTION.leads),
  notifications: retentionPeriod.default(DEFAULT_RETENTION.notifications),
  jobs: retentionPeriod.default(DEFAULT_RETENTION.jobs),
}).strict();

export const envSecretRef = z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'environment variable names are upper-case letters, digits and "_"') }).strict();
/** `{ stored: true }`: the value is kept encrypted in Meridian's store (set in the web app, by OAuth, or `connections set-secret`). */
export const storedSecretRef = z.object({ stored: z.literal(true) }).strict();
export const secretRef = z.union([envSecretRef, storedSecretRef]);

export const configSchema = z
  .object({
    clinic: z
      .object({
        id,
        name: z.string().min(1),
        timeZone: zone,
        language: z.string().min(2).default('en'),
        /** Targets every appointment of the clinic is written to (e.g. the whole-clinic feed). */
        targets: z.array(targetBinding).default([]),
        /** Working hours of practitioners who declare none (lead forms find slots within them). */
        hours: weeklyHours.optional(),
      })
      .strict(),
    locations: z
      .array(
        z
          .object({
            id,
            name: z.string().min(1),
            timeZone: zone.optional(),
            address: z.string().optional(),
            rooms: z.array(z.object({ id, name: z.string().min(1) }).strict()).default([]),
          })
          .strict(),
      )
      .default([]),
    services: z
      .array(z.object({ id, name: z.string().min(1), durationMinutes: z.number().int().positive().optional() }).strict())
      .default([]),
    practitioners: z
      .array(
        z
          .object({
            id,
            name: z.string().min(1),
            email: z.email().optional(),
            timeZone: zone.optional(),
            locations: z.array(id).default([]),
            targets: z.array(targetBinding).default([]),
            active: z.boolean().default(true),
            /** Services this practitioner offers (a lead for one is offered their free time). */
            services: z.array(id).default([]),
            hours: weeklyHours.optional(),
          })
          .strict(),
      )
      .default([]),
    connections: z
      .array(
        z
          .object({
            id,
            platform: z.string().min(1),
            name: z.string().min(1).optional(),
            baseUrl: z.url().optional(),
            privacy: z.enum(PRIVACY_LEVELS).optional(),
            config: z.record(z.string(), z.unknown()).default({}),
            secrets: z
              .record(
                z.string(),
                z.unknown().superRefine((v, ctx) => {
                  if (!secretRef.safeParse(v).success) {
                    ctx.addIssue({
                      code: 'custom',
                      message: 'a secret must be a reference like `{ env: MY_SECRET }` or `{ stored: true }` (kept encrypted in Meridian: the web app or `meridian connections set-secret`), never the value itself',
                    });
                  }
                }),
              )
              .default({}),
            refs: z
              .object({
                practitioners: z.record(z.string(), id).optional(),
                services: z.record(z.string(), id).optional(),
                locations: z.record(z.string(), id).optional(),
                defaultPractitioner: id.optional(),
              })
              .strict()
              .default({}),
          })
          .strict(),
      )
      .default([]),
    notifications: notificationsSchema.optional(),
    retention: retentionSchema.default(DEFAULT_RETENTION),
  })
  .strict();

export type ClinicConfig = z.output<typeof configSchema>;
export type ConnectionConfig = ClinicConfig['connections'][number];
