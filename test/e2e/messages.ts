// What a patient receives across the kills of the fault suites (crash.test.ts, nodes.test.ts), and the
// writes the kills land in. The clinic of the fault harness sends its notices by e-mail (a real SMTP server),
// by SMS (the Twilio fake) for patients who opted out of e-mail, and every appointment event to an outbound
// webhook receiver; the fakes report each write to `Writes` as it arrives, which knows what is in flight
// (and from which process) at a kill, and can hold a write while the harness kills the process that sent it.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { WriteSeen } from '../fakes/gate.ts';
import type { SmtpSink } from '../fakes/smtp-sink.ts';
import type { FakeTwilio } from '../fakes/twilio.ts';
import type { Receiver } from '../fakes/webhook-receiver.ts';

// ------------------------------------------------------------------ who sent a write

/** The inode of the TCP socket whose local port is `clientPort`, connected to `serverPort` (Linux /proc). */
function socketInode(clientPort: number, serverPort: number): string | undefined {
  const port = (addr: string) => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16);
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length >= 10 && port(c[1]) === clientPort && port(c[2]) === serverPort) return c[9];
    }
  }
  return undefined;
}

/** Which of `pids` holds the client end of the write's connection (while it is open), if any. */
export function senderOf(w: Pick<WriteSeen, 'clientPort' | 'serverPort'>, pids: number[]): number | undefined {
  const inode = socketInode(w.clientPort, w.serverPort);
  if (!inode) return undefined;
  const link = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return pid;
      } catch { /* closed meanwhile */ }
    }
  }
  return undefined;
}

/** A write held at its fake until `release()`: the harness kills its sender first. */
export interface Held { write: WriteSeen; pid: number; release(): void }

/** The writes the fakes see: which are in flight, and a trap that holds the next one a process sends. */
export class Writes {
  private open = new Set<WriteSeen>();
  private trap?: (w: WriteSeen) => Promise<void>;
  /** Writes seen, per fake. */
  seen: Record<string, number> = {};
  /** The processes that may send writes (the live Meridian processes). */
  pids: () => number[] = () => [];

  /** Give this to each fake as its `gate`. */
  gate = async (w: WriteSeen): Promise<void> => {
    this.seen[w.fake] = (this.seen[w.fake] ?? 0) + 1;
    this.open.add(w);
    void w.done.then(() => this.open.delete(w));
    const t = this.trap;
    if (t) await t(w);
  };

  /** The writes process `pid` has in flight now (sent, not answered). */
  inFlightFrom(pid: number): string[] {
    return [...this.open].filter((w) => senderOf(w, [pid]) === pid).map((w) => `${w.fake} ${w.what}`);
  }

  /**
   * Hold the next write whose sender `pick` accepts (undefined after `ms` without one). The write stays
   * unanswered until `release()`; then its fake acts on it as received in full and answers a closed socket.
   */
  catchWrite(pick: (pid: number) => boolean | Promise<boolean>, ms: number): Promise<Held | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        if (this.trap === trap) this.trap = undefined;
        resolve(undefined);
      }, ms);
      const trap = async (w: WriteSeen): Promise<void> => {
        // One candidate at a time: writes arriving while it is judged pass.
        this.trap = undefined;
        const pid = senderOf(w, this.pids());
        const chosen = !settled && pid !== undefined && await pick(pid);
        if (settled) return;
        if (!chosen) {
          this.trap = trap;
          return;
        }
        settled = true;
        clearTimeout(timer);
        let release!: () => void;
        const released = new Promise<void>((r) => { release = r; });
        resolve({ write: w, pid: pid!, release });
        await released;
      };
      this.trap = trap;
    });
  }
}

// ------------------------------------------------------------------ messages: each notice once

/** A kill, as the suites' Cluster records it. */
export interface Kill { at: number; node: string; inFlight: string[] }

export interface Channels { smtp: SmtpSink; twilio: FakeTwilio; hooks: Receiver }

interface Notification { key: string; appointmentId: string | null; audience: string; purpose: string; channel: string | null; state: string; providerId: string | null }
interface OutboundDelivery { id: string; eventType: string; entityId: string; status: string; attempts: number }

export interface MessageReport {
  problems: string[];
  /** Copies sent again after a kill cut a send between the provider's answer and its record (the documented case). */
  resent: { email: number; sms: number; webhooks: number };
  /** Messages that arrived but whose send a kill cut before it was recorded, and that were not sent again (no longer due as they were). */
  unrecorded: { email: number; sms: number; webhooks: number };
  counts: { email: number; sms: number; webhooks: number };
}

/**
 * Copies of one message, in arrival order, each with whether Meridian recorded it as sent. The documented case
 * is a send whose answer was lost to a kill: Meridian never recorded it, and sends it again (the same Message-ID,
 * the same webhook-id, the same SMS) if the message is still due. So every copy but a recorded one needs a kill
 * after it (before the next copy), and at most one copy — the last — is recorded. Undefined when that holds.
 */
function unexplained(copies: { at: number; recorded: boolean }[], kills: Kill[]): string | undefined {
  const c = copies.slice().sort((a, b) => a.at - b.at);
  const killAfter = (i: number) => kills.some((k) => k.at > c[i].at && (i + 1 === c.length || k.at < c[i + 1].at));
  const times = () => `copies at ${c.map((x) => `${x.at % 100_000}${x.recorded ? ' (recorded)' : ''}`).join(', ')}; kills at ${kills.map((k) => k.at % 100_000).join(', ') || 'none'}`;
  if (c.filter((x) => x.recorded).length > 1) return `recorded ${c.filter((x) => x.recorded).length} times: ${times()}`;
  for (let i = 0; i < c.length; i++) {
    if (c[i].recorded && i !== c.length - 1) return `a copy came after the recorded one: ${times()}`;
    if (!c[i].recorded && !killAfter(i)) return `${c.length > 1 ? `${c.length} copies, ` : ''}not recorded as sent, and no kill cut its send: ${times()}`;
  }
  return undefined;
}

/** The Message-ID the e-mail notifier derives from a message key (its hash part). */
const messageIdHash = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 32);

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

/**
 * Every message Meridian recorded as sent arrived, and each notice arrived once: one Message-ID per
 * e-mail notice, one SMS per notice, one webhook-id per appointment event. A second copy of the same message
 * (same Message-ID, same SMS, same webhook-id) is what the product documents for a send whose answer was lost:
 * allowed only when a kill came between the copies, and for SMS only when the first copy's provider id was
 * never recorded (the process died between the provider's answer and recording it).
 */
export async function messageReport(ch: Channels, api: (method: string, path: string) => Promise<{ body: Record<string, any> }>, kills: Kill[]): Promise<MessageReport> {
  const problems: string[] = [];
  const notifs = (await api('GET', '/notifications?limit=1000')).body.items as Notification[];
  if (notifs.length >= 1000) problems.push('the notifications listing is cut at 1000');
  const sent = notifs.filter((n) => n.state === 'sent');
  const resent = { email: 0, sms: 0, webhooks: 0 };
  const unrecorded = { email: 0, sms: 0, webhooks: 0 };

  // E-mail: the Message-ID is derived from the message key.
  await ch.smtp.settle();
  const mails = ch.smtp.inbox;
  const emailIds = new Set(sent.filter((n) => n.channel === 'email').map((n) => n.providerId));
  const byHash = new Map(notifs.filter((n) => n.channel === 'email').map((n) => [messageIdHash(n.key), n]));
  const byId = groupBy(mails, (m) => m.mail.messageId ?? '');
  for (const [id, copies] of byId) {
    const n = byHash.get(/^<([0-9a-f]{32})@/.exec(id)?.[1] ?? '');
    if (!n) {
      problems.push(`e-mail ${id} ("${copies[0].mail.subject}") arrived but Meridian has no message with its key`);
      continue;
    }
    const recorded = n.state === 'sent' && n.providerId === id;
    const why = unexplained(copies.map((c, i) => ({ at: c.at, recorded: recorded && i === copies.length - 1 })), kills);
    if (why) problems.push(`e-mail ${n.key} ("${copies[0].mail.subject}", ${n.state}): ${why}`);
    resent.email += copies.length - 1;
    if (!recorded) unrecorded.email++;
  }
  for (const id of emailIds) if (!byId.has(id!)) problems.push(`e-mail ${id} recorded as sent never arrived`);
  // One notice, one message: no two Message-IDs say the same thing to the same recipient.
  for (const [what, ms] of groupBy(mails, (m) => `${m.envelopeTo.join(',')} ${m.mail.subject} ${m.mail.text}`)) {
    const ids = new Set(ms.map((m) => m.mail.messageId));
    if (ids.size > 1) problems.push(`the same notice went out as ${ids.size} e-mails (${[...ids].join(', ')}): ${what.split('\n')[0]}`);
  }

  // SMS: no idempotency key; the fake's message sid is the provider id Meridian records.
  const smsSids = new Set(sent.filter((n) => n.channel === 'sms').map((n) => n.providerId));
  const texts = groupBy(ch.twilio.messages, (m) => `${m.to} ${m.body}`);
  for (const [what, copies] of texts) {
    const why = unexplained(copies.map((c) => ({ at: c.at, recorded: smsSids.has(c.sid) })), kills);
    if (why) problems.push(`SMS "${what}": ${why}`);
    resent.sms += copies.length - 1;
    if (!copies.some((c) => smsSids.has(c.sid))) unrecorded.sms++;
  }
  const sids = new Set(ch.twilio.messages.map((m) => m.sid));
  for (const sid of smsSids) if (!sids.has(sid!)) problems.push(`SMS ${sid} recorded as sent is unknown to the provider`);

  // Outbound webhooks: one webhook-id per appointment event; the same id again only after a kill.
  const deliveries = (await api('GET', '/outbound-deliveries?limit=1000')).body.items as OutboundDelivery[];
  if (deliveries.length >= 1000) problems.push('the outbound deliveries listing is cut at 1000');
  const known = new Map(deliveries.map((d) => [d.id, d]));
  const hooks = groupBy(ch.hooks.received, (r) => r.headers['webhook-id'] ?? '');
  for (const [id, copies] of hooks) {
    const d = known.get(id);
    if (!d) {
      problems.push(`webhook ${id} arrived but Meridian has no such delivery`);
      continue;
    }
    // Every copy was answered 2xx: the last is the one recorded (the delivery is delivered, checked below).
    const why = unexplained(copies.map((c, i) => ({ at: c.at, recorded: d.status === 'delivered' && i === copies.length - 1 })), kills);
    if (why) problems.push(`webhook ${id} (${d.eventType} of ${d.entityId}): ${why}`);
    resent.webhooks += copies.length - 1;
  }
  for (const d of deliveries) {
    if (d.status !== 'delivered') problems.push(`outbound delivery ${d.id} (${d.eventType}) is ${d.status}`);
    else if (!hooks.has(d.id)) problems.push(`outbound delivery ${d.id} (${d.eventType}) is recorded delivered but never arrived`);
  }
  const events = groupBy([...hooks.values()].map((c) => c[0]), (r) => {
    const e = JSON.parse(r.body) as { type: string; data: { id: string; revision: number } };
    return `${e.type} of ${e.data.id} at revision ${e.data.revision}`;
  });
  for (const [what, rs] of events) if (rs.length > 1) problems.push(`${what} went out under ${rs.length} webhook-ids`);

  return { problems, resent, unrecorded, counts: { email: byId.size, sms: texts.size, webhooks: hooks.size } };
}

// ------------------------------------------------------------------ the audit log: no entry twice

export interface AuditEntry { seq: number; at: string; actor: string; action: string; entityType: string; entityId: string; before?: unknown; after?: unknown; meta?: Record<string, unknown> }

/** What makes an entry one write, when its action names a write that happens once per such thing. */
function writeOf(e: AuditEntry): string | undefined {
  const entity = `${e.entityType}:${e.entityId}`;
  const afterRevision = (e.after as { revision?: unknown } | undefined)?.revision;
  // A change of an appointment: the revision it made.
  if (e.action.startsWith('appointment.') && typeof afterRevision === 'number') return `${e.action} ${entity} → revision ${afterRevision}`;
  // A calendar write or a write-back: the revision it carried, to that target or platform.
  if ((e.action.startsWith('target.') || e.action === 'source.written_back') && typeof e.meta?.revision === 'number') {
    return `${e.action} ${entity} to ${String(e.meta.target ?? e.meta.connection)} at revision ${e.meta.revision}`;
  }
  // A message sent, refused or suppressed: its key (one per notice, reminder or alert).
  if (e.action.startsWith('notify.') && typeof e.meta?.key === 'string') return `${e.action} ${e.meta.key}`;
  // An outbound webhook delivered or given up: its delivery (a replay is a new request, audited as such).
  if ((e.action === 'webhook.delivered' || e.action === 'webhook.failed') && typeof e.meta?.delivery === 'string') return `${e.action} ${e.meta.delivery}`;
  return undefined;
}

/**
 * Entries written twice. An entry (src/store/audit.ts) records one write — an action on one entity, with the
 * state before and after and its meta — under the sequence number, time and actor (process) of the transaction
 * that appended it; seq, time and actor differ between two entries whatever happened, so they say nothing. The
 * same write recorded twice is two entries of the same action for the same write, which the entry names:
 * - an appointment change: the entity and the revision it made (`after.revision`);
 * - a calendar write (`target.*`) or a write-back (`source.written_back`): the entity, the target or platform,
 *   and the revision written (`meta.revision`);
 * - a message sent, refused or suppressed (`notify.*`): its key (`meta.key`);
 * - an outbound webhook delivered or failed: its delivery (`meta.delivery`);
 * - an opt-out (`notify.opted_out`) of a contact already opted out (no `notify.opted_in` between).
 * Entries that name no such thing (a notice found nothing to tell; a config applied) may recur legitimately.
 */
export function doubledAudit(entries: AuditEntry[]): string[] {
  const out: string[] = [];
  const seen = new Map<string, number>();
  const optedOut = new Map<string, number>();
  for (const e of [...entries].sort((a, b) => a.seq - b.seq)) {
    const w = writeOf(e);
    if (w !== undefined) {
      const first = seen.get(w);
      if (first !== undefined) out.push(`audit entries ${first} and ${e.seq} record one write: ${w}`);
      else seen.set(w, e.seq);
    }
    if (e.action === 'notify.opted_out') {
      const first = optedOut.get(e.entityId);
      if (first !== undefined) out.push(`audit entries ${first} and ${e.seq}: ${e.entityId} opted out twice with no opt-in between`);
      else optedOut.set(e.entityId, e.seq);
    }
    if (e.action === 'notify.opted_in') optedOut.delete(e.entityId);
  }
  return out;
}
