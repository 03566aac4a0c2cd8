// A Microsoft refresh token unused for most of its 90-day inactivity limit is reported to staff
// before it breaks; using the connection refreshes it and the warning is not repeated.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock, Hub } from '../../src/engine/hub/hub.ts';
import { saveSecrets } from '../../src/engine/hub/connections.ts';
import { checkTokenAge } from '../../src/engine/sync/sweep.ts';
import { staffCreate } from '../../src/engine/edits/staff.ts';
import { drain } from '../../src/engine/jobs/worker.ts';
import { startFakeGraph, type FakeGraph } from '../fakes/microsoft-graph.ts';
import { tempDir, configuredHub } from '../helpers.ts';

let m: FakeGraph;
let hub: Hub;
const dir = tempDir();
let now = new Date('2027-01-10T09:00:00Z');
const clock: Clock = { now: () => now };

before(async () => {
  m = await startFakeGraph();
  hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l], targets: [{ connection: outlook }] }]
connections:
  - id: outlook
    platform: microsoft-graph
    baseUrl: ${m.url}
    config: { mode: delegated, tokenUrl: ${m.tokenUrl} }
    secrets: { clientId: { env: MS_ID }, refreshToken: { env: MS_REFRESH } }
`, { dataDir: dir.dir, clock, env: { MS_ID: m.credentials.clientId, MS_REFRESH: m.credentials.refreshToken } });
});
after(async () => {
  await hub.store.close();
  await m.close();
  dir.cleanup();
});

const warnings = async () => (await hub.store.db.selectFrom('audit').select('action').where('action', '=', 'connection.token_expiring').execute()).length;

test('warned at 76+ idle days, once; a refresh clears it', async () => {
  await saveSecrets(hub.store.db, hub, 'outlook', { refreshedAt: String(now.getTime() - 70 * 86_400_000) });
  assert.equal(await checkTokenAge(hub, 'outlook'), 70);
  assert.equal(await warnings(), 0, 'not yet');
  now = new Date(now.getTime() + 8 * 86_400_000);
  assert.equal(await checkTokenAge(hub, 'outlook'), 78);
  assert.equal(await warnings(), 1);
  const conn = await hub.store.db.selectFrom('connection').select('last_error').where('id', '=', 'outlook').executeTakeFirstOrThrow();
  assert.match(conn.last_error ?? '', /not been used for 78 days.*90 days/);
  await checkTokenAge(hub, 'outlook');
  assert.equal(await warnings(), 1, 'told once');
  // Using the connection refreshes the token (Microsoft hands out a new one) and resets the clock.
  await staffCreate(hub, { practitionerId: 'okafor', start: '2027-02-01T10:00:00Z', end: '2027-02-01T11:00:00Z', patient: { name: 'Ana Silva' } }, 'test');
  await drain(hub);
  assert.equal(m.events('me').length, 1);
  assert.equal(await checkTokenAge(hub, 'outlook'), 0);
  const cleared = await hub.store.db.selectFrom('connection').select('last_error').where('id', '=', 'outlook').executeTakeFirstOrThrow();
  assert.equal(cleared.last_error, null, 'the warning is gone once the token is fresh');
});
