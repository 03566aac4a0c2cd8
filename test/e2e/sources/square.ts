// End-to-end driver for Square Appointments: the fake Square Bookings API (test/fakes/square.ts, every request
// checked against Square's OpenAPI) and booking.created / booking.updated events signed as Square signs them:
// base64 HMAC-SHA256 of the notification URL + body. The URL is fixed (config.notificationUrl), so the signature
// does not depend on where the suite's server listens. Each `hold` that changes the booking is a new version;
// a webhook carries the version of the state it describes, so a late one is older than what Meridian holds.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { startFakeSquare, type SquareBooking } from '../../fakes/square.ts';
import type { E2EBooking, E2EEvent, SourceDriver } from './driver.ts';

export const NOTIFICATION_URL = 'https://meridian.e2e-clinic.test/webhooks/square';
const TEAM_MEMBER = 'TMq8Wv2Xb4Nc6Zd1';
const SERVICE = 'F4TQ2ZXWK7MNB3YHCRD6PJVE';
const LOCATION = 'L8V3K2N7P5R1S';

const hashed = (seed: string, n: number) => createHash('sha256').update(seed).digest('hex').slice(0, n);
/** Square booking ids are short lowercase strings; customer ids upper-case. Always the same per neutral id. */
export const squareId = (id: string) => hashed(`booking:${id}`, 14);
const customerId = (id: string) => hashed(`customer:${id}`, 26).toUpperCase();
const utc = (iso: string) => new Date(iso).toISOString().replace('.000Z', 'Z');
const cancelled = (s: string) => s.startsWith('CANCELLED') || s === 'DECLINED';

const driver: SourceDriver = {
  platform: 'square',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await startFakeSquare({ accessToken: `sq-e2e-${randomUUID()}` });
    const signatureKey = `sq-sig-${randomUUID()}`;
    /** Every version `hold` made, per booking: what each webhook describes. */
    const history = new Map<string, SquareBooking[]>();
    return {
      connection: { baseUrl: fake.url, config: { notificationUrl: NOTIFICATION_URL }, secrets: { signatureKey, accessToken: fake.accessToken } },
      practitionerRef: TEAM_MEMBER,
      serviceRef: SERVICE,
      violations: fake.violations,
      hold(b: E2EBooking, status) {
        const id = squareId(b.id);
        const [given_name, ...rest] = b.patient.name.split(' ');
        fake.customer({ id: customerId(b.id), given_name, family_name: rest.join(' '), email_address: b.patient.email, ...(b.patient.phone ? { phone_number: b.patient.phone } : {}) });
        const held = fake.put({
          id, status: status === 'cancelled' ? 'CANCELLED_BY_CUSTOMER' : 'ACCEPTED', start_at: utc(b.start), location_id: LOCATION, customer_id: customerId(b.id),
          customer_note: '', seller_note: '', all_day: false, transition_time_minutes: 0, source: 'FIRST_PARTY_BUYER', location_type: 'BUSINESS_LOCATION',
          creator_details: { creator_type: 'CUSTOMER', customer_id: customerId(b.id) },
          appointment_segments: [{ duration_minutes: (Date.parse(b.end) - Date.parse(b.start)) / 60_000, service_variation_id: SERVICE, team_member_id: TEAM_MEMBER, service_variation_version: 1765923040112, any_team_member: false, intermission_minutes: 0 }],
        });
        history.set(id, [...(history.get(id) ?? []), held]);
      },
      webhook(event: E2EEvent, b, at, webhookUrl) {
        const id = squareId(b.id);
        const versions = history.get(id) ?? [];
        const matches = versions.filter((v) => (event === 'canceled' ? cancelled(v.status) : !cancelled(v.status) && v.start_at === utc(b.start)));
        // `created` describes the first state at that time; the others the latest one.
        const booking = (event === 'created' ? matches[0] : matches.at(-1)) ?? fake.booking(id);
        const type = event === 'created' ? 'booking.created' : 'booking.updated';
        const envelope = {
          merchant_id: 'MLT7Q2W9E4R6Y', location_id: LOCATION, type, event_id: randomUUID(), created_at: utc(at.toISOString()),
          data: { type: 'booking', id: `${id}:${booking?.version}`, object: { booking } },
        };
        fake.validateEvent(type, envelope);
        const body = Buffer.from(JSON.stringify(envelope));
        const signature = createHmac('sha256', signatureKey).update(NOTIFICATION_URL).update(body).digest('base64');
        return { url: webhookUrl, headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': signature }, body };
      },
      held(id) {
        const bk = fake.booking(squareId(id));
        if (!bk) return undefined;
        const minutes = (bk.appointment_segments as { duration_minutes: number }[]).reduce((n, s) => n + s.duration_minutes, 0);
        return { start: utc(bk.start_at), end: utc(new Date(Date.parse(bk.start_at) + minutes * 60_000).toISOString()), cancelled: cancelled(bk.status) };
      },
      close: () => fake.close(),
    };
  },
};

export default driver;
