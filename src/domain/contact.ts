// Patient contact data as it arrives from forms and booking platforms, made safe to keep and to send to.
// Pure: no I/O.

/**
 * One plausible e-mail address (trimmed, case kept), or undefined. Whatever is not a single address (CR/LF that
 * would add headers to a message, a list split by commas or semicolons, spaces, a second @, more than the
 * 254 characters SMTP allows) is dropped entirely: keeping the raw value would let it reach a mail header
 * or an iCalendar line later, and a half-cleaned address would mail the wrong person.
 */
export function cleanEmail(raw: string | null | undefined): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim();
  if (s.length === 0 || s.length > 254) return undefined;
  // Only printable ASCII without space, comma, semicolon, angle brackets, quotes or backslash.
  if (/[^\x21-\x7e]|[,;<>"\\()[\]]/.test(s)) return undefined;
  const at = s.indexOf('@');
  if (at < 1 || at !== s.lastIndexOf('@')) return undefined;
  const local = s.slice(0, at);
  const domain = s.slice(at + 1);
  if (local.length > 64 || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i.test(domain)) return undefined;
  return s;
}
