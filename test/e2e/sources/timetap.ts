// TimeTap for the end-to-end source suite: the fake API (session tokens, read-back, report, cancel) and
// the unsigned webhooks TimeTap posts (the whole appointment object) to the connection's URL plus `?token=`.
// TimeTap's API cannot move a booking, so a staff reschedule leaves the appointment diverging.
import { randomBytes } from 'node:crypto';
import { appointmentOf, startFakeTimeTap, webhookBodyOf, PROFESSIONAL_ID, REASON_ID } from '../../fakes/timetap.ts';
import type { E2EBooking, SourceDriver } from './driver.ts';

/** A UUID → a TimeTap calendarId (a number), always the same way. */
const calendarIdOf = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

const driver: SourceDriver = {
  platform: 'timetap',
  writesReschedule: false,
  writesCancel: true,
  async start() {
    const fake = await startFakeTimeTap();
    const webhookToken = randomBytes(24).toString('base64url');
    const appointment = (b: E2EBooking, cancelled: boolean) =>
      appointmentOf({ calendarId: calendarIdOf(b.id), start: b.start, end: b.end, timeZone: b.timeZone, patient: b.patient, status: cancelled ? 'CANCELLED' : 'OPEN' });
    return {
      connection: { baseUrl: fake.url, secrets: { apiKey: fake.apiKey, privateKey: fake.privateKey, webhookToken } },
      practitionerRef: String(PROFESSIONAL_ID),
      serviceRef: String(REASON_ID),
      hold: (b, status) => fake.put(appointment(b, status === 'cancelled')),
      webhook: (event, b, _at, webhookUrl) => {
        const url = new URL(webhookUrl);
        url.searchParams.set('token', webhookToken);
        return { url: url.toString(), headers: { 'content-type': 'application/json' }, body: webhookBodyOf(appointment(b, event === 'canceled')) };
      },
      held: (id) => fake.held(calendarIdOf(id)),
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
