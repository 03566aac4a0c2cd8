// Acuity dynamic webhooks (sources-a.md §1; https://developers.acuityscheduling.com/page/webhooks-webhooks-webhooks):
// `POST /webhooks` { target, event } makes one webhook per event, `GET /webhooks` lists them, `DELETE
// /webhooks/:id` removes one. At most 25 per account ("a 400 error will be returned when that limit is reached").
// - One webhook per event `parseWebhook` reads (dynamic deliveries say `action=appointment.<event>`). Acuity
//   warns that `changed` together with the others sends duplicates; they are harmless here (every delivery is
//   read back and deduplicated by content) and `changed` alone catches detail edits (e-mail, forms).
// - The remote id is the JSON array of the webhook ids. A webhook already there for the same target and event
//   is reused, so a retried create never spends more of the 25.
// - Deliveries are signed with the account's API key (`apiKey`), which the connection already has: no secret.
import { requestJson } from '../../shared/json-api.ts';
import { attempt, isGone } from '../../shared/subscription.ts';
import { ConnectorError, fail, ok, type ConnectionContext, type WebhookSubscriptions } from '../../types.ts';

export const EVENTS = ['appointment.scheduled', 'appointment.rescheduled', 'appointment.canceled', 'appointment.changed'];
/** Acuity's limit of dynamic webhooks per account. */
export const MAX_WEBHOOKS = 25;

interface Hook { id?: number | string; target?: string; event?: string; status?: string }

export function acuityApi(ctx: ConnectionContext, method: string, path: string, body?: unknown): Promise<unknown> {
  const user = ctx.secrets.userId ?? (ctx.config.userId as string | undefined);
  if (!user || !ctx.secrets.apiKey) throw new ConnectorError({ class: 'auth', message: 'Acuity: userId and apiKey are needed' });
  return requestJson(ctx, { method, url: `${ctx.baseUrl}${path}`, body }, { authorization: `Basic ${Buffer.from(`${user}:${ctx.secrets.apiKey}`).toString('base64')}` });
}

const limitMessage = (inUse: number) =>
  `Acuity allows at most ${MAX_WEBHOOKS} webhooks made through its API per account and ${inUse} are in use; Meridian needs ${EVENTS.length}. `
  + 'Remove webhooks that other tools made for this Acuity account (or that an old Meridian connection left), then try again.';

function idsOf(remoteId: string): string[] {
  try {
    const v = JSON.parse(remoteId);
    if (Array.isArray(v)) return v.map(String);
  } catch {
    /* a single id */
  }
  return [remoteId];
}

async function listHooks(ctx: ConnectionContext): Promise<Hook[]> {
  const list = await acuityApi(ctx, 'GET', '/webhooks');
  return Array.isArray(list) ? (list as Hook[]) : [];
}

async function removeIds(ctx: ConnectionContext, ids: string[]): Promise<void> {
  for (const id of ids) {
    try {
      await acuityApi(ctx, 'DELETE', `/webhooks/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}

export const subscriptions: WebhookSubscriptions = {
  events: EVENTS,
  create: (ctx, url) => attempt(async () => {
    const existing = await listHooks(ctx);
    const reused = new Map(EVENTS.map((e) => [e, existing.find((h) => h.target === url && h.event === e && h.id !== undefined)] as const));
    const missing = EVENTS.filter((e) => !reused.get(e));
    if (existing.length + missing.length > MAX_WEBHOOKS) throw new ConnectorError({ class: 'permanent', message: limitMessage(existing.length) });
    const made: string[] = [];
    try {
      for (const event of missing) {
        const h = (await acuityApi(ctx, 'POST', '/webhooks', { target: url, event })) as Hook | undefined;
        if (h?.id === undefined) throw new ConnectorError({ class: 'transient', message: 'Acuity: the new webhook has no id' });
        made.push(String(h.id));
      }
    } catch (err) {
      // Leave nothing half-made behind: the next attempt starts from the same count.
      await removeIds(ctx, made).catch(() => undefined);
      if (err instanceof ConnectorError && err.failure.status === 400 && existing.length + made.length + 1 >= MAX_WEBHOOKS) {
        throw new ConnectorError({ class: 'permanent', status: 400, message: limitMessage(existing.length) });
      }
      throw err;
    }
    const ids = EVENTS.map((e) => (reused.get(e) ? String(reused.get(e)!.id) : made.shift()!));
    return { remoteId: JSON.stringify(ids) };
  }),
  remove: (ctx, remoteId) => attempt(() => removeIds(ctx, idsOf(remoteId))),
  check: async (ctx, remoteId) => {
    let hooks: Hook[];
    try {
      hooks = await listHooks(ctx);
    } catch (err) {
      if (err instanceof ConnectorError) return fail(err.failure);
      throw err;
    }
    const ids = idsOf(remoteId);
    const found = ids.map((id) => hooks.find((h) => String(h.id) === id));
    const gone = found.filter((h) => !h).length;
    const off = found.filter((h) => h && h.status !== undefined && h.status !== 'active');
    const url = found.find((h) => h?.target)?.target;
    if (gone) return ok({ active: false, ...(url ? { url } : {}), detail: `${gone} of the ${ids.length} Acuity webhooks no longer exist; create them again` });
    if (off.length) return ok({ active: false, ...(url ? { url } : {}), detail: `Acuity reports ${off.length} of the webhooks as "${String(off[0]!.status).slice(0, 20)}"` });
    return ok({ active: true, ...(url ? { url } : {}) });
  },
};
