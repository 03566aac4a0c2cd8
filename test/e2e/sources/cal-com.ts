// End-to-end driver for Cal.com: the fake Cal.com API v2 (test/fakes/cal-com.ts) and webhooks in Cal.com's
// default payload, signed as Cal.com signs them (X-Cal-Signature-256: hex HMAC-SHA256 of the body). A
// reschedule is a new booking uid pointing back (`rescheduleUid` in the webhook, `rescheduledFromUid` in the
// API), whether the patient moved it or Meridian did through the API: the neutral id maps to the first uid of
// the chain and `held` answers the latest booking of it, as the fake follows `rescheduledToUid`.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { startFakeCalCom, type CalBooking } from '../../fakes/cal-com.ts';
import type { E2EBooking, SourceDriver } from './driver.ts';

const HOST = { id: 5, name: 'Dr. Ada Okafor', email: 'dr.okafor@lotusclinic.example', timeZone: 'America/Chicago' };
const EVENT_TYPE = { id: 7, slug: 'acupuncture' };
const TRIGGER = { created: 'BOOKING_CREATED', rescheduled: 'BOOKING_RESCHEDULED', canceled: 'BOOKING_CANCELLED' } as const;

/** Cal.com uids are 22 url-safe characters; the k-th uid of a chain is derived from the neutral id. */
const calUid = (id: string, k = 0) => createHash('sha256').update(`${id}#${k}`).digest('base64url').slice(0, 22);
const utc = (iso: string) => new Date(iso).toISOString().replace('.000Z', 'Z');
const closed = (b: CalBooking) => b.status === 'cancelled' || b.status === 'rejected';

const driver: SourceDriver = {
  platform: 'cal-com',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await startFakeCalCom();
    const webhookSecret = `cal-e2e-${randomUUID()}`;
    let ids = 500;
    /** Every booking of the chain, first to latest (write-back reschedules included, via rescheduledToUid). */
    const chainOf = (id: string): CalBooking[] => {
      const out: CalBooking[] = [];
      for (let b = fake.booking(calUid(id)); b; b = b.rescheduledToUid ? fake.booking(b.rescheduledToUid) : undefined) out.push(b);
      return out;
    };
    const fresh = (b: E2EBooking, uid: string, over: Partial<CalBooking> = {}): CalBooking => {
      const now = new Date().toISOString();
      return {
        id: ids++, uid, title: `Acupuncture between ${HOST.name} and ${b.patient.name}`, status: 'accepted', start: utc(b.start), end: utc(b.end),
        duration: (Date.parse(b.end) - Date.parse(b.start)) / 60_000, hosts: [HOST], eventTypeId: EVENT_TYPE.id, eventType: EVENT_TYPE, location: 'Lakeview', absentHost: false,
        attendees: [{ name: b.patient.name, email: b.patient.email, timeZone: b.timeZone, ...(b.patient.phone ? { phoneNumber: b.patient.phone } : {}), absent: false }],
        createdAt: now, updatedAt: now, ...over,
      };
    };
    return {
      connection: { baseUrl: fake.url, secrets: { webhookSecret, apiKey: fake.apiKey } },
      practitionerRef: HOST.email,
      serviceRef: String(EVENT_TYPE.id),
      violations: fake.violations,
      hold(b, status) {
        const chain = chainOf(b.id);
        const head = chain.at(-1);
        const now = new Date().toISOString();
        if (!head) fake.put(fresh(b, calUid(b.id), status === 'cancelled' ? { status: 'cancelled' } : {}));
        else if (status === 'cancelled') fake.put({ ...head, status: 'cancelled', updatedAt: now });
        else if (utc(head.start) !== utc(b.start) || utc(head.end) !== utc(b.end)) {
          // The patient moved it: Cal.com makes a new booking and cancels the old one, pointing forward.
          const uid = calUid(b.id, chain.length);
          fake.put({ ...head, status: 'cancelled', rescheduledToUid: uid, updatedAt: now });
          fake.put(fresh(b, uid, { rescheduledFromUid: head.uid }));
        } else fake.put({ ...head, status: 'accepted', updatedAt: now });
      },
      webhook(event, b, at, webhookUrl) {
        const chain = chainOf(b.id);
        // `created` is about the booking made for b's time (a late one: an earlier uid); the others the latest.
        const booking = (event === 'created' ? chain.find((x) => utc(x.start) === utc(b.start)) : chain.at(-1)) ?? fresh(b, calUid(b.id));
        const envelope = {
          triggerEvent: TRIGGER[event], createdAt: at.toISOString(),
          payload: {
            type: EVENT_TYPE.slug, title: booking.title, description: '', additionalNotes: '', customInputs: {},
            startTime: booking.start, endTime: booking.end, organizer: { ...HOST, username: 'okafor', language: { locale: 'en' }, timeFormat: 'h:mma' },
            attendees: booking.attendees.map((a) => ({ email: a.email, name: a.name, timeZone: a.timeZone, language: { locale: 'en' } })),
            location: booking.location, eventTypeId: booking.eventTypeId, uid: booking.uid, bookingId: booking.id, length: booking.duration, metadata: {},
            ...(event === 'rescheduled' && booking.rescheduledFromUid ? { rescheduleUid: booking.rescheduledFromUid } : {}),
            status: event === 'canceled' ? 'CANCELLED' : 'ACCEPTED',
          },
        };
        const body = Buffer.from(JSON.stringify(envelope));
        const signature = createHmac('sha256', webhookSecret).update(body).digest('hex');
        return { url: webhookUrl, headers: { 'content-type': 'application/json', 'x-cal-signature-256': signature }, body };
      },
      held(id) {
        const head = fake.latest(calUid(id));
        return head ? { start: utc(head.start), end: utc(head.end), cancelled: closed(head) } : undefined;
      },
      close: () => fake.close(),
    };
  },
};

export default driver;
