// A plain lead form: the clinic's own website form (or any tool that can POST) sends JSON or
// application/x-www-form-urlencoded. This format is Meridian's own (README "Lead forms"):
//   name | firstName + lastName, email, phone, service, practitioner, notes, submissionId, submittedAt,
//   preferredTimes: "Tuesday afternoon" | ["…", …] | [{ "start": "…Z", "end": "…Z" } | { "date": "2026-03-10", "from": "14:00", "to": "17:00" }]
// Other keys are matched like any form's questions (config.fields, then the label rules).
// Authenticated by `X-Meridian-Signature: sha256=<hex HMAC-SHA256(signingSecret, raw body)>` or, for
// senders that cannot sign, by `?token=<webhookToken>` in the URL.
import { createHash } from 'node:crypto';
import { hmacSha256, secretsFor, signatureMatches, urlTokenMatches } from '../../shared/signature.ts';
import { ConnectionMisconfigured, UnreadablePayload, type LeadFormConnector, type LeadField, type TimePreference, type VerifyResult, type WebhookRequest } from '../../types.ts';
import { buildLead, jsonBody, str, type Answer } from '../mapping.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';
import { LEAD_FORM_SETTINGS } from '../../shared/settings.ts';

export const PLATFORM = 'lead-form';
const SIGNATURE_HEADER = 'x-meridian-signature';
const META = new Set(['submissionId', 'submittedAt', 'preferredTimes']);
/** Our own field names map to themselves unless the connection's config.fields says otherwise. */
const OWN_FIELDS: Record<string, LeadField> = Object.fromEntries((['name', 'firstName', 'lastName', 'email', 'phone', 'service', 'practitioner', 'notes'] as const).map((f) => [f, f]));

export function verify(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'signingSecret');
  const tokens = secretsFor(secrets, 'webhookToken');
  if (keys.length === 0 && tokens.length === 0) throw new ConnectionMisconfigured('the lead form connection has neither a signingSecret nor a webhookToken');
  const header = req.headers[SIGNATURE_HEADER];
  if (header && keys.length) {
    const sig = header.startsWith('sha256=') ? header.slice(7) : '';
    return keys.some((k) => signatureMatches(sig, hmacSha256(k, req.rawBody), 'hex')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
  }
  if (tokens.length && urlTokenMatches(req.url, secrets, 'webhookToken')) return { ok: true };
  return { ok: false, reason: keys.length ? 'missing X-Meridian-Signature header' : 'missing or wrong ?token= in the URL' };
}

/** The body as key → value(s): JSON object or a form. */
function bodyOf(req: WebhookRequest): Record<string, unknown> {
  const ct = (req.headers['content-type'] ?? '').toLowerCase();
  if (ct.includes('json') || (!ct && req.rawBody[0] === 0x7b)) {
    const b = jsonBody(req.rawBody);
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new UnreadablePayload('the body is not a JSON object');
    return b as Record<string, unknown>;
  }
  if (!ct.startsWith('application/x-www-form-urlencoded')) throw new UnreadablePayload(`send JSON or a form-encoded body, not ${ct.slice(0, 60) || 'an untyped body'}`);
  const form = new URLSearchParams(req.rawBody.toString('utf8'));
  const out: Record<string, unknown> = {};
  for (const k of new Set(form.keys())) {
    const all = form.getAll(k);
    out[k] = all.length > 1 ? all : all[0];
  }
  return out;
}

function structured(v: unknown): TimePreference | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.start === 'string' && typeof o.end === 'string') return { start: o.start, end: o.end };
  if (typeof o.date === 'string') return { date: o.date, ...(typeof o.from === 'string' ? { from: o.from } : {}), ...(typeof o.to === 'string' ? { to: o.to } : {}) };
  return undefined;
}

export function parseLead(req: WebhookRequest, config: Record<string, unknown>) {
  const body = bodyOf(req);
  const answers: Answer[] = [];
  const preferences: TimePreference[] = [];
  for (const [k, v] of Object.entries(body)) {
    if (k === 'preferredTimes') {
      for (const p of Array.isArray(v) ? v : [v]) {
        const s = structured(p);
        if (s) preferences.push(s);
        else if (str(p)) preferences.push({ text: str(p)! });
      }
      continue;
    }
    if (META.has(k)) continue;
    const value = Array.isArray(v) ? v.map(str).filter((x): x is string => !!x) : str(v);
    if (value) answers.push({ refs: [k], label: k, value });
  }
  const lead = buildLead(answers, {
    submissionId: str(body.submissionId) ?? createHash('sha256').update(req.rawBody).digest('hex').slice(0, 32),
    submittedAt: str(body.submittedAt) ?? req.now.toISOString(),
  }, config, OWN_FIELDS);
  return { ...lead, preferences: [...preferences, ...lead.preferences] };
}

export const connector: LeadFormConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'lead-form',
    displayName: 'Lead form (JSON or form post)',
    auth: [
      { key: 'signingSecret', label: 'Signing secret', secret: true, required: false, help: 'X-Meridian-Signature: sha256=<hex HMAC-SHA256 of the raw body>' },
      { key: 'webhookToken', label: 'URL token', secret: true, required: false, help: 'For senders that cannot sign: post to …/leads/<connection>?token=<this value>' },
      { key: 'challengeSecret', label: 'Challenge secret key', secret: true, required: false, help: 'With config.challenge (Turnstile or hCaptcha): the secret key the token is verified with' },
    ],
    authSets: [['signingSecret'], ['webhookToken']],
    configFields: LEAD_FORM_SETTINGS,
    signature: 'X-Meridian-Signature: sha256=hex(HMAC-SHA256(signing secret, raw body)), or ?token=<webhookToken> in the URL',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { signedWebhooks: true, structuredDates: true, fieldRefs: true },
    fidelity: 'Meridian\'s own format for a clinic\'s website form: JSON or form-encoded, with preferred times in words or as exact dates, times and instants. A submission without a submissionId is identified by its bytes, so only an identical resend counts as a duplicate.',
  },
  verify,
  parseLead,
};
