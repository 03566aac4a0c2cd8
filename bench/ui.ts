// Web-app render time: the week view of 20 practitioners with 1,000 appointments, in Debian's Chromium
// against the real `bin/meridian serve`. Reports, per run, the time from opening the page to the
// appointments drawn (sign-in session already there), and the app's own split: the API fetch and the
// calendar render (two frames after the events were handed over). Run alone: node --import tsx bench/ui.ts
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfig } from '../src/config/apply.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Appointment } from '../src/domain/types.ts';
import { openHub } from '../src/engine/hub/hub.ts';
import { createUser } from '../src/http/auth.ts';
import { saveAppointment } from '../src/store/repo.ts';
import { addDays, fromWall, todayIn } from '../src/ui/time.ts';
import { buildUi, CHROMIUM, launch } from '../test/ui/browser.ts';
import { serve } from '../test/e2e/serve.ts';

const PRACTITIONERS = 20;
const APPOINTMENTS = 1000;
const RUNS = 5;
const TZ = 'America/Chicago';
const PW = 'bench-password-123';

/** A week of appointments spread over 20 practitioners, 08:00–18:00, some overlapping (conflicts drawn too). */
async function seed(dir: string): Promise<string> {
  const yaml = `clinic: { id: bench, name: Bench, timeZone: ${TZ} }
locations: [{ id: main, name: Main, timeZone: ${TZ} }]
services: [{ id: s1, name: Acupuncture, durationMinutes: 45 }]
practitioners:
${Array.from({ length: PRACTITIONERS }, (_, i) => `  - { id: p${String(i).padStart(2, '0')}, name: Practitioner ${i + 1}, locations: [main] }`).join('\n')}
`;
  const hub = await openHub({ dataDir: dir, env: { LOG_LEVEL: 'silent' } });
  const cfg = parseConfig(yaml, 'bench.yaml');
  await applyConfig(hub, cfg.config, cfg.hash, 'bench');
  const monday = (() => { let d = addDays(todayIn(TZ), 7); while (new Date(`${d}T12:00:00Z`).getUTCDay() !== 1) d = addDays(d, 1); return d; })();
  const now = new Date().toISOString();
  await hub.store.db.transaction().execute(async (trx) => {
    for (let n = 0; n < APPOINTMENTS; n++) {
      const p = n % PRACTITIONERS;
      const slot = Math.floor(n / PRACTITIONERS); // 50 per practitioner: ~7 a day over 7 days
      const day = addDays(monday, slot % 7);
      const minutes = 8 * 60 + (Math.floor(slot / 7) * 75) % (10 * 60);
      const start = fromWall(`${day}T${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`, TZ);
      const a: Appointment = {
        id: randomUUID(), clinicId: 'bench', locationId: 'main', practitionerId: `p${String(p).padStart(2, '0')}`, serviceId: 's1',
        patient: { name: `Patient ${n}`, email: `p${n}@example.org` }, start, end: new Date(Date.parse(start) + 45 * 60_000).toISOString().replace('.000Z', 'Z'),
        timeZone: TZ, status: n % 17 === 0 ? 'requested' : 'booked', origin: { platform: n % 3 ? 'manual' : 'calendly', connectionId: n % 3 ? 'manual' : 'calendly', externalId: `x${n}` },
        revision: 1, conflicts: [], createdAt: now, updatedAt: now,
      };
      await saveAppointment(trx, a, true);
    }
  });
  await createUser(hub, { email: 'owner@bench.example', role: 'owner', password: PW }, 'bench');
  await hub.store.close();
  return monday;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function uiBenchRows(): Promise<string[]> {
  if (!existsSync(CHROMIUM)) return [`(web-app render not measured: no Chromium at ${CHROMIUM})`];
  await buildUi();
  const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-ui-'));
  const monday = await seed(dir);
  const srv = await serve(['serve', '--data', dir]);
  const b = await launch({ viewport: { width: 1920, height: 1080 } });
  try {
    const page = await b.newPage();
    await page.goto(srv.url);
    await page.getByLabel('E-mail').fill('owner@bench.example');
    await page.getByLabel('Password').fill(PW);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('body[data-ready="schedule"]');
    const total: number[] = [];
    const fetchMs: number[] = [];
    const renderMs: number[] = [];
    let events = 0;
    for (let i = 0; i < RUNS + 1; i++) {
      const t0 = Date.now();
      await page.goto(`${srv.url}/?r=${i}#/schedule?date=${monday}&view=week`);
      await page.waitForFunction((n) => (document.body.dataset.schedule ?? '').endsWith(`|${n}`), APPOINTMENTS, { timeout: 30_000 });
      const s = await page.evaluate('window.__schedule') as { fetchMs: number; renderMs: number; events: number };
      if (i === 0) continue; // the first load warms the server's and the browser's caches
      total.push(Date.now() - t0);
      fetchMs.push(s.fetchMs);
      renderMs.push(s.renderMs);
      events = await page.locator('.ec-event').count();
    }
    return [
      `| Web app: week view, ${PRACTITIONERS} practitioners × ${APPOINTMENTS} appointments (${events} drawn), Chromium, ${RUNS} runs, load average ${loadavg()[0].toFixed(1)} | median ms | max ms |`,
      '|---|---:|---:|',
      `| page opened → appointments drawn (includes loading the app) | ${median(total)} | ${Math.max(...total)} |`,
      `| API fetch of the week | ${median(fetchMs).toFixed(0)} | ${Math.max(...fetchMs).toFixed(0)} |`,
      `| calendar render (events handed over → painted) | ${median(renderMs).toFixed(0)} | ${Math.max(...renderMs).toFixed(0)} |`,
    ];
  } finally {
    await b.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${(await uiBenchRows()).join('\n')}\n`);
