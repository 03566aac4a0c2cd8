// Browser support for the web-app tests: Debian's Chromium driven by playwright-core (flags from the
// stack notes), the UI built from src/ui first (so a test never runs an old bundle), screenshots kept
// in test-artifacts/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from '../e2e/serve.ts';

export const CHROMIUM = process.env.MERIDIAN_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');

/** Undefined when Chromium is there; else why not. Under CI=true a missing browser is a failure, not a skip. */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `Chromium is not installed at ${CHROMIUM} (Debian: apt-get install chromium; or set MERIDIAN_CHROMIUM)`;
  if (process.env.CI) throw new Error(why);
  return why;
}

let built: Promise<void> | undefined;
/** Build src/ui into dist/ui once per test process (Vite, well under a few seconds). */
export function buildUi(): Promise<void> {
  built ??= (async () => {
    const { build } = await import('vite');
    await build({ configFile: join(ROOT, 'src/ui/vite.config.ts'), logLevel: 'error' });
  })();
  return built;
}

export interface Browser { ctx: BrowserContext; newPage(): Promise<Page>; close(): Promise<void> }

export async function launch(o: { timezoneId?: string; viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'meridian-pw-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: o.viewport ?? { width: 1366, height: 900 }, timezoneId: o.timezoneId, locale: 'en-GB',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(8_000);
  return {
    ctx,
    newPage: async () => ctx.pages()[0] ?? ctx.newPage(),
    close: async () => {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
