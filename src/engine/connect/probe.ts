// Trying a connection: credentials checked before they are saved, the account's calendars and directory
// (with suggestions that map them onto Meridian's practitioners and services), and "Test connection":
// each check in plain words with what to do next.
import { getConnector } from '../../connectors/registry.ts';
import {
  ConnectorError, NotModified, type CalendarInfo, type ConnectionContext, type ConnectorFailure, type Directory, type DirectoryEntry,
  type LeadFormConnector, type NotifierConnector, type SourceConnector, type TargetConnector, type WriteOutcome,
} from '../../connectors/types.ts';
import { appendAudit } from '../../store/audit.ts';
import { listPractitioners, type PractitionerRecord } from '../../store/repo.ts';
import { listServices } from '../../store/queries/setup.ts';
import { connectionContext, credentialsRenewed, loadConnection, saveSecrets, type LoadedConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { nowIso } from '../hub/hub.ts';
import { ConnectError } from './errors.ts';
import { ensureSubscription, webhookView } from './webhooks.ts';

/** `calendars`: the account's calendar list, when that is what the probe read (Test connection checks the bindings against it). */
export type Probe = { ok: true; what: string; account?: string; calendars?: CalendarInfo[] } | { ok: false; failure: ConnectorFailure } | { ok: 'unchecked'; why: string };

function failureOf(err: unknown): ConnectorFailure {
  if (err instanceof ConnectorError) return err.failure;
  return { class: 'transient', message: (err as Error).message };
}

async function settle<T>(work: () => Promise<WriteOutcome<T>>): Promise<WriteOutcome<T>> {
  try {
    return await work();
  } catch (err) {
    return { ok: false, failure: failureOf(err) };
  }
}

/** One cheap authenticated read through the connector: does the platform accept these credentials? */
export async function probe(c: LoadedConnection, ctx: ConnectionContext): Promise<Probe> {
  const d = c.connector.descriptor;
  const name = d.displayName;
  if (d.role === 'target') {
    const t = c.connector as TargetConnector;
    const client = t.client?.(ctx);
    if (!client) return { ok: 'unchecked', why: `${name} is served by Meridian; there is nothing to sign in to` };
    if (client.calendars) {
      const r = await settle(() => client.calendars!());
      return r.ok ? { ok: true, what: `${r.value.length} calendar${r.value.length === 1 ? '' : 's'} found`, calendars: r.value } : r;
    }
    if (client.ping) {
      const r = await settle(() => client.ping!());
      return r.ok ? { ok: true, what: `signed in to ${name}`, account: r.value.account } : r;
    }
    return { ok: 'unchecked', why: `${name} offers no way to check the credentials without writing` };
  }
  if (d.role === 'notifier') {
    const n = c.connector as NotifierConnector;
    if (!n.verifyCredentials) return { ok: 'unchecked', why: `${name} cannot be checked without sending a message` };
    const r = await settle(() => n.verifyCredentials!(ctx));
    return r.ok ? { ok: true, what: `signed in${r.value.account ? ` as ${r.value.account}` : ''}`, account: r.value.account } : r;
  }
  if (d.role === 'lead-form') return { ok: 'unchecked', why: `${(c.connector as LeadFormConnector).descriptor.displayName} sends to Meridian; its secret is checked on each delivery` };
  const s = c.connector as SourceConnector;
  if (s.directory) {
    const r = await settle(() => s.directory!(ctx));
    return r.ok ? { ok: true, what: `${r.value.staff.length} staff and ${r.value.services.length} services found` } : r;
  }
  if (s.list) {
    // The smallest listing there is: one day ahead, stopping at the first booking.
    const from = ctx.now();
    try {
      for await (const _ of s.list({ from, to: new Date(from.getTime() + 86_400_000) }, { ...ctx, syncState: {} })) break;
      return { ok: true, what: `read bookings from ${name}` };
    } catch (err) {
      if (err instanceof NotModified) return { ok: true, what: `read bookings from ${name}` };
      return { ok: false, failure: failureOf(err) };
    }
  }
  return { ok: 'unchecked', why: `${name} has no API Meridian reads; its deliveries are checked as they arrive` };
}

const SECRET_KEY = /^[A-Za-z][A-Za-z0-9]*$/;

/**
 * Store credentials typed by the owner, but only once the platform accepted them (422 with its answer in words
 * otherwise). Values never come back; the audit entry names only the keys.
 */
export async function saveCheckedCredentials(hub: Hub, connectionId: string, fields: Record<string, string>, actor: string) {
  const c = await loadConnection(hub, connectionId);
  const d = c.connector.descriptor;
  const known = new Set(d.auth.filter((a) => a.secret).flatMap((a) => [a.key, `${a.key}Previous`]));
  const keys = Object.keys(fields);
  const unknown = keys.filter((k) => !known.has(k) || !SECRET_KEY.test(k));
  if (!keys.length) throw new ConnectError('invalid_request', `nothing to store: ${d.displayName} takes ${[...known].filter((k) => !k.endsWith('Previous')).join(', ')}`);
  if (unknown.length) throw new ConnectError('invalid_request', `${d.displayName} has no credential called ${unknown.join(', ')} (it takes ${[...known].filter((k) => !k.endsWith('Previous')).join(', ')})`);
  const candidate: LoadedConnection = { ...c, secrets: { ...c.secrets, ...fields } };
  const ctx = { ...connectionContext(hub, candidate), saveSecrets: undefined };
  // Only the secret deliveries are signed or addressed with (typed by hand into the platform's webhook settings):
  // nothing to try now; each delivery is checked against it as it arrives.
  const deliveryKeys = new Set([...(d.role === 'source' || d.role === 'lead-form' ? ['webhookToken', 'signingSecret', 'webhookSecret'] : []), ...('webhookSecret' in d && d.webhookSecret ? [d.webhookSecret] : [])]);
  const onlyDelivery = keys.every((k) => deliveryKeys.has(k.replace(/Previous$/, '')));
  const result: Probe = onlyDelivery ? { ok: 'unchecked', why: 'it is checked on each delivery as it arrives' } : await probe(candidate, ctx);
  if (result.ok === false) {
    const f = result.failure;
    const words = f.class === 'auth' ? `${d.displayName} refused these credentials: ${f.message}`
      : f.class === 'throttled' || f.class === 'transient' ? `${d.displayName} could not be reached to check them (${f.message}); nothing was saved: try again`
        : `${d.displayName} answered: ${f.message}`;
    throw new ConnectError('credentials_refused', words);
  }
  await saveSecrets(hub.store.db, hub, connectionId, fields);
  await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [{
    at: nowIso(hub), actor, action: 'connection.secrets_stored', entityType: 'connection', entityId: connectionId, meta: { keys, checked: result.ok === true },
  }]));
  await credentialsRenewed(hub, connectionId);
  // A platform that can subscribe does it now that Meridian can sign in to it.
  const webhook = (d.role === 'source' && (c.connector as SourceConnector).subscriptions) ? await ensureSubscription(hub, connectionId) : undefined;
  return { stored: keys, checked: result.ok === true, message: result.ok === true ? `Checked: ${result.what}` : `Saved without a check: ${result.why}`, ...(webhook ? { webhook } : {}) };
}

// ---------------------------------------------------------------- picking and mapping

const norm = (s: string) => s.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/\b(dr|mr|mrs|ms|mx)\.?\s+/g, '').replace(/[^a-z0-9]+/g, ' ').trim();

/** The family name in "Dr. Ada Okafor" or "Siobhan Brennan, LMT" (credentials after a comma left out). */
function surnameOf(name: string): string | undefined {
  const words = norm(name.split(',')[0]).split(' ').filter((w) => w.length > 1);
  return words.length >= 2 ? words[words.length - 1] : undefined;
}

/** The practitioner an entry names: same e-mail first, then the same name (titles and accents aside). */
function matchPractitioner(e: { name: string; email?: string }, ps: PractitionerRecord[]): string | undefined {
  const email = e.email?.toLowerCase();
  const byEmail = email ? ps.find((p) => p.email?.toLowerCase() === email) : undefined;
  if (byEmail) return byEmail.id;
  const n = norm(e.name);
  const same = ps.filter((p) => norm(p.name) === n);
  return same.length === 1 ? same[0].id : undefined;
}

function matchService(e: DirectoryEntry, services: { id: string; name: string }[]): string | undefined {
  const n = norm(e.name);
  const same = services.filter((s) => norm(s.name) === n);
  if (same.length === 1) return same[0].id;
  const near = services.filter((s) => n.includes(norm(s.name)) || norm(s.name).includes(n));
  return near.length === 1 ? near[0].id : undefined;
}

async function targetClient(hub: Hub, connectionId: string) {
  const c = await loadConnection(hub, connectionId);
  if (c.connector.descriptor.role !== 'target') throw new ConnectError('invalid_request', `${c.connector.descriptor.displayName} has no calendars to pick from`);
  const client = (c.connector as TargetConnector).client?.(connectionContext(hub, c));
  return { c, client };
}

/** The account's calendars, and for each practitioner the one that looks like theirs (owner e-mail, then name). */
export async function accountCalendars(hub: Hub, connectionId: string): Promise<{ items: CalendarInfo[]; suggestions: Record<string, string> }> {
  const { c, client } = await targetClient(hub, connectionId);
  if (!client?.calendars) throw new ConnectError('invalid_request', `${c.connector.descriptor.displayName} cannot list its calendars: type the calendar's id`);
  const r = await settle(() => client.calendars!());
  if (!r.ok) throw new ConnectError('credentials_refused', `${c.connector.descriptor.displayName} did not list the calendars: ${r.failure.message}`);
  const items = r.value;
  const suggestions: Record<string, string> = {};
  const writable = items.filter((x) => x.writable);
  for (const p of (await listPractitioners(hub.store.db)).filter((x) => x.active)) {
    const email = p.email?.toLowerCase();
    const mine = email ? writable.find((x) => x.owner?.toLowerCase() === email || x.id.toLowerCase() === email) : undefined;
    const byName = mine ?? writable.filter((x) => norm(x.name) === norm(p.name) || norm(x.name).includes(norm(p.name)));
    const pick = Array.isArray(byName) ? (byName.length === 1 ? byName[0] : undefined) : byName;
    if (pick) suggestions[p.id] = pick.id;
  }
  // Then by surname: "Brennan appointments" is Siobhan Brennan's, when no other calendar or practitioner claims it.
  const active = (await listPractitioners(hub.store.db)).filter((x) => x.active && !suggestions[x.id]);
  const surnames = new Map(active.map((x) => [x.id, surnameOf(x.name)]));
  for (const p of active) {
    const sn = surnames.get(p.id);
    if (!sn || [...surnames.values()].filter((o) => o === sn).length > 1) continue;
    const hits = writable.filter((x) => !Object.values(suggestions).includes(x.id) && ` ${norm(x.name)} `.includes(` ${sn} `));
    if (hits.length === 1) suggestions[p.id] = hits[0].id;
  }
  return { items, suggestions };
}

/** The platform's staff and services, with the practitioners and services of Meridian they look like. */
export async function platformDirectory(hub: Hub, connectionId: string) {
  const c = await loadConnection(hub, connectionId);
  const s = c.connector.descriptor.role === 'source' ? (c.connector as SourceConnector) : undefined;
  if (!s?.directory) throw new ConnectError('invalid_request', `${c.connector.descriptor.displayName} does not list its staff and services: map them by their ids`);
  const r = await settle(() => s.directory!(connectionContext(hub, c)));
  if (!r.ok) throw new ConnectError('credentials_refused', `${c.connector.descriptor.displayName} did not list its staff and services: ${r.failure.message}`);
  const dir: Directory = r.value;
  const ps = (await listPractitioners(hub.store.db)).filter((x) => x.active);
  const services = await listServices(hub.store.db);
  const practitioners: Record<string, string> = {};
  const svc: Record<string, string> = {};
  for (const e of dir.staff) {
    const m = matchPractitioner(e, ps);
    if (m) practitioners[e.ref] = m;
  }
  for (const e of dir.services) {
    const m = matchService(e, services);
    if (m) svc[e.ref] = m;
  }
  return { staff: dir.staff, services: dir.services, locations: dir.locations ?? [], suggestions: { practitioners, services: svc }, mapped: c.record.refs };
}

// ---------------------------------------------------------------- Test connection

export interface Check {
  id: 'setup' | 'credentials' | 'calendars' | 'subscription' | 'delivery';
  ok: boolean;
  message: string;
  next?: string;
}

const ago = (from: string, now: Date) => {
  const m = Math.round((now.getTime() - Date.parse(from)) / 60_000);
  return m < 1 ? 'just now' : m < 120 ? `${m} minute${m === 1 ? '' : 's'} ago` : m < 2880 ? `${Math.round(m / 60)} hours ago` : `${Math.round(m / 1440)} days ago`;
};

/** Every check that applies to the connection, each in plain words with what to do next. */
export async function testConnection(hub: Hub, connectionId: string): Promise<{ ok: boolean; checks: Check[] }> {
  const c = await loadConnection(hub, connectionId);
  const d = c.connector.descriptor;
  const name = d.displayName;
  const checks: Check[] = [];
  const connectHow = d.oauth ? `Press "Connect with ${name}" again` : 'Enter the credentials again';
  const p = await probe(c, connectionContext(hub, c));
  if (p.ok === true) checks.push({ id: 'credentials', ok: true, message: `${name} accepted Meridian's credentials: ${p.what}${p.account ? ` (${p.account})` : ''}.` });
  else if (p.ok === false) {
    const f = p.failure;
    checks.push(f.class === 'auth'
      ? { id: 'credentials', ok: false, message: `${name} refused Meridian's credentials: ${f.message}.`, next: `${connectHow}.` }
      : { id: 'credentials', ok: false, message: `${name} could not be reached: ${f.message}.`, next: 'Try again in a few minutes; if it lasts, check the connection\'s API address and the network.' });
  } else checks.push({ id: 'credentials', ok: true, message: `Nothing to sign in to: ${p.why}.` });

  // The calendar list the credentials check just read (not a second listing).
  const listed = p.ok === true ? p.calendars : undefined;
  if (d.role === 'target' && listed) {
    const byId = new Map(listed.map((x) => [x.id, x]));
    const bound = (await listPractitioners(hub.store.db)).filter((x) => x.active).flatMap((x) => x.targets.filter((t) => t.connection === connectionId).map((t) => ({ p: x, calendar: t.calendar })));
    if (!bound.length) checks.push({ id: 'calendars', ok: false, message: 'No practitioner is written to this account yet.', next: 'Pick each practitioner\'s calendar below.' });
    for (const b of bound) {
      const cal = b.calendar ? byId.get(b.calendar) : listed.find((x) => x.primary);
      if (!cal) checks.push({ id: 'calendars', ok: false, message: `${b.p.name}'s calendar ${b.calendar ? `"${b.calendar}" ` : ''}is not in this account (deleted, or not shared with it).`, next: `Pick another calendar for ${b.p.name}.` });
      else if (!cal.writable) checks.push({ id: 'calendars', ok: false, message: `${b.p.name}'s calendar "${cal.name}" is read-only for this account: Meridian cannot write to it.`, next: `Share it with edit rights, or pick another calendar for ${b.p.name}.` });
      else checks.push({ id: 'calendars', ok: true, message: `${b.p.name} is written to "${cal.name}", which this account can change.` });
    }
  }

  const hook = await webhookView(hub, connectionId);
  if (hook.mode === 'managed') {
    const row = await hub.store.db.selectFrom('webhook_subscription').selectAll().where('connection_id', '=', connectionId).executeTakeFirst();
    const subs = (c.connector as SourceConnector).subscriptions!;
    if (!row?.remote_id || row.state !== 'active') {
      checks.push({ id: 'subscription', ok: false, message: row?.last_error ? `The webhook subscription could not be made: ${row.last_error}.` : 'Meridian has not subscribed to this account\'s bookings yet.', next: hook.note ?? 'Press "Re-create subscription".' });
    } else {
      const r = await settle(() => subs.check(connectionContext(hub, c), row.remote_id!));
      if (r.ok && r.value.active) checks.push({ id: 'subscription', ok: true, message: `${name} sends ${subs.events.join(', ')} to ${row.url}.` });
      else checks.push({ id: 'subscription', ok: false, message: r.ok ? `${name} has the subscription but it is not active${r.value.detail ? ` (${r.value.detail})` : ''}.` : `${name} did not show the subscription: ${r.failure.message}.`, next: 'Press "Re-create subscription".' });
    }
  }
  if (hook.mode !== 'none') {
    checks.push(hook.lastDeliveryAt
      ? { id: 'delivery', ok: true, message: `Last delivery received ${ago(hook.lastDeliveryAt, hub.clock.now())}.` }
      : { id: 'delivery', ok: false, message: 'No delivery has arrived yet.', next: `${hook.mode === 'manual' ? `Give ${name} the connection's webhook URL (with its token), then ` : ''}${d.role === 'lead-form' ? 'send the form once' : `make or change a booking in ${name}`}: it should arrive within seconds.` });
  }
  return { ok: checks.every((x) => x.ok), checks };
}
