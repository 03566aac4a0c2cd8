// Form bodies for the lead forms that post forms rather than JSON: multipart/form-data (text parts
// only) and application/x-www-form-urlencoded. Repeated names keep their last value.
import { UnreadablePayload } from '../types.ts';

function boundaryOf(contentType: string): string | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  return (m?.[1] ?? m?.[2])?.trim();
}

function parseMultipart(raw: Buffer, boundary: string): Map<string, string> {
  const out = new Map<string, string>();
  const delim = Buffer.from(`--${boundary}`);
  let at = raw.indexOf(delim);
  if (at < 0) throw new UnreadablePayload('the multipart body has no parts');
  for (;;) {
    const start = at + delim.length;
    if (raw.subarray(start, start + 2).toString() === '--') break; // closing delimiter
    const next = raw.indexOf(delim, start);
    if (next < 0) break;
    const part = raw.subarray(start, next);
    const headEnd = part.indexOf('\r\n\r\n') >= 0 ? part.indexOf('\r\n\r\n') : part.indexOf('\n\n');
    if (headEnd >= 0) {
      const sep = part[headEnd] === 0x0d ? 4 : 2;
      const head = part.subarray(0, headEnd).toString('utf8');
      const name = /content-disposition:[^\n]*\bname="([^"]*)"/i.exec(head)?.[1];
      const isFile = /content-disposition:[^\n]*\bfilename=/i.test(head);
      if (name !== undefined && !isFile) out.set(name, part.subarray(headEnd + sep).toString('utf8').replace(/\r?\n$/, ''));
    }
    at = next;
  }
  return out;
}

/** The fields of a form body; UnreadablePayload for any other content type. */
export function formFields(raw: Buffer, contentType: string | undefined): Map<string, string> {
  const ct = (contentType ?? '').toLowerCase();
  if (ct.startsWith('multipart/form-data')) {
    const b = boundaryOf(contentType!);
    if (!b) throw new UnreadablePayload('the multipart body has no boundary');
    return parseMultipart(raw, b);
  }
  if (ct.startsWith('application/x-www-form-urlencoded')) return new Map(new URLSearchParams(raw.toString('utf8')));
  throw new UnreadablePayload(`unexpected content type ${ct.slice(0, 60) || '(none)'}`);
}
