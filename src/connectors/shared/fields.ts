// Reading fields out of platform payloads: a malformed value is an UnreadablePayload naming the field
// (never its content, which may be patient data).
import { toUtc } from '../../domain/time.ts';
import { UnreadablePayload } from '../types.ts';

/** An ISO-8601 instant with an offset, as `…Z`; `what` names the field in the error. */
export function instantField(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new UnreadablePayload(`${what} is missing`);
  try {
    return toUtc(v);
  } catch {
    throw new UnreadablePayload(`${what} is not an instant`);
  }
}

/** A delivery's body read as JSON; a body that is not JSON is an UnreadablePayload saying `message`. */
export function jsonBody(raw: Buffer, message = 'the body is not JSON'): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new UnreadablePayload(message);
  }
}
