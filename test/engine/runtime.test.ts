// The server's background work as `serve` starts it (src/engine/runtime.ts): its sizes come from the
// same environment variables, its timers run, and stop() leaves the store free to close.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openHub, makeLogger } from '../../src/engine/hub/hub.ts';
import { enqueue } from '../../src/store/outbox.ts';
import { startRuntime } from '../../src/engine/runtime.ts';
import { tempDir } from '../helpers.ts';

async function hubWith(env: NodeJS.ProcessEnv) {
  const t = tempDir();
  const hub = await openHub({ dataDir: t.dir, env, log: makeLogger('silent') });
  return { hub, cleanup: async () => { await hub.store.close(); t.cleanup(); } };
}

describe('the runtime', () => {
  test('worker size and job lease come from MERIDIAN_WORKERS and MERIDIAN_JOB_LEASE_SECONDS, options override them, nonsense falls back', async () => {
    const cases: [NodeJS.ProcessEnv, Parameters<typeof startRuntime>[1], number, number][] = [
      [{}, {}, 4, 120_000],
      [{ MERIDIAN_WORKERS: '2', MERIDIAN_JOB_LEASE_SECONDS: '7' }, {}, 2, 7_000],
      [{ MERIDIAN_WORKERS: '2' }, { workers: 6, leaseMs: 500 }, 6, 500],
      [{ MERIDIAN_WORKERS: 'many', MERIDIAN_JOB_LEASE_SECONDS: '0' }, {}, 4, 120_000],
    ];
    for (const [env, o, concurrency, leaseMs] of cases) {
      const { hub, cleanup } = await hubWith(env);
      const rt = await startRuntime(hub, o);
      assert.deepEqual({ concurrency: rt.worker.opts.concurrency, leaseMs: rt.worker.opts.leaseMs }, { concurrency, leaseMs }, JSON.stringify(env));
      await rt.stop();
      await cleanup();
    }
  });

  test('finished jobs past their keeping time are pruned on the interval; stop() is safe twice and leaves the store to close', async () => {
    const { hub, cleanup } = await hubWith({ MERIDIAN_SWEEP_MINUTES: '0' });
    const now = hub.clock.now().toISOString();
    await enqueue(hub.store.db, [{ kind: 'source.poll', payload: { connectionId: 'none' }, dedupeKey: 'old' }, { kind: 'source.poll', payload: { connectionId: 'none' }, dedupeKey: 'recent' }], now);
    // Finished long ago, and just now (the worker never sees them: they are not pending).
    await hub.store.db.updateTable('job').set({ state: 'done', updated_at: '2000-01-01T00:00:00.000Z' }).where('dedupe_key', '=', 'old').execute();
    await hub.store.db.updateTable('job').set({ state: 'done', updated_at: now }).where('dedupe_key', '=', 'recent').execute();
    const rt = await startRuntime(hub, { pruneEveryMs: 20, keepDoneMs: 60_000 });
    const end = Date.now() + 5_000;
    let left: string[] = [];
    while (Date.now() < end) {
      left = (await hub.store.db.selectFrom('job').select('dedupe_key').execute()).map((r) => r.dedupe_key ?? '');
      if (!left.includes('old')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(left, ['recent']);
    await Promise.all([rt.stop(), rt.stop()]);
    await cleanup();
  });
});
