// Hostile input. Every registered booking source, seeded with the valid signed deliveries its e2e driver
// makes (test/e2e/sources/*), mutated — flipped and truncated bytes, invalid UTF-8, duplicate keys,
// swapped types, huge strings, deep nesting, wrong content types — first in process against the
// connector's verify / parseWebhook / parseRecord (fast-check: nothing but UnreadablePayload may escape,
// and no patient data in its message), then against the real `bin/meridian serve` process: never a 5xx,
// never a crash, security headers on every answer, an unverified delivery (tampered, replayed signature,
// stale, no token) never applied, every verified-but-unreadable one kept (202, listed for staff).
// MERIDIAN_LONG=1 runs many more cases.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { allDescriptors, getSource } from '../../src/connectors/registry.ts';
import { ConnectionMisconfigured, UnreadablePayload, type SourceConnector, type WebhookRequest } from '../../src/connectors/types.ts';
import { backendFor } from '../helpers.ts';
import { ROOT, serve, eventually, type Served } from './serve.ts';
import type { E2EBooking, E2EDelivery, SourceDriver, SourceFake } from './sources/driver.ts';

const LONG = process.env.MERIDIAN_LONG === '1';
const RUNS = LONG ? 1000 : 100;
const HOSTILE_PER_SOURCE = LONG ? 400 : 40;
const run = promisify(execFile);
const DIR = new URL('./sources/', import.meta.url);
const drivers: SourceDriver[] = [];
for (const f of readdirSync(DIR).filter((n) => n.endsWith('.ts') && n !== 'driver.ts').sort()) {
  drivers.push((await import(new URL(f, DIR).href) as { default: SourceDriver }).default);
}
const envName = (platform: string, key: string) => `FUZZ_${platform.replace(/\W/g, '_').toUpperCase()}_${key.replace(/\W/g, '_').toUpperCase()}`;

// ------------------------------------------------------------------ mutations

/** A small seeded PRNG, so fast-check's integer shrinks to a reproducible mutation. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

function deep(n: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < n; i++) v = i % 2 ? { data: v } : [v];
  return v;
}
const ODD_VALUES: unknown[] = [
  null, true, 0, -1, 1e308, -0, '', ' ', 'x'.repeat(200_000), [], {}, deep(3000), '2026-13-45T99:99:99Z', '0000-00-00', 'NaN',
  '\u0000', '\ud800', '🦄'.repeat(50), '<script>alert(1)</script>', '../../etc/passwd', { $ne: 1 }, [null, [null]], '1'.repeat(400),
];

function depthOf(v: unknown): number {
  let d = 0;
  for (let level: unknown[] = [v]; level.length; d++) level = level.flatMap((x) => (x && typeof x === 'object' ? Object.values(x) : []));
  return d;
}
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (v && typeof v === 'object' && out.length < 2000) for (const [k, x] of Object.entries(v)) paths(x, [...at, Array.isArray(v) ? Number(k) : k], out);
  return out;
}
function setAt(root: unknown, p: (string | number)[], f: (parent: Record<string | number, unknown>, key: string | number) => void): unknown {
  if (p.length === 0) return root;
  let o = root as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  f(o, p[p.length - 1]);
  return root;
}

/** One mutation of a delivery body (JSON-aware when it is JSON, form-aware when it is a form). */
function mutate(body: Buffer, r: () => number): { body: Buffer; what: string } {
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  const ops = ['flip', 'truncate', 'utf8', 'nul', 'double', 'empty'];
  if (json !== undefined) ops.push('replace', 'replace', 'replace', 'delete', 'delete', 'dupkey', 'wrap', 'root');
  else if (/^[\w%.-]+=/.test(text)) ops.push('form-dup', 'form-drop', 'form-odd');
  const op = pick(r, ops);
  const b = Buffer.from(body);
  switch (op) {
    case 'flip': if (b.length) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8); return { body: b, what: op };
    case 'truncate': return { body: b.subarray(0, Math.floor(r() * b.length)), what: op };
    case 'utf8': { const i = Math.floor(r() * b.length); return { body: Buffer.concat([b.subarray(0, i), Buffer.from(pick(r, [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]])), b.subarray(i)]), what: op }; }
    case 'nul': { const i = Math.floor(r() * b.length); return { body: Buffer.concat([b.subarray(0, i), Buffer.from([0]), b.subarray(i)]), what: op }; }
    case 'double': return { body: Buffer.concat([b, b]), what: op };
    case 'empty': return { body: Buffer.alloc(0), what: op };
    case 'replace': case 'delete': {
      const all = paths(json).filter((p) => p.length > 0);
      if (!all.length) return { body: Buffer.from(JSON.stringify(pick(r, ODD_VALUES))), what: 'root' };
      const p = pick(r, all);
      const next = setAt(json, p, (o, k) => (op === 'delete' ? (Array.isArray(o) ? o.splice(Number(k), 1) : delete o[k]) : (o[k] = pick(r, ODD_VALUES))));
      return { body: Buffer.from(JSON.stringify(next)), what: `${op} ${p.join('.')}` };
    }
    case 'dupkey': {
      // A second copy of a key with another value: JSON.parse keeps the last, another parser the first.
      const objects = paths(json).filter((p) => { const v = p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], json); return v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length; });
      if (!objects.length) return { body: Buffer.from(`{"a":1,"a":2,${text.slice(1)}`), what: op };
      const p = pick(r, objects);
      const o = p.reduce<unknown>((x, k) => (x as Record<string, unknown>)[k], json) as Record<string, unknown>;
      const key = pick(r, Object.keys(o));
      const inner = JSON.stringify(o);
      const dup = `{${JSON.stringify(key)}:${JSON.stringify(pick(r, ODD_VALUES.slice(0, 12)))},${inner.slice(1)}`;
      return { body: Buffer.from(text.includes(inner) ? text.replace(inner, dup) : dup), what: `${op} ${key}` };
    }
    case 'wrap': return { body: Buffer.from(JSON.stringify([json, json])), what: op };
    case 'root': return { body: Buffer.from(JSON.stringify(pick(r, ODD_VALUES))), what: op };
    case 'form-dup': { const parts = text.split('&'); return { body: Buffer.from([...parts, pick(r, parts).replace(/=.*/, '=999999999')].join('&')), what: op }; }
    case 'form-drop': { const parts = text.split('&'); parts.splice(Math.floor(r() * parts.length), 1); return { body: Buffer.from(parts.join('&')), what: op }; }
    default: { const parts = text.split('&'); const i = Math.floor(r() * parts.length); parts[i] = `${parts[i].split('=')[0]}=${encodeURIComponent(String(pick(r, ODD_VALUES.slice(0, 12))))}%ZZ`; return { body: Buffer.from(parts.join('&')), what: op }; }
  }
}

// ------------------------------------------------------------------ re-signing a mutated body

type Signer = (body: Buffer, o?: { stale?: boolean }) => Record<string, string>;

/**
 * How a driver's delivery is signed, found by reproducing its own signature header: an HMAC-SHA256
 * of the body (optionally prefixed by a configured URL, or by `t.` from a `t=…,v1=…` header) with one
 * of the connection's secrets, hex or base64. Undefined for platforms that sign nothing (URL token).
 */
function discoverSigner(d: E2EDelivery, secrets: Record<string, string>, config: Record<string, unknown>): Signer | undefined {
  const prefixes = ['', ...Object.values(config).filter((v): v is string => typeof v === 'string')];
  for (const [name, value] of Object.entries(d.headers)) {
    if (name === 'content-type') continue;
    const kv = /^t=(\d+),v1=([0-9a-f]+)$/.exec(value);
    for (const secret of Object.values(secrets)) {
      for (const enc of ['hex', 'base64'] as const) {
        if (kv) {
          if (createHmac('sha256', secret).update(`${kv[1]}.`).update(d.body).digest('hex') !== kv[2]) continue;
          return (body, o) => {
            const t = Math.floor(Date.now() / 1000) - (o?.stale ? 86_400 : 0);
            return { ...d.headers, [name]: `t=${t},v1=${createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex')}` };
          };
        }
        for (const prefix of prefixes) {
          if (createHmac('sha256', secret).update(prefix).update(d.body).digest(enc) !== value) continue;
          return (body) => ({ ...d.headers, [name]: createHmac('sha256', secret).update(prefix).update(body).digest(enc) });
        }
      }
    }
  }
  return undefined;
}

// ------------------------------------------------------------------ checks on what a parser returns

const KINDS = new Set(['upsert', 'cancel', 'no_show']);
function assertChanges(out: unknown, where: string): void {
  assert.ok(Array.isArray(out), `${where}: parse returned ${typeof out}, not an array`);
  for (const c of out as Record<string, unknown>[]) {
    assert.equal(typeof c.externalId, 'string', `${where}: a change without an externalId`);
    assert.ok(KINDS.has(c.kind as string), `${where}: unknown kind ${String(c.kind)}`);
  }
}
/** Only UnreadablePayload may escape a parser; its message never carries the patient. */
function parsesOrRefuses(f: () => unknown, where: string, patient: string[]): void {
  let out: unknown;
  try {
    out = f();
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw new Error(`${where}: ${(err as Error).name} escaped: ${(err as Error).message}`, { cause: err });
    for (const p of patient) assert.ok(!err.message.includes(p), `${where}: the UnreadablePayload message names the patient: ${err.message}`);
    return;
  }
  assertChanges(out, where);
}

const booking = (name: string, dayOffset: number): E2EBooking => {
  const start = new Date(Date.UTC(2031, 4, 5 + dayOffset, 15, 0, 0));
  return {
    id: randomUUID(), start: start.toISOString().replace('.000Z', 'Z'), end: new Date(start.getTime() + 45 * 60_000).toISOString().replace('.000Z', 'Z'),
    timeZone: 'America/Chicago', patient: { name, email: `${name.toLowerCase().replace(/\W+/g, '.')}@patients.example`, phone: '+15555550123' },
  };
};

describe('hostile input', async () => {
  const b = await backendFor('sqlite');
  let srv: Served;
  let admin: string;
  const fakes = new Map<string, SourceFake>();
  const valid = new Map<string, { booking: E2EBooking; delivery: E2EDelivery }>();
  const answers: { what: string; status: number; headers: Headers }[] = [];
  const unreadable = new Set<string>();
  const unverifiedStarts = new Set<string>();
  const hook = (platform: string) => `${srv.url}/webhooks/${platform}`;

  const post = async (what: string, url: string, headers: Record<string, string>, body: Buffer | string) => {
    const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
    const json = await res.json().catch(() => undefined) as Record<string, unknown> | undefined;
    answers.push({ what, status: res.status, headers: res.headers });
    if (res.status === 202 && json?.code === 'unreadable_payload') unreadable.add(String(json.delivery));
    return { status: res.status, json };
  };
  const api = async (path: string) => {
    const res = await fetch(`${srv.url}/api/v1${path}`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 200, path);
    return res.json() as Promise<Record<string, unknown>>;
  };

  before(async () => {
    for (const d of drivers) fakes.set(d.platform, await d.start());
    const env: NodeJS.ProcessEnv = { MERIDIAN_SWEEP_MINUTES: '0' };
    for (const d of drivers) for (const [k, v] of Object.entries(fakes.get(d.platform)!.connection.secrets)) env[envName(d.platform, k)] = v;
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
clinic: { id: lotus, name: Lotus Integrative Health, timeZone: America/Chicago }
locations: [{ id: lakeview, name: Lakeview, timeZone: America/Chicago }]
services: [{ id: acupuncture, name: Acupuncture, durationMinutes: 45 }]
practitioners:
  - { id: okafor, name: Dr. Ada Okafor, email: dr.okafor@lotusclinic.example, locations: [lakeview] }
connections:
${drivers.map((d) => {
    const f = fakes.get(d.platform)!;
    return [
      `  - id: ${d.platform}`, `    platform: ${d.platform}`,
      ...(f.connection.baseUrl ? [`    baseUrl: ${JSON.stringify(f.connection.baseUrl)}`] : []),
      ...(f.connection.config ? [`    config: ${JSON.stringify(f.connection.config)}`] : []),
      `    secrets: { ${Object.keys(f.connection.secrets).map((k) => `${k}: { env: ${envName(d.platform, k)} }`).join(', ')} }`,
      `    refs:`, `      practitioners: { ${JSON.stringify(f.practitionerRef)}: okafor }`,
      ...(f.serviceRef ? [`      services: { ${JSON.stringify(f.serviceRef)}: acupuncture }`] : []),
    ].join('\n');
  }).join('\n')}
`);
    const common = ['--data', b.dataDir, '--config', cfg];
    srv = await serve(['serve', ...common], env);
    admin = (await run(process.execPath, ['bin/meridian', 'keys', 'create', 'fuzz', '--scope', 'admin', ...common], { cwd: ROOT, env: { ...process.env, ...env } })).stdout.split('\n')[0].trim();
    // One valid booking per platform, held by its fake (so ids-only platforms can read it back).
    let day = 0;
    for (const d of drivers) {
      const bk = booking(`Fuzz Valid ${d.platform}`, day++);
      const f = fakes.get(d.platform)!;
      f.hold(bk, 'booked');
      valid.set(d.platform, { booking: bk, delivery: f.webhook('created', bk, new Date(), hook(d.platform)) });
    }
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
    for (const f of fakes.values()) await f.close();
    await b.cleanup();
  });

  // One test per registered booking source: in process, against its verify / parseWebhook / parseRecord.
  for (const c of allDescriptors().filter((x) => x.role === 'source').map((x) => getSource(x.id)!)) {
    test(`${c.descriptor.id}: mutated deliveries and records are verified without throwing and parsed or refused with UnreadablePayload`, () => {
      const d = drivers.find((x) => x.platform === c.descriptor.id);
      if (!c.descriptor.capabilities.webhooks) {
        // Polled sources: a post can never be verified (the server answers 404 before this), nor read.
        assert.throws(() => c.verify({ rawBody: Buffer.from('{}'), headers: {}, url: 'http://x/', now: new Date() }, {}), ConnectionMisconfigured);
        assert.throws(() => c.parseWebhook({ rawBody: Buffer.from('{}'), headers: {}, url: 'http://x/', now: new Date() }), UnreadablePayload);
      } else {
        assert.ok(d, `${c.descriptor.id} takes webhooks but has no e2e driver in test/e2e/sources/ to seed the fuzzer`);
      }
      if (d) fuzzConnector(c, d, fakes.get(d.platform)!);
      else if (c.parseRecord) fc.assert(fc.property(fc.jsonValue(), (j) => parsesOrRefuses(() => c.parseRecord!(j), `${c.descriptor.id} parseRecord`, [])), { numRuns: RUNS });
    });
  }

  function fuzzConnector(c: SourceConnector, d: SourceDriver, f: SourceFake): void {
    const bk = booking(`Fuzz Seed ${d.platform}`, 40);
    const url = `http://127.0.0.1:1/webhooks/${d.platform}`;
    const seeds = (['created', 'rescheduled', 'canceled'] as const).map((e) => f.webhook(e, bk, new Date(), url));
    const signer = discoverSigner(seeds[0], f.connection.secrets, f.connection.config ?? {});
    assert.equal(Boolean(signer), c.descriptor.capabilities.signedWebhooks, `${d.platform}: could not reproduce its signature (extend discoverSigner)`);
    const patient = [bk.patient.name, bk.patient.email];
    const req = (s: E2EDelivery, body: Buffer, headers = s.headers): WebhookRequest => ({ rawBody: body, headers, url: s.url, now: new Date() });
    for (const s of seeds) assert.equal(c.verify(req(s, s.body), f.connection.secrets, f.connection.config).ok, true, `${d.platform}: its own delivery verifies`);
    fc.assert(fc.property(fc.nat(seeds.length - 1), fc.integer(), (i, seed) => {
      const s = seeds[i];
      const m = mutate(s.body, prng(seed));
      const where = `${d.platform} ${m.what}`;
      const v = c.verify(req(s, m.body), f.connection.secrets, f.connection.config);
      // A changed body under the old signature never verifies (unsigned platforms verify the URL only).
      if (signer && !m.body.equals(s.body)) assert.equal(v.ok, false, `${where}: a tampered body verified`);
      parsesOrRefuses(() => c.parseWebhook(req(s, m.body, signer ? signer(m.body) : s.headers)), `${where} parseWebhook`, patient);
      if (c.parseRecord) {
        let j: unknown;
        try { j = JSON.parse(m.body.toString('utf8')); } catch { return; }
        // Records come from the platform's own API over TLS, not from a webhook's sender; the connectors
        // unwrap lists and `data` wrappers recursively, which overflows the stack near 3000 levels.
        if (depthOf(j) > 1000) return;
        for (const p of paths(j).slice(0, 30)) parsesOrRefuses(() => c.parseRecord!(p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], j)), `${where} parseRecord ${p.join('.')}`, patient);
      }
    }), { numRuns: RUNS });
    // Verification never throws on junk headers either.
    fc.assert(fc.property(fc.dictionary(fc.constantFrom(...Object.keys(seeds[0].headers), 'x-signature', 'authorization'), fc.string()), fc.string(), (headers, q) => {
      const v = c.verify({ rawBody: seeds[0].body, headers, url: `${url}?${q}`, now: new Date() }, f.connection.secrets, f.connection.config);
      assert.equal(typeof v.ok, 'boolean');
    }), { numRuns: RUNS });
  }

  test('the valid deliveries are applied, and a resend is a duplicate', async () => {
    for (const d of drivers) {
      const { delivery } = valid.get(d.platform)!;
      assert.equal((await post(`${d.platform} valid`, delivery.url, delivery.headers, delivery.body)).status, 200, d.platform);
      // A platform with delivery ids is answered `duplicate`; one without (ids-only) is read back again and
      // found unchanged: either way one appointment.
      assert.equal((await post(`${d.platform} resend`, delivery.url, delivery.headers, delivery.body)).status, 200);
    }
    await eventually(async () => {
      const items = (await api('/appointments?limit=5000')).items as { start: string }[];
      // By start time: each booking has a day of its own (Appointlet's meetings carry no patient at all).
      const missing = drivers.filter((d) => items.filter((a) => a.start === valid.get(d.platform)!.booking.start).length !== 1);
      if (missing.length) throw new Error(`not exactly once: ${missing.map((d) => d.platform).join(', ')}`);
      return true;
    }, 30_000, 'every valid booking applied exactly once');
  });

  test('unverified deliveries — tampered, replayed signature, stale, stripped, no token — are refused with 401 and never applied', async () => {
    let day = 60;
    for (const d of drivers) {
      const f = fakes.get(d.platform)!;
      const bk = booking(`Fuzz Unverified ${d.platform}`, day++);
      unverifiedStarts.add(bk.start);
      const real = f.webhook('created', bk, new Date(), hook(d.platform));
      const signer = discoverSigner(real, f.connection.secrets, f.connection.config ?? {});
      const cases: [string, string, Record<string, string>, Buffer][] = [];
      if (signer) {
        const sigHeader = Object.keys(real.headers).find((h) => signer(Buffer.from('x'))[h] !== real.headers[h])!;
        const other = valid.get(d.platform)!.delivery;
        cases.push(['signature of another delivery', real.url, { ...real.headers, [sigHeader]: other.headers[sigHeader] }, real.body]);
        cases.push(['no signature', real.url, Object.fromEntries(Object.entries(real.headers).filter(([k]) => k !== sigHeader)), real.body]);
        cases.push(['signature altered', real.url, { ...real.headers, [sigHeader]: real.headers[sigHeader].replace(/.$/, (ch) => (ch === '0' ? '1' : '0')) }, real.body]);
        for (let i = 0; i < 5; i++) {
          const m = mutate(real.body, prng(1000 + i));
          if (!m.body.equals(real.body)) cases.push([`body ${m.what}`, real.url, real.headers, m.body]);
        }
        const stale = signer(real.body, { stale: true });
        if (stale[sigHeader] !== signer(real.body)[sigHeader]) cases.push(['stale timestamp', real.url, stale, real.body]);
      } else {
        const u = new URL(real.url);
        const token = u.searchParams.get('token')!;
        const without = new URL(u);
        without.searchParams.delete('token');
        const wrong = new URL(u);
        wrong.searchParams.set('token', `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`);
        const moved = new URL(without);
        moved.searchParams.set('t', token);
        cases.push(['no token', without.toString(), real.headers, real.body], ['wrong token', wrong.toString(), real.headers, real.body], ['token elsewhere', moved.toString(), real.headers, real.body]);
        cases.push(['token in a header', without.toString(), { ...real.headers, authorization: `Bearer ${token}`, 'x-token': token }, real.body]);
      }
      for (const [what, url, headers, body] of cases) {
        assert.equal((await post(`${d.platform} ${what}`, url, headers, body)).status, 401, `${d.platform}: ${what}`);
      }
    }
  });

  test('verified but hostile deliveries never get a 5xx; the unreadable ones are kept for staff', async () => {
    let day = 100;
    for (const d of drivers) {
      const f = fakes.get(d.platform)!;
      // Not held by the fake: an ids-only platform's read-back finds nothing, so nothing is applied.
      const bk = booking(`Fuzz Hostile ${d.platform}`, day++);
      const seeds = (['created', 'rescheduled', 'canceled'] as const).map((e) => f.webhook(e, bk, new Date(), hook(d.platform)));
      const signer = discoverSigner(seeds[0], f.connection.secrets, f.connection.config ?? {});
      const r = prng(42 + day);
      for (let i = 0; i < HOSTILE_PER_SOURCE; i++) {
        const s = pick(r, seeds);
        const m = mutate(s.body, r);
        const headers = signer ? signer(m.body) : s.headers;
        const res = await post(`${d.platform} hostile ${m.what}`, s.url, headers, m.body);
        // Re-signed bodies verify; an unsigned platform may also check the body (SimplyBook's company login).
        const ok = signer ? [200, 202] : [200, 202, 401];
        assert.ok(ok.includes(res.status), `${d.platform} ${m.what}: ${res.status} ${JSON.stringify(res.json)}`);
      }
      // Wrong content types on verified bytes; a body that is JSON nested 100 000 deep; invalid UTF-8 throughout.
      const s = seeds[0];
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=iso-8859-1', 'application/xml', '']) {
        const headers = { ...(signer ? signer(s.body) : s.headers), 'content-type': ct };
        if (!ct) delete (headers as Record<string, string>)['content-type'];
        assert.ok([200, 202].includes((await post(`${d.platform} content-type ${ct}`, s.url, headers, s.body)).status), `${d.platform} content-type ${ct}`);
      }
      for (const body of [Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), Buffer.from(`${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`)]) {
        // Stored either way; a platform may read a body without its event name as an event it ignores (200).
        const res = await post(`${d.platform} nested`, s.url, signer ? signer(body) : s.headers, body);
        assert.ok([200, 202].includes(res.status), `${d.platform} nested: ${res.status}`);
      }
      const binary = Buffer.from([0xff, 0xfe, 0xfd, 0x00, 0xc0, 0x80]);
      assert.equal((await post(`${d.platform} invalid UTF-8`, s.url, signer ? signer(binary) : s.headers, binary)).status, 202, `${d.platform}: a verified body nobody can read is stored (202)`);
    }
    const listed = new Set<string>();
    for (const d of drivers) for (const x of (await api(`/deliveries?status=unreadable&connection=${d.platform}&limit=1000`)).items as { id: string }[]) listed.add(x.id);
    assert.ok(unreadable.size > 0);
    for (const id of unreadable) assert.ok(listed.has(id), `unreadable delivery ${id} is listed for staff`);
  });

  test('size limits, unknown endpoints, polled sources and malformed requests get 4xx', async () => {
    const { delivery } = valid.get(drivers[0].platform)!;
    const huge = Buffer.alloc(1024 * 1024 + 10, 0x61);
    assert.equal((await post('huge webhook', delivery.url, delivery.headers, huge)).status, 413);
    assert.equal((await post('unknown connection', `${srv.url}/webhooks/nope`, {}, '{}')).status, 404);
    assert.ok((await post('odd connection id', `${srv.url}/webhooks/${'%00'.repeat(20)}${'x'.repeat(3000)}`, {}, '{}')).status < 500);
    for (const [what, path, init] of [
      ['malformed JSON', '/api/v1/appointments', { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"a":' }],
      ['huge JSON', '/api/v1/appointments', { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ notes: 'x'.repeat(300_000) }) }],
      ['invalid UTF-8 JSON', '/api/v1/appointments', { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: new Uint8Array([0x7b, 0xff, 0x7d]) }],
      ['deep JSON', '/api/v1/appointments', { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: `${'['.repeat(60_000)}${']'.repeat(60_000)}` }],
      ['unknown content type', '/api/v1/appointments', { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/x-evil' }, body: 'x' }],
      ['malformed cookie', '/api/v1/appointments', { headers: { cookie: 'meridian_session=%E0%A4%A' } }],
      ['junk bearer', '/api/v1/appointments', { headers: { authorization: `Bearer mer_${'\u00ff'.repeat(10)}` } }],
      ['odd query', '/api/v1/appointments?from=yesterday&limit=-1&status=%00', { headers: { authorization: `Bearer ${admin}` } }],
      ['array query', '/api/v1/audit?entity=a&entity=b&limit=5&limit=6', { headers: { authorization: `Bearer ${admin}` } }],
      ['odd feed', `/feeds/${'a'.repeat(64)}.ics`, {}],
      ['feed traversal', '/feeds/..%2F..%2Fmeridian.db', {}],
      ['login junk', '/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":[],"password":{}}' }],
      ['login form', '/auth/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a&email=b&password=' }],
      ['path junk', `/api/v1/appointments/${encodeURIComponent('../'.repeat(50))}`, { headers: { authorization: `Bearer ${admin}` } }],
    ] as [string, string, RequestInit][]) {
      const res = await fetch(`${srv.url}${path}`, init);
      answers.push({ what, status: res.status, headers: res.headers });
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${await res.text()}`);
    }
  });

  test('in the end: no 5xx, the server alive, security headers everywhere, nothing unverified applied, the audit chain intact', async () => {
    assert.equal(srv.proc.exitCode, null, 'the server is still running');
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    const fiveHundreds = answers.filter((a) => a.status >= 500);
    assert.deepEqual(fiveHundreds.map((a) => `${a.what}: ${a.status}`), []);
    for (const a of answers) {
      assert.equal(a.headers.get('x-content-type-options'), 'nosniff', a.what);
      assert.equal(a.headers.get('x-frame-options'), 'DENY', a.what);
      assert.ok(a.headers.get('content-security-policy'), `${a.what}: a content security policy`);
      assert.ok(a.headers.get('cache-control'), a.what);
    }
    const items = (await api('/appointments?limit=5000')).items as { start: string; patient: { name: string } }[];
    assert.ok(unverifiedStarts.size >= drivers.length);
    assert.deepEqual(items.filter((a) => unverifiedStarts.has(a.start) || /Unverified/.test(a.patient.name)).map((a) => a.start), [], 'no unverified delivery was applied');
    assert.equal(((await api('/audit/verify')) as { ok: boolean }).ok, true);
    assert.doesNotMatch(srv.output(), /request failed|TypeError|RangeError/);
  });
});
