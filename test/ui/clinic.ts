// The clinic the web-app tests run against: the real `bin/meridian serve` with three practitioners,
// Calendly (signed webhooks made by the connector's sampleWebhook), Okafor's Google Calendar (the
// fake), ICS feeds; staff accounts added through `meridian users add --password-stdin`.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getSource } from '../../src/connectors/registry.ts';
import { parseCalendar } from '../../src/connectors/shared/icalendar.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { meridian, tempDir } from '../helpers.ts';
import { createKey, serve, type Served } from '../e2e/serve.ts';
import { addDays, fromWall, todayIn } from '../../src/ui/time.ts';

export const TZ = 'America/Chicago';
export const HOST = 'https://api.calendly.com/users/okafor-host';
export const EVENT_TYPE = 'https://api.calendly.com/event_types/acu';
export const GOOGLE_CAL = 'okafor@lotusclinic.example';

const config = (g: FakeGoogle) => `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: ${TZ}, targets: [{ connection: feeds }] }
locations:
  - { id: lakeview, name: Lakeview, timeZone: ${TZ} }
  - { id: evanston, name: Evanston, timeZone: ${TZ} }
services:
  - { id: acupuncture, name: Acupuncture, durationMinutes: 45 }
  - { id: massage, name: Therapeutic massage, durationMinutes: 60 }
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, email: dr.okafor@lotusclinic.example, locations: [lakeview], targets: [{ connection: google, calendar: "${GOOGLE_CAL}" }, { connection: feeds }] }
  - { id: brennan, name: "Siobhan Brennan, LMT", locations: [lakeview, evanston], targets: [{ connection: feeds }] }
  - { id: nakamura, name: Dr. Kenji Nakamura, email: k.nakamura@lotusclinic.example, locations: [evanston], targets: [{ connection: feeds }] }
connections:
  - id: calendly
    platform: calendly
    name: Calendly (clinic account)
    secrets: { signingKey: { env: UI_CALENDLY_KEY } }
    refs: { practitioners: { "${HOST}": okafor }, services: { "${EVENT_TYPE}": acupuncture } }
  - id: google
    platform: google-calendar
    name: Dr. Okafor's Google Calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl} }
    secrets: { clientId: { env: UI_G_ID }, clientSecret: { env: UI_G_SECRET }, refreshToken: { env: UI_G_REFRESH } }
  - id: feeds
    platform: ics-publish
    name: Calendar feeds
  # Its token's variable is never set: the connections page shows it as needing setup.
  - id: website
    platform: lead-form
    name: Website requests
    secrets: { webhookToken: { env: UI_LEAD_TOKEN_UNSET } }
`;

export interface Clinic {
  srv: Served;
  google: FakeGoogle;
  apiKey: string;
  /** A day two days ahead in the clinic's zone (nothing about it is in the past). */
  day: string;
  /** An instant at a wall time on `day` (or `day + offset`). */
  at(hhmm: string, offset?: number): string;
  addUser(email: string, role: string, password: string, practitioner?: string): Promise<{ code: number; out: string }>;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** A signed Calendly `invitee.created` for Okafor; returns the appointment id. */
  calendly(start: string, minutes: number, patient: { name: string; email: string }): Promise<string>;
  /** Live (not cancelled) entries of a practitioner's ICS feed. */
  feed(practitioner: string): Promise<{ uid: string; start: string; status?: string }[]>;
  close(): Promise<void>;
}

export async function startClinic(): Promise<Clinic> {
  const google = await startFakeGoogle();
  const tmp = tempDir('meridian-ui-');
  const cfg = join(tmp.dir, 'clinic.yaml');
  writeFileSync(cfg, config(google));
  const signingKey = `ui-${randomUUID()}`;
  const env = { UI_CALENDLY_KEY: signingKey, UI_G_ID: google.credentials.clientId, UI_G_SECRET: google.credentials.clientSecret, UI_G_REFRESH: google.credentials.refreshToken };
  const common = ['--data', tmp.dir, '--config', cfg];
  const srv = await serve(['serve', ...common], env);
  const cli = async (args: string[], input?: string) => {
    const r = await meridian([...args, ...common], { env: { ...env, LOG_LEVEL: 'warn' }, input });
    return { code: r.code, out: `${r.stdout}${r.stderr}` };
  };
  const apiKey = await createKey(common, env, 'admin', 'ui-tests');
  const day = addDays(todayIn(TZ), 2);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${srv.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: await res.json() as any };
  };
  const calendly = getSource('calendly')!;
  return {
    srv, google, apiKey, day,
    at: (hhmm, offset = 0) => fromWall(`${addDays(day, offset)}T${hhmm}`, TZ),
    addUser: (email, role, password, practitioner) => cli(['users', 'add', email, '--role', role, '--password-stdin', ...(practitioner ? ['--practitioner', practitioner] : [])], `${password}\n`),
    api,
    async calendly(start, minutes, patient) {
      const end = new Date(Date.parse(start) + minutes * 60_000).toISOString().replace('.000Z', 'Z');
      const { rawBody, headers } = calendly.sampleWebhook!({ event: 'created', bookingId: randomUUID(), start, end, timeZone: TZ, patient, hostRef: HOST, serviceRef: EVENT_TYPE }, { signingKey }, new Date());
      const res = await fetch(`${srv.url}/webhooks/calendly`, { method: 'POST', headers, body: new Uint8Array(rawBody) });
      const body = await res.json() as any;
      if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(body)}`);
      return body.changes[0].appointmentId as string;
    },
    async feed(practitioner) {
      const f = (await api('GET', '/feeds')).body.items.find((x: { scope: string; scopeId: string }) => x.scope === 'practitioner' && x.scopeId === practitioner);
      const res = await fetch(`${srv.url}${f.path}`);
      return parseCalendar(await res.text()).events.filter((e) => e.status !== 'CANCELLED');
    },
    async close() {
      await srv.stop();
      await google.close();
      tmp.cleanup();
    },
  };
}
