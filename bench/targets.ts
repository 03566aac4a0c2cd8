// Calendar target write throughput: each connector's client creating, then moving, N events against
// its fake (Google, Graph, Zoho) and against a real Radicale when installed, 4 writes in flight.
// Reports writes per second and HTTP round trips per write (what a clinic's API quota pays), and for
// Graph a bulk catch-up with JSON $batch on and off.
import { randomUUID } from 'node:crypto';
import { getTarget } from '../src/connectors/registry.ts';
import type { ConnectionContext, LinkState, TargetEvent } from '../src/connectors/types.ts';
import { startFakeGoogle } from '../test/fakes/google-calendar.ts';
import { startFakeGraph } from '../test/fakes/microsoft-graph.ts';
import { startFakeZoho } from '../test/fakes/zoho-calendar.ts';
import { radicaleMissing, startRadicale } from '../test/fakes/radicale.ts';
import { createAccount, makeCalendar } from 'tsdav';

export interface TargetRow { target: string; writes: number; seconds: number; requestsPerWrite?: number }

async function drive(platform: string, ctx: ConnectionContext, calendarId: string | undefined, n: number, requests?: () => number, inFlight = 4): Promise<TargetRow> {
  const client = getTarget(platform)!.client!(ctx);
  const ids = Array.from({ length: n }, () => randomUUID());
  const event = (id: string, i: number, moved: boolean): TargetEvent => {
    const start = new Date(Date.UTC(2027, 6, 1, 8) + i * 3_600_000 + (moved ? 86_400_000 : 0)).toISOString();
    return { appointmentId: id, revision: moved ? 2 : 1, calendarId, title: 'A. B. · Session', description: 'Bench', start, end: new Date(Date.parse(start) + 45 * 60_000).toISOString(), timeZone: 'Europe/London', status: 'booked' };
  };
  const links = new Map<string, LinkState>();
  const before = requests?.() ?? 0;
  const t0 = performance.now();
  for (const moved of [false, true]) {
    let k = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (k < ids.length) {
        const i = k++;
        const r = await client.upsert(event(ids[i], i, moved), links.get(ids[i]));
        if (!r.ok) throw new Error(`${platform}: ${r.failure.message}`);
        links.set(ids[i], r.value);
      }
    }));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { target: platform, writes: 2 * n, seconds, requestsPerWrite: requests ? (requests() - before) / (2 * n) : undefined };
}

const ctxOf = (id: string, baseUrl: string, config: Record<string, unknown>, secrets: Record<string, string>): ConnectionContext =>
  ({ connectionId: id, baseUrl, config, secrets, fetch: globalThis.fetch, now: () => new Date(), saveSecrets: async () => {} });

export async function benchTargets(n = 200): Promise<TargetRow[]> {
  const rows: TargetRow[] = [];
  const g = await startFakeGoogle();
  rows.push(await drive('google-calendar', ctxOf('g', g.url, { tokenUrl: g.tokenUrl }, g.credentials), 'bench@clinic', n, () => g.requests.length));
  await g.close();
  const m = await startFakeGraph();
  const graphSecrets = { clientId: m.credentials.clientId, clientSecret: m.credentials.clientSecret };
  rows.push(await drive('microsoft-graph', ctxOf('m', m.url, { tokenUrl: m.tokenUrl, mode: 'application', batch: false }, graphSecrets), 'bench@clinic.example', n, () => m.roundTrips));
  // Bulk (catch-up after a reconnection): 500 events, 20 in flight, with and without JSON $batch.
  for (const batch of [false, true]) {
    const row = await drive('microsoft-graph', ctxOf(`mb${batch}`, m.url, { tokenUrl: m.tokenUrl, mode: 'application', batch }, graphSecrets), `bulk-${batch}@clinic.example`, 500, () => m.roundTrips, 20);
    rows.push({ ...row, target: `microsoft-graph bulk, 20 in flight, $batch ${batch ? 'on' : 'off'}` });
  }
  await m.close();
  const z = await startFakeZoho();
  rows.push(await drive('zoho-calendar', ctxOf('z', z.url, { accountsServer: z.accountsServer }, z.credentials), undefined, n, () => z.requests.length));
  await z.close();
  let missing: string | undefined;
  try {
    missing = radicaleMissing();
  } catch (e) {
    missing = (e as Error).message;
  }
  if (!missing) {
    const rad = await startRadicale();
    const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers });
    await makeCalendar({ url: `${account.homeUrl}bench/`, headers, props: { 'd:displayname': 'Bench' } });
    rows.push({ ...(await drive('caldav', ctxOf('c', rad.url, {}, { username: rad.username, password: rad.password }), 'Bench', n)), target: 'caldav (Radicale)' });
    await rad.stop();
  }
  return rows;
}
