// A per-client token bucket for the public routes (webhooks, lead forms, notifier callbacks, calendar
// feeds, sign-in): enough to keep one noisy or hostile address from starving the rest, generous enough
// that no real platform's burst is refused. Limits are per process (several nodes each allow as much).
// Loopback clients are exempt unless MERIDIAN_RATE_LIMIT_LOOPBACK=1: behind a reverse proxy on the same
// host without MERIDIAN_TRUST_PROXY every client would otherwise share one bucket.

export const RATE_BUCKETS = ['webhooks', 'feeds', 'signin'] as const;
export type RateBucket = (typeof RATE_BUCKETS)[number];

export interface RateLimit {
  /** Requests a client may make at once. */
  burst: number;
  /** Requests per minute a client regains. */
  perMinute: number;
}

/** Defaults: a platform's retry storm or a clinic's whole day of feeds pass; a password guesser does not. */
export const DEFAULT_LIMITS: Record<RateBucket, RateLimit> = {
  webhooks: { burst: 600, perMinute: 6000 },
  feeds: { burst: 120, perMinute: 600 },
  signin: { burst: 20, perMinute: 20 },
};

export interface RateLimitOptions {
  limits?: Partial<Record<RateBucket, RateLimit>>;
  /** Also limit 127.0.0.1 / ::1. */
  limitLoopback?: boolean;
}

/** Which bucket a public route draws from (undefined: not rate-limited here). */
export function bucketOf(method: string, url: string): RateBucket | undefined {
  if (method === 'POST' && /^\/(webhooks|leads|notify|push)\//.test(url)) return 'webhooks';
  if (method === 'GET' && url.startsWith('/feeds/')) return 'feeds';
  if (method === 'POST' && url.startsWith('/auth/login')) return 'signin';
  return undefined;
}

/**
 * `MERIDIAN_RATE_LIMIT_<BUCKET>` = `<per minute>` or `<per minute>/<burst>` (`off` or 0 disables that
 * bucket); `MERIDIAN_RATE_LIMIT_LOOPBACK=1` limits loopback clients too.
 */
export function rateLimitsFromEnv(env: NodeJS.ProcessEnv): RateLimitOptions {
  const limits: Partial<Record<RateBucket, RateLimit>> = {};
  for (const b of RATE_BUCKETS) {
    const v = env[`MERIDIAN_RATE_LIMIT_${b.toUpperCase()}`]?.trim();
    if (!v) continue;
    if (v === 'off' || v === '0') {
      limits[b] = { burst: Infinity, perMinute: Infinity };
      continue;
    }
    const m = /^(\d+)(?:\/(\d+))?$/.exec(v);
    if (!m) throw new Error(`MERIDIAN_RATE_LIMIT_${b.toUpperCase()} must be <per minute> or <per minute>/<burst>, not ${v}`);
    limits[b] = { perMinute: Number(m[1]), burst: Number(m[2] ?? m[1]) };
  }
  return { limits, limitLoopback: env.MERIDIAN_RATE_LIMIT_LOOPBACK === '1' };
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;
const MAX_CLIENTS = 50_000;

export class RateLimiter {
  private readonly limits: Record<RateBucket, RateLimit>;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly o: RateLimitOptions = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
  }

  /** Take one token for `ip` from `bucket`: 0 when allowed, else the seconds until one is back. */
  take(bucket: RateBucket, ip: string): number {
    const l = this.limits[bucket];
    if (!Number.isFinite(l.burst) || (!this.o.limitLoopback && LOOPBACK.test(ip))) return 0;
    const t = this.now();
    const key = `${bucket} ${ip}`;
    const perMs = l.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: l.burst, at: t };
    b.tokens = Math.min(l.burst, b.tokens + (t - b.at) * perMs);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.remember(key, b);
      return 0;
    }
    this.remember(key, b);
    return perMs > 0 ? Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) : 3600;
  }

  /** Keep the map bounded under a spray of addresses: forget the oldest clients first. */
  private remember(key: string, b: { tokens: number; at: number }): void {
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
