// End to end through the real `bin/meridian serve` process, once per booking platform (every driver in
// test/e2e/sources/): the platform's webhooks in, its fake API behind fetch/list/write-back, the Google
// Calendar fake out. Each platform runs the full cycle — book, a duplicate, a reschedule, a late
// delivery of the first booking, a staff reschedule in Meridian (written back to the platform, or the
// appointment marked as diverging), a cancellation — and must end with exactly one Google event in
// the right state, nothing the platform's rules forbid, and a complete audit trail.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { getSource } from '../../src/connectors/registry.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { backendFor } from '../helpers.ts';
import { ROOT, apiClient, createKey, serve, eventually, type Served } from './serve.ts';
import { CAL, clinicYaml, googleEnv, platformConnection, type E2EBooking, type E2EDelivery, type SourceDriver, type SourceFake } from './sources/driver.ts';

const run = promisify(execFile);
const DIR = new URL('./sources/', import.meta.url);

const drivers: SourceDriver[] = [];
for (const f of readdirSync(DIR).filter((n) => n.endsWith('.ts') && n !== 'driver.ts').sort()) {
  drivers.push((await import(new URL(f, DIR).href) as { default: SourceDriver }).default);
}

describe('every booking platform end to end through the real server', async () => {
  const b = await backendFor('sqlite');
  let g: FakeGoogle;
  let srv: Served;
  let api: ReturnType<typeof apiClient>;
  const fakes = new Map<string, SourceFake>();

  before(async () => {
    g = await startFakeGoogle();
    for (const d of drivers) fakes.set(d.platform, await d.start());
    const env: NodeJS.ProcessEnv = googleEnv(g);
    const connections = drivers.map((d) => platformConnection(d.platform, fakes.get(d.platform)!));
    for (const c of connections) Object.assign(env, c.env);
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
${clinicYaml(g)}
${connections.map((c) => c.yaml).join('\n')}
`);
    const common = ['--data', b.dataDir, '--config', cfg];
    srv = await serve(['serve', ...common], env);
    api = apiClient(srv.url, await createKey(common, env));
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
    for (const f of fakes.values()) await f.close();
    await g?.close();
    await b.cleanup();
  });

  const post = async (d: E2EDelivery) => {
    const res = await fetch(d.url, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
  const live = (apptId: string) => g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === apptId && e.status !== 'cancelled');
  const ours = (apptId: string) => g.events(CAL).filter((e) => e.extendedProperties?.private?.meridianAppointmentId === apptId);
  const fromConnection = async (platform: string) =>
    ((await api('GET', '/appointments?from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z')).body.items as Record<string, any>[]).filter((a) => a.origin.connectionId === platform);

  drivers.forEach((d, i) => {
    test(`${d.platform}: book, duplicate, reschedule, late delivery, staff move, cancel → one event, right state, full audit`, async () => {
      assert.ok(getSource(d.platform), `${d.platform} is registered`);
      const f = fakes.get(d.platform)!;
      const hook = `${srv.url}/webhooks/${d.platform}`;
      // Each platform books its own day (10:00 Chicago), so platforms never collide with each other.
      const day = (n: number, hm: string) => new Date(Date.parse(`2027-02-01T${hm}:00-06:00`) + (i * 4 + n) * 86_400_000).toISOString().replace('.000Z', 'Z');
      const booking: E2EBooking = { id: randomUUID(), start: day(0, '10:00'), end: day(0, '10:45'), timeZone: 'America/Chicago', patient: { name: 'Maya Lindqvist', email: `maya.${i}@example.net`, phone: '+15555550123' } };
      const t0 = new Date(Date.now() - 5_000);

      // 1. A new booking lands once in Google.
      f.hold(booking, 'booked');
      const first = f.webhook('created', booking, t0, hook);
      const r1 = await post(first);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      const [appt] = await eventually(async () => { const a = await fromConnection(d.platform); return a.length === 1 && a; }, 15_000, 'the appointment');
      await eventually(() => live(appt.id).length === 1 && live(appt.id)[0].start?.dateTime === booking.start, 15_000, 'the Google event');
      assert.equal(appt.practitionerId, 'okafor');
      assert.ok(!JSON.stringify(ours(appt.id)).includes('Lindqvist'), 'no patient name in the calendar');

      // 2. The same delivery again changes nothing.
      const r2 = await post(first);
      assert.ok(r2.status === 200, JSON.stringify(r2.body));

      // 3. A reschedule moves the same event.
      const moved = { ...booking, start: day(1, '14:00'), end: day(1, '14:45') };
      f.hold(moved, 'booked');
      assert.equal((await post(f.webhook('rescheduled', moved, new Date(), hook))).status, 200);
      await eventually(() => live(appt.id)[0]?.start?.dateTime === moved.start, 15_000, 'the moved Google event');

      // 4. The first booking's webhook, delivered late, does not undo the move.
      assert.equal((await post(f.webhook('created', booking, t0, hook))).status, 200);
      await new Promise((r) => setTimeout(r, 1000));
      await eventually(async () => (await fromConnection(d.platform)).length === 1, 5_000, 'still one appointment');
      assert.equal((await api('GET', `/appointments/${appt.id}`)).body.start, moved.start, 'the late delivery did not move it back');

      // 5. Office staff move it in Meridian: the platform is told, or the appointment says it diverges.
      const staff = { start: day(2, '09:00'), end: day(2, '09:45') };
      const rs = await api('POST', `/appointments/${appt.id}/reschedule`, staff);
      assert.equal(rs.status, 200, JSON.stringify(rs.body));
      await eventually(() => live(appt.id)[0]?.start?.dateTime === staff.start, 15_000, 'the staff move in Google');
      if (d.writesReschedule) {
        await eventually(() => f.held(booking.id)?.start === staff.start, 15_000, `the move written back to ${d.platform}`);
        const after = (await api('GET', `/appointments/${appt.id}`)).body;
        assert.equal(after.diverged, undefined, 'written back: not diverging');
      } else {
        const after = (await api('GET', `/appointments/${appt.id}`)).body;
        assert.match(after.diverged ?? '', /cannot move a booking/);
        const listed = (await api('GET', '/appointments?diverged=true')).body.items as { id: string }[];
        assert.ok(listed.some((a) => a.id === appt.id), 'staff find it among the diverging');
      }

      // 6. The patient cancels on the platform: the event goes.
      const atPlatform = d.writesReschedule ? { ...booking, ...staff } : moved;
      f.hold(atPlatform, 'cancelled');
      assert.equal((await post(f.webhook('canceled', atPlatform, new Date(), hook))).status, 200);
      await eventually(async () => (await api('GET', `/appointments/${appt.id}`)).body.status === 'cancelled', 15_000, 'cancelled in Meridian');
      await eventually(() => live(appt.id).length === 0, 15_000, 'the Google event removed');
      assert.equal(new Set(ours(appt.id).map((e) => e.id)).size, 1, 'one Google event id over the whole cycle');
      assert.equal((await fromConnection(d.platform)).length, 1, 'one appointment over the whole cycle');

      // The audit trail tells the whole story, and nothing broke the platforms' rules.
      const actions = ((await api('GET', `/appointments/${appt.id}/audit`)).body.items as { action: string }[]).map((x) => x.action);
      for (const a of ['appointment.created', 'appointment.updated', 'appointment.rescheduled', 'appointment.cancelled', 'target.created', 'target.removed']) {
        assert.ok(actions.includes(a), `audit has ${a}: ${actions.join(', ')}`);
      }
      assert.ok(actions.includes(d.writesReschedule ? 'source.written_back' : 'source.diverged'), actions.join(', '));
      assert.deepEqual(f.violations, [], `${d.platform} fake: requests that break its rules`);
      assert.deepEqual(g.violations, []);
    });

    test(`${d.platform}: meridian parse-webhook verifies and parses its webhook, and refuses a wrong secret`, async () => {
      const f = fakes.get(d.platform)!;
      const src = getSource(d.platform)!;
      const booking: E2EBooking = { id: randomUUID(), start: '2027-06-01T15:00:00Z', end: '2027-06-01T15:45:00Z', timeZone: 'America/Chicago', patient: { name: 'Jon Park', email: 'jon.park@example.net' } };
      f.hold(booking, 'booked');
      const delivery = f.webhook('created', booking, new Date(), `https://meridian.example.org/webhooks/${d.platform}`);
      const body = join(b.dataDir, `${d.platform}-webhook.bin`);
      writeFileSync(body, delivery.body);
      const secretKey = src.descriptor.webhookSecret!;
      assert.ok(f.connection.secrets[secretKey], `the driver gives the webhook secret ${secretKey}`);
      // Square signs the notification URL registered with it, which the connection's config names.
      const url = String(f.connection.config?.notificationUrl ?? delivery.url);
      const args = (secret: string) => ['bin/meridian', 'parse-webhook', '--platform', d.platform, '--body', body, '--url', url, '--secret', secret,
        ...Object.entries(delivery.headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`])];
      const ok = await run(process.execPath, args(f.connection.secrets[secretKey]), { cwd: ROOT });
      const parsed = JSON.parse(ok.stdout) as { verified: boolean; changes: { platform: string; externalId: string }[] };
      assert.equal(parsed.verified, true);
      assert.ok(parsed.changes.length >= 1 && parsed.changes.every((c) => c.platform === d.platform && c.externalId), ok.stdout);
      await assert.rejects(run(process.execPath, args(`${f.connection.secrets[secretKey]}-wrong`), { cwd: ROOT }), (e: { code: number; stdout: string }) => e.code === 3 && JSON.parse(e.stdout).verified === false);
    });
  });
});
