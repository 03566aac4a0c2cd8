// HubSpot webhooks as a source of changes (FACTS.md §4). v3 signature: base64(HMAC-SHA256(client secret,
// method + URI + body + timestamp)), with a few percent-escapes of the URI decoded first, and a 5-minute
// window on X-HubSpot-Request-Timestamp (ms). The events only name what changed (a meeting id, a property);
// Meridian reads the meeting back before deciding anything, so a late or repeated event is harmless.
import { hmacSha256, secretsFor, signatureMatches, withinWindow } from '../../shared/signature.ts';
import { ConnectionMisconfigured, UnreadablePayload, type VerifyResult, type WebhookRequest } from '../../types.ts';

export const MEETING_OBJECT_TYPE = '0-47';
const WINDOW_S = 300;
/** Subscription types (generic `object.*` form) that can change one of our meetings. */
const MEETING_CHANGES = new Set(['object.propertyChange', 'object.deletion', 'object.restore', 'object.creation']);

/** The escapes HubSpot's v3 guide says to decode in the URI before signing (not the query's `?`, which is literal). */
const DECODE: Record<string, string> = {
  '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';',
};

export function signedUri(url: string): string {
  return url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODE[m.toUpperCase()]);
}

export function verifyHubSpot(req: WebhookRequest, secrets: Record<string, string>): VerifyResult {
  const keys = secretsFor(secrets, 'clientSecret');
  if (keys.length === 0) throw new ConnectionMisconfigured('HubSpot webhooks need the app\'s clientSecret');
  const signature = req.headers['x-hubspot-signature-v3'];
  const timestamp = req.headers['x-hubspot-request-timestamp'];
  if (!signature || !timestamp) return { ok: false, reason: 'missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp' };
  if (!/^\d{10,16}$/.test(timestamp) || !withinWindow(Number(timestamp) / 1000, req.now, WINDOW_S)) {
    return { ok: false, reason: 'the request timestamp is outside the 5-minute window' };
  }
  const uri = signedUri(req.url);
  const good = keys.some((k) => signatureMatches(signature, hmacSha256(k, 'POST', uri, req.rawBody, timestamp), 'base64'));
  return good ? { ok: true } : { ok: false, reason: 'signature mismatch' };
}

interface HubSpotEvent { subscriptionType?: unknown; objectTypeId?: unknown; objectId?: unknown }

/** Ids of meetings the delivery says changed; every other event (contacts, deals…) is none of ours. */
export function changedMeetingIds(req: WebhookRequest): string[] {
  let events: unknown;
  try {
    events = JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    throw new UnreadablePayload('HubSpot webhook body is not JSON');
  }
  if (!Array.isArray(events)) throw new UnreadablePayload('HubSpot webhook body is not an array of events');
  const ids: string[] = [];
  for (const ev of events as HubSpotEvent[]) {
    if (!ev || typeof ev !== 'object') throw new UnreadablePayload('HubSpot webhook event is not an object');
    const id = typeof ev.objectId === 'number' || typeof ev.objectId === 'string' ? String(ev.objectId) : undefined;
    if (ev.objectTypeId === MEETING_OBJECT_TYPE && MEETING_CHANGES.has(String(ev.subscriptionType)) && id && /^\d+$/.test(id)) ids.push(id);
  }
  return ids;
}
