// The web app in Debian's Chromium (playwright-core) against the real `bin/meridian serve`: sign in,
// the schedule (one column per practitioner, a Calendly booking), drag an appointment and find the
// move in the Google fake, a double booking warned about and overridden explicitly, a cancellation
// that leaves the ICS feed, a practitioner who cannot see another's patients (page and API), the audit
// page showing each step, the connections page; and the demo's printed login. The browser runs in
// Berlin time: the schedule must still show the clinic's Chicago wall times.
// Screenshots of the main pages are saved in test-artifacts/ (gitignored).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { buildUi, chromiumMissing, launch, screenshot, type Browser } from './browser.ts';
import { GOOGLE_CAL, startClinic, TZ, type Clinic } from './clinic.ts';
import { eventually, serve } from '../e2e/serve.ts';
import { tempDir } from '../helpers.ts';
import { toWall } from '../../src/ui/time.ts';

const skip = chromiumMissing();
const PW = 'Lotus-clinic-2030!';

async function signIn(page: Page, url: string, email: string, password = PW): Promise<void> {
  await page.goto(url);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('body[data-ready="schedule"]');
}

/** Open the day view of `day` and wait until its appointments are drawn. */
async function openDay(page: Page, url: string, day: string, view: 'day' | 'week' = 'day'): Promise<void> {
  await page.goto(`${url}/#/schedule?date=${day}&view=${view}`);
  await page.reload();
  await page.waitForFunction((d) => document.body.dataset.schedule?.length && document.querySelector('.ec-event') !== null && Boolean(d), day);
}

describe('the web app in a browser', { skip }, () => {
  let c: Clinic;
  let b: Browser;
  let page: Page;
  const ids: Record<string, string> = {};

  before(async () => {
    await buildUi();
    c = await startClinic();
    for (const [email, role, pr] of [['desk@lotusclinic.example', 'owner'], ['k.nakamura@lotusclinic.example', 'practitioner', 'nakamura']] as const) {
      const r = await c.addUser(email, role, PW, pr);
      assert.equal(r.code, 0, r.out);
    }
    ids.jordan = await c.calendly(c.at('10:00'), 45, { name: 'Jordan Rivera', email: 'jordan@example.org' });
    const mk = async (practitionerId: string, hhmm: string, minutes: number, name: string, serviceId?: string) => {
      const start = c.at(hhmm);
      const r = await c.api('POST', '/appointments', { practitionerId, start, end: new Date(Date.parse(start) + minutes * 60_000).toISOString(), patient: { name, email: `${name.split(' ')[0].toLowerCase()}@example.org` }, serviceId });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.id as string;
    };
    ids.maya = await mk('okafor', '13:00', 45, 'Maya Lindqvist', 'acupuncture');
    ids.omar = await mk('brennan', '09:30', 60, 'Omar Haddad', 'massage');
    ids.priya = await mk('nakamura', '11:00', 60, 'Priya Raman', 'massage');
    await eventually(() => c.google.live(GOOGLE_CAL).length === 2, 15_000, 'Okafor\'s two events in Google');
    b = await launch({ timezoneId: 'Europe/Berlin' });
    page = await b.newPage();
  });
  after(async () => {
    await b?.close();
    await c?.close();
  });

  const event = (id: string) => page.locator(`.ec-event.a-${id}`);

  test('sign in, and the day shows one column per practitioner with each booking\'s status and source', async () => {
    await page.goto(c.srv.url);
    await page.waitForSelector('form.signin');
    await screenshot(page, '01-sign-in');
    await page.getByLabel('E-mail').fill('desk@lotusclinic.example');
    await page.getByLabel('Password').fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not right' }).waitFor();
    await signIn(page, c.srv.url, 'desk@lotusclinic.example');
    await openDay(page, c.srv.url, c.day);
    const heads = await page.locator('#calendar .ec-header').innerText();
    for (const name of ['Dr. Ada Okafor', 'Siobhan Brennan, LMT', 'Dr. Kenji Nakamura']) assert.ok(heads.includes(name), `${name} column in ${heads}`);
    const jordan = event(ids.jordan);
    await jordan.waitFor();
    assert.match(await jordan.innerText(), /10:00–10:45\s+Jordan Rivera[\s\S]*Acupuncture · Calendly/, 'Chicago wall time in a Berlin browser; source platform shown');
    assert.match(await event(ids.maya).innerText(), /13:00–13:45\s+Maya Lindqvist[\s\S]*Meridian \(staff\)/);
    assert.match(await jordan.textContent() ?? '', /Jordan Rivera, Dr\. Ada Okafor, Booked, from Calendly/, 'what a screen reader says');
    assert.equal(await jordan.getAttribute('role'), 'button', 'appointments are reachable by keyboard');
    await screenshot(page, '02-schedule-day');
  });

  test('dragging an appointment to a new time moves it, and the move reaches the Google fake', async () => {
    const box = (await event(ids.maya).boundingBox())!;
    // The time labels down the side say where 13:00 and 15:00 are.
    const label = async (t: string) => (await page.locator('#calendar .ec-sidebar .ec-slot', { hasText: t }).first().boundingBox())!.y;
    const dy = (await label('15:00')) - (await label('13:00'));
    const x = box.x + box.width / 2;
    const y = box.y + 8;
    await page.mouse.move(x, y);
    await page.mouse.down();
    await page.mouse.move(x, y + 20, { steps: 4 });
    await page.mouse.move(x, y + dy, { steps: 8 });
    await page.mouse.up();
    await eventually(async () => (await c.api('GET', `/appointments/${ids.maya}`)).body.start === c.at('15:00'), 10_000, 'the appointment at 15:00');
    await eventually(() => event(ids.maya).innerText().then((t) => t.includes('15:00–15:45')), 10_000, 'the calendar redrawn');
    const g = await eventually(() => c.google.live(GOOGLE_CAL).find((e) => e.extendedProperties?.private?.meridianAppointmentId === ids.maya && Date.parse(e.start!.dateTime!) === Date.parse(c.at('15:00'))), 15_000, 'the Google event moved');
    assert.equal(Date.parse(g.end!.dateTime!), Date.parse(c.at('15:45')));
    assert.deepEqual(c.google.violations, []);
  });

  test('booking over a Calendly appointment warns which sources collide; only an explicit override books it', async () => {
    await page.getByRole('button', { name: 'New appointment' }).click();
    const form = page.getByRole('dialog', { name: 'New appointment' });
    await form.getByLabel('Patient name').fill('Sam Okoro');
    await form.getByLabel('Practitioner').selectOption('okafor');
    await form.getByLabel('Date').fill(c.day);
    await form.getByLabel('Start').fill('10:15');
    await form.getByLabel('Minutes').fill('30');
    await form.getByRole('button', { name: 'Book' }).click();
    const warn = page.getByRole('dialog', { name: 'Double booking' });
    await warn.waitFor();
    assert.match(await warn.innerText(), /this would double-book[\s\S]*10:00–10:45 · Dr\. Ada Okafor · from Calendly · Jordan Rivera/);
    await screenshot(page, '03-double-booking-warning');
    await warn.getByRole('button', { name: 'Don\'t book it' }).click();
    await form.getByText('Not booked: it would double-book.').waitFor();
    assert.equal((await c.api('GET', `/appointments?from=${c.at('00:00')}&to=${c.at('23:59')}&practitioner=okafor`)).body.items.length, 2, 'nothing booked without the override');
    await form.getByRole('button', { name: 'Book' }).click();
    await page.getByRole('dialog', { name: 'Double booking' }).getByRole('button', { name: 'Book anyway (double-book)' }).click();
    await page.locator('#status-line').filter({ hasText: 'Booked Sam Okoro' }).waitFor();
    const sam = (await c.api('GET', `/appointments?from=${c.at('00:00')}&to=${c.at('23:59')}&practitioner=okafor`)).body.items.find((a: { patient: { name: string } }) => a.patient.name === 'Sam Okoro');
    ids.sam = sam.id;
    assert.deepEqual(sam.conflicts, [ids.jordan]);
    await eventually(() => event(ids.jordan).innerText().then((t) => t.includes('⚠ Double booking: Calendly + Meridian (staff)')), 10_000, 'the Calendly booking marked');
    assert.match(await event(ids.sam).innerText(), /⚠ Double booking: Meridian \(staff\) \+ Calendly/);
    assert.match(await page.locator('aside.side').innerText(), /Double bookings \(2\)/);
    await screenshot(page, '04-schedule-double-booking');
  });

  test('cancelling from the appointment takes it off the schedule and out of the ICS feed', async () => {
    assert.ok((await c.feed('okafor')).some((e) => e.uid.startsWith(ids.maya)), 'in the feed before');
    await event(ids.maya).click();
    const dlg = page.getByRole('dialog', { name: 'Maya Lindqvist' });
    assert.match(await dlg.innerText(), /Source\s+Meridian \(staff\)/);
    await screenshot(page, '05-appointment-details');
    await dlg.getByLabel('Reason for cancelling').fill('patient called');
    await dlg.getByRole('button', { name: 'Cancel appointment' }).click();
    await event(ids.maya).waitFor({ state: 'detached' });
    assert.equal((await c.api('GET', `/appointments/${ids.maya}`)).body.status, 'cancelled');
    assert.ok(!(await c.feed('okafor')).some((e) => e.uid.startsWith(ids.maya)), 'no live feed entry left (it is CANCELLED for subscribers)');
    await eventually(() => c.google.live(GOOGLE_CAL).every((e) => e.extendedProperties?.private?.meridianAppointmentId !== ids.maya), 15_000, 'gone from Google too');
  });

  test('the week view and a tablet-sized screen', async () => {
    await openDay(page, c.srv.url, c.day, 'week');
    assert.ok(await event(ids.priya).isVisible());
    await screenshot(page, '06-schedule-week');
    await page.setViewportSize({ width: 1024, height: 768 });
    await openDay(page, c.srv.url, c.day);
    const calendar = (await page.locator('#calendar').boundingBox())!;
    assert.ok(calendar.width <= 1024 && calendar.width > 900, 'the calendar takes the width; the side panel moves below');
    await screenshot(page, '07-schedule-tablet');
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  test('the audit page shows each of those steps with before and after, verifies the chain, and exports', async () => {
    await page.goto(`${c.srv.url}/#/audit?entity=${ids.maya}`);
    await page.reload();
    await page.waitForSelector('body[data-ready="audit"]');
    await page.locator('.verify .verdict').filter({ hasText: 'chain intact' }).waitFor();
    const actions = await page.locator('table.audit > tbody > tr:not(.detail) code').allInnerTexts();
    assert.deepEqual(actions.filter((a) => a.startsWith('appointment.')), ['appointment.cancelled', 'appointment.rescheduled', 'appointment.created']);
    assert.ok(actions.includes('target.updated'), 'the calendar writes are there too');
    const moved = page.locator('table.audit > tbody > tr[data-action="appointment.rescheduled"]');
    assert.match(await moved.innerText(), /user:desk@lotusclinic\.example/);
    await moved.getByRole('button', { name: 'Before / after' }).click();
    const diff = page.locator('tr.detail:not([hidden]) table.diff');
    const start = diff.locator('tr.changed', { hasText: 'start' });
    assert.match(await start.innerText(), new RegExp(`start.*${c.at('13:00').slice(0, 16)}.*${c.at('15:00').slice(0, 16)}`, 's'));
    await screenshot(page, '08-audit-appointment');
    // Filters: by patient and by action, all steps of the double booking.
    await page.getByLabel('Appointment').fill('');
    await page.getByLabel('Patient').fill('okoro');
    await page.getByLabel('Action').fill('appointment.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await eventually(async () => (await page.locator('table.audit > tbody > tr:not(.detail) code').allInnerTexts()).join(',') === 'appointment.double_booked,appointment.created', 10_000, 'the double booking\'s entries');
    const meta = page.locator('table.audit > tbody > tr[data-action="appointment.double_booked"]');
    await meta.getByRole('button', { name: 'Before / after' }).click();
    assert.match(await page.locator('tr.detail:not([hidden])').innerText(), /"overridden":true/);
    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    const csv = await page.evaluate((h) => fetch(h!).then((r) => r.text()), href);
    assert.equal(csv.trim().split('\r\n').length, 3, 'header + the two filtered entries');
    await page.getByLabel('Patient').fill('');
    await page.getByLabel('Action').fill('staff.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await eventually(async () => (await page.locator('table.audit > tbody > tr:not(.detail) code').allInnerTexts()).includes('staff.signed_in'), 10_000, 'sign-ins');
    assert.ok((await page.locator('table.audit > tbody > tr:not(.detail) code').allInnerTexts()).includes('staff.sign_in_failed'));
    await page.getByLabel('Action').fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await screenshot(page, '09-audit');
  });

  test('the connections page shows each connection\'s health and the jobs', async () => {
    await page.goto(`${c.srv.url}/#/connections`);
    await page.reload();
    await page.waitForSelector('body[data-ready="connections"]');
    const google = page.locator('tr[data-connection="google"]');
    assert.match(await google.innerText(), /Working/);
    assert.doesNotMatch(await google.innerText(), /never/, 'a last successful write is shown');
    assert.match(await page.locator('section.summary').innerText(), /0\s+in dead letter/);
    // A connection whose secret's variable is unset needs setup, says what to do, and is never "Working".
    const website = page.locator('tr[data-connection="website"]');
    assert.match(await website.innerText(), /Needs setup/);
    assert.match(await website.innerText(), /Missing webhookToken: set UI_LEAD_TOKEN_UNSET in the server's environment/);
    assert.doesNotMatch(await website.innerText(), /Working/);
    assert.match(await page.locator('section.summary').innerText(), /1\s+need setup/);
    // How long patient data is kept: the policy in force, in words.
    assert.deepEqual(await page.locator('ul.retention li').allInnerTexts(),
      ['Webhook and lead deliveries: 30 days', 'Decided leads: 180 days', 'Message log: 1 year', 'Finished jobs: 30 days']);
    await screenshot(page, '10-connections');
  });

  test('a practitioner sees only their own column and cannot read another practitioner\'s patients', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForSelector('form.signin');
    await signIn(page, c.srv.url, 'k.nakamura@lotusclinic.example');
    await openDay(page, c.srv.url, c.day);
    assert.match(await page.locator('h1').innerText(), /Dr\. Kenji Nakamura: your schedule/);
    assert.equal(await page.evaluate('window.__schedule.resources'), 1, 'one column');
    await event(ids.priya).waitFor();
    const text = await page.locator('body').innerText();
    for (const other of ['Jordan Rivera', 'Sam Okoro', 'Omar Haddad']) assert.ok(!text.includes(other), `${other} not on the page`);
    assert.deepEqual(await page.locator('nav.primary a').allInnerTexts(), ['Schedule'], 'no audit or connections pages');
    assert.equal(await page.getByRole('button', { name: 'New appointment' }).count(), 0);
    const answers = await page.evaluate(async (x) => Promise.all([`/api/v1/appointments/${x.jordan}`, `/api/v1/appointments?practitioner=okafor`, '/api/v1/audit', `/api/v1/appointments/${x.priya}`]
      .map((u) => fetch(u).then(async (r) => `${r.status} ${await r.text()}`))), ids);
    assert.match(answers[0], /^403 /);
    assert.match(answers[1], /^403 /);
    assert.match(answers[2], /^403 /);
    assert.match(answers[3], /^200 .*Priya Raman/);
    assert.ok(answers.slice(0, 3).every((a) => !a.includes('Jordan')));
    await screenshot(page, '11-practitioner-schedule');
  });
});

describe('the demo in a browser', { skip }, () => {
  test('`demo --serve` prints a login that opens a demo schedule with a Calendly booking and a double booking', async () => {
    await buildUi();
    const tmp = tempDir('meridian-demo-');
    const srv = await serve(['demo', '--serve', '--data', tmp.dir]);
    const b = await launch();
    try {
      const m = /Sign in:\s+(\S+) \/ (\S+)\s+\(owner/.exec(srv.output());
      assert.ok(m, srv.output());
      const page = await b.newPage();
      await signIn(page, srv.url, m[1], m[2]);
      await page.waitForFunction(() => document.querySelectorAll('.ec-event').length >= 4);
      const text = await page.locator('#calendar').innerText();
      assert.match(text, /Calendly/);
      assert.match(text, /⚠ Double booking: Calendly \+ Meridian \(staff\)/);
      assert.match(await page.locator('#triage').innerText(), /Requests to triage \(1\)/);
      assert.equal(toWall(Date.now(), TZ).slice(0, 10), new URL(page.url()).hash.match(/date=([\d-]+)/)?.[1], 'opens on today in the clinic\'s zone');
      await screenshot(page, '00-demo-schedule');
    } finally {
      await b.close();
      await srv.stop();
      tmp.cleanup();
    }
  });
});
