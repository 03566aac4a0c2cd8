// A few DOM helpers: elements built with properties and children (text is never parsed as HTML).

type Child = Node | string | number | false | null | undefined;
type Props = Record<string, unknown> & { class?: string; dataset?: Record<string, string> };

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    else if (k in el && !k.includes('-') && k !== 'list' && k !== 'form') (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** HTML-escape text for the calendar's `{ html }` content. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

let idSeq = 0;
export const uid = (p = 'f') => `${p}-${++idSeq}`;

/** A labelled form field (label bound to the control by id). */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= uid();
  const hintEl = hint ? h('small', { id: `${control.id}-hint`, class: 'hint' }, hint) : undefined;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { htmlFor: control.id }, label), control, hintEl);
}

export function options(sel: HTMLSelectElement, items: { value: string; label: string }[], selected?: string): HTMLSelectElement {
  sel.replaceChildren(...items.map((i) => h('option', { value: i.value, selected: i.value === selected }, i.label)));
  return sel;
}

/** The notice above a page when its link said something that was not understood: plain text, so nothing from the URL is ever parsed as HTML. */
export function routeNotice(msg: string): HTMLElement {
  return h('p', { id: 'route-notice', class: 'route-notice', role: 'status' }, msg);
}

/** Announce a message to screen readers and show it in the status line. */
export function announce(msg: string, kind: 'ok' | 'error' = 'ok'): void {
  const el = document.getElementById('status-line');
  if (!el) return;
  el.textContent = msg;
  el.className = `status-line ${kind}`;
}

/** A modal dialog (native <dialog>: focus is trapped and Escape closes it). Resolves when it closes. */
export function modal(title: string, body: Node[], opts: { onClose?: () => void; wide?: boolean } = {}): { dialog: HTMLDialogElement; close(): void } {
  const titleId = uid('dlg');
  const close = () => dialog.close();
  const dialog = h('dialog', { class: `modal${opts.wide ? ' wide' : ''}`, 'aria-labelledby': titleId },
    h('header', {}, h('h2', { id: titleId }, title), h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', onclick: close }, '×')),
    h('div', { class: 'modal-body' }, ...body));
  dialog.addEventListener('close', () => { dialog.remove(); opts.onClose?.(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}
