// SQLite's write-ahead log is copied into the database file by a thread of its own when the store is
// opened for a server (backgroundCheckpoints), not inside a commit on the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, migrate } from '../../src/store/db.ts';
import { tempDir } from '../helpers.ts';

async function fileGrowth(backgroundCheckpoints: boolean): Promise<number> {
  const dir = tempDir();
  const store = await openStore({ dataDir: dir.dir, backgroundCheckpoints });
  try {
    await migrate(store);
    // Let any checkpoint of the migrations land, then measure from there.
    await new Promise((r) => setTimeout(r, 600));
    const before = statSync(join(dir.dir, 'meridian.db')).size;
    const body = 'x'.repeat(2_000);
    // About 1 MB in one commit: under SQLite's own threshold (1,000 pages of log), so only our thread
    // would checkpoint it.
    await store.db.insertInto('delivery').values(Array.from({ length: 400 }, (_, i) => ({
      id: `d${i}`, connection_id: 'c', delivery_id: `d${i}`, received_at: new Date().toISOString(), content_type: null, headers: '{}', body, status: 'applied', error: null, change_count: 0, applied_at: null,
    }))).execute();
    await new Promise((r) => setTimeout(r, 800));
    return statSync(join(dir.dir, 'meridian.db')).size - before;
  } finally {
    await store.close();
    dir.cleanup();
  }
}

test('a server store checkpoints the log from its own thread; a plain one leaves it to SQLite', async () => {
  const withThread = await fileGrowth(true);
  const without = await fileGrowth(false);
  assert.ok(withThread > 500_000, `the database file took the rows (${withThread} bytes)`);
  assert.equal(without, 0, 'without the thread, nothing is checkpointed below SQLite\'s threshold');
});
