// One verification helper for every source connector: constant-time compare, several secrets
// (rotation), optional timestamp window. Never throws on bad input.
import { ConnectionMisconfigured, type VerifyResult } from '../types.ts';
import { createHmac, timingSafeEqual } from 'node:crypto';

export type Encoding = 'hex' | 'base64';

export function hmacSha256(key: string | Buffer, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Constant-time comparison of a received signature text with an expected digest. */
export function signatureMatches(received: string | undefined, expected: Buffer, encoding: Encoding): boolean {
  if (!received) return false;
  const text = received.trim();
  if (encoding === 'hex' && !/^[0-9a-fA-F]+$/.test(text)) return false;
  if (encoding === 'base64' && !/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return false;
  const got = Buffer.from(text, encoding);
  if (got.length !== expected.length) {
    // Compare anyway so a wrong length costs the same time as a wrong value.
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(got, expected);
}

/** True when `unixSeconds` is within `toleranceSeconds` of `now` (either side). */
export function withinWindow(unixSeconds: number, now: Date, toleranceSeconds: number): boolean {
  if (!Number.isFinite(unixSeconds)) return false;
  return Math.abs(now.getTime() / 1000 - unixSeconds) <= toleranceSeconds;
}

/** Split a comma list of `k=v` pairs, e.g. `t=1767225600,v1=abc` (a key may repeat). */
export function parseKeyValueHeader(header: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!header) return out;
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    out.set(k, [...(out.get(k) ?? []), v]);
  }
  return out;
}

/** The secrets to try: `key` plus an optional `<key>Previous` during rotation. */
export function secretsFor(secrets: Record<string, string>, key: string): string[] {
  return [secrets[key], secrets[`${key}Previous`]].filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/**
 * For platforms that sign nothing: the connection's webhook URL carries `?token=<secret>` (an
 * unguessable value Meridian generated), compared in constant time. A match only says the sender knows
 * the URL; such connectors also return `needsFetch` changes so the booking is read back from the
 * platform's API before anything is applied.
 */
export function urlTokenMatches(url: string, secrets: Record<string, string>, key = 'webhookToken'): boolean {
  let token: string | null;
  try {
    token = new URL(url, 'http://x').searchParams.get('token');
  } catch {
    return false;
  }
  if (!token) return false;
  const got = Buffer.from(token, 'utf8');
  return secretsFor(secrets, key).some((s) => {
    const want = Buffer.from(s, 'utf8');
    if (got.length !== want.length) {
      timingSafeEqual(want, want);
      return false;
    }
    return timingSafeEqual(got, want);
  });
}

/** `verify` of a platform that signs nothing: a delivery must carry the connection's URL token (`webhookToken`). */
export function verifyUrlToken(req: { url: string }, secrets: Record<string, string>, platform: string): VerifyResult {
  if (secretsFor(secrets, 'webhookToken').length === 0) {
    throw new ConnectionMisconfigured(`the ${platform} connection has no webhookToken; ${platform} signs nothing, so deliveries are only accepted with the URL token`);
  }
  return urlTokenMatches(req.url, secrets) ? { ok: true } : { ok: false, reason: 'the webhook URL has no token or a wrong one (?token=…)' };
}
