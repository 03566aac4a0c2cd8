// The peers (`npm run bench -- --peers`): Node-RED and n8n, found outside the project (never its
// dependencies), each running the same webhook → map → calendar-API flow against the fake Google:
//  - Node-RED: http-in → function (map the Calendly payload to a Google event) → http-request (POST
//    events.insert) → function (answer) → http-response, from a flows file; default settings.
//  - n8n: Webhook (answers when the last node is done) → Set (map) → HTTP Request (POST events.insert),
//    imported from JSON with its CLI and activated; default settings (its SQLite, executions saved).
// Neither verifies the Calendly signature (no stock node for it), so both do less than Meridian does.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT, freePort, node, sleep, type Started } from './common.ts';
import type { Req } from './load.ts';

export const INSTALL_HINT = 'npm install --prefix ~/meridian-peers node-red@4 n8n@1  (outside the project; or point MERIDIAN_BENCH_NODE_RED / MERIDIAN_BENCH_N8N at an install)';

/** Where a peer's package is: the env variable, bench/peers (gitignored), ~/meridian-peers. */
function findPackage(pkg: string, envVar: string): string | undefined {
  const given = process.env[envVar];
  const candidates = [
    ...(given ? [given, join(given, 'node_modules', pkg)] : []),
    join(ROOT, 'bench', 'peers', 'node_modules', pkg),
    join(homedir(), 'meridian-peers', 'node_modules', pkg),
  ];
  return candidates.find((c) => existsSync(join(c, 'package.json')) && JSON.parse(readFileSync(join(c, 'package.json'), 'utf8')).name === pkg);
}

export interface Peer {
  name: string;
  version: string;
  /** The webhook URL to post Calendly deliveries to. */
  webhookUrl: string;
  started: Started;
  /** Process start to the flow answering its first webhook, ms. */
  readyMs: number;
}

export interface PeerSpec {
  calendarUrl: string;
  token: string;
  dir: string;
  /** A real signed delivery: the first one that is answered 200 tells the flow is up (it writes one event). */
  probe: () => Req;
}

const versionOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version as string;

/** Poll with real deliveries until the flow answers one 200. */
export async function untilAnswering(url: string, started: number, probe: () => Req, timeoutMs = 120_000): Promise<number> {
  for (;;) {
    try {
      const q = probe();
      const r = await fetch(url, { method: 'POST', headers: q.headers, body: new Uint8Array(q.body) });
      await r.arrayBuffer();
      if (r.status === 200) return performance.now() - started;
    } catch { /* not up yet */ }
    if (performance.now() - started > timeoutMs) throw new Error(`${url} never answered`);
    await sleep(25);
  }
}

// The mapping both peers do, from the Calendly envelope to a Google event (the same fields the plain baseline writes).
const MAP_JS = `
const p = (msg.payload && msg.payload.payload) || {};
const ev = p.scheduled_event || {};
if (!ev.start_time) { msg.skip = true; return [null, msg]; }
msg.payload = {
  summary: 'Appointment',
  start: { dateTime: ev.start_time, timeZone: p.timezone || 'UTC' },
  end: { dateTime: ev.end_time, timeZone: p.timezone || 'UTC' },
  extendedProperties: { private: { meridianAppointmentId: p.uri } },
};
msg.headers = { authorization: 'Bearer ' + env.get('CAL_TOKEN'), 'content-type': 'application/json' };
return [msg, null];`;

export async function startNodeRed(spec: PeerSpec): Promise<Peer | { missing: string }> {
  const dir = findPackage('node-red', 'MERIDIAN_BENCH_NODE_RED');
  if (!dir) return { missing: `Node-RED not found. ${INSTALL_HINT}` };
  const userDir = join(spec.dir, 'node-red');
  mkdirSync(userDir, { recursive: true });
  // Flow nodes carry x/y (Node-RED takes nodes without them for config nodes).
  const flows = [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'in', type: 'http in', z: 'tab', x: 100, y: 100, url: '/calendly', method: 'post', upload: false, wires: [['map']] },
    { id: 'map', type: 'function', z: 'tab', x: 250, y: 100, name: 'map', func: MAP_JS, outputs: 2, wires: [['call'], ['answer']] },
    { id: 'call', type: 'http request', z: 'tab', x: 400, y: 100, method: 'POST', ret: 'obj', paytoqs: 'ignore', url: spec.calendarUrl, persist: true, wires: [['answer']] },
    { id: 'answer', type: 'function', z: 'tab', x: 550, y: 100, name: 'answer', func: 'msg.statusCode = msg.skip ? 202 : (msg.statusCode >= 200 && msg.statusCode < 300 ? 200 : 502); msg.headers = {}; msg.payload = { status: "ok" }; return msg;', outputs: 1, wires: [['out']] },
    { id: 'out', type: 'http response', z: 'tab', x: 700, y: 100, statusCode: '', headers: {}, wires: [] },
  ];
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows));
  const port = await freePort();
  const started = await node([join(dir, 'red.js'), '--port', String(port), '--userDir', userDir, 'flows.json'], { CAL_TOKEN: spec.token, NODE_RED_ENABLE_PROJECTS: 'false' }, { ready: /Started flows/, url: `http://127.0.0.1:${port}` });
  const webhookUrl = `${started.url}/calendly`;
  return { name: 'Node-RED', version: versionOf(dir), webhookUrl, started, readyMs: await untilAnswering(webhookUrl, started.startedAt, spec.probe) };
}

export async function startN8n(spec: PeerSpec): Promise<Peer | { missing: string }> {
  const dir = findPackage('n8n', 'MERIDIAN_BENCH_N8N');
  if (!dir) return { missing: `n8n not found. ${INSTALL_HINT}` };
  const home = join(spec.dir, 'n8n');
  mkdirSync(home, { recursive: true });
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    N8N_USER_FOLDER: home, N8N_PORT: String(port), N8N_LISTEN_ADDRESS: '127.0.0.1', N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false', N8N_PERSONALIZATION_ENABLED: 'false', N8N_HIRING_BANNER_ENABLED: 'false',
    N8N_SECURE_COOKIE: 'false', CAL_TOKEN: spec.token, N8N_BLOCK_ENV_ACCESS_IN_NODE: 'false', N8N_LOG_LEVEL: 'warn',
  };
  const bin = join(dir, 'bin', 'n8n');
  const expr = (js: string) => `={{ ${js} }}`;
  const workflow = {
    id: 'benchFlow0000001', name: 'bench', active: true, settings: {}, connections: {
      Webhook: { main: [[{ node: 'Map', type: 'main', index: 0 }]] },
      Map: { main: [[{ node: 'Calendar', type: 'main', index: 0 }]] },
    },
    nodes: [
      { id: 'a1', name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], webhookId: 'bench-calendly', parameters: { httpMethod: 'POST', path: 'calendly', responseMode: 'lastNode', responseData: 'firstEntryJson', options: {} } },
      {
        id: 'a2', name: 'Map', type: 'n8n-nodes-base.set', typeVersion: 3.4, position: [200, 0], parameters: {
          mode: 'manual', includeOtherFields: false, options: {},
          assignments: {
            assignments: [
              { id: 's1', name: 'start', type: 'string', value: expr('$json.body.payload.scheduled_event.start_time') },
              { id: 's2', name: 'end', type: 'string', value: expr('$json.body.payload.scheduled_event.end_time') },
              { id: 's3', name: 'timeZone', type: 'string', value: expr('$json.body.payload.timezone || "UTC"') },
              { id: 's4', name: 'externalId', type: 'string', value: expr('$json.body.payload.uri') },
            ],
          },
        },
      },
      {
        id: 'a3', name: 'Calendar', type: 'n8n-nodes-base.httpRequest', typeVersion: 4.2, position: [400, 0], parameters: {
          method: 'POST', url: spec.calendarUrl, sendHeaders: true,
          headerParameters: { parameters: [{ name: 'Authorization', value: `Bearer ${spec.token}` }] },
          sendBody: true, specifyBody: 'json',
          jsonBody: expr('JSON.stringify({ summary: "Appointment", start: { dateTime: $json.start, timeZone: $json.timeZone }, end: { dateTime: $json.end, timeZone: $json.timeZone }, extendedProperties: { private: { meridianAppointmentId: $json.externalId } } })'),
          options: {},
        },
      },
    ],
  };
  const file = join(home, 'workflow.json');
  writeFileSync(file, JSON.stringify(workflow));
  const cli = (...a: string[]) => execFileSync(process.execPath, [bin, ...a], { env: { ...process.env, ...env }, stdio: 'pipe', timeout: 180_000 });
  cli('import:workflow', `--input=${file}`);
  // Imports arrive deactivated; activation through the CLI is the documented way without the UI.
  cli('update:workflow', `--id=${workflow.id}`, '--active=true');
  const started = await node([bin, 'start'], env, { ready: /Editor is now accessible|n8n ready on/, url: `http://127.0.0.1:${port}`, timeoutMs: 180_000 });
  const webhookUrl = `${started.url}/webhook/calendly`;
  return { name: 'n8n', version: versionOf(dir), webhookUrl, started, readyMs: await untilAnswering(webhookUrl, started.startedAt, spec.probe, 180_000) };
}
