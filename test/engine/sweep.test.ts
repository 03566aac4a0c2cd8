// Incremental read-back: with a Google sync token, a sweep reads back only the events that changed
// since the last one; without a token, or when it expired (410), everything is compared through window
// listings, and only what the listing shows missing or changed is read back one event at a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CAL, day, googleClinic, type GoogleClinic } from './google-clinic.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import type { FakeGoogle } from '../fakes/google-calendar.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { sweepConnection, type SweepReport } from '../../src/engine/sync/sweep.ts';

let g: FakeGoogle;
let hub: Hub;

let clinic: GoogleClinic;
before(async () => {
  clinic = await googleClinic({ config: 'busyTimes: false' });
  ({ hub, g } = clinic);
});
after(() => clinic.close());

const reads = () => g.requests.filter((q) => q.method === 'GET' && /\/events\/[^/]+$/.test(q.path)).length;
/** Window listings (events.list with timeMin), not the sync-token calls. */
const listings = () => g.requests.filter((q) => q.method === 'GET' && /\/events$/.test(q.path) && q.query.timeMin !== undefined).length;

async function sweep(): Promise<SweepReport & { reads: number; listings: number }> {
  const [r0, l0] = [reads(), listings()];
  const r = await sweepConnection(hub, 'google');
  assert.ok(!('failure' in r));
  return { ...r, reads: reads() - r0, listings: listings() - l0 };
}

test('only changed events are read back; an expired token means a full check', async () => {
  for (let i = 0; i < 5; i++) await staffCreate(hub, { practitionerId: 'okafor', start: day(2 + i, 10), end: day(2 + i, 11), patient: { name: `Patient ${i}` } }, 'test');
  await drain(hub);
  let r = await sweep();
  assert.deepEqual([r.checked, r.reads, r.listings], [5, 0, 1], 'first sweep: no token: one listing compares all five, none read one by one');
  r = await sweep();
  assert.deepEqual([r.checked, r.reads, r.listings], [0, 0, 0], 'nothing changed, nothing read');
  const [victim] = g.live(CAL);
  g.deleteBehindOurBack(CAL, victim.id!);
  r = await sweep();
  assert.equal(r.checked, 1);
  assert.equal(r.repaired, 1);
  assert.equal(g.live(CAL).length, 5);
  g.expireSyncTokens();
  g.editBehindOurBack(CAL, g.live(CAL)[1].id!, { start: { dateTime: day(9, 10) }, end: { dateTime: day(9, 11) } });
  r = await sweep();
  assert.deepEqual([r.checked, r.reads, r.repaired], [5, 1, 1], 'token expired (410): a full compare by listing; the moved event alone is read back and put back');
  assert.deepEqual(g.live(CAL).map((e) => new Date(e.start?.dateTime ?? '').toISOString()).sort(), [2, 3, 4, 5, 6].map((d) => day(d, 10)).sort());
  assert.deepEqual(g.violations, []);
});
