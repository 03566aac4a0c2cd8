// Every effect of one appointment change, planned in the change's own transaction (DESIGN.md §1): the
// calendar and CRM writes, the outbound webhooks, and the patient's and practitioner's messages. Each
// path that changes an appointment (a platform's booking, a staff edit, a lead) enqueues these same jobs.
import type { Appointment } from '../../domain/types.ts';
import type { Transaction } from 'kysely';
import type { NewJob } from '../../store/outbox.ts';
import type { DB } from '../../store/schema.ts';
import type { Hub } from '../hub/hub.ts';
import { planNotifications } from './notify.ts';
import { targetJobsFor } from './targets.ts';
import { webhookJobsFor } from './webhooks-out.ts';

export async function effectJobsFor(trx: Transaction<DB>, hub: Hub, next: Appointment, before: Appointment | undefined, at: string): Promise<NewJob[]> {
  return [
    ...(await targetJobsFor(trx, next, before, hub.cache)),
    ...(await webhookJobsFor(trx, next, before, at, hub.cache)),
    ...(await planNotifications(trx, hub, next, before)),
  ];
}
