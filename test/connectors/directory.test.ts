// Directories (issue 17): the staff, services and locations each platform lists, against the fakes. The rule under
// test: every `ref` is exactly what the connector's parser puts into a SourceChange for a booking of that same
// staff member / service / location, so a mapping made from the directory applies to real bookings. Listings are
// followed page by page, and refused credentials come back classified.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connector as calendly } from '../../src/connectors/sources/calendly/index.ts';
import { connector as acuity } from '../../src/connectors/sources/acuity/index.ts';
import { connector as square } from '../../src/connectors/sources/square/index.ts';
import { connector as calCom } from '../../src/connectors/sources/cal-com/index.ts';
import { connector as setmore } from '../../src/connectors/sources/setmore/index.ts';
import type { ConnectionContext, Directory, SourceConnector, WriteOutcome } from '../../src/connectors/types.ts';
import type { SourceChange } from '../../src/domain/types.ts';
import { startFakeCalendly } from '../fakes/calendly.ts';
import { startFakeAcuity } from '../fakes/acuity.ts';
import { startFakeSquare } from '../fakes/square.ts';
import { startFakeCalCom } from '../fakes/cal-com.ts';
import { startFakeSetmore, appointmentOf, STAFF_KEY, SERVICE_KEY } from '../fakes/setmore.ts';

const samples = new URL('../fixtures/samples/', import.meta.url);
const ctxOf = (baseUrl: string, secrets: Record<string, string>, config: Record<string, unknown> = {}): ConnectionContext => ({
  connectionId: 'clinic-main', config, secrets, baseUrl, fetch, now: () => new Date(),
});
async function dir(c: SourceConnector, ctx: ConnectionContext): Promise<Directory> {
  assert.ok(c.directory, `${c.descriptor.id} has a directory`);
  const o = await c.directory(ctx);
  if (!o.ok) assert.fail(`${o.failure.class}: ${o.failure.message}`);
  return o.value;
}
const failureOf = (o: WriteOutcome<unknown>) => (o.ok ? assert.fail('expected a failure') : o.failure);
const webhook = (body: string | Buffer, headers: Record<string, string> = {}) => ({ rawBody: Buffer.from(body), headers, url: 'https://meridian.example/webhooks/c', now: new Date() });

/** The directory holds the change's refs: staff (with the practitioner's e-mail where both have one), service, location. */
function assertRefsListed(d: Directory, change: SourceChange, o: { location?: boolean } = {}) {
  const a = change.appointment;
  assert.ok(a.practitionerRef, 'the parser names a practitioner');
  const person = d.staff.find((s) => s.ref === a.practitionerRef);
  assert.ok(person, `staff ${a.practitionerRef} listed (refs: ${d.staff.map((s) => s.ref).join(', ')})`);
  if (a.practitionerEmail && person.email) assert.equal(person.email, a.practitionerEmail);
  assert.ok(a.serviceRef && d.services.some((s) => s.ref === a.serviceRef), `service ${a.serviceRef} listed (refs: ${d.services.map((s) => s.ref).join(', ')})`);
  if (o.location) assert.ok(a.locationRef && d.locations?.some((l) => l.ref === a.locationRef), `location ${a.locationRef} listed`);
}

test('Calendly: members by user URI with e-mail, event types by URI, every page; the refs of a parsed booking are listed', async () => {
  const fake = await startFakeCalendly();
  try {
    const sample = JSON.parse(readFileSync(new URL('calendly/invitee-created.json', samples), 'utf8'));
    const host = sample.payload.scheduled_event.event_memberships[0];
    fake.addUser({ uri: host.user, name: host.user_name, email: host.user_email });
    fake.addEventType({ uri: sample.payload.scheduled_event.event_type, name: 'Acupuncture follow-up (45 min)' });
    for (let i = 0; i < 105; i++) fake.addUser({ uri: `https://api.calendly.com/users/extra-${i}`, name: `Extra ${i}`, email: `extra${i}@clinic.example` });
    fake.addEventType({ uri: 'https://api.calendly.com/event_types/old-one', name: 'Old', active: false });

    const d = await dir(calendly, ctxOf(fake.url, { personalAccessToken: fake.token }));
    assert.equal(d.staff.length, 107, 'the owner, the host and 105 more over two pages');
    assert.ok(d.staff.some((s) => s.ref === fake.me.uri && s.email === fake.me.email));
    assert.ok(d.services.some((s) => s.name === 'Old (inactive)'));
    assert.equal(d.locations, undefined);
    const [change] = calendly.parseWebhook(webhook(JSON.stringify(sample)));
    assertRefsListed(d, change);
    assert.deepEqual(fake.violations, []);

    assert.equal(failureOf(await calendly.directory!(ctxOf(fake.url, { personalAccessToken: 'wrong' }))).class, 'auth');
  } finally {
    await fake.close();
  }
});

test('Acuity: calendars and appointment types by id; the refs of a webhook and of a read-back appointment are listed', async () => {
  const fake = await startFakeAcuity();
  try {
    fake.calendar({ id: 8841203, name: 'Dr. Ada Okafor', email: 'ada@clinic.example' });
    fake.calendar({ id: 8841204, name: 'Room 2' });
    fake.appointmentType({ id: 55120931, name: 'Acupuncture follow-up' });
    fake.appointmentType({ id: 55120932, name: 'Retired', active: false });
    const d = await dir(acuity, ctxOf(fake.url, { ...fake.credentials }));
    assert.deepEqual(d.staff, [{ ref: '8841203', name: 'Dr. Ada Okafor', email: 'ada@clinic.example' }, { ref: '8841204', name: 'Room 2' }]);
    assert.deepEqual(d.services.map((s) => s.name), ['Acupuncture follow-up', 'Retired (inactive)']);

    const [hook] = acuity.parseWebhook(webhook(readFileSync(new URL('acuity/webhook-dynamic-rescheduled.txt', samples), 'utf8').trim()));
    assertRefsListed(d, hook);
    const [record] = acuity.parseRecord!(JSON.parse(readFileSync(new URL('acuity/get-appointment-1284401937.json', samples), 'utf8')));
    assertRefsListed(d, record);
    assert.deepEqual(fake.violations, []);
    assert.equal(failureOf(await acuity.directory!(ctxOf(fake.url, { userId: fake.credentials.userId, apiKey: 'wrong' }))).class, 'auth');
  } finally {
    await fake.close();
  }
});

test('Square: team members with e-mail, appointment-service variations (not items, not retail), locations; the refs of a parsed booking are listed', async () => {
  const fake = await startFakeSquare();
  try {
    const body = readFileSync(new URL('square/booking-created.json', samples), 'utf8');
    const booking = JSON.parse(body).data.object.booking;
    const seg = booking.appointment_segments[0];
    fake.teamMember({ id: seg.team_member_id, given_name: 'Ada', family_name: 'Okafor', email_address: 'ada@clinic.example', status: 'ACTIVE' });
    fake.teamMember({ id: 'TMformer', given_name: 'Former', family_name: 'Staff', status: 'INACTIVE' });
    fake.catalogObject({
      type: 'ITEM', id: 'ITEM_ACU', item_data: {
        name: 'Acupuncture', product_type: 'APPOINTMENTS_SERVICE',
        variations: [
          { type: 'ITEM_VARIATION', id: seg.service_variation_id, item_variation_data: { item_id: 'ITEM_ACU', name: '75 min', service_duration: 4_500_000 } },
          { type: 'ITEM_VARIATION', id: 'VAR_ACU_45', item_variation_data: { item_id: 'ITEM_ACU', name: '45 min', service_duration: 2_700_000 } },
        ],
      },
    });
    fake.catalogObject({ type: 'ITEM', id: 'ITEM_TEA', item_data: { name: 'Herbal tea', product_type: 'REGULAR', variations: [{ type: 'ITEM_VARIATION', id: 'VAR_TEA', item_variation_data: { name: 'Regular' } }] } });
    fake.catalogObject({ type: 'ITEM', id: 'ITEM_MASSAGE', item_data: { name: 'Massage', product_type: 'APPOINTMENTS_SERVICE', variations: [{ type: 'ITEM_VARIATION', id: 'VAR_MASSAGE', item_variation_data: { name: 'Regular' } }] } });
    fake.location({ id: booking.location_id, name: 'Harbor Road', status: 'ACTIVE', timezone: 'America/New_York' });

    const d = await dir(square, ctxOf(fake.url, { accessToken: fake.accessToken }));
    assert.deepEqual(d.staff.find((s) => s.ref === seg.team_member_id), { ref: seg.team_member_id, name: 'Ada Okafor', email: 'ada@clinic.example' });
    assert.ok(d.staff.some((s) => s.name === 'Former Staff (inactive)'));
    assert.deepEqual(d.services.map((s) => s.ref).sort(), [seg.service_variation_id, 'VAR_ACU_45', 'VAR_MASSAGE'].sort(), 'variations of appointment services only, over two catalog pages');
    assert.ok(d.services.some((s) => s.name === 'Acupuncture — 75 min'));
    assert.ok(d.services.some((s) => s.name === 'Massage'));
    assert.deepEqual(d.locations, [{ ref: booking.location_id, name: 'Harbor Road' }]);

    const [change] = square.parseWebhook(webhook(body));
    assertRefsListed(d, change, { location: true });
    assert.deepEqual(fake.violations, []);
    assert.equal(failureOf(await square.directory!(ctxOf(fake.url, { accessToken: 'wrong' }))).class, 'auth');
  } finally {
    await fake.close();
  }
});

test('Cal.com: the user by e-mail and event types by id (none: an empty list); the refs of a parsed booking are listed', async () => {
  const fake = await startFakeCalCom();
  try {
    const ctx = ctxOf(fake.url, { apiKey: fake.apiKey });
    const empty = await dir(calCom, ctx);
    assert.deepEqual(empty, { staff: [{ ref: fake.me.email, name: fake.me.name, email: fake.me.email }], services: [] });

    fake.eventType({ id: 7, title: '60 min acupuncture' });
    fake.eventType({ id: 8, title: 'Team consult', hosts: [{ name: 'Dr. Ada Okafor', email: 'ada@clinic.example' }] });
    const d = await dir(calCom, ctx);
    assert.deepEqual(d.services, [{ ref: '7', name: '60 min acupuncture' }, { ref: '8', name: 'Team consult' }]);
    assert.deepEqual(d.staff.map((s) => s.ref), [fake.me.email, 'ada@clinic.example']);

    const [change] = calCom.parseWebhook(webhook(JSON.stringify({
      triggerEvent: 'BOOKING_CREATED', createdAt: '2026-05-24T09:30:00.538Z',
      payload: { uid: 'u1', startTime: '2026-05-25T09:30:00Z', endTime: '2026-05-25T10:30:00Z', organizer: { name: fake.me.name, email: fake.me.email }, attendees: [{ name: 'John Doe', email: 'john@example.com' }], eventTypeId: 7 },
    })));
    assertRefsListed(d, change);
    assert.deepEqual(fake.violations, []);
    assert.equal(failureOf(await calCom.directory!(ctxOf(fake.url, { apiKey: 'cal_wrong' }))).class, 'auth');
  } finally {
    await fake.close();
  }
});

test('Setmore: staff keys (every page) with e-mail and service keys; the refs of a listed appointment are listed', async () => {
  const fake = await startFakeSetmore();
  try {
    fake.addStaff({ key: 'staff-2', first_name: 'Ben', last_name: 'Ito', email_id: 'ben@clinic.example' });
    fake.addStaff({ key: 'staff-3', first_name: 'Cleo', last_name: 'Ruiz' });
    fake.addService({ key: 'svc-2', service_name: 'Cupping' });
    const d = await dir(setmore, ctxOf(fake.url, { refreshToken: fake.refreshToken }));
    assert.deepEqual(d.staff.map((s) => s.ref), [STAFF_KEY, 'staff-2', 'staff-3'], 'three staff over two pages of two');
    assert.equal(d.staff[0].email, 'ada@clinic.example');
    assert.deepEqual(d.services.map((s) => s.ref), [SERVICE_KEY, 'svc-2']);
    const [change] = setmore.parseRecord!([appointmentOf({ key: 'a1', start: '2026-03-02T15:00:00Z', end: '2026-03-02T16:00:00Z', patient: { name: 'Jo Park' } })]);
    assertRefsListed(d, change);
    assert.deepEqual(fake.violations, []);
    assert.equal(failureOf(await setmore.directory!(ctxOf(fake.url, { refreshToken: 'wrong' }))).class, 'auth');
  } finally {
    await fake.close();
  }
});
