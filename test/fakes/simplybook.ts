// A fake of SimplyBook.me's company administration JSON-RPC API (see src/connectors/sources/simplybook/FACTS.md):
// `POST /login` getUserToken(company, login, password); `POST /admin` with X-Company-Login and X-User-Token
// for getBookingDetails, getBookings, cancelBooking and editBook. Bookings are held as company-local wall
// times (`Y-m-d H:i:s`), as SimplyBook.me holds them. Rule breaks go to `violations`.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export interface FakeBooking {
  id: string;
  eventId: string;
  unitId: string;
  clientId: string;
  clientName: string;
  clientEmail?: string;
  clientPhone?: string;
  /** Company-local `Y-m-d H:i:s`. */
  start: string;
  end: string;
  confirmed: boolean;
  approveStatus?: string;
  additional?: Record<string, unknown>;
}

export interface SimplyBookFakeOptions {
  company: string;
  login: string;
  password: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^\d{2}:\d{2}:\d{2}$/;

export class SimplyBookFake {
  readonly bookings = new Map<string, FakeBooking>();
  readonly violations: string[] = [];
  readonly calls: string[] = [];
  /** Answer the next N requests with 429 and Retry-After (the documented limits are not published; a proxy or the API may say so). */
  throttleNext = 0;
  private tokens = new Set<string>();
  private server = http.createServer((rq, rs) => void this.handle(rq, rs));
  baseUrl = '';

  constructor(readonly opts: SimplyBookFakeOptions) {}

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(rq: http.IncomingMessage, rs: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of rq) chunks.push(c as Buffer);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      rs.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (this.throttleNext > 0) {
      this.throttleNext--;
      return send(429, { error: { code: 429, message: 'Too many requests' } }, { 'retry-after': '2' });
    }
    if (rq.method !== 'POST') {
      this.violations.push(`${rq.method} ${rq.url}: JSON-RPC calls are POST`);
      return send(405, {});
    }
    if (!String(rq.headers['content-type']).startsWith('application/json')) this.violations.push(`${rq.url}: content-type is not application/json`);
    let msg: { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      this.violations.push(`${rq.url}: body is not JSON`);
      return send(200, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    }
    if (msg.jsonrpc !== '2.0' || typeof msg.method !== 'string' || !Array.isArray(msg.params) || msg.id === undefined) {
      this.violations.push(`${rq.url}: not a JSON-RPC 2.0 request with positional params`);
      return send(200, { jsonrpc: '2.0', id: msg.id ?? null, error: { code: -32600, message: 'Invalid Request' } });
    }
    const reply = (result: unknown) => send(200, { jsonrpc: '2.0', id: msg.id, result });
    const error = (code: number, message: string) => send(200, { jsonrpc: '2.0', id: msg.id, error: { code, message } });
    const method = msg.method;
    const p = msg.params as unknown[];
    this.calls.push(`${rq.url} ${method}`);
    if (rq.url === '/login') {
      if (method !== 'getUserToken') return error(-32601, 'Method not found');
      if (p[0] !== this.opts.company) this.violations.push('getUserToken: the company login is sent in lower case');
      if (p[0] !== this.opts.company || p[1] !== this.opts.login || p[2] !== this.opts.password) return error(-32001, 'User with this login and password not found');
      const token = randomBytes(16).toString('hex');
      this.tokens.add(token);
      return reply(token);
    }
    if (rq.url !== '/admin') {
      this.violations.push(`POST ${rq.url}: unknown endpoint`);
      return send(404, {});
    }
    if (rq.headers['x-company-login'] !== this.opts.company || !this.tokens.has(String(rq.headers['x-user-token']))) {
      this.violations.push(`${method}: without a valid X-Company-Login / X-User-Token`);
      return error(-32600, 'Access denied');
    }
    switch (method) {
      case 'getBookingDetails': {
        const b = this.bookings.get(String(p[0]));
        return b ? reply(details(b)) : error(-32080, 'Booking not found');
      }
      case 'getBookings': {
        const f = p[0] as Record<string, unknown> | undefined;
        if (!f || typeof f !== 'object' || !DATE.test(String(f.date_from)) || !DATE.test(String(f.date_to))) {
          this.violations.push('getBookings: the filter needs date_from and date_to as Y-m-d');
          return error(-32602, 'Invalid params');
        }
        const rows = [...this.bookings.values()]
          .filter((b) => b.start.slice(0, 10) >= String(f.date_from) && b.start.slice(0, 10) <= String(f.date_to))
          .filter((b) => f.booking_type === 'all' || (f.booking_type === 'cancelled' ? !b.confirmed : b.confirmed))
          .map(row);
        return reply(rows);
      }
      case 'cancelBooking': {
        const b = this.bookings.get(String(p[0]));
        if (!b) return error(-32080, 'Booking not found');
        b.confirmed = false;
        return reply(true);
      }
      case 'editBook': return this.editBook(p, reply, error);
      default:
        this.violations.push(`${method}: not a method Meridian should call`);
        return error(-32601, 'Method not found');
    }
  }

  /** editBook($shedulerId, $eventId, $unitId, $clientId, $startDate, $startTime, $endDate, $endTime, $clientTimeOffset, $additional). */
  private editBook(p: unknown[], reply: (r: unknown) => void, error: (c: number, m: string) => void): void {
    const b = this.bookings.get(String(p[0]));
    if (!b) return error(-32080, 'Booking not found');
    const [, eventId, unitId, clientId, sd, st, ed, et, offset, additional] = p;
    if (String(eventId) !== b.eventId || String(unitId) !== b.unitId || String(clientId) !== b.clientId) {
      this.violations.push('editBook: the service, provider and client must be restated unchanged');
    }
    if (!DATE.test(String(sd)) || !TIME.test(String(st)) || !DATE.test(String(ed)) || !TIME.test(String(et))) {
      this.violations.push('editBook: dates are Y-m-d and times H:i:s');
      return error(-32602, 'Invalid params');
    }
    if (Number(offset) !== 0) this.violations.push('editBook: clientTimeOffset is 0 for admin calls');
    if (JSON.stringify(additional ?? {}) !== JSON.stringify(b.additional ?? {})) this.violations.push('editBook: the intake answers (additional fields) were not kept');
    b.start = `${sd} ${st}`;
    b.end = `${ed} ${et}`;
    return reply({ id: b.id });
  }
}

/** The getBookingDetails shape (field names from SimplyBook.me's own admin app and callback example). */
export function details(b: FakeBooking): Record<string, unknown> {
  return {
    id: b.id, code: `${b.id}abc`, event_id: b.eventId, event_name: 'Acupuncture', unit_id: b.unitId, unit_name: 'Dr. Reyes',
    client_id: b.clientId, client_name: b.clientName, client_email: b.clientEmail ?? null, client_phone: b.clientPhone ?? null,
    start_date_time: b.start, end_date_time: b.end, record_date: '2026-02-01 09:00:00', is_confirmed: b.confirmed ? '1' : '0',
    ...(b.approveStatus ? { approve_status: b.approveStatus } : {}),
    additional_fields: Object.entries(b.additional ?? {}).map(([k, v], i) => ({ field_name: k, field_title: k, field_type: 'text', value: v, field_position: i })),
  };
}

/** The getBookings row shape. */
export function row(b: FakeBooking): Record<string, unknown> {
  return {
    id: b.id, event_id: b.eventId, event: 'Acupuncture', unit_id: b.unitId, unit: 'Dr. Reyes', client_id: b.clientId,
    client: b.clientName, client_email: b.clientEmail ?? null, client_phone: b.clientPhone ?? null,
    start_date: b.start, end_date: b.end, record_date: '2026-02-01 09:00:00', is_confirm: b.confirmed ? '1' : '0',
  };
}
