// What the end-to-end source suite (test/e2e/sources.test.ts) needs from each booking platform: a fake
// of the platform's API (what fetch, list and write-back talk to) and the webhooks the platform sends.
// One module per platform in this folder, `export default` a `SourceDriver`; the suite finds them all.
// The suite runs the same cycle for each: book → duplicate → reschedule → late delivery → staff
// reschedule in Meridian (written back, or the appointment marked as diverging) → cancel, and checks
// that the Google fake ends with exactly one event in the right state and the audit trail is complete.

import type { FakeGoogle } from '../../fakes/google-calendar.ts';

export interface E2EBooking {
  /** A neutral id (a UUID); the driver turns it into the platform's own id form, always the same way. */
  id: string;
  /** UTC instants with Z. */
  start: string;
  end: string;
  /** The zone the booking was made in (IANA). */
  timeZone: string;
  patient: { name: string; email: string; phone?: string };
}

export type E2EEvent = 'created' | 'rescheduled' | 'canceled';

export interface E2EDelivery {
  /** The full URL to POST to: `webhookUrl` plus whatever the platform adds (a `?token=` for unsigned platforms). */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface SourceFake {
  /**
   * The connection's settings besides id, platform and refs. Secret values are given in clear here;
   * the suite passes them to the server through environment references, never in the YAML.
   */
  connection: { baseUrl?: string; config?: Record<string, unknown>; secrets: Record<string, string> };
  /** The platform's reference for the practitioner (staff id, calendar id…); the suite maps it. */
  practitionerRef: string;
  /** The platform's reference for the service, when its bookings carry one; the suite maps it. */
  serviceRef?: string;
  /** Make the fake API hold `b` in this state (what a fetch or a list answers from now on). */
  hold(b: E2EBooking, status: 'booked' | 'cancelled'): void;
  /**
   * The webhook the platform would send for `event` about `b`, as of `at`, to `webhookUrl` (the
   * connection's `/webhooks/<id>` on the server under test). Thin platforms send only ids here.
   */
  webhook(event: E2EEvent, b: E2EBooking, at: Date, webhookUrl: string): E2EDelivery;
  /** The booking as the platform holds it now (after a write-back), or undefined when unknown. */
  held(id: string): { start: string; end: string; cancelled: boolean } | undefined;
  /** Requests Meridian sent that break the platform's documented rules or official spec (must end empty). */
  violations: string[];
  close(): Promise<void>;
}

export interface SourceDriver {
  /** The platform id (the connector's folder name). */
  platform: string;
  /** True when the platform's API lets Meridian move a booking (else a staff move marks it diverging). */
  writesReschedule: boolean;
  /** True when the platform's API lets Meridian cancel a booking. */
  writesCancel: boolean;
  start(): Promise<SourceFake>;
}

const envName = (platform: string, key: string) => `E2E_SRC_${platform.replace(/\W/g, '_').toUpperCase()}_${key.replace(/\W/g, '_').toUpperCase()}`;

/**
 * A platform's connection as clinic YAML (one entry of `connections:`) with its secrets as environment
 * references, and the environment that gives them. Refs map the fake's practitioner (and service) to the
 * suites' `okafor` (and `acupuncture`); `config` is merged over the fake's own.
 */
export function platformConnection(platform: string, f: SourceFake, config?: Record<string, unknown>): { yaml: string; env: Record<string, string> } {
  const c = f.connection;
  const merged = c.config || config ? { ...c.config, ...config } : undefined;
  const yaml = [
    `  - id: ${platform}`,
    `    platform: ${platform}`,
    ...(c.baseUrl ? [`    baseUrl: ${JSON.stringify(c.baseUrl)}`] : []),
    ...(merged ? [`    config: ${JSON.stringify(merged)}`] : []),
    `    secrets: { ${Object.keys(c.secrets).map((k) => `${k}: { env: ${envName(platform, k)} }`).join(', ')} }`,
    `    refs:`,
    `      practitioners: { ${JSON.stringify(f.practitionerRef)}: okafor }`,
    ...(f.serviceRef ? [`      services: { ${JSON.stringify(f.serviceRef)}: acupuncture }`] : []),
  ].join('\n');
  return { yaml, env: Object.fromEntries(Object.entries(c.secrets).map(([k, v]) => [envName(platform, k), v])) };
}

/** The practitioner's Google calendar in the suites' clinic. */
export const CAL = 'okafor@lotusclinic.example';

/** The environment the Google connection's secret references (`secrets: env`) read. */
export const googleEnv = (g: FakeGoogle): Record<string, string> =>
  ({ E2E_G_ID: g.credentials.clientId, E2E_G_SECRET: g.credentials.clientSecret, E2E_G_REFRESH: g.credentials.refreshToken });

/**
 * The clinic the end-to-end suites share, up to and including its Google connection (one practitioner,
 * `okafor`, writing to CAL): callers append their other `connections:` entries and settings. `google` adds
 * lines to the Google connection; `secrets: 'env'` takes its secrets from googleEnv, `'stored'` leaves them
 * to be set through the CLI.
 */
export function clinicYaml(g: FakeGoogle, o: { google?: string[]; secrets?: 'env' | 'stored' } = {}): string {
  return [
    'clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago }',
    'locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]',
    'services: [{ id: acupuncture, name: Acupuncture, durationMinutes: 45 }]',
    'practitioners:',
    `  - { id: okafor, name: Dr. Ada Okafor, email: dr.okafor@lotusclinic.example, locations: [lakeview], targets: [{ connection: google, calendar: "${CAL}" }] }`,
    'connections:',
    '  - id: google',
    '    platform: google-calendar',
    `    baseUrl: ${g.url}`,
    ...(o.google ?? []).map((l) => `    ${l}`),
    `    config: { tokenUrl: ${g.tokenUrl} }`,
    ...((o.secrets ?? 'env') === 'env' ? ['    secrets: { clientId: { env: E2E_G_ID }, clientSecret: { env: E2E_G_SECRET }, refreshToken: { env: E2E_G_REFRESH } }'] : []),
  ].join('\n');
}
