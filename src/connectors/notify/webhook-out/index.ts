// Outbound webhooks to the clinic's own tools, signed as the Standard Webhooks specification says
// (FACTS.md): `webhook-id` (the same on every retry and replay), `webhook-timestamp` (this attempt, unix
// seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the key bytes of
// a `whsec_<base64>` secret — once per secret, space-separated, so a receiver mid-rotation verifies with
// either key. Which events go where is the engine's business (src/engine/webhooks-out.ts).
import { hmacSha256, secretsFor } from '../../shared/signature.ts';
import { networkFailure, retryAfterMs } from '../../shared/http.ts';
import { fail, ok, type ConnectionContext, type ConnectorFailure, type NotifierClient, type NotifierConnector } from '../../types.ts';

const PREFIX = 'whsec_';

/** The HMAC key of a `whsec_` secret: 24 to 64 random bytes, base64 (the spec's bounds); undefined when malformed. */
export function signingKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(PREFIX)) return undefined;
  const b64 = secret.slice(PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const key = Buffer.from(b64, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

/** The `webhook-signature` header: one `v1,<sig>` per key, space-separated. */
export function signatureHeader(keys: Buffer[], id: string, timestamp: number, body: string): string {
  return keys.map((k) => `v1,${hmacSha256(k, `${id}.${timestamp}.`, body).toString('base64')}`).join(' ');
}

/** Standard Webhooks' advice on answers: 2xx delivered; 410 means "stop sending"; 429 throttles; the rest are retried. */
function failureOf(res: Response): ConnectorFailure {
  const status = res.status;
  const retryAfter = retryAfterMs(res.headers);
  if (status === 410) return { class: 'permanent', status, message: 'the receiver answered 410 Gone (it wants no more deliveries): fix or remove the subscription, then replay' };
  if (status === 429) return { class: 'throttled', status, retryAfterMs: retryAfter, message: 'the receiver is rate-limiting deliveries (429)' };
  const why = status >= 300 && status < 400 ? 'a redirect, which is not followed (update the subscription URL)' : `HTTP ${status}`;
  return { class: 'transient', status, retryAfterMs: retryAfter, message: `the receiver answered ${why}` };
}

function client(ctx: ConnectionContext): NotifierClient {
  return {
    async send(m) {
      if (!m.event) return fail({ class: 'permanent', message: 'a webhook delivery needs an event' });
      const url = m.to.url ?? ctx.config.url;
      if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return fail({ class: 'permanent', message: 'the subscription has no http(s) `url` in its config' });
      const secrets = secretsFor(ctx.secrets, 'signingSecret');
      const keys = secrets.map(signingKey);
      if (keys.length === 0 || keys.some((k) => !k)) {
        return fail({ class: 'permanent', message: 'the subscription needs a signingSecret of the form whsec_<base64 of 24–64 random bytes>' });
      }
      // The id must not contain "." (it is part of the signed text); ours are msg_<hex>.
      if (!/^[A-Za-z0-9_-]+$/.test(m.key)) return fail({ class: 'permanent', message: 'a webhook id may hold only letters, digits, "_" and "-"' });
      const body = JSON.stringify({ type: m.event.type, ...m.event.payload });
      const timestamp = Math.floor(ctx.now().getTime() / 1000);
      let res: Response;
      try {
        res = await ctx.fetch(url, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Meridian-Webhooks/1',
            'webhook-id': m.key,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signatureHeader(keys as Buffer[], m.key, timestamp, body),
          },
          body,
          // The spec recommends giving receivers 15–30 s.
          signal: AbortSignal.timeout(20_000),
        });
      } catch (err) {
        return fail(networkFailure(err));
      }
      // The answer's body is not read: it is the receiver's, and nothing of it is kept.
      await res.body?.cancel().catch(() => {});
      return res.ok ? ok({ status: res.status }) : fail(failureOf(res));
    },
  };
}

export const connector: NotifierConnector = {
  descriptor: {
    id: 'webhook-out',
    role: 'notifier',
    displayName: 'Outbound webhooks (Standard Webhooks)',
    auth: [
      { key: 'signingSecret', label: 'Signing secret (whsec_…)', secret: true, required: true, help: 'whsec_ + base64 of 24–64 random bytes; while rotating, keep the old one as signingSecretPrevious (both sign every delivery)' },
    ],
    configFields: [
      { key: 'url', label: 'Receiver URL', type: 'url', required: true, placeholder: 'https://tools.clinic.example/meridian', help: 'Where each event is POSTed.' },
      { key: 'events', label: 'Events', type: 'list', required: true, placeholder: 'appointment.created, appointment.cancelled', help: 'Any of appointment.created, appointment.updated, appointment.cancelled, appointment.no_show, appointment.completed, lead.received.' },
      { key: 'includePatient', label: 'Include patient contact details', type: 'boolean', default: false, help: 'Off: events carry no patient name, e-mail or phone.' },
    ],
    capabilities: { email: false, sms: false, webhooks: true, deliveryStatus: false, replies: false },
    fidelity: 'POSTs one JSON event per change to the subscription URL, signed per Standard Webhooks 1.0 (symmetric v1 signatures; two during a secret rotation). A delivery keeps its webhook-id across retries and replays, so receivers can drop duplicates. Redirects are not followed; 410 stops retrying; answers are not read or stored.',
  },
  client,
};
