// The web app: sign-in, then Schedule / Audit / Connections / Setup pages under hash routes (#/schedule…).
import './style.css';
import { ApiError, request, setCsrf, whenSignedOut } from './api.ts';
import { field, h } from './dom.ts';
import { canWrite, isOwner, loadReference, state, type Me } from './state.ts';
import { disposeSchedule, schedulePage } from './schedule.ts';
import { auditPage } from './audit.ts';
import { connectionsPage } from './connections.ts';
import { connectionPage, disposeConnection, quickConnect } from './connect.ts';
import { setupPage } from './setup.ts';

const app = document.getElementById('app')!;
const ROLE_LABEL = { owner: 'Owner', front_desk: 'Front desk', practitioner: 'Practitioner' };

interface Page {
  title: string; render(main: HTMLElement, params: URLSearchParams): Promise<void> | void; dispose?: () => void; staffOnly?: boolean;
  /** A page reached from another (a connection from Connections): not in the menu, which marks `under` as current. */
  under?: string;
}
const PAGES: Record<string, Page> = {
  schedule: { title: 'Schedule', render: schedulePage, dispose: disposeSchedule },
  audit: { title: 'Audit log', render: auditPage, staffOnly: true },
  connections: { title: 'Connections', render: connectionsPage, staffOnly: true },
  connection: { title: 'Connection', render: connectionPage, dispose: disposeConnection, staffOnly: true, under: 'connections' },
  // The owner makes and changes the setup; the front desk sees it read-only.
  setup: { title: 'Setup', render: setupPage, staffOnly: true },
};

function route(): { name: string; params: URLSearchParams } {
  const [path, q] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(q ?? '');
  // The provider's callback comes back to `#/connections/<id>?connected=1`: the connection's page.
  const m = /^connections\/([^/]+)$/.exec(path);
  if (m) {
    try { params.set('id', decodeURIComponent(m[1])); } catch { params.set('id', ''); }
    return { name: 'connection', params };
  }
  // Only the app's own pages: `PAGES[path]` alone would also find `constructor` or `__proto__` on every object.
  return { name: Object.hasOwn(PAGES, path) ? path : 'schedule', params };
}

function signInPage(message?: string): void {
  document.title = 'Sign in · Meridian';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'form-error', role: 'alert' }, message ?? '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Meridian'), h('p', { class: 'muted' }, 'Sign in with your clinic account.'),
    field('E-mail', email), field('Password', password), error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      const me = await request<Me>('POST', '/auth/login', { email: email.value, password: password.value });
      await start(me);
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : 'Meridian is not reachable';
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  app.replaceChildren(h('main', { id: 'main', class: 'signin-wrap' }, form));
  email.focus();
}

let current: Page | undefined;

async function show(): Promise<void> {
  const { name, params } = route();
  const page = PAGES[name];
  current?.dispose?.();
  current = page;
  document.title = `${page.title} · Meridian`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav.primary a')) {
    if (a.dataset.page === (page.under ?? name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main')!;
  main.replaceChildren();
  main.dataset.page = name;
  delete document.body.dataset.ready;
  try {
    await page.render(main, params);
    // Getting started: an owner whose clinic writes to no calendar yet is offered one on the schedule.
    if (name === 'schedule' && isOwner()) {
      const q = await quickConnect({ onlyWithoutCalendars: true }).catch(() => undefined);
      if (q && current === page) main.prepend(q);
    }
  } catch (err) {
    main.append(h('p', { class: 'form-error', role: 'alert' }, `This page could not be loaded: ${(err as Error).message}`));
  }
  document.body.dataset.ready = name;
}

async function signOut(): Promise<void> {
  try {
    await request('POST', '/auth/logout');
  } catch (err) {
    // Never say "signed out" while the session still works: ask the server, and say what went wrong.
    const still = await request('GET', '/auth/me').then(() => true, () => false);
    if (still) {
      document.getElementById('main')?.prepend(h('p', { class: 'form-error', role: 'alert' }, `Signing out did not work (${(err as Error).message}); you are still signed in. Try again, or close the browser.`));
      return;
    }
  }
  state.me = undefined;
  signInPage('You are signed out.');
}

async function start(me: Me): Promise<void> {
  state.me = me;
  setCsrf(me.csrf);
  await loadReference();
  const u = me.user;
  const links = Object.entries(PAGES).filter(([, p]) => !p.under && (!p.staffOnly || canWrite()))
    .map(([id, p]) => h('a', { href: `#/${id}`, dataset: { page: id } }, p.title));
  app.replaceChildren(
    h('header', { class: 'top' },
      h('div', { class: 'brand' }, 'Meridian'),
      h('nav', { class: 'primary', 'aria-label': 'Main' }, ...links),
      h('div', { class: 'who' },
        h('span', {}, u.name, ' · ', h('span', { class: 'role' }, ROLE_LABEL[u.role])),
        h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'))),
    h('p', { id: 'status-line', class: 'status-line', role: 'status', 'aria-live': 'polite' }),
    h('main', { id: 'main', tabindex: '-1' }));
  await show();
}

whenSignedOut(() => signInPage('Your session has ended: sign in again.'));
window.addEventListener('hashchange', () => { if (state.me) void show(); });

try {
  await start(await request<Me>('GET', '/auth/me'));
} catch {
  signInPage();
}
