// Lead-form submissions and the front desk's triage of them (confirm, decline).
import { z } from 'zod';
import { LEAD_STATUSES, listLeads } from '../../engine/inbound/leads.ts';
import { confirmLead, declineLead, declineLeads } from '../../engine/edits/leads.ts';
import { defineRoute, idParam, instant, type Route } from '../route.ts';

export const LEAD_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/leads', scope: 'read', tag: 'leads',
    summary: 'Lead-form submissions, newest first: `requested` (Meridian placed a requested appointment), `needs_triage` (nothing fitted: staff place it), `booked`, `declined`',
    query: z.object({ status: z.enum(LEAD_STATUSES).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    handler: async ({ hub, query }) => ({ items: await listLeads(hub, query) }),
  }),
  defineRoute({
    method: 'POST', path: '/leads/decline-all', scope: 'write', tag: 'leads',
    summary: 'Clear a flood: decline every open lead (requested or in triage) matching connectionId, since (received at or after) and contact (e-mail or phone); their requested appointments are cancelled with the reason. At least one filter is required. Answers the count.',
    // At least one filter: an empty body must not decline every lead the clinic has.
    body: z.object({ connectionId: z.string().min(1).optional(), since: instant.optional(), contact: z.string().min(1).max(254).optional(), reason: z.string().min(1).max(500) }).strict()
      .refine((b) => b.connectionId || b.since || b.contact, { message: 'give connectionId, since or contact' }),
    handler: ({ hub, body, actor }) => declineLeads(hub, body, actor),
  }),
  defineRoute({
    method: 'POST', path: '/leads/:id/confirm', scope: 'write', tag: 'leads', params: idParam,
    summary: 'Confirm a lead: its appointment becomes booked and goes to calendars. Optionally put it elsewhere (practitionerId, start, end); a lead in triage needs practitionerId and start. 409 double_booking unless `override`.',
    body: z.object({ practitionerId: z.string().min(1).optional(), start: instant.optional(), end: instant.optional(), override: z.boolean().optional() }).strict(),
    handler: ({ hub, params, body, actor }) => confirmLead(hub, params.id, body, actor),
  }),
  defineRoute({
    method: 'POST', path: '/leads/:id/decline', scope: 'write', tag: 'leads', params: idParam,
    summary: 'Decline a lead: its requested appointment (if any) is cancelled with the reason',
    body: z.object({ reason: z.string().max(500).optional() }).strict(),
    handler: ({ hub, params, body, actor }) => declineLead(hub, params.id, body.reason, actor),
  }),
];
