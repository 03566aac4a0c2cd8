// Cross-reference checks the schema cannot express: every id refers to something that exists, every
// platform is known, targets are targets, secrets are ones the connector asks for, and templates use
// only placeholders the connection's privacy level allows.
import { getConnector } from '../connectors/registry.ts';
import { disallowedPlaceholders } from '../domain/render.ts';
import { DEFAULT_PRIVACY, type PrivacyLevel } from '../domain/types.ts';
import type { ClinicConfig } from './schema.ts';

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
    const tpl = conn.config.template as { title?: unknown; description?: unknown } | undefined;
    if (tpl !== undefined) {
      if (typeof tpl !== 'object' || tpl === null || typeof tpl.title !== 'string' || typeof tpl.description !== 'string') {
        out.push({ path: ['connections', i, 'config', 'template'], message: 'a template has a `title` and a `description`, both text' });
      } else {
        const level: PrivacyLevel = conn.privacy ?? (connector.descriptor.role === 'target' ? connector.descriptor.defaultPrivacy : DEFAULT_PRIVACY);
        const bad = disallowedPlaceholders({ title: tpl.title, description: tpl.description }, level);
        if (bad.length) out.push({ path: ['connections', i, 'config', 'template'], message: `placeholders not allowed at privacy "${level}": ${bad.map((b) => `{{${b}}}`).join(', ')}` });
      }
    }
  });
  return out;
}
