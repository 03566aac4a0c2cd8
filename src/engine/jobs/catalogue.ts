// The job catalogue: every kind of job (src/domain/jobs.ts) and the handler that runs it, in one place.
// The `satisfies` below makes the compiler reject a kind without a handler, a handler for a kind that does
// not exist, and a handler whose job payload is not its kind's. Handlers live in their rooms; this file sits
// in the top room so that nothing below it has to know the catalogue.
import {
  CRM_LEAD, FETCH_CHANGE, NOTIFY_NOTICE, NOTIFY_STAFF, NOTIFY_TIMED, SOURCE_POLL, TARGET_SWEEP, TARGET_SYNC, WEBHOOK_DELIVER, WRITE_BACK,
  type Job, type JobKind, type JobResult,
} from '../../domain/jobs.ts';
import type { Hub } from '../hub/hub.ts';
import { runTargetSyncJob } from '../effects/targets.ts';
import { runCrmLeadJob } from '../effects/crm.ts';
import { runWebhookJob } from '../effects/webhooks-out.ts';
import { runNotice, runStaffAlert, runTimed } from '../effects/notify.ts';
import { runFetchJob } from '../inbound/ingest.ts';
import { runWriteBack } from '../edits/staff.ts';
import { runSweepJob } from '../sync/sweep.ts';
import { runPollJob } from '../sync/poll.ts';

export type JobHandler<K extends JobKind> = (hub: Hub, job: Job<K>) => Promise<JobResult>;

export const JOB_HANDLERS = {
  [TARGET_SYNC]: runTargetSyncJob,
  [FETCH_CHANGE]: runFetchJob,
  [WRITE_BACK]: runWriteBack,
  [TARGET_SWEEP]: runSweepJob,
  [SOURCE_POLL]: runPollJob,
  [CRM_LEAD]: runCrmLeadJob,
  [WEBHOOK_DELIVER]: runWebhookJob,
  [NOTIFY_NOTICE]: runNotice,
  [NOTIFY_TIMED]: runTimed,
  [NOTIFY_STAFF]: runStaffAlert,
} satisfies { [K in JobKind]: JobHandler<K> };

const handlers: { [K in JobKind]: JobHandler<K> } = JOB_HANDLERS;

/** Run a stored job through its kind's handler; undefined for a kind this version does not know (an older row). */
export function runJob<K extends JobKind>(hub: Hub, job: Job<K>): Promise<JobResult> | undefined {
  return Object.hasOwn(handlers, job.kind) ? handlers[job.kind](hub, job) : undefined;
}
