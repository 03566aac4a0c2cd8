// Connections and health: each connection's status, last successful sync and error, its jobs (waiting,
// retrying, dead), the dead-letter list with Retry, failed deliveries with Replay, reconnection
// needs, connections that need setup (a secret missing, with what to do), and mass changes held for approval. Each connection
// opens its own page (connect.ts); the owner adds one here.
import { api } from './api.ts';
import { announce, h } from './dom.ts';
import { canWrite, isOwner, practitionerName, zoneFor } from './state.ts';
import { addConnection, quickConnect } from './connect.ts';
import { formatInstant } from './time.ts';

interface Health {
  id: string; name: string; platform: string; platformName: string; role?: string; status: string; needsReconnect: boolean; lastError?: string;
  lastPollAt?: string; lastSuccessAt?: string; jobs: { waiting: number; retrying: number; dead: number }; failedDeliveries: number; waitingDeliveries?: number; webhook?: WebhookState; push?: PushState;
  setup?: Setup;
}
interface Setup { complete: boolean; missing: string[]; unsetEnv: { key: string; env: string }[] }
interface Job { id: string; kind: string; payload: Record<string, unknown>; attempts: number; maxAttempts: number; runAt: string; lastError?: string; updatedAt: string; state: string }
interface Held { id: string; connectionId: string; status: string; createdAt: string; summary: { cancellations: number; upcoming: number; listedLive: number; appointments: { id: string; start: string; practitionerId: string }[] } }

interface Retention { policy: Record<string, string>; lastRunAt?: string; lastPruned?: Record<string, number> }

/** What a retention period reads as ("30d" → "30 days"; "off" → "kept"). */
function period(v: string): string {
  const m = /^(\d+)([hdwy])$/.exec(v);
  if (!m) return v === '0' || v === 'off' ? 'kept without end' : v;
  const unit = { h: 'hour', d: 'day', w: 'week', y: 'year' }[m[2] as 'h' | 'd' | 'w' | 'y'];
  return `${m[1]} ${unit}${m[1] === '1' ? '' : 's'}`;
}

const connectionHref = (id: string) => `#/connection?id=${encodeURIComponent(id)}`;

const STATUS_TEXT: Record<string, string> = { active: 'Working', needs_setup: 'Needs setup', needs_reauth: 'Needs reconnecting', disabled: 'Disabled', error: 'Failing' };

/** What a connection that needs setup lacks, and what to do, in a line: unset environment variables first. */
export function setupAdvice(id: string, s: Setup): string {
  const unset = s.unsetEnv.filter((u) => s.missing.includes(u.key));
  const bare = s.missing.filter((k) => !unset.some((u) => u.key === k));
  const parts = [
    ...unset.map((u) => `set ${u.env} in the server's environment (${u.key}) and restart`),
    ...(bare.length ? [`store ${bare.join(', ')}: bin/meridian connections set-secret ${id} <key> (or PUT /api/v1/connections/${id}/secrets)`] : []),
  ];
  return `Missing ${s.missing.join(', ')}: ${parts.join('; ')}.`;
}

interface WebhookState { mode: 'managed' | 'manual' | 'none'; state: string; lastDeliveryAt?: string }
interface PushState { mode: 'push' | 'none'; on?: boolean; why?: string; calendars?: { calendar: string; state: string; expiresAt: string; error?: string }[] }

/** A calendar's push in words: each calendar live with its channel's expiry, or why push is off. */
export function pushText(p: PushState | undefined, when: (t?: string) => string): string[] {
  if (!p || p.mode !== 'push') return [];
  if (!p.on) return [`Push off: ${p.why ?? 'not available'}; changes are seen at the next check.`];
  if (!p.calendars?.length) return ['Push: no channel yet (opened within minutes of a calendar being picked).'];
  return p.calendars.map((c) => `${c.calendar || 'Default calendar'}: ${c.state === 'live' ? `live until ${when(c.expiresAt)}` : c.state === 'failed' ? `push failed (${c.error ?? 'unknown'}); checked by sweeps` : 'channel ended; renewing'}`);
}

/** How a connection's deliveries come in, in words: the subscription Meridian made, or the URL pasted by hand. */
export function webhookText(w: WebhookState | undefined, when: (t?: string) => string): string {
  if (!w || w.mode === 'none') return '—';
  const last = w.lastDeliveryAt ? `; last delivery ${when(w.lastDeliveryAt)}` : '';
  if (w.mode === 'managed') {
    // No subscription made by Meridian, but deliveries arrive: the webhook was set at the platform by hand.
    if (w.state === 'none' && w.lastDeliveryAt) return `Set by hand${last}`;
    const words: Record<string, string> = { active: 'Subscribed by Meridian', failed: 'Subscription failed', removed: 'Subscription removed', none: 'Not subscribed yet' };
    return `${words[w.state] ?? w.state}${last}`;
  }
  return w.lastDeliveryAt ? `Set by hand${last}` : 'Set by hand: waiting for the first delivery';
}

export async function connectionsPage(main: HTMLElement): Promise<void> {
  const tz = zoneFor();
  const when = (t?: string) => (t ? formatInstant(t, tz) : 'never');
  const body = h('div', {});
  const add = isOwner() ? h('button', { type: 'button', class: 'primary', onclick: () => void addConnection().catch((e: Error) => announce(e.message, 'error')) }, 'Add connection') : undefined;
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Connections and health'), add), body);
  // The owner's shortest way to a practitioner's calendar: one button per calendar provider (connect.ts).
  if (isOwner()) void quickConnect().then((q) => { if (q) body.before(q); }).catch(() => { /* the page works without it */ });

  async function action(path: string, done: string): Promise<void> {
    try {
      await api.post(path);
      announce(done);
    } catch (e) {
      announce((e as Error).message, 'error');
    }
    await render();
  }

  async function render(): Promise<void> {
    const [health, dead, pending, held, failed] = await Promise.all([
      api.get<{ items: Health[]; jobs: Record<string, number>; retention?: Retention }>('/health/connections'),
      api.get<{ items: Job[] }>('/jobs?state=dead&limit=200'),
      api.get<{ items: Job[] }>('/jobs?state=pending&limit=200'),
      api.get<{ items: Held[] }>('/held-changes?status=pending'),
      api.get<{ items: { id: string; connection_id: string; received_at: string; status: string; error: string | null }[] }>('/deliveries?status=failed&limit=50'),
    ]);
    const reconnect = health.items.filter((c) => c.needsReconnect);
    const setup = health.items.filter((c) => c.status === 'needs_setup');
    const retrying = pending.items.filter((j) => j.lastError);
    const c = health.jobs;
    const sections: HTMLElement[] = [];
    sections.push(h('section', { class: 'summary', 'aria-label': 'Summary' },
      h('div', { class: 'stat' }, h('strong', {}, String(c.pending ?? 0)), ' jobs waiting'),
      h('div', { class: 'stat' }, h('strong', {}, String(retrying.length)), ' retrying after an error'),
      h('div', { class: `stat ${c.dead ? 'bad' : ''}` }, h('strong', {}, String(c.dead ?? 0)), ' in dead letter'),
      h('div', { class: `stat ${reconnect.length ? 'bad' : ''}` }, h('strong', {}, String(reconnect.length)), ' need reconnecting'),
      h('div', { class: `stat ${setup.length ? 'bad' : ''}` }, h('strong', {}, String(setup.length)), ' need setup'),
      h('div', { class: `stat ${held.items.length ? 'warn' : ''}` }, h('strong', {}, String(held.items.length)), ' mass changes held')));
    if (reconnect.length) {
      sections.push(h('section', { class: 'card broken', 'aria-labelledby': 'reconnect' }, h('h2', { id: 'reconnect' }, 'Connections needing reconnection'),
        h('ul', {}, reconnect.map((r) => h('li', {}, h('strong', {}, r.name), ` (${r.platformName}): ${r.lastError ?? 'the authorisation was revoked or expired'}. `,
          h('a', { href: connectionHref(r.id) }, isOwner() ? `Reconnect ${r.name}` : `Open ${r.name}`))))));
    }
    sections.push(h('section', { 'aria-labelledby': 'held' }, h('h2', { id: 'held' }, 'Mass changes held for approval'),
      held.items.length ? h('ul', { class: 'held' }, held.items.map((x) => h('li', { class: 'card' },
        h('p', {}, h('strong', {}, `${x.summary.cancellations} cancellations`), ` from ${x.connectionId} (held ${when(x.createdAt)}; ${x.summary.upcoming} upcoming; the platform listed ${x.summary.listedLive} live bookings)`),
        h('details', {}, h('summary', {}, 'Appointments it would cancel'), h('ul', {}, x.summary.appointments.map((a) => h('li', {}, `${formatInstant(a.start, tz)} · ${practitionerName(a.practitionerId)}`)))),
        canWrite() ? h('div', { class: 'row' },
          h('button', { type: 'button', class: 'danger', onclick: () => void action(`/held-changes/${x.id}/approve`, 'Held cancellations applied') }, 'Approve (cancel them)'),
          h('button', { type: 'button', onclick: () => void action(`/held-changes/${x.id}/reject`, 'Held cancellations rejected: the appointments stay') }, 'Reject (keep them)')) : undefined)))
        : h('p', { class: 'muted' }, 'Nothing held.')));
    sections.push(h('section', { 'aria-labelledby': 'conns' }, h('h2', { id: 'conns' }, 'Connections'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'conns' },
        h('thead', {}, h('tr', {}, ['Connection', 'Kind', 'Status', 'Webhook / push', 'Last successful sync', 'Last error', 'Jobs waiting', 'Dead letter', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, health.items.map((r) => h('tr', { dataset: { connection: r.id } },
          h('th', { scope: 'row' }, h('a', { href: connectionHref(r.id) }, r.name), h('div', { class: 'muted' }, `${r.platformName} · ${r.id}`)),
          h('td', {}, r.role ?? '—'),
          h('td', {}, h('span', { class: `pill s-${r.status}` }, STATUS_TEXT[r.status] ?? r.status),
            r.status === 'needs_setup' && r.setup ? h('div', { class: 'muted setup' }, setupAdvice(r.id, r.setup)) : undefined),
          h('td', { class: r.webhook?.state === 'failed' ? 'err' : '' }, r.push?.mode === 'push' ? pushText(r.push, when).map((t) => h('div', { class: 'push' }, t)) : webhookText(r.webhook, when)),
          h('td', {}, when(r.lastSuccessAt)),
          h('td', { class: 'err' }, r.lastError ?? (r.failedDeliveries ? `${r.failedDeliveries} failed deliveries` : '—')),
          h('td', {}, `${r.jobs.waiting + r.jobs.retrying}${r.jobs.retrying ? ` (${r.jobs.retrying} retrying)` : ''}${r.waitingDeliveries ? ` · ${r.waitingDeliveries} deliveries to apply` : ''}`),
          h('td', { class: r.jobs.dead ? 'err' : '' }, String(r.jobs.dead)),
          h('td', {}, canWrite() && r.role === 'source' ? h('button', { type: 'button', onclick: () => void action(`/connections/${r.id}/sync`, `Sync of ${r.name} queued`) }, 'Sync now')
            : canWrite() && r.role === 'target' && r.platform !== 'ics-publish' ? h('button', { type: 'button', onclick: () => void action(`/connections/${r.id}/sweep`, `Check of ${r.name} queued`) }, 'Check calendar') : ''))))))));
    const jobRow = (j: Job) => h('tr', { dataset: { job: j.id } }, h('td', {}, h('code', {}, j.kind)), h('td', {}, String(j.payload.targetId ?? j.payload.connectionId ?? '—')),
      h('td', {}, `${j.attempts}/${j.maxAttempts}`), h('td', { class: 'err' }, j.lastError ?? '—'), h('td', {}, when(j.state === 'dead' ? j.updatedAt : j.runAt)),
      h('td', {}, canWrite() ? h('button', { type: 'button', onclick: () => void action(`/jobs/${j.id}/retry`, `Job ${j.kind} queued again`) }, j.state === 'dead' ? 'Retry' : 'Retry now') : ''));
    const jobTable = (id: string, title: string, jobs: Job[], whenLabel: string) => h('section', { 'aria-labelledby': id }, h('h2', { id }, `${title} (${jobs.length})`),
      jobs.length ? h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['Job', 'Connection', 'Attempts', 'Last error', whenLabel, ''].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, jobs.map(jobRow))))
        : h('p', { class: 'muted' }, 'None.'));
    sections.push(jobTable('dead', 'Dead letter', dead.items, 'Gave up at'), jobTable('retrying', 'Retrying', retrying, 'Next try'));
    sections.push(h('section', { 'aria-labelledby': 'deliveries' }, h('h2', { id: 'deliveries' }, `Failed webhook deliveries (${failed.items.length})`),
      failed.items.length ? h('ul', {}, failed.items.map((d) => h('li', {}, `${when(d.received_at)} · ${d.connection_id} · ${d.error ?? d.status} `,
        canWrite() ? h('button', { type: 'button', onclick: () => void action(`/deliveries/${d.id}/replay`, 'Delivery replayed') }, 'Replay') : ''))) : h('p', { class: 'muted' }, 'None.')));
    const r = health.retention;
    if (r) {
      const labels: Record<string, string> = { deliveries: 'Webhook and lead deliveries', leads: 'Decided leads', notifications: 'Message log', jobs: 'Finished jobs' };
      sections.push(h('section', { 'aria-labelledby': 'retention' }, h('h2', { id: 'retention' }, 'Retention of patient data'),
        h('ul', { class: 'retention' }, Object.entries(labels).map(([k, label]) => h('li', { dataset: { kind: k } }, `${label}: ${period(r.policy[k] ?? '')}`
          + (r.lastPruned?.[k] ? ` (${r.lastPruned[k]} deleted at the last run)` : '')))),
        h('p', { class: 'muted' }, r.lastRunAt ? `Pruning last ran ${when(r.lastRunAt)}. The audit log keeps only digests of personal values and is not pruned.` : 'Pruning has not run yet (it runs a minute after the server starts, then hourly).')));
    }
    sections.push(h('p', {}, h('button', { type: 'button', onclick: () => void render() }, 'Refresh')));
    body.replaceChildren(...sections);
  }
  await render();
}
