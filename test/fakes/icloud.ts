// A small iCloud-like CalDAV server for what Radicale does not enforce (targets.md §3.1, §3.7):
// discovery that hands out an account-specific partition host (`pNN-caldav.icloud.com`, here a
// second port), an app-specific password, PUT refused with 404 when a VEVENT has no DTEND, one UID per
// account across its calendars (403 with CALDAV:no-uid-conflict, as Apple's servers answer), and the
// usual If-None-Match / If-Match rules. The calendar home also holds a calendar shared read-only by another
// Apple ID (current-user-privilege-set read only, DAV:owner another principal; a PUT into it answers 403
// DAV:need-privileges) and a reminders list (VTODO only, which a calendar picker must leave out); every
// calendar reports its owner, privileges and CALDAV:calendar-timezone.
//
//   const c = await startFakeICloud();  c.url (the caldav.icloud.com stand-in), c.partitionUrl,
//   c.appleId, c.appPassword, c.objects(calendar), c.requests ({ host: 'main'|'partition', method, path }), c.close()
import http from 'node:http';
import { randomBytes } from 'node:crypto';

const ACCOUNT = '1234567890';
const OTHER = '9876543210';
const CALENDARS = [
  { id: 'home', name: 'Home', writable: true, owner: ACCOUNT, comps: ['VEVENT'], tz: 'America/Denver' },
  { id: 'work', name: 'Work', writable: true, owner: ACCOUNT, comps: ['VEVENT', 'VTODO'], tz: 'America/Denver' },
  { id: 'family-shared', name: 'Family', writable: false, owner: OTHER, comps: ['VEVENT'], tz: 'America/Los_Angeles' },
  { id: 'reminders', name: 'Reminders', writable: true, owner: ACCOUNT, comps: ['VTODO'], tz: 'America/Denver' },
];
const vtimezone = (tz: string) => `BEGIN:VCALENDAR&#13;\nVERSION:2.0&#13;\nPRODID:-//Apple Inc.//iCloud//EN&#13;\nBEGIN:VTIMEZONE&#13;\nTZID:${tz}&#13;\nEND:VTIMEZONE&#13;\nEND:VCALENDAR&#13;\n`;
const privileges = (writable: boolean) => ['read', 'read-free-busy', ...(writable ? ['write', 'write-properties', 'write-content', 'bind', 'unbind'] : [])].map((p) => `<privilege><${p}/></privilege>`).join('');

export interface FakeICloud {
  url: string;
  partitionUrl: string;
  appleId: string;
  appPassword: string;
  objects(calendar: string): { name: string; ics: string; etag: string }[];
  requests: { host: 'main' | 'partition'; method: string; path: string }[];
  close(): Promise<void>;
}

const ms = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">${body}</multistatus>`;
const ok = (href: string, props: string) => `<response><href>${href}</href><propstat><prop>${props}</prop><status>HTTP/1.1 200 OK</status></propstat></response>`;

export async function startFakeICloud(): Promise<FakeICloud> {
  const appleId = 'practitioner@icloud.example';
  const appPassword = 'abcd-efgh-ijkl-mnop';
  const store = new Map<string, Map<string, { ics: string; etag: string; uid: string }>>(CALENDARS.map((c) => [c.id, new Map()]));
  let partitionUrl = '';
  const state: FakeICloud = {
    url: '', partitionUrl: '', appleId, appPassword, requests: [],
    objects: (cal) => [...(store.get(cal) ?? new Map()).entries()].map(([name, o]) => ({ name, ics: o.ics, etag: o.etag })),
    close: () => Promise.all([main, partition].map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
  const handler = (host: 'main' | 'partition') => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      state.requests.push({ host, method: req.method ?? '', path });
      const send = (status: number, text = '', headers: Record<string, string> = {}) => {
        res.writeHead(status, { ...(text ? { 'content-type': text.startsWith('<?xml') ? 'application/xml; charset=utf-8' : 'text/plain' } : {}), ...headers });
        res.end(text);
      };
      if (req.headers.authorization !== `Basic ${Buffer.from(`${appleId}:${appPassword}`).toString('base64')}`) return send(401, 'Unauthorized', { 'www-authenticate': 'Basic realm="iCloud"' });
      if (host === 'main') {
        if (path === '/.well-known/caldav') return send(301, '', { location: '/' });
        if (req.method === 'PROPFIND' && path === '/') return send(207, ms(ok('/', `<current-user-principal><href>/${ACCOUNT}/principal/</href></current-user-principal>`)));
        if (req.method === 'PROPFIND' && path === `/${ACCOUNT}/principal/`) {
          return send(207, ms(ok(`/${ACCOUNT}/principal/`, `<C:calendar-home-set><href>${partitionUrl}/${ACCOUNT}/calendars/</href></C:calendar-home-set>`)));
        }
        return send(404, 'not on this host: use the account partition');
      }
      if (req.method === 'PROPFIND' && path === `/${ACCOUNT}/calendars/`) {
        const cals = CALENDARS.map((c) => ok(`/${ACCOUNT}/calendars/${c.id}/`, `<displayname>${c.name}</displayname><resourcetype><collection/><C:calendar/></resourcetype><C:supported-calendar-component-set>${c.comps.map((n) => `<C:comp name="${n}"/>`).join('')}</C:supported-calendar-component-set><CS:getctag>${randomBytes(4).toString('hex')}</CS:getctag><current-user-privilege-set>${privileges(c.writable)}</current-user-privilege-set><owner><href>/${c.owner}/principal/</href></owner><C:calendar-timezone>${vtimezone(c.tz)}</C:calendar-timezone>`)).join('');
        return send(207, ms(ok(`/${ACCOUNT}/calendars/`, '<resourcetype><collection/></resourcetype>') + cals));
      }
      const m = new RegExp(`^/${ACCOUNT}/calendars/([^/]+)/([^/]+\\.ics)$`).exec(path);
      const cal = m ? store.get(m[1]) : undefined;
      if (!m || !cal) return send(404);
      const existing = cal.get(m[2]);
      if (req.method === 'GET') return existing ? send(200, existing.ics, { etag: existing.etag, 'content-type': 'text/calendar' }) : send(404);
      if (req.method === 'DELETE') {
        if (!existing) return send(404);
        if (req.headers['if-match'] && req.headers['if-match'] !== existing.etag) return send(412);
        cal.delete(m[2]);
        return send(204);
      }
      if (req.method === 'PUT') {
        if (!CALENDARS.find((c) => c.id === m[1])?.writable) return send(403, `<?xml version="1.0" encoding="UTF-8"?><error xmlns="DAV:"><need-privileges><resource><href>${path}</href><privilege><bind/></privilege></resource></need-privileges></error>`);
        if (req.headers['if-none-match'] === '*' && existing) return send(412);
        if (req.headers['if-match'] && (!existing || req.headers['if-match'] !== existing.etag)) return send(412);
        const vevent = /BEGIN:VEVENT[\s\S]*?END:VEVENT/.exec(body)?.[0] ?? '';
        // iCloud answers a VEVENT without DTEND with 404 (targets.md §3.7, pitfall 1).
        if (!/^DTEND[;:]/m.test(vevent)) return send(404, 'Not Found');
        if (/^METHOD:/m.test(body)) return send(403, ms('<error xmlns="DAV:"><C:valid-calendar-object-resource/></error>'));
        const uid = /^UID:(.+)$/m.exec(vevent)?.[1]?.trim() ?? '';
        for (const [id, other] of store) {
          for (const [name, o] of other) {
            if (o.uid === uid && !(other === cal && name === m[2])) {
              return send(403, `<?xml version="1.0" encoding="UTF-8"?><error xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict><href>/${ACCOUNT}/calendars/${id}/${name}</href></C:no-uid-conflict></error>`);
            }
          }
        }
        const etag = `"${randomBytes(6).toString('hex')}"`;
        cal.set(m[2], { ics: body, etag, uid });
        return send(existing ? 204 : 201, '', { etag });
      }
      return send(405);
    });
  };
  const main = http.createServer(handler('main'));
  const partition = http.createServer(handler('partition'));
  await Promise.all([main, partition].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));
  state.url = `http://127.0.0.1:${(main.address() as { port: number }).port}`;
  partitionUrl = `http://127.0.0.1:${(partition.address() as { port: number }).port}`;
  state.partitionUrl = partitionUrl;
  return state;
}
