// The clinic's setup as declared in meridian.yaml. Validated with zod for shape, then against the
// connector registry and itself for references (validate.ts). Secrets are never values here: each
// one is a reference `{ env: NAME }` to an environment variable, or is stored encrypted via the API.
import { z } from 'zod';
import { isIanaZone } from '../domain/time.ts';
import { PRIVACY_LEVELS } from '../domain/types.ts';

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/i, 'ids are 1–63 letters, digits, ".", "_" or "-"');
const zone = z.string().refine(isIanaZone, { message: 'not an IANA time zone (e.g. "Europe/London")' });

const targetBinding = z.object({ connection: id, calendar: z.string().min(1).optional() }).strict();

export const secretRef = z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'environment variable names are upper-case letters, digits and "_"') }).strict();

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
                      message: 'a secret must be a reference like `{ env: MY_SECRET }`, never the value itself (or store it encrypted: `meridian connections set-secret`)',
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
  })
  .strict();

export type ClinicConfig = z.output<typeof configSchema>;
export type ConnectionConfig = ClinicConfig['connections'][number];
