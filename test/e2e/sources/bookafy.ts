// End-to-end driver for Bookafy: the fake API holds the appointments; webhooks are unsigned JSON hints
// posted to the connection's URL with `?token=<webhookToken>` (Meridian then reads the appointment back).
import { randomBytes } from 'node:crypto';
import { startFakeBookafy } from '../../fakes/bookafy.ts';
import { toUtc } from '../../../src/domain/time.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

const STAFF = 5123;
const SERVICE = 77;
/** A neutral UUID → Bookafy's numeric id, always the same way. */
const idOf = (uuid: string) => Number.parseInt(uuid.replace(/-/g, '').slice(0, 12), 16) % 1_000_000_000;
const EVENT: Record<E2EEvent, string> = { created: 'appointment_created', rescheduled: 'appointment_updated', canceled: 'appointment_cancelled' };

const driver: SourceDriver = {
  platform: 'bookafy',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await startFakeBookafy();
    const webhookToken = randomBytes(24).toString('base64url');
    const record = (b: E2EBooking, active: boolean) => ({
      id: idOf(b.id), user_id: STAFF, service_id: SERVICE, is_active: active,
      appointment_start_time: b.start, appointment_end_time: b.end, time_zone: 'Eastern Time (US & Canada)',
      duration: String(Math.round((Date.parse(b.end) - Date.parse(b.start)) / 60_000)),
      customer: { customer_detail_hstore: { name: b.patient.name, email: b.patient.email, ...(b.patient.phone ? { phone: b.patient.phone } : {}) } },
    });
    return {
      connection: { baseUrl: fake.url, secrets: { apiKey: fake.apiKey, webhookToken } },
      practitionerRef: String(STAFF),
      serviceRef: String(SERVICE),
      hold: (b, status) => fake.put(record(b, status === 'booked')),
      webhook: (event, b, _at, webhookUrl) => ({
        url: `${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(webhookToken)}`,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ event: EVENT[event], appointment: record(b, event !== 'canceled') })),
      }),
      held: (id) => {
        const live = fake.get(idOf(id));
        const a = live ?? fake.deleted(idOf(id));
        if (!a) return undefined;
        return { start: toUtc(a.appointment_start_time!), end: toUtc(a.appointment_end_time!), cancelled: !live || a.is_active === false };
      },
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
