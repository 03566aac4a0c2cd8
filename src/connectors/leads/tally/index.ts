// Tally as a lead form (facts and addresses: FACTS.md).
// - With a signing secret set on the webhook, `Tally-Signature: base64(HMAC-SHA256(secret, JSON body))`,
//   no prefix, no timestamp. We require the secret: an unsigned Tally webhook is refused.
// - `eventType: FORM_RESPONSE`; `data.fields[]` carry `key`, `label`, `type`, `value`; choice questions
//   send option ids in `value` and the texts in `options[]`.
import { hmacSha256, secretsFor, signatureMatches } from '../../shared/signature.ts';
import { ConnectionMisconfigured, UnreadablePayload, type LeadFormConnector, type VerifyResult, type WebhookRequest } from '../../types.ts';
import { buildLead, jsonBody, str, type Answer } from '../mapping.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';
import { LEAD_FORM_SETTINGS } from '../../shared/settings.ts';

export const PLATFORM = 'tally';

interface TallyField { key?: string; label?: string; type?: string; value?: unknown; options?: { id?: string; text?: string }[] }
interface TallyPayload {
  eventId?: string;
  eventType?: string;
  createdAt?: string;
  data?: { responseId?: string; submissionId?: string; createdAt?: string; fields?: TallyField[] };
}

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'signingSecret');
  if (keys.length === 0) throw new ConnectionMisconfigured('the Tally connection has no signingSecret; set one on the Tally webhook (unsigned deliveries are never accepted)');
  const sig = req.headers['tally-signature'];
  if (!sig) return { ok: false, reason: 'missing Tally-Signature header' };
  return keys.some((k) => signatureMatches(sig, hmacSha256(k, req.rawBody), 'base64')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

const KINDS: Record<string, Answer['kind']> = { INPUT_EMAIL: 'email', INPUT_PHONE_NUMBER: 'phone', INPUT_DATE: 'date' };

/** A field's value as text: option ids resolved to their texts, arrays kept as several texts. */
function valueOf(f: TallyField): string | string[] | undefined {
  const text = (v: unknown) => f.options?.find((o) => o.id === v)?.text ?? str(v);
  if (Array.isArray(f.value)) return f.value.map(text).filter((x): x is string => x !== undefined);
  return f.value === null || f.value === undefined ? undefined : text(f.value);
}

export function parseLead(req: WebhookRequest, config: Record<string, unknown>) {
  const p = jsonBody(req.rawBody) as TallyPayload;
  if (!p || typeof p !== 'object' || p.eventType !== 'FORM_RESPONSE' || !p.data) {
    throw new UnreadablePayload(`not a Tally FORM_RESPONSE (eventType ${String((p as TallyPayload | null)?.eventType).slice(0, 40)})`);
  }
  const answers: Answer[] = [];
  for (const f of p.data.fields ?? []) {
    const value = valueOf(f);
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    answers.push({ refs: [f.key].filter((x): x is string => typeof x === 'string'), label: f.label ?? '', value, kind: KINDS[f.type ?? ''] ?? 'text' });
  }
  return buildLead(answers, {
    submissionId: str(p.data.submissionId) ?? str(p.data.responseId) ?? '',
    submittedAt: str(p.data.createdAt) ?? str(p.createdAt) ?? '',
    deliveryId: str(p.eventId),
  }, config);
}

export const connector: LeadFormConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'lead-form',
    displayName: 'Tally',
    auth: [{ key: 'signingSecret', label: 'Signing secret', secret: true, required: true, help: 'The signing secret set on the form\'s webhook (Integrations → Webhooks)' }],
    configFields: LEAD_FORM_SETTINGS,
    signature: 'Tally-Signature: base64(HMAC-SHA256(signing secret, raw body)); no timestamp',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { signedWebhooks: true, structuredDates: true, fieldRefs: true },
    fidelity: 'Each submission becomes a lead (answers matched by question key or label; choice answers by their option text). Date questions arrive as dates; times are read from the words. Meridian does not read submissions back through Tally\'s API.',
  },
  verify,
  parseLead,
};
