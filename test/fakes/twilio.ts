// A fake Twilio Messages API (facts: src/connectors/notify/sms/FACTS.md): `POST /2010-04-01/Accounts/{AccountSid}/
// Messages.json`, form-encoded, Basic auth (account SID : auth token). It enforces what Twilio documents —
// To in E.164 (21211) and required (21604), a Body (21602), a From or MessagingServiceSid (21603), a valid
// StatusCallback URL, and answers 401 (20003), 429 (20429, Retry-After) and 21610 (a recipient who replied
// STOP) like Twilio, echoing the number in its message as Twilio does. Anything else we send that Twilio would
// refuse is recorded in `violations`. It also plays Twilio's side of callbacks: signed delivery statuses to the
// message's StatusCallback and incoming replies, signed with its own implementation of X-Twilio-Signature.
//
//   const t = await startFakeTwilio();
//   t.url  t.credentials  t.from  t.messages  t.violations  t.optOut(number)  t.throttle(n, retryAfterSeconds)
//   t.sendStatus(sid, status, errorCode?)  t.sendReply(from, body, url)  t.sign(url, params)  t.close()
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { httpDone, type Gate } from './gate.ts';

export interface SentMessage {
  sid: string;
  to: string;
  from?: string;
  messagingServiceSid?: string;
  body: string;
  statusCallback?: string;
  /** When the request arrived (ms). */
  at: number;
}

export interface CallbackAnswer {
  status: number;
  contentType: string | null;
  body: string;
}

export interface FakeTwilio {
  url: string;
  credentials: { accountSid: string; authToken: string };
  from: string;
  messages: SentMessage[];
  violations: string[];
  /** Called with every message create before it is acted on; may hold it (fault tests). */
  gate?: Gate;
  optOut(number: string): void;
  throttle(n: number, retryAfterSeconds?: number): void;
  sign(url: string, params: Record<string, string>): string;
  sendStatus(sid: string, status: string, errorCode?: string, o?: { signWith?: string }): Promise<CallbackAnswer>;
  sendReply(from: string, body: string, url: string, o?: { signWith?: string }): Promise<CallbackAnswer>;
  close(): Promise<void>;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const hex = (n: number) => randomBytes(n).toString('hex');

/** Twilio's scheme, written independently of the connector: URL + each param name and value, sorted by name. */
export function twilioSign(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf-8')).digest('base64');
}

export async function startFakeTwilio(o: { accountSid?: string; authToken?: string; from?: string } = {}): Promise<FakeTwilio> {
  const credentials = { accountSid: o.accountSid ?? `AC${hex(16)}`, authToken: o.authToken ?? hex(16) };
  const from = o.from ?? '+15005550006';
  const auth = `Basic ${Buffer.from(`${credentials.accountSid}:${credentials.authToken}`).toString('base64')}`;
  const messages: SentMessage[] = [];
  const violations: string[] = [];
  const optedOut = new Set<string>();
  let throttled: { n: number; retryAfter?: number } = { n: 0 };

  const answer = (res: http.ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: http.ServerResponse, status: number, code: number, message: string, headers?: Record<string, string>) =>
    answer(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, headers);

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const gate = fake.gate;
      if (!gate || req.method !== 'POST') return handle(at);
      Promise.resolve(gate({ fake: 'twilio', what: `POST ${(req.url ?? '').split('?')[0]}`, at, clientPort: req.socket.remotePort ?? 0, serverPort: req.socket.localPort ?? 0, done: httpDone(res) }))
        .then(() => handle(at), () => handle(at));
    });
    const handle = (at: number) => {
      const path = (req.url ?? '').split('?')[0];
      // The account read (GET …/Accounts/{Sid}.json) Meridian uses to check the credentials before saving them.
      const acct = /^\/2010-04-01\/Accounts\/([^/]+)\.json$/.exec(path);
      if (acct && req.method === 'GET') {
        if (req.headers.authorization !== auth || decodeURIComponent(acct[1]) !== credentials.accountSid) return error(res, 401, 20003, 'Authenticate');
        return answer(res, 200, { sid: credentials.accountSid, friendly_name: 'Clinic account', status: 'active', type: 'Full' });
      }
      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(path);
      if (!m || req.method !== 'POST') {
        violations.push(`${req.method} ${path}: not the Messages create endpoint`);
        return error(res, 404, 20404, 'The requested resource was not found');
      }
      if (req.headers.authorization !== auth || decodeURIComponent(m[1]) !== credentials.accountSid) {
        violations.push('request without the account SID and auth token as Basic auth');
        return error(res, 401, 20003, 'Authenticate');
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        violations.push(`body sent as ${req.headers['content-type']}, not form-encoded`);
        return error(res, 400, 21604, "A 'To' phone number is required.");
      }
      if (throttled.n > 0) {
        throttled.n--;
        return error(res, 429, 20429, 'Too Many Requests', throttled.retryAfter !== undefined ? { 'retry-after': String(throttled.retryAfter) } : {});
      }
      const p = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const known = new Set(['To', 'From', 'MessagingServiceSid', 'Body', 'StatusCallback']);
      for (const k of p.keys()) if (!known.has(k)) violations.push(`unexpected parameter ${k}`);
      const to = p.get('To');
      if (!to) {
        violations.push('no To');
        return error(res, 400, 21604, "A 'To' phone number is required.");
      }
      if (!E164.test(to)) {
        violations.push('To is not in E.164 form');
        return error(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
      }
      const sender = p.get('From') ?? undefined;
      const service = p.get('MessagingServiceSid') ?? undefined;
      if (!sender && !service) {
        violations.push('neither From nor MessagingServiceSid');
        return error(res, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.");
      }
      if (sender && sender !== from) violations.push(`From ${sender} is not this account's number`);
      const body = p.get('Body');
      if (!body) {
        violations.push('no Body');
        return error(res, 400, 21602, 'Message body is required.');
      }
      const cb = p.get('StatusCallback') ?? undefined;
      if (cb !== undefined) {
        try {
          if (!/^https?:$/.test(new URL(cb).protocol)) throw new Error('scheme');
        } catch {
          violations.push('StatusCallback is not an http(s) URL');
          return error(res, 400, 11100, 'Invalid URL format');
        }
      }
      if (optedOut.has(to)) return error(res, 400, 21610, `Attempt to send to unsubscribed recipient ${to}`);
      const sid = `SM${hex(16)}`;
      messages.push({ sid, to, from: sender, messagingServiceSid: service, body, statusCallback: cb, at });
      answer(res, 201, {
        sid, account_sid: credentials.accountSid, to, from: sender ?? null, messaging_service_sid: service ?? null, body, status: 'queued',
        direction: 'outbound-api', api_version: '2010-04-01', error_code: null, error_message: null,
        uri: `/2010-04-01/Accounts/${credentials.accountSid}/Messages/${sid}.json`,
      });
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };

  const post = async (url: string, params: Record<string, string>, signWith: string): Promise<CallbackAnswer> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'x-twilio-signature': twilioSign(signWith, url, params), 'user-agent': 'TwilioProxy/1.1' },
      body: new URLSearchParams(params).toString(),
    });
    return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
  };

  const fake: FakeTwilio = {
    url: `http://127.0.0.1:${port}`,
    credentials,
    from,
    messages,
    violations,
    optOut: (n) => void optedOut.add(n),
    throttle: (n, retryAfter) => {
      throttled = { n, retryAfter };
    },
    sign: (url, params) => twilioSign(credentials.authToken, url, params),
    sendStatus(sid, status, errorCode, so = {}) {
      const msg = messages.find((x) => x.sid === sid);
      if (!msg?.statusCallback) throw new Error(`message ${sid} has no StatusCallback`);
      const params: Record<string, string> = {
        AccountSid: credentials.accountSid, ApiVersion: '2010-04-01', From: msg.from ?? from, To: msg.to,
        MessageSid: sid, MessageStatus: status, SmsSid: sid, SmsStatus: status,
        ...(msg.messagingServiceSid ? { MessagingServiceSid: msg.messagingServiceSid } : {}), ...(errorCode ? { ErrorCode: errorCode } : {}),
      };
      return post(msg.statusCallback, params, so.signWith ?? credentials.authToken);
    },
    sendReply(sender, body, url, so = {}) {
      const sid = `SM${hex(16)}`;
      const params: Record<string, string> = {
        AccountSid: credentials.accountSid, ApiVersion: '2010-04-01', Body: body, From: sender, To: from, MessageSid: sid,
        SmsMessageSid: sid, SmsSid: sid, SmsStatus: 'received', NumMedia: '0', NumSegments: '1',
      };
      return post(url, params, so.signWith ?? credentials.authToken);
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
  return fake;
}
