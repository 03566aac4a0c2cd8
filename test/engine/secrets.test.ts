// Secrets referenced from the environment and rotated by the provider: a refresh token the provider
// exchanged for a new one (stored encrypted by the connector) is not undone by the old value still in the
// environment after a restart, but a new value put in the environment by an admin wins again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openHub, makeLogger } from '../../src/engine/hub/hub.ts';
import { connectionContext, loadConnection } from '../../src/engine/hub/connections.ts';
import { configuredHub, tempDir } from '../helpers.ts';

const CONFIG = `
clinic: { id: c, name: Clinic, timeZone: Europe/London }
connections:
  - id: google
    platform: google-calendar
    secrets: { clientId: { env: G_ID }, clientSecret: { env: G_SECRET }, refreshToken: { env: G_REFRESH } }
`;

test('a rotated refresh token outlives the stale environment value; a new environment value wins', async () => {
  const dir = tempDir();
  const env = (refresh: string) => ({ G_ID: 'id', G_SECRET: 'secret', G_REFRESH: refresh });
  const open = async (refresh: string) => openHub({ dataDir: dir.dir, log: makeLogger('silent'), env: env(refresh) });
  try {
    let hub = await configuredHub(CONFIG, { dataDir: dir.dir, env: env('rt-1') });
    assert.equal((await loadConnection(hub, 'google')).secrets.refreshToken, 'rt-1');
    // The provider rotates the token during a refresh: the connector stores the new one.
    await connectionContext(hub, await loadConnection(hub, 'google')).saveSecrets!({ refreshToken: 'rt-2', accessToken: 'at-2' });
    const now = await loadConnection(hub, 'google');
    assert.equal(now.secrets.refreshToken, 'rt-2');
    assert.equal(now.secrets.clientSecret, 'secret', 'other environment secrets still win');
    assert.ok(!Object.keys(now.secrets).some((k) => k.startsWith('__')), 'the bookkeeping is not handed to connectors');
    await hub.store.close();

    hub = await open('rt-1'); // restarted with the same (now stale) environment
    assert.equal((await loadConnection(hub, 'google')).secrets.refreshToken, 'rt-2');
    await hub.store.close();

    hub = await open('rt-9'); // an admin reconnected and put a new token in the environment
    assert.equal((await loadConnection(hub, 'google')).secrets.refreshToken, 'rt-9');
    await hub.store.close();
  } finally {
    dir.cleanup();
  }
});
