// A real Radicale (Debian's package) on a free port with a temporary storage folder, for the CalDAV
// tests. Under CI=true a missing radicale binary fails the suite (with what to install); elsewhere
// the suites that need it are skipped with the same message.
// `startRadicale({ rights })`: Radicale's `from_file` rights with these rules (read on every request, so
// `setRights(rules)` changes them on the running server) instead of `owner_only`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Radicale {
  url: string;
  username: string;
  password: string;
  storage: string;
  /** Replace the `from_file` rules (only when started with `rights`). */
  setRights(rules: string): void;
  stop(): Promise<void>;
}

export function radicaleMissing(): string | undefined {
  const r = spawnSync('radicale', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = 'Radicale is not installed: apt-get install radicale (.ci/run does this)';
  if (process.env.CI) throw new Error(why);
  return why;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Radicale's own default for an owner: the root and their principal (R/W), their calendars (r/w). */
export const OWNER_RIGHTS = ['[root]', 'user: .+', 'collection:', 'permissions: R', '[principal]', 'user: .+', 'collection: {user}', 'permissions: RW', '[calendars]', 'user: .+', 'collection: {user}/[^/]+', 'permissions: rw', ''].join('\n');

export async function startRadicale(o: { rights?: string } = {}): Promise<Radicale> {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-radicale-'));
  const port = await freePort();
  const username = 'practitioner';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, 'users'), `${username}:${password}\n`);
  if (o.rights !== undefined) writeFileSync(join(dir, 'rights'), o.rights);
  writeFileSync(join(dir, 'config'), [
    '[server]', `hosts = 127.0.0.1:${port}`,
    '[auth]', 'type = htpasswd', `htpasswd_filename = ${join(dir, 'users')}`, 'htpasswd_encryption = plain',
    '[storage]', `filesystem_folder = ${join(dir, 'collections')}`,
    ...(o.rights === undefined ? ['[rights]', 'type = owner_only'] : ['[rights]', 'type = from_file', `file = ${join(dir, 'rights')}`]),
    '[logging]', 'level = warning',
  ].join('\n'));
  const proc: ChildProcess = spawn('radicale', ['--config', join(dir, 'config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/.well-known/caldav`, { redirect: 'manual' });
      if (r.status > 0) break;
    } catch {
      /* not up yet */
    }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`radicale did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url, username, password, storage: join(dir, 'collections'),
    setRights: (rules) => writeFileSync(join(dir, 'rights'), rules),
    stop: () => new Promise((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (proc.exitCode !== null) return done();
      proc.once('exit', done);
      proc.kill('SIGTERM');
    }),
  };
}
