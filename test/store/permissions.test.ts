// Issue #22: the data folder and every file Meridian writes into it are readable by the service's own
// user only, whatever the umask (SQLite: the database and its -wal / -shm files, the key file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openHub, makeLogger } from '../../src/engine/hub/hub.ts';
import { tempDir } from '../helpers.ts';

const modeOf = (p: string) => (statSync(p).mode & 0o777).toString(8);

test('a fresh SQLite data folder is 0700 and every file in it 0600, even under a permissive umask', async () => {
  const t = tempDir();
  const before = process.umask(0o022);
  try {
    const dataDir = join(t.dir, 'data');
    const hub = await openHub({ dataDir, env: {}, log: makeLogger('silent') });
    await hub.store.db.insertInto('meta').values({ key: 'k', value: 'v' }).execute();
    const files = readdirSync(dataDir);
    // The write-ahead log and its index exist while the store is open: they hold the newest writes.
    for (const f of ['meridian.db', 'meridian.db-wal', 'meridian.db-shm', 'secret.key']) assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    assert.equal(modeOf(dataDir), '700');
    for (const f of files) assert.equal(modeOf(join(dataDir, f)), '600', f);
    await hub.store.close();
  } finally {
    process.umask(before);
    t.cleanup();
  }
});

test('a database file left 0644 by an earlier version is tightened; an open folder is reported', async () => {
  const t = tempDir();
  const before = process.umask(0o022);
  try {
    const dataDir = join(t.dir, 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'meridian.db'), '', { mode: 0o644 });
    chmodSync(join(dataDir, 'meridian.db'), 0o644);
    const warnings: string[] = [];
    const { openStore } = await import('../../src/store/db.ts');
    const store = await openStore({ dataDir, warn: (m) => warnings.push(m) });
    await store.db.selectFrom('meta' as never).selectAll().execute().catch(() => undefined);
    assert.equal(modeOf(join(dataDir, 'meridian.db')), '600');
    for (const f of readdirSync(dataDir)) assert.equal(modeOf(join(dataDir, f)), '600', f);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /can be read by other local users.*chmod 700/);
    await store.close();
  } finally {
    process.umask(before);
    t.cleanup();
  }
});

test('the demo: every file it writes into a fresh data folder is 0600 (logins, API key, database, key file)', async () => {
  const { meridian } = await import('../helpers.ts');
  const t = tempDir();
  try {
    const dataDir = join(t.dir, 'data');
    const r = await meridian(['demo', '--data', dataDir], { env: { DATABASE_URL: '', MERIDIAN_SECRET_KEY: '', LOG_LEVEL: 'silent' } });
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(dataDir);
    assert.ok(files.includes('meridian.db') && files.includes('demo-logins.json'), files.join(', '));
    assert.equal(modeOf(dataDir), '700');
    for (const f of files) assert.equal(modeOf(join(dataDir, f)), '600', f);
  } finally {
    t.cleanup();
  }
});
