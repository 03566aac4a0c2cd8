// HubSpot as a CRM target (FACTS.md). Every appointment is one meeting, found again by the meeting id Meridian
// stored when it created it (LinkState) — never by searching first, because HubSpot's search lags writes and
// search-then-create makes duplicates. Cancelled / no-show / completed set `hs_meeting_outcome`; nothing is
// archived. The patient (only when `coveredByAgreement`) is a contact upserted by e-mail (batch/upsert,
// idProperty email: no 409) and associated at creation (type 200, meeting → contact). All values are strings.
// HubSpot's webhooks (v3 signature) report meetings edited in HubSpot; the engine reads them back under the
// connection's two-way policy, like calendar edits.
import { driftOf, fail, ok, type ConnectionContext, type CrmLead, type LinkState, type TargetClient, type TargetConnector, type TargetEvent, type WriteOutcome } from '../../types.ts';
import { COVERED_BY_AGREEMENT, TWO_WAY } from '../../shared/settings.ts';
import type { AppointmentStatus } from '../../../domain/types.ts';
import { HubSpotApi } from './api.ts';
import { hubspotOAuth } from './oauth.ts';
import { changedMeetingIds, verifyHubSpot } from './webhook.ts';
import { MANUAL_WEBHOOK } from './manual-webhook.ts';

export const PLATFORM = 'hubspot';
const MEETINGS = '/crm/v3/objects/meetings';
const MEETING_TO_CONTACT = 200;
const READ_PROPERTIES = 'hs_meeting_title,hs_meeting_start_time,hs_meeting_end_time,hs_meeting_outcome';

const OUTCOMES: Record<AppointmentStatus, string> = {
  requested: 'SCHEDULED', booked: 'SCHEDULED', cancelled: 'CANCELED', no_show: 'NO_SHOW', completed: 'COMPLETED',
};

/** A booked meeting moved since it was first written shows as RESCHEDULED (with its new times). */
export function outcomeOf(e: TargetEvent, bookedStart: string | undefined): string {
  const moved = bookedStart !== undefined && Date.parse(bookedStart) !== Date.parse(e.start);
  return e.status === 'booked' && moved ? 'RESCHEDULED' : OUTCOMES[e.status];
}

export function meetingProperties(e: TargetEvent, o: { owner?: string; idProperty?: string; bookedStart?: string }): Record<string, string> {
  const start = new Date(e.start).toISOString();
  return {
    hs_timestamp: start,
    hs_meeting_title: e.title,
    hs_meeting_body: e.description,
    hs_meeting_location: e.location ?? '',
    hs_meeting_start_time: start,
    hs_meeting_end_time: new Date(e.end).toISOString(),
    hs_meeting_outcome: outcomeOf(e, o.bookedStart),
    ...(o.owner ? { hubspot_owner_id: o.owner } : {}),
    ...(o.idProperty ? { [o.idProperty]: e.appointmentId } : {}),
  };
}

/** First names and a last name, as HubSpot's `firstname` / `lastname`. */
function nameProperties(name: string): Record<string, string> {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const last = parts.length > 1 ? parts.pop()! : undefined;
  return { firstname: parts.join(' '), ...(last ? { lastname: last } : {}) };
}

export function createClient(ctx: ConnectionContext): TargetClient {
  const api = new HubSpotApi(ctx);
  const owners = (ctx.config.owners ?? {}) as Record<string, unknown>;
  // Our custom meeting property holding the appointment id (the clinic creates it; `idProperty: ''` leaves it out).
  const idProperty = ctx.config.idProperty === '' ? undefined : typeof ctx.config.idProperty === 'string' ? ctx.config.idProperty : 'meridian_appointment_id';

  /** The contact with this e-mail, created or updated (upsert by e-mail never answers 409). */
  async function upsertContact(email: string, properties: Record<string, string>): Promise<WriteOutcome<string>> {
    const r = await api.send('upsert contact', 'POST', '/crm/v3/objects/contacts/batch/upsert', { inputs: [{ idProperty: 'email', id: email, properties }] });
    if (!r.ok) return fail(r.failure);
    const id = (r.json?.results as { id?: unknown }[] | undefined)?.[0]?.id;
    return typeof id === 'string' ? ok(id) : fail({ class: 'transient', message: 'HubSpot upsert contact: the answer named no contact' });
  }

  async function create(props: Record<string, string>, contactId: string | undefined): Promise<WriteOutcome<string>> {
    const associations = contactId ? [{ to: { id: contactId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: MEETING_TO_CONTACT }] }] : [];
    const r = await api.send('create meeting', 'POST', MEETINGS, { properties: props, associations });
    if (!r.ok) return fail(r.failure);
    return typeof r.json?.id === 'string' ? ok(r.json.id) : fail({ class: 'transient', message: 'HubSpot create meeting: the answer named no meeting' });
  }

  return {
    /**
     * One cheap authenticated read with the scope meetings need: a one-meeting page of the meetings list, asking
     * for no property beyond its id (nothing about a patient comes back). A refused token is `auth`, a missing
     * scope permanent (403 MISSING_SCOPES), as on every other call.
     */
    async ping() {
      const r = await api.send('connection check', 'GET', `${MEETINGS}?limit=1&properties=hs_object_id&archived=false`);
      if (r.ok) return ok({});
      return fail(r.failure.class === 'gone' ? { ...r.failure, class: 'permanent' } : r.failure);
    },

    async upsert(e, link) {
      const data = link?.data ?? {};
      const bookedStart = typeof data.bookedStart === 'string' ? data.bookedStart : new Date(e.start).toISOString();
      const owner = e.practitionerId && typeof owners[e.practitionerId] === 'string' ? owners[e.practitionerId] as string : undefined;
      const props = meetingProperties(e, { owner, idProperty, bookedStart });
      if (link?.remoteId) {
        const r = await api.send('update meeting', 'PATCH', `${MEETINGS}/${encodeURIComponent(link.remoteId)}`, { properties: props });
        if (r.ok) return ok({ ...link, data: { ...data, bookedStart } });
        if (r.failure.class !== 'gone') return fail(r.failure);
        // Deleted in HubSpot: a cancellation leaves it deleted; anything else is written again.
        if (e.status === 'cancelled') return ok(link);
      }
      // The contact is associated when the meeting is created (the one association we make).
      let contact: { contactId: string; contactEmail: string } | undefined;
      if (e.person) {
        const email = e.person.email.toLowerCase();
        const c = await upsertContact(email, { ...nameProperties(e.person.name), ...(e.person.phone ? { phone: e.person.phone } : {}) });
        if (!c.ok) return c;
        contact = { contactId: c.value, contactEmail: email };
      }
      const made = await create(props, contact?.contactId);
      return made.ok ? ok({ remoteId: made.value, generation: 0, data: { bookedStart, ...contact } }) : made;
    },

    async inspect(e, link) {
      const r = await api.send('read meeting', 'GET', `${MEETINGS}/${encodeURIComponent(link.remoteId)}?properties=${READ_PROPERTIES}`);
      if (!r.ok) return r.failure.class === 'gone' ? ok({ state: 'missing' }) : fail(r.failure);
      const p = (r.json?.properties ?? {}) as Record<string, string | null | undefined>;
      // Cancelled in HubSpot counts as gone from the practitioner's diary, exactly like a deleted calendar event.
      if (r.json?.archived === true || (p.hs_meeting_outcome === 'CANCELED' && e.status !== 'cancelled')) return ok({ state: 'missing' });
      return ok(driftOf(e, { start: p.hs_meeting_start_time, end: p.hs_meeting_end_time, title: p.hs_meeting_title }));
    },

    // A CRM is a history: unbinding it (or an appointment gone from Meridian) leaves the meeting as it was.
    async remove() {
      return ok(undefined);
    },

    async upsertLead(lead: CrmLead) {
      if (!lead.email) return fail({ class: 'permanent', message: 'HubSpot contacts are matched by e-mail, and this lead gave none' });
      const c = await upsertContact(lead.email.toLowerCase(), { ...nameProperties(lead.name), ...(lead.phone ? { phone: lead.phone } : {}) });
      return c.ok ? ok({ remoteId: c.value }) : c;
    },
  };
}

export const connector: TargetConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'target',
    kind: 'crm',
    displayName: 'HubSpot',
    oauth: hubspotOAuth,
    defaultBaseUrl: 'https://api.hubapi.com',
    defaultPrivacy: 'minimal',
    auth: [
      { key: 'privateAppToken', label: 'Private app access token (scopes crm.objects.contacts.read/write)', secret: true, required: false },
      { key: 'clientId', label: 'OAuth app client id', secret: true, required: false },
      { key: 'clientSecret', label: 'App client secret (OAuth, and the key HubSpot signs webhooks with)', secret: true, required: false },
      { key: 'refreshToken', label: 'OAuth refresh token', secret: true, required: false },
    ],
    authSets: [['privateAppToken'], ['clientId', 'clientSecret', 'refreshToken']],
    configFields: [COVERED_BY_AGREEMENT, TWO_WAY],
    fidelity:
      'Every appointment is one HubSpot meeting, found again by the id Meridian stored (never by search, which lags writes); a '
      + 'create whose answer was lost can leave one duplicate. Cancelled, no-show and completed visits set the meeting outcome; '
      + 'nothing is archived. The meeting is associated with the patient\'s contact (upserted by e-mail) only when the connection '
      + 'says HubSpot is covered by the clinic\'s data agreement (then text is full by default), at creation only; otherwise it '
      + 'has no contact and minimal text. Meetings moved, cancelled or deleted in HubSpot come back through its signed webhooks '
      + '(v3) under the two-way policy. Lead-form submissions with an e-mail become contacts.',
    manualWebhook: MANUAL_WEBHOOK,
    capabilities: { push: true, readChanges: true, freeBusy: false, deterministicIds: false },
  },
  client: createClient,
  verifyWebhook: (req, secrets) => verifyHubSpot(req, secrets),
  changedRemoteIds: changedMeetingIds,
};
