// The fault harness shared by the crash suite (crash.test.ts) and the several-nodes suite (nodes.test.ts):
// real `bin/meridian serve` processes that can be SIGKILLed and restarted, a seeded stream of signed webhooks
// from several booking platforms (their e2e drivers in ./sources/) plus staff edits through the API, and the
// end checks — every acknowledged delivery applied, one Google event per live appointment at the right time,
// none for a cancelled one, write-backs done, no job stuck, nothing written to Google twice, and no reminder
// pending for a dead state (each live appointment has its reminders, planned for the time it is at).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startFakeGoogle, type FakeGoogle } from '../fakes/google-calendar.ts';
import { startSmtpSink } from '../fakes/smtp-sink.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { startReceiver } from '../fakes/webhook-receiver.ts';
import { Writes, type AuditEntry, type Channels, type Kill } from './messages.ts';
import { ROOT, serve, type Served } from './serve.ts';
import { CAL, clinicYaml, googleEnv, platformConnection, type E2EBooking, type E2EDelivery, type E2EEvent, type SourceDriver, type SourceFake } from './sources/driver.ts';

export const run = promisify(execFile);
export const LONG = process.env.MERIDIAN_LONG === '1';
export { CAL };
/** Platforms with different shapes: JSON signed with a timestamp, URL-signed versions, ids-only read back, uid chains. */
export const PLATFORMS = ['calendly', 'square', 'acuity', 'cal-com'];
/** Platforms whose bookings (as their e2e drivers send them) carry no phone number: no SMS for their patients. */
const NO_PHONE = new Set(['calendly']);
/** Job kinds that carry a delivery's or an edit's effect: none may be left over at the end. */
const EFFECT_JOBS = new Set(['target.sync', 'source.fetch', 'source.writeback', 'notify.notice', 'webhook.deliver']);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (mulberry32): the same seed gives the same stream and kill gaps. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** MERIDIAN_SEED reproduces a run; otherwise a fresh seed (always printed). */
export function seedFor(what: string): number {
  const seed = process.env.MERIDIAN_SEED ? Number(process.env.MERIDIAN_SEED) : randomBytes(4).readUInt32LE(0);
  console.log(`# ${what}: seed ${seed} (reproduce with MERIDIAN_SEED=${seed})`);
  return seed;
}

// ------------------------------------------------------------------ the clinic and its platforms

export interface Platform { driver: SourceDriver; fake: SourceFake }

export interface Rig {
  g: FakeGoogle;
  platforms: Map<string, Platform>;
  /** Where patients' messages go: an SMTP server, the SMS provider, the clinic's webhook receiver. */
  channels: Channels;
  /** The writes these fakes see (Google, SMTP, SMS, webhooks): in flight, and held for a kill. */
  writes: Writes;
  env: NodeJS.ProcessEnv;
  configFile: string;
  close(): Promise<void>;
}

/** The Google fake, the platforms' fakes and a clinic config naming them all; `extraConnections` is YAML appended to `connections:`. */
export async function startRig(dir: string, extraConnections = ''): Promise<Rig> {
  const g = await startFakeGoogle();
  const channels: Channels = { smtp: await startSmtpSink(), twilio: await startFakeTwilio(), hooks: await startReceiver() };
  const writes = new Writes();
  g.gate = channels.smtp.gate = channels.twilio.gate = channels.hooks.gate = writes.gate;
  const platforms = new Map<string, Platform>();
  for (const name of PLATFORMS) {
    const driver = (await import(`./sources/${name}.ts`) as { default: SourceDriver }).default;
    platforms.set(name, { driver, fake: await driver.start() });
  }
  const env: NodeJS.ProcessEnv = {
    ...googleEnv(g),
    // Several processes share one database: they must share the key its stored secrets are sealed with.
    MERIDIAN_SECRET_KEY: randomBytes(32).toString('base64'),
    // No drift sweeps (they rewrite events on purpose); a dead process's jobs come back after 3 s, not 120.
    MERIDIAN_SWEEP_MINUTES: '0', MERIDIAN_JOB_LEASE_SECONDS: '3',
    E2E_TW_SID: channels.twilio.credentials.accountSid, E2E_TW_TOKEN: channels.twilio.credentials.authToken,
    E2E_HOOK: `whsec_${randomBytes(32).toString('base64')}`,
  };
  const yaml: string[] = [];
  for (const [name, { fake }] of platforms) {
    // No periodic polls of these: the stream is what they send (polls are the several-nodes suite's feed).
    const c = platformConnection(name, fake, { pollMinutes: 0 });
    Object.assign(env, c.env);
    yaml.push(c.yaml);
  }
  const configFile = join(dir, 'clinic.yaml');
  writeFileSync(configFile, `
${clinicYaml(g)}
  - id: mail
    platform: email
    config: { from: "Lotus Integrative Health <appointments@lotusclinic.example>", host: 127.0.0.1, port: ${channels.smtp.port}, requireTLS: false }
  - id: sms
    platform: sms
    baseUrl: ${channels.twilio.url}
    config: { from: "${channels.twilio.from}" }
    secrets: { accountSid: { env: E2E_TW_SID }, authToken: { env: E2E_TW_TOKEN } }
  - id: clinic-hooks
    platform: webhook-out
    config: { url: "${channels.hooks.url}", events: [appointment.created, appointment.updated, appointment.cancelled] }
    secrets: { signingSecret: { env: E2E_HOOK } }
${yaml.join('\n')}
${extraConnections}
# Reminders are planned in each change's transaction (the visits are in 2027: none is due); notices go out at
# once (no grace), by e-mail or, for a patient who opted out of e-mail, by SMS; the practitioner's by e-mail.
notifications:
  channel: [mail, sms]
  graceMinutes: 0
  reminders: [{ before: 48h }, { before: 2h }]
`);
  return {
    g, platforms, channels, writes, env, configFile,
    async close() {
      for (const p of platforms.values()) await p.fake.close();
      await g.close();
      await channels.smtp.close();
      await channels.twilio.close();
      await channels.hooks.close();
    },
  };
}

// ------------------------------------------------------------------ processes

/** One `meridian serve` process that can be killed and started again on the same data. */
export class Node {
  srv?: Served;
  /** How long each start took, until it listened (ms). */
  startMs: number[] = [];
  constructor(readonly name: string, private args: string[], private env: NodeJS.ProcessEnv) {}
  get up(): boolean { return this.srv !== undefined; }
  /** The running process's id (undefined while down). */
  get pid(): number | undefined { return this.srv?.proc.pid; }
  get url(): string { return this.srv!.url; }
  async start(): Promise<void> {
    const t = Date.now();
    this.srv = await serve(this.args, this.env);
    this.startMs.push(Date.now() - t);
  }
  async kill(): Promise<void> {
    const s = this.srv!;
    this.srv = undefined;
    await s.stop('SIGKILL');
  }
  async stop(): Promise<number | null> {
    const s = this.srv;
    this.srv = undefined;
    return s ? s.stop('SIGTERM') : null;
  }
}

/** The processes behind one address: requests go round-robin to those that are up. */
export class Cluster {
  private next = 0;
  /** Each kill: when, which process, and the writes it had in flight at a fake at that moment. */
  kills: Kill[] = [];
  constructor(readonly nodes: Node[], private writes?: Writes) {
    if (writes) writes.pids = () => nodes.flatMap((n) => (n.pid === undefined ? [] : [n.pid]));
  }
  async base(): Promise<string> {
    for (let waited = 0; waited < 60_000; waited += 50) {
      const up = this.nodes.filter((n) => n.up);
      if (up.length) return up[this.next++ % up.length].url;
      await sleep(50);
    }
    throw new Error('no Meridian process came up within 60 s');
  }
  /** SIGKILL `node` now (`killed` runs once it is dead); restart it on the same data unless told not to. */
  async kill(node: Node, restart = true, killed?: () => void): Promise<void> {
    const inFlight = node.pid !== undefined && this.writes ? this.writes.inFlightFrom(node.pid) : [];
    await node.kill();
    this.kills.push({ at: Date.now(), node: node.name, inFlight });
    killed?.();
    if (restart) await node.start();
  }

  /** Kills that landed while the process had a write in flight at a fake. */
  get killsMidWrite(): Kill[] { return this.kills.filter((k) => k.inFlight.length > 0); }
}

// ------------------------------------------------------------------ traffic

/** An answered webhook: when, and which process answered it (`via`, its URL). */
export interface Ack { at: number; platform: string; via: string; status: number; body: Record<string, any> }

/** What a booking platform and the office do: send until answered, as platforms retry unanswered webhooks. */
export class Traffic {
  acks: Ack[] = [];
  /** Requests that got no answer (the process died under them, or was down) and were sent again. */
  unanswered = 0;
  apiKey = '';
  constructor(private cluster: Cluster) {}

  private async once(path: string, init: RequestInit): Promise<{ via: string; status: number; body: Record<string, any> } | undefined> {
    const base = await this.cluster.base();
    try {
      const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      // A process shutting down may answer 5xx: the sender tries again, as with no answer.
      if (res.status >= 500) return undefined;
      return { via: base, status: res.status, body: text ? JSON.parse(text) : {} };
    } catch {
      return undefined;
    }
  }

  private async until(path: string, init: RequestInit): Promise<{ via: string; status: number; body: Record<string, any> }> {
    for (let tries = 0; tries < 400; tries++) {
      const r = await this.once(path, init);
      if (r) return r;
      this.unanswered++;
      await sleep(100);
    }
    throw new Error(`${init.method} ${path}: no answer after 400 tries`);
  }

  async webhook(platform: string, d: E2EDelivery): Promise<Ack> {
    const r = await this.until(`/webhooks/${platform}`, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
    assert.ok(r.status === 200 || r.status === 202, `${platform} webhook answered ${r.status}: ${JSON.stringify(r.body)}`);
    const ack = { at: Date.now(), platform, ...r };
    this.acks.push(ack);
    return ack;
  }

  /** The whole audit log, oldest first (its JSON Lines export). */
  async auditLog(): Promise<AuditEntry[]> {
    for (let tries = 0; tries < 400; tries++) {
      try {
        const res = await fetch(`${await this.cluster.base()}/api/v1/audit/export?format=jsonl`, { headers: { authorization: `Bearer ${this.apiKey}` }, signal: AbortSignal.timeout(15_000) });
        if (res.status === 200) return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEntry);
      } catch { /* a process went down: ask another */ }
      await sleep(100);
    }
    throw new Error('the audit export did not answer');
  }

  api(method: string, path: string, body?: unknown): Promise<{ via: string; status: number; body: Record<string, any> }> {
    return this.until(`/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${this.apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
  }

  private snap?: { at: number; items: Promise<Record<string, any>[]> };
  /** Every appointment of the stream's years (one listing shared by all waiters for 150 ms). */
  appointments(): Promise<Record<string, any>[]> {
    if (!this.snap || Date.now() - this.snap.at > 150) {
      this.snap = { at: Date.now(), items: this.api('GET', '/appointments?from=2027-01-01T00:00:00Z&to=2030-01-01T00:00:00Z&limit=5000').then((r) => r.body.items) };
    }
    return this.snap.items;
  }

  /** Poll `check` until it holds; `ms` counts only time some process was up (a restart on a busy machine takes seconds). */
  async waitFor<T>(what: string, check: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
    let waited = 0;
    while (waited < ms) {
      const t = Date.now();
      const v = await check();
      if (v) return v;
      await sleep(150);
      if (this.cluster.nodes.some((n) => n.up)) waited += Date.now() - t;
    }
    const open = ((await this.api('GET', '/jobs?limit=1000')).body.items as { kind: string; state: string; attempts: number; runAt: string; lastError?: string; payload: unknown }[])
      .filter((j) => j.state !== 'done').map((j) => `${j.kind} ${j.state} attempts ${j.attempts} at ${j.runAt}${j.lastError ? ` (${j.lastError})` : ''}`);
    throw new Error(`timed out after ${ms} ms waiting for ${what}; jobs not done: ${open.join('; ') || 'none'}`);
  }

  /**
   * A staff edit: sent until answered; when an attempt got no answer, the next first looks whether it
   * was committed after all (an edit is not idempotent: a second move would be a second change).
   */
  async staff(email: string, path: string, body: unknown, done: (a: Record<string, any>) => boolean): Promise<boolean> {
    for (let tries = 0; tries < 400; tries++) {
      if (tries > 0) {
        const a = (await this.appointments()).find((x) => x.patient?.email === email);
        if (a && done(a)) return false;
      }
      const r = await this.once(`/api/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r) {
        assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
        return true;
      }
      this.unanswered++;
      this.snap = undefined;
      await sleep(100);
    }
    throw new Error(`${path}: no answer`);
  }
}

// ------------------------------------------------------------------ the stream

type Ending = 'live' | 'platform-cancel' | 'staff-move' | 'staff-move-cancel' | 'staff-cancel';
const ENDINGS: Ending[] = ['live', 'platform-cancel', 'staff-move', 'staff-move-cancel', 'staff-cancel'];

export interface Expected {
  email: string;
  platform: string;
  bookingId: string;
  start: string;
  end: string;
  status: 'booked' | 'cancelled';
  ending: Ending;
  /** Staff edits that were answered 200 (each must be in the appointment's audit). */
  staffActions: string[];
  appointmentId?: string;
}

const SLOT_BASE = Date.parse('2027-03-01T15:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/**
 * The seeded stream: bookings on every platform, each its own cycle — created, perhaps the same delivery
 * again, zero to two reschedules, the first `created` delivered late, then one ending (stays, the patient
 * cancels, staff move it, staff move then cancel it, staff cancel it). Bookings run concurrently; every
 * time slot is distinct so no edit is refused as a double booking.
 */
export class Stream {
  expected: Expected[] = [];
  private slot = 0;
  private n = 0;
  constructor(private rig: Rig, private traffic: Traffic, private rand: () => number, private tag: string) {}

  private pick<T>(xs: T[]): T { return xs[Math.floor(this.rand() * xs.length)]; }
  private times(): { start: string; end: string } {
    const s = SLOT_BASE + (this.slot++) * 90 * 60_000;
    return { start: iso(s), end: iso(s + 45 * 60_000) };
  }

  /** Start bookings, `parallel` at a time, until `more()` says stop and at least `min` are done. */
  async run(o: { min: number; parallel: number; more: () => boolean }): Promise<void> {
    let started = 0;
    const lane = async () => {
      while (started < o.min || o.more()) {
        started++;
        await this.booking();
      }
    };
    await Promise.all(Array.from({ length: o.parallel }, lane));
  }

  /** One booking's whole cycle (decisions drawn up front, so a seed gives the same plan whatever the timing). */
  async booking(): Promise<void> {
    // Half the patients opted out of e-mail: their notices go by SMS (on a platform that passes their phone on).
    const bySms = this.rand() < 0.5;
    const platform = this.pick(bySms ? PLATFORMS.filter((p) => !NO_PHONE.has(p)) : PLATFORMS);
    const { fake } = this.rig.platforms.get(platform)!;
    const k = this.n++;
    const first = this.times();
    const moves = Array.from({ length: Math.floor(this.rand() * 3) }, () => this.times());
    const duplicate = this.rand() < 0.6;
    const ending = this.pick(ENDINGS);
    const staffTimes = ending === 'staff-move' || ending === 'staff-move-cancel' ? this.times() : undefined;
    const email = `patient.${this.tag}.${k}@example.net`;
    const b: E2EBooking = { id: crypto.randomUUID(), ...first, timeZone: 'America/Chicago', patient: { name: `Patient ${k}`, email, phone: `+1555${String(k).padStart(7, '0')}` } };
    const exp: Expected = { email, platform, bookingId: b.id, ...first, status: 'booked', ending, staffActions: [] };
    this.expected.push(exp);
    const hook = (event: E2EEvent, at: Date, x: E2EBooking) => fake.webhook(event, x, at, `http://meridian.invalid/webhooks/${platform}`);
    const t0 = new Date(Date.now() - 5_000);
    const send = async (d: E2EDelivery) => {
      const ack = await this.traffic.webhook(platform, d);
      // Ids-only platforms: wait until the read-back ran, so the next step's state is what gets applied after it.
      if ((ack.body.changes as { outcome: string }[] | undefined)?.some((c) => c.outcome === 'fetch_queued')) {
        await this.traffic.waitFor(`delivery ${ack.body.delivery} read back`, async () => {
          const r = await this.traffic.api('GET', `/deliveries?connection=${platform}&limit=1000`);
          return (r.body.items as { id: string; status: string }[]).find((d) => d.id === ack.body.delivery && d.status !== 'fetching');
        });
      }
      return ack;
    };
    const mine = () => this.traffic.waitFor(`${email}'s appointment`, async () => (await this.traffic.appointments()).find((a) => a.patient?.email === email));

    if (bySms) {
      const r = await this.traffic.api('POST', '/opt-outs', { address: email, source: 'patient' });
      assert.equal(r.status, 201, `opt-out: ${JSON.stringify(r.body)}`);
    }
    fake.hold(b, 'booked');
    const created = hook('created', t0, b);
    await send(created);
    const appt = await mine();
    exp.appointmentId = appt.id;
    if (duplicate) await send(created);
    let cur = b;
    for (const m of moves) {
      cur = { ...b, ...m };
      fake.hold(cur, 'booked');
      await send(hook('rescheduled', new Date(), cur));
      await this.traffic.waitFor(`${email} moved`, async () => (await mine()).start === cur.start);
    }
    exp.start = cur.start;
    exp.end = cur.end;
    // The first booking's webhook arrives late: it must not undo the moves.
    await send(hook('created', t0, b));

    if (ending === 'platform-cancel') {
      fake.hold(cur, 'cancelled');
      await send(hook('canceled', new Date(), cur));
      exp.status = 'cancelled';
    }
    if (staffTimes) {
      if (await this.traffic.staff(email, `/appointments/${appt.id}/reschedule`, { ...staffTimes, override: true }, (a) => a.start === staffTimes.start)) exp.staffActions.push('appointment.rescheduled');
      exp.start = staffTimes.start;
      exp.end = staffTimes.end;
    }
    if (ending === 'staff-cancel' || ending === 'staff-move-cancel') {
      if (await this.traffic.staff(email, `/appointments/${appt.id}/cancel`, { reason: 'patient called' }, (a) => a.status === 'cancelled')) exp.staffActions.push('appointment.cancelled');
      exp.status = 'cancelled';
    }
  }
}

// ------------------------------------------------------------------ end checks

export interface Findings {
  /** What is wrong (empty when all holds). */
  problems: string[];
  /** Google writes per appointment beyond one per revision (work a kill made a process redo). */
  surplusWrites: number;
  googleWrites: number;
}

/** The mutating Google requests for one event id, the inserts that met an existing id (409) left out. */
function googleWritesFor(g: FakeGoogle, eventId: string): number {
  let inserted = false;
  let n = 0;
  for (const r of g.requests) {
    if (r.method === 'POST' && r.body?.id === eventId) {
      if (!inserted) n++;
      inserted = true;
    } else if ((r.method === 'PATCH' || r.method === 'PUT' || r.method === 'DELETE') && r.path.endsWith(`/events/${eventId}`)) n++;
  }
  return n;
}

/**
 * Compare Meridian, the Google fake and the platforms with what the stream expects. Cheap enough to poll:
 * the suites wait until it finds nothing wrong (work still settling), then assert on its last findings.
 */
export async function findProblems(rig: Rig, traffic: Traffic, expected: Expected[], o: { kills: number }): Promise<Findings> {
  const problems: string[] = [];
  const appts = await traffic.appointments();
  const events = rig.g.events(CAL);
  let surplusWrites = 0;
  let googleWrites = 0;
  for (const e of expected) {
    const mine = appts.filter((a) => a.patient?.email === e.email);
    if (mine.length !== 1) {
      problems.push(`${e.email} (${e.platform}): ${mine.length} appointments, expected 1`);
      continue;
    }
    const a = mine[0];
    if (a.status !== e.status || a.start !== e.start || a.end !== e.end) {
      problems.push(`${e.email} (${e.platform}, ${e.ending}): Meridian holds ${a.status} ${a.start}–${a.end}, expected ${e.status} ${e.start}–${e.end}`);
    }
    const ours = events.filter((ev) => ev.extendedProperties?.private?.meridianAppointmentId === a.id);
    const live = ours.filter((ev) => ev.status !== 'cancelled');
    if (ours.length > 1) problems.push(`${e.email}: ${ours.length} Google events (created more than once)`);
    if (e.status === 'booked') {
      if (live.length !== 1) problems.push(`${e.email}: ${live.length} live Google events, expected 1`);
      else if (live[0].start?.dateTime !== e.start || live[0].end?.dateTime !== e.end) problems.push(`${e.email}: Google shows ${live[0].start?.dateTime}–${live[0].end?.dateTime}, expected ${e.start}–${e.end}`);
    } else if (live.length !== 0) problems.push(`${e.email}: cancelled but ${live.length} live Google events`);
    for (const ev of ours) {
      const n = googleWritesFor(rig.g, ev.id!);
      googleWrites += n;
      surplusWrites += Math.max(0, n - a.revision);
      // One write per revision at most, plus whatever a kill made a process redo.
      if (n > a.revision + o.kills) problems.push(`${e.email}: ${n} Google writes for ${a.revision} revisions and ${o.kills} kills`);
    }
    // Staff edits reach the platform where its API takes them (else the appointment says it diverges).
    const { driver, fake } = rig.platforms.get(e.platform)!;
    const held = fake.held(e.bookingId);
    if (e.ending === 'staff-move' && driver.writesReschedule && held?.start !== e.start) problems.push(`${e.email}: ${e.platform} holds ${held?.start}, the staff move to ${e.start} was not written back`);
    if (e.ending === 'staff-move' && !driver.writesReschedule && !a.diverged) problems.push(`${e.email}: a move ${e.platform} cannot take, yet not marked diverging`);
    if ((e.ending === 'staff-cancel' || e.ending === 'staff-move-cancel') && driver.writesCancel && !held?.cancelled) problems.push(`${e.email}: the staff cancellation was not written back to ${e.platform}`);
  }
  const open: Job[] = [];
  for (const state of ['pending', 'running', 'dead']) {
    const r = (await traffic.api('GET', `/jobs?state=${state}&limit=1000`)).body;
    assert.ok(r.counts[state] < 1000, `the listing holds every ${state} job`);
    open.push(...r.items);
  }
  for (const j of open) {
    if (j.state === 'dead') problems.push(`job ${j.kind} ${j.id} is dead: ${j.lastError}`);
    else if (EFFECT_JOBS.has(j.kind)) problems.push(`job ${j.kind} ${j.id} still ${j.state}${j.lastError ? ` (${j.lastError})` : ''}`);
  }
  problems.push(...reminderProblems(appts, expected, open));
  // A delivery answered 202 is applied moments later: part of what must settle.
  problems.push(...await unappliedAcks(traffic));
  return { problems, surplusWrites, googleWrites };
}

interface Job { id: string; kind: string; state: string; runAt: string; lastError?: string; payload: Record<string, any> }

/**
 * No reminder pending for a dead state — a cancelled appointment, or a time it has moved away from — and
 * every live appointment has its two reminders (48 h and 2 h before) pending for the time it is at now.
 */
function reminderProblems(appts: Record<string, any>[], expected: Expected[], open: Job[]): string[] {
  const out: string[] = [];
  const byId = new Map(appts.map((a) => [a.id, a]));
  const reminders = open.filter((j) => j.kind === 'notify.timed' && j.state === 'pending' && j.payload.kind === 'reminder');
  for (const j of reminders) {
    const a = byId.get(j.payload.appointmentId);
    if (!a) continue; // not one of the stream's (the feed's visits)
    if (a.status !== 'booked' || a.start !== j.payload.start) out.push(`a reminder is pending for ${a.patient?.email} at ${j.payload.start}, but it is ${a.status} at ${a.start}`);
  }
  for (const e of expected.filter((x) => x.status === 'booked')) {
    const n = reminders.filter((j) => j.payload.appointmentId === e.appointmentId && j.payload.start === e.start).length;
    if (n !== 2) out.push(`${e.email}: ${n} reminders pending for ${e.start}, expected 2`);
  }
  return out;
}

/** Every acknowledged delivery is stored and applied (the answer came after the commit, kills or not). */
export async function unappliedAcks(traffic: Traffic): Promise<string[]> {
  const out: string[] = [];
  const byConnection = new Map<string, Map<string, string>>();
  for (const p of PLATFORMS) {
    const r = await traffic.api('GET', `/deliveries?connection=${p}&limit=1000`);
    const items = r.body.items as { id: string; status: string }[];
    assert.ok(items.length < 1000, 'the listing holds every delivery');
    byConnection.set(p, new Map(items.map((d) => [d.id, d.status])));
  }
  for (const a of traffic.acks) {
    if (a.body.status === 'duplicate') continue; // its first copy was committed (and acknowledged, or answered here)
    const status = byConnection.get(a.platform)!.get(a.body.delivery);
    if (status !== 'applied') out.push(`${a.platform} delivery ${a.body.delivery} acknowledged ${a.status} but ${status ?? 'missing'}`);
  }
  return out;
}

/** The audit of each appointment holds every staff edit that was answered 200. */
export async function missingStaffEdits(traffic: Traffic, expected: Expected[]): Promise<string[]> {
  const out: string[] = [];
  for (const e of expected.filter((x) => x.staffActions.length)) {
    const actions = ((await traffic.api('GET', `/appointments/${e.appointmentId}/audit`)).body.items as { action: string }[]).map((x) => x.action);
    for (const s of e.staffActions) if (!actions.includes(s)) out.push(`${e.email}: acknowledged ${s} is not in the audit`);
  }
  return out;
}

/** `meridian audit verify` against the store the processes used. */
export async function auditVerify(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(process.execPath, ['bin/meridian', 'audit', 'verify', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  return r.stdout;
}

export async function createKey(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const k = await run(process.execPath, ['bin/meridian', 'keys', 'create', 'faults', '--scope', 'admin', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  return k.stdout.split('\n')[0].trim();
}

/** Acknowledgements that came less than `ms` before a kill (the ones a careless commit would lose). */
export function acksJustBeforeKills(traffic: Traffic, cluster: Cluster, ms = 1000): number {
  return traffic.acks.filter((a) => cluster.kills.some((k) => k.at >= a.at && k.at - a.at < ms)).length;
}
