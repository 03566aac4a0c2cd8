// Issue #19, item 1: durable means fsynced. SQLite commits with synchronous = FULL unless the operator opts
// out with MERIDIAN_SQLITE_SYNC=normal (survives a crash of Meridian, not of the machine); any other value
// is refused at start; `serve` says once which mode is in force. PostgreSQL keeps synchronous_commit on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { openHub, makeLogger } from '../../src/engine/hub/hub.ts';
import { openStore } from '../../src/store/db.ts';
import { backendFor, meridian, tempDir } from '../helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `pragma synchronous` as the store's own connection has it: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
async function pragmaSynchronous(env: NodeJS.ProcessEnv): Promise<{ value: number; setting: string }> {
  const t = tempDir();
  const hub = await openHub({ dataDir: join(t.dir, 'data'), env, log: makeLogger('silent') });
  try {
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(hub.store.db);
    return { value: rows[0].synchronous, setting: hub.store.durability.setting };
  } finally {
    await hub.store.close();
    t.cleanup();
  }
}

test('SQLite commits with synchronous = FULL by default (and with MERIDIAN_SQLITE_SYNC=full)', async () => {
  assert.deepEqual(await pragmaSynchronous({}), { value: 2, setting: 'FULL' });
  assert.deepEqual(await pragmaSynchronous({ MERIDIAN_SQLITE_SYNC: '' }), { value: 2, setting: 'FULL' });
  assert.deepEqual(await pragmaSynchronous({ MERIDIAN_SQLITE_SYNC: 'full' }), { value: 2, setting: 'FULL' });
});

test('MERIDIAN_SQLITE_SYNC=normal opts out: synchronous = NORMAL', async () => {
  assert.deepEqual(await pragmaSynchronous({ MERIDIAN_SQLITE_SYNC: 'normal' }), { value: 1, setting: 'NORMAL' });
});

test('any other MERIDIAN_SQLITE_SYNC is refused before the store opens', async () => {
  for (const bad of ['off', 'NORMAL', 'extra', '0', 'normal ']) {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    try {
      await assert.rejects(openHub({ dataDir, env: { MERIDIAN_SQLITE_SYNC: bad }, log: makeLogger('silent') }),
        (e: Error) => e.message.includes('MERIDIAN_SQLITE_SYNC') && e.message.includes(JSON.stringify(bad)) && e.message.includes('"normal"'));
      assert.ok(!existsSync(join(dataDir, 'meridian.db')), 'nothing opened');
    } finally {
      t.cleanup();
    }
  }
});

test('serve refuses a bad MERIDIAN_SQLITE_SYNC with a clear error (exit 1)', async () => {
  const t = tempDir();
  try {
    const r = await meridian(['serve', '--data', join(t.dir, 'data'), '--port', '0'], { env: { MERIDIAN_SQLITE_SYNC: 'off' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meridian: MERIDIAN_SQLITE_SYNC must be "normal" .* not "off"$/m);
  } finally {
    t.cleanup();
  }
});

/** Start `serve`, collect its output until it listens, stop it; the lines it printed. */
async function serveOutput(env: NodeJS.ProcessEnv): Promise<string[]> {
  const t = tempDir();
  const p = spawn(process.execPath, ['bin/meridian', 'serve', '--data', join(t.dir, 'data'), '--port', '0'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
      const on = (d: Buffer) => { out += d.toString(); if (/listening on/.test(out)) { clearTimeout(timer); resolve(); } };
      p.stdout.on('data', on);
      p.stderr.on('data', on);
      p.on('exit', (c) => { clearTimeout(timer); reject(new Error(`serve exited ${c}: ${out}`)); });
    });
  } finally {
    const exited = new Promise((r) => p.once('exit', r));
    if (p.exitCode === null) p.kill('SIGTERM');
    await exited;
    t.cleanup();
  }
  return out.split('\n').filter((l) => l.includes('"synchronous"'));
}

test('serve logs once at start which mode is in force', async () => {
  const full = await serveOutput({ MERIDIAN_SQLITE_SYNC: '' });
  assert.equal(full.length, 1, full.join('\n'));
  assert.equal(JSON.parse(full[0]).synchronous, 'FULL');
  assert.match(JSON.parse(full[0]).msg, /every commit fsynced/);
  const normal = await serveOutput({ MERIDIAN_SQLITE_SYNC: 'normal' });
  assert.equal(normal.length, 1, normal.join('\n'));
  const line = JSON.parse(normal[0]);
  assert.equal(line.synchronous, 'NORMAL');
  assert.equal(line.level, 40, 'a warning');
  assert.match(line.msg, /survives a crash of Meridian, not of the machine/);
});

test('PostgreSQL: synchronous_commit stays on, and the store reports it', async (t) => {
  const b = await backendFor('postgres');
  if (b.skip) return t.skip(b.skip);
  const store = await openStore({ dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema, sqliteSync: 'normal' });
  try {
    const { rows } = await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(store.db);
    assert.equal(rows[0].synchronous_commit, 'on');
    assert.deepEqual({ setting: store.durability.setting, safe: store.durability.machineCrashSafe }, { setting: 'on', safe: true });
  } finally {
    await store.close();
    await b.cleanup();
  }
});
