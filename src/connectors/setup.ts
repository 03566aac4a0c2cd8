// Whether a connection is set up: it has every secret of one of its platform's auth sets. The one rule behind
// `config check`, the start-up warnings, the "Needs setup" status and the inbound refusal of a connection that
// is not fully configured. Pure: which secrets exist (environment references that are set, stored keys) is
// found by the caller (engine/hub/connections.ts reads the store and the environment).
import { getConnector, getTarget } from './registry.ts';
import type { Descriptor } from './types.ts';

/** One secret whose `{ env: NAME }` reference names a variable that is unset or empty. */
export interface UnsetEnv {
  key: string;
  env: string;
}

export interface SetupState {
  /** Every secret of at least one auth set is available. */
  complete: boolean;
  /** The secrets the closest auth set still lacks (empty when complete). */
  missing: string[];
  /** Environment references whose variable is unset or empty (whether or not their key is needed). */
  unsetEnv: UnsetEnv[];
}

/** What a connection has: secret key → environment variable, the environment, and the keys stored encrypted. */
export interface AvailableSecrets {
  envRefs?: Record<string, string>;
  env?: Record<string, string | undefined>;
  stored?: Iterable<string>;
  /** Keys declared as kept in the store (`{ stored: true }`), stored or not yet: they choose between auth sets. */
  declared?: Iterable<string>;
}

/** The alternative sets of secrets that each make a connection of this platform usable. */
export function authSetsOf(d: Pick<Descriptor, 'auth' | 'authSets'>): string[][] {
  if (d.authSets?.length) return d.authSets;
  return [d.auth.filter((a) => a.required).map((a) => a.key)];
}

/** Whether the environment variable holds a value (set and not empty). */
export const envIsSet = (env: Record<string, string | undefined> | undefined, name: string): boolean => {
  const v = env?.[name];
  return v !== undefined && v !== '';
};

/**
 * The descriptor whose auth fields a connection needs: the platform's own, except for a calendar read as a
 * source, which needs the secrets of the calendar platform its `config.calendarPlatform` names.
 */
export function setupDescriptor(platform: string, config: Record<string, unknown> = {}): Descriptor | undefined {
  const d = getConnector(platform)?.descriptor;
  if (d?.id === 'calendar-source' && typeof config.calendarPlatform === 'string') {
    const t = getTarget(config.calendarPlatform)?.descriptor;
    if (t) return { ...d, auth: t.auth, authSets: t.authSets };
  }
  return d;
}

/** Whether rank `a` comes before rank `b` (the first differing place decides). */
function before(a: number[], b: number[]): boolean {
  const i = a.findIndex((x, j) => x !== b[j]);
  return i !== -1 && a[i] < b[i];
}

/** Set up or not, and what is missing, given the secrets available. */
export function connectionSetup(d: Pick<Descriptor, 'auth' | 'authSets'>, a: AvailableSecrets): SetupState {
  const have = new Set<string>(a.stored ?? []);
  const unsetEnv: UnsetEnv[] = [];
  for (const [key, env] of Object.entries(a.envRefs ?? {})) {
    if (envIsSet(a.env, env)) have.add(key);
    else unsetEnv.push({ key, env });
  }
  // The closest set lacks the fewest keys; between equals, the one with more of its keys there (HubSpot with a
  // client id and secret lacks the refresh token), then the one the connection refers to most (a lead form whose
  // `webhookToken` names an unset variable lacks that token, not a signing secret it never mentioned).
  const declared = new Set(a.declared ?? []);
  const referred = (keys: string[]) => keys.filter((k) => a.envRefs?.[k] !== undefined || declared.has(k)).length;
  const rank = (set: string[], lacks: string[]) => [lacks.length, -(set.length - lacks.length), -referred(lacks)];
  let best: { lacks: string[]; rank: number[] } | undefined;
  for (const set of authSetsOf(d)) {
    const lacks = set.filter((k) => !have.has(k));
    const r = rank(set, lacks);
    if (!best || before(r, best.rank)) best = { lacks, rank: r };
    if (!lacks.length) break;
  }
  const missing = best?.lacks ?? [];
  return { complete: missing.length === 0, missing, unsetEnv };
}

/** The other ways a connection could be set up, in words ("or clientSecret"), when the platform has several. */
export function alternativesOf(d: Pick<Descriptor, 'auth' | 'authSets'>, missing: string[], have: Iterable<string>): string[] {
  const got = new Set(have);
  const sets = authSetsOf(d);
  if (sets.length < 2) return [];
  return sets.map((s) => s.filter((k) => !got.has(k))).filter((l) => l.length && l.join() !== missing.join()).map((l) => l.join(' + '));
}
