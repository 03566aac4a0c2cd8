// Incremental read-back: with a Google sync token, a sweep reads back only the events that changed
// since the last one; an expired token (410) falls back to checking everything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, day, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub } from '../../src/engine/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCreate } from '../../src/engine/staff.ts';
import { drain } from '../../src/engine/worker.ts';
import { sweepConnection, type SweepReport } from '../../src/engine/drift.ts';

let g: FakeGoogle;
let hub: Hub;

let clinic: GoogleClinic;
before(async () => {
  clinic = await googleClinic({ config: 'busyTimes: false' });
  ({ hub, g } = clinic);
});
after(() => clinic.close());

async function sweep(): Promise<SweepReport & { reads: number }> {
  const before = g.requests.filter((r) => r.method === 'GET' && /\/events\/[^/]+$/.test(r.path)).length;
  const r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  return { ...r, reads: g.requests.filter((q) => q.method === 'GET' && /\/events\/[^/]+$/.test(q.path)).length - before };
}

test('only changed events are read back; an expired token means a full check', async () => {
  for (let i = 0; i < 5; i++) await staffCreate(hub, { practitionerId: 'okafor', start: day(2 + i, 10), end: day(2 + i, 11), patient: { name: `Patient ${i}` } }, 'test');
  await drain(hub);
  let r = await sweep();
  assert.deepEqual([r.checked, r.reads], [5, 5], 'first sweep: no token, everything');
  r = await sweep();
  assert.deepEqual([r.checked, r.reads], [0, 0], 'nothing changed, nothing read');
  const [victim] = g.live(CAL);
  g.deleteBehindOurBack(CAL, victim.id!);
  r = await sweep();
  assert.equal(r.checked, 1);
  assert.equal(r.repaired, 1);
  assert.equal(g.live(CAL).length, 5);
  g.expireSyncTokens();
  r = await sweep();
  assert.equal(r.checked, 5, 'token expired (410): full check');
  assert.deepEqual(g.violations, []);
});
