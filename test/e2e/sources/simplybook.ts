// SimplyBook.me for the end-to-end source suite: the admin JSON-RPC fake (test/fakes/simplybook.ts) holds the
// bookings as company-local wall times, and callbacks are the ids-only JSON bodies SimplyBook.me posts to the
// Callback URL (unsigned, so the URL carries ?token=).
import { createHash } from 'node:crypto';
import { localToUtc, utcToLocal } from '../../../src/domain/time.ts';
import { SimplyBookFake } from '../../fakes/simplybook.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

const COMPANY = 'meridiane2e';
const ZONE = 'America/Chicago';
const TOKEN = 'e2e-simplybook-callback-token-3b9f6c2d';
const NOTIFICATION: Record<E2EEvent, string> = { created: 'create', rescheduled: 'change', canceled: 'cancel' };

/** SimplyBook.me ids are integers: the same UUID always gives the same id. */
const bookingId = (uuid: string) => String(Number.parseInt(uuid.replace(/-/g, '').slice(0, 8), 16) % 1_000_000_000 + 1);

function wall(instant: string): string {
  const z = utcToLocal(instant, ZONE);
  return `${z.toPlainDate().toString()} ${z.toPlainTime().toString({ smallestUnit: 'second' })}`;
}

const driver: SourceDriver = {
  platform: 'simplybook',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await new SimplyBookFake({ company: COMPANY, login: 'frontdesk', password: 'e2e-pw-51ac' }).start();
    return {
      connection: {
        baseUrl: fake.baseUrl,
        config: { companyLogin: COMPANY, timeZone: ZONE },
        secrets: { webhookToken: TOKEN, userLogin: 'frontdesk', userPassword: 'e2e-pw-51ac' },
      },
      practitionerRef: '3',
      serviceRef: '7',
      hold(b: E2EBooking, status: 'booked' | 'cancelled') {
        const id = bookingId(b.id);
        fake.bookings.set(id, {
          id, eventId: '7', unitId: '3', clientId: String(Number(id) % 100_000), clientName: b.patient.name,
          clientEmail: b.patient.email, clientPhone: b.patient.phone, start: wall(b.start), end: wall(b.end), confirmed: status === 'booked',
        });
      },
      webhook(event: E2EEvent, b: E2EBooking, _at: Date, webhookUrl: string) {
        const id = bookingId(b.id);
        const body = { booking_id: id, booking_hash: createHash('md5').update(id).digest('hex'), company: COMPANY, notification_type: NOTIFICATION[event] };
        const url = `${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}token=${TOKEN}`;
        return { url, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) };
      },
      held(id: string) {
        const b = fake.bookings.get(bookingId(id));
        if (!b) return undefined;
        return { start: localToUtc(b.start.replace(' ', 'T'), ZONE), end: localToUtc(b.end.replace(' ', 'T'), ZONE), cancelled: !b.confirmed };
      },
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
