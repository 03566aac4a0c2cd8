// Cal.com no-shows end to end through the real `bin/meridian serve` process: BOOKING_NO_SHOW_UPDATED (only the
// booking uid and the attendees' marks, no times) turns a booked appointment into a no-show and back, on a
// connection with an API key (the booking is read back from the fake Cal.com API) and on one without (the
// signed mark is applied as it came). The Google event follows; nothing is written back to Cal.com; a mark
// for a booking Meridian never saw creates nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, randomUUID } from 'node:crypto';
import { startFakeCalCom, type CalBooking, type FakeCalCom } from '../fakes/cal-com.ts';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { backendFor } from '../helpers.ts';
import { apiClient, createKey, serve, eventually, type Served } from './serve.ts';
import { CAL, clinicYaml, googleEnv } from './sources/driver.ts';

const HOST = { id: 5, name: 'Dr. Ada Okafor', email: 'dr.okafor@lotusclinic.example', timeZone: 'America/Chicago' };

describe('Cal.com no-shows end to end through the real server', async () => {
  const b = await backendFor('sqlite');
  const secret = `cal-ns-${randomUUID()}`;
  let g: FakeGoogle;
  let cal: FakeCalCom;
  let srv: Served;
  let api: ReturnType<typeof apiClient>;

  before(async () => {
    g = await startFakeGoogle();
    cal = await startFakeCalCom();
    const env: NodeJS.ProcessEnv = { ...googleEnv(g), E2E_CALNS_SECRET: secret, E2E_CALNS_KEY: cal.apiKey };
    const cfg = join(b.dataDir, 'clinic.yaml');
    writeFileSync(cfg, `
${clinicYaml(g)}
  - id: cal-key
    platform: cal-com
    baseUrl: ${JSON.stringify(cal.url)}
    secrets: { webhookSecret: { env: E2E_CALNS_SECRET }, apiKey: { env: E2E_CALNS_KEY } }
    refs:
      practitioners: { ${JSON.stringify(HOST.email)}: okafor }
      services: { "7": acupuncture }
  - id: cal-nokey
    platform: cal-com
    secrets: { webhookSecret: { env: E2E_CALNS_SECRET } }
    refs:
      practitioners: { ${JSON.stringify(HOST.email)}: okafor }
      services: { "7": acupuncture }
      defaultPractitioner: okafor
`);
    const common = ['--data', b.dataDir, '--config', cfg];
    srv = await serve(['serve', ...common], env);
    api = apiClient(srv.url, await createKey(common, env));
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, 'clean shutdown on SIGTERM');
    await cal?.close();
    await g?.close();
    await b.cleanup();
  });

  /** A delivery signed as Cal.com signs it (hex HMAC-SHA256 of the body), posted to the connection's endpoint. */
  const post = async (connection: string, envelope: unknown) => {
    const body = JSON.stringify(envelope);
    const res = await fetch(`${srv.url}/webhooks/${connection}`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', 'x-cal-signature-256': createHmac('sha256', secret).update(body).digest('hex') },
    });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
  const noShow = (uid: string, bookingId: number, email: string, mark: boolean, at: Date) => ({
    triggerEvent: 'BOOKING_NO_SHOW_UPDATED', createdAt: at.toISOString(),
    payload: { message: `${email} ${mark ? 'marked' : 'unmarked'} as no-show`, attendees: [{ email, noShow: mark }], bookingUid: uid, bookingId },
  });
  const appt = async (id: string) => (await api('GET', `/appointments/${id}`)).body;
  const event = (id: string) => g.events(CAL).find((e) => e.extendedProperties?.private?.meridianAppointmentId === id && e.status !== 'cancelled');

  for (const [n, connection] of [[0, 'cal-key'], [1, 'cal-nokey']] as const) {
    test(`${connection}: a booked appointment becomes a no-show and back; the Google event follows; nothing written back`, async () => {
      const uid = randomUUID().replace(/-/g, '').slice(0, 22);
      const start = new Date(Date.parse('2027-03-01T16:00:00Z') + n * 86_400_000).toISOString();
      const end = new Date(Date.parse(start) + 45 * 60_000).toISOString();
      const email = `nadia.${n}@example.net`;
      const created = new Date(Date.now() - 60_000).toISOString();
      const booking: CalBooking = {
        id: 700 + n, uid, title: 'Acupuncture between Dr. Ada Okafor and Nadia Stone', status: 'accepted', start, end, duration: 45, hosts: [HOST],
        attendees: [{ name: 'Nadia Stone', email, timeZone: 'America/Chicago', absent: false }], eventTypeId: 7, eventType: { id: 7, slug: 'acupuncture' },
        location: 'Lakeview', absentHost: false, createdAt: created, updatedAt: created,
      };
      cal.put(booking);
      const r1 = await post(connection, {
        triggerEvent: 'BOOKING_CREATED', createdAt: created,
        payload: {
          type: 'acupuncture', title: booking.title, startTime: start, endTime: end, organizer: HOST, uid, bookingId: booking.id, eventTypeId: 7, location: 'Lakeview',
          attendees: [{ email, name: 'Nadia Stone', timeZone: 'America/Chicago' }], status: 'ACCEPTED', length: 45,
        },
      });
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      const id = await eventually(async () => {
        const items = (await api('GET', '/appointments?from=2027-01-01T00:00:00Z&to=2028-01-01T00:00:00Z')).body.items as Record<string, any>[];
        return items.find((a) => a.origin.connectionId === connection && a.origin.externalId === uid)?.id as string | undefined;
      }, 15_000, 'the appointment');
      await eventually(() => event(id)?.summary && !event(id)!.summary!.startsWith('[No-show]'), 15_000, 'the Google event');
      const before = await appt(id);
      assert.equal(before.status, 'booked');

      // The attendee marked absent (Cal.com changes the attendee, not the booking's updatedAt).
      cal.put({ ...booking, attendees: [{ ...booking.attendees[0], absent: true }] });
      const r2 = await post(connection, noShow(uid, booking.id, email, true, new Date(Date.now() - 30_000)));
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      await eventually(async () => (await appt(id)).status === 'no_show', 15_000, 'no_show in Meridian');
      await eventually(() => event(id)?.summary?.startsWith('[No-show] '), 15_000, 'the Google event marked no-show');
      const during = await appt(id);
      assert.deepEqual([during.start, during.end, during.practitionerId, during.patient?.name], [before.start, before.end, before.practitionerId, before.patient?.name], 'only the status changed');

      // … and unmarked: back to booked.
      cal.put({ ...booking, attendees: [{ ...booking.attendees[0], absent: false }] });
      assert.equal((await post(connection, noShow(uid, booking.id, email, false, new Date(Date.now() - 10_000)))).status, 200);
      await eventually(async () => (await appt(id)).status === 'booked', 15_000, 'booked again in Meridian');
      await eventually(() => event(id)?.summary && !event(id)!.summary!.startsWith('[No-show]'), 15_000, 'the Google event back to booked');
      const after = await appt(id);
      assert.deepEqual([after.start, after.end, after.practitionerId], [before.start, before.end, before.practitionerId]);

      const actions = ((await api('GET', `/appointments/${id}/audit`)).body.items as { action: string }[]).map((x) => x.action);
      for (const a of ['appointment.created', 'appointment.no_show', 'appointment.rebooked']) assert.ok(actions.includes(a), `audit has ${a}: ${actions.join(', ')}`);
      assert.equal(cal.requests.filter((r) => r.path.endsWith('/mark-absent')).length, 0, 'the platform\'s own change is not written back to it');
      if (connection === 'cal-key') assert.ok(cal.requests.some((r) => r.method === 'GET' && r.path === `/v2/bookings/${uid}`), 'read back with the API key');
      assert.deepEqual(cal.violations, []);
      assert.deepEqual(g.violations, []);
    });
  }

  test('cal-nokey: a mark for a booking Meridian never saw creates no appointment', async () => {
    const count = async () => ((await api('GET', '/appointments?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z')).body.items as unknown[]).length;
    const n = await count();
    const r = await post('cal-nokey', noShow('neverSeenUid0000000001', 9999, 'ghost@example.net', true, new Date()));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const r2 = await post('cal-nokey', noShow('neverSeenUid0000000002', 9998, 'ghost@example.net', false, new Date()));
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    // The mark is remembered (a tombstone: applied); the undo has nothing to change and says why.
    const deliveries = async () => ((await api('GET', '/deliveries?connection=cal-nokey')).body.items as { id: string; status: string; error: string | null }[]);
    const [marked, unmarked] = await eventually(async () => {
      const all = await deliveries();
      const pair = [all.find((d) => d.id === r.body.delivery), all.find((d) => d.id === r2.body.delivery)];
      return pair.every((d) => d && d.status !== 'fetching' && d.status !== 'received') && pair;
    }, 15_000, 'both deliveries settled');
    assert.equal(marked!.status, 'applied');
    assert.equal(unmarked!.status, 'failed');
    assert.match(unmarked!.error ?? '', /only a status \(booked\) for a booking Meridian does not hold/);
    assert.equal(await count(), n, 'nothing invented');
  });
});
