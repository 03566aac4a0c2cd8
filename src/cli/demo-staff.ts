// The demo's people and day: an owner and a practitioner who can sign in (random passwords, kept in
// the data folder with mode 0600 and printed at start), and a schedule for today and tomorrow that
// shows what the web app marks: a booking platform's booking, a double booking, a request waiting for triage.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getSource } from '../connectors/registry.ts';
import { localToUtc } from '../domain/time.ts';
import { loadConnection } from '../engine/hub/connections.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { ingestWebhook } from '../engine/inbound/ingest.ts';
import { staffCreate } from '../engine/edits/staff.ts';
import { createUser, type Role } from '../http/auth.ts';

const LOGINS_FILE = 'demo-logins.json';

export interface DemoLogin { email: string; password: string; role: Role; practitionerId?: string }

/** Create the demo's accounts once (only in a store without staff accounts); returns what to print. */
export async function demoLogins(hub: Hub, dataDir: string): Promise<DemoLogin[]> {
  const file = join(dataDir, LOGINS_FILE);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DemoLogin[];
  const any = await hub.store.db.selectFrom('staff_user').select('id').limit(1).executeTakeFirst();
  if (any) return [];
  const first = await hub.store.db.selectFrom('practitioner').select(['id', 'email', 'name']).orderBy('id').where('email', 'is not', null).executeTakeFirst();
  const password = () => `demo-${randomBytes(9).toString('base64url')}`;
  const logins: DemoLogin[] = [{ email: 'owner@lotusclinic.example', password: password(), role: 'owner' }];
  if (first?.email) logins.push({ email: first.email, password: password(), role: 'practitioner', practitionerId: first.id });
  for (const l of logins) await createUser(hub, { ...l, name: l.role === 'owner' ? 'Clinic owner' : first?.name }, 'cli:demo');
  writeFileSync(file, `${JSON.stringify(logins, null, 2)}\n`, { mode: 0o600 });
  return logins;
}

/** A wall time today (+days) in the zone, as a UTC instant. */
function at(timeZone: string, days: number, hhmm: string, now: Date): string {
  const d = new Date(now.getTime() + days * 86_400_000);
  const day = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  return localToUtc(`${day}T${hhmm}:00`, timeZone);
}
const plus = (start: string, minutes: number) => new Date(Date.parse(start) + minutes * 60_000).toISOString().replace('.000Z', 'Z');

/** Fill an empty demo store with two days of appointments (no-op once there is any appointment). */
export async function seedDemoSchedule(hub: Hub): Promise<number> {
  if (await hub.store.db.selectFrom('appointment').select('id').limit(1).executeTakeFirst()) return 0;
  const clinic = await hub.store.db.selectFrom('clinic').select('time_zone').executeTakeFirst();
  const practitioners = await hub.store.db.selectFrom('practitioner').select(['id', 'location_ids']).orderBy('id').execute();
  const services = await hub.store.db.selectFrom('service').select(['id', 'duration_minutes']).orderBy('id').execute();
  if (!clinic || !practitioners.length) return 0;
  const tz = clinic.time_zone;
  const now = hub.clock.now();
  const patients = ['Maya Lindqvist', 'Omar Haddad', 'Grace Whitfield', 'Luis Ortega', 'Priya Raman', 'Tom Becker', 'Hana Sato', 'Ruth Adeyemi', 'Noah Fischer', 'Elena Petrova'];
  const times = ['09:00', '10:30', '13:00', '15:00'];
  let n = 0;
  for (const [pi, p] of practitioners.entries()) {
    for (const day of [0, 1]) {
      for (const [ti, t] of times.entries()) {
        if ((pi + ti + day) % 3 === 2) continue; // leave gaps, like a real day
        const svc = services[(pi + ti) % Math.max(services.length, 1)];
        const start = at(tz, day, t, now);
        const name = patients[(pi * 4 + ti + day * 3) % patients.length];
        await staffCreate(hub, {
          practitionerId: p.id, start, end: plus(start, svc?.duration_minutes ?? 45), serviceId: svc?.id, locationId: (JSON.parse(p.location_ids) as string[])[0],
          patient: { name, email: `${name.split(' ')[0].toLowerCase()}@example.org` },
        }, 'cli:demo');
        n++;
      }
    }
  }
  // A booking from the demo's booking platform, through the real webhook path, then a front-desk booking on top of it.
  const cal = await hub.store.db.selectFrom('connection').select(['id', 'platform']).execute();
  const src = cal.map((c) => ({ c, s: getSource(c.platform) })).find((x) => x.s?.sampleWebhook);
  const calStart = at(tz, 0, '11:30', now);
  if (src) {
    const conn = await loadConnection(hub, src.c.id);
    const sample = src.s!.sampleWebhook!({
      event: 'created', bookingId: randomUUID(), start: calStart, end: plus(calStart, 45), timeZone: tz, patient: { name: 'Jordan Rivera', email: 'jordan.rivera@example.org' },
      hostRef: Object.keys(conn.record.refs.practitioners ?? {})[0], serviceRef: Object.keys(conn.record.refs.services ?? {})[0],
    }, conn.secrets, now);
    const r = await ingestWebhook(hub, src.c.id, { rawBody: sample.rawBody, headers: sample.headers, url: `http://localhost/webhooks/${src.c.id}` });
    if (r.kind === 'accepted' || r.kind === 'queued') n++;
  }
  const booked = await hub.store.db.selectFrom('appointment').select('practitioner_id').where('origin_platform', '!=', 'manual').executeTakeFirst();
  await staffCreate(hub, { practitionerId: booked?.practitioner_id ?? practitioners[0].id, start: plus(calStart, 15), end: plus(calStart, 60), patient: { name: 'Sam Okoro', phone: '+1 312 555 0142' }, override: true, notes: 'Booked by phone' }, 'cli:demo');
  // A request waiting for the front desk to confirm.
  const req = at(tz, 1, '16:30', now);
  await staffCreate(hub, { practitionerId: practitioners[practitioners.length - 1].id, start: req, end: plus(req, 30), patient: { name: 'Iris Novak', email: 'iris@example.org' }, status: 'requested', notes: 'Asked for a first consult' }, 'cli:demo');
  return n + 2;
}
