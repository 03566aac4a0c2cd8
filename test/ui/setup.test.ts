// The setup page in Debian's Chromium against the real `bin/meridian serve` (issue 17): the owner adds a
// service and a practitioner with working hours, services and a calendar without touching YAML, reloads and
// finds them; practitioners the configuration file declares are shown read-only, badged with the file's path;
// the front desk sees the page without any edit button.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { buildUi, chromiumMissing, launch, screenshot, type Browser } from './browser.ts';
import { GOOGLE_CAL, startClinic, type Clinic } from './clinic.ts';

const skip = chromiumMissing();
const PW = 'Lotus-clinic-2030!';

async function signIn(page: Page, url: string, email: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('body[data-ready="schedule"]');
}

describe('the setup page in a browser', { skip }, () => {
  let c: Clinic;
  let b: Browser;
  let page: Page;

  before(async () => {
    await buildUi();
    c = await startClinic();
    for (const [email, role] of [['owner@lotusclinic.example', 'owner'], ['desk@lotusclinic.example', 'front_desk']] as const) {
      const r = await c.addUser(email, role, PW);
      assert.equal(r.code, 0, r.out);
    }
    b = await launch();
    page = await b.newPage();
  });
  after(async () => {
    await b?.close();
    await c?.close();
  });

  test('the owner adds a service and a practitioner with hours; after a reload both are there; file rows are read-only', async () => {
    await signIn(page, c.srv.url, 'owner@lotusclinic.example');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Setup' }).click();
    await page.waitForSelector('body[data-ready="setup"]');

    await page.getByRole('button', { name: 'Add a service' }).click();
    let dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.getByLabel('Service name').fill('Cupping therapy');
    await dialog.getByLabel('Minutes').fill('30');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('tr[data-service="cupping-therapy"]').waitFor();
    assert.match(await page.locator('#status-line').innerText(), /Service Cupping therapy added/);

    await page.getByRole('button', { name: 'Add a practitioner' }).click();
    dialog = page.getByRole('dialog', { name: 'New practitioner' });
    await dialog.getByLabel('Name', { exact: true }).fill('Mei Chen');
    await dialog.getByLabel('E-mail').fill('mei@lotusclinic.example');
    await dialog.getByRole('group', { name: 'Works at' }).getByLabel('Lakeview').check();
    await dialog.getByRole('group', { name: 'Services offered' }).getByLabel('Cupping therapy').check();
    // A range the wrong way round is refused, and the form says why (role=alert), keeping what was typed.
    await dialog.getByLabel('Monday').fill('17:00-09:00');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'ends after it starts' }).waitFor();
    await dialog.getByLabel('Monday').fill('09:00-12:00, 13:00-17:00');
    await dialog.getByLabel('Thursday').fill('10:00-18:00');
    await dialog.getByRole('button', { name: 'Add a calendar' }).click();
    await dialog.getByLabel('Calendar connection').selectOption('google');
    await dialog.getByLabel('Calendar', { exact: true }).fill('mei@lotusclinic.example');
    await dialog.getByLabel('What is written there').selectOption('busy');
    await screenshot(page, 'setup-01-new-practitioner');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });

    await page.reload();
    await page.waitForSelector('body[data-ready="setup"]');
    const mei = page.locator('tr[data-practitioner="mei-chen"]');
    await mei.waitFor();
    const text = await mei.innerText();
    assert.match(text, /Mei Chen/);
    assert.match(text, /Lakeview/);
    assert.match(text, /Cupping therapy/);
    assert.match(text, /Mon 09:00-12:00, 13:00-17:00 · Thu 10:00-18:00/);
    assert.match(text, /Dr\. Okafor's Google Calendar · mei@lotusclinic\.example · busy/);
    assert.equal(await mei.getByRole('button', { name: 'Edit Mei Chen' }).count(), 1);
    assert.match(await page.locator('tr[data-service="cupping-therapy"]').innerText(), /Cupping therapy\s+30 min/);
    const stored = (await c.api('GET', '/practitioners')).body.items.find((p: { id: string }) => p.id === 'mei-chen');
    assert.deepEqual(stored.hours, { mon: ['09:00-12:00', '13:00-17:00'], thu: ['10:00-18:00'] });
    assert.deepEqual(stored.targets, [{ connection: 'google', calendar: 'mei@lotusclinic.example', privacy: 'busy' }]);

    // Okafor comes from the configuration file: read-only, badged with the file, no edit or remove button.
    const okafor = page.locator('tr[data-practitioner="okafor"]');
    assert.match(await okafor.locator('.b-provisioned').innerText(), /^From \/.*\/meridian-ui-[^/]+\/clinic\.yaml$/, 'the file\'s full path');
    assert.equal(await okafor.getByRole('button').count(), 0);
    assert.match(await okafor.innerText(), new RegExp(`${GOOGLE_CAL.replace('.', '\\.')}`));
    assert.equal(await page.locator('li[data-location="lakeview"]').getByRole('button').count(), 0, 'a provisioned location has no buttons');
    await screenshot(page, 'setup-02-after-reload');
  });

  test('the front desk sees the setup read-only', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForSelector('form.signin');
    await signIn(page, c.srv.url, 'desk@lotusclinic.example');
    await page.goto(`${c.srv.url}/#/setup`);
    await page.waitForSelector('body[data-ready="setup"]');
    await page.locator('tr[data-practitioner="mei-chen"]').waitFor();
    assert.equal(await page.locator('main').getByRole('button').count(), 0);
    assert.equal(await page.getByRole('link', { name: /Download the configuration/ }).count(), 0);
  });
});
