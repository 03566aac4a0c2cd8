// Clinic setup without YAML (issue 17): locations (with rooms), services and practitioners, each made,
// changed and removed here by the owner. Rows a configuration file declares are shown read-only with a
// "From <file>" badge and no edit buttons (as Grafana marks provisioned dashboards): they are changed in the
// file. The front desk sees the page read-only. The whole setup can be downloaded as meridian.yaml.
import { api, errorText } from './api.ts';
import { announce, field, h, modal, options, uid } from './dom.ts';
import { isOwner, loadReference } from './state.ts';

type Provisioned = { provisionedBy: string | null };
interface Room extends Provisioned { id: string; name: string }
interface Location extends Provisioned { id: string; name: string; timeZone: string; address?: string; rooms: Room[] }
interface Service extends Provisioned { id: string; name: string; durationMinutes?: number }
type Privacy = 'full' | 'minimal' | 'busy';
interface Binding { connection: string; calendar?: string; privacy?: Privacy }
type Hours = Partial<Record<Weekday, string[]>>;
interface Practitioner extends Provisioned {
  id: string; name: string; email?: string; timeZone?: string; locationIds: string[]; services: string[]; hours?: Hours; targets: Binding[]; active: boolean;
}
interface Connection extends Provisioned { id: string; name: string; platform: string; status: string; privacy?: Privacy }

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
type Weekday = (typeof WEEKDAYS)[number];
const DAY_LABEL: Record<Weekday, string> = { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday', sun: 'Sunday' };
const PRIVACY_LABEL: Record<Privacy, string> = { full: 'Full (patient name and details)', minimal: 'Minimal (initials and service)', busy: 'Busy (no patient data)' };

/**
 * The calendars offered for a target connection when a practitioner's binding is chosen. Today: none (the
 * calendar id is typed). The hook for the picker fed by `GET /connections/:id/calendars` (issue 17, later
 * part): replace this with one that asks the API; the form shows what it returns as choices.
 */
export let calendarChoices: (connectionId: string) => Promise<{ id: string; label: string }[]> = async () => [];
export function setCalendarChoices(f: typeof calendarChoices): void {
  calendarChoices = f;
}

/** The badge of a row a configuration file declares. */
function fromFile(p: Provisioned): HTMLElement | undefined {
  return p.provisionedBy ? h('span', { class: 'badge b-provisioned', title: `Declared in ${p.provisionedBy}: change it there (or remove it from the file to manage it here)` }, `From ${p.provisionedBy}`) : undefined;
}

/** "09:00-12:00, 13:00-17:00" → ranges; blanks dropped. */
function parseRanges(text: string): string[] {
  return text.split(/[,;\s]+/).map((r) => r.trim().replace(/\s*[–—-]\s*/, '-')).filter(Boolean);
}

function hoursText(h?: Hours): string {
  if (!h || !Object.keys(h).length) return 'the clinic\'s hours';
  return WEEKDAYS.filter((d) => h[d]?.length).map((d) => `${DAY_LABEL[d].slice(0, 3)} ${h[d]!.join(', ')}`).join(' · ');
}

export async function setupPage(main: HTMLElement): Promise<void> {
  const owner = isOwner();
  const body = h('div', { class: 'setup' });
  main.append(
    h('h1', {}, 'Clinic setup'),
    h('p', { class: 'muted' }, owner
      ? 'Locations, services and practitioners made here are Meridian\'s own. Rows marked “From <file>” come from a configuration file and are changed there.'
      : 'The clinic\'s setup, read-only: the owner changes it.'),
    owner ? h('p', {}, h('a', { class: 'button', href: '/api/v1/config/export', download: '' }, 'Download the configuration (YAML)')) : '',
    body);

  let data: { locations: Location[]; services: Service[]; practitioners: Practitioner[]; connections: Connection[]; targetPlatforms: Set<string> };

  async function load(): Promise<void> {
    const [l, s, p, c, platforms] = await Promise.all([
      api.get<{ items: Location[] }>('/locations'), api.get<{ items: Service[] }>('/services'), api.get<{ items: Practitioner[] }>('/practitioners'),
      api.get<{ items: Connection[] }>('/connections'), api.get<{ items: { id: string; role: string }[] }>('/platforms'),
    ]);
    data = {
      locations: l.items, services: s.items, practitioners: p.items, connections: c.items,
      targetPlatforms: new Set(platforms.items.filter((x) => x.role === 'target').map((x) => x.id)),
    };
  }

  /** After a change: the reference data the other pages use, this page, and a word in the status line. */
  async function changed(message: string): Promise<void> {
    await loadReference();
    await load();
    render();
    announce(message);
  }

  /** Remove something after asking; a refusal (in use, provisioned) is said where the button is. */
  async function remove(what: string, path: string, error: HTMLElement): Promise<void> {
    if (!confirm(`Remove ${what}?`)) return;
    error.textContent = '';
    try {
      await api.del(path);
      await changed(`${what} removed`);
    } catch (e) {
      error.textContent = errorText(e);
    }
  }

  const targets = () => data.connections.filter((c) => data.targetPlatforms.has(c.platform) && c.status !== 'disabled');
  const editButtons = (row: Provisioned, label: string, onEdit: () => void, onRemove: () => void) => (owner && !row.provisionedBy
    ? h('div', { class: 'row' },
      h('button', { type: 'button', onclick: onEdit, 'aria-label': `Edit ${label}` }, 'Edit'),
      h('button', { type: 'button', onclick: onRemove, 'aria-label': `Remove ${label}` }, 'Remove'))
    : '');

  /** A modal form: `save` throws to keep it open with the error shown (role=alert). */
  function formDialog(title: string, fields: (HTMLElement | string)[], save: () => Promise<string>): void {
    const error = h('p', { class: 'form-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const form = h('form', { class: 'create setup-form' }, ...fields, error, h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: () => m.close() }, 'Cancel')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      try {
        const done = await save();
        m.close();
        await changed(done);
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        submit.disabled = false;
      }
    });
    const m = modal(title, [form], { wide: true });
    form.querySelector<HTMLInputElement>('input, select')?.focus();
  }

  // ---------------------------------------------------------------- locations

  function editLocation(l?: Location): void {
    const name = h('input', { type: 'text', required: true, value: l?.name ?? '' });
    const zone = h('input', { type: 'text', value: l?.timeZone ?? '', placeholder: 'America/Chicago' });
    const address = h('input', { type: 'text', value: l?.address ?? '' });
    const rooms = h('textarea', { rows: 3 }, '');
    formDialog(l ? `Edit ${l.name}` : 'New location', [
      field('Name', name), field('Time zone', zone, 'IANA zone; empty: the clinic\'s'), field('Address', address),
      l ? '' : field('Rooms', rooms, 'One a line (you can add rooms later too)'),
    ], async () => {
      const b = { name: name.value.trim(), ...(zone.value.trim() ? { timeZone: zone.value.trim() } : {}), address: address.value.trim() || null };
      if (l) {
        await api.patch(`/locations/${encodeURIComponent(l.id)}`, b);
        return `Location ${b.name} saved`;
      }
      await api.post('/locations', { ...b, rooms: rooms.value.split('\n').map((r) => r.trim()).filter(Boolean).map((r) => ({ name: r })) });
      return `Location ${b.name} added`;
    });
  }

  function locationCard(l: Location): HTMLElement {
    const error = h('p', { class: 'form-error', role: 'alert' });
    const path = `/locations/${encodeURIComponent(l.id)}`;
    const editable = owner && !l.provisionedBy;
    const newRoom = h('input', { type: 'text', name: 'room', placeholder: 'Room name' });
    const addRoom = h('form', { class: 'row', 'aria-label': `Add a room to ${l.name}` }, field(`New room at ${l.name}`, newRoom), h('button', { type: 'submit' }, 'Add room'));
    addRoom.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await api.post(`${path}/rooms`, { name: newRoom.value.trim() });
        await changed(`Room ${newRoom.value.trim()} added to ${l.name}`);
      } catch (err) {
        error.textContent = errorText(err);
      }
    });
    const renameRoom = (r: Room) => {
      const name = h('input', { type: 'text', required: true, value: r.name });
      formDialog(`Rename ${r.name}`, [field('Room name', name)], async () => {
        await api.patch(`${path}/rooms/${encodeURIComponent(r.id)}`, { name: name.value.trim() });
        return `Room renamed to ${name.value.trim()}`;
      });
    };
    return h('li', { class: 'card setup-item', dataset: { location: l.id } },
      h('div', { class: 'setup-head' }, h('h3', {}, l.name), fromFile(l),
        editButtons(l, l.name, () => editLocation(l), () => void remove(`location ${l.name}`, path, error))),
      h('p', { class: 'muted' }, [l.timeZone, l.address].filter(Boolean).join(' · ')),
      h('p', { class: 'rooms-title' }, l.rooms.length ? 'Rooms:' : 'No rooms.'),
      l.rooms.length ? h('ul', { class: 'rooms' }, l.rooms.map((r) => h('li', {}, r.name, ' ',
        editable && !r.provisionedBy ? h('span', { class: 'row inline' },
          h('button', { type: 'button', class: 'link', onclick: () => renameRoom(r), 'aria-label': `Rename room ${r.name}` }, 'Rename'),
          h('button', { type: 'button', class: 'link', onclick: () => void remove(`room ${r.name}`, `${path}/rooms/${encodeURIComponent(r.id)}`, error), 'aria-label': `Remove room ${r.name}` }, 'Remove')) : ''))) : '',
      editable ? addRoom : '', error);
  }

  // ---------------------------------------------------------------- services

  function editService(s?: Service): void {
    const name = h('input', { type: 'text', required: true, value: s?.name ?? '' });
    const minutes = h('input', { type: 'number', min: 5, max: 1440, step: 5, value: s?.durationMinutes ? String(s.durationMinutes) : '' });
    formDialog(s ? `Edit ${s.name}` : 'New service', [field('Service name', name), field('Minutes', minutes, 'The usual length; empty: none')], async () => {
      const b = { name: name.value.trim(), durationMinutes: minutes.value ? Number(minutes.value) : null };
      if (s) await api.patch(`/services/${encodeURIComponent(s.id)}`, b);
      else await api.post('/services', b);
      return `Service ${b.name} ${s ? 'saved' : 'added'}`;
    });
  }

  function serviceRow(s: Service): HTMLElement {
    const error = h('p', { class: 'form-error', role: 'alert' });
    return h('tr', { dataset: { service: s.id } },
      h('th', { scope: 'row' }, s.name, ' ', fromFile(s)),
      h('td', {}, s.durationMinutes ? `${s.durationMinutes} min` : '—'),
      h('td', {}, editButtons(s, s.name, () => editService(s), () => void remove(`service ${s.name}`, `/services/${encodeURIComponent(s.id)}`, error)), error));
  }

  // ---------------------------------------------------------------- practitioners

  function checkboxes(legend: string, items: { value: string; label: string }[], chosen: string[]): { el: HTMLElement; values(): string[] } {
    const boxes = items.map((i) => h('input', { type: 'checkbox', value: i.value, checked: chosen.includes(i.value) }));
    const el = h('fieldset', { class: 'checks' }, h('legend', {}, legend),
      items.length ? boxes.map((b, j) => h('label', { class: 'check' }, b, ' ', items[j].label)) : h('p', { class: 'muted' }, 'None yet.'));
    return { el, values: () => boxes.filter((b) => b.checked).map((b) => b.value) };
  }

  function bindingRow(b: Binding | undefined, list: HTMLElement): { el: HTMLElement; value(): Binding | undefined } {
    const conns = targets();
    const conn = options(h('select', {}), conns.map((c) => ({ value: c.id, label: c.name })), b?.connection);
    const listId = uid('cals');
    const calendar = h('input', { type: 'text', value: b?.calendar ?? '', list: listId, placeholder: 'calendar id, e.g. ada@clinic.example' });
    const choices = h('datalist', { id: listId });
    const fill = async () => choices.replaceChildren(...(await calendarChoices(conn.value)).map((c) => h('option', { value: c.id, label: c.label })));
    conn.addEventListener('change', () => void fill());
    void fill();
    const privacy = options(h('select', {}), [{ value: '', label: 'The connection\'s level' }, ...(Object.keys(PRIVACY_LABEL) as Privacy[]).map((p) => ({ value: p, label: PRIVACY_LABEL[p] }))], b?.privacy ?? '');
    const el = h('div', { class: 'binding row' },
      field('Calendar connection', conn), field('Calendar', calendar, 'Empty: the connection\'s default calendar'), choices, field('What is written there', privacy),
      h('button', { type: 'button', onclick: () => el.remove(), 'aria-label': 'Remove this calendar' }, 'Remove'));
    list.append(el);
    return {
      el,
      value: () => (el.isConnected && conn.value ? { connection: conn.value, ...(calendar.value.trim() ? { calendar: calendar.value.trim() } : {}), ...(privacy.value ? { privacy: privacy.value as Privacy } : {}) } : undefined),
    };
  }

  function editPractitioner(p?: Practitioner): void {
    const name = h('input', { type: 'text', required: true, value: p?.name ?? '' });
    const email = h('input', { type: 'email', value: p?.email ?? '' });
    const zone = h('input', { type: 'text', value: p?.timeZone ?? '', placeholder: 'America/Chicago' });
    const active = h('input', { type: 'checkbox', checked: p ? p.active : true });
    const locs = checkboxes('Works at', data.locations.map((l) => ({ value: l.id, label: l.name })), p?.locationIds ?? []);
    const svcs = checkboxes('Services offered', data.services.map((s) => ({ value: s.id, label: s.name })), p?.services ?? []);
    const days = WEEKDAYS.map((d) => ({ d, input: h('input', { type: 'text', name: `hours-${d}`, value: p?.hours?.[d]?.join(', ') ?? '', placeholder: '09:00-12:00, 13:00-17:00' }) }));
    const hours = h('fieldset', { class: 'hours' }, h('legend', {}, 'Working hours'),
      h('p', { class: 'hint' }, 'Time ranges per day, 24-hour clock, separated by commas. All empty: the clinic\'s hours.'),
      days.map(({ d, input }) => field(DAY_LABEL[d], input)));
    const list = h('div', { class: 'bindings' });
    const rows = (p?.targets ?? []).map((b) => bindingRow(b, list));
    const add = h('button', { type: 'button', onclick: () => rows.push(bindingRow(undefined, list)), disabled: targets().length === 0 }, 'Add a calendar');
    const calendars = h('fieldset', { class: 'calendars' }, h('legend', {}, 'Calendars their appointments are written to'), list, add,
      targets().length ? '' : h('p', { class: 'hint' }, 'No calendar connection yet: connect one on the Connections page.'));
    formDialog(p ? `Edit ${p.name}` : 'New practitioner', [
      field('Name', name), field('E-mail', email), field('Time zone', zone, 'IANA zone; empty: the clinic\'s'),
      locs.el, svcs.el, hours, calendars,
      h('div', { class: 'field check' }, h('label', {}, active, ' Active (takes bookings)')),
    ], async () => {
      const hoursValue: Hours = {};
      for (const { d, input } of days) {
        const r = parseRanges(input.value);
        if (r.length) hoursValue[d] = r;
      }
      const b = {
        name: name.value.trim(), email: email.value.trim() || null, timeZone: zone.value.trim() || null, active: active.checked,
        locations: locs.values(), services: svcs.values(), hours: Object.keys(hoursValue).length ? hoursValue : null,
        targets: rows.map((r) => r.value()).filter((x): x is Binding => Boolean(x)),
      };
      if (p) await api.patch(`/practitioners/${encodeURIComponent(p.id)}`, b);
      else await api.post('/practitioners', b);
      return `Practitioner ${b.name} ${p ? 'saved' : 'added'}`;
    });
  }

  function practitionerRow(p: Practitioner): HTMLElement {
    const error = h('p', { class: 'form-error', role: 'alert' });
    const names = (ids: string[], all: { id: string; name: string }[]) => ids.map((i) => all.find((x) => x.id === i)?.name ?? i).join(', ') || '—';
    const conn = (id: string) => data.connections.find((c) => c.id === id)?.name ?? id;
    return h('tr', { dataset: { practitioner: p.id } },
      h('th', { scope: 'row' }, p.name, p.active ? '' : h('span', { class: 'muted' }, ' (inactive)'), ' ', fromFile(p), p.email ? h('div', { class: 'muted' }, p.email) : ''),
      h('td', {}, names(p.locationIds, data.locations)),
      h('td', {}, names(p.services, data.services)),
      h('td', { class: 'hours-cell' }, hoursText(p.hours)),
      h('td', {}, p.targets.length ? h('ul', { class: 'plain' }, p.targets.map((t) => h('li', {}, conn(t.connection), t.calendar ? ` · ${t.calendar}` : '', t.privacy ? ` · ${t.privacy}` : ''))) : '—'),
      h('td', {}, editButtons(p, p.name, () => editPractitioner(p), () => void remove(`practitioner ${p.name}`, `/practitioners/${encodeURIComponent(p.id)}`, error)), error));
  }

  function render(): void {
    const add = (label: string, onclick: () => void) => (owner ? h('button', { type: 'button', class: 'primary', onclick }, label) : '');
    body.replaceChildren(
      h('section', { 'aria-labelledby': 'setup-locations' },
        h('div', { class: 'setup-head' }, h('h2', { id: 'setup-locations' }, 'Locations'), add('Add a location', () => editLocation())),
        data.locations.length ? h('ul', { class: 'setup-list' }, data.locations.map(locationCard)) : h('p', { class: 'muted' }, 'No locations yet.')),
      h('section', { 'aria-labelledby': 'setup-services' },
        h('div', { class: 'setup-head' }, h('h2', { id: 'setup-services' }, 'Services'), add('Add a service', () => editService())),
        data.services.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'services' },
          h('thead', {}, h('tr', {}, ['Service', 'Length', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, data.services.map(serviceRow)))) : h('p', { class: 'muted' }, 'No services yet.')),
      h('section', { 'aria-labelledby': 'setup-practitioners' },
        h('div', { class: 'setup-head' }, h('h2', { id: 'setup-practitioners' }, 'Practitioners'), add('Add a practitioner', () => editPractitioner())),
        data.practitioners.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'practitioners' },
          h('thead', {}, h('tr', {}, ['Practitioner', 'Locations', 'Services', 'Hours', 'Calendars', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, data.practitioners.map(practitionerRow)))) : h('p', { class: 'muted' }, 'No practitioners yet.')));
  }

  await load();
  render();
}
