// Running Meridian: polls and sweeps on demand, held mass cancellations, each connection's health,
// jobs (the outbox), received and outbound webhook deliveries.
import { SOURCE_POLL, TARGET_SWEEP, sweepJob, type NewJob } from '../../domain/jobs.ts';
import type { Hub } from '../../engine/hub/hub.ts';
import { z } from 'zod';
import { allDescriptors } from '../../connectors/registry.ts';
import { listOutboundDeliveries, replayOutboundDelivery } from '../../engine/effects/webhooks-out.ts';
import { decideHeld, listHeld, pollJob } from '../../engine/sync/poll.ts';
import { connectionJobCounts, enqueue, jobCounts, listJobs, retryJob } from '../../store/outbox.ts';
import { connectionDeliveryHealth, listDeliveries } from '../../store/queries/deliveries.ts';
import { getConnectionRow } from '../../store/repo.ts';
import { listConnectionsWithSetup } from '../../engine/hub/connections.ts';
import { lastRetentionRun, loadRetentionPolicy } from '../../store/retention.ts';
import { HttpError } from '../errors.ts';
import { replayAnswer } from '../inbound.ts';
import { defineRoute, idParam, type Route } from '../route.ts';
import { webhookSummary } from '../../engine/connect/webhooks.ts';
import { pushStatus } from '../../engine/sync/push.ts';

async function connectionOr404(hub: Hub, id: string) {
  const row = await getConnectionRow(hub.store.db, id);
  if (!row) throw new HttpError('not_found', `no connection ${id}`);
  return row;
}

/** Run a connection's poll or sweep now (the worker is woken); answered as queued, not as done. */
async function queueNow(hub: Hub, job: NewJob<typeof SOURCE_POLL | typeof TARGET_SWEEP>): Promise<{ queued: string; connection: string }> {
  await enqueue(hub.store.db, [job], hub.clock.now().toISOString());
  hub.onJobs();
  return { queued: job.kind, connection: job.payload.connectionId };
}

export const OPERATIONS_ROUTES: Route[] = [
  defineRoute({
    method: 'POST', path: '/connections/:id/sync', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Poll this booking source for a window of bookings now (repairs missed webhooks; also runs periodically)',
    async handler({ hub, params }) {
      const row = await connectionOr404(hub, params.id);
      if (!allDescriptors().some((d) => d.id === row.platform && d.role === 'source' && d.capabilities.list)) {
        throw new HttpError('not_pollable', `${row.platform} cannot be polled`);
      }
      return queueNow(hub, pollJob(params.id));
    },
  }),
  defineRoute({
    method: 'GET', path: '/held-changes', scope: 'read', tag: 'operations', query: z.object({ status: z.enum(['pending', 'approved', 'rejected', 'superseded']).optional() }),
    summary: 'Mass cancellations a poll held back for approval (a feed that came back empty, say), with the appointments they would cancel',
    handler: async ({ hub, query }) => ({ items: await listHeld(hub, query.status) }),
  }),
  defineRoute({
    method: 'POST', path: '/held-changes/:id/approve', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Apply the held cancellations now (each through the usual path: audit, calendars, write-back)',
    handler: ({ hub, params, actor }) => decideHeld(hub, params.id, 'approve', actor),
  }),
  defineRoute({
    method: 'POST', path: '/held-changes/:id/reject', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Keep the appointments; the same set of cancellations is not held again',
    handler: ({ hub, params, actor }) => decideHeld(hub, params.id, 'reject', actor),
  }),
  defineRoute({
    method: 'POST', path: '/connections/:id/sweep', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Check this calendar for events deleted or changed by hand and repair them (also runs periodically)',
    async handler({ hub, params }) {
      await connectionOr404(hub, params.id);
      return queueNow(hub, sweepJob(params.id));
    },
  }),
  defineRoute({
    method: 'GET', path: '/health/connections', scope: 'read', tag: 'operations',
    summary: 'Each connection\'s health: status (`needs_setup` while it lacks secrets: `setup` says which, and which environment variables are unset), last successful sync (poll, webhook or calendar write), last error, jobs waiting / retrying / dead, failed deliveries, deliveries waiting to be applied, how webhooks come in (`webhook`: the subscription Meridian made and its state, or set by hand: waiting for the first delivery / receiving), calendar push (`push`: each calendar\'s channel live until its expiry, or why push is off); and retention: the policy, when pruning last ran and what it deleted',
    async handler({ hub }) {
      const db = hub.store.db;
      const roles = new Map(allDescriptors().map((d) => [d.id, { role: d.role, displayName: d.displayName }]));
      const items = [];
      for (const c of await listConnectionsWithSetup(hub)) {
        const { lastDoneAt, ...jobs } = await connectionJobCounts(db, c.id);
        const deliveries = await connectionDeliveryHealth(db, c.id);
        const lastSuccessAt = [c.lastSyncAt, lastDoneAt, deliveries.lastAppliedAt].filter((x): x is string => Boolean(x)).sort().at(-1);
        items.push({
          id: c.id, name: c.name, platform: c.platform, platformName: roles.get(c.platform)?.displayName ?? c.platform, role: roles.get(c.platform)?.role,
          status: c.status, setup: c.setup, needsReconnect: c.status === 'needs_reauth', lastError: c.lastError, lastPollAt: c.lastSyncAt, lastSuccessAt,
          jobs,
          failedDeliveries: deliveries.failed,
          waitingDeliveries: deliveries.waiting,
          webhook: await webhookSummary(hub, c.id, c.platform),
          push: await pushStatus(hub, c.id, c.platform),
        });
      }
      return { items, jobs: await jobCounts(db), retention: { policy: await loadRetentionPolicy(db), ...(await lastRetentionRun(db)) } };
    },
  }),
  defineRoute({
    method: 'GET', path: '/jobs', scope: 'read', tag: 'operations', summary: 'Jobs (outbox) by state; `dead` is the dead-letter list',
    query: z.object({ state: z.enum(['pending', 'running', 'done', 'dead']).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    handler: async ({ hub, query }) => ({ counts: await jobCounts(hub.store.db), items: await listJobs(hub.store.db, query) }),
  }),
  defineRoute({
    method: 'POST', path: '/jobs/:id/retry', scope: 'write', tag: 'operations', params: idParam, summary: 'Retry a dead or waiting job now',
    async handler({ hub, params }) {
      if (!(await retryJob(hub.store.db, params.id, hub.clock.now().toISOString()))) throw new HttpError('not_found', `no retryable job ${params.id}`);
      hub.onJobs();
      return { retried: params.id };
    },
  }),
  defineRoute({
    method: 'GET', path: '/deliveries', scope: 'read', tag: 'operations', summary: 'Received webhook deliveries (bodies are not listed)',
    query: z.object({ status: z.string().optional(), connection: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }),
    handler: async ({ hub, query }) => ({ items: await listDeliveries(hub.store.db, query) }),
  }),
  defineRoute({
    method: 'POST', path: '/deliveries/:id/replay', scope: 'write', tag: 'operations', params: idParam,
    summary: 'Parse and apply a stored delivery again (after fixing a mapping)',
    handler: ({ hub, params }) => replayAnswer(hub, params.id),
  }),
  defineRoute({
    method: 'GET', path: '/outbound-deliveries', scope: 'read', tag: 'operations',
    summary: 'Outbound webhook deliveries, newest first: status (pending, retrying, delivered, failed), attempts and the receiver\'s answer code (bodies are not listed)',
    query: z.object({
      status: z.enum(['pending', 'retrying', 'delivered', 'failed']).optional(), connection: z.string().optional(),
      entity: z.string().optional().describe('an appointment or lead id'), limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    handler: async ({ hub, query }) => ({ items: await listOutboundDeliveries(hub.store.db, query) }),
  }),
  defineRoute({
    method: 'POST', path: '/outbound-deliveries/:id/replay', scope: 'write', tag: 'operations', params: idParam, status: 202,
    summary: 'Send an outbound webhook delivery again now (the same webhook-id, a fresh timestamp and signature)',
    async handler({ hub, params, actor }) {
      const d = await replayOutboundDelivery(hub, params.id, actor);
      if (!d) throw new HttpError('not_found', `no outbound delivery ${params.id}`);
      return d;
    },
  }),
];
