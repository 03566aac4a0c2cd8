// Jotform as a lead form (facts and addresses: FACTS.md).
// - Jotform signs nothing: the webhook URL carries `?token=<webhookToken>` (checked in constant time).
// - The POST is multipart/form-data with `formID`, `submissionID`, `formTitle`, `pretty` and `rawRequest`,
//   a JSON text whose answer keys are `q<question id>_<field name>` (the name Jotform derives from the
//   label). Composite answers are objects (`{first,last}`, `{month,day,year}`, …).
// - No submission time is sent: the lead's time is when Meridian received it.
import { verifyUrlToken } from '../../shared/signature.ts';
import { UnreadablePayload, type LeadFormConnector, type VerifyResult, type WebhookRequest } from '../../types.ts';
import { formFields } from '../form-body.ts';
import { buildLead, str, type Answer } from '../mapping.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';
import { LEAD_FORM_SETTINGS } from '../../shared/settings.ts';

export const PLATFORM = 'jotform';
const ANSWER_KEY = /^q(\d+)_(.+)$/;

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  return verifyUrlToken(req, secrets, 'Jotform');
}

const pad = (s: string) => s.padStart(2, '0');

/** A composite answer as text: a date as `YYYY-MM-DD[ HH:MM]`, a name or address as its parts. */
function valueOf(v: unknown): { value: string | string[]; kind?: Answer['kind'] } | undefined {
  if (Array.isArray(v)) return { value: v.map(str).filter((x): x is string => !!x) };
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.full === 'string') return { value: o.full, kind: 'phone' };
    if (o.year && o.month && o.day) {
      const date = `${str(o.year)}-${pad(str(o.month)!)}-${pad(str(o.day)!)}`;
      if (o.hour === undefined || o.hour === '') return { value: date, kind: 'date' };
      return { value: `${date} ${str(o.hour)}:${pad(str(o.min) || '00')}${o.ampm ? ` ${str(o.ampm)}` : ''}` };
    }
    if (typeof o.date === 'string') return o.date ? { value: o.date } : undefined; // appointment field: "YYYY-MM-DD HH:MM"
    const parts = Object.values(o).map(str).filter((x): x is string => !!x && x.trim() !== '');
    return parts.length ? { value: parts.join(' ') } : undefined;
  }
  const s = str(v);
  return s ? { value: s } : undefined;
}

/** `preferredTime` → "preferred Time": the field name stands in for the label Jotform does not send. */
const labelOf = (name: string) => name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ');

export function parseLead(req: WebhookRequest, config: Record<string, unknown>) {
  const form = formFields(req.rawBody, req.headers['content-type']);
  const rawRequest = form.get('rawRequest');
  if (!rawRequest) throw new UnreadablePayload('the delivery has no rawRequest field');
  let answersIn: Record<string, unknown>;
  try {
    answersIn = JSON.parse(rawRequest) as Record<string, unknown>;
  } catch {
    throw new UnreadablePayload('rawRequest is not JSON');
  }
  if (!answersIn || typeof answersIn !== 'object') throw new UnreadablePayload('rawRequest is not an object');
  const answers: Answer[] = [];
  for (const [key, raw] of Object.entries(answersIn)) {
    const m = ANSWER_KEY.exec(key);
    if (!m) continue; // slug, tracking and upload bookkeeping
    const v = valueOf(raw);
    if (!v) continue;
    const name = m[2];
    const kind = v.kind ?? (/e-?mail/i.test(name) ? 'email' : undefined);
    answers.push({ refs: [key, name], label: labelOf(name), value: v.value, ...(kind ? { kind } : {}) });
  }
  return buildLead(answers, { submissionId: form.get('submissionID') ?? '', submittedAt: req.now.toISOString() }, config);
}

export const connector: LeadFormConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'lead-form',
    displayName: 'Jotform',
    auth: [{ key: 'webhookToken', label: 'Webhook URL token', secret: true, required: true, help: 'An unguessable value; give Jotform the webhook URL …/leads/<connection>?token=<this value>' }],
    configFields: LEAD_FORM_SETTINGS,
    signature: 'unsigned: the webhook URL carries ?token=<webhookToken>',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { signedWebhooks: false, structuredDates: true, fieldRefs: true },
    fidelity: 'Each submission becomes a lead. Jotform sends no question labels, so answers are matched by their field name (q3_fullName or fullName) or the words of that name; map the rest in config.fields. Jotform signs nothing: anyone who learns the webhook URL can post a lead, which is why leads only ever become requests for staff to confirm. The submission time is when Meridian received it.',
  },
  verify,
  parseLead,
};
