// The sync scheduler across processes: two `bin/meridian serve` processes on the same PostgreSQL poll a
// feed connection on a short interval. Each interval's poll runs once in all (one pending poll per
// connection, claimed by one worker; a lease keeps polls from overlapping), never twice back to back.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backendFor } from '../helpers.ts';
import { startIcsServer, type IcsServer } from '../fakes/ics-server.ts';
import { serve, type Served } from './serve.ts';

const INTERVAL_S = 3;

describe('the sync scheduler on two processes sharing PostgreSQL', async () => {
  const b = await backendFor('postgres');
  let feeds: IcsServer;
  const servers: Served[] = [];

  before(async () => {
    if (b.skip) return;
    feeds = await startIcsServer();
    feeds.serve('/p.ics', ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//t//EN', 'END:VCALENDAR', ''].join('\r\n'));
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners: [{ id: p, name: Dr P, locations: [l] }]
connections:
  - id: feed
    platform: ics-feed
    config: { practitioner: p, pollMinutes: ${INTERVAL_S / 60} }
    secrets: { feedUrl: { env: E2E_FEED } }
    refs: { practitioners: { p: p } }
`);
    const env = { DATABASE_URL: b.databaseUrl, MERIDIAN_PG_SCHEMA: b.pgSchema, E2E_FEED: feeds.url('/p.ics') };
    // One after the other: the first migrates the shared schema.
    servers.push(await serve(['serve', '--data', join(b.dataDir, 'a'), '--config', cfg], env));
    servers.push(await serve(['serve', '--data', join(b.dataDir, 'b'), '--config', cfg], env));
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await feeds?.close();
    await b.cleanup();
  });

  test('each interval polls once in all, with no two polls back to back', { skip: b.skip }, async () => {
    const start = Date.now();
    await new Promise((r) => setTimeout(r, INTERVAL_S * 5 * 1000));
    const at = feeds.requests.filter((r) => r.path === '/p.ics' && r.at >= start).map((r) => r.at);
    const seconds = (Date.now() - start) / 1000;
    // Two processes, one poll per interval in all (plus perhaps the first after start), not one each.
    assert.ok(at.length >= Math.floor(seconds / INTERVAL_S) - 2 && at.length <= Math.ceil(seconds / INTERVAL_S) + 1, `${at.length} polls in ${seconds.toFixed(1)} s at ${INTERVAL_S} s`);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    assert.ok(gaps.every((g) => g >= INTERVAL_S * 500), `polls too close together: ${gaps.join(', ')} ms`);
  });
});
