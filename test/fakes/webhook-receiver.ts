// A clinic's internal tool receiving Meridian's outbound webhooks: records every request as it arrived and
// answers from a queue of statuses (then 204). Verification is left to the tests, with the official
// `standardwebhooks` package.
//
//   const r = await startReceiver();  r.url  r.received  r.answerNext(500, 500)  r.gate  r.close()
import http from 'node:http';
import { httpDone, type Gate } from './gate.ts';

export interface Received {
  headers: Record<string, string>;
  body: string;
  answered: number;
  /** When the request arrived (ms). */
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  answerNext(...statuses: number[]): void;
  /** Called with every request before it is recorded and answered; may hold it (fault tests). */
  gate?: Gate;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const queue: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const handle = () => {
        const answered = queue.shift() ?? 204;
        received.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body: Buffer.concat(chunks).toString('utf8'), answered, at });
        res.writeHead(answered, answered === 429 ? { 'retry-after': '1' } : {}).end();
      };
      const gate = receiver.gate;
      if (!gate) return handle();
      Promise.resolve(gate({ fake: 'webhooks', what: `POST ${req.url}`, at, clientPort: req.socket.remotePort ?? 0, serverPort: req.socket.localPort ?? 0, done: httpDone(res) }))
        .then(handle, handle);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/meridian`,
    received,
    answerNext: (...s) => void queue.push(...s),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  return receiver;
}
