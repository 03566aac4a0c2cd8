// End-to-end driver for Calendly: the fake Calendly API (test/fakes/calendly.ts, answers checked against
// Calendly's schema) and webhooks made by the connector's own `sampleWebhook`, signed like Calendly
// (`t=<unix>,v1=<hex HMAC of "t.body">`) at delivery time, so a late delivery still verifies while its
// `created_at` is old. A reschedule is a new invitee replacing the old one: the neutral id maps to a chain of
// invitee ids (the first is the neutral id itself, as sampleInviteeUri expects), and `held` reads the latest.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { connector } from '../../../src/connectors/sources/calendly/index.ts';
import { sampleInviteeUri } from '../../../src/connectors/sources/calendly/sample.ts';
import type { SampleBooking } from '../../../src/connectors/types.ts';
import { startFakeCalendly } from '../../fakes/calendly.ts';
import type { E2EBooking, SourceDriver } from './driver.ts';

const HOST = 'https://api.calendly.com/users/0c5b9a7e-3f1d-4a2b-9e8c-5d6f7a8b9c0d';
const EVENT_TYPE = 'https://api.calendly.com/event_types/acu';
const ORGANIZATION = 'https://api.calendly.com/organizations/5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

interface Link { inviteeId: string; start: string; end: string }

/** The k-th invitee id of a booking's reschedule chain (k = 0 is the neutral id). */
function inviteeId(id: string, k: number): string {
  if (k === 0) return id;
  const h = createHash('sha256').update(`${id}#${k}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
const sameTimes = (l: Link, b: E2EBooking) => Date.parse(l.start) === Date.parse(b.start) && Date.parse(l.end) === Date.parse(b.end);

const driver: SourceDriver = {
  platform: 'calendly',
  writesReschedule: false,
  writesCancel: true,
  async start() {
    const fake = await startFakeCalendly();
    const signingKey = `calendly-e2e-${randomUUID()}`;
    const chains = new Map<string, Link[]>();
    const sample = (b: E2EBooking, chain: Link[], k: number, event: SampleBooking['event']): SampleBooking => ({
      event, bookingId: chain[k].inviteeId, start: chain[k].start, end: chain[k].end, timeZone: b.timeZone,
      patient: { name: b.patient.name, email: b.patient.email }, hostRef: HOST, serviceRef: EVENT_TYPE,
      ...(k > 0 ? { replaces: chain[k - 1].inviteeId } : {}), ...(chain[k + 1] ? { replacedBy: chain[k + 1].inviteeId } : {}),
    });
    const payloadOf = (s: SampleBooking, at = new Date()) => JSON.parse(connector.sampleWebhook!(s, { signingKey }, at).rawBody.toString()).payload;
    return {
      connection: { baseUrl: fake.url, config: { organization: ORGANIZATION }, secrets: { signingKey, personalAccessToken: fake.token } },
      practitionerRef: HOST,
      serviceRef: EVENT_TYPE,
      violations: fake.violations,
      hold(b, status) {
        const chain = chains.get(b.id) ?? [];
        chains.set(b.id, chain);
        const head = chain.at(-1);
        if (!head) chain.push({ inviteeId: inviteeId(b.id, 0), start: b.start, end: b.end });
        else if (status === 'booked' && !sameTimes(head, b)) {
          // The patient picked a new time: Calendly cancels the old invitee (rescheduled) and creates a new one.
          chain.push({ inviteeId: inviteeId(b.id, chain.length), start: b.start, end: b.end });
          fake.put(payloadOf(sample(b, chain, chain.length - 2, 'canceled')));
        }
        fake.put(payloadOf(sample(b, chain, chain.length - 1, status === 'cancelled' ? 'canceled' : 'created')));
      },
      webhook(event, b, at, webhookUrl) {
        const chain = chains.get(b.id) ?? [{ inviteeId: inviteeId(b.id, 0), start: b.start, end: b.end }];
        // `created` is about the invitee booked at b's time (a late one is about an earlier link); a reschedule
        // arrives as the new invitee's invitee.created pointing back; a cancellation is about the latest.
        const k = event === 'canceled' ? chain.length - 1 : Math.max(0, event === 'created' ? chain.findIndex((l) => sameTimes(l, b)) : chain.length - 1);
        const s = sample(b, chain, k, event === 'canceled' ? 'canceled' : 'created');
        const rawBody = connector.sampleWebhook!(event === 'canceled' ? s : { ...s, replacedBy: undefined }, { signingKey }, at).rawBody;
        fake.validateWebhook(JSON.parse(rawBody.toString()));
        const t = Math.floor(Date.now() / 1000);
        const v1 = createHmac('sha256', signingKey).update(`${t}.`).update(rawBody).digest('hex');
        return { url: webhookUrl, headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${v1}` }, body: rawBody };
      },
      held(id) {
        const head = chains.get(id)?.at(-1);
        const uri = head ? sampleInviteeUri(head.inviteeId) : undefined;
        const inv = uri ? fake.invitee(uri) : undefined;
        const ev = uri ? fake.event(uri.slice(0, uri.indexOf('/invitees/'))) : undefined;
        if (!inv || !ev) return undefined;
        return { start: new Date(ev.start_time).toISOString().replace('.000Z', 'Z'), end: new Date(ev.end_time).toISOString().replace('.000Z', 'Z'), cancelled: inv.status === 'canceled' };
      },
      close: () => fake.close(),
    };
  },
};

export default driver;
