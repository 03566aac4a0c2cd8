// Patients' rights: erasure.
import { z } from 'zod';
import { erasePatient } from '../../engine/appointments/erase.ts';
import { defineRoute, type Route } from '../route.ts';

export const PRIVACY_ROUTES: Route[] = [
  defineRoute({
    method: 'POST', path: '/patients/erase', scope: 'admin', tag: 'privacy',
    summary: 'Erase a patient\'s personal data everywhere Meridian keeps it (appointments stay as "Erased patient", calendars are re-rendered, the audit chain still verifies). Erase them at the booking platform too, or its next delivery brings the data back.',
    body: z.object({ email: z.email() }).strict(),
    handler: ({ hub, body, actor }) => erasePatient(hub, body, actor),
  }),
];
