// Deterministic Google event ids (DESIGN.md §4, targets.md §1.3): the appointment UUID's 16 bytes
// in base32hex (RFC 4648 §7 alphabet, lowercase, no padding) = 26 characters of a–v and 0–9,
// plus a generation suffix `g<n>` once Google has refused to reuse a deleted id (targets.md §1.4).

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 4648 §7 base32hex, lowercase, without padding. */
export function base32hex(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32HEX[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32HEX[(buffer << (5 - bits)) & 31];
  return out;
}

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** The 16 bytes of a UUID in its canonical textual form. Throws for anything else. */
export function uuidBytes(uuid: string): Uint8Array {
  if (!isUuid(uuid)) throw new RangeError('appointment id is not a UUID');
  return Uint8Array.from(Buffer.from(uuid.replaceAll('-', ''), 'hex'));
}

/** The Google event id for an appointment at a generation (0 = the plain 26-character id). */
export function eventIdFor(appointmentId: string, generation = 0): string {
  const base = base32hex(uuidBytes(appointmentId));
  return generation > 0 ? `${base}g${generation}` : base;
}
