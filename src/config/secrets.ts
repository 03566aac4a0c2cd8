// Missing secrets are an error, not a surprise: each `{ env: NAME }` of the file must name a variable that is
// set, and each connection must have the secrets of one of its platform's auth sets (connectors/setup.ts), from
// the environment or stored encrypted. `config check` and `config apply` fail on these; `serve` warns and starts.
// Which secrets are stored is known only with the store: without it, `{ stored: true }` is taken at its word.
import { alternativesOf, connectionSetup, envIsSet, setupDescriptor } from '../connectors/setup.ts';
import type { ClinicConfig } from './schema.ts';
import type { CrossIssue } from './validate.ts';

/**
 * The secret problems of a configuration in this environment. `stored` names the keys the store holds for a
 * connection id (undefined: the connection is not in the store yet); without it (no store), the keys the file
 * declares `{ stored: true }` count as there.
 */
export function secretIssues(c: ClinicConfig, env: Record<string, string | undefined>, stored?: (connectionId: string) => string[] | undefined): CrossIssue[] {
  const out: CrossIssue[] = [];
  c.connections.forEach((conn, i) => {
    const d = setupDescriptor(conn.platform, conn.config);
    if (!d) return; // an unknown platform: crossCheck says so
    const envRefs: Record<string, string> = {};
    const declaredStored: string[] = [];
    for (const [key, ref] of Object.entries(conn.secrets)) {
      if (ref && typeof ref === 'object' && 'env' in ref) envRefs[key] = (ref as { env: string }).env;
      else declaredStored.push(key);
    }
    for (const [key, name] of Object.entries(envRefs)) {
      if (!envIsSet(env, name)) out.push({ path: ['connections', i, 'secrets', key], message: `${name} is not set in the environment (the ${d.displayName} ${key} of connection "${conn.id}")` });
    }
    const inStore = stored?.(conn.id);
    const have = stored ? (inStore ?? []) : declaredStored;
    const setSecret = (key: string) => `\`meridian connections set-secret ${conn.id} ${key}\`${inStore === undefined && stored ? ' (once the file is applied)' : ''}`;
    const setup = connectionSetup(d, { envRefs, env, stored: have, declared: declaredStored });
    if (setup.complete) return;
    const unsetKeys = new Set(setup.unsetEnv.map((u) => u.key));
    const notStored = setup.missing.filter((k) => !unsetKeys.has(k) && declaredStored.includes(k));
    for (const key of notStored) {
      out.push({ path: ['connections', i, 'secrets', key], message: `${key} is not stored yet: store it with ${setSecret(key)} or connect it in the web app` });
    }
    const bare = setup.missing.filter((k) => !unsetKeys.has(k) && !declaredStored.includes(k));
    if (bare.length) {
      const present = [...have, ...Object.keys(envRefs).filter((k) => envIsSet(env, envRefs[k]))];
      const others = alternativesOf(d, setup.missing, present);
      out.push({
        path: ['connections', i],
        message: `${d.displayName} needs ${bare.join(', ')}${others.length ? ` (or instead: ${others.join('; ')})` : ''}: add \`${bare[0]}: { env: … }\` under secrets, or store it with ${setSecret(bare[0])} / connect it in the web app`,
      });
    }
  });
  return out;
}

/** Whether the file keeps any secret in the store (`{ stored: true }`), which only a store can confirm. */
export function declaresStored(c: ClinicConfig): boolean {
  return c.connections.some((x) => Object.values(x.secrets).some((r) => r !== null && typeof r === 'object' && 'stored' in r));
}
