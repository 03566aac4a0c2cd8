// Typeform as a lead form (facts and addresses: FACTS.md).
// - `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`, no timestamp.
// - One JSON `form_response` per submission: `token` is the response id, `submitted_at` its time,
//   `answers[]` carry `field.{id,ref,type}` and a typed value; question titles are in `definition.fields`.
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { ConnectionMisconfigured, UnreadablePayload, type LeadFormConnector, type VerifyResult, type WebhookRequest } from '../../types.ts';
import { buildLead, jsonBody, str, type Answer } from '../mapping.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';
import { LEAD_FORM_SETTINGS } from '../../shared/settings.ts';

export const PLATFORM = 'typeform';

interface TfField { id?: string; ref?: string; type?: string; title?: string }
interface TfAnswer {
  type?: string;
  field?: TfField;
  text?: string; email?: string; phone_number?: string; date?: string; url?: string;
  number?: number; boolean?: boolean;
  choice?: { label?: string; other?: string };
  choices?: { labels?: string[]; other?: string };
}
interface TfPayload {
  event_id?: string;
  event_type?: string;
  form_response?: { token?: string; submitted_at?: string; definition?: { fields?: TfField[] }; answers?: TfAnswer[]; hidden?: Record<string, unknown> };
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'webhookSecret');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Typeform connection has no webhookSecret; unsigned deliveries are never accepted');
  const header = req.headers['typeform-signature'];
  if (!header) return { ok: false, reason: 'missing Typeform-Signature header' };
  if (!header.startsWith('sha256=')) return { ok: false, reason: 'Typeform-Signature is not sha256=…' };
  const sig = header.slice('sha256='.length);
  return keys.some((k) => signatureMatches(sig, hmacSha256(k, req.rawBody), 'base64')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

/** The value of a typed answer: each answer type keeps it under its own key. */
function valueOf(a: TfAnswer): string | string[] | undefined {
  switch (a.type) {
    case 'choice': return a.choice?.label ?? a.choice?.other;
    case 'choices': return [...(a.choices?.labels ?? []), ...(a.choices?.other ? [a.choices.other] : [])];
    case 'number': return str(a.number);
    case 'boolean': return a.boolean === undefined ? undefined : a.boolean ? 'yes' : 'no';
    default: return str(a[a.type as 'text' | 'email' | 'phone_number' | 'date' | 'url']);
  }
}

const KINDS: Record<string, Answer['kind']> = { email: 'email', phone_number: 'phone', date: 'date' };

export function parseLead(req: WebhookRequest, config: Record<string, unknown>) {
  const p = jsonBody(req.rawBody) as TfPayload;
  if (!p || typeof p !== 'object' || p.event_type !== 'form_response' || !p.form_response) {
    throw new UnreadablePayload(`not a Typeform form_response (event_type ${String((p as TfPayload | null)?.event_type).slice(0, 40)})`);
  }
  const r = p.form_response;
  const titles = new Map((r.definition?.fields ?? []).map((f) => [f.id, f.title ?? '']));
  const answers: Answer[] = [];
  for (const a of r.answers ?? []) {
    const value = valueOf(a);
    if (value === undefined) continue;
    const refs = [a.field?.ref, a.field?.id].filter((x): x is string => typeof x === 'string');
    answers.push({ refs, label: titles.get(a.field?.id) ?? '', value, kind: KINDS[a.type ?? ''] ?? 'text' });
  }
  // Hidden fields (set in the form's URL) can carry a service or practitioner chosen on the clinic's site.
  for (const [k, v] of Object.entries(r.hidden ?? {})) {
    const value = str(v);
    if (value) answers.push({ refs: [k], label: '', value });
  }
  return buildLead(answers, { submissionId: str(r.token) ?? '', submittedAt: str(r.submitted_at) ?? '', deliveryId: str(p.event_id) }, config);
}

export const connector: LeadFormConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'lead-form',
    displayName: 'Typeform',
    auth: [{ key: 'webhookSecret', label: 'Webhook secret', secret: true, required: true, help: 'The secret set on the form\'s webhook (Connect → Webhooks → Edit → Secret)' }],
    configFields: LEAD_FORM_SETTINGS,
    signature: 'Typeform-Signature: sha256=base64(HMAC-SHA256(secret, raw body)); no timestamp, so a replayed delivery is caught by its response token',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { signedWebhooks: true, structuredDates: true, fieldRefs: true },
    fidelity: 'Each completed response becomes a lead (answers matched by question ref or title). Date questions arrive as dates; anything else about times is read from the words. Meridian reads only what the webhook carries: it never reads responses back through Typeform\'s API, so a delivery Typeform gives up on is not recovered.',
  },
  verify,
  parseLead,
};
