// Secrets and privacy through the real `bin/meridian serve` process. Known secrets (a webhook signing
// key, an API token, an OAuth client secret and refresh token, an API key, a staff password and session)
// and known patients go through real traffic; then the database file with its WAL, the server's
// output at LOG_LEVEL=debug and /metrics are searched byte for byte: no secret anywhere, no patient in
// logs or metrics. Then a patient is erased (API and CLI) — gone from appointments, deliveries, audit
// snapshots, calendar events and the database file — while `meridian audit verify` still passes; and the
// encryption key is rotated (`meridian secrets rotate`) so the old key can be dropped.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import driver from './sources/calendly.ts';
import { CAL, clinicYaml, type E2EBooking, type E2EDelivery, type SourceFake } from './sources/driver.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { backendFor, meridian, tempDir } from '../helpers.ts';
import { openHub } from '../../src/engine/hub/hub.ts';
import { saveSecrets, storedSecrets } from '../../src/engine/hub/connections.ts';
import { appendAudit, erasedEntry, verifyAudit } from '../../src/store/audit.ts';
import { ROOT, serve, eventually, type Served } from './serve.ts';

const run = promisify(execFile);
const KEY_OLD = randomBytes(32).toString('base64');
const KEY_NEW = randomBytes(32).toString('base64');
const keyId = (b64: string) => createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex').slice(0, 8);
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

const ingrid: E2EBooking = {
  id: randomUUID(), start: '2031-03-04T16:00:00Z', end: '2031-03-04T16:45:00Z', timeZone: 'America/Chicago',
  patient: { name: 'Ingrid Vasquez-Thornbury', email: 'ingrid.vthornbury@patients.example' },
};
const tobias = { name: 'Tobias Okonkwo-Bell', email: 'tobias.okonkwobell@patients.example', phone: '+4915201234567', notes: 'zanthoxylum allergy' };
const keeps = { name: 'Wilhelmina Castellanos', email: 'w.castellanos@patients.example', phone: '+4915209876543' };

/** Where a needle occurs in the bytes (utf-8 and the UTF-16 and base64 forms a careless writer could leave). */
function occurrences(hay: Buffer, needles: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [what, v] of Object.entries(needles)) {
    for (const form of [Buffer.from(v, 'utf8'), Buffer.from(v, 'utf16le'), Buffer.from(Buffer.from(v).toString('base64').replace(/=+$/, ''))]) {
      if (hay.includes(form)) found.push(what);
    }
  }
  return [...new Set(found)];
}

describe('secrets at rest, patient data in logs and metrics, erasure and key rotation', async () => {
  const b = await backendFor('sqlite');
  let g: FakeGoogle;
  let cal: SourceFake;
  let srv: Served;
  let admin: string;
  let cfg: string;
  let common: string[];
  const secrets: Record<string, string> = {};
  let first: E2EDelivery;
  const env = (keys: string) => ({ ...process.env, MERIDIAN_SECRET_KEY: keys, LOG_LEVEL: 'debug' });
  const cli = (args: string[], keys = KEY_OLD, input?: string) => meridian([...args, ...common], { env: env(keys), input });
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${admin}` }) => {
    const res = await fetch(`${srv.url}/api/v1${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
  const dbBytes = () => Buffer.concat(readdirSync(b.dataDir).filter((f) => f.startsWith('meridian.db')).map((f) => readFileSync(join(b.dataDir, f))));
  const start = async (keys: string) => {
    srv = await serve(['serve', ...common], { MERIDIAN_SECRET_KEY: keys, LOG_LEVEL: 'debug', MERIDIAN_SWEEP_MINUTES: '0' });
  };
  const events = (apptId: string) => g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === apptId && e.status !== 'cancelled');

  before(async () => {
    g = await startFakeGoogle();
    cal = await driver.start();
    cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
${clinicYaml(g, { google: ['privacy: full'], secrets: 'stored' })}
  - id: calendly
    platform: calendly
    baseUrl: ${cal.connection.baseUrl}
    config: ${JSON.stringify(cal.connection.config)}
    refs:
      practitioners: { ${JSON.stringify(cal.practitionerRef)}: okafor }
      services: { ${JSON.stringify(cal.serviceRef)}: acupuncture }
`);
    common = ['--data', b.dataDir, '--config', cfg];
    await start(KEY_OLD);
    const k = await cli(['keys', 'create', 'privacy', '--scope', 'admin']);
    admin = k.stdout.split('\n')[0].trim();
    Object.assign(secrets, {
      apiKey: admin, signingKey: cal.connection.secrets.signingKey, personalAccessToken: cal.connection.secrets.personalAccessToken,
      clientSecret: g.credentials.clientSecret, refreshToken: g.credentials.refreshToken, password: PASSWORD, keyOld: KEY_OLD, keyNew: KEY_NEW,
    });
    // Secrets stored through the API (encrypted at rest), not in the file.
    assert.equal((await api('PUT', '/connections/calendly/secrets', cal.connection.secrets)).status, 200);
    assert.equal((await api('PUT', '/connections/google/secrets', g.credentials)).status, 200);
    assert.equal((await cli(['users', 'add', 'owner@lotusclinic.example', '--role', 'owner', '--password-stdin'], KEY_OLD, `${PASSWORD}\n`)).code, 0);
  });
  after(async () => {
    if (srv) await srv.stop();
    await cal?.close();
    await g?.close();
    await b.cleanup();
  });

  test('traffic with known secrets and patients: the database, its WAL, the logs and /metrics hold no secret; logs and metrics no patient', async () => {
    // A signed webhook, a resend, a staff booking with phone and notes, a sign-in and a staff edit by session.
    const hook = `${srv.url}/webhooks/calendly`;
    cal.hold(ingrid, 'booked');
    const d = cal.webhook('created', ingrid, new Date(), hook);
    first = d;
    for (let i = 0; i < 2; i++) assert.equal((await fetch(d.url, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) })).status, 200);
    const made = await api('POST', '/appointments', { practitionerId: 'okafor', start: '2031-03-05T15:00:00Z', end: '2031-03-05T15:45:00Z', patient: { name: tobias.name, email: tobias.email, phone: tobias.phone }, notes: tobias.notes });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const kept = await api('POST', '/appointments', { practitionerId: 'okafor', start: '2031-03-06T15:00:00Z', end: '2031-03-06T15:45:00Z', patient: keeps });
    assert.equal(kept.status, 201);
    const login = await fetch(`${srv.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'owner@lotusclinic.example', password: PASSWORD }) });
    assert.equal(login.status, 200);
    const session = String(login.headers.get('set-cookie')).split(';')[0];
    secrets.session = session.split('=')[1];
    const csrf = (await login.json() as { csrf: string }).csrf;
    const moved = await api('POST', `/appointments/${kept.body.id}/reschedule`, { start: '2031-03-06T16:00:00Z', end: '2031-03-06T16:45:00Z' }, { cookie: session, 'x-csrf-token': csrf });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    // A failed sign-in and a bad signature are logged too.
    await fetch(`${srv.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'owner@lotusclinic.example', password: `${PASSWORD}x` }) });
    await fetch(d.url, { method: 'POST', headers: { ...d.headers, 'calendly-webhook-signature': 't=1,v1=00' }, body: new Uint8Array(d.body) });
    // Everything reached Google (the refresh token was used).
    const ids = ((await api('GET', '/appointments?limit=100')).body.items as { id: string }[]).map((a) => a.id);
    assert.equal(ids.length, 3);
    await eventually(() => ids.every((id) => events(id).length === 1), 20_000, 'three events in Google');
    assert.ok(g.events(CAL).some((e) => String(e.summary).includes(tobias.name)), 'privacy: full writes the name (so erasure has something to remove)');

    const patients = { ingridName: ingrid.patient.name, ingridEmail: ingrid.patient.email!, tobiasName: tobias.name, tobiasEmail: tobias.email, tobiasPhone: tobias.phone, tobiasNotes: tobias.notes, keepsName: keeps.name, keepsEmail: keeps.email, keepsPhone: keeps.phone };
    assert.deepEqual(occurrences(dbBytes(), secrets), [], 'no secret in the database file, WAL or shm');
    assert.ok(occurrences(dbBytes(), patients).length > 0, 'sanity: the search does find what is there (patients in appointment rows)');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /meridian_webhooks_total/);
    assert.deepEqual(occurrences(Buffer.from(metrics), { ...secrets, ...patients }), [], 'nothing secret or personal in /metrics');
    const logs = srv.output();
    assert.match(logs, /configuration applied/, 'the server log is captured');
    assert.deepEqual(occurrences(Buffer.from(logs), { ...secrets, ...patients }), [], 'nothing secret or personal in the logs');
  });

  test('erasure by API and by CLI: appointments, deliveries, audit snapshots, calendar events and the file lose the patient; audit verify passes', async () => {
    const before = (await api('GET', '/appointments?limit=100')).body.items as { id: string; patient: { name: string } }[];
    const idOf = (name: string) => before.find((a) => a.patient.name === name)!.id;
    const ingridId = idOf(ingrid.patient.name);
    const tobiasId = idOf(tobias.name);
    const keepsId = idOf(keeps.name);

    const r = await api('POST', '/patients/erase', { email: ingrid.patient.email!.toUpperCase() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.appointments, [ingridId]);
    assert.ok(r.body.deliveries >= 1 && r.body.auditEntries >= 1, JSON.stringify(r.body));
    assert.equal(r.body.auditLegacy, 0);
    assert.equal((await api('POST', '/patients/erase', { email: 'x@y.example' }, { authorization: `Bearer ${(await cli(['keys', 'create', 'w', '--scope', 'write'])).stdout.split('\n')[0].trim()}` })).status, 403, 'erasure needs admin');
    const viaCli = await cli(['patients', 'erase', '--email', tobias.email]);
    assert.equal(viaCli.code, 0, viaCli.stderr);
    // The CLI's output: its log lines (which name nobody), then the report.
    const report = /^\{\n[\s\S]*?\n\}$/m.exec(viaCli.stdout)![0];
    assert.deepEqual(JSON.parse(report).appointments, [tobiasId]);
    assert.deepEqual(occurrences(Buffer.from(viaCli.stdout.replace(report, '') + viaCli.stderr), { name: tobias.name, email: tobias.email, phone: tobias.phone }), []);

    for (const id of [ingridId, tobiasId]) {
      const a = (await api('GET', `/appointments/${id}`)).body;
      assert.deepEqual(a.patient, { name: 'Erased patient' });
      assert.equal(a.notes, undefined);
      const trail = JSON.stringify((await api('GET', `/appointments/${id}/audit`)).body.items);
      for (const v of [ingrid.patient.name, ingrid.patient.email!, tobias.name, tobias.email, tobias.phone, tobias.notes]) assert.ok(!trail.includes(v), `the audit trail of ${id} still holds ${v}`);
      assert.match(trail, /erased:[0-9a-f]{64}/);
    }
    assert.equal((await api('GET', `/appointments/${keepsId}`)).body.patient.name, keeps.name, 'another patient is untouched');
    // The calendars are re-rendered: the events stay, without the name.
    await eventually(() => [ingridId, tobiasId].every((id) => events(id).length === 1 && !JSON.stringify(events(id)).match(/Ingrid|Vasquez|Tobias|Okonkwo|zanthoxylum/)), 20_000, 'the events re-rendered without the name');
    assert.ok(JSON.stringify(events(keepsId)).includes(keeps.name));
    // The chain still verifies, by API and by the CLI.
    assert.equal((await api('GET', '/audit/verify')).body.ok, true);
    const verify = await cli(['audit', 'verify']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /intact/);
    // Nothing of theirs is left in the file (freed pages are zeroed, the WAL checkpointed), while the other patient is.
    const bytes = dbBytes();
    assert.deepEqual(occurrences(bytes, { ingridName: ingrid.patient.name, ingridEmail: ingrid.patient.email!, tobiasName: tobias.name, tobiasEmail: tobias.email, tobiasPhone: tobias.phone, tobiasNotes: tobias.notes }), []);
    assert.ok(occurrences(bytes, { keeps: keeps.name }).length === 1);
    // A resend of the very delivery that booked the erased patient changes nothing (the change is known by
    // its content hash), so the appointment stays erased. (A new delivery from the platform naming them would
    // bring the data back: they must be erased at the platform too.)
    const again = await fetch(first.url, { method: 'POST', headers: first.headers, body: new Uint8Array(first.body) });
    assert.equal(again.status, 200);
    assert.deepEqual((await api('GET', `/appointments/${ingridId}`)).body.patient, { name: 'Erased patient' });
  });

  test('key rotation: MERIDIAN_SECRET_KEY=new,old and `meridian secrets rotate`, then the old key dropped and everything still decrypts', async () => {
    assert.equal(await srv.stop(), 0);
    const rotated = await cli(['secrets', 'rotate'], `${KEY_NEW},${KEY_OLD}`);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /2 of 2 stored secrets re-encrypted/);
    const raw = dbBytes().toString('latin1');
    assert.ok(raw.includes(`v1:${keyId(KEY_NEW)}:`));
    assert.ok(!raw.includes(`v1:${keyId(KEY_OLD)}:`), 'no ciphertext under the old key is left in the file (not even in freed pages)');
    await start(KEY_NEW);
    // The signing key decrypts (a new booking verifies and applies) and so does the refresh token (Google written).
    const fresh: E2EBooking = { ...ingrid, id: randomUUID(), start: '2031-03-07T16:00:00Z', end: '2031-03-07T16:45:00Z', patient: { name: 'Rotation Check', email: 'rotation.check@patients.example' } };
    cal.hold(fresh, 'booked');
    const d = cal.webhook('created', fresh, new Date(), `${srv.url}/webhooks/calendly`);
    assert.equal((await fetch(d.url, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) })).status, 200);
    const id = await eventually(async () => ((await api('GET', '/appointments?limit=100')).body.items as { id: string; start: string }[]).find((a) => a.start === fresh.start)?.id, 10_000, 'the booking applied');
    g.expireTokens();
    await eventually(() => events(id).length === 1, 20_000, 'written to Google with the re-encrypted refresh token');
    assert.deepEqual(occurrences(dbBytes(), secrets), [], 'still no secret in the file');
  });

  test('key rotation with the embedded key file: a fresh key, everything re-encrypted, the old key removed', async () => {
    const t = tempDir();
    try {
      const hub = await openHub({ dataDir: t.dir, env: { LOG_LEVEL: 'silent' } });
      await hub.store.db.insertInto('connection').values({
        id: 'c1', clinic_id: 'x', platform: 'calendly', name: 'c1', config: '{}', refs: '{}', privacy: null, base_url: null, secrets_enc: null,
        secret_refs: '{}', status: 'active', last_sync_at: null, last_error: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', sync_state: '{}', poll_lease_until: null, poll_lease_by: null,
      }).execute();
      await saveSecrets(hub.store.db, hub, 'c1', { signingKey: 'file-mode-secret' });
      await hub.store.close();
      const keyFile = join(t.dir, 'secret.key');
      const oldKey = readFileSync(keyFile, 'utf8').trim();
      const r = await run(process.execPath, ['bin/meridian', 'secrets', 'rotate', '--data', t.dir], { cwd: ROOT, env: { ...process.env, MERIDIAN_SECRET_KEY: '' } });
      assert.match(r.stdout, /1 of 1 stored secrets re-encrypted.*1 older key\(s\) removed/s);
      const lines = readFileSync(keyFile, 'utf8').split('\n').filter(Boolean);
      assert.equal(lines.length, 1);
      assert.notEqual(lines[0], oldKey);
      const again = await openHub({ dataDir: t.dir, env: { LOG_LEVEL: 'silent' } });
      const row = await again.store.db.selectFrom('connection').select('secrets_enc').where('id', '=', 'c1').executeTakeFirstOrThrow();
      assert.deepEqual(storedSecrets(again, row.secrets_enc), { signingKey: 'file-mode-secret' });
      assert.ok(existsSync(keyFile));
      await again.store.close();
    } finally {
      t.cleanup();
    }
  });
});

test('erasable audit entries: erasure keeps every hash; any other edit, a changed salt or a forged marker breaks the chain', async () => {
  const t = tempDir();
  const hub = await openHub({ dataDir: t.dir, env: { LOG_LEVEL: 'silent' } });
  try {
    const db = hub.store.db;
    const patient = { name: 'Quentin Marlowe-Ibsen', email: 'q.mi@patients.example', phone: '+15555550999' };
    await db.transaction().execute((trx) => appendAudit(trx, 'sqlite', [
      { at: '2026-01-01T00:00:00Z', actor: 'test', action: 'appointment.created', entityType: 'appointment', entityId: 'a1', after: { start: 'x', patient, notes: 'private' }, meta: { lead: 'l1' } },
      { at: '2026-01-01T00:00:01Z', actor: 'test', action: 'connection.updated', entityType: 'connection', entityId: 'c1', meta: { fields: ['name'] } },
      { at: '2026-01-01T00:00:02Z', actor: 'test', action: 'appointment.updated', entityType: 'appointment', entityId: 'a1', before: { patient, items: [{ notes: 'n' }] }, after: { patient: { ...patient, name: 'Q. Marlowe' } } },
    ]));
    assert.equal((await verifyAudit(db)).ok, true);
    const rows = await db.selectFrom('audit').selectAll().orderBy('seq').execute();
    assert.equal(rows[1].pii, '{}', 'an entry without personal data has no salts');
    for (const r of rows) {
      const patch = erasedEntry(r, () => true);
      if (patch) await db.updateTable('audit').set(patch).where('seq', '=', r.seq).execute();
    }
    const erased = await db.selectFrom('audit').selectAll().orderBy('seq').execute();
    assert.deepEqual(erased.map((r) => r.hash), rows.map((r) => r.hash), 'erasure changes no hash');
    assert.ok(!JSON.stringify(erased).match(/Quentin|Marlowe|q\.mi@|555555|private/), JSON.stringify(erased));
    assert.equal(erased[0].pii, '{}', 'the salts of erased values are gone');
    assert.equal((await verifyAudit(db)).ok, true);
    const restore = (seq: number) => db.updateTable('audit').set({ before: erased[seq - 1].before, after: erased[seq - 1].after, pii: erased[seq - 1].pii }).where('seq', '=', seq).execute();
    // Tampering: an edited non-personal field, a forged erased marker, a personal value slipped back in.
    await db.updateTable('audit').set({ after: erased[0].after!.replace('"start":"x"', '"start":"y"') }).where('seq', '=', 1).execute();
    assert.equal((await verifyAudit(db)).brokenAt, 1);
    await restore(1);
    await db.updateTable('audit').set({ after: erased[0].after!.replace(/erased:[0-9a-f]{4}/, 'erased:0000') }).where('seq', '=', 1).execute();
    assert.equal((await verifyAudit(db)).brokenAt, 1);
    await restore(1);
    await db.updateTable('audit').set({ after: erased[2].after!.replace(/"erased:[0-9a-f]{64}"/, '"Someone Else"') }).where('seq', '=', 3).execute();
    assert.equal((await verifyAudit(db)).brokenAt, 3);
    await restore(3);
    assert.equal((await verifyAudit(db)).ok, true);
    // Before erasure, a changed salt is an edit too.
    await db.transaction().execute((trx) => appendAudit(trx, 'sqlite', [{ at: '2026-01-01T00:00:03Z', actor: 'test', action: 'appointment.created', entityType: 'appointment', entityId: 'a2', after: { patient } }]));
    const last = await db.selectFrom('audit').selectAll().where('seq', '=', 4).executeTakeFirstOrThrow();
    const salts = JSON.parse(last.pii!) as Record<string, string>;
    assert.ok(salts['after.patient.email']);
    await db.updateTable('audit').set({ pii: JSON.stringify({ ...salts, 'after.patient.email': '00'.repeat(16) }) }).where('seq', '=', 4).execute();
    assert.equal((await verifyAudit(db)).brokenAt, 4);
  } finally {
    await hub.store.close();
    t.cleanup();
  }
});
