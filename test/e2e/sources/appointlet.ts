// End-to-end driver for Appointlet: webhooks are the documented JSON Activity posted to the connection's URL
// with `?token=`; there is no API, so nothing is fetched and staff edits are expected to diverge (not written).
import { appointletId, startFakeAppointlet, type AppointletMeeting } from '../../fakes/appointlet.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

/** The only host-ish handle the documented meeting carries is its meeting type's name. */
const MEETING_TYPE = 'Acupuncture follow-up (45 min)';
const ACTIONS: Record<E2EEvent, string> = { created: 'Meeting.scheduled', rescheduled: 'Meeting.rescheduled', canceled: 'Meeting.cancelled' };

const driver: SourceDriver = {
  platform: 'appointlet',
  writesReschedule: false,
  writesCancel: false,
  async start() {
    const fake = await startFakeAppointlet();
    const meetingOf = (b: E2EBooking, cancelled: boolean, at: Date): AppointletMeeting => ({
      id: appointletId(b.id), type: 'Meeting', created_at: fake.meeting(appointletId(b.id))?.created_at ?? at.toISOString(),
      name: MEETING_TYPE, location: '12 Elm Street, Suite 3', location_type: 'place', start: b.start, end: b.end,
      approved: null, confirmed: false, cancelled,
    });
    return {
      connection: { baseUrl: fake.url, secrets: { webhookToken: fake.token } },
      practitionerRef: MEETING_TYPE,
      serviceRef: MEETING_TYPE,
      hold: (b, status) => fake.hold(meetingOf(b, status === 'cancelled', new Date())),
      webhook: (event, b, at, webhookUrl) => fake.delivery(ACTIONS[event], meetingOf(b, event === 'canceled', at), at, webhookUrl),
      held: (id) => {
        const m = fake.meeting(appointletId(id));
        return m && { start: m.start, end: m.end, cancelled: m.cancelled };
      },
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
