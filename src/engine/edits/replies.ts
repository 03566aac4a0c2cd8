// Callbacks from notification providers (SMS delivery statuses, patients' replies): verified on the raw
// bytes by the connection's notifier, parsed into InboundEvents, then recorded: C confirms, X cancels
// (edits made by the patient, through the same door as a staff edit), STOP opts out, statuses are logged.
import { UnreadablePayload, type InboundEvent, type NotifierConnector, type WebhookRequest } from '../../connectors/types.ts';
import { loadConnection } from '../hub/connections.ts';
import type { Hub } from '../hub/hub.ts';
import { receive, rejected, type Door, type InboundOutcome as CallbackOutcome, type IncomingWebhook } from '../inbound/pipeline.ts';
import type { Appointment } from '../../domain/types.ts';
import { MeridianError } from '../../domain/errors.ts';
import { getAppointment } from '../../store/repo.ts';
import { whenText } from '../../domain/notify-plan.ts';
import { alertStaff, audit, contactRef, kindOf, normalizeAddress, optIn, optOut } from '../effects/notify.ts';
import { staffCancel, staffSetStatus } from './staff.ts';

const CALLBACK: Door = { notFound: 'no such callback endpoint', thing: 'callback', refusedLog: 'notifier callback refused', rejectedLog: 'notifier callback signature rejected' };

export async function receiveNotifierCallback(hub: Hub, connectionId: string, incoming: IncomingWebhook): Promise<CallbackOutcome> {
  return receive(hub, connectionId, incoming, CALLBACK, (conn) => {
    if (conn.connector.descriptor.role !== 'notifier') return undefined;
    const notifier = conn.connector as NotifierConnector;
    const verifyInbound = notifier.verifyInbound;
    if (!verifyInbound) return undefined;
    return { verify: (req) => verifyInbound.call(notifier, req, conn.secrets), accept: (req) => acceptCallback(hub, connectionId, conn.record.platform, notifier, req) };
  });
}

async function acceptCallback(hub: Hub, connectionId: string, platform: string, notifier: NotifierConnector, req: WebhookRequest): Promise<CallbackOutcome> {
  let events: InboundEvent[];
  try {
    events = notifier.parseInbound?.(req) ?? [];
  } catch (err) {
    if (!(err instanceof UnreadablePayload)) throw err;
    hub.metrics.webhooks.inc({ platform, outcome: 'unreadable' });
    return rejected('unreadable_payload', err.message);
  }
  if (events.length) await recordInbound(hub, connectionId, events);
  hub.metrics.webhooks.inc({ platform, outcome: 'accepted' });
  // Some providers want their own acknowledgement back, verbatim.
  return { kind: 'accepted', details: { events: events.length }, answer: notifier.inboundAnswer };
}

// ------------------------------------------------------------------ inbound (SMS replies, delivery statuses)

const STOP_WORDS = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT']);
const START_WORDS = new Set(['START', 'UNSTOP']);

export interface InboundOutcome {
  kind: InboundEvent['kind'];
  outcome: 'status_saved' | 'unknown_message' | 'opted_out' | 'opted_in' | 'confirmed' | 'cancelled' | 'unmatched' | 'unrecognised';
  appointmentId?: string;
}

/** The appointment a patient's reply is about: the latest upcoming one we wrote to them about on this connection. */
async function replyTarget(hub: Hub, connectionId: string, from: string, providerId?: string): Promise<Appointment | undefined> {
  let q = hub.store.db.selectFrom('notification').select('appointment_id').where('connection_id', '=', connectionId).where('appointment_id', 'is not', null)
    .where('state', '=', 'sent').orderBy('created_at', 'desc').limit(20);
  q = providerId ? q.where('provider_id', '=', providerId) : q.where('address', '=', normalizeAddress(from));
  const now = hub.clock.now().getTime();
  for (const r of await q.execute()) {
    const a = await getAppointment(hub.store.db, r.appointment_id!);
    if (a && (a.status === 'booked' || a.status === 'requested') && Date.parse(a.end) > now) return a;
  }
  return providerId ? replyTarget(hub, connectionId, from) : undefined;
}

/**
 * What a notifier's provider told us (the SMS engineer's inbound route calls this after verifying):
 * delivery statuses are stored on the message; replies `C` confirm, `X` cancel through the engine (staff
 * are told), STOP and its synonyms opt the number out at once, START opts it back in.
 */
export async function recordInbound(hub: Hub, connectionId: string, events: InboundEvent[]): Promise<InboundOutcome[]> {
  const conn = await loadConnection(hub, connectionId);
  const channel = kindOf(conn) ?? conn.record.platform;
  const actor = `patient:${channel}`;
  const out: InboundOutcome[] = [];
  for (const e of events) {
    if (e.kind === 'status') {
      const row = await hub.store.db.selectFrom('notification').select(['key', 'appointment_id', 'clinic_id', 'purpose']).where('provider_id', '=', e.providerId).where('connection_id', '=', connectionId).executeTakeFirst();
      if (!row) {
        out.push({ kind: 'status', outcome: 'unknown_message' });
        continue;
      }
      await hub.store.db.updateTable('notification').set({ delivery_status: e.status, updated_at: hub.clock.now().toISOString() }).where('key', '=', row.key).execute();
      if (e.status === 'failed' || e.status === 'undelivered') {
        await audit(hub, [{
          actor: `notifier:${connectionId}`, action: 'notify.undelivered', entityType: row.appointment_id ? 'appointment' : 'clinic', entityId: row.appointment_id ?? row.clinic_id,
          meta: { key: row.key, purpose: row.purpose, status: e.status, ...(e.error ? { error: e.error.slice(0, 100) } : {}) },
        }]);
      }
      out.push({ kind: 'status', outcome: 'status_saved', appointmentId: row.appointment_id ?? undefined });
      continue;
    }
    const word = e.text.trim().toUpperCase().replace(/[^A-Z]/g, '');
    if (STOP_WORDS.has(word)) {
      await optOut(hub, e.from, `reply:${word}`, actor);
      out.push({ kind: 'reply', outcome: 'opted_out' });
      continue;
    }
    if (START_WORDS.has(word)) {
      await optIn(hub, e.from, actor);
      out.push({ kind: 'reply', outcome: 'opted_in' });
      continue;
    }
    const a = await replyTarget(hub, connectionId, e.from, e.providerId);
    if (word !== 'C' && word !== 'X') {
      // Free text is the patient's own words: only its length goes into the audit log.
      await audit(hub, [{ actor, action: 'notify.reply_unrecognised', entityType: a ? 'appointment' : 'contact', entityId: a?.id ?? contactRef(e.from), meta: { connection: connectionId, length: e.text.length } }]);
      out.push({ kind: 'reply', outcome: 'unrecognised', appointmentId: a?.id });
      continue;
    }
    if (!a) {
      await audit(hub, [{ actor, action: 'notify.reply_unmatched', entityType: 'contact', entityId: contactRef(e.from), meta: { connection: connectionId, reply: word } }]);
      out.push({ kind: 'reply', outcome: 'unmatched' });
      continue;
    }
    if (word === 'C') {
      if (a.status === 'requested') await staffSetStatus(hub, a.id, 'booked', actor);
      else await audit(hub, [{ actor, action: 'appointment.patient_confirmed', entityType: 'appointment', entityId: a.id, meta: { connection: connectionId } }]);
      out.push({ kind: 'reply', outcome: 'confirmed', appointmentId: a.id });
      continue;
    }
    try {
      await staffCancel(hub, a.id, `cancelled by the patient (${channel} reply)`, actor);
      await alertStaff(hub, a.clinicId, { type: 'patient_cancelled', ref: `${a.id}@r${a.revision + 1}`, summary: `The patient cancelled appointment ${a.id} (${whenText(a.start, a.end, a.timeZone, 'en')}) by replying X to a ${channel} message.` });
    } catch (err) {
      if (!(err instanceof MeridianError)) throw err;
    }
    out.push({ kind: 'reply', outcome: 'cancelled', appointmentId: a.id });
  }
  return out;
}
