// End-to-end driver for Acuity Scheduling: the fake Acuity API (test/fakes/acuity.ts) and Acuity's ids-only,
// form-encoded webhooks signed with the API key (X-Acuity-Signature, base64 HMAC-SHA256 of the body). Every
// delivery is read back from the fake, so what `hold` set is what Meridian applies. Reschedules keep the id.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { acuityInstant } from '../../../src/connectors/sources/acuity/index.ts';
import { acuityDatetime, startFakeAcuity } from '../../fakes/acuity.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

const CALENDAR_ID = 8841203;
const TYPE_ID = 55120931;
const ACTION: Record<E2EEvent, string> = { created: 'scheduled', rescheduled: 'rescheduled', canceled: 'canceled' };

/** Acuity ids are numbers: ten digits taken from a hash of the neutral id, always the same. */
export function acuityId(id: string): number {
  return 1_000_000_000 + (parseInt(createHash('sha256').update(id).digest('hex').slice(0, 12), 16) % 8_999_999_999);
}

const driver: SourceDriver = {
  platform: 'acuity',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await startFakeAcuity({ apiKey: `acuity-e2e-${randomUUID()}` });
    const { userId, apiKey } = fake.credentials;
    return {
      connection: { baseUrl: fake.url, secrets: { apiKey, userId } },
      practitionerRef: String(CALENDAR_ID),
      serviceRef: String(TYPE_ID),
      violations: fake.violations,
      hold(b: E2EBooking, status) {
        const [firstName, ...rest] = b.patient.name.split(' ');
        fake.hold({
          id: acuityId(b.id), datetime: acuityDatetime(b.start, b.timeZone), duration: String((Date.parse(b.end) - Date.parse(b.start)) / 60_000),
          calendarID: CALENDAR_ID, appointmentTypeID: TYPE_ID, calendarTimezone: b.timeZone, timezone: b.timeZone,
          firstName, lastName: rest.join(' '), email: b.patient.email, ...(b.patient.phone ? { phone: b.patient.phone } : {}),
          canceled: status === 'cancelled', ...(status === 'cancelled' ? { noShow: false } : {}),
        });
      },
      webhook(event, b, _at, webhookUrl) {
        const body = Buffer.from(new URLSearchParams({ action: ACTION[event], id: String(acuityId(b.id)), calendarID: String(CALENDAR_ID), appointmentTypeID: String(TYPE_ID) }).toString());
        const signature = createHmac('sha256', apiKey).update(body).digest('base64');
        return { url: webhookUrl, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-acuity-signature': signature }, body };
      },
      held(id) {
        const a = fake.get(acuityId(id));
        if (!a) return undefined;
        const start = acuityInstant(a.datetime);
        return { start, end: new Date(Date.parse(start) + Number(a.duration) * 60_000).toISOString().replace('.000Z', 'Z'), cancelled: Boolean(a.canceled) };
      },
      close: () => fake.close(),
    };
  },
};

export default driver;
