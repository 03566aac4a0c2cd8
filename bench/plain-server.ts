// The baseline: a plain node:http server that reads the body, verifies the webhook signature with the
// same connector code Meridian uses, and answers 200. No parsing, no storage, no durability.
// With CALENDAR_URL set it also does what a minimal integration would do after verifying: write the
// event straight to the calendar API (no queue, no retry) before answering — the latency baseline.
import http from 'node:http';
import { getSource } from '../src/connectors/registry.ts';

const platform = process.env.PLATFORM ?? 'calendly';
const secret = process.env.SECRET ?? '';
const calendar = process.env.CALENDAR_URL;
const src = getSource(platform)!;
const secretKey = src.descriptor.webhookSecret ?? 'signingKey';

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', async () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const rawBody = Buffer.concat(chunks);
    const r = src.verify({ rawBody, headers, url: '', now: new Date() }, { [secretKey]: secret });
    if (r.ok && calendar) {
      const change = src.parseWebhook({ rawBody, headers, url: '', now: new Date() })[0];
      await fetch(calendar, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.TOKEN ?? ''}` },
        body: JSON.stringify({ summary: 'Appointment', start: { dateTime: change.appointment.start }, end: { dateTime: change.appointment.end }, extendedProperties: { private: { meridianAppointmentId: change.externalId } } }),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => {});
    }
    res.writeHead(r.ok ? 200 : 401, { 'content-type': 'application/json' });
    res.end(r.ok ? '{"status":"ok"}' : '{"code":"bad_signature"}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${a.port}\n`);
});
