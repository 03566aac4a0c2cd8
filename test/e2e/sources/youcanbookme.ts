// End-to-end driver for YouCanBookMe: the fake API (test/fakes/youcanbookme.ts) holds the bookings, and the
// webhooks are the connector's documented template bodies posted to the connection's URL with `?token=`.
import { randomBytes } from 'node:crypto';
import { WEBHOOK_TEMPLATES } from '../../../src/connectors/sources/youcanbookme/index.ts';
import { startFakeYcbm, instantsOf, ycbmRecord } from '../../fakes/youcanbookme.ts';
import type { E2EEvent, SourceDriver } from './driver.ts';

const TEAM_MEMBER = 'tm-e2e-practitioner';
/** Which trigger's template YCBM fills in for each suite event. */
const TRIGGER: Record<E2EEvent, keyof typeof WEBHOOK_TEMPLATES> = {
  created: 'When a booking is made', rescheduled: 'When a booking is rescheduled', canceled: 'When a booking is cancelled',
};

const driver: SourceDriver = {
  platform: 'youcanbookme',
  writesReschedule: true,
  writesCancel: true,
  async start() {
    const fake = await startFakeYcbm();
    const token = randomBytes(24).toString('base64url');
    return {
      connection: { baseUrl: fake.url, secrets: { accountId: fake.accountId, apiKey: fake.apiKey, webhookToken: token } },
      practitionerRef: TEAM_MEMBER,
      hold(b, status) {
        const prev = fake.get(b.id);
        const next = ycbmRecord({ id: b.id, start: b.start, end: b.end, timeZone: b.timeZone, patient: b.patient, teamMemberId: TEAM_MEMBER, cancelled: status === 'cancelled' });
        fake.put(prev ? { ...next, createdAt: prev.createdAt, ref: prev.ref } : next);
      },
      webhook(event, b, _at, webhookUrl) {
        // YCBM substitutes the shorthand code; the body is otherwise the template, byte for byte.
        const body = WEBHOOK_TEMPLATES[TRIGGER[event]].replace('{ID}', b.id);
        return { url: `${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}token=${token}`, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
      },
      held(id) {
        const r = fake.get(id);
        return r ? { ...instantsOf(r), cancelled: r.cancelled } : undefined;
      },
      violations: fake.violations,
      close: () => fake.close(),
    };
  },
};

export default driver;
