// Missing secrets are an error, not a surprise (issue 17, item 6): `config check` names each unset environment
// variable and each absent secret at file:line:column and exits 1 (auth sets honoured); `serve` still starts,
// warns once per problem, and the connection shows `needs_setup` (never active) in the health answer and the
// API until its secret is stored; meanwhile it takes no delivery (503), and afterwards it does.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getConnector } from '../../src/connectors/registry.ts';
import { authSetsOf, connectionSetup } from '../../src/connectors/setup.ts';
import { shownStatus } from '../../src/engine/hub/connections.ts';
import { meridian, tempDir } from '../helpers.ts';
import { apiClient, createKey, serve, type Served } from './serve.ts';

const descriptor = (platform: string) => getConnector(platform)!.descriptor;
/** No store and no environment leaking in from the machine running the tests. */
const CLEAN = { DATABASE_URL: '', MERIDIAN_SECRET_KEY: '', MERIDIAN_CONFIG: '', LOG_LEVEL: 'warn' };

/** The 1-based line and column of the first `needle` in `text` (as the YAML parser counts them). */
function where(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, needle);
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

const HEAD = `clinic: { id: c1, name: Test clinic, timeZone: Europe/London }
practitioners:
  - { id: p1, name: Pat One }
connections:
`;

describe('whether a connection is set up (one rule)', () => {
  test('required fields, or any one auth set; the closest set is what is missing', () => {
    const cal = descriptor('calendly');
    assert.deepEqual(connectionSetup(cal, {}), { complete: false, missing: ['signingKey'], unsetEnv: [] });
    assert.equal(connectionSetup(cal, { stored: ['signingKey'] }).complete, true);
    const graph = descriptor('microsoft-graph');
    assert.deepEqual(authSetsOf(graph), [['clientId', 'refreshToken'], ['clientId', 'clientSecret']]);
    assert.deepEqual(connectionSetup(graph, { stored: ['clientId'] }).missing, ['refreshToken']);
    assert.equal(connectionSetup(graph, { stored: ['clientId', 'clientSecret'] }).complete, true, 'application permissions');
    assert.equal(connectionSetup(graph, { stored: ['clientId', 'refreshToken'] }).complete, true, 'delegated');
    const hs = descriptor('hubspot');
    assert.equal(connectionSetup(hs, { stored: ['privateAppToken'] }).complete, true);
    assert.deepEqual(connectionSetup(hs, { stored: ['clientId', 'clientSecret'] }).missing, ['refreshToken']);
    const sf = descriptor('salesforce');
    assert.equal(connectionSetup(sf, { stored: ['clientId', 'username', 'privateKey'] }).complete, true, 'JWT');
    assert.equal(connectionSetup(sf, { stored: ['clientId', 'refreshToken'] }).complete, true, 'web-server flow');
    assert.deepEqual(connectionSetup(sf, { stored: ['clientId', 'username'] }).missing, ['privateKey']);
    const form = descriptor('lead-form');
    assert.equal(connectionSetup(form, { stored: ['webhookToken'] }).complete, true);
    assert.equal(connectionSetup(form, { stored: ['signingSecret'] }).complete, true);
    // Neither: the set the connection refers to is the one named.
    assert.deepEqual(connectionSetup(form, { envRefs: { webhookToken: 'LEAD_TOKEN' }, env: {} }),
      { complete: false, missing: ['webhookToken'], unsetEnv: [{ key: 'webhookToken', env: 'LEAD_TOKEN' }] });
    // An empty variable is not set; a stored value still serves while the reference is reported.
    assert.equal(connectionSetup(form, { envRefs: { webhookToken: 'LEAD_TOKEN' }, env: { LEAD_TOKEN: '' } }).complete, false);
    const both = connectionSetup(form, { envRefs: { webhookToken: 'LEAD_TOKEN' }, env: {}, stored: ['webhookToken'] });
    assert.equal(both.complete, true);
    assert.deepEqual(both.unsetEnv, [{ key: 'webhookToken', env: 'LEAD_TOKEN' }]);
    assert.equal(connectionSetup(descriptor('ics-publish'), {}).complete, true, 'nothing to set up');
  });

  test('an incomplete connection shows needs_setup unless it is disabled', () => {
    const incomplete = { complete: false, missing: ['signingKey'], unsetEnv: [] };
    assert.equal(shownStatus('active', incomplete), 'needs_setup');
    assert.equal(shownStatus('needs_reauth', incomplete), 'needs_setup');
    assert.equal(shownStatus('disabled', incomplete), 'disabled');
    assert.equal(shownStatus('active', { complete: true, missing: [], unsetEnv: [] }), 'active');
  });
});

describe('`config check` reports missing secrets at file:line:column and exits 1', () => {
  const tmp = tempDir('meridian-check-');
  const noStore = join(tmp.dir, 'no-store');
  after(() => tmp.cleanup());
  const check = (yaml: string, env: NodeJS.ProcessEnv = {}, data = noStore) => {
    const file = join(tmp.dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    return meridian(['config', 'check', file, '--data', data], { env: { ...CLEAN, ...env } }).then((r) => ({ ...r, file }));
  };

  test('an environment reference whose variable is unset or empty', async () => {
    const yaml = `${HEAD}  - id: cal
    platform: calendly
    secrets:
      signingKey: { env: NS_CAL_KEY }
`;
    const unset = await check(yaml);
    assert.equal(unset.code, 1, unset.stderr);
    assert.ok(unset.stderr.includes(`${unset.file}:${where(yaml, 'signingKey: { env')}: connections[0].secrets.signingKey: NS_CAL_KEY is not set in the environment`), unset.stderr);
    const empty = await check(yaml, { NS_CAL_KEY: '' });
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /NS_CAL_KEY is not set in the environment/);
    const set = await check(yaml, { NS_CAL_KEY: 'whsec-test' });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /valid \(1 practitioners, 0 locations, 1 connections\)/);
  });

  test('a required secret with no reference at all is reported at its connection', async () => {
    const yaml = `${HEAD}  - id: feeds
    platform: ics-publish
  - id: cal
    platform: calendly
    name: Calendly
`;
    const r = await check(yaml);
    assert.equal(r.code, 1, r.stdout);
    assert.ok(r.stderr.includes(`${r.file}:${where(yaml, 'id: cal')}: connections[1]: Calendly needs signingKey: add \`signingKey: { env: … }\``), r.stderr);
    assert.match(r.stderr, /meridian connections set-secret cal signingKey/);
    assert.doesNotMatch(r.stderr, /connections\[0\]/, 'a feed needs no secret');
  });

  test('auth sets: any one set is enough; none names the closest set and the others', async () => {
    const graph = (secrets: string) => `${HEAD}  - id: graph
    platform: microsoft-graph
    config: { mode: application }
    secrets: { ${secrets} }
  - id: form
    platform: lead-form
    secrets: { signingSecret: { env: NS_FORM_SECRET } }
  - id: crm
    platform: hubspot
    secrets: { privateAppToken: { env: NS_HS_TOKEN } }
`;
    const env = { NS_GRAPH_ID: 'app-id', NS_GRAPH_SECRET: 'app-secret', NS_FORM_SECRET: 'form-secret', NS_HS_TOKEN: 'pat-1' };
    const app = await check(graph('clientId: { env: NS_GRAPH_ID }, clientSecret: { env: NS_GRAPH_SECRET }'), env);
    assert.equal(app.code, 0, app.stderr);
    const delegated = await check(graph('clientId: { env: NS_GRAPH_ID }, refreshToken: { env: NS_GRAPH_REFRESH }'), { ...env, NS_GRAPH_REFRESH: 'rt' });
    assert.equal(delegated.code, 0, delegated.stderr);
    const yaml = graph('clientId: { env: NS_GRAPH_ID }');
    const neither = await check(yaml, env);
    assert.equal(neither.code, 1);
    assert.ok(neither.stderr.includes(`${neither.file}:${where(yaml, 'id: graph')}: connections[0]: Microsoft 365 / Outlook.com (Graph) needs refreshToken (or instead: clientSecret)`), neither.stderr);
    assert.doesNotMatch(neither.stderr, /connections\[1\]|connections\[2\]/);
  });

  test('`{ stored: true }`: a note without a store, checked against the store when there is one', async () => {
    const yaml = `${HEAD}  - id: form
    platform: lead-form
    secrets: { webhookToken: { stored: true } }
`;
    const r = await check(yaml);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`note: stored secrets not checked (no store at ${join(noStore, 'meridian.db')})`), r.stdout);
    // With a store (made by applying the file), the token is not there yet; once stored, it is.
    const data = join(tmp.dir, 'store');
    const file = join(tmp.dir, 'stored.yaml');
    writeFileSync(file, yaml);
    const applied = await meridian(['config', 'apply', '--data', data, '--config', file], { env: CLEAN });
    assert.equal(applied.code, 1, 'applied, but the form is not set up');
    assert.match(applied.stdout, /applied .*stored\.yaml: 1 practitioners, 1 connections/);
    assert.ok(applied.stderr.includes(`${file}:${where(yaml, 'webhookToken: { stored')}: connections[0].secrets.webhookToken: webhookToken is not stored yet`), applied.stderr);
    const listed = await meridian(['connections', 'list', '--data', data], { env: CLEAN });
    // (The store keeps environment references, not `{ stored: true }` declarations: with nothing stored yet, either set may be named.)
    assert.match(listed.stdout, /^form {2}lead-form {2}needs_setup {2}\(lacks (webhookToken|signingSecret)\)$/m);
    const missing = await check(yaml, {}, data);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /webhookToken is not stored yet: store it with `meridian connections set-secret form webhookToken`/);
    const stored = await meridian(['connections', 'set-secret', 'form', 'webhookToken', '--data', data], { env: CLEAN, input: 'tok-123456\n' });
    assert.equal(stored.code, 0, stored.stderr);
    const ok = await check(yaml, {}, data);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stdout, /not checked/);
    assert.equal((await meridian(['config', 'apply', '--data', data, '--config', file], { env: CLEAN })).code, 0);
  });
});

describe('`serve` with a connection missing its secret', () => {
  const tmp = tempDir('meridian-needs-setup-');
  const config = join(tmp.dir, 'meridian.yaml');
  const common = ['--data', tmp.dir, '--config', config];
  const env = { ...CLEAN, NS_GRAPH_ID: 'app-id', NS_GRAPH_SECRET: 'app-secret' };
  let srv: Served;
  let api: ReturnType<typeof apiClient>;
  before(async () => {
    writeFileSync(config, `${HEAD}  - id: website
    platform: lead-form
    secrets: { webhookToken: { env: NS_LEAD_TOKEN } }
  - id: cal
    platform: calendly
  - id: graph
    platform: microsoft-graph
    config: { mode: application }
    secrets: { clientId: { env: NS_GRAPH_ID }, clientSecret: { env: NS_GRAPH_SECRET } }
`);
    srv = await serve(['serve', ...common], env);
    api = apiClient(srv.url, await createKey(common, env));
  });
  after(async () => {
    await srv?.stop();
    tmp.cleanup();
  });

  test('starts, and warns once per problem naming the connection, the secret and the variable', () => {
    const lines = srv.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const warned = lines.filter((l) => l.level === 40 && l.connection !== undefined);
    const website = warned.filter((l) => l.connection === 'website');
    assert.equal(website.length, 1, srv.output());
    assert.equal(website[0].key, 'webhookToken');
    assert.equal(website[0].env, 'NS_LEAD_TOKEN');
    assert.match(String(website[0].msg), /NS_LEAD_TOKEN is not set in the environment/);
    const cal = warned.filter((l) => l.connection === 'cal');
    assert.equal(cal.length, 1);
    assert.deepEqual(cal[0].missing, ['signingKey']);
    assert.match(String(cal[0].msg), /cal needs setup: it lacks signingKey/);
    assert.equal(warned.filter((l) => l.connection === 'graph').length, 0, 'graph has its application credentials');
  });

  test('health and the API show needs_setup with what is missing, until the secret is stored; deliveries wait for it', async () => {
    const health = async () => new Map(((await api('GET', '/health/connections')).body.items as { id: string; status: string; setup: unknown }[]).map((i) => [i.id, i]));
    let h = await health();
    assert.equal(h.get('website')!.status, 'needs_setup');
    assert.deepEqual(h.get('website')!.setup, { complete: false, missing: ['webhookToken'], unsetEnv: [{ key: 'webhookToken', env: 'NS_LEAD_TOKEN' }] });
    assert.equal(h.get('cal')!.status, 'needs_setup');
    assert.deepEqual(h.get('cal')!.setup, { complete: false, missing: ['signingKey'], unsetEnv: [] });
    assert.equal(h.get('graph')!.status, 'active');
    assert.deepEqual(h.get('graph')!.setup, { complete: true, missing: [], unsetEnv: [] });
    const listed = (await api('GET', '/connections')).body.items as { id: string; status: string; setup: { complete: boolean } }[];
    assert.deepEqual(listed.map((c) => [c.id, c.status, c.setup.complete]), [['cal', 'needs_setup', false], ['graph', 'active', true], ['website', 'needs_setup', false]]);

    const lead = (token: string) => fetch(`${srv.url}/leads/website?token=${token}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Robin Lee', email: 'robin@example.org', preferredTimes: ['any morning'] }),
    });
    assert.equal((await lead('tok-website-1')).status, 503, 'not set up: refused for now');

    const put = await api('PUT', '/connections/website/secrets', { webhookToken: 'tok-website-1' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    h = await health();
    assert.equal(h.get('website')!.status, 'active');
    assert.deepEqual(h.get('website')!.setup, { complete: true, missing: [], unsetEnv: [{ key: 'webhookToken', env: 'NS_LEAD_TOKEN' }] });
    assert.equal(h.get('cal')!.status, 'needs_setup', 'the other one still needs its key');
    assert.equal((await lead('wrong-token')).status, 401, 'verification is unchanged');
    const ok = await lead('tok-website-1');
    assert.ok(ok.status >= 200 && ok.status < 300, `${ok.status} ${await ok.text()}`);
    // The file's connection cannot be changed through the API (it is provisioned); the listing still says what it lacks.
    assert.equal((await api('PATCH', '/connections/cal', { name: 'Calendly' })).status, 409);
    const cal = ((await api('GET', '/connections')).body.items as { id: string; status: string; setup: { missing: string[] } }[]).find((c) => c.id === 'cal')!;
    assert.equal(cal.status, 'needs_setup');
    assert.deepEqual(cal.setup.missing, ['signingKey']);
  });
});
