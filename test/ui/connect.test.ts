// Connecting from the web app (issue 17) in Debian's Chromium against the real `bin/meridian serve`: the
// owner adds a CalDAV connection to a real Radicale from the Connections page, wrong credentials are refused
// with the server's answer next to the form and nothing stored, right ones are "Checked and saved", the
// account's calendars are listed and one is chosen for a practitioner (the binding holds it, the other
// bindings kept), Test connection lists its checks, and Remove (after a confirmation) takes it away; a
// platform set up by hand shows its webhook URL and steps and turns to "Receiving" once a delivery arrives;
// the front desk sees the state but no setup actions; a link's id is checked before use.
// Screenshots are saved in test-artifacts/ (gitignored).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { buildUi, chromiumMissing, launch, screenshot, type Browser } from './browser.ts';
import { startClinic, type Clinic } from './clinic.ts';
import { eventually } from '../e2e/serve.ts';
import { createAccount, makeCalendar } from 'tsdav';
import { radicaleMissing, startRadicale, type Radicale } from '../fakes/radicale.ts';
import { idFrom, roleGroup } from '../../src/ui/connect.ts';
import { parseId } from '../../src/ui/route.ts';

const skip = chromiumMissing() ?? radicaleMissing();
const PW = 'Lotus-clinic-2030!';

async function signIn(page: Page, url: string, email: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('body[data-ready="schedule"]');
}

async function open(page: Page, url: string, hash: string, ready: string): Promise<void> {
  await page.goto(`${url}/${hash}`);
  await page.reload();
  await page.waitForSelector(`body[data-ready="${ready}"]`);
}

describe('the pieces a connection\'s page is made of', () => {
  test('an id from a name: lower case, no spaces or accents, not one already taken', () => {
    assert.equal(idFrom('Radicale calendars', 'caldav', new Set()), 'radicale-calendars');
    assert.equal(idFrom('Cabinet Élodie Müller', 'caldav', new Set()), 'cabinet-elodie-muller');
    assert.equal(idFrom('Google', 'google-calendar', new Set(['google', 'google-2'])), 'google-3');
    assert.equal(idFrom('  ***  ', 'caldav', new Set()), 'caldav');
    const long = idFrom('x'.repeat(200), 'p', new Set());
    assert.ok(parseId(long), 'always a valid id');
  });
  test('an id in a link is one the API could have made', () => {
    for (const ok of ['google', 'radicale-calendars', 'a.b_c-1']) assert.equal(parseId(ok), ok);
    for (const bad of ['', '-x', '../x', 'a/b', '<img src=x onerror=alert(1)>', 'x'.repeat(64), null, undefined]) assert.equal(parseId(bad), undefined, String(bad));
  });
  test('platforms are grouped by what they do', () => {
    assert.equal(roleGroup({ role: 'source' }), 'Booking sources');
    assert.equal(roleGroup({ role: 'target', kind: 'calendar' }), 'Calendars');
    assert.equal(roleGroup({ role: 'target', kind: 'crm' }), 'CRMs');
    assert.equal(roleGroup({ role: 'lead-form' }), 'Lead forms');
  });
});

describe('connecting from the web app', { skip }, () => {
  let c: Clinic;
  let rad: Radicale;
  let b: Browser;
  let page: Page;

  before(async () => {
    await buildUi();
    [c, rad] = await Promise.all([startClinic(), startRadicale()]);
    // The Radicale account's calendars: one to write to (Radicale makes none by itself).
    const headers = { authorization: `Basic ${Buffer.from(`${rad.username}:${rad.password}`).toString('base64')}` };
    const account = await createAccount({ account: { serverUrl: `${rad.url}/`, accountType: 'caldav' }, headers });
    await makeCalendar({ url: `${account.homeUrl}brennan/`, headers, props: { 'd:displayname': 'Brennan appointments', 'c:supported-calendar-component-set': { 'c:comp': { _attributes: { name: 'VEVENT' } } } } });
    for (const [email, role] of [['owner@lotusclinic.example', 'owner'], ['desk@lotusclinic.example', 'front_desk']] as const) {
      const r = await c.addUser(email, role, PW);
      assert.equal(r.code, 0, r.out);
    }
    b = await launch();
    page = await b.newPage();
    await signIn(page, c.srv.url, 'owner@lotusclinic.example');
  });
  after(async () => {
    await b?.close();
    await c?.close();
    await rad?.stop();
  });

  const statusLine = (text: string | RegExp) => page.locator('#status-line').filter({ hasText: text }).waitFor();

  test('the owner adds a CalDAV connection; wrong credentials are refused in words, right ones are checked and saved', async () => {
    await open(page, c.srv.url, '#/connections', 'connections');
    await page.getByRole('button', { name: 'Add connection' }).click();
    const dlg = page.getByRole('dialog', { name: 'Add a connection' });
    await dlg.getByLabel('Platform').selectOption('caldav');
    await dlg.getByLabel('Name').fill('Radicale calendars');
    assert.match(await dlg.innerText(), /Its id will be “radicale-calendars”/);
    await dlg.getByLabel(/Server address/).fill(rad.url);
    await screenshot(page, 'c01-add-connection');
    await dlg.getByRole('button', { name: 'Add connection' }).click();
    await page.waitForSelector('body[data-ready="connection"]');
    assert.match(page.url(), /#\/connection\?id=radicale-calendars$/);
    assert.match(await page.locator('.conn-status').innerText(), /Needs setup — still needed: credentials: Username/);

    await page.getByLabel(/^Username/).fill(rad.username);
    await page.getByLabel(/^Password/).fill('not-the-password');
    await page.getByRole('button', { name: 'Check and save' }).click();
    const refused = page.locator('form.credentials [role="alert"]');
    await refused.filter({ hasText: /refused/ }).waitFor();
    assert.match(await refused.innerText(), /Not saved: CalDAV \(iCloud and other servers\) refused them\./);
    await screenshot(page, 'c02-credentials-refused');
    const conn = (await c.api('GET', '/connections')).body.items.find((x: { id: string }) => x.id === 'radicale-calendars');
    assert.equal(conn.secrets.stored, false, 'nothing stored after a refusal');
    assert.equal(await page.getByLabel(/^Password/).inputValue(), '', 'a refused password is not kept in the form');

    await page.getByLabel(/^Username/).fill(rad.username);
    await page.getByLabel(/^Password/).fill(rad.password);
    await page.getByRole('button', { name: 'Check and save' }).click();
    await statusLine('Checked and saved');
    const body = await page.locator('#main').innerText();
    assert.ok(!body.includes(rad.password), 'the password is never shown back');
  });

  test('the account\'s calendars are listed; the one chosen for a practitioner is their binding, the others kept', async () => {
    const cals = page.locator('[data-section="calendars"]');
    await cals.locator('table.calendars').waitFor();
    const sel = cals.getByLabel('Siobhan Brennan, LMT');
    const options = await sel.locator('option').allInnerTexts();
    assert.ok(options.length >= 2, `calendars listed: ${options.join(' | ')}`);
    const value = await sel.locator('option', { hasText: 'Brennan appointments' }).getAttribute('value');
    assert.ok(value, `Brennan's calendar listed: ${options.join(' | ')}`);
    assert.equal(await sel.inputValue(), value, 'suggested by its name');
    await sel.selectOption(value);
    await screenshot(page, 'c03-calendars');
    await cals.getByRole('button', { name: 'Save calendars' }).click();
    await statusLine(/Calendars saved/);
    const brennan = (await c.api('GET', '/practitioners')).body.items.find((x: { id: string }) => x.id === 'brennan');
    assert.deepEqual(brennan.targets, [{ connection: 'feeds' }, { connection: 'radicale-calendars', calendar: value }]);
    await page.reload();
    await page.waitForSelector('body[data-ready="connection"]');
    await page.locator('[data-section="calendars"] table.calendars').waitFor();
    assert.equal(await page.locator('[data-section="calendars"]').getByLabel('Siobhan Brennan, LMT').inputValue(), value, 'shown as saved');
    assert.match(await page.locator('.conn-status').innerText(), /Working/);
  });

  test('Test connection lists its checks in words', async () => {
    await page.getByRole('button', { name: 'Test connection' }).click();
    const checks = page.locator('ul.checks li');
    await checks.first().waitFor();
    const texts = await checks.allInnerTexts();
    assert.ok(texts.length >= 1);
    for (const t of texts) assert.match(t, /^[✓✗]/, t);
    await screenshot(page, 'c04-test');
  });

  test('a form that cannot be told by API shows its URL and steps, and turns to Receiving after the first delivery', async () => {
    await open(page, c.srv.url, '#/connections', 'connections');
    await page.getByRole('button', { name: 'Add connection' }).click();
    const dlg = page.getByRole('dialog', { name: 'Add a connection' });
    await dlg.getByLabel('Platform').selectOption('jotform');
    await dlg.getByLabel('Name').fill('Website form');
    await dlg.getByRole('button', { name: 'Add connection' }).click();
    await page.waitForSelector('body[data-ready="connection"]');
    const hook = page.locator('[data-section="webhook"][data-mode="manual"]');
    await hook.waitFor();
    const url = await hook.getByLabel('Webhook URL').inputValue();
    assert.match(url, /\/leads\/website-form\?token=[\w-]{20,}$/, 'the exact URL with its token');
    assert.ok(await hook.getByRole('button', { name: 'Copy webhook url' }).isVisible());
    assert.ok((await hook.locator('ol.steps li').count()) >= 1, 'the steps');
    assert.match(await hook.locator('.delivery-state').innerText(), /Waiting for the first delivery/);
    assert.doesNotMatch(await page.locator('.conn-status').innerText(), /Needs setup/, 'the URL token is Meridian\'s own: nothing to type');
    assert.equal(await page.getByLabel(/URL token/).count(), 0);
    await screenshot(page, 'c06-manual-webhook');
    const rawRequest = JSON.stringify({ q3_fullName: { first: 'Priya', last: 'Nair' }, q4_email: 'priya.nair@example.com', q8_whenWould: 'next Monday 3pm' });
    const res = await fetch(`${c.srv.url}${new URL(url).pathname}${new URL(url).search}`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ formID: '1', submissionID: '5946671290123456789', rawRequest }).toString(),
    });
    assert.ok(res.status < 300, `the delivery was accepted: ${res.status} ${await res.text()}`);
    await hook.locator('.delivery-state', { hasText: /Receiving \(last at / }).waitFor({ timeout: 12_000 });
    await statusLine(/Receiving from Jotform/);
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.locator('ul.checks li[data-check="delivery"]').waitFor();
    assert.match(await page.locator('ul.checks li[data-check="delivery"]').innerText(), /^✓[\s\S]*Last delivery received/);
  });

  test('the front desk sees the connection\'s state but no setup actions', async () => {
    const b2 = await launch();
    try {
      const p2 = await b2.newPage();
      await signIn(p2, c.srv.url, 'desk@lotusclinic.example');
      await open(p2, c.srv.url, '#/connections', 'connections');
      assert.equal(await p2.getByRole('button', { name: 'Add connection' }).count(), 0);
      await p2.getByRole('link', { name: 'Radicale calendars' }).click();
      await p2.waitForSelector('body[data-ready="connection"]');
      assert.match(await p2.locator('.conn-status').innerText(), /Working/);
      for (const name of ['Check and save', 'Save calendars', 'Test connection', 'Remove connection']) assert.equal(await p2.getByRole('button', { name }).count(), 0, name);
      assert.match(await p2.locator('#main').innerText(), /Only the clinic's owner can connect accounts/);
    } finally {
      await b2.close();
    }
  });

  test('a link with an id that is not one shows a notice, not the page', async () => {
    await open(page, c.srv.url, '#/connection?id=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E', 'connection');
    assert.equal(await page.locator('#route-notice').innerText(), 'That link did not name a connection.');
    assert.equal(await page.locator('#main img').count(), 0);
  });

  test('removing asks first, says what happens, and keeps the history', async () => {
    await open(page, c.srv.url, '#/connection?id=radicale-calendars', 'connection');
    await page.getByRole('button', { name: 'Remove connection' }).click();
    const dlg = page.getByRole('dialog', { name: 'Remove Radicale calendars?' });
    assert.match(await dlg.innerText(), /history is kept/);
    await dlg.getByRole('button', { name: 'Keep it' }).click();
    await dlg.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Remove connection' }).click();
    await screenshot(page, 'c05-remove');
    await dlg.getByRole('button', { name: 'Remove connection' }).click();
    await page.waitForSelector('body[data-ready="connections"]');
    await statusLine('Radicale calendars removed');
  });
});
