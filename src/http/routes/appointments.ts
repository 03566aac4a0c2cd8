// Appointments: list, read, and the front desk's edits (book, move, cancel, set the status).
import { z } from 'zod';
import { APPOINTMENT_STATUSES, type Appointment } from '../../domain/types.ts';
import type { Hub } from '../../engine/hub/hub.ts';
import { staffCancel, staffCreate, staffReschedule, staffSetStatus } from '../../engine/edits/staff.ts';
import { getAppointment, listAppointments } from '../../store/repo.ts';
import { HttpError } from '../errors.ts';
import { defineRoute, idParam, instant, zone, type Route } from '../route.ts';

const appointmentQuery = z.object({
  from: instant.optional(),
  to: instant.optional(),
  practitioner: z.string().optional(),
  location: z.string().optional(),
  status: z.string().optional().describe('comma-separated statuses'),
  diverged: z.enum(['true', 'false']).optional().describe('true: only appointments whose booking platform still shows something else (a staff edit it could not take)'),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

const patient = z.object({
  name: z.string().min(1).max(200),
  email: z.email().optional(),
  phone: z.string().max(40).optional(),
  timeZone: zone.optional(),
}).strict();

const createBody = z.object({
  practitionerId: z.string().min(1),
  start: instant,
  end: instant,
  timeZone: zone.optional(),
  patient,
  serviceId: z.string().optional(),
  locationId: z.string().optional(),
  roomId: z.string().optional(),
  notes: z.string().max(4000).optional(),
  status: z.enum(['booked', 'requested']).optional(),
  override: z.boolean().optional().describe('book even though it double-books'),
}).strict();

const rescheduleBody = z.object({
  start: instant,
  end: instant,
  practitionerId: z.string().optional(),
  roomId: z.string().optional(),
  override: z.boolean().optional(),
}).strict();

const isStatus = (s: string): s is Appointment['status'] => APPOINTMENT_STATUSES.some((x) => x === s);

/** The appointment, or a 404 naming it. */
export async function appointmentOr404(hub: Hub, id: string): Promise<Appointment> {
  const a = await getAppointment(hub.store.db, id);
  if (!a) throw new HttpError('not_found', `no appointment ${id}`);
  return a;
}

export const APPOINTMENT_ROUTES: Route[] = [
  defineRoute({
    method: 'GET', path: '/appointments', scope: 'read', tag: 'appointments', summary: 'List appointments overlapping a time range',
    query: appointmentQuery,
    async handler({ hub, query: q }) {
      const status = q.status?.split(',').filter(Boolean);
      const bad = status?.filter((s) => !isStatus(s));
      if (bad?.length) throw new HttpError('invalid_request', `unknown status ${bad.join(', ')}`);
      const items = await listAppointments(hub.store.db, {
        from: q.from && new Date(q.from).toISOString(), to: q.to && new Date(q.to).toISOString(),
        practitionerId: q.practitioner, locationId: q.location, status: status?.filter(isStatus), diverged: q.diverged === 'true', limit: q.limit,
      });
      return { items };
    },
  }),
  defineRoute({
    method: 'GET', path: '/appointments/:id', scope: 'read', tag: 'appointments', summary: 'One appointment', params: idParam,
    handler: ({ hub, params }) => appointmentOr404(hub, params.id),
  }),
  defineRoute({
    method: 'POST', path: '/appointments', scope: 'write', tag: 'appointments', status: 201,
    summary: 'Book an appointment (front desk). 409 double_booking with the conflicting appointments unless `override`.',
    body: createBody,
    handler: ({ hub, body, actor }) => staffCreate(hub, body, actor),
  }),
  defineRoute({
    method: 'POST', path: '/appointments/:id/reschedule', scope: 'write', tag: 'appointments', params: idParam, body: rescheduleBody,
    summary: 'Move an appointment (and optionally reassign it). 409 double_booking unless `override`.',
    handler: ({ hub, params, body, actor }) => staffReschedule(hub, params.id, body, actor),
  }),
  defineRoute({
    method: 'POST', path: '/appointments/:id/cancel', scope: 'write', tag: 'appointments', params: idParam,
    body: z.object({ reason: z.string().max(500).optional() }).strict(), summary: 'Cancel an appointment',
    handler: ({ hub, params, body, actor }) => staffCancel(hub, params.id, body.reason, actor),
  }),
  defineRoute({
    method: 'POST', path: '/appointments/:id/status', scope: 'write', tag: 'appointments', params: idParam,
    body: z.object({ status: z.enum(APPOINTMENT_STATUSES), override: z.boolean().optional() }).strict(),
    summary: 'Set the status (no_show, completed, booked, …)',
    handler: ({ hub, params, body, actor }) => staffSetStatus(hub, params.id, body.status, actor, body.override),
  }),
];
