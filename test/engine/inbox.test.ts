// The webhook inbox (src/engine/inbox.ts), on SQLite and PostgreSQL: a burst is acknowledged once
// stored and applied afterwards, each delivery exactly once; deliveries a dead process acknowledged
// are applied by the next start; two nodes taking the same rows apply each once; past the bound on
// unapplied deliveries, new ones are refused with 503 + Retry-After before anything is stored.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { getSource } from '../../src/connectors/registry.ts';
import type { Hub } from '../../src/engine/hub/hub.ts';
import { bodyBytes, inboxOf } from '../../src/engine/inbound/ingest.ts';
import { webhookAnswer as ingestWebhook } from '../../src/http/inbound.ts';
import { verifyAudit } from '../../src/store/audit.ts';
import { staffCancel } from '../../src/engine/edits/staff.ts';
import { getAppointment } from '../../src/store/repo.ts';
import { sql } from 'kysely';
import { MeridianError } from '../../src/domain/errors.ts';
import { statusOf } from '../../src/http/errors.ts';
import { BACKENDS, backendFor, configuredHub } from '../helpers.ts';

const KEY = 'inbox-signing-key';
const HOST = 'https://api.calendly.com/users/host-1';
const calendly = getSource('calendly')!;
const YAML = `
clinic: { id: c, name: Clinic, timeZone: America/New_York }
locations: [{ id: l, name: Main }]
practitioners: [{ id: reyes, name: Dr Reyes, locations: [l] }]
connections:
  - id: calendly
    platform: calendly
    secrets: { signingKey: { env: CK } }
    refs: { practitioners: { "${HOST}": reyes } }
`;

let n = 0;
/** A signed Calendly booking, each an hour after the last (no two overlap). */
function delivery(bookingId: string = randomUUID()): { rawBody: Buffer; headers: Record<string, string>; url: string } {
  n++;
  const start = new Date(Date.UTC(2027, 2, 1, 9) + n * 3_600_000);
  const s = calendly.sampleWebhook!({ event: 'created', bookingId, start: start.toISOString(), end: new Date(start.getTime() + 45 * 60_000).toISOString(), timeZone: 'America/New_York', patient: { name: 'Ines Duarte' }, hostRef: HOST }, { signingKey: KEY }, new Date());
  return { rawBody: s.rawBody, headers: s.headers, url: '' };
}

/** The row `ingestWebhook` stores for a delivery, as a process killed right after acknowledging it leaves it. */
function receivedRow(d: ReturnType<typeof delivery>) {
  return {
    id: randomUUID(), connection_id: 'calendly', delivery_id: null, received_at: new Date().toISOString(), content_type: 'application/json',
    headers: JSON.stringify(d.headers), body: d.rawBody.toString('utf8'), status: 'received', error: null, change_count: 1, applied_at: null,
  };
}

async function counts(hub: Hub) {
  const statuses = await hub.store.db.selectFrom('delivery').select(['status']).execute();
  const created = await hub.store.db.selectFrom('audit').select('seq').where('action', '=', 'appointment.created').execute();
  const appointments = await hub.store.db.selectFrom('appointment').select('id').execute();
  const by: Record<string, number> = {};
  for (const s of statuses) by[s.status] = (by[s.status] ?? 0) + 1;
  return { deliveries: by, created: created.length, appointments: appointments.length };
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const backend of BACKENDS) {
  describe(`webhook inbox on ${backend}`, () => {
    let b: Awaited<ReturnType<typeof backendFor>>;
    const hubs: Hub[] = [];
    const open = async (env: NodeJS.ProcessEnv = {}) => {
      const hub = await configuredHub(YAML, { dataDir: b.dataDir, databaseUrl: b.databaseUrl, pgSchema: b.pgSchema, env: { CK: KEY, ...env } });
      hubs.push(hub);
      return hub;
    };
    const close = async (hub: Hub) => {
      await inboxOf(hub).stop();
      await hub.store.close();
      hubs.splice(hubs.indexOf(hub), 1);
    };
    before(async () => {
      b = await backendFor(backend);
    });
    after(async () => {
      for (const h of [...hubs]) await close(h);
      await b.cleanup();
    });
    const t = (name: string, fn: () => Promise<void>) => test(name, { skip: b?.skip }, fn);

    t('a burst is answered once stored, then every delivery is applied exactly once', async () => {
      const hub = await open();
      const answers = await Promise.all(Array.from({ length: 40 }, () => ingestWebhook(hub, 'calendly', delivery())));
      const by = (s: string) => answers.filter((a) => a.body.status === s);
      // All 40 arrive in one turn: the first few wait for their apply and say what it did, the rest do not wait.
      assert.ok(by('accepted').length >= 1 && by('accepted').length <= 4, JSON.stringify(answers.map((a) => a.body.status)));
      assert.equal(by('accepted').length + by('queued').length, 40);
      for (const a of by('accepted')) assert.equal(a.status, 200);
      for (const a of by('queued')) assert.equal(a.status, 202);
      assert.ok(by('accepted').every((a) => (a.body.changes as { outcome: string }[])[0].outcome === 'created'));
      await inboxOf(hub).idle();
      assert.deepEqual(await counts(hub), { deliveries: { applied: 40 }, created: 40, appointments: 40 });
      const booked = await hub.store.db.selectFrom('delivery').select('external_ids').execute();
      assert.ok(booked.every((d) => /^\|[^|]+\|$/.test(d.external_ids ?? '')), 'each row names the booking it is about');
      assert.equal((await verifyAudit(hub.store.db)).ok, true);
      await close(hub);
    });

    t('deliveries acknowledged by a process that died before applying them are applied at the next start', async () => {
      const before = await open();
      const was = await counts(before);
      const rows = Array.from({ length: 3 }, () => receivedRow(delivery()));
      for (const r of rows) assert.equal(await inboxOf(before).store(r), true);
      await close(before);
      const after = await open();
      inboxOf(after).start();
      await until('the stored deliveries to be applied', async () => (await counts(after)).deliveries.received === undefined);
      const now = await counts(after);
      assert.equal(now.created, was.created + 3);
      assert.equal(now.deliveries.applied, (was.deliveries.applied ?? 0) + 3);
      assert.equal((await verifyAudit(after.store.db)).ok, true);
      await close(after);
    });

    t('two nodes handed the same stored deliveries apply each once', async () => {
      const a = await open();
      const bNode = await open();
      const was = await counts(a);
      const rows = Array.from({ length: 20 }, () => receivedRow(delivery()));
      for (const r of rows) await inboxOf(a).store(r);
      const outcomes = await Promise.all(rows.flatMap((r) => [inboxOf(a).enqueue(r.id, 'calendly').result(), inboxOf(bNode).enqueue(r.id, 'calendly').result()]));
      await Promise.all([inboxOf(a).idle(), inboxOf(bNode).idle()]);
      const now = await counts(a);
      assert.equal(now.created - was.created, 20, 'one appointment.created per delivery');
      assert.equal(now.appointments - was.appointments, 20);
      assert.equal(now.deliveries.received, undefined);
      assert.equal(outcomes.filter((o) => o?.applied).length, 20, 'each applied by exactly one of the two');
      assert.equal((await verifyAudit(a.store.db)).ok, true);
      await close(a);
      await close(bNode);
    });

    for (const legacy of [false, true]) {
      t(`a staff edit first applies the stored deliveries about its booking that arrived before it${legacy ? ' (a row stored before bookings were recorded beside it)' : ''}`, async () => {
        const hub = await open();
        const booking = randomUUID();
        const first = await ingestWebhook(hub, 'calendly', delivery(booking));
        const id = (first.body.changes as { appointmentId: string }[])[0].appointmentId;
        // The platform moves it; under a burst that delivery waits in the inbox (here: stored, not yet applied).
        const move = delivery(booking);
        const movedTo = JSON.parse(move.rawBody.toString()).payload.scheduled_event.start_time as string;
        const externalId = calendly.parseWebhook({ ...move, now: new Date() })[0].externalId;
        // Another booking's stored delivery is not about this one: it stays for the inbox.
        const other = receivedRow(delivery());
        await inboxOf(hub).store({ ...receivedRow(move), external_ids: legacy ? null : `|${externalId}|` });
        await inboxOf(hub).store({ ...other, external_ids: legacy ? null : '|someone-else|' });
        await staffCancel(hub, id, 'patient called', 'staff:test');
        const otherRow = await hub.store.db.selectFrom('delivery').select('status').where('id', '=', other.id).executeTakeFirstOrThrow();
        assert.equal(otherRow.status, 'received', 'only the deliveries about the edited booking go first');
        inboxOf(hub).start();
        await until('no delivery left to apply', async () => (await counts(hub)).deliveries.received === undefined);
        const a = await getAppointment(hub.store.db, id);
        assert.equal(a?.status, 'cancelled', 'the move came first, the cancellation after it');
        assert.equal(Date.parse(a!.start), Date.parse(movedTo), 'at the time the platform moved it to');
        await close(hub);
      });
    }

    t('a staff edit is refused (503 unavailable), not made unsettled, when the store fails while applying the deliveries before it', async () => {
      const hub = await open();
      const booking = randomUUID();
      const first = await ingestWebhook(hub, 'calendly', delivery(booking));
      const id = (first.body.changes as { appointmentId: string }[])[0].appointmentId;
      const was = await getAppointment(hub.store.db, id);
      const move = delivery(booking);
      const movedTo = JSON.parse(move.rawBody.toString()).payload.scheduled_event.start_time as string;
      const externalId = calendly.parseWebhook({ ...move, now: new Date() })[0].externalId;
      await inboxOf(hub).store({ ...receivedRow(move), external_ids: `|${externalId}|` });
      // The store fails under the settle step: the connection's row cannot be read.
      await sql`alter table connection rename to connection_away`.execute(hub.store.db);
      hub.cache.clear();
      await assert.rejects(staffCancel(hub, id, 'patient called', 'staff:test'),
        (e: unknown) => e instanceof MeridianError && e.code === 'unavailable' && statusOf(e) === 503);
      const untouched = await getAppointment(hub.store.db, id);
      assert.equal(untouched?.status, 'booked', 'the cancellation was not made');
      assert.equal(untouched?.start, was?.start, 'and the waiting move not overtaken');
      // Once the store answers again, the same edit goes through after the move.
      await sql`alter table connection_away rename to connection`.execute(hub.store.db);
      hub.cache.clear();
      await staffCancel(hub, id, 'patient called', 'staff:test');
      const a = await getAppointment(hub.store.db, id);
      assert.equal(a?.status, 'cancelled');
      assert.equal(Date.parse(a!.start), Date.parse(movedTo), 'the move came first');
      await close(hub);
    });

    t('a verified body the database could not hold as text is kept as bytes, and the deliveries beside it are applied', async () => {
      const hub = await open();
      const was = await counts(hub);
      // A raw NUL byte: not JSON, so unreadable, and not storable as PostgreSQL text either.
      const body = Buffer.from('{"event":"invitee.created","payload":\u0000}');
      const t = Math.floor(Date.now() / 1000);
      const sig = createHmac('sha256', KEY).update(`${t}.`).update(body).digest('hex');
      const [odd, good] = await Promise.all([
        ingestWebhook(hub, 'calendly', { rawBody: body, headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${sig}` }, url: '' }),
        ingestWebhook(hub, 'calendly', delivery()),
      ]);
      assert.equal(odd.status, 202, JSON.stringify(odd.body));
      assert.equal(odd.body.code, 'unreadable_payload');
      assert.ok(good.status === 200 || good.status === 202, JSON.stringify(good.body));
      await inboxOf(hub).idle();
      const kept = await hub.store.db.selectFrom('delivery').select(['body', 'status']).where('id', '=', odd.body.delivery as string).executeTakeFirstOrThrow();
      assert.equal(kept.status, 'unreadable');
      assert.equal(bodyBytes(kept.body).toString('hex'), body.toString('hex'), 'kept byte for byte for staff');
      assert.equal((await counts(hub)).created - was.created, 1);
      await close(hub);
    });

    t('past the bound on unapplied deliveries, new ones get 503 + Retry-After and nothing is stored', async () => {
      const hub = await open({ MERIDIAN_INBOX_MAX: '3' });
      const was = await counts(hub);
      const sent = Array.from({ length: 10 }, () => delivery());
      const answers = await Promise.all(sent.map((d) => ingestWebhook(hub, 'calendly', d)));
      const refused = answers.filter((a) => a.status === 503);
      assert.equal(refused.length, 7, JSON.stringify(answers.map((a) => a.status)));
      for (const r of refused) {
        assert.equal(r.body.code, 'busy');
        assert.equal(r.headers?.['retry-after'], '30');
      }
      await inboxOf(hub).idle();
      assert.equal((await counts(hub)).created - was.created, 3, 'only the three taken were stored and applied');
      // Sent again later (as the platform does), they are taken.
      const again = [];
      for (const d of sent.filter((_, i) => answers[i].status === 503)) again.push(await ingestWebhook(hub, 'calendly', d));
      assert.ok(again.every((a) => a.status === 200 || a.status === 202), JSON.stringify(again.map((a) => a.status)));
      await inboxOf(hub).idle();
      assert.equal((await counts(hub)).created - was.created, 10);
      await close(hub);
    });
  });
}
