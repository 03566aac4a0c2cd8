// One appointment: its details (source, conflicts, divergence), the staff actions on it, the
// create form, and the double-booking warning with its explicit override (the API's 409).
import { api, ApiError } from './api.ts';
import { announce, field, h, modal, options } from './dom.ts';
import { canWrite, locationName, practitionerName, serviceName, sourceName, state, STATUS_LABEL, type Appointment } from './state.ts';
import { formatRange, fromWall, toWall } from './time.ts';

interface ConflictInfo { id: string; start: string; end: string; practitionerId: string; source: string }

/** The API's double-booking refusal as a question: book anyway, or not. Resolves true for "anyway". */
export function confirmOverride(err: ApiError, tz: string, byId?: Map<string, Appointment>): Promise<boolean> {
  const conflicts = (err.details?.conflicts ?? []) as ConflictInfo[];
  return new Promise((resolve) => {
    let answer = false;
    const list = h('ul', { class: 'conflicts' }, conflicts.map((c) => {
      const other = byId?.get(c.id);
      return h('li', {}, `${formatRange(c.start, c.end, tz)} · ${practitionerName(c.practitionerId)} · from ${sourceName(c.source)}${other ? ` · ${other.patient.name}` : ''}`);
    }));
    const anyway = h('button', { type: 'button', class: 'danger', onclick: () => { answer = true; m.close(); } }, 'Book anyway (double-book)');
    const back = h('button', { type: 'button', class: 'primary', onclick: () => m.close() }, 'Don\'t book it');
    const m = modal('Double booking', [
      h('p', { role: 'alert', class: 'warning' }, `⚠ ${err.message}.`), h('p', {}, 'It collides with:'), list,
      h('div', { class: 'actions' }, back, anyway)], { onClose: () => resolve(answer) });
    back.focus();
  });
}

/** Move an appointment; on a double booking ask, and override only when staff say so. */
export async function reschedule(a: Appointment, to: { start: string; end: string; practitionerId?: string }, tz: string, byId?: Map<string, Appointment>): Promise<boolean> {
  const body = { start: to.start, end: to.end, ...(to.practitionerId && to.practitionerId !== a.practitionerId ? { practitionerId: to.practitionerId } : {}) };
  try {
    await api.post(`/appointments/${a.id}/reschedule`, body);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 'double_booking') {
      announce(`Not moved: ${(e as Error).message}`, 'error');
      return false;
    }
    if (!(await confirmOverride(e, tz, byId))) {
      announce('Not moved: it would have double-booked');
      return false;
    }
    await api.post(`/appointments/${a.id}/reschedule`, { ...body, override: true });
  }
  announce(`Moved ${a.patient.name} to ${formatRange(to.start, to.end, tz)}`);
  return true;
}

function dl(rows: [string, Node | string | undefined][]): HTMLElement {
  return h('dl', { class: 'details' }, rows.filter(([, v]) => v !== undefined && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v!)]));
}

export function openAppointment(a: Appointment, o: { byId: Map<string, Appointment>; zone: string; onDone: () => Promise<void> | void }): void {
  const tz = o.zone;
  const conflictList = a.conflicts.length && a.status !== 'cancelled' ? h('ul', { class: 'conflicts' }, a.conflicts.map((id) => {
    if (id.startsWith('busy:')) return h('li', {}, `busy time in the practitioner's own calendar (connection ${id.split(':')[1]})`);
    const other = o.byId.get(id);
    return h('li', {}, other ? `${other.patient.name} · ${formatRange(other.start, other.end, tz)} · from ${sourceName(other.origin.platform)}` : `appointment ${id}`);
  })) : undefined;
  const done = async (msg: string) => { m.close(); announce(msg); await o.onDone(); };
  const fail = (e: unknown) => announce((e as Error).message, 'error');
  const setStatus = (status: Appointment['status'], label: string) => h('button', { type: 'button', onclick: async () => {
    try {
      await api.post(`/appointments/${a.id}/status`, { status });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'double_booking' && (await confirmOverride(e, tz, o.byId)))) return fail(e);
      await api.post(`/appointments/${a.id}/status`, { status, override: true });
    }
    await done(`${a.patient.name}: ${STATUS_LABEL[status]}`);
  } }, label);

  const actions: HTMLElement[] = [];
  if (canWrite()) {
    if (a.status === 'requested') actions.push(setStatus('booked', 'Confirm'));
    if (a.status === 'booked') actions.push(setStatus('completed', 'Mark completed'), setStatus('no_show', 'Mark no-show'));
    if (a.status === 'no_show' || a.status === 'completed' || a.status === 'cancelled') actions.push(setStatus('booked', a.status === 'cancelled' ? 'Rebook' : 'Back to booked'));
  }
  // Move form: the keyboard way to do what dragging does.
  let moveForm: HTMLElement | undefined;
  if (canWrite() && a.status !== 'cancelled') {
    const date = h('input', { type: 'date', required: true, value: toWall(a.start, tz).slice(0, 10) });
    const time = h('input', { type: 'time', required: true, step: 300, value: toWall(a.start, tz).slice(11, 16) });
    const minutes = h('input', { type: 'number', min: 5, max: 1440, step: 5, required: true, value: String((Date.parse(a.end) - Date.parse(a.start)) / 60_000) });
    const pr = options(h('select', {}), state.practitioners.map((p) => ({ value: p.id, label: p.name })), a.practitionerId);
    moveForm = h('form', { class: 'move', 'aria-label': 'Move or resize' }, h('h3', {}, 'Move or resize'),
      h('div', { class: 'row' }, field('Date', date), field('Start', time), field('Minutes', minutes), field('Practitioner', pr)),
      h('button', { type: 'submit' }, 'Move'));
    moveForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const start = fromWall(`${date.value}T${time.value}`, tz);
      const end = new Date(Date.parse(start) + Number(minutes.value) * 60_000).toISOString().replace('.000Z', 'Z');
      if (await reschedule(a, { start, end, practitionerId: pr.value }, tz, o.byId)) await done('Moved');
    });
  }
  let cancelForm: HTMLElement | undefined;
  if (canWrite() && a.status !== 'cancelled') {
    const reason = h('input', { type: 'text', maxLength: 500, placeholder: 'optional' });
    cancelForm = h('form', { class: 'cancel', 'aria-label': 'Cancel the appointment' }, h('div', { class: 'row' }, field('Reason for cancelling', reason),
      h('button', { type: 'submit', class: 'danger' }, 'Cancel appointment')));
    cancelForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api.post(`/appointments/${a.id}/cancel`, reason.value ? { reason: reason.value } : {});
        await done(`Cancelled ${a.patient.name}'s appointment`);
      } catch (err) {
        fail(err);
      }
    });
  }
  const m = modal(a.patient.name, [
    a.conflicts.length && a.status !== 'cancelled' ? h('div', { class: 'warning', role: 'note' }, h('strong', {}, '⚠ Double booking'), ' — collides with:', conflictList) : undefined,
    a.diverged ? h('div', { class: 'warning diverged', role: 'note' }, h('strong', {}, `↯ ${sourceName(a.origin.platform)} still shows the old state. `), a.diverged) : undefined,
    dl([
      ['When', formatRange(a.start, a.end, tz)], ['Practitioner', practitionerName(a.practitionerId)], ['Status', STATUS_LABEL[a.status]],
      ['Service', serviceName(a.serviceId)], ['Location', locationName(a.locationId)],
      ['E-mail', a.patient.email], ['Phone', a.patient.phone], ['Notes', a.notes],
      ['Source', `${sourceName(a.origin.platform)}${a.origin.platform === 'manual' ? '' : ` (connection ${a.origin.connectionId})`}`],
    ]),
    actions.length ? h('div', { class: 'actions' }, actions) : undefined,
    moveForm, cancelForm,
    h('p', {}, h('a', { href: `#/audit?entity=${encodeURIComponent(a.id)}`, onclick: () => m.close() }, canWrite() ? 'Audit trail of this appointment' : '')),
  ].filter((x): x is HTMLElement => Boolean(x)), { wide: true });
}

export function openCreate(o: { practitionerId?: string; start?: string; end?: string; date?: string; zone: string; byId?: Map<string, Appointment>; onDone: () => Promise<void> | void }): void {
  const tz = o.zone;
  const startWall = o.start ? toWall(o.start, tz) : `${o.date ?? toWall(Date.now(), tz).slice(0, 10)}T09:00:00`;
  const pr = options(h('select', { required: true }), state.practitioners.map((p) => ({ value: p.id, label: p.name })), o.practitionerId);
  const svc = options(h('select', {}), [{ value: '', label: 'No service' }, ...state.services.map((s) => ({ value: s.id, label: `${s.name}${s.durationMinutes ? ` (${s.durationMinutes} min)` : ''}` }))]);
  const loc = h('select', {});
  const fillLocations = () => {
    const p = state.practitioners.find((x) => x.id === pr.value);
    options(loc, state.locations.filter((l) => !p || p.locationIds.includes(l.id)).map((l) => ({ value: l.id, label: l.name })));
  };
  fillLocations();
  pr.addEventListener('change', fillLocations);
  const date = h('input', { type: 'date', required: true, value: startWall.slice(0, 10) });
  const time = h('input', { type: 'time', required: true, step: 300, value: startWall.slice(11, 16) });
  const minutes = h('input', { type: 'number', min: 5, max: 1440, step: 5, required: true, value: String(o.start && o.end ? (Date.parse(o.end) - Date.parse(o.start)) / 60_000 : 45) });
  svc.addEventListener('change', () => { const d = state.services.find((s) => s.id === svc.value)?.durationMinutes; if (d) minutes.value = String(d); });
  const name = h('input', { type: 'text', required: true, maxLength: 200, autocomplete: 'off' });
  const email = h('input', { type: 'email', autocomplete: 'off' });
  const phone = h('input', { type: 'tel', autocomplete: 'off', maxLength: 40 });
  const notes = h('textarea', { rows: 2, maxLength: 4000 });
  const requested = h('input', { type: 'checkbox' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'create' },
    h('div', { class: 'row' }, field('Patient name', name), field('E-mail', email), field('Phone', phone)),
    h('div', { class: 'row' }, field('Practitioner', pr), field('Location', loc), field('Service', svc)),
    h('div', { class: 'row' }, field('Date', date), field('Start', time, `in ${tz}`), field('Minutes', minutes)),
    field('Notes', notes), h('div', { class: 'field check' }, h('label', {}, requested, ' Only a request (to confirm later)')),
    error, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Book')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const start = fromWall(`${date.value}T${time.value}`, tz);
    const body = {
      practitionerId: pr.value, start, end: new Date(Date.parse(start) + Number(minutes.value) * 60_000).toISOString().replace('.000Z', 'Z'),
      patient: { name: name.value.trim(), ...(email.value ? { email: email.value.trim() } : {}), ...(phone.value ? { phone: phone.value.trim() } : {}) },
      ...(svc.value ? { serviceId: svc.value } : {}), ...(loc.value ? { locationId: loc.value } : {}), ...(notes.value ? { notes: notes.value } : {}),
      ...(requested.checked ? { status: 'requested' } : {}),
    };
    try {
      try {
        await api.post('/appointments', body);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 'double_booking')) throw err;
        if (!(await confirmOverride(err, tz, o.byId))) { error.textContent = 'Not booked: it would double-book.'; return; }
        await api.post('/appointments', { ...body, override: true });
      }
      m.close();
      announce(`Booked ${body.patient.name}, ${formatRange(body.start, body.end, tz)}`);
      await o.onDone();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.details?.issues ? `${err.message}: ${(err.details.issues as { field: string; message: string }[]).map((i) => `${i.field} ${i.message}`).join('; ')}` : (err as Error).message;
    }
  });
  const m = modal('New appointment', [form], { wide: true });
  name.focus();
}
