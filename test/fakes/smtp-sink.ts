// A real SMTP server (the `smtp-server` package) on loopback that keeps every message it receives, and
// readers for what the tests check: the MIME parts (mailparser) and the iTIP object inside (ical.js).
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import ICAL from 'ical.js';
import type { AddressInfo } from 'node:net';
import type { Gate } from './gate.ts';

export interface Received {
  raw: Buffer;
  envelopeTo: string[];
  mail: ParsedMail;
  /** When its DATA ended (ms). */
  at: number;
}

export interface SmtpSink {
  port: number;
  inbox: Received[];
  /** Messages to one address (envelope recipient). */
  to(address: string): Received[];
  /** Refuse the next `n` messages with this SMTP reply code. */
  refuse(n: number, code: number): void;
  /** Logins seen (user names), when auth is on. */
  logins: string[];
  /** Called with every message once its DATA ended, before it is accepted; may hold it (fault tests). */
  gate?: Gate;
  /** Wait until every accepted message is parsed into `inbox`. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function startSmtpSink(o: { auth?: { user: string; pass: string } } = {}): Promise<SmtpSink> {
  const inbox: Received[] = [];
  const logins: string[] = [];
  let refusals: { n: number; code: number } = { n: 0, code: 0 };
  const pending: Promise<void>[] = [];
  const server = new SMTPServer({
    secure: false, disabledCommands: o.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'], authOptional: !o.auth, allowInsecureAuth: true, logger: false,
    onAuth(auth, _session, cb) {
      if (o.auth && auth.username === o.auth.user && auth.password === o.auth.pass) {
        logins.push(auth.username!);
        return cb(null, { user: auth.username });
      }
      return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      const envelopeTo = session.envelope.rcptTo.map((r) => r.address);
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => {
        const at = Date.now();
        const handle = () => {
          if (refusals.n > 0) {
            refusals.n--;
            return cb(Object.assign(new Error('refused by the test'), { responseCode: refusals.code }));
          }
          const raw = Buffer.concat(chunks);
          pending.push(simpleParser(raw).then((mail) => { inbox.push({ raw, envelopeTo, mail, at }); }));
          cb();
        };
        const gate = sink.gate;
        if (!gate) return handle();
        let answered!: () => void;
        const done = new Promise<void>((r) => { answered = r; });
        Promise.resolve(gate({ fake: 'smtp', what: `DATA to ${envelopeTo.join(', ')}`, at, clientPort: session.remotePort, serverPort: port, done }))
          .then(handle, handle).finally(answered);
      });
    },
  });
  // A client that dies mid-conversation (the fault suites SIGKILL it) resets its connection: the server reports
  // that as an 'error' event, which with no listener would throw in the test process.
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  const sink: SmtpSink = {
    port,
    inbox,
    logins,
    to: (address) => inbox.filter((m) => m.envelopeTo.includes(address)),
    refuse: (n, code) => { refusals = { n, code }; },
    settle: async () => { await Promise.all(pending.splice(0)); },
    close: () => new Promise((r) => server.close(() => r())),
  };
  return sink;
}

export interface Itip {
  method: string;
  uid: string;
  sequence: number;
  status: string;
  /** DTSTART as written (TZID and local wall time) and as an instant. */
  tzid: string | undefined;
  localStart: string;
  start: string;
  end: string;
  organizer: string;
  attendees: string[];
  hasVtimezone: boolean;
}

/** The text/calendar alternative of a message (the part calendars act on), read with ical.js. */
export function itipOf(m: ParsedMail): Itip | undefined {
  const part = (m.attachments ?? []).find((a) => a.contentType === 'text/calendar') ?? (m as unknown as { alternatives?: { contentType: string; content: Buffer }[] }).alternatives?.find((a) => a.contentType === 'text/calendar');
  const text = part ? part.content.toString('utf8') : undefined;
  if (!text) return undefined;
  return parseItip(text);
}

export function parseItip(text: string): Itip {
  const root = new ICAL.Component(ICAL.parse(text));
  for (const vtz of root.getAllSubcomponents('vtimezone')) ICAL.TimezoneService.register(new ICAL.Timezone(vtz));
  const v = root.getFirstSubcomponent('vevent')!;
  const ev = new ICAL.Event(v);
  const dtstart = v.getFirstProperty('dtstart')!;
  return {
    method: String(root.getFirstPropertyValue('method')),
    uid: ev.uid,
    sequence: ev.sequence,
    status: String(v.getFirstPropertyValue('status')),
    tzid: dtstart.getParameter('tzid') as string | undefined,
    localStart: ev.startDate.toString(),
    start: ev.startDate.toJSDate().toISOString(),
    end: ev.endDate.toJSDate().toISOString(),
    organizer: String(v.getFirstPropertyValue('organizer')),
    attendees: v.getAllProperties('attendee').map((p) => String(p.getFirstValue())),
    hasVtimezone: root.getAllSubcomponents('vtimezone').length > 0,
  };
}
