// Start the real `bin/meridian serve` as a child process and wait for its URL.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

export interface Served {
  url: string;
  proc: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const proc = spawn(process.execPath, ['bin/meridian', ...args, '--port', '0'], {
    cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', check);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    url, proc, output: () => out,
    stop: (signal = 'SIGTERM') => new Promise((r) => {
      if (proc.exitCode !== null) return r(proc.exitCode);
      proc.once('exit', (code) => r(code));
      proc.kill(signal);
    }),
  };
}

/** Poll `check` until it returns a truthy value (or fail after `ms`). */
export async function eventually<T>(check: () => Promise<T> | T, ms = 15_000, what = 'condition'): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v as Exclude<T, false | null | undefined | 0 | ''>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** An API key of `scope`, made with the CLI on the store `common` names (`--data …`, `--config …`), as a user would. */
export async function createKey(common: string[], env: NodeJS.ProcessEnv = {}, scope: 'read' | 'write' | 'admin' = 'admin', name = 'e2e'): Promise<string> {
  const k = await run(process.execPath, ['bin/meridian', 'keys', 'create', name, '--scope', scope, ...common], { cwd: ROOT, env: { ...process.env, ...env } });
  return k.stdout.split('\n')[0].trim();
}

/** JSON calls to a served `/api/v1` with a key: the status and the parsed answer. */
export function apiClient(url: string, key: string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
}
