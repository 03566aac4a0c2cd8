// Messages to patients and staff: what was sent, the clinics' rules, and opt-outs.
import { z } from 'zod';
import { contactRef, listNotifications, listOptOuts, optIn, optOut } from '../../engine/effects/notify.ts';
import { clinicNotificationSettings } from '../../store/queries/setup.ts';
import { HttpError } from '../errors.ts';
import { defineRoute, type Route } from '../route.ts';

export const NOTIFICATION_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/notifications', scope: 'read', tag: 'notifications',
    query: z.object({ appointment: z.string().min(1).max(200).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    summary: 'Messages sent, suppressed (with why) or refused, newest first; addresses masked',
    handler: async ({ hub, query }) => ({ items: await listNotifications(hub, { appointmentId: query.appointment, limit: query.limit }) }),
  }),
  defineRoute({
    method: 'GET', path: '/notification-settings', scope: 'read', tag: 'notifications',
    summary: 'The clinics\' notification rules as applied from the configuration file (`notifications:`); null when a clinic sends none',
    handler: async ({ hub }) => ({ items: await clinicNotificationSettings(hub.store.db) }),
  }),
  defineRoute({
    method: 'GET', path: '/opt-outs', scope: 'read', tag: 'notifications', summary: 'Addresses that receive no messages (masked), with where the opt-out came from',
    handler: async ({ hub }) => ({ items: await listOptOuts(hub) }),
  }),
  defineRoute({
    method: 'POST', path: '/opt-outs', scope: 'write', tag: 'notifications', status: 201,
    summary: 'Opt an e-mail address or phone number out of every message, at once',
    body: z.object({ address: z.string().min(3).max(200), source: z.string().max(100).optional() }).strict(),
    handler: async ({ hub, body, actor }) => {
      await optOut(hub, body.address, body.source ?? 'staff', actor);
      return { contact: contactRef(body.address), optedOut: true };
    },
  }),
  defineRoute({
    method: 'POST', path: '/opt-outs/remove', scope: 'write', tag: 'notifications',
    summary: 'The patient consents again: messages to this address resume (the address is in the body, never the URL)',
    body: z.object({ address: z.string().min(3).max(200) }).strict(),
    handler: async ({ hub, body, actor }) => {
      if (!(await optIn(hub, body.address, actor))) throw new HttpError('not_found', 'that address is not opted out');
      return { contact: contactRef(body.address), optedOut: false };
    },
  }),
];
