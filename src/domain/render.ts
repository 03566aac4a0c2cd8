// Calendar (and CRM) event text from a template at a privacy level. Patient data is health data:
// each level allows a fixed set of placeholders, and a template that asks for more is refused.
import type { Appointment, PrivacyLevel } from './types.ts';

export interface RenderContext {
  clinicName: string;
  practitionerName?: string;
  serviceName?: string;
  locationName?: string;
  /** Display name of the platform the booking came from. */
  sourceName?: string;
}

export interface EventTemplate {
  title: string;
  description: string;
}

export interface RenderedText {
  title: string;
  description: string;
  location?: string;
}

const BUSY_VARS = ['clinic', 'practitioner', 'status', 'ref'] as const;
const MINIMAL_VARS = [...BUSY_VARS, 'service', 'location', 'source', 'patient.initials'] as const;
const FULL_VARS = [...MINIMAL_VARS, 'patient.name', 'patient.email', 'patient.phone', 'notes'] as const;

export const PLACEHOLDERS: Record<PrivacyLevel, readonly string[]> = {
  busy: BUSY_VARS,
  minimal: MINIMAL_VARS,
  full: FULL_VARS,
};

export const DEFAULT_TEMPLATES: Record<PrivacyLevel, EventTemplate> = {
  busy: { title: 'Busy', description: 'Appointment held by {{clinic}}.\nMeridian ref: {{ref}}' },
  minimal: {
    title: '{{patient.initials}} · {{service}}',
    description: '{{service}} with {{practitioner}} at {{location}}.\nBooked via {{source}}.\nMeridian ref: {{ref}}',
  },
  full: {
    title: '{{patient.name}} · {{service}}',
    description:
      '{{service}} with {{practitioner}} at {{location}}.\nPatient: {{patient.name}}\nEmail: {{patient.email}}\nPhone: {{patient.phone}}\nNotes: {{notes}}\nBooked via {{source}}.\nMeridian ref: {{ref}}',
  },
};

const PLACEHOLDER = /\{\{\s*([a-z.]+)\s*\}\}/g;

/** Placeholders in `template` that the level does not allow (empty when the template is fine). */
export function disallowedPlaceholders(template: EventTemplate, level: PrivacyLevel): string[] {
  const allowed = PLACEHOLDERS[level];
  const bad = new Set<string>();
  for (const text of [template.title, template.description]) {
    for (const m of text.matchAll(PLACEHOLDER)) if (!allowed.includes(m[1])) bad.add(m[1]);
  }
  return [...bad].sort();
}

export function initials(name: string): string {
  const parts = name
    .trim()
    .split(/[\s-]+/)
    .filter((p) => /\p{L}/u.test(p));
  if (parts.length === 0) return '?';
  const pick = parts.length === 1 ? [parts[0]] : [parts[0], parts[parts.length - 1]];
  return pick.map((p) => `${[...p.replace(/[^\p{L}]/gu, '')][0]?.toUpperCase() ?? ''}.`).join(' ');
}

const STATUS_PREFIX: Partial<Record<Appointment['status'], string>> = {
  requested: '[Requested] ',
  cancelled: '[Cancelled] ',
  no_show: '[No-show] ',
};

export function renderEventText(
  appt: Appointment,
  ctx: RenderContext,
  level: PrivacyLevel,
  template: EventTemplate = DEFAULT_TEMPLATES[level],
): RenderedText {
  const allowed = new Set(PLACEHOLDERS[level]);
  const values: Record<string, string | undefined> = {
    clinic: ctx.clinicName,
    practitioner: ctx.practitionerName,
    status: appt.status,
    ref: appt.id,
    service: ctx.serviceName ?? 'Appointment',
    location: ctx.locationName,
    source: ctx.sourceName ?? appt.origin.platform,
    'patient.initials': initials(appt.patient.name),
    'patient.name': appt.patient.name,
    'patient.email': appt.patient.email,
    'patient.phone': appt.patient.phone,
    notes: appt.notes,
  };
  const fill = (text: string) =>
    text
      .replace(PLACEHOLDER, (_m, key: string) => (allowed.has(key) ? (values[key] ?? '') : ''))
      // Drop lines whose only content was an empty value ("Email: ").
      .split('\n')
      .filter((line) => !/^[^{}]*:\s*$/.test(line))
      .join('\n')
      .replace(/ at \./g, '.')
      .trim();
  return {
    title: `${STATUS_PREFIX[appt.status] ?? ''}${fill(template.title)}`.trim(),
    description: fill(template.description),
    location: level === 'busy' ? undefined : ctx.locationName,
  };
}
