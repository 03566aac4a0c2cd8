// The schedule: one column per practitioner (day and week), filters, marks for conflicts, requests and
// diverging bookings; staff create (select a slot), move (drag), resize and open an appointment.
import { createCalendar, destroyCalendar, Interaction, ResourceTimeGrid, type Calendar } from '@event-calendar/core';
import '@event-calendar/core/index.css';
import { api, ApiError, qs } from './api.ts';
import { announce, esc, field, h, options, routeNotice } from './dom.ts';
import { oneOf, parseDate, unclear } from './route.ts';
import { openAppointment, openCreate, reschedule } from './appointment.ts';
import { canWrite, practitionerName, serviceName, sourceName, state, STATUS_LABEL, zoneFor, type Appointment } from './state.ts';
import { addDays, formatRange, fromWall, hhmm, todayIn, toWall, wallOfLocalDate } from './time.ts';

interface Filters { location: string; service: string; practitioner: string; cancelled: boolean }

/** Timings of the last render, read by `npm run bench` (the week view of 20 practitioners × 1,000 appointments). */
declare global {
  interface Window { __schedule?: { fetchMs: number; renderMs: number; events: number; resources: number } }
}

let calendar: Calendar | undefined;

export function disposeSchedule(): void {
  if (calendar) void destroyCalendar(calendar);
  calendar = undefined;
}

/** Why an appointment collides, in staff words: `<platform> + Meridian (staff)`. */
export function collisionSources(a: Appointment, byId: Map<string, Appointment>): string {
  const names = new Set([sourceName(a.origin.platform)]);
  for (const id of a.conflicts) {
    if (id.startsWith('busy:')) names.add(`busy time in the ${id.split(':')[1]} calendar`);
    else names.add(byId.get(id) ? sourceName(byId.get(id)!.origin.platform) : 'another booking');
  }
  return [...names].join(' + ');
}

export async function schedulePage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  disposeSchedule();
  const own = state.me?.user.practitionerId;
  // Every parameter of the link is checked against what the clinic has; what is not understood falls back
  // to the default (today, the day view, no filter) and the notice says so.
  const linkDate = parseDate(params.get('date'));
  const linkView = oneOf(params.get('view'), ['day', 'week'] as const);
  const linkFilters = {
    location: oneOf(params.get('location'), state.locations.map((l) => l.id)),
    service: oneOf(params.get('service'), state.services.map((s) => s.id)),
    practitioner: oneOf(params.get('practitioner'), state.practitioners.map((p) => p.id)),
    cancelled: oneOf(params.get('cancelled'), ['1'] as const),
  };
  const f: Filters = { location: linkFilters.location ?? '', service: linkFilters.service ?? '', practitioner: own ?? linkFilters.practitioner ?? '', cancelled: linkFilters.cancelled === '1' };
  const notUnderstood = Object.entries({ view: linkView, ...linkFilters }).filter(([k, v]) => unclear(params, k, v)).map(([k]) => k);
  const notice = [
    unclear(params, 'date', linkDate) ? 'That link\'s date was not understood; showing today.' : '',
    notUnderstood.length ? `Some of that link's settings were not understood and were left out (${notUnderstood.join(', ')}).` : '',
  ].filter(Boolean).join(' ');
  let appts: Appointment[] = [];
  let byId = new Map<string, Appointment>();
  let range = { from: '', to: '' };
  let shownResources = '';
  const zone = () => zoneFor(f.location || undefined);

  const locSel = options(h('select', { name: 'location' }), [{ value: '', label: 'All locations' }, ...state.locations.map((l) => ({ value: l.id, label: l.name }))], f.location);
  const svcSel = options(h('select', { name: 'service' }), [{ value: '', label: 'All services' }, ...state.services.map((s) => ({ value: s.id, label: s.name }))], f.service);
  const prSel = options(h('select', { name: 'practitioner', disabled: Boolean(own) }), [{ value: '', label: 'All practitioners' }, ...state.practitioners.map((p) => ({ value: p.id, label: p.name }))], f.practitioner);
  const cancelledBox = h('input', { type: 'checkbox', name: 'cancelled', checked: f.cancelled });
  const zoneNote = h('span', { class: 'muted zone' });
  const newBtn = canWrite() ? h('button', { type: 'button', class: 'primary', onclick: () => openCreate({ practitionerId: f.practitioner || undefined, date: range.from ? toWall(range.from, zone()).slice(0, 10) : undefined, zone: zone(), byId, onDone: reload }) }, 'New appointment') : undefined;
  const toolbar = h('form', { class: 'toolbar', 'aria-label': 'Schedule filters', onsubmit: (e: Event) => e.preventDefault() },
    field('Location', locSel), field('Service', svcSel), field('Practitioner', prSel),
    h('div', { class: 'field check' }, h('label', {}, cancelledBox, ' Show cancelled')), zoneNote, newBtn);
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    h('li', {}, h('span', { class: 'swatch booked' }), 'Booked'), h('li', {}, h('span', { class: 'swatch requested' }), 'Requested (to confirm)'),
    h('li', {}, h('span', { class: 'swatch conflict' }), '⚠ Double booking'), h('li', {}, h('span', { class: 'swatch diverged' }), '↯ Booking platform shows the old state'),
    h('li', {}, h('span', { class: 'swatch done' }), 'Completed / no-show'));
  const calEl = h('div', { class: 'calendar', id: 'calendar' });
  const side = h('aside', { class: 'side', 'aria-label': 'Needs attention' });
  // A practitioner's sign-in shows one column, which the calendar draws without a heading: name it here.
  main.append(h('h1', { class: own ? 'own-title' : 'visually-hidden' }, own ? `${practitionerName(own)}: your schedule` : 'Schedule'), notice ? routeNotice(notice) : '', toolbar, legend, h('div', { class: 'schedule-grid' }, calEl, side));

  const resources = () => state.practitioners
    .filter((p) => (!f.location || p.locationIds.includes(f.location)) && (!f.practitioner || p.id === f.practitioner))
    .map((p) => ({ id: p.id, title: p.name }));
  const visible = (a: Appointment) => (f.cancelled || a.status !== 'cancelled') && (!f.service || a.serviceId === f.service) && (!f.location || !a.locationId || a.locationId === f.location);

  const eventOf = (a: Appointment) => {
    const classes = [`st-${a.status}`, `a-${a.id}`];
    if (a.conflicts.length && a.status !== 'cancelled') classes.push('conflict');
    if (a.diverged) classes.push('diverged');
    return { id: a.id, resourceIds: [a.practitionerId], start: toWall(a.start, zone()), end: toWall(a.end, zone()), title: a.patient.name, classNames: classes, editable: canWrite() && a.status !== 'cancelled' };
  };

  const contentOf = (a: Appointment) => {
    const tz = zone();
    const bits = [serviceName(a.serviceId), sourceName(a.origin.platform)].filter(Boolean).join(' · ');
    const badges: string[] = [];
    if (a.status !== 'booked') badges.push(`<span class="badge b-${a.status}">${esc(STATUS_LABEL[a.status])}</span>`);
    if (a.conflicts.length && a.status !== 'cancelled') badges.push(`<span class="badge b-conflict">⚠ Double booking: ${esc(collisionSources(a, byId))}</span>`);
    if (a.diverged) badges.push(`<span class="badge b-diverged" title="${esc(a.diverged)}">↯ ${esc(sourceName(a.origin.platform))} shows the old state</span>`);
    // The event is a button whose name is this content: the hidden part says what the eye gets from the column and colours.
    const spoken = `, ${practitionerName(a.practitionerId)}, ${STATUS_LABEL[a.status]}, from ${sourceName(a.origin.platform)}`;
    return { html: `<div class="ev"><span class="ev-time">${hhmm(a.start, tz)}–${hhmm(a.end, tz)}</span> <strong class="ev-name">${esc(a.patient.name)}</strong><span class="visually-hidden">${esc(spoken)}</span>${badges.length ? `<span class="ev-badges">${badges.join('')}</span>` : ''}<span class="ev-meta">${esc(bits)}</span></div>` };
  };

  function render(): void {
    const t0 = performance.now();
    const shown = appts.filter(visible);
    const res = resources();
    // Resources only when they changed: every setOption re-lays out the whole grid.
    const key = res.map((r) => r.id).join();
    if (key !== shownResources) calendar!.setOption('resources', res);
    shownResources = key;
    calendar!.setOption('events', shown.map(eventOf));
    zoneNote.textContent = `Times in ${zone()}`;
    renderSide(shown);
    // Two frames: the calendar has laid out and painted its events.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      window.__schedule = { ...(window.__schedule ?? { fetchMs: 0 }), renderMs: performance.now() - t0, events: shown.length, resources: res.length };
      document.body.dataset.schedule = `${range.from}|${shown.length}`;
    }));
  }

  async function load(from: string, to: string): Promise<void> {
    range = { from, to };
    const t0 = performance.now();
    const statuses = f.cancelled ? undefined : 'requested,booked,no_show,completed';
    const d = await api.get(`/appointments${qs({ from, to, status: statuses, limit: 5000 })}`);
    if (range.from !== from) return; // a newer navigation won
    appts = d.items;
    byId = new Map(appts.map((a) => [a.id, a]));
    window.__schedule = { fetchMs: performance.now() - t0, renderMs: 0, events: 0, resources: 0 };
    render();
  }
  const reload = () => load(range.from, range.to).catch((e: Error) => announce(`Could not load the schedule: ${e.message}`, 'error'));

  function renderSide(shown: Appointment[]): void {
    const tz = zone();
    const item = (a: Appointment, why: string) => h('li', {},
      h('button', { type: 'button', class: 'link', onclick: () => open(a) }, `${a.patient.name} · ${formatRange(a.start, a.end, tz)}`),
      h('div', { class: 'muted' }, `${practitionerName(a.practitionerId)} — ${why}`));
    const conflicts = shown.filter((a) => a.conflicts.length && a.status !== 'cancelled');
    const diverged = shown.filter((a) => a.diverged);
    const sections = [
      h('section', { 'aria-labelledby': 'side-conflicts' }, h('h2', { id: 'side-conflicts' }, `Double bookings (${conflicts.length})`),
        conflicts.length ? h('ul', {}, conflicts.map((a) => item(a, collisionSources(a, byId)))) : h('p', { class: 'muted' }, 'None in view.')),
      h('section', { 'aria-labelledby': 'side-diverged' }, h('h2', { id: 'side-diverged' }, `Platform out of step (${diverged.length})`),
        diverged.length ? h('ul', {}, diverged.map((a) => item(a, a.diverged!))) : h('p', { class: 'muted' }, 'None in view.')),
    ];
    const triage = h('section', { 'aria-labelledby': 'side-triage', id: 'triage' }, h('h2', { id: 'side-triage' }, 'Requests to triage'), h('p', { class: 'muted' }, 'Loading…'));
    side.replaceChildren(triage, ...sections);
    void renderTriage(triage);
  }

  async function renderTriage(box: HTMLElement): Promise<void> {
    const tz = zone();
    const now = new Date().toISOString();
    const [reqs, leads] = await Promise.all([
      api.get(`/appointments${qs({ status: 'requested', from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date(Date.now() + 180 * 86_400_000).toISOString(), practitioner: f.practitioner || undefined })}`),
      canWrite() ? api.get('/leads?status=needs_triage').catch(() => ({ items: [] })) : Promise.resolve({ items: [] }),
    ]);
    const list = h('ul', {});
    for (const a of reqs.items as Appointment[]) {
      list.append(h('li', {},
        h('button', { type: 'button', class: 'link', onclick: () => open(a) }, `${a.patient.name} · ${formatRange(a.start, a.end, tz)}`),
        h('div', { class: 'muted' }, `${practitionerName(a.practitionerId)} · ${serviceName(a.serviceId) ?? 'no service'} · from ${sourceName(a.origin.platform)}`),
        canWrite() ? h('div', { class: 'row' },
          h('button', { type: 'button', onclick: () => void act(a, 'confirm') }, 'Confirm'),
          h('button', { type: 'button', onclick: () => void act(a, 'decline') }, 'Decline')) : undefined));
    }
    for (const l of leads.items as { id: string; patient: { name: string }; service: { text?: string; id?: string }; practitioner: { text?: string }; triageReason?: string; receivedAt: string; preferences: unknown[] }[]) {
      const pr = options(h('select', {}), state.practitioners.map((p) => ({ value: p.id, label: p.name })));
      const when = h('input', { type: 'datetime-local', step: 900, value: `${addDays(todayIn(tz), 1)}T09:00` });
      list.append(h('li', { class: 'lead' },
        h('strong', {}, l.patient.name), h('div', { class: 'muted' }, `Lead form · ${l.service.text ?? serviceName(l.service.id) ?? 'any service'}${l.practitioner.text ? ` · asked for ${l.practitioner.text}` : ''} — ${l.triageReason ?? 'needs a slot'}`),
        h('div', { class: 'row' }, field('Practitioner', pr), field('Start', when)),
        h('div', { class: 'row' },
          h('button', { type: 'button', onclick: () => void placeLead(l.id, pr.value, fromWall(when.value, tz)) }, 'Place and confirm'),
          h('button', { type: 'button', onclick: () => void declineLead(l.id) }, 'Decline'))));
    }
    box.replaceChildren(h('h2', { id: 'side-triage' }, `Requests to triage (${list.children.length})`), list.children.length ? list : h('p', { class: 'muted' }, `Nothing waiting (as of ${now.slice(11, 16)} UTC).`));
  }

  async function act(a: Appointment, what: 'confirm' | 'decline'): Promise<void> {
    try {
      if (what === 'confirm') await api.post(`/appointments/${a.id}/status`, { status: 'booked' });
      else await api.post(`/appointments/${a.id}/cancel`, { reason: 'request declined' });
      announce(what === 'confirm' ? `Confirmed ${a.patient.name}` : `Declined ${a.patient.name}'s request`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'double_booking' && what === 'confirm') {
        if (confirm(`${e.message}. Confirm anyway?`)) await api.post(`/appointments/${a.id}/status`, { status: 'booked', override: true });
      } else announce((e as Error).message, 'error');
    }
    await reload();
  }
  async function placeLead(id: string, practitionerId: string, start: string): Promise<void> {
    try {
      await api.post(`/leads/${id}/confirm`, { practitionerId, start });
      announce('Lead placed and confirmed');
    } catch (e) {
      announce((e as Error).message, 'error');
    }
    await reload();
  }
  async function declineLead(id: string): Promise<void> {
    await api.post(`/leads/${id}/decline`, { reason: 'declined by staff' }).catch((e: Error) => announce(e.message, 'error'));
    await reload();
  }

  const open = (a: Appointment) => openAppointment(a, { byId, zone: zone(), onDone: reload });

  async function dropped(info: { event: Calendar.Event; revert(): void; newResource?: Calendar.Resource }): Promise<void> {
    const a = byId.get(String(info.event.id));
    if (!a) return info.revert();
    const tz = zone();
    const moved = { start: fromWall(wallOfLocalDate(info.event.start), tz), end: fromWall(wallOfLocalDate(info.event.end), tz), practitionerId: info.newResource ? String(info.newResource.id) : undefined };
    const ok = await reschedule(a, moved, tz, byId);
    if (!ok) info.revert();
    await reload();
  }

  const today = todayIn(zone());
  calendar = createCalendar(calEl, [ResourceTimeGrid, Interaction], {
    view: linkView === 'week' ? 'resourceTimeGridWeek' : 'resourceTimeGridDay',
    // Only a checked date reaches the calendar: it took `1` as the year 1 and spun for half a minute.
    date: linkDate ?? today,
    headerToolbar: { start: 'prev,next today', center: 'title', end: 'resourceTimeGridDay,resourceTimeGridWeek' },
    buttonText: (t) => ({ ...t, today: 'Today', resourceTimeGridDay: 'Day', resourceTimeGridWeek: 'Week' }),
    resources: resources(),
    events: [],
    allDaySlot: false,
    slotMinTime: '07:00', slotMaxTime: '21:00', slotDuration: '00:30', snapDuration: '00:15', scrollTime: '08:00',
    slotHeight: 34,
    height: 'auto',
    firstDay: 1,
    datesAboveResources: true,
    editable: canWrite(), selectable: canWrite(), eventStartEditable: canWrite(), eventDurationEditable: canWrite(),
    dayHeaderFormat: { weekday: 'short', day: 'numeric', month: 'short' },
    slotLabelFormat: { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
    eventContent: (info) => { const a = byId.get(String(info.event.id)); return a ? contentOf(a) : undefined; },
    eventClick: (info) => { const a = byId.get(String(info.event.id)); if (a) open(a); },
    eventDrop: (info) => void dropped(info),
    eventResize: (info) => void dropped(info),
    select: (info) => {
      calendar?.unselect();
      const tz = zone();
      openCreate({ practitionerId: info.resource ? String(info.resource.id) : undefined, start: fromWall(wallOfLocalDate(info.start), tz), end: fromWall(wallOfLocalDate(info.end), tz), zone: tz, byId, onDone: reload });
    },
    datesSet: (info) => {
      const tz = zone();
      const from = fromWall(wallOfLocalDate(info.start), tz);
      const to = fromWall(wallOfLocalDate(info.end), tz);
      const view = info.view.type === 'resourceTimeGridWeek' ? 'week' : 'day';
      const p = new URLSearchParams({ date: wallOfLocalDate(info.start).slice(0, 10), view });
      for (const [k, v] of Object.entries({ location: f.location, service: f.service, practitioner: own ? '' : f.practitioner, cancelled: f.cancelled ? '1' : '' })) if (v) p.set(k, v);
      history.replaceState(null, '', `#/schedule?${p}`);
      void load(from, to).catch((e: Error) => announce(`Could not load the schedule: ${e.message}`, 'error'));
    },
  });

  shownResources = resources().map((r) => r.id).join();

  const onFilter = () => {
    f.location = locSel.value; f.service = svcSel.value; f.practitioner = own ?? prSel.value;
    const wasCancelled = f.cancelled;
    f.cancelled = cancelledBox.checked;
    if (wasCancelled !== f.cancelled) void reload();
    else render();
  };
  for (const el of [locSel, svcSel, prSel, cancelledBox]) el.addEventListener('change', onFilter);
}
