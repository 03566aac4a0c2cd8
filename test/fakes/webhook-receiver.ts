// A clinic's internal tool receiving Meridian's outbound webhooks: records every request as it arrived and
// answers from a queue of statuses (then 204). Verification is left to the tests, with the official
// `standardwebhooks` package.
//
//   const r = await startReceiver();  r.url  r.received  r.answerNext(500, 500)  r.close()
import http from 'node:http';

export interface Received {
  headers: Record<string, string>;
  body: string;
  answered: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  answerNext(...statuses: number[]): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const queue: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = queue.shift() ?? 204;
      received.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered, answered === 429 ? { 'retry-after': '1' } : {}).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/meridian`,
    received,
    answerNext: (...s) => void queue.push(...s),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
