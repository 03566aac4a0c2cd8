// Jane App for the end-to-end source suite: the fake partner API (rotating OAuth tokens, read-back, patients)
// and webhook deliveries as triggers, posted to the connection's URL plus `?token=`. Jane's API is read-only,
// so a staff reschedule (and cancellation) in Meridian leaves the appointment diverging.
import { createHash, randomBytes } from 'node:crypto';
import { appointmentOf, patientOf, startFakeJane, webhookBodyOf, STAFF_MEMBER_ID, TREATMENT_ID } from '../../fakes/jane.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

const TOPICS: Record<E2EEvent, string> = { created: 'APPOINTMENT_BOOKED', rescheduled: 'APPOINTMENT_RESCHEDULED', canceled: 'APPOINTMENT_CANCELLED' };

/** Jane ids are UUIDs, so the booking keeps its own; its patient gets one derived from it, always the same. */
const patientIdOf = (id: string) => {
  const h = createHash('sha256').update(`patient:${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const driver: SourceDriver = {
  platform: 'jane',
  writesReschedule: false,
  writesCancel: false,
  async start() {
    const fake = await startFakeJane();
    const webhookToken = randomBytes(24).toString('base64url');
    return {
      connection: {
        baseUrl: fake.url,
        config: { clinicHost: 'lotus.janeapp.com', authServer: fake.authServer },
        secrets: { clientId: fake.clientId, refreshToken: fake.refreshToken(), webhookToken },
      },
      practitionerRef: STAFF_MEMBER_ID,
      serviceRef: TREATMENT_ID,
      hold: (b: E2EBooking, status) => {
        fake.putPatient(patientOf(patientIdOf(b.id), b.patient));
        fake.put(appointmentOf({ id: b.id, patientId: patientIdOf(b.id), start: b.start, end: b.end, state: status === 'cancelled' ? 'cancelled' : 'booked' }));
      },
      webhook: (event, b, at, webhookUrl) => {
        const url = new URL(webhookUrl);
        url.searchParams.set('token', webhookToken);
        return { url: url.toString(), headers: { 'content-type': 'application/json' }, body: webhookBodyOf(TOPICS[event], b.id, at) };
      },
      held: (id) => {
        const a = fake.get(id);
        return a && { start: a.start_at, end: a.end_at, cancelled: a.state === 'cancelled' };
      },
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
