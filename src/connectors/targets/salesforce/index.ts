// Salesforce as a CRM target (FACTS.md). Every appointment is one Event, upserted by the external-id field
// the connection names (`PATCH /sobjects/Event/<field>/<our id>`: 201 created, 200 updated, 300 when several
// records carry the id — a typed failure for staff). Retries are harmless: the key is ours.
// - The patient (only when `coveredByAgreement`): WhoId = the Contact, else the open Lead, with that e-mail
//   (one composite call with both queries); none → one composite call creates the Contact and upserts the
//   Event referencing it (`@{refContact.id}`, allOrNone). Without the agreement the Event has no person.
// - OwnerId = the practitioner's Salesforce user from `owners` in the connection config.
// - Status: cancelled / no-show / completed stay as Events, marked in the subject (and in `statusField`
//   when the org has one). Nothing is ever deleted; unbinding the CRM leaves its history alone.
import { driftOf, fail, ok, type ConnectionContext, type CrmLead, type LinkState, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { COVERED_BY_AGREEMENT, TWO_WAY } from '../../shared/settings.ts';
import type { AppointmentStatus } from '../../../domain/types.ts';
import { salesforceSession } from './auth.ts';
import { salesforceOAuth } from './oauth.ts';
import { errorsOf, failureOf, SalesforceApi, type SfAnswer } from './api.ts';

export const PLATFORM = 'salesforce';
export const DEFAULT_LOGIN_URL = 'https://login.salesforce.com';
export const DEFAULT_EXTERNAL_ID_FIELD = 'Meridian_Appointment_Id__c';

const STATUS_VALUES: Record<AppointmentStatus, string> = {
  requested: 'Requested', booked: 'Booked', cancelled: 'Cancelled', no_show: 'No-show', completed: 'Completed',
};

interface Settings {
  externalIdField: string;
  revisionField?: string;
  statusField?: string;
  statusValues: Record<string, string>;
  owners: Record<string, string>;
  leadIdField?: string;
  leadCompany: string;
  leadSource: string;
}

const apiName = (v: unknown) => (typeof v === 'string' && /^\w{1,80}$/.test(v) ? v : undefined);
const stringMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(v && typeof v === 'object' ? v : {}).filter((e): e is [string, string] => typeof e[1] === 'string'));

function settingsOf(config: Record<string, unknown>): Settings {
  return {
    externalIdField: apiName(config.externalIdField) ?? DEFAULT_EXTERNAL_ID_FIELD,
    revisionField: apiName(config.revisionField),
    statusField: apiName(config.statusField),
    statusValues: stringMap(config.statusValues),
    owners: stringMap(config.owners),
    leadIdField: apiName(config.leadIdField),
    leadCompany: typeof config.leadCompany === 'string' ? config.leadCompany : 'Individual patient',
    leadSource: typeof config.leadSource === 'string' ? config.leadSource : 'Web',
  };
}

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The render marks cancelled / no-show / requested; a completed visit is marked here (a CRM keeps it). */
export function subjectOf(e: TargetEvent): string {
  return cut(e.status === 'completed' && !e.title.startsWith('[') ? `[Completed] ${e.title}` : e.title, 255);
}

/** First names and a last name (Salesforce requires LastName). */
export function splitName(name: string): { FirstName?: string; LastName: string } {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const last = parts.pop() ?? 'Unknown';
  return parts.length ? { FirstName: cut(parts.join(' '), 40), LastName: cut(last, 80) } : { LastName: cut(last, 80) };
}

/** SOQL string literal (backslash and quote escaped). */
const soql = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Salesforce writes `+0000` offsets; Date wants `+00:00`. */
const instantOf = (t: unknown) => (typeof t === 'string' ? t.replace(/([+-]\d{2})(\d{2})$/, '$1:$2') : undefined);

export function eventBody(e: TargetEvent, s: Settings, whoId?: string): Record<string, unknown> {
  const owner = e.practitionerId ? s.owners[e.practitionerId] : undefined;
  return {
    Subject: subjectOf(e),
    StartDateTime: new Date(e.start).toISOString(),
    EndDateTime: new Date(e.end).toISOString(),
    IsAllDayEvent: false,
    Description: cut(e.description, 32_000),
    Location: e.location ? cut(e.location, 255) : null,
    ShowAs: e.status === 'cancelled' ? 'Free' : 'Busy',
    ...(owner ? { OwnerId: owner } : {}),
    ...(whoId ? { WhoId: whoId } : {}),
    ...(s.revisionField ? { [s.revisionField]: e.revision } : {}),
    ...(s.statusField ? { [s.statusField]: s.statusValues[e.status] ?? STATUS_VALUES[e.status] } : {}),
  };
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const s = settingsOf(ctx.config);
  const api = new SalesforceApi(ctx, salesforceSession(ctx, (ctx.baseUrl || DEFAULT_LOGIN_URL).replace(/\/$/, '')));
  const eventPath = (appointmentId: string) => `/sobjects/Event/${s.externalIdField}/${encodeURIComponent(appointmentId)}`;
  const failed = (a: Extract<SfAnswer, { ok: false }>) => fail<never>(a.failure);

  /** The Contact, else the unconverted Lead, with this e-mail: both queries in one composite call. */
  async function findPerson(email: string): Promise<WriteOutcome<string | undefined>> {
    const q = (sobject: string, extra = '') => ({
      method: 'GET', referenceId: `find${sobject}`,
      url: api.path(`/query?q=${encodeURIComponent(`SELECT Id FROM ${sobject} WHERE Email = ${soql(email)}${extra} ORDER BY CreatedDate LIMIT 1`)}`),
    });
    const r = await api.send('find person', 'POST', '/composite', { allOrNone: false, compositeRequest: [q('Contact'), q('Lead', ' AND IsConverted = false')] });
    if (!r.ok) return failed(r);
    const subs = (r.json as { compositeResponse?: { httpStatusCode: number; body: unknown }[] }).compositeResponse ?? [];
    for (const sub of subs) {
      if (sub.httpStatusCode >= 300) return fail(failureOf('find person', sub.httpStatusCode, errorsOf(sub.body)));
      const id = (sub.body as { records?: { Id?: string }[] }).records?.[0]?.Id;
      if (id) return ok(id);
    }
    return ok(undefined);
  }

  const linkOf = (id: string | undefined, prior: LinkState | undefined, who?: { id: string; email: string }): LinkState => ({
    remoteId: id ?? prior?.remoteId ?? '', generation: 0,
    data: who ? { whoId: who.id, whoEmail: who.email } : {},
  });

  /** The new Contact and the Event in one all-or-nothing composite call (one API request). */
  async function upsertWithNewContact(e: TargetEvent, person: NonNullable<TargetEvent['person']>, link: LinkState | undefined): Promise<WriteOutcome<LinkState>> {
    const email = person.email.toLowerCase();
    const r = await api.send('upsert event', 'POST', '/composite', {
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: api.path('/sobjects/Contact'), referenceId: 'refContact', body: { ...splitName(person.name), Email: email, ...(person.phone ? { Phone: person.phone } : {}) } },
        { method: 'PATCH', url: api.path(eventPath(e.appointmentId)), referenceId: 'refEvent', body: eventBody(e, s, '@{refContact.id}') },
      ],
    });
    if (!r.ok) return failed(r);
    const [contact, event] = (r.json as { compositeResponse?: { httpStatusCode: number; body: unknown }[] }).compositeResponse ?? [];
    for (const sub of [contact, event]) {
      if (!sub || sub.httpStatusCode >= 300) return fail(failureOf('upsert event', sub?.httpStatusCode ?? 500, errorsOf(sub?.body)));
    }
    const id = (x: unknown) => (x as { id?: string } | undefined)?.id;
    return ok(linkOf(id(event.body), link, { id: id(contact.body)!, email }));
  }

  async function upsert(e: TargetEvent, link: LinkState | undefined): Promise<WriteOutcome<LinkState>> {
    let who: { id: string; email: string } | undefined;
    const cached = e.person && link?.data?.whoEmail === e.person.email.toLowerCase() && typeof link.data.whoId === 'string';
    if (e.person) {
      const email = e.person.email.toLowerCase();
      if (cached) who = { id: link!.data!.whoId as string, email };
      else {
        const found = await findPerson(email);
        if (!found.ok) return found;
        if (!found.value) return upsertWithNewContact(e, e.person, link);
        who = { id: found.value, email };
      }
    }
    // A cancellation only marks what is there: an Event deleted in Salesforce is not brought back to say so.
    const onlyUpdate = e.status === 'cancelled' && link?.remoteId ? '?updateOnly=true' : '';
    const r = await api.send('upsert event', 'PATCH', `${eventPath(e.appointmentId)}${onlyUpdate}`, eventBody(e, s, who?.id));
    if (r.ok) return ok(linkOf((r.json as { id?: string } | undefined)?.id, link, who));
    if (onlyUpdate && r.failure.class === 'gone') return ok(link!);
    // The remembered Contact may have been merged or deleted since: look the person up again, once.
    if (cached && r.failure.class === 'permanent') return upsert(e, { ...link!, data: {} });
    return failed(r);
  }

  return {
    upsert,

    /**
     * One cheap authenticated read: the API version's resource list (`GET /services/data/vNN.N/`), which any
     * API-enabled user may read (`/limits` needs "View Setup and Configuration"). A refused session or grant is
     * `auth`, as on every other call. `account` is the org's My Domain host from the token answer.
     */
    async ping() {
      const r = await api.send('connection check', 'GET', '/');
      if (!r.ok) return failed(r);
      const instance = api.instanceUrl();
      let account: string | undefined;
      try {
        account = instance ? new URL(instance).host : undefined;
      } catch {
        account = undefined;
      }
      return ok(account ? { account } : {});
    },

    async inspect(e, _link) {
      const r = await api.send('read event', 'GET', `${eventPath(e.appointmentId)}?fields=Subject,StartDateTime,EndDateTime`);
      if (!r.ok) return r.failure.class === 'gone' ? ok({ state: 'missing' }) : failed(r);
      const ev = r.json as { Subject?: string; StartDateTime?: string; EndDateTime?: string };
      return ok(driftOf({ ...e, title: subjectOf(e) }, { start: instantOf(ev.StartDateTime), end: instantOf(ev.EndDateTime), title: ev.Subject }));
    },

    // A CRM is a history: unbinding it (or an appointment gone from Meridian) leaves the Event as it was.
    async remove() {
      return ok(undefined);
    },

    async upsertLead(lead: CrmLead) {
      const body = {
        ...splitName(lead.name), Company: s.leadCompany, LeadSource: s.leadSource,
        ...(lead.email ? { Email: lead.email.toLowerCase() } : {}), ...(lead.phone ? { Phone: lead.phone } : {}),
        ...(lead.description ? { Description: cut(lead.description, 32_000) } : {}),
      };
      // With a Lead external-id field a retried write finds the same Lead; without one it is a plain create.
      const r = s.leadIdField
        ? await api.send('upsert lead', 'PATCH', `/sobjects/Lead/${s.leadIdField}/${encodeURIComponent(lead.leadId)}`, body)
        : await api.send('create lead', 'POST', '/sobjects/Lead', body);
      if (!r.ok) return failed(r);
      return ok({ remoteId: String((r.json as { id?: string } | undefined)?.id ?? '') });
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'crm',
    displayName: 'Salesforce',
    oauth: salesforceOAuth,
    defaultBaseUrl: DEFAULT_LOGIN_URL,
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'clientId', label: 'Connected app consumer key', secret: true, required: true },
      { key: 'username', label: 'Integration user (JWT bearer flow)', secret: true, required: false },
      { key: 'privateKey', label: 'Private key (PEM) of the certificate uploaded to the connected app (JWT bearer flow)', secret: true, required: false },
      { key: 'clientSecret', label: 'Consumer secret (web-server flow)', secret: true, required: false },
      { key: 'refreshToken', label: 'Refresh token (web-server flow, scopes api refresh_token)', secret: true, required: false },
    ],
    authSets: [['clientId', 'username', 'privateKey'], ['clientId', 'refreshToken']],
    configFields: [
      COVERED_BY_AGREEMENT, TWO_WAY,
      { key: 'leadSource', label: 'Lead source', type: 'text', placeholder: 'Web', help: 'Written on Leads made from lead-form submissions.' },
      { key: 'leadCompany', label: 'Lead company', type: 'text', placeholder: 'Individual patient', help: 'Salesforce needs a company on a Lead.' },
    ],
    fidelity:
      'Every appointment is one Salesforce Event, upserted by an external-id field (retries never duplicate; several records '
      + 'with the id stop the write for staff), owned by the practitioner\'s mapped user. Cancelled, no-show and completed visits '
      + 'stay as Events marked in the subject (and a status field when set); nothing is deleted. The Event is linked to the '
      + 'patient\'s Contact or Lead (found by e-mail, else a Contact is created) only when the connection says Salesforce is '
      + 'covered by the clinic\'s data agreement (then text is full by default); otherwise Events carry no person and minimal text. '
      + 'Lead-form submissions become Leads. Edits made in Salesforce are only seen by the periodic read-back (no push).',
    capabilities: { push: true, readChanges: true, freeBusy: false, deterministicIds: true },
  },
  client: createClient,
};
