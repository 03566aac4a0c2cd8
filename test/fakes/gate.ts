// A hook the fakes call when a write reaches them (a calendar insert, an e-mail's DATA, an SMS, a webhook),
// before they act on it or answer: the fault harness tracks which writes are in flight, and may hold one
// (await) while it kills the process that sent it. The write is then acted on as received in full — as a
// real server would, though its answer reaches no one.
export interface WriteSeen {
  /** Which fake: `google`, `smtp`, `twilio`, `webhooks`. */
  fake: string;
  /** A short description for messages (method and path, recipient). */
  what: string;
  /** When it arrived (ms). */
  at: number;
  /** The sender's end of the connection (its local port) and the fake's port: who sent it, while it is open. */
  clientPort: number;
  serverPort: number;
  /** Resolves once the fake has answered it (or its connection closed). */
  done: Promise<void>;
}

export type Gate = (w: WriteSeen) => Promise<void> | void;

/** The `done` of a write served over HTTP: the response finished or its socket closed. */
export function httpDone(res: { once(e: 'close' | 'finish', f: () => void): unknown }): Promise<void> {
  return new Promise((r) => { res.once('finish', r); res.once('close', r); });
}
