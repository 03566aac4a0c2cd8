// Migrations beside other schemas coming and going on the same PostgreSQL (other Meridians' test runs, a
// tenant removed): Kysely finds its bookkeeping tables by listing the tables of every schema, and a schema
// dropped during that listing fails it with "schema … does not exist". `migrate` must not fail for that.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openStore, migrate, type Store } from '../../src/store/db.ts';
import { PG_URL, backendFor } from '../helpers.ts';

// Without PostgreSQL this is skipped, visibly; under CI=true its absence fails (helpers.ts).
const b = await backendFor('postgres');
let store: Store | undefined;
before(async () => {
  if (!b.skip) store = await openStore({ dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema });
});
after(async () => {
  await store?.close();
  await b.cleanup();
});

test('migrate is not failed by another schema dropped while it looks for its tables', { skip: b.skip }, async () => {
  await migrate(store!);
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  let stop = false;
  let cycles = 0;
  const other = `${b.pgSchema}_other`;
  // Another schema with tables (as many as a Meridian store has) is created and dropped, again and again,
  // while migrate runs; without the retry about half of these migrate calls fail.
  const churn = (async () => {
    while (!stop) {
      cycles++;
      const tables = Array.from({ length: 20 }, (_, i) => `create table ${other}.t${i} (id serial primary key, ${Array.from({ length: 10 }, (_, j) => `c${j} int`).join(', ')});`).join(' ');
      await c.query(`create schema ${other}; ${tables}`);
      await c.query(`drop schema ${other} cascade`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const failures: string[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      try {
        assert.deepEqual(await migrate(store!), []);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  } finally {
    stop = true;
    await churn;
    await c.end();
  }
  assert.ok(cycles > 10, `the other schema came and went (${cycles} times)`);
  assert.deepEqual(failures, []);
});
