// Incremental read-back: with a Google sync token, a sweep reads back only the events that changed
// since the last one; an expired token (410) falls back to checking everything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHub, makeLogger, type Hub } from '../../src/engine/hub.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyConfig } from '../../src/config/apply.ts';
import { staffCreate } from '../../src/engine/staff.ts';
import { drain } from '../../src/engine/worker.ts';
import { sweepConnection, type SweepReport } from '../../src/engine/drift.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { tempDir } from '../helpers.ts';

let g: FakeGoogle;
let hub: Hub;
const dir = tempDir();
const CAL = 'okafor@clinic';
const day = (d: number, h: number) => new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + d, h)).toISOString();

before(async () => {
  g = await startFakeGoogle();
  hub = await openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken } });
  const c = parseConfig(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l], targets: [{ connection: google, calendar: "${CAL}" }] }]
connections:
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl}, busyTimes: false }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`, 'test.yaml');
  await applyConfig(hub, c.config, c.hash, 'test');
});
after(async () => {
  await hub.store.close();
  await g.close();
  dir.cleanup();
});

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
