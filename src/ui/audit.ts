// The audit log: filters (appointment, patient, actor, action, time), before/after of each entry,
// CSV and JSON Lines export of what is filtered, and the hash chain's verification shown up top.
import { api, ApiError, qs } from './api.ts';
import { field, h, routeNotice } from './dom.ts';
import { parseWallTime, text, unclear } from './route.ts';
import { zoneFor } from './state.ts';
import { formatInstant, fromWall } from './time.ts';

interface Entry { seq: number; at: string; actor: string; action: string; entityType: string; entityId: string; before?: Record<string, unknown>; after?: Record<string, unknown>; meta?: Record<string, unknown> }

const ACTIONS = ['appointment.*', 'appointment.created', 'appointment.rescheduled', 'appointment.cancelled', 'appointment.confirmed', 'appointment.no_show', 'appointment.completed',
  'appointment.double_booked', 'source.*', 'staff.*', 'staff.signed_in', 'connection.*', 'poll.*'];

function show(v: unknown): string {
  if (v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Before and after side by side, changed fields first and marked. */
function diff(e: Entry): HTMLElement {
  const keys = [...new Set([...Object.keys(e.before ?? {}), ...Object.keys(e.after ?? {})])];
  const changed = (k: string) => JSON.stringify(e.before?.[k]) !== JSON.stringify(e.after?.[k]);
  keys.sort((a, b) => Number(changed(b)) - Number(changed(a)));
  if (!keys.length) return h('p', { class: 'muted' }, e.meta ? `Details: ${JSON.stringify(e.meta)}` : 'No before/after recorded for this entry.');
  return h('div', {},
    h('table', { class: 'diff' }, h('caption', { class: 'visually-hidden' }, `Before and after of entry ${e.seq}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
      h('tbody', {}, keys.map((k) => h('tr', { class: changed(k) ? 'changed' : '' },
        h('th', { scope: 'row' }, k, changed(k) ? h('span', { class: 'visually-hidden' }, ' (changed)') : ''), h('td', {}, show(e.before?.[k])), h('td', {}, show(e.after?.[k])))))),
    e.meta ? h('p', { class: 'muted' }, `Details: ${JSON.stringify(e.meta)}`) : undefined);
}

export async function auditPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const tz = zoneFor();
  // The link's filters: free text stays text (an input's value, never HTML, bounded in length); from and to
  // must be real date-times, else they are left out (a bad one would make every search fail) and the notice says so.
  const from = parseWallTime(params.get('from'));
  const to = parseWallTime(params.get('to'));
  const inputs = {
    entity: h('input', { type: 'text', name: 'entity', value: text(params.get('entity')), placeholder: 'appointment id' }),
    patient: h('input', { type: 'search', name: 'patient', value: text(params.get('patient')), placeholder: 'name or e-mail' }),
    actor: h('input', { type: 'text', name: 'actor', value: text(params.get('actor')), placeholder: 'user:…, api:…, worker:* ' }),
    action: h('input', { type: 'text', name: 'action', value: text(params.get('action')), list: 'audit-actions', placeholder: 'appointment.*' }),
    from: h('input', { type: 'datetime-local', name: 'from', value: from ?? '' }),
    to: h('input', { type: 'datetime-local', name: 'to', value: to ?? '' }),
  };
  const badTimes = (['from', 'to'] as const).filter((k) => unclear(params, k, k === 'from' ? from : to));
  const verify = h('section', { class: 'verify card', 'aria-live': 'polite', 'aria-labelledby': 'verify-title' });
  const tbody = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Load older entries');
  const count = h('p', { class: 'muted', role: 'status' });
  const csv = h('a', { class: 'button', download: '' }, 'Export CSV');
  const jsonl = h('a', { class: 'button', download: '' }, 'Export JSON Lines');
  const form = h('form', { class: 'toolbar', 'aria-label': 'Audit filters' },
    field('Appointment', inputs.entity), field('Patient', inputs.patient), field('Actor', inputs.actor), field('Action', inputs.action),
    field('From', inputs.from, tz), field('To', inputs.to, tz),
    h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Filter'), h('button', { type: 'reset' }, 'Clear')));
  main.append(h('h1', {}, 'Audit log'),
    badTimes.length ? routeNotice(`That link's ${badTimes.join(' and ')} time was not understood and was left out.`) : '', verify, form, h('div', { class: 'row exports' }, csv, jsonl), count,
    h('div', { class: 'table-wrap' }, h('table', { class: 'audit' }, h('caption', { class: 'visually-hidden' }, 'Audit entries, newest first'),
      h('thead', {}, h('tr', {}, ['#', 'When', 'Actor', 'Action', 'About', ''].map((c) => h('th', { scope: 'col' }, c)))), tbody)), more);

  async function runVerify(): Promise<void> {
    verify.replaceChildren(h('h2', { id: 'verify-title' }, 'Audit chain'), h('p', {}, 'Verifying…'));
    const r = await api.get<{ ok: boolean; entries: number; brokenAt?: number; reason?: string; headHash: string }>('/audit/verify');
    verify.className = `verify card ${r.ok ? 'ok' : 'broken'}`;
    verify.replaceChildren(h('h2', { id: 'verify-title' }, 'Audit chain'),
      h('p', { class: 'verdict' }, r.ok ? `✔ audit verify: chain intact — ${r.entries} entries, head ${r.headHash.slice(0, 16)}…` : `✘ audit verify: chain BROKEN at entry ${r.brokenAt}: ${r.reason}`),
      h('button', { type: 'button', onclick: () => void runVerify() }, 'Verify again'));
  }

  const filters = () => {
    const q: Record<string, string | undefined> = {};
    for (const k of ['entity', 'patient', 'actor', 'action'] as const) q[k] = inputs[k].value.trim() || undefined;
    if (inputs.from.value) q.from = fromWall(inputs.from.value, tz);
    if (inputs.to.value) q.to = fromWall(inputs.to.value, tz);
    return q;
  };

  let before: number | undefined;
  async function load(reset: boolean): Promise<void> {
    const q = filters();
    if (reset) {
      tbody.replaceChildren();
      before = undefined;
      csv.href = `/api/v1/audit/export${qs({ ...q, format: 'csv' })}`;
      jsonl.href = `/api/v1/audit/export${qs({ ...q, format: 'jsonl' })}`;
      const p = new URLSearchParams(Object.entries({ ...q, from: inputs.from.value, to: inputs.to.value }).filter(([, v]) => v) as [string, string][]);
      history.replaceState(null, '', `#/audit${p.size ? `?${p}` : ''}`);
    }
    try {
      const d = await api.get<{ items: Entry[] }>(`/audit${qs({ ...q, before, limit: 100 })}`);
      for (const e of d.items) {
        const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colSpan: 6 }, diff(e)));
        const toggle = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', onclick: () => {
          detail.hidden = !detail.hidden;
          toggle.setAttribute('aria-expanded', String(!detail.hidden));
          toggle.textContent = detail.hidden ? 'Before / after' : 'Hide';
        } }, 'Before / after');
        tbody.append(h('tr', { dataset: { action: e.action, entity: e.entityId } },
          h('td', {}, String(e.seq)), h('td', {}, formatInstant(e.at, tz)), h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)),
          h('td', {}, `${e.entityType} `, h('a', { href: `#/audit?entity=${encodeURIComponent(e.entityId)}` }, e.entityId)), h('td', {}, toggle)), detail);
      }
      before = d.items.at(-1)?.seq;
      more.hidden = d.items.length < 100;
      count.textContent = `${tbody.querySelectorAll(':scope > tr:not(.detail)').length} entries shown`;
    } catch (err) {
      count.textContent = err instanceof ApiError ? `Could not load the audit log: ${err.message}` : String(err);
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); void load(true); });
  form.addEventListener('reset', () => setTimeout(() => void load(true)));
  more.addEventListener('click', () => void load(false));
  await Promise.all([runVerify(), load(true)]);
}
