// Shared by the lead-form connectors: answers (as each tool names them) → a Lead. A connection maps
// questions in `config.fields` ({ "<question ref, key or label>": "<lead field>" }); a question it does
// not map is matched by its label text (English defaults below). No tool's field names live here.
import { LEAD_FIELDS, UnreadablePayload, type Lead, type LeadField, type TimePreference } from '../types.ts';
import { toUtc } from '../../domain/time.ts';

/** One answered question, as a connector read it. */
export interface Answer {
  /** Stable identifiers of the question (Typeform ref and id, Tally key, Jotform `q3_name` and `name`). */
  refs: string[];
  /** The question's text as the patient saw it ('' when the tool does not send it). */
  label: string;
  /** Text, or several texts (a multiple choice). */
  value: string | string[];
  /** The tool typed the answer: a date answer becomes a structured preference, an e-mail field is one. */
  kind?: 'text' | 'email' | 'phone' | 'date';
}

const norm = (s: string) => s.toLowerCase().replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[^a-z0-9]+/gi, ' ').trim().toLowerCase();

/** Label rules in order: the first that matches wins (so "Practitioner's name" is not the patient's name). */
const LABEL_RULES: [RegExp, LeadField][] = [
  [/\b(birth|dob|born)\b/, 'ignore'],
  [/\be ?mail\b/, 'email'],
  [/\b(phone|mobile|cell|telephone|tel)\b/, 'phone'],
  [/\b(first|given|fore) ?name\b/, 'firstName'],
  [/\b(last|family|sur) ?name\b|\bsurname\b/, 'lastName'],
  [/\b(practitioner|therapist|doctor|provider|clinician|acupuncturist|who would you like|see whom|staff)\b/, 'practitioner'],
  [/\b(when|time|times|day|days|availability|available|date|slot)\b/, 'preferredTimes'],
  [/\b(service|treatment|modality|therapy|appointment type|type of (appointment|visit|session|treatment)|interested in)\b/, 'service'],
  [/\bname\b/, 'name'],
  [/\b(note|notes|message|comment|comments|anything else|tell us|reason|concern|symptoms?)\b/, 'notes'],
];

export function defaultField(label: string): LeadField | undefined {
  const l = norm(label);
  return LABEL_RULES.find(([re]) => re.test(l))?.[1];
}

function fieldMap(config: Record<string, unknown>): Map<string, LeadField> {
  const raw = config.fields;
  const out = new Map<string, LeadField>();
  if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v === 'string' && (LEAD_FIELDS as readonly string[]).includes(v)) out.set(norm(k), v as LeadField);
    }
  }
  return out;
}

/**
 * The lead field of an answer: the connection's mapping by ref, then by label; then the connector's
 * own names (`builtIn`, by ref); then the answer's type; then the label rules.
 */
export function fieldOf(a: Answer, map: Map<string, LeadField>, builtIn: Record<string, LeadField> = {}): LeadField | undefined {
  for (const r of a.refs) {
    const f = map.get(norm(r));
    if (f) return f;
  }
  if (a.label) {
    const f = map.get(norm(a.label));
    if (f) return f;
  }
  for (const r of a.refs) if (Object.hasOwn(builtIn, r)) return builtIn[r];
  if (a.kind === 'email') return 'email';
  if (a.kind === 'phone') return 'phone';
  return defaultField(a.label || a.refs[a.refs.length - 1] || '');
}

const texts = (v: string | string[]) => (Array.isArray(v) ? v : [v]).map((s) => s.trim()).filter(Boolean);

/** A date answer (`2026-03-10`, or an ISO instant) as a preference; anything else as words. */
function preferencesOf(a: Answer): TimePreference[] {
  return texts(a.value).map((t) => {
    if (a.kind === 'date' && /^\d{4}-\d{2}-\d{2}$/.test(t)) return { date: t };
    if (a.kind === 'date' && Number.isFinite(Date.parse(t)) && /T\d\d:\d\d/.test(t)) return { date: t.slice(0, 10) };
    return { text: t };
  });
}

export interface LeadMeta {
  submissionId: string;
  submittedAt: string;
  deliveryId?: string;
}

/** Build the lead. Throws UnreadablePayload without a submission id or a name (staff then fix the mapping). */
export function buildLead(answers: Answer[], meta: LeadMeta, config: Record<string, unknown>, builtIn?: Record<string, LeadField>): Lead {
  if (!meta.submissionId) throw new UnreadablePayload('the submission has no id');
  let submittedAt: string;
  try {
    submittedAt = toUtc(meta.submittedAt);
  } catch {
    throw new UnreadablePayload('the submission time is not a date');
  }
  const map = fieldMap(config);
  const got: Partial<Record<LeadField, string[]>> = {};
  const preferences: TimePreference[] = [];
  for (const a of answers) {
    const f = fieldOf(a, map, builtIn);
    if (!f || f === 'ignore') continue;
    if (f === 'preferredTimes') preferences.push(...preferencesOf(a));
    else (got[f] ??= []).push(...texts(a.value));
  }
  const first = (f: LeadField) => got[f]?.[0];
  const name = (got.name?.join(' ') || [first('firstName'), first('lastName')].filter(Boolean).join(' ')).trim();
  if (!name) throw new UnreadablePayload('no answer gave the patient\'s name (map one in the connection\'s config.fields)');
  return {
    submissionId: meta.submissionId.slice(0, 200),
    submittedAt,
    ...(meta.deliveryId ? { deliveryId: meta.deliveryId.slice(0, 200) } : {}),
    name: name.slice(0, 200),
    ...(first('email') ? { email: first('email')!.toLowerCase().slice(0, 254) } : {}),
    ...(first('phone') ? { phone: first('phone')!.slice(0, 40) } : {}),
    ...(got.service?.length ? { service: got.service.join(', ').slice(0, 200) } : {}),
    ...(first('practitioner') ? { practitioner: first('practitioner')!.slice(0, 200) } : {}),
    preferences,
    ...(got.notes?.length ? { notes: got.notes.join('\n').slice(0, 4000) } : {}),
  };
}

/** The body as JSON, or UnreadablePayload. */
export function jsonBody(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new UnreadablePayload('the body is not JSON');
  }
}

export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}
