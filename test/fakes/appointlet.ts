// A fake Appointlet, as far as Meridian meets it. Appointlet has no public API (FACTS.md in the connector
// folder), so the only documented rule for Meridian's side is "call nothing": the HTTP server answers every
// request 404 and records it as a violation. What the fake does hold is Appointlet's state of each meeting and
// the webhooks Appointlet would send about it: an HTTP POST of a JSON Activity (documented sample) to the URL
// the clinic registered, which for Meridian carries `?token=<webhookToken>`; nothing is signed.
//
//   const a = await startFakeAppointlet();  a.url, a.token, a.hold(meeting), a.meeting(id),
//   a.delivery(action, meeting, at, webhookUrl), a.requests, a.violations, a.close()
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';

/** The documented part of Appointlet's Meeting entity. */
export interface AppointletMeeting {
  id: number;
  type: 'Meeting';
  created_at: string;
  name: string;
  location: string | null;
  location_type: string;
  start: string;
  end: string;
  approved: boolean | null;
  confirmed: boolean;
  cancelled: boolean;
}

export interface AppointletDelivery {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface FakeAppointlet {
  /** Base URL of the (non-existent) API: anything Meridian sends here is a violation. */
  url: string;
  /** The webhookToken the clinic put in the webhook URL. */
  token: string;
  hold(m: AppointletMeeting): void;
  meeting(id: number): AppointletMeeting | undefined;
  /** The webhook Appointlet sends for `action` (e.g. `Meeting.scheduled`) about `m` as it is at `at`. */
  delivery(action: string, m: AppointletMeeting, at: Date, webhookUrl: string): AppointletDelivery;
  requests: { method: string; path: string }[];
  violations: string[];
  close(): Promise<void>;
}

/** A stable positive integer id (Appointlet's ids are integers) from any text. */
export function appointletId(text: string): number {
  return parseInt(createHash('sha256').update(text).digest('hex').slice(0, 12), 16);
}

/** Appointlet's `created_at` carries microseconds. */
function stamp(at: Date): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export async function startFakeAppointlet(): Promise<FakeAppointlet> {
  const meetings = new Map<number, AppointletMeeting>();
  const token = randomBytes(24).toString('base64url');
  const requests: FakeAppointlet['requests'] = [];
  const violations: string[] = [];
  const server = http.createServer((rq, rs) => {
    const path = (rq.url ?? '').split('?')[0];
    requests.push({ method: rq.method ?? '', path });
    violations.push(`Appointlet has no public API, yet Meridian sent ${rq.method} ${path}`);
    rq.resume();
    rs.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not found."}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    token, requests, violations,
    hold: (m) => { meetings.set(m.id, structuredClone(m)); },
    meeting: (id) => structuredClone(meetings.get(id)),
    delivery: (action, m, at, webhookUrl) => {
      const activity = {
        id: appointletId(`${action}:${m.id}:${m.start}:${at.toISOString()}`) % 1e9, type: 'Activity', created_at: stamp(at), action,
        message: null, metadata: null, entity: m,
      };
      const url = new URL(webhookUrl);
      url.searchParams.set('token', token);
      return { url: url.toString(), headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(activity)) };
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
