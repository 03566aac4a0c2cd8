// Helpers for the connectors' webhook subscriptions (`subscriptions`) and directories (`directory`): a
// signing secret Meridian generates, and API work that throws ConnectorError turned into a WriteOutcome
// carrying its value.
import { randomBytes } from 'node:crypto';
import { ConnectorError, fail, ok, type WriteOutcome } from '../types.ts';

/** A signing secret Meridian chooses for a subscription: 256 random bits, URL-safe base64 (43 characters). */
export function generatedSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Run API work that throws ConnectorError on failure; its value, or the classified failure. */
export async function attempt<T>(work: () => Promise<T>): Promise<WriteOutcome<T>> {
  try {
    return ok(await work());
  } catch (err) {
    if (err instanceof ConnectorError) return fail(err.failure);
    throw err;
  }
}

/** A ConnectorError that is the platform's "not found" (404/410). */
export function isGone(err: unknown): boolean {
  return err instanceof ConnectorError && err.failure.class === 'gone';
}

/** Collect every page of a cursor-paged listing; stops on a repeated cursor and after `maxPages`. */
export async function allPages<T>(page: (cursor: string | undefined) => Promise<{ items: T[]; next?: string | null }>, what: string, maxPages = 200): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const p = await page(cursor);
    out.push(...p.items);
    if (!p.next) return out;
    if (seen.has(p.next)) throw new ConnectorError({ class: 'permanent', message: `${what}: the page cursor repeats` });
    seen.add(p.next);
    cursor = p.next;
  }
  throw new ConnectorError({ class: 'permanent', message: `${what}: more than ${maxPages} pages` });
}
