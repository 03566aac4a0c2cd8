// Links into the web app carry their state in the URL (#/schedule?date=…&view=…&practitioner=…).
// A link is input from anyone: a date like `1` or `97` once kept the calendar busy for over 30 s, so the
// router checks every parameter and falls back to defaults, saying so in text (never parsed as HTML).
// A page that hangs must make these tests fail, not hang them: every wait on the page is bounded.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { buildUi, chromiumMissing, launch, type Browser } from './browser.ts';
import { startClinic, TZ, type Clinic } from './clinic.ts';
import { todayIn } from '../../src/ui/time.ts';
import { oneOf, parseDate, parseWallTime } from '../../src/ui/route.ts';

const skip = chromiumMissing();
const PW = 'Lotus-clinic-2030!';
const NOTICE = 'That link\'s date was not understood; showing today.';

/** Resolve within `ms` or fail with `what`: a hung renderer never answers, and the test must not wait for it forever. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('the checks of a link\'s parameters', () => {
  test('a date is a real calendar day between 2000 and 2100, written YYYY-MM-DD', () => {
    for (const ok of ['2026-03-09', '2024-02-29', '2000-01-01', '2100-12-31']) assert.equal(parseDate(ok), ok);
    for (const bad of ['1', '97', '<img src=x onerror=alert(1)>', '2026-02-30', '2025-02-29', '2026-13-01', '2026-00-10', '2026-04-31',
      '1999-12-31', '2101-01-01', '2026-1-5', '20260105', ' 2026-03-09', '2026-03-09T00:00', '', null, undefined]) assert.equal(parseDate(bad), undefined, String(bad));
  });
  test('a from/to is a real date and time', () => {
    for (const ok of ['2026-03-09T09:30', '2026-03-09T23:59:59']) assert.equal(parseWallTime(ok), ok);
    for (const bad of ['1', '2026-03-09', '2026-03-09T24:00', '2026-03-09T09:60', '2026-02-30T09:00', '<b>']) assert.equal(parseWallTime(bad), undefined, bad);
  });
  test('an id is one the clinic has', () => {
    assert.equal(oneOf('okafor', ['okafor', 'brennan']), 'okafor');
    assert.equal(oneOf('nobody', ['okafor']), undefined);
    assert.equal(oneOf(null, ['okafor']), undefined);
  });
});

describe('links with odd parameters', { skip }, () => {
  let c: Clinic;

  before(async () => {
    await buildUi();
    c = await startClinic();
    const r = await c.addUser('desk@lotusclinic.example', 'owner', PW);
    assert.equal(r.code, 0, r.out);
  });
  after(async () => {
    await c?.close();
  });

  /**
   * A fresh browser per link (a hung renderer could be shared by the next page of the same site), signed
   * in, then the link opened as a new document. Returns the page and the dialogs (alert…) that fired.
   */
  async function open(hash: string, fn: (page: Page, dialogs: string[]) => Promise<void>, ready = 'schedule'): Promise<void> {
    const b: Browser = await launch();
    try {
      const page = await b.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); void d.dismiss().catch(() => {}); });
      await page.goto(c.srv.url);
      await page.getByLabel('E-mail').fill('desk@lotusclinic.example');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForSelector('body[data-ready="schedule"]');
      await within(10_000, 'opening the link', page.goto('about:blank').then(() => page.goto(`${c.srv.url}/${hash}`, { waitUntil: 'commit' })));
      await within(10_000, `the ${ready} page rendered`, page.waitForSelector(`body[data-ready="${ready}"]`, { timeout: 9_000 }));
      // Give the calendar a moment to lay out (where the old code spun), then ask the page something trivial.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await within(2_000, 'the page answering page.evaluate(() => 1)', page.evaluate(() => 1)), 1);
      await fn(page, dialogs);
    } finally {
      await within(10_000, 'closing the browser', b.close()).catch(() => {});
    }
  }

  const bad = ['1', '97', '<img src=x onerror=alert(1)>', '2026-02-30'];
  for (const date of bad) {
    test(`#/schedule?date=${date} stays responsive, shows today and says the date was not understood`, async () => {
      await open(`#/schedule?${new URLSearchParams({ date, view: 'day' })}`, async (page, dialogs) => {
        const today = todayIn(TZ);
        // The calendar writes the date it shows back into the link.
        await within(5_000, 'the link rewritten to today', page.waitForFunction((d) => location.hash.includes(`date=${d}`), today, { timeout: 4_500 }));
        const notice = page.locator('#route-notice');
        assert.equal((await within(2_000, 'the notice', notice.innerText())).trim(), NOTICE);
        // Shown as text: no element was made from the link, and nothing ran.
        assert.equal(await within(2_000, 'counting images', page.locator('main img').count()), 0);
        assert.equal(await within(2_000, 'reading the notice HTML', notice.evaluate((el) => el.children.length)), 0);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(dialogs, []);
      });
    });
  }

  test('a good date is kept, with no notice', async () => {
    await open(`#/schedule?date=${c.day}&view=week`, async (page) => {
      await within(5_000, 'the link keeping its date', page.waitForFunction(() => location.hash.includes('view=week') && /date=\d{4}-\d\d-\d\d/.test(location.hash), undefined, { timeout: 4_500 }));
      assert.equal(await page.locator('#route-notice').count(), 0);
      const heads = await page.locator('#calendar .ec-header').innerText();
      // The week of c.day is shown: its day of the month is among the headings.
      assert.ok(heads.includes(String(Number(c.day.slice(8, 10)))), heads);
    });
  });

  test('unknown view, practitioner, location and service fall back to the defaults', async () => {
    const q = new URLSearchParams({ date: c.day, view: '<b>x</b>', practitioner: 'nobody', location: 'mars', service: '"><img src=x onerror=alert(2)>', cancelled: 'yes' });
    await open(`#/schedule?${q}`, async (page, dialogs) => {
      await within(5_000, 'the link rewritten', page.waitForFunction(() => location.hash.includes('view=day'), undefined, { timeout: 4_500 }));
      const hash = decodeURIComponent(await page.evaluate(() => location.hash));
      for (const gone of ['nobody', 'mars', 'img', 'cancelled']) assert.ok(!hash.includes(gone), `${gone} dropped from ${hash}`);
      assert.equal(await page.locator('select[name=practitioner]').inputValue(), '');
      assert.equal(await page.locator('select[name=location]').inputValue(), '');
      assert.equal(await page.locator('select[name=service]').inputValue(), '');
      assert.equal(await page.locator('input[name=cancelled]').isChecked(), false);
      // All three practitioners' columns: the unknown practitioner did not empty the calendar.
      const heads = await page.locator('#calendar .ec-header').innerText();
      for (const name of ['Dr. Ada Okafor', 'Siobhan Brennan, LMT', 'Dr. Kenji Nakamura']) assert.ok(heads.includes(name), `${name} column in ${heads}`);
      assert.ok((await page.locator('#route-notice').innerText()).includes('not understood'));
      assert.deepEqual(dialogs, []);
    });
  });

  test('the audit page drops from/to that are not date-times and keeps free-text filters as text', async () => {
    const q = new URLSearchParams({ from: '1', to: '<img src=x onerror=alert(3)>', patient: '<img src=x onerror=alert(4)>' });
    await open(`#/audit?${q}`, async (page, dialogs) => {
      assert.equal(await page.locator('input[name=from]').inputValue(), '');
      assert.equal(await page.locator('input[name=to]').inputValue(), '');
      assert.equal(await page.locator('input[name=patient]').inputValue(), '<img src=x onerror=alert(4)>');
      assert.equal(await page.locator('main img').count(), 0);
      assert.ok((await page.locator('#route-notice').innerText()).includes('not understood'));
      assert.deepEqual(dialogs, []);
    }, 'audit');
  });
});
