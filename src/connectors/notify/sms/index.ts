// SMS through a Twilio-compatible Messages API (facts and addresses in FACTS.md): one form-encoded POST
// per message with Basic auth (account SID : auth token). Delivery statuses and patients' replies come
// back as form posts signed with X-Twilio-Signature: base64 HMAC-SHA1 of the full URL followed by every
// POST parameter (sorted by name, name + value), keyed with the auth token.
import { createHmac } from 'node:crypto';
import { classifyStatus, networkFailure, retryAfterMs } from '../../shared/http.ts';
import { secretsFor, signatureMatches } from '../../shared/signature.ts';
import {
  ConnectionMisconfigured, UnreadablePayload, fail, ok,
  type ConnectionContext, type ConnectorFailure, type InboundEvent, type NotifierClient, type NotifierConnector, type VerifyResult, type WebhookRequest, type WriteOutcome,
} from '../../types.ts';

const E164 = /^\+[1-9]\d{1,14}$/;
const SERVICE_SID = /^MG[0-9a-fA-F]{32}$/;
const FORM = 'application/x-www-form-urlencoded';

/** The signature Twilio computes for a callback to `url` with these POST parameters (raw digest). */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): Buffer {
  const h = createHmac('sha1', authToken).update(url, 'utf8');
  // A repeated parameter contributes each distinct value, sorted (as Twilio's own validator does).
  for (const k of [...new Set(params.keys())].sort()) for (const v of [...new Set(params.getAll(k))].sort()) h.update(k + v, 'utf8');
  return h.digest();
}

/**
 * The URL as received, with the port spelled out and with no port: Twilio's own validator accepts each
 * because Twilio's signing is not consistent about the port (FACTS.md).
 */
function urlVariants(url: string): string[] {
  const out = new Set([url]);
  try {
    const u = new URL(url);
    out.add(u.toString());
    out.add(`${u.protocol}//${u.port ? u.host : `${u.host}:${u.protocol === 'https:' ? 443 : 80}`}${u.pathname}${u.search}`);
    u.port = '';
    out.add(u.toString());
  } catch {
    /* not a URL: only the text as received can match */
  }
  return [...out];
}

function verifyInbound(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const tokens = secretsFor(secrets, 'authToken');
  if (tokens.length === 0) throw new ConnectionMisconfigured('the SMS connection has no authToken, so its callbacks cannot be verified');
  const signature = req.headers['x-twilio-signature'];
  if (!signature) return { ok: false, reason: 'missing X-Twilio-Signature header' };
  const type = req.headers['content-type'];
  if (type && !type.toLowerCase().startsWith(FORM)) return { ok: false, reason: `callbacks are form-encoded (${FORM}), not ${type.split(';')[0]}` };
  const params = new URLSearchParams(req.rawBody.toString('utf8'));
  const urls = urlVariants(req.url);
  const good = tokens.some((t) => urls.some((u) => signatureMatches(signature, twilioSignature(t, u, params), 'base64')));
  return good ? { ok: true } : { ok: false, reason: 'X-Twilio-Signature does not match this URL and body' };
}

const STATUSES: Record<string, Extract<InboundEvent, { kind: 'status' }>['status']> = {
  accepted: 'queued', scheduled: 'queued', queued: 'queued', sending: 'sent', sent: 'sent',
  delivered: 'delivered', read: 'delivered', undelivered: 'undelivered', failed: 'failed', canceled: 'failed',
};

/** Words for the error codes a delivery status carries most often; the code itself is always kept. */
const STATUS_ERRORS: Record<string, string> = {
  '21610': 'the recipient has opted out (STOP)',
  '30003': 'unreachable destination handset',
  '30006': 'landline or unreachable carrier',
};

function parseInbound(req: WebhookRequest): InboundEvent[] {
  const p = new URLSearchParams(req.rawBody.toString('utf8'));
  const sid = p.get('MessageSid') ?? p.get('SmsSid') ?? undefined;
  const status = p.get('MessageStatus');
  // An incoming message carries SmsStatus=received, never a MessageStatus of an outbound message.
  if (status && status !== 'received' && status !== 'receiving') {
    if (!sid) throw new UnreadablePayload('a delivery status without MessageSid');
    const mapped = STATUSES[status];
    if (!mapped) return []; // a status we do not act on (e.g. partially_delivered)
    const code = p.get('ErrorCode');
    const error = code ? `Twilio error ${code}${STATUS_ERRORS[code] ? `: ${STATUS_ERRORS[code]}` : ''}` : undefined;
    return [{ kind: 'status', providerId: sid, status: mapped, ...(error ? { error } : {}) }];
  }
  const from = p.get('From');
  const body = p.get('Body');
  if (from && body !== null) return [{ kind: 'reply', ...(sid ? { providerId: sid } : {}), from, text: body }];
  throw new UnreadablePayload('neither a delivery status (MessageStatus) nor an incoming message (From and Body)');
}

/**
 * Twilio's answer to a refused message, classified. Twilio's own `message` is never kept: it can echo
 * the recipient's number (e.g. 21211 "The 'To' number … is not a valid phone number").
 */
export function smsFailure(status: number, code: number | undefined, retryAfter: number | undefined): ConnectorFailure {
  const base = { status, retryAfterMs: retryAfter };
  if (code === 21610) {
    return { ...base, class: 'permanent', message: 'the recipient opted out of SMS from this sender (replied STOP, Twilio error 21610); they must text START to receive messages again' };
  }
  if (status === 429 || code === 20429) return { ...base, class: 'throttled', message: 'the SMS provider is rate-limiting this account (429); retrying later' };
  if (status === 401 || code === 20003) return { ...base, class: 'auth', message: 'the SMS provider refused the account SID and auth token (401)' };
  const cls = classifyStatus(status);
  const what = code ? `Twilio error ${code}` : `HTTP ${status}`;
  return { ...base, class: cls === 'gone' || cls === 'conflict' ? 'permanent' : cls, message: `the SMS provider refused the message (${what}, see https://www.twilio.com/docs/api/errors/${code ?? status})` };
}

function senderOf(config: Record<string, unknown>): Record<string, string> | undefined {
  if (typeof config.messagingServiceSid === 'string' && SERVICE_SID.test(config.messagingServiceSid)) return { MessagingServiceSid: config.messagingServiceSid };
  if (typeof config.from === 'string' && config.from) return { From: config.from };
  return undefined;
}

function client(ctx: ConnectionContext): NotifierClient {
  return {
    async send(m) {
      const to = m.to.phone?.replace(/[\s()-]/g, '');
      if (!to || !E164.test(to)) return fail({ class: 'permanent', message: 'the recipient has no mobile number in international (E.164) form, e.g. +15551234567' });
      if (!m.text.trim()) return fail({ class: 'permanent', message: 'an SMS needs a text' });
      const sid = ctx.secrets.accountSid;
      const token = ctx.secrets.authToken;
      if (!sid || !token) return fail({ class: 'auth', message: 'the SMS connection needs its accountSid and authToken' });
      const sender = senderOf(ctx.config);
      if (!sender) return fail({ class: 'permanent', message: 'the SMS connection has neither `from` (a number in E.164 form) nor `messagingServiceSid` in its config' });
      const form = new URLSearchParams({ To: to, Body: m.text, ...sender });
      // Statuses come back to Meridian's route for this connection (verified like replies).
      if (ctx.inboundUrl) form.set('StatusCallback', ctx.inboundUrl);
      let res: Response;
      try {
        res = await ctx.fetch(`${ctx.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(sid)}/Messages.json`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`, 'content-type': FORM, accept: 'application/json' },
          body: form.toString(),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (err) {
        return fail(networkFailure(err));
      }
      const json = (await res.json().catch(() => undefined)) as { sid?: unknown; code?: unknown } | undefined;
      if (res.ok) return ok({ providerId: typeof json?.sid === 'string' ? json.sid : undefined, status: res.status });
      return fail(smsFailure(res.status, typeof json?.code === 'number' ? json.code : undefined, retryAfterMs(res.headers)));
    },
  };
}

/** Read the account (GET …/Accounts/{sid}.json): the SID and token work, and nothing is sent. */
async function verifyCredentials(ctx: ConnectionContext): Promise<WriteOutcome<{ account?: string }>> {
  const sid = ctx.secrets.accountSid;
  const token = ctx.secrets.authToken;
  if (!sid || !token) return fail({ class: 'auth', message: 'the SMS connection needs its accountSid and authToken' });
  let res: Response;
  try {
    res = await ctx.fetch(`${ctx.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(sid)}.json`, {
      headers: { authorization: `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`, accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    return fail(networkFailure(err));
  }
  const json = (await res.json().catch(() => undefined)) as { friendly_name?: unknown; status?: unknown; code?: unknown } | undefined;
  if (res.ok) {
    if (json?.status !== undefined && json.status !== 'active') return fail({ class: 'permanent', status: res.status, message: `the provider account is ${String(json.status)}, not active` });
    return ok({ account: typeof json?.friendly_name === 'string' ? json.friendly_name : sid });
  }
  if (res.status === 401 || res.status === 403 || res.status === 404) return fail({ class: 'auth', status: res.status, message: 'the SMS provider refused the Account SID and auth token' });
  return fail(smsFailure(res.status, typeof json?.code === 'number' ? json.code : undefined, retryAfterMs(res.headers)));
}

function checkConfig(config: Record<string, unknown>): { key: string; message: string }[] {
  const out: { key: string; message: string }[] = [];
  const { from, messagingServiceSid: service } = config;
  if (from === undefined && service === undefined) out.push({ key: 'from', message: 'set `from` (the sending number in E.164 form) or `messagingServiceSid`' });
  if (from !== undefined && (typeof from !== 'string' || !(E164.test(from) || /^[A-Za-z0-9 ]{1,11}$/.test(from)))) {
    out.push({ key: 'from', message: 'a number in E.164 form (e.g. +15551234567) or an alphanumeric sender id of up to 11 characters' });
  }
  if (service !== undefined && (typeof service !== 'string' || !SERVICE_SID.test(service))) out.push({ key: 'messagingServiceSid', message: 'a Messaging Service SID: MG followed by 32 hex digits' });
  return out;
}

export const connector: NotifierConnector = {
  descriptor: {
    id: 'sms',
    role: 'notifier',
    displayName: 'SMS (Twilio or a Twilio-compatible provider)',
    auth: [
      { key: 'accountSid', label: 'Account SID', secret: true, required: true, help: 'AC… from the provider console' },
      { key: 'authToken', label: 'Auth token', secret: true, required: true, help: 'also verifies delivery statuses and replies; set authTokenPrevious while promoting a secondary token' },
    ],
    configFields: [
      { key: 'from', label: 'Sender number', type: 'text', placeholder: '+15551234567', help: 'In international form, or a sender name of up to 11 letters. Or use a Messaging Service below.' },
      { key: 'messagingServiceSid', label: 'Messaging Service SID', type: 'text', placeholder: 'MG…', help: 'Sends through the service\'s numbers instead of one sender number.' },
    ],
    defaultBaseUrl: 'https://api.twilio.com',
    signature: 'X-Twilio-Signature: base64 HMAC-SHA1 of the callback URL followed by the POST parameters sorted by name (name + value), keyed with the auth token',
    capabilities: { email: false, sms: true, webhooks: false, deliveryStatus: true, replies: true },
    fidelity: 'Sends each message once through the Messages API from `from` or a Messaging Service; statuses (queued, sent, delivered, undelivered, failed) and replies come back signed to /notify/<connection> when Meridian knows its public URL. The API has no idempotency key: a send whose answer is lost in the network is retried and may arrive twice. A recipient who replied STOP is refused by the provider (error 21610) and is not retried.',
  },
  client,
  verifyInbound,
  parseInbound,
  inboundAnswer: { contentType: 'text/xml; charset=utf-8', body: '<?xml version="1.0" encoding="UTF-8"?><Response/>' },
  verifyCredentials,
  checkConfig,
};
