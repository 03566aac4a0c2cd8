// A one-practitioner clinic whose calendar is the fake Google, with the hub in-process: the setup the
// engine tests share. `config` adds settings to the Google connection (e.g. `twoWay: accept`).
import type { Clock, Hub } from '../../src/engine/hub/hub.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { tempDir, configuredHub } from '../helpers.ts';

export const CAL = 'okafor@clinic';

export interface GoogleClinic {
  hub: Hub;
  g: FakeGoogle;
  /** The store's folder and the environment its connection's secrets come from (for CLI runs on it). */
  dataDir: string;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function googleClinic(o: { clock?: Clock; config?: string } = {}): Promise<GoogleClinic> {
  const g = await startFakeGoogle();
  const dir = tempDir();
  const env = { G_ID: g.credentials.clientId, G_SECRET: g.credentials.clientSecret, G_REFRESH: g.credentials.refreshToken };
  const hub = await configuredHub(`
clinic: { id: c, name: Clinic, timeZone: Europe/London }
locations: [{ id: l, name: Main }]
practitioners: [{ id: okafor, name: Dr Okafor, locations: [l], targets: [{ connection: google, calendar: "${CAL}" }] }]
connections:
  - id: google
    platform: google-calendar
    baseUrl: ${g.url}
    config: { tokenUrl: ${g.tokenUrl}${o.config ? `, ${o.config}` : ''} }
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`, { dataDir: dir.dir, clock: o.clock, env });
  return {
    hub, g, dataDir: dir.dir, env,
    close: async () => {
      await hub.store.close();
      await g.close();
      dir.cleanup();
    },
  };
}

/** An instant `days` from today at `hour`:`minute` UTC (appointments in the sweep window). */
export function day(days: number, hour: number, minute = 0): string {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate() + days, hour, minute)).toISOString();
}
