// `meridian parse-webhook --platform typeform|tally|jotform|lead-form`: a lead form's delivery verified as the
// server verifies it, then read as the server reads it — the lead (contact, service, practitioner, preferred
// times as the patient gave them), and what Meridian makes of it in the clinic: the service and practitioner it
// resolves to (with a clinic configuration) and the preferred times as instants in the clinic's zone, within the
// horizon the slot search uses (src/engine/inbound/leads.ts). Working hours and busy time are not applied here:
// that needs the schedule, which only the running server has.
import { Temporal } from 'temporal-polyfill';
import { ConnectionMisconfigured, UnreadablePayload, type Lead, type LeadFormConnector, type WebhookRequest } from '../connectors/types.ts';
import type { ClinicConfig, ConnectionConfig } from '../config/schema.ts';
import { DEFAULTS, NO_PREFERENCE, resolveNamed } from '../engine/inbound/leads.ts';
import { preferenceWindows } from '../domain/slots.ts';
import { isIanaZone, toUtc } from '../domain/time.ts';

export class LeadUsageError extends Error {}

export interface ParseLeadOptions {
  connector: LeadFormConnector;
  rawBody: Buffer;
  headers: Record<string, string>;
  url: string;
  now: Date;
  secret?: string;
  /** IANA zone the patient's words are read in: --zone, else the configuration's clinic, else UTC. */
  zone?: string;
  /** The clinic configuration (--config), when given, and its file. */
  config?: ClinicConfig;
  configFile?: string;
  /** The lead-form connection of the configuration whose `config` (fields, horizon) and refs apply. */
  connection?: string;
}

export interface ParseLeadResult {
  code: 0 | 3 | 4;
  output: Record<string, unknown>;
}

const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/** The secrets `verify` gets from --secret: each tool's own key; the plain form's signing secret or URL token. */
function secretsOf(c: LeadFormConnector, headers: Record<string, string>, secret: string | undefined): Record<string, string> {
  if (!secret) return {};
  if (c.descriptor.id === 'lead-form') return headers['x-meridian-signature'] ? { signingSecret: secret } : { webhookToken: secret };
  const key = c.descriptor.auth.find((a) => a.secret && a.required)?.key ?? c.descriptor.auth.find((a) => a.secret)?.key;
  return key ? { [key]: secret } : {};
}

/** The configuration's connection for this tool: the one named, else the only one of the platform. */
function connectionOf(config: ClinicConfig | undefined, platform: string, id: string | undefined): ConnectionConfig | undefined {
  if (!config) {
    if (id) throw new LeadUsageError('--connection needs a clinic configuration (--config)');
    return undefined;
  }
  if (id) {
    const c = config.connections.find((x) => x.id === id);
    if (!c) throw new LeadUsageError(`the configuration has no connection "${id}"`);
    if (c.platform !== platform) throw new LeadUsageError(`connection "${id}" is a ${c.platform} connection, not ${platform}`);
    return c;
  }
  const mine = config.connections.filter((x) => x.platform === platform);
  if (mine.length > 1) throw new LeadUsageError(`the configuration has several ${platform} connections (${mine.map((c) => c.id).join(', ')}): name one with --connection`);
  return mine[0];
}

/** An instant as the clinic reads it: `2026-03-10T10:00:00-06:00[America/Chicago]`. */
const local = (iso: string, zone: string) => Temporal.Instant.from(iso).toZonedDateTimeISO(zone).toString({ smallestUnit: 'minute' });

/** What Meridian makes of a verified lead in the clinic (no schedule: preferences, not slots). */
function reading(lead: Lead, o: ParseLeadOptions, conn: ConnectionConfig | undefined, timeZone: string) {
  const cfg = o.config;
  const settings = conn?.config ?? {};
  const service = cfg ? resolveNamed(lead.service, conn?.refs.services, cfg.services) : undefined;
  const noPreference = lead.practitioner !== undefined && NO_PREFERENCE.test(lead.practitioner.trim());
  const practitioners = cfg ? cfg.practitioners.filter((p) => p.active) : [];
  const practitioner = cfg && lead.practitioner && !noPreference ? resolveNamed(lead.practitioner, conn?.refs.practitioners, practitioners) : undefined;
  const durationMinutes = service?.durationMinutes ?? num(settings.defaultDurationMinutes, DEFAULTS.defaultDurationMinutes);
  const from = new Date(o.now.getTime() + num(settings.minNoticeHours, DEFAULTS.minNoticeHours) * 3_600_000);
  const to = new Date(from.getTime() + num(settings.searchWeeks, DEFAULTS.searchWeeks) * 7 * 86_400_000);
  const prefs = preferenceWindows(lead.preferences, { timeZone, from, to }, durationMinutes);
  return {
    timeZone,
    // Without a configuration nothing is resolved (no `resolved` below): only the zone and the horizon apply.
    config: o.configFile ?? null,
    ...(conn ? { connection: conn.id } : {}),
    service: {
      ...(lead.service !== undefined ? { text: lead.service } : {}),
      ...(service ? { id: service.id, name: service.name, ...(service.durationMinutes ? { durationMinutes: service.durationMinutes } : {}) } : {}),
      ...(cfg ? { resolved: Boolean(service) } : {}),
    },
    practitioner: {
      ...(lead.practitioner !== undefined ? { text: lead.practitioner } : {}),
      ...(noPreference ? { noPreference: true } : {}),
      ...(practitioner ? { id: practitioner.id, name: practitioner.name, offersService: service ? practitioner.services.includes(service.id) : undefined } : {}),
      ...(cfg ? { resolved: Boolean(practitioner) } : {}),
    },
    preferredTimes: {
      // The horizon of the slot search: from the minimum notice on, for the search weeks.
      from: toUtc(from), to: toUtc(to), durationMinutes,
      windows: prefs.windows.map((w) => ({ start: w.start, end: w.end, local: { start: local(w.start, timeZone), end: local(w.end, timeZone) } })),
      unread: prefs.unread,
    },
  };
}

export function parseLeadCommand(o: ParseLeadOptions): ParseLeadResult {
  const c = o.connector;
  const conn = connectionOf(o.config, c.descriptor.id, o.connection);
  const timeZone = o.zone ?? o.config?.clinic.timeZone ?? 'UTC';
  if (!isIanaZone(timeZone)) throw new LeadUsageError(`--zone must be an IANA time zone (like America/Chicago), not "${timeZone}"`);
  const req: WebhookRequest = { rawBody: o.rawBody, headers: o.headers, url: o.url, now: o.now };
  let verified;
  try {
    verified = c.verify(req, secretsOf(c, o.headers, o.secret), conn?.config ?? {});
  } catch (err) {
    if (err instanceof ConnectionMisconfigured) throw new LeadUsageError(`${c.descriptor.displayName}: pass --secret (${err.message})`);
    throw err;
  }
  if (!verified.ok) return { code: 3, output: { verified: false, lead: null, reason: verified.reason } };
  let lead: Lead;
  try {
    lead = c.parseLead(req, conn?.config ?? {});
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    return { code: 4, output: { verified: true, lead: null, error: err.message } };
  }
  return { code: 0, output: { verified: true, lead, read: reading(lead, o, conn, timeZone) } };
}
