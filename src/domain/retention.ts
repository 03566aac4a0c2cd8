// How long Meridian keeps the records that hold patients' data once they have done their work: received
// webhook and lead-form bodies, leads, notification logs, finished jobs (their payloads). Declared in
// meridian.yaml under `retention:`; pruned hourly by engine/sync/retention.ts. The audit log is not here:
// it keeps digests of personal values, not the values, and is the record of what happened.

export const RETENTION_KINDS = ['deliveries', 'leads', 'notifications', 'jobs'] as const;
export type RetentionKind = (typeof RETENTION_KINDS)[number];

/** Each kind's period as written (`30d`, `12h`, `1y`; `off` = kept forever). */
export type RetentionPolicy = Record<RetentionKind, string>;

/**
 * The defaults (README, "Security and privacy"): a month of webhook bodies is enough to replay one after
 * fixing a mapping; half a year of leads covers a follow-up season; a year of notification logs answers
 * "was I told?"; finished jobs are only for inspection.
 */
export const DEFAULT_RETENTION: RetentionPolicy = { deliveries: '30d', leads: '180d', notifications: '1y', jobs: '30d' };

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 } as const;
const PERIOD = /^([1-9][0-9]{0,5})(h|d|w|y)$/;

export const RETENTION_MESSAGE = 'a period like "30d", "12h", "6w" or "1y" (h, d, w, y), or 0 / "off" to keep forever';

/** A period as written in the file, normalised to text (`0`, `false`, `off` → `off`); undefined when not valid. */
export function normaliseRetention(v: unknown): string | undefined {
  if (v === 0 || v === false || v === '0' || v === 'off') return 'off';
  return typeof v === 'string' && PERIOD.test(v.trim()) ? v.trim() : undefined;
}

/** Milliseconds of a normalised period; undefined = kept forever. */
export function retentionMs(period: string): number | undefined {
  const m = PERIOD.exec(period);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}
