// Cross-reference checks the schema cannot express: every id refers to something that exists, every
// platform is known, targets are targets, secrets are ones the connector asks for, and templates use
// only placeholders the connection's privacy level allows.
import { getConnector } from '../connectors/registry.ts';
import { disallowedPlaceholders } from '../domain/render.ts';
import type { PrivacyLevel } from '../domain/types.ts';
import type { ClinicConfig, ConnectionConfig } from './schema.ts';
import { PATIENT_VARS, unknownPlaceholders } from '../domain/notify-plan.ts';
import { LEAD_FIELDS } from '../connectors/types.ts';
import type { ConfigField, NotifierConnector } from '../connectors/types.ts';
import { OUTBOUND_EVENTS } from '../engine/effects/webhooks-out.ts';
import { privacyOf } from '../engine/effects/render.ts';

/** A notifier's settings: its platform's own (`checkConfig`), and for webhook subscriptions Meridian's url / events / includePatient. */
function notifierIssues(n: NotifierConnector, config: Record<string, unknown>): CrossIssue[] {
  const at = (k: string) => [k];
  const out: CrossIssue[] = (n.checkConfig?.(config) ?? []).map((x) => ({ path: at(x.key), message: x.message }));
  if (!n.descriptor.capabilities.webhooks) return out;
  const { url, events, includePatient } = config;
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || !/^https?:$/.test(parsed.protocol)) out.push({ path: at('url'), message: 'the receiver\'s http(s) URL' });
  const known = OUTBOUND_EVENTS as readonly unknown[];
  if (!Array.isArray(events) || events.length === 0) out.push({ path: at('events'), message: `a list of event types (${OUTBOUND_EVENTS.join(', ')})` });
  else events.forEach((e, j) => {
    if (!known.includes(e)) out.push({ path: [...at('events'), j], message: `not an event type (one of ${OUTBOUND_EVENTS.join(', ')})` });
  });
  if (includePatient !== undefined && typeof includePatient !== 'boolean') out.push({ path: at('includePatient'), message: 'true or false (default false: no patient contact data)' });
  return out;
}

/** A lead form's settings: `fields` maps questions to lead fields; the slot search's horizon and notice. */
function leadFormIssues(config: Record<string, unknown>): CrossIssue[] {
  const out: CrossIssue[] = [];
  const at = (k: string, ...rest: string[]) => [k, ...rest];
  const f = config.fields;
  if (f !== undefined && (typeof f !== 'object' || f === null || Array.isArray(f))) out.push({ path: at('fields'), message: 'fields maps question refs or labels to lead fields' });
  else for (const [q, v] of Object.entries((f ?? {}) as Record<string, unknown>)) {
    if (!(LEAD_FIELDS as readonly unknown[]).includes(v)) out.push({ path: at('fields', q), message: `not a lead field (one of ${LEAD_FIELDS.join(', ')})` });
  }
  const n = (k: string, min: number, max: number) => {
    const v = config[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)) out.push({ path: at(k), message: `a number from ${min} to ${max}` });
  };
  n('searchWeeks', 1, 26);
  n('minNoticeHours', 0, 24 * 14);
  n('defaultDurationMinutes', 5, 480);
  return out;
}

export interface CrossIssue {
  path: (string | number)[];
  message: string;
}

function duplicates<T extends { id: string }>(items: T[], at: string, out: CrossIssue[]): void {
  const seen = new Set<string>();
  items.forEach((it, i) => {
    if (seen.has(it.id)) out.push({ path: [at, i, 'id'], message: `duplicate id "${it.id}"` });
    seen.add(it.id);
  });
}

/** The settings a descriptor describes (`configFields`), each of its type; keys flagged more precisely already are skipped. */
function fieldIssues(fields: ConfigField[], config: Record<string, unknown>, flagged: ReadonlySet<string>): CrossIssue[] {
  const out: CrossIssue[] = [];
  for (const f of fields) {
    const v = config[f.key];
    if (flagged.has(f.key)) continue;
    if (v === undefined || v === null || v === '') {
      if (f.required) out.push({ path: [f.key], message: `${f.label} is needed` });
      continue;
    }
    if (f.type === 'number' && (typeof v !== 'number' || !Number.isFinite(v))) out.push({ path: [f.key], message: 'a number' });
    else if (f.type === 'boolean' && typeof v !== 'boolean') out.push({ path: [f.key], message: 'true or false' });
    else if (f.type === 'list' && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) out.push({ path: [f.key], message: 'a list of texts' });
    else if (f.type === 'select' && f.options && !f.options.some((o) => o.value === v)) out.push({ path: [f.key], message: `one of ${f.options.map((o) => o.value).join(', ')}` });
    else if (f.type !== 'number' && f.type !== 'boolean' && f.type !== 'list' && typeof v !== 'string') out.push({ path: [f.key], message: 'a text' });
    else if (f.type === 'url' && !URL.canParse(String(v))) out.push({ path: [f.key], message: 'a web address (https://…)' });
  }
  return out;
}

/**
 * Problems with one connection's settings (`config`), paths relative to it: the platform's own checks
 * (`checkConfig`), Meridian's for notifiers and lead forms, the types of the settings its descriptor describes,
 * and the event template against the connection's privacy level. Used by `meridian validate` and the API.
 */
export function connectionConfigIssues(conn: Pick<ConnectionConfig, 'platform' | 'privacy' | 'config'>): CrossIssue[] {
  const connector = getConnector(conn.platform);
  if (!connector) return [];
  const out: CrossIssue[] = [];
  if (connector.descriptor.role === 'lead-form') out.push(...leadFormIssues(conn.config));
  if (connector.descriptor.role === 'notifier') out.push(...notifierIssues(connector as NotifierConnector, conn.config));
  out.push(...fieldIssues(connector.descriptor.configFields ?? [], conn.config, new Set(out.map((x) => String(x.path[0])))));
  const tpl = conn.config.template as { title?: unknown; description?: unknown } | undefined;
  if (tpl !== undefined) {
    if (typeof tpl !== 'object' || tpl === null || typeof tpl.title !== 'string' || typeof tpl.description !== 'string') {
      out.push({ path: ['template'], message: 'a template has a `title` and a `description`, both text' });
    } else {
      const level: PrivacyLevel = privacyOf(conn);
      const bad = disallowedPlaceholders({ title: tpl.title, description: tpl.description }, level);
      if (bad.length) out.push({ path: ['template'], message: `placeholders not allowed at privacy "${level}": ${bad.map((b) => `{{${b}}}`).join(', ')}` });
    }
  }
  return out;
}

export function crossCheck(c: ClinicConfig): CrossIssue[] {
  const out: CrossIssue[] = [];
  duplicates(c.locations, 'locations', out);
  duplicates(c.services, 'services', out);
  duplicates(c.practitioners, 'practitioners', out);
  duplicates(c.connections, 'connections', out);
  const locations = new Set(c.locations.map((l) => l.id));
  const services = new Set(c.services.map((s) => s.id));
  const practitioners = new Set(c.practitioners.map((p) => p.id));
  const conns = new Map(c.connections.map((x) => [x.id, x]));

  const checkBinding = (path: (string | number)[], connection: string) => {
    const conn = conns.get(connection);
    if (!conn) out.push({ path, message: `no connection "${connection}" is declared` });
    else if (getConnector(conn.platform)?.descriptor.role !== 'target') out.push({ path, message: `connection "${connection}" is not a calendar or CRM target` });
  };
  c.clinic.targets.forEach((t, i) => checkBinding(['clinic', 'targets', i, 'connection'], t.connection));
  c.practitioners.forEach((p, i) => {
    p.locations.forEach((l, j) => {
      if (!locations.has(l)) out.push({ path: ['practitioners', i, 'locations', j], message: `no location "${l}" is declared` });
    });
    p.targets.forEach((t, j) => checkBinding(['practitioners', i, 'targets', j, 'connection'], t.connection));
    p.services.forEach((s, j) => {
      if (!services.has(s)) out.push({ path: ['practitioners', i, 'services', j], message: `no service "${s}" is declared` });
    });
  });

  c.connections.forEach((conn, i) => {
    const connector = getConnector(conn.platform);
    if (!connector) {
      out.push({ path: ['connections', i, 'platform'], message: `unknown platform "${conn.platform}" (see \`meridian platforms\`)` });
      return;
    }
    const known = new Set(connector.descriptor.auth.filter((a) => a.secret).map((a) => a.key));
    for (const key of Object.keys(conn.secrets)) {
      const base = key.endsWith('Previous') ? key.slice(0, -'Previous'.length) : key;
      if (!known.has(base)) out.push({ path: ['connections', i, 'secrets', key], message: `${connector.descriptor.displayName} has no secret "${key}" (known: ${[...known].join(', ') || 'none'})` });
    }
    const r = conn.refs;
    for (const [ext, p] of Object.entries(r.practitioners ?? {})) {
      if (!practitioners.has(p)) out.push({ path: ['connections', i, 'refs', 'practitioners', ext], message: `no practitioner "${p}" is declared` });
    }
    for (const [ext, s] of Object.entries(r.services ?? {})) {
      if (!services.has(s)) out.push({ path: ['connections', i, 'refs', 'services', ext], message: `no service "${s}" is declared` });
    }
    for (const [ext, l] of Object.entries(r.locations ?? {})) {
      if (!locations.has(l)) out.push({ path: ['connections', i, 'refs', 'locations', ext], message: `no location "${l}" is declared` });
    }
    if (r.defaultPractitioner && !practitioners.has(r.defaultPractitioner)) {
      out.push({ path: ['connections', i, 'refs', 'defaultPractitioner'], message: `no practitioner "${r.defaultPractitioner}" is declared` });
    }
    for (const x of connectionConfigIssues(conn)) out.push({ path: ['connections', i, 'config', ...x.path], message: x.message });
  });
  out.push(...notificationIssues(c));
  return out;
}

/** The `notifications:` block: channels name notifier connections (or a kind one provides), services exist, templates use known placeholders. */
function notificationIssues(c: ClinicConfig): CrossIssue[] {
  const n = c.notifications;
  if (!n) return [];
  const out: CrossIssue[] = [];
  const notifiers = c.connections.map((x) => ({ id: x.id, d: getConnector(x.platform)?.descriptor })).filter((x) => x.d?.role === 'notifier');
  const kinds = new Set(notifiers.flatMap((x) => x.d?.role === 'notifier' ? Object.entries(x.d.capabilities).filter(([k, v]) => v && (k === 'email' || k === 'sms')).map(([k]) => k) : []));
  const channel = (path: (string | number)[], list: string[] | undefined) => list?.forEach((ch, j) => {
    if (!notifiers.some((x) => x.id === ch) && !kinds.has(ch)) out.push({ path: [...path, j], message: `no notifier connection "${ch}" and none of kind "${ch}" is declared` });
  });
  const rules = (path: (string | number)[], r: { reminders?: { channel?: string[] }[]; followUps?: { channel?: string[] }[] }) => {
    r.reminders?.forEach((x, i) => channel([...path, 'reminders', i, 'channel'], x.channel));
    r.followUps?.forEach((x, i) => channel([...path, 'followUps', i, 'channel'], x.channel));
  };
  channel(['notifications', 'channel'], n.channel);
  rules(['notifications'], n);
  const services = new Set(c.services.map((s) => s.id));
  for (const [sid, r] of Object.entries(n.services ?? {})) {
    if (!services.has(sid)) out.push({ path: ['notifications', 'services', sid], message: `no service "${sid}" is declared` });
    rules(['notifications', 'services', sid], r);
  }
  channel(['notifications', 'practitioners', 'channel'], n.practitioners?.channel);
  channel(['notifications', 'staff', 'channel'], n.staff?.channel);
  for (const [purpose, t] of Object.entries(n.templates ?? {})) {
    const bad = t ? unknownPlaceholders(t, PATIENT_VARS) : [];
    if (bad.length) out.push({ path: ['notifications', 'templates', purpose], message: `unknown placeholders: ${bad.map((b) => `{{${b}}}`).join(', ')} (known: ${PATIENT_VARS.join(', ')})` });
  }
  return out;
}
