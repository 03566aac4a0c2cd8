// Connecting a clinic from the web app (issue 17): "Add connection" (a platform chooser grouped by role,
// a name), and a connection's own page (#/connection?id=…): its status in words, then what applies to its
// platform: Connect with <provider> (OAuth, with the one-time app registration guide), a credentials form
// (checked by the platform before anything is stored), each practitioner's calendar, the staff and service
// mapping, the webhook (made by Meridian, or pasted by hand), a test, and removal. The REST side is
// src/engine/connect/CONTRACT.md. Only the owner changes anything; the front desk sees the state.
// Secrets are never shown back (the API never returns them; inputs are never prefilled); every text from the
// API or the URL goes through `h` as text.
import { api, ApiError, seg } from './api.ts';
import { announce, field, h, modal, routeNotice, uid } from './dom.ts';
import { parseId } from './route.ts';
import { canWrite, isOwner, zoneFor } from './state.ts';
import { formatInstant } from './time.ts';

// ---------------------------------------------------------------- what the API answers

interface AuthField { key: string; label: string; secret: boolean; required: boolean; help?: string }
export interface ConfigField {
  key: string; label: string; type: 'text' | 'url' | 'email' | 'number' | 'boolean' | 'select' | 'list'; required?: boolean;
  options?: { value: string; label: string }[]; placeholder?: string; help?: string; default?: string | number | boolean;
}
interface Platform {
  id: string; displayName: string; role: 'source' | 'target' | 'notifier' | 'lead-form'; kind?: 'calendar' | 'crm' | 'feed';
  auth: AuthField[]; configFields?: ConfigField[]; fidelity?: string; defaultBaseUrl?: string; authSets?: string[][]; manualWebhook?: { steps: string[]; template?: string };
  oauth?: unknown; capabilities?: Record<string, boolean>;
}
interface Refs { practitioners?: Record<string, string>; services?: Record<string, string>; locations?: Record<string, string>; defaultPractitioner?: string }
interface Connection {
  id: string; platform: string; name: string; config?: Record<string, unknown>; refs?: Refs; privacy?: string; baseUrl?: string;
  secrets?: { fromEnvironment?: string[]; stored?: boolean | string[] }; status: string; lastSyncAt?: string; lastError?: string;
  provisionedBy?: string | null; missing?: string[]; account?: string; setup?: { complete: boolean; missing: string[] };
}
interface Health { id: string; status: string; needsReconnect: boolean; lastError?: string; lastSuccessAt?: string }
interface OAuthInput { key: string; label: string; placeholder?: string; pattern?: string; required: boolean }
interface Variant { id: string; label: string; inputs?: OAuthInput[]; scopes: string[]; scopeHelp: string; grant?: string }
interface Provider {
  platform: string; displayName: string; pkce: boolean; clientSecret: boolean; variants: Variant[];
  guide: { console: string; steps: string[] }; client: { configured: boolean; clientId?: string; from: 'environment' | 'app' | null };
}
interface Providers { redirectUri: string | null; items: Provider[] }
interface CalendarInfo { id: string; name: string; primary?: boolean; writable: boolean; owner?: string; timeZone?: string }
interface Binding { connection: string; calendar?: string }
interface PractitionerFull { id: string; name: string; email?: string; targets: Binding[]; active: boolean; provisionedBy?: string | null }
interface Entry { ref: string; name: string; email?: string }
interface DirectoryAnswer { staff: Entry[]; services: Entry[]; locations?: Entry[]; suggestions?: { practitioners?: Record<string, string>; services?: Record<string, string> } }
interface WebhookAnswer { mode: 'managed' | 'manual' | 'none'; url?: string; events?: string[]; state?: string; lastError?: string; lastDeliveryAt?: string; steps?: string[]; template?: string; note?: string }
interface TestAnswer { ok: boolean; checks: { id: string; ok: boolean; message: string; next?: string }[] }
interface Service { id: string; name: string }

const errText = (e: unknown) => (e instanceof ApiError ? e.message : e instanceof Error ? `Meridian is not reachable (${e.message})` : String(e));

// ---------------------------------------------------------------- small pieces

/** The group a platform is listed under in the chooser. */
export function roleGroup(p: Pick<Platform, 'role' | 'kind'>): string {
  if (p.role === 'source') return 'Booking sources';
  if (p.role === 'lead-form') return 'Lead forms';
  if (p.role === 'notifier') return 'Notifiers (e-mail, SMS, webhooks)';
  if (p.kind === 'crm') return 'CRMs';
  return 'Calendars';
}
const KIND: Record<string, string> = { 'Booking sources': 'Booking source', 'Lead forms': 'Lead form', Calendars: 'Calendar', CRMs: 'CRM', 'Notifiers (e-mail, SMS, webhooks)': 'Notifier' };
const GROUP_ORDER = ['Booking sources', 'Lead forms', 'Calendars', 'CRMs', 'Notifiers (e-mail, SMS, webhooks)'];

/**
 * An id from a name, as the server makes it (store/queries/setup.ts `freeId`): lower case, letters, digits, `-`,
 * the name's first 56 characters, not one already taken (then `-2`, `-3`, …).
 */
export function idFrom(name: string, fallback: string, taken: ReadonlySet<string>): string {
  const base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 56) || fallback;
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  return id;
}

/** A read-only text field with a Copy button (the redirect URI, the webhook URL). */
function copyField(label: string, value: string, hint?: string): HTMLElement {
  const input = h('input', { type: 'text', readOnly: true, value, class: 'copy-value', spellcheck: false });
  input.addEventListener('focus', () => input.select());
  return h('div', { class: 'copy-row' }, field(label, input, hint), copyButton(value, label));
}

function copyButton(value: string, what: string): HTMLButtonElement {
  return h('button', { type: 'button', 'aria-label': `Copy ${what.toLowerCase()}`, onclick: () => void copy(value, what) }, 'Copy');
}

async function copy(value: string, what: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(value);
    announce(`${what} copied`);
  } catch {
    // No clipboard permission (an insecure origin): select a hidden copy and let the browser copy it.
    const t = h('textarea', { value, readOnly: true, class: 'visually-hidden' });
    document.body.append(t);
    t.select();
    const ok = document.execCommand('copy');
    t.remove();
    announce(ok ? `${what} copied` : `Could not copy: select the text and copy it by hand`, ok ? 'ok' : 'error');
  }
}

/** The nodes given, without the ones left out (`cond ? node : undefined`). */
const kids = (...xs: (Node | string | undefined | false)[]): (Node | string)[] => xs.filter((x): x is Node | string => x !== undefined && x !== false);

/** A form's error line, read out when it changes. */
const errorLine = () => h('p', { class: 'form-error', role: 'alert' });

/** Run `work` with the button disabled; errors go to `error` (and are returned as false). */
async function busy(button: HTMLButtonElement, error: HTMLElement, work: () => Promise<void>): Promise<boolean> {
  button.disabled = true;
  error.textContent = '';
  try {
    await work();
    return true;
  } catch (e) {
    error.textContent = errText(e);
    return false;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- add a connection

/** "Add connection": choose the platform (grouped by role), name it, and go to its page. */
export async function addConnection(): Promise<void> {
  const [platforms, providers, conns] = await Promise.all([
    api.get<{ items: Platform[] }>('/platforms'),
    api.get<Providers>('/oauth/providers').catch(() => ({ redirectUri: '', items: [] as Provider[] })),
    api.get<{ items: Connection[] }>('/connections'),
  ]);
  const oauth = new Set(providers.items.map((p) => p.platform));
  const taken = new Set(conns.items.map((c) => c.id));
  const groups = new Map<string, Platform[]>();
  for (const p of [...platforms.items].sort((a, b) => a.displayName.localeCompare(b.displayName))) {
    const g = roleGroup(p);
    groups.set(g, [...(groups.get(g) ?? []), p]);
  }
  const platform = h('select', { name: 'platform', required: true },
    h('option', { value: '' }, 'Choose…'),
    GROUP_ORDER.filter((g) => groups.has(g)).map((g) => h('optgroup', { label: g },
      groups.get(g)!.map((p) => h('option', { value: p.id }, `${p.displayName}${oauth.has(p.id) ? ' (sign in with it)' : ''}`)))));
  const about = h('div', { class: 'platform-about', 'aria-live': 'polite' });
  const name = h('input', { type: 'text', name: 'name', required: true, maxLength: 200, autocomplete: 'off' });
  const idHint = h('small', { class: 'hint', id: uid('idh') });
  name.setAttribute('aria-describedby', idHint.id);
  const baseUrl = h('input', { type: 'url', name: 'baseUrl', autocomplete: 'off', spellcheck: false });
  const baseField = field('Server address (optional)', baseUrl, 'Only for a server of your own (a calendar server, a self-hosted instance). Leave empty for the platform\'s usual address.');
  baseField.hidden = true;
  const error = errorLine();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Add connection');
  const chosen = () => platforms.items.find((p) => p.id === platform.value);
  let nameTouched = false;
  const id = () => idFrom(name.value, chosen()?.id ?? 'connection', taken);
  const refresh = () => {
    const p = chosen();
    if (p && !nameTouched) name.value = p.displayName;
    idHint.textContent = name.value.trim() ? `Its id will be “${id()}” (used in links and the log).` : '';
    baseField.hidden = !p?.defaultBaseUrl;
    if (p?.defaultBaseUrl) baseUrl.placeholder = p.defaultBaseUrl;
    about.replaceChildren(...(p ? kids(
      h('p', {}, oauth.has(p.id) ? `You will sign in with ${p.displayName} on the next page: no keys to copy.`
        : p.auth.some((a) => a.secret) ? `On the next page: ${p.auth.filter((a) => a.secret).map((a) => a.label).join(', ')}.` : 'Nothing to copy: it works once added.'),
      p.fidelity ? h('details', {}, h('summary', {}, 'What this connection can do'), h('p', { class: 'muted' }, p.fidelity)) : undefined,
    ) : []));
  };
  platform.addEventListener('change', refresh);
  name.addEventListener('input', () => { nameTouched = name.value.trim() !== ''; refresh(); });
  const nameField = h('div', { class: 'field' }, h('label', { htmlFor: (name.id = uid()) }, 'Name'), name, idHint);
  const form = h('form', { class: 'create add-connection' },
    field('Platform', platform), about, nameField, baseField, error, h('div', { class: 'actions' }, submit));
  const dlg = modal('Add a connection', [form], { wide: true });
  platform.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const p = chosen();
    if (!p) { error.textContent = 'Choose the platform first.'; platform.focus(); return; }
    if (!name.value.trim()) { error.textContent = 'Give the connection a name.'; name.focus(); return; }
    await busy(submit, error, async () => {
      // The server derives the id the same way, and also steps past ids kept by removed connections.
      const made = await api.post<{ id: string }>('/connections', { platform: p.id, name: name.value.trim(), ...(baseUrl.value.trim() ? { baseUrl: baseUrl.value.trim() } : {}) });
      dlg.close();
      announce(`${name.value.trim()} added`);
      location.hash = `#/connection?id=${encodeURIComponent(made.id)}`;
    });
  });
}

/** Start the OAuth authorisation of `connectionId` with `variant`: the browser leaves for the provider. */
async function startOAuth(connectionId: string, prov: Pick<Provider, 'displayName'>, variant: string, inputs: Record<string, string> = {}): Promise<void> {
  const r = await api.post<{ authorizeUrl: string }>(`/connections/${seg(connectionId)}/oauth`, { variant, inputs });
  announce(`Opening ${prov.displayName}…`);
  location.assign(r.authorizeUrl);
}

/** A variant that needs nothing typed: the one button that connects. */
const oneClick = (prov: Provider) => (prov.variants.length === 1 && !(prov.variants[0].inputs ?? []).some((i) => i.required) ? prov.variants[0] : undefined);

/**
 * "Connect a calendar" on the Connections page: one button per calendar provider that connects by OAuth. It adds
 * the connection and, when the provider's app is set up and one way of connecting needs nothing typed, goes
 * straight to the provider's consent page; otherwise to the new connection's page (the app's guide, the choice).
 */
export async function quickConnect(o: { onlyWithoutCalendars?: boolean } = {}): Promise<HTMLElement | undefined> {
  const [platforms, providers, conns] = await Promise.all([
    api.get<{ items: Platform[] }>('/platforms'), api.get<Providers>('/oauth/providers').catch(() => undefined),
    o.onlyWithoutCalendars ? api.get<{ items: Connection[] }>('/connections') : undefined,
  ]);
  if (!providers) return undefined;
  if (conns) {
    const calendarIds = new Set(platforms.items.filter((x) => x.kind === 'calendar').map((x) => x.id));
    if (conns.items.some((c) => calendarIds.has(c.platform) && c.status !== 'disabled')) return undefined;
  }
  // Calendars Meridian writes to (not the feeds it serves): OAuth ones first, then those signed in to with a password.
  const calendars = platforms.items.filter((x) => x.kind === 'calendar' && x.auth.some((a) => a.secret))
    .sort((a, b) => Number(!providers.items.some((p) => p.platform === a.id)) - Number(!providers.items.some((p) => p.platform === b.id)));
  if (!calendars.length) return undefined;
  const error = errorLine();
  const buttons = calendars.map((platform) => {
    const prov = providers.items.find((p) => p.platform === platform.id);
    const b = h('button', { type: 'button' }, platform.displayName);
    b.addEventListener('click', () => void busy(b, error, async () => {
      const made = await api.post<{ id: string }>('/connections', { platform: platform.id, name: platform.displayName });
      const v = prov ? oneClick(prov) : undefined;
      if (prov?.client.configured && v) return startOAuth(made.id, prov, v.id);
      location.hash = `#/connection?id=${encodeURIComponent(made.id)}`;
    }));
    return b;
  });
  return h('section', { class: 'quick-connect', 'aria-labelledby': 'qc-h' }, h('h2', { id: 'qc-h' }, 'Connect a calendar'),
    h('p', { class: 'muted' }, 'Sign in with the account whose calendars Meridian should write to; then pick each practitioner\'s calendar.'),
    h('div', { class: 'row' }, buttons), error);
}

// ---------------------------------------------------------------- a connection's page

let disposers: (() => void)[] = [];
/** Stop what the page left running (the webhook poll). */
export function disposeConnection(): void {
  for (const d of disposers) d();
  disposers = [];
}

const STATUS: Record<string, { text: string; cls: string }> = {
  active: { text: 'Working', cls: 's-active' },
  needs_reauth: { text: 'Needs reconnecting', cls: 's-needs_reauth' },
  error: { text: 'Failing', cls: 's-error' },
  disabled: { text: 'Removed', cls: 's-disabled' },
  needs_setup: { text: 'Needs setup', cls: 's-needs_setup' },
};

/** What the connection still lacks before it can work, in words (empty: nothing). */
export function missingSetup(c: Connection, p: Platform, practitioners: PractitionerFull[], oauth: boolean, madeByMeridian: string[] = []): string[] {
  if (Array.isArray(c.missing)) return c.missing;
  const out: string[] = [];
  const have = new Set([...(c.secrets?.fromEnvironment ?? []), ...madeByMeridian]);
  const stored = c.secrets?.stored;
  if (Array.isArray(stored)) for (const k of stored) have.add(k);
  if (stored !== true) {
    const sets = p.authSets?.length ? p.authSets : [p.auth.filter((a) => a.secret && a.required).map((a) => a.key)];
    if (!sets.some((s) => s.every((k) => have.has(k)))) {
      const label = (k: string) => p.auth.find((a) => a.key === k)?.label ?? k;
      const nearest = sets.map((s) => s.filter((k) => !have.has(k))).sort((a, b) => a.length - b.length)[0];
      out.push(oauth ? `connecting the account (Connect with ${p.displayName})` : `credentials: ${nearest.map(label).join(', ')}`);
    }
  }
  const unset = (p.configFields ?? []).filter((f) => f.required && isUnset(c.config?.[f.key]));
  if (unset.length) out.push(`settings: ${unset.map((f) => f.label).join(', ')}`);
  if (p.role === 'target' && p.kind === 'calendar' && !practitioners.some((x) => x.targets.some((t) => t.connection === c.id))) {
    out.push('a calendar for at least one practitioner');
  }
  return out;
}

export async function connectionPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const id = parseId(params.get('id'));
  const back = h('p', {}, h('a', { href: '#/connections' }, '← All connections'));
  if (!id) {
    main.append(back, routeNotice('That link did not name a connection.'));
    return;
  }
  if (!canWrite()) {
    main.append(h('p', {}, 'Connections are looked after by the clinic\'s staff.'));
    return;
  }
  const connected = params.get('connected') === '1';
  if (connected) {
    announce('Connected');
    // A reload must not say it again.
    history.replaceState(null, '', `#/connection?id=${encodeURIComponent(id)}`);
  }
  const body = h('div', { class: 'connection-page' });
  main.append(back, body);
  const gen = { n: 0 };
  await renderConnection(body, id, connected, gen);
}

async function renderConnection(body: HTMLElement, id: string, connected: boolean, gen: { n: number }): Promise<void> {
  const mine = ++gen.n;
  disposeConnection();
  const owner = isOwner();
  // The webhook first: for a platform that signs nothing, asking for it makes the URL's token (then stored).
  const hook = await readWebhook(id);
  const [conns, platforms, health, providers, practitioners] = await Promise.all([
    api.get<{ items: Connection[] }>('/connections'),
    api.get<{ items: Platform[] }>('/platforms'),
    api.get<{ items: Health[] }>('/health/connections').catch(() => ({ items: [] as Health[] })),
    owner ? api.get<Providers>('/oauth/providers').catch(() => undefined) : Promise.resolve(undefined),
    api.get<{ items: PractitionerFull[] }>('/practitioners'),
  ]);
  if (mine !== gen.n) return;
  const c = conns.items.find((x) => x.id === id);
  if (!c) {
    body.replaceChildren(h('h1', {}, 'Connection not found'), h('p', { role: 'alert' }, `There is no connection “${id}”. It may have been removed.`));
    return;
  }
  const p = platforms.items.find((x) => x.id === c.platform) ?? { id: c.platform, displayName: c.platform, role: 'source' as const, auth: [] };
  const hl = health.items.find((x) => x.id === c.id);
  const provider = providers?.items.find((x) => x.platform === c.platform);
  const prs = practitioners.items.filter((x) => x.active !== false);
  const rerender = () => renderConnection(body, id, false, gen);
  const file = c.provisionedBy ?? undefined;

  // Status, in words.
  const status = hl?.needsReconnect ? 'needs_reauth' : (hl?.status ?? c.status);
  const tokenInUrl = hook.answer?.mode === 'manual' && /[?&]token=/.test(hook.answer.url ?? '');
  const missing = status === 'disabled' ? [] : missingSetup(c, p, prs, Boolean(provider), tokenInUrl ? ['webhookToken'] : []);
  const st = status === 'active' && missing.length ? STATUS.needs_setup : STATUS[status] ?? { text: status, cls: '' };
  const lastError = hl?.lastError ?? c.lastError;
  const statusSection = h('section', { class: 'card conn-status', 'aria-labelledby': 'st-h' },
    h('h2', { id: 'st-h' }, 'Status'),
    h('p', {}, h('span', { class: `pill ${st.cls}`, dataset: { status: st === STATUS.needs_setup ? 'needs_setup' : status } }, st.text),
      st === STATUS.needs_setup || status === 'needs_setup' ? ` — still needed: ${missing.join('; ')}.` : '',
      status === 'needs_reauth' ? ` — ${lastError ?? 'the authorisation was revoked or has expired'}. ${provider ? `Connect with ${provider.displayName} again below.` : 'Enter new credentials below.'}` : '',
      status === 'error' && lastError ? ` — ${lastError}` : ''),
    connected ? h('p', { class: 'ok-line' }, `Connected to ${p.displayName}.`) : undefined,
    h('dl', { class: 'details' },
      h('dt', {}, 'Platform'), h('dd', {}, p.displayName),
      h('dt', {}, 'Kind'), h('dd', {}, KIND[roleGroup(p)] ?? roleGroup(p)),
      c.account ? [h('dt', {}, 'Account'), h('dd', {}, c.account)] : [],
      c.baseUrl ? [h('dt', {}, 'Server'), h('dd', {}, c.baseUrl)] : [],
      h('dt', {}, 'Last successful sync'), h('dd', {}, hl?.lastSuccessAt ? formatInstant(hl.lastSuccessAt, zoneFor()) : 'never'),
      file ? [h('dt', {}, 'Set up in'), h('dd', {}, `From ${file} (change it there)`)] : []));

  const sections: HTMLElement[] = [h('h1', {}, c.name), statusSection];
  if (!owner) {
    sections.push(h('p', { class: 'muted' }, 'Only the clinic\'s owner can connect accounts or change this connection.'));
  }
  if (owner && provider && status !== 'disabled') sections.push(oauthSection(c, p, provider, providers!.redirectUri, rerender));
  if (owner && status !== 'disabled' && (p.configFields?.length || p.defaultBaseUrl)) sections.push(settingsSection(c, p, file, rerender));
  // The URL token is Meridian's own (it is in the webhook URL below): not something to type.
  const typed = tokenInUrl ? p.auth.filter((a) => a.key !== 'webhookToken') : p.auth;
  if (owner && typed.length && status !== 'disabled') sections.push(credentialsSection(c, { ...p, auth: typed }, Boolean(provider), rerender));
  const later: Promise<HTMLElement | undefined>[] = [];
  if (owner && p.role === 'target' && p.kind === 'calendar') later.push(calendarsSection(c, prs));
  if (owner && p.role === 'source') later.push(mappingSection(c, file));
  if (hook.answer || hook.error) later.push(Promise.resolve(webhookSection(c, p, owner, hook)));
  const rest = await Promise.all(later);
  if (mine !== gen.n) return;
  for (const s of rest) if (s) sections.push(s);
  if (owner) sections.push(testSection(c), removeSection(c, p, file, rest.some((s) => s?.dataset.mode === 'managed')));
  body.replaceChildren(...sections);
}

// ---------------------------------------------------------------- settings

const isUnset = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

/** A list setting as typed: comma- or line-separated, blanks dropped. */
export function parseList(text: string): string[] {
  return text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
}

/** What a setting's control shows for a stored value (the setting's default when there is none). */
export function shownValue(f: ConfigField, v: unknown): string | boolean {
  const val = isUnset(v) ? f.default : v;
  if (f.type === 'boolean') return val === true;
  if (f.type === 'list') return Array.isArray(val) ? val.map(String).join('\n') : val === undefined ? '' : String(val);
  return val === undefined || val === null ? '' : typeof val === 'object' ? JSON.stringify(val) : String(val);
}

/** The value to store for what a control holds; undefined: the setting is taken out (its default applies). */
export function storedValue(f: ConfigField, shown: string | boolean): unknown {
  if (f.type === 'boolean') return shown === true;
  const text = String(shown).trim();
  if (text === '') return undefined;
  if (f.type === 'number') return Number.isFinite(Number(text)) ? Number(text) : text;
  if (f.type === 'list') return parseList(text);
  return text;
}

/**
 * The connection's own settings (`config`, as the platform describes them) and, under Advanced, its API address.
 * Saved whole (keys the form does not show are kept); the server checks them as `meridian validate` would and
 * names each problem, shown next to its field. A connection from the configuration file shows them read-only.
 */
function settingsSection(c: Connection, p: Platform, file: string | undefined, rerender: () => Promise<void>): HTMLElement {
  const config = c.config ?? {};
  const readOnly = Boolean(file);
  const controls = (p.configFields ?? []).map((f) => {
    const id = uid('set');
    const shown = shownValue(f, config[f.key]);
    const err = h('p', { class: 'form-error field-error', role: 'alert', id: `${id}-err` });
    const hintId = f.help ? `${id}-hint` : undefined;
    const describedBy = [hintId, err.id].filter(Boolean).join(' ');
    const label = `${f.label}${f.required ? ' (required)' : ''}`;
    let el: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    let wrap: HTMLElement;
    const hint = f.help ? h('small', { class: 'hint', id: hintId }, f.help) : undefined;
    if (f.type === 'boolean') {
      el = h('input', { type: 'checkbox', id, name: f.key, checked: shown === true, disabled: readOnly });
      wrap = h('div', { class: 'field check' }, h('label', {}, el, label), hint, err);
    } else {
      if (f.type === 'select') {
        const opts = [...(f.options ?? [])];
        if (shown !== '' && !opts.some((o) => o.value === shown)) opts.push({ value: String(shown), label: String(shown) });
        el = h('select', { id, name: f.key, required: Boolean(f.required), disabled: readOnly },
          f.default === undefined ? h('option', { value: '' }, f.required ? 'Choose…' : '— not set —') : undefined,
          opts.map((o) => h('option', { value: o.value }, o.label)));
        el.value = String(shown);
      } else if (f.type === 'list') {
        el = h('textarea', { id, name: f.key, rows: 2, value: String(shown), placeholder: f.placeholder ?? '', disabled: readOnly, spellcheck: false });
      } else {
        el = h('input', { type: f.type === 'number' ? 'number' : f.type, id, name: f.key, value: String(shown), placeholder: f.placeholder ?? '',
          step: f.type === 'number' ? 'any' : undefined, autocomplete: 'off', spellcheck: false, disabled: readOnly });
      }
      wrap = h('div', { class: 'field' }, h('label', { htmlFor: id }, label), el,
        f.type === 'list' ? h('small', { class: 'hint' }, 'One per line, or separated by commas.') : undefined, hint, err);
    }
    el.setAttribute('aria-describedby', describedBy);
    const read = () => (el instanceof HTMLInputElement && el.type === 'checkbox' ? el.checked : el.value);
    return { f, el, wrap, err, initial: read(), read };
  });
  const base = p.defaultBaseUrl ? (() => {
    const id = uid('set');
    const el = h('input', { type: 'url', id, name: 'baseUrl', value: c.baseUrl ?? '', placeholder: p.defaultBaseUrl, autocomplete: 'off', spellcheck: false, disabled: readOnly });
    const err = h('p', { class: 'form-error field-error', role: 'alert', id: `${id}-err` });
    const hint = h('small', { class: 'hint', id: `${id}-hint` }, `Only for a server of your own (a self-hosted instance, a sovereign cloud). Leave empty for ${p.defaultBaseUrl}.`);
    el.setAttribute('aria-describedby', `${hint.id} ${err.id}`);
    const wrap = h('details', { class: 'advanced', open: Boolean(c.baseUrl) },
      h('summary', {}, 'Advanced'), h('div', { class: 'field' }, h('label', { htmlFor: id }, 'API address'), el, hint, err));
    return { el, err, wrap };
  })() : undefined;
  const error = errorLine();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Save settings');
  const form = h('form', { class: 'settings', 'aria-labelledby': 'set-h', novalidate: true },
    controls.map((x) => x.wrap), base?.wrap,
    readOnly ? undefined : error, readOnly ? undefined : h('div', { class: 'actions' }, button));
  const clear = () => {
    error.textContent = '';
    for (const x of [...controls, ...(base ? [base] : [])]) { x.err.textContent = ''; x.el.removeAttribute('aria-invalid'); }
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (readOnly) return;
    clear();
    // A number input holding what is not a number reads as empty: say so rather than clear the setting.
    const bad = controls.filter((x) => x.el instanceof HTMLInputElement && x.el.validity.badInput);
    for (const x of bad) { x.err.textContent = 'a number'; x.el.setAttribute('aria-invalid', 'true'); }
    if (bad.length) { bad[0].el.focus(); error.textContent = 'Not saved: see the fields marked above.'; return; }
    const next: Record<string, unknown> = { ...config };
    const changed = controls.filter((x) => x.read() !== x.initial);
    for (const x of changed) {
      const v = storedValue(x.f, x.read());
      if (v === undefined) delete next[x.f.key]; else next[x.f.key] = v;
    }
    const baseValue = base?.el.value.trim() ?? '';
    const baseChanged = base !== undefined && baseValue !== (c.baseUrl ?? '');
    if (!changed.length && !baseChanged) { announce('Nothing to save: the settings are as shown'); return; }
    const ok = await busy(button, error, async () => {
      try {
        await api.patch(`/connections/${seg(c.id)}`, { ...(changed.length ? { config: next } : {}), ...(baseChanged ? { baseUrl: baseValue || null } : {}) });
      } catch (err) {
        const issues = err instanceof ApiError ? (err.details?.issues as { field?: string; message?: string }[] | undefined) : undefined;
        if (!issues?.length) throw err;
        // Each problem next to its field; what belongs to no field shown goes to the form's line.
        const rest: string[] = [];
        let first: HTMLElement | undefined;
        for (const i of issues) {
          const path = String(i.field ?? '').split('.');
          const target = path[0] === 'config' ? controls.find((x) => x.f.key === path[1]) : path[0] === 'baseUrl' ? base : undefined;
          if (!target) { rest.push(`${i.field}: ${i.message}`); continue; }
          target.err.textContent = [target.err.textContent, i.message].filter(Boolean).join('; ');
          target.el.setAttribute('aria-invalid', 'true');
          first ??= target.el;
        }
        first?.focus();
        throw new ApiError(err instanceof ApiError ? err.status : 400, 'invalid_request', rest.length ? `Not saved: ${rest.join('; ')}` : 'Not saved: see the fields marked above.');
      }
    });
    if (!ok) return;
    await rerender();
    announce('Settings saved');
  });
  return h('section', { class: 'card', 'aria-labelledby': 'set-h', dataset: { section: 'settings' } },
    h('h2', { id: 'set-h' }, 'Settings'),
    readOnly ? h('p', { class: 'muted' }, `From ${file}: the settings are changed there.`) : undefined,
    form);
}

// ---------------------------------------------------------------- Connect with <provider>

function oauthSection(c: Connection, p: Platform, prov: Provider, redirectUri: string | null, rerender: () => Promise<void>): HTMLElement {
  const s = h('section', { class: 'card', 'aria-labelledby': 'oa-h' }, h('h2', { id: 'oa-h' }, `Connect with ${prov.displayName}`));
  const scopesOf = (v: Variant) => h('div', { class: 'scopes' },
    h('p', {}, 'Meridian asks only for: ', v.scopes.flatMap((x, i) => [i ? ', ' : '', h('code', {}, x)])),
    h('p', { class: 'muted' }, v.scopeHelp));
  if (!prov.client.configured) {
    const env = `MERIDIAN_OAUTH_${prov.platform.toUpperCase().replace(/-/g, '_')}_CLIENT_ID`;
    s.append(
      h('p', {}, `Once for the whole clinic, register Meridian as an app with ${prov.displayName}. It takes a few minutes; then every account connects with one button.`),
      h('ol', { class: 'guide' },
        h('li', {}, 'Open ', h('a', { href: prov.guide.console, target: '_blank', rel: 'noopener noreferrer' }, `the ${prov.displayName} console`), ' (opens in a new tab).'),
        // The provider's own steps; its last one (copy the client id and secret) after the redirect URI and scopes.
        prov.guide.steps.slice(0, -1).map((x) => h('li', {}, x)),
        h('li', {}, redirectUri ? copyField('Register this redirect URI', redirectUri, 'Exactly this address: the same scheme, host, port and path.')
          : h('span', { class: 'warning' }, 'Register the redirect URI <Meridian\'s public address>/oauth/callback. Meridian does not know its public address yet: set MERIDIAN_PUBLIC_URL (or --public-url) and reload this page to see it.')),
        h('li', {}, 'Allow these permissions:', prov.variants.map((v) => h('div', {}, prov.variants.length > 1 ? h('strong', {}, v.label) : undefined, scopesOf(v)))),
        prov.guide.steps.slice(-1).map((x) => h('li', {}, x))));
    if (prov.client.from === 'environment') {
      s.append(h('p', { class: 'warning' }, `The app is set in the environment (${env}) and cannot be changed here; the environment is missing part of it.`));
    } else {
      // The first registration: saving the app goes on to the provider at once for each way of connecting that
      // needs nothing typed (one button each); the others are offered once the app is saved.
      const direct = prov.variants.filter((v) => !(v.inputs ?? []).some((i) => i.required));
      s.append(clientForm(prov, rerender, direct.map((v) => ({ label: prov.variants.length > 1 ? v.label : undefined, go: () => startOAuth(c.id, prov, v.id) })), direct.length < prov.variants.length));
    }
    return s;
  }
  s.append(h('p', { class: 'muted' }, `Meridian is registered with ${prov.displayName} (client id `, h('code', {}, prov.client.clientId ?? '…'), prov.client.from === 'environment' ? ', set in the environment and read-only here).' : ').'));
  for (const v of prov.variants) {
    const inputs = (v.inputs ?? []).map((i) => ({ i, el: h('input', { type: 'text', name: i.key, required: i.required, placeholder: i.placeholder, autocomplete: 'off', spellcheck: false }) }));
    const error = errorLine();
    // Once connected, the same button connects again (another account, or consent given anew).
    const again = c.setup?.complete ? ' again' : '';
    const label = prov.variants.length > 1 ? `Connect with ${prov.displayName}${again}: ${v.label}` : `Connect with ${prov.displayName}${again}`;
    const button = h('button', { type: 'submit', class: 'primary' }, label);
    const form = h('form', { class: 'oauth-variant', dataset: { variant: v.id } },
      prov.variants.length > 1 ? h('h3', {}, v.label) : undefined,
      inputs.map(({ i, el }) => field(i.label, el)), scopesOf(v), error, h('div', { class: 'actions' }, button));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values: Record<string, string> = {};
      for (const { i, el } of inputs) {
        const val = el.value.trim();
        el.removeAttribute('aria-invalid');
        if (!val && i.required) { el.setAttribute('aria-invalid', 'true'); error.textContent = `${i.label}: fill this in first.`; el.focus(); return; }
        if (val && i.pattern) {
          let ok = true;
          try { ok = new RegExp(`^(?:${i.pattern})$`).test(val); } catch { ok = true; }
          if (!ok) { el.setAttribute('aria-invalid', 'true'); error.textContent = `${i.label}: that does not look right${i.placeholder ? ` (like ${i.placeholder})` : ''}.`; el.focus(); return; }
        }
        if (val) values[i.key] = val;
      }
      await busy(button, error, () => startOAuth(c.id, prov, v.id, values));
    });
    s.append(form);
  }
  if (prov.client.from === 'app') s.append(h('details', { class: 'change-app' }, h('summary', {}, `Change the app registered with ${prov.displayName}`), redirectUri ? h('p', {}, 'Redirect URI: ', h('code', {}, redirectUri)) : undefined, clientForm(prov, rerender)));
  return s;
}

function clientForm(prov: Provider, rerender: () => Promise<void>, connect: { label?: string; go: () => Promise<void> }[] = [], saveOnly = true): HTMLFormElement {
  const clientId = h('input', { type: 'text', name: 'clientId', required: true, autocomplete: 'off', spellcheck: false });
  const secret = prov.clientSecret ? h('input', { type: 'password', name: 'clientSecret', required: !prov.client.configured, autocomplete: 'new-password' }) : undefined;
  const error = errorLine();
  const goes = connect.map((c) => ({ ...c, button: h('button', { type: 'submit', class: 'primary' }, `Save the app and connect with ${prov.displayName}${c.label ? `: ${c.label}` : ''}`) }));
  const button = saveOnly || !goes.length ? h('button', { type: 'submit', class: goes.length ? '' : 'primary' }, 'Save the app') : undefined;
  const form = h('form', { class: 'oauth-client' }, field('Client id', clientId),
    secret ? field('Client secret', secret, 'Kept encrypted; never shown again.') : undefined, error, h('div', { class: 'actions' }, goes.map((g) => g.button), button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // Which button: one that goes on to the provider, or "Save the app" (Enter in a field: the first button).
    const sub = (e as SubmitEvent).submitter;
    const go = goes.find((g) => g.button === sub) ?? (sub === button ? undefined : goes[0]);
    const pressed = (go?.button ?? button)!;
    const ok = await busy(pressed, error, async () => {
      await api.put(`/oauth/providers/${seg(prov.platform)}`, { clientId: clientId.value.trim(), ...(secret?.value ? { clientSecret: secret.value } : {}) });
    });
    if (ok && go) {
      announce(`${prov.displayName} app saved`);
      await busy(pressed, error, go.go);
    } else if (ok) {
      await rerender();
      announce(`${prov.displayName} app saved`);
    }
  });
  return form;
}

// ---------------------------------------------------------------- credentials

function credentialsSection(c: Connection, p: Platform, oauth: boolean, rerender: () => Promise<void>): HTMLElement {
  const fromEnv = new Set(c.secrets?.fromEnvironment ?? []);
  const stored = c.secrets?.stored;
  const storedKey = (k: string) => (Array.isArray(stored) ? stored.includes(k) : false);
  const inputs = p.auth.map((a) => {
    const plain = !a.secret || /^(user(name)?|login|email|account(id)?|accountname)$/i.test(a.key);
    const el = h('input', { type: plain ? 'text' : 'password', name: a.key, autocomplete: plain ? 'off' : 'new-password', spellcheck: false, disabled: fromEnv.has(a.key) });
    const notes = [a.help, fromEnv.has(a.key) ? 'Set in the environment: change it there.' : storedKey(a.key) ? 'Stored (never shown): type a new one to replace it.' : undefined].filter(Boolean).join(' ');
    const f = field(`${a.label}${a.required && !fromEnv.has(a.key) ? '' : ' (optional)'}`, el, notes || undefined);
    if (storedKey(a.key)) f.append(h('span', { class: 'stored-mark' }, '✓ stored'));
    return { a, el, f };
  });
  // A platform with a usual address has it under Settings → Advanced; one without shows here the address it was given.
  const showBase = !p.defaultBaseUrl && Boolean(c.baseUrl);
  const baseUrl = showBase ? h('input', { type: 'url', name: 'baseUrl', value: c.baseUrl ?? '', autocomplete: 'off', spellcheck: false }) : undefined;
  const error = errorLine();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Check and save');
  const form = h('form', { class: 'credentials', 'aria-labelledby': 'cr-h' },
    stored === true && oauth ? h('p', { class: 'muted stored-mark' }, '✓ Credentials are stored (never shown). Type new ones to replace them.') : undefined,
    baseUrl ? field('Server address', baseUrl, 'The address of the server.') : undefined,
    inputs.map((x) => x.f),
    h('p', { class: 'hint' }, `Meridian first tries them with ${p.displayName}; nothing is stored unless ${p.displayName} accepts them.`),
    error, h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values: Record<string, string> = {};
    for (const { a, el } of inputs) if (!el.disabled && el.value !== '') values[a.key] = a.secret ? el.value : el.value.trim();
    const base = baseUrl?.value.trim() ?? '';
    const baseChanged = baseUrl !== undefined && base !== (c.baseUrl ?? '');
    if (!Object.keys(values).length && !baseChanged) { error.textContent = 'Type the credentials first.'; inputs.find((x) => !x.el.disabled)?.el.focus(); return; }
    let saved: { checked?: boolean; message?: string } | undefined;
    const ok = await busy(button, error, async () => {
      if (baseChanged) await api.patch(`/connections/${seg(c.id)}`, { baseUrl: base || null });
      try {
        if (Object.keys(values).length) saved = await api.put(`/connections/${seg(c.id)}/credentials`, values);
      } catch (err) {
        // Refused credentials: the platform's answer, in words, next to the form.
        if (err instanceof ApiError && err.code === 'credentials_refused') throw new ApiError(err.status, err.code, `Not saved. ${err.message}`);
        throw err;
      }
    });
    if (!ok) {
      for (const { el } of inputs) if (el.type === 'password') el.value = '';
      return;
    }
    for (const { el } of inputs) el.value = '';
    // "Checked: 2 calendars found" → "Checked and saved (2 calendars found)"; a platform that cannot be checked says why.
    const what = saved?.message?.replace(/^Checked:\s*/, '');
    // The page shows the new state before the status line says so.
    await rerender();
    announce(saved?.checked === false ? `Saved, not checked: ${saved.message?.replace(/^Saved without a check:\s*/, '') ?? ''}` : `Checked and saved${what ? ` (${what})` : ''}`);
  });
  const section = h('section', { class: 'card', 'aria-labelledby': 'cr-h' },
    h('h2', { id: 'cr-h' }, oauth ? 'Or enter credentials by hand' : 'Credentials'));
  const have = stored === true || (Array.isArray(stored) && stored.length > 0);
  if (oauth) section.append(h('details', {}, h('summary', {}, 'Show the form (for accounts that cannot sign in above)'), form));
  else if (have) section.append(h('p', { class: 'stored-mark' }, '✓ Credentials are stored (never shown).'), h('details', {}, h('summary', {}, 'Replace the credentials'), form));
  else section.append(form);
  return section;
}

// ---------------------------------------------------------------- calendars

async function calendarsSection(c: Connection, prs: PractitionerFull[]): Promise<HTMLElement> {
  const s = h('section', { class: 'card', 'aria-labelledby': 'cal-h', dataset: { section: 'calendars' } }, h('h2', { id: 'cal-h' }, 'Calendars'));
  if (c.setup && !c.setup.complete) {
    s.append(h('p', { class: 'muted' }, 'Once the account is connected, its calendars are listed here to pick each practitioner\'s.'));
    return s;
  }
  let cals: { items: CalendarInfo[]; suggestions?: Record<string, string> };
  try {
    cals = await api.get(`/connections/${seg(c.id)}/calendars`);
  } catch (e) {
    s.append(h('p', { class: 'muted' }, `The account's calendars cannot be listed yet: ${errText(e)}`));
    return s;
  }
  if (!cals.items.length) {
    s.append(h('p', {}, 'The account has no calendars Meridian can see.'));
    return s;
  }
  s.append(h('p', { class: 'muted' }, 'Choose where each practitioner\'s appointments are written. Read-only calendars cannot be chosen.'));
  const DEFAULT = '\u0000default';
  const rows = prs.map((pr) => {
    const bound = pr.targets.find((t) => t.connection === c.id);
    const current = bound ? (bound.calendar ?? DEFAULT) : '';
    const suggested = cals.suggestions?.[pr.id];
    const pick = current || (suggested && cals.items.some((x) => x.id === suggested && x.writable) ? suggested : '');
    const known = new Set(cals.items.map((x) => x.id));
    const sel = h('select', { name: `calendar-${pr.id}`, disabled: Boolean(pr.provisionedBy), dataset: { practitioner: pr.id } },
      h('option', { value: '' }, '— not written to this account —'),
      current === DEFAULT ? h('option', { value: DEFAULT }, 'the account\'s default calendar') : undefined,
      current && current !== DEFAULT && !known.has(current) ? h('option', { value: current }, `${current} (not found in the account)`) : undefined,
      cals.items.map((x) => h('option', { value: x.id, disabled: !x.writable },
        `${x.name}${x.primary ? ' (primary)' : ''}${x.owner && x.owner !== x.name ? ` · ${x.owner}` : ''}${x.writable ? '' : ' — read-only'}`)));
    sel.value = pick;
    const label = uid('cl');
    sel.id = label;
    const note = pr.provisionedBy ? `From ${pr.provisionedBy}` : !current && pick ? 'Suggested — not saved yet' : '';
    return { pr, sel, current, tr: h('tr', { dataset: { practitioner: pr.id } },
      h('th', { scope: 'row' }, h('label', { htmlFor: label }, pr.name), pr.email ? h('div', { class: 'muted' }, pr.email) : undefined),
      h('td', {}, sel, note ? h('div', { class: 'hint' }, note) : undefined)) };
  });
  const error = errorLine();
  const button = h('button', { type: 'button', class: 'primary' }, 'Save calendars');
  button.addEventListener('click', async () => {
    const changed = rows.filter((r) => !r.pr.provisionedBy && r.sel.value !== r.current);
    if (!changed.length) { announce('Nothing to save: the calendars are as chosen'); return; }
    const done: string[] = [];
    const ok = await busy(button, error, async () => {
      for (const r of changed) {
        const others = r.pr.targets.filter((t) => t.connection !== c.id);
        const v = r.sel.value;
        const targets = v === '' ? others : [...others, v === DEFAULT ? { connection: c.id } : { connection: c.id, calendar: v }];
        const after = await api.patch<PractitionerFull>(`/practitioners/${seg(r.pr.id)}`, { targets });
        r.pr.targets = after?.targets ?? targets;
        r.current = v;
        r.tr.querySelector('.hint')?.remove();
        done.push(`${r.pr.name}: ${v ? r.sel.selectedOptions[0]?.textContent ?? v : 'none'}`);
      }
    });
    if (ok) announce(`Calendars saved (${done.join('; ')})`);
    else if (done.length) error.textContent += ` (saved before the error: ${done.join('; ')})`;
  });
  s.append(h('div', { class: 'table-wrap' }, h('table', { class: 'calendars' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Practitioner'), h('th', { scope: 'col' }, 'Calendar'))),
    h('tbody', {}, rows.map((r) => r.tr)))), error, h('div', { class: 'actions' }, button));
  return s;
}

// ---------------------------------------------------------------- staff and service mapping

async function mappingSection(c: Connection, file: string | undefined): Promise<HTMLElement | undefined> {
  const s = h('section', { class: 'card', 'aria-labelledby': 'map-h', dataset: { section: 'mapping' } }, h('h2', { id: 'map-h' }, 'Staff and services'));
  if (c.setup && !c.setup.complete) {
    s.append(h('p', { class: 'muted' }, 'Once the account is connected, its staff and services are listed here to map onto the clinic\'s.'));
    return s;
  }
  let dir: DirectoryAnswer;
  try {
    dir = await api.get(`/connections/${seg(c.id)}/directory`);
  } catch (e) {
    // A platform that cannot list its staff: nothing to map here (its references are set in the clinic's file).
    if (e instanceof ApiError && e.code === 'invalid_request') return undefined;
    s.append(h('p', { class: 'muted' }, `The platform's staff and services cannot be listed yet: ${errText(e)}`));
    return s;
  }
  const [prs, svcs] = await Promise.all([api.get<{ items: PractitionerFull[] }>('/practitioners'), api.get<{ items: Service[] }>('/services')]);
  const refs = c.refs ?? {};
  const table = (caption: string, entries: Entry[], current: Record<string, string>, suggested: Record<string, string>, choices: { id: string; name: string }[], col: string, kind: string) => {
    const rows = entries.map((en) => {
      const sel = h('select', { id: uid('mp'), disabled: Boolean(file), dataset: { ref: en.ref, kind } },
        h('option', { value: '' }, '— not mapped —'), choices.map((x) => h('option', { value: x.id }, x.name)));
      const cur = current[en.ref];
      sel.value = cur ?? (suggested[en.ref] && choices.some((x) => x.id === suggested[en.ref]) ? suggested[en.ref] : '');
      return { en, sel, tr: h('tr', {},
        h('th', { scope: 'row' }, h('label', { htmlFor: sel.id }, en.name), en.email ? h('div', { class: 'muted' }, en.email) : undefined),
        h('td', {}, sel, !cur && sel.value ? h('div', { class: 'hint' }, 'Suggested — not saved yet') : undefined)) };
    });
    const el = h('div', { class: 'table-wrap' }, h('table', { class: `mapping ${kind}` }, h('caption', {}, caption),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'At the platform'), h('th', { scope: 'col' }, col))),
      h('tbody', {}, rows.length ? rows.map((r) => r.tr) : h('tr', {}, h('td', { colSpan: 2, class: 'muted' }, 'None listed.')))));
    return { el, rows };
  };
  const staff = table('Staff', dir.staff, refs.practitioners ?? {}, dir.suggestions?.practitioners ?? {}, prs.items.filter((x) => x.active !== false), 'Meridian practitioner', 'practitioners');
  const services = table('Services', dir.services, refs.services ?? {}, dir.suggestions?.services ?? {}, svcs.items, 'Meridian service', 'services');
  const error = errorLine();
  const button = h('button', { type: 'button', class: 'primary', disabled: Boolean(file) }, 'Save mapping');
  button.addEventListener('click', async () => {
    const merge = (was: Record<string, string> | undefined, rows: { en: Entry; sel: HTMLSelectElement }[]) => {
      const out = { ...(was ?? {}) };
      for (const r of rows) if (r.sel.value) out[r.en.ref] = r.sel.value; else delete out[r.en.ref];
      return out;
    };
    const next: Refs = { ...refs, practitioners: merge(refs.practitioners, staff.rows), services: merge(refs.services, services.rows) };
    const ok = await busy(button, error, async () => { await api.patch(`/connections/${seg(c.id)}`, { refs: next }); });
    if (ok) {
      c.refs = next;
      for (const r of [...staff.rows, ...services.rows]) r.tr.querySelector('.hint')?.remove();
      const n = staff.rows.filter((r) => r.sel.value).length;
      announce(`Mapping saved: ${n} of ${staff.rows.length} staff mapped`);
    }
  });
  s.append(...kids(h('p', { class: 'muted' }, 'Who is who: bookings for a person or service at the platform go to the Meridian practitioner or service chosen here.'),
    staff.el, services.el,
    file ? h('p', { class: 'muted' }, `From ${file}: the mapping is changed there.`) : undefined,
    error, h('div', { class: 'actions' }, button)));
  return s;
}

// ---------------------------------------------------------------- webhook

/** The webhook's answer; nothing for the front desk (the owner's) or a connection that is gone. */
async function readWebhook(id: string): Promise<{ answer?: WebhookAnswer; error?: string }> {
  try {
    return { answer: await api.get<WebhookAnswer>(`/connections/${seg(id)}/webhook`) };
  } catch (e) {
    if (e instanceof ApiError && (e.status === 403 || e.status === 404)) return {};
    return { error: errText(e) };
  }
}

function webhookSection(c: Connection, p: Platform, owner: boolean, hook: { answer?: WebhookAnswer; error?: string }): HTMLElement | undefined {
  if (hook.error) return h('section', { class: 'card', 'aria-labelledby': 'wh-h' }, h('h2', { id: 'wh-h' }, 'Webhook'), h('p', { class: 'form-error' }, `The webhook's state could not be read: ${hook.error}`));
  const w = hook.answer;
  if (!w || w.mode === 'none') return undefined;
  const s = h('section', { class: 'card', 'aria-labelledby': 'wh-h', dataset: { section: 'webhook', mode: w.mode } }, h('h2', { id: 'wh-h' }, 'Webhook'));
  const tz = zoneFor();
  const url = w.url ?? '';
  const fill = (t: string) => t.split('{url}').join(url);
  if (w.mode === 'managed') {
    const active = w.state === 'active';
    const error = errorLine();
    const made = w.state === 'active' || w.state === 'failed';
    const button = h('button', { type: 'button' }, made ? 'Re-create subscription' : 'Create subscription');
    button.addEventListener('click', async () => {
      let after: WebhookAnswer | undefined;
      const ok = await busy(button, error, async () => { after = await api.post<WebhookAnswer>(`/connections/${seg(c.id)}/webhook`); });
      if (ok && after) {
        announce(after.state === 'active' ? 'Subscription re-created' : `The subscription could not be made${after.lastError ? `: ${after.lastError}` : ''}`, after.state === 'active' ? 'ok' : 'error');
        const fresh = webhookSection(c, p, owner, { answer: after });
        if (fresh) s.replaceWith(fresh);
      }
    });
    const STATE: Record<string, string> = { active: 'Active', failed: `Failed${w.lastError ? `: ${w.lastError}` : ''}`, removed: 'Removed', none: 'Not made yet' };
    s.append(...kids(h('p', {}, made ? `Meridian created the subscription at ${p.displayName}: bookings arrive as they happen.`
      : `Meridian creates the subscription at ${p.displayName} itself, as soon as it can sign in there.`),
      h('dl', { class: 'details' },
        h('dt', {}, 'State'), h('dd', { class: active ? 'ok-text' : 'err', dataset: { state: w.state ?? 'none' } }, STATE[w.state ?? 'none'] ?? w.state ?? ''),
        w.events?.length ? [h('dt', {}, 'Events'), h('dd', {}, w.events.join(', '))] : [],
        url ? [h('dt', {}, 'Address'), h('dd', {}, h('code', { class: 'wrap' }, url))] : [],
        w.lastDeliveryAt ? [h('dt', {}, 'Last delivery'), h('dd', {}, formatInstant(w.lastDeliveryAt, tz))] : []),
      w.note ? h('p', { class: 'muted' }, `Note: ${w.note}.`) : undefined,
      owner ? h('div', { class: 'actions' }, button) : undefined, error));
    return s;
  }
  // Manual: what the owner pastes at the platform, and whether anything has arrived yet.
  const state = h('p', { class: 'delivery-state', role: 'status' });
  const show = (last?: string) => {
    state.replaceChildren(last ? h('span', { class: 'ok-text' }, `✓ Receiving (last at ${formatInstant(last, tz)})`) : h('span', {}, '… Waiting for the first delivery'));
    state.dataset.receiving = last ? 'yes' : 'no';
  };
  show(w.lastDeliveryAt);
  const steps = w.steps ?? p.manualWebhook?.steps ?? [];
  const template = w.template ?? p.manualWebhook?.template;
  s.append(...kids(h('p', {}, `${p.displayName} is told where to send ${p.role === 'lead-form' ? 'its submissions' : 'bookings'} by hand, once:`),
    w.note ? h('p', { class: 'warning' }, `${w.note}.`) : undefined,
    !url ? undefined : owner ? copyField('Webhook URL', url, 'It contains a secret token: paste it only into the platform.') : h('p', { class: 'muted' }, 'The owner sets the webhook address up at the platform.'),
    owner && steps.length ? h('ol', { class: 'steps' }, steps.map((x) => h('li', {}, fill(x)))) : undefined,
    owner && template ? h('div', { class: 'template' }, h('div', { class: 'row' }, h('strong', {}, 'Template'), copyButton(fill(template), 'Template')), h('pre', { tabindex: '0' }, fill(template))) : undefined,
    state));
  if (!w.lastDeliveryAt) {
    let stopped = false;
    const timer = setInterval(async () => {
      try {
        const now = await api.get<WebhookAnswer>(`/connections/${seg(c.id)}/webhook`);
        if (stopped) return;
        if (now.lastDeliveryAt) {
          show(now.lastDeliveryAt);
          announce(`Receiving from ${p.displayName}`);
          stop();
        }
      } catch { /* the next tick tries again */ }
    }, 5_000);
    const stop = () => { stopped = true; clearInterval(timer); };
    disposers.push(stop);
  }
  return s;
}

// ---------------------------------------------------------------- test

function testSection(c: Connection): HTMLElement {
  const out = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const error = errorLine();
  const button = h('button', { type: 'button' }, 'Test connection');
  button.addEventListener('click', async () => {
    out.replaceChildren(h('p', { class: 'muted' }, 'Testing…'));
    const ok = await busy(button, error, async () => {
      const r = await api.post<TestAnswer>(`/connections/${seg(c.id)}/test`);
      out.replaceChildren(
        h('p', { class: r.ok ? 'ok-text' : 'err' }, r.ok ? 'Everything checked works.' : 'Something needs attention:'),
        h('ul', { class: 'checks' }, r.checks.map((x) => h('li', { class: x.ok ? 'ok' : 'bad', dataset: { check: x.id } },
          h('span', { class: 'mark', 'aria-hidden': 'true' }, x.ok ? '✓' : '✗'), h('span', { class: 'visually-hidden' }, x.ok ? 'Passed: ' : 'Failed: '),
          h('span', {}, x.message), x.next ? h('div', { class: 'next' }, `What to do: ${x.next}`) : undefined))));
      announce(r.ok ? 'Test passed' : `Test found ${r.checks.filter((x) => !x.ok).length} problem(s)`, r.ok ? 'ok' : 'error');
    });
    if (!ok) out.replaceChildren();
  });
  return h('section', { class: 'card', 'aria-labelledby': 'te-h' }, h('h2', { id: 'te-h' }, 'Test'),
    h('p', { class: 'muted' }, 'Checks the credentials, the calendars or subscription, and the last delivery, without changing anything.'),
    h('div', { class: 'actions' }, button), error, out);
}

// ---------------------------------------------------------------- remove

function removeSection(c: Connection, p: Platform, file: string | undefined, managedWebhook: boolean): HTMLElement {
  const button = h('button', { type: 'button', class: 'danger', disabled: Boolean(file) }, 'Remove connection');
  button.addEventListener('click', () => {
    const error = errorLine();
    const yes = h('button', { type: 'button', class: 'danger' }, 'Remove connection');
    const no = h('button', { type: 'button' }, 'Keep it');
    const what = [
      `Meridian stops exchanging bookings with ${p.displayName} through “${c.name}”.`,
      managedWebhook ? `The webhook subscription Meridian created at ${p.displayName} is removed there.` : undefined,
      p.role === 'target' ? 'Events already written stay in the calendar; no new ones are written.' : undefined,
      'The history is kept: appointments, deliveries and the audit log stay as they are.',
    ].filter((x): x is string => Boolean(x));
    const dlg = modal(`Remove ${c.name}?`, [h('ul', {}, what.map((x) => h('li', {}, x))), error, h('div', { class: 'actions' }, yes, no)]);
    no.addEventListener('click', () => dlg.close());
    no.focus();
    yes.addEventListener('click', async () => {
      let r: { subscription?: { removed: boolean; error?: string } } | undefined;
      const ok = await busy(yes, error, async () => { r = await api.del(`/connections/${seg(c.id)}`); });
      if (ok) {
        dlg.close();
        const subErr = r?.subscription?.error;
        announce(subErr ? `${c.name} removed, but the subscription at ${p.displayName} could not be removed (${subErr}): remove it there by hand` : `${c.name} removed`, subErr ? 'error' : 'ok');
        location.hash = '#/connections';
      }
    });
  });
  return h('section', { class: 'card danger-zone', 'aria-labelledby': 'rm-h' }, h('h2', { id: 'rm-h' }, 'Remove'),
    h('p', { class: 'muted' }, file ? `From ${file}: remove it there.` : managedWebhook ? `The webhook subscription Meridian made at ${p.displayName} is removed; the history is kept.` : 'The history is kept.'),
    h('div', { class: 'actions' }, button));
}
