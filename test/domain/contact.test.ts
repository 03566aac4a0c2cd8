// Patient e-mail as it arrives from forms and booking platforms: only one plausible address is kept, so a
// value with CR/LF (extra mail headers) or a list never reaches a message or an iCalendar line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEmail } from '../../src/domain/contact.ts';
import { contentHash, decide } from '../../src/domain/apply.ts';
import type { SourceChange } from '../../src/domain/types.ts';

test('cleanEmail keeps one plausible address and drops anything else entirely', () => {
  assert.equal(cleanEmail('  ana.novak+x@example.net '), 'ana.novak+x@example.net');
  for (const bad of ['a@b.example\r\nBcc: x@y', 'a@b.example\nx', 'a@b.example, c@d.example', 'a@b.example;c@d.example', 'a b@c.example',
    'a@b@c.example', 'no-at.example', '@b.example', 'a@localhost', `${'a'.repeat(250)}@b.example`, '"a"@b.example', '', undefined, null]) {
    assert.equal(cleanEmail(bad), undefined, JSON.stringify(bad));
  }
});

test('a booking platform\'s e-mail with CR/LF is not stored on the appointment', () => {
  const c: SourceChange = {
    platform: 'test', externalId: 'A', kind: 'upsert', occurredAt: '2026-02-09T10:00:00Z', needsFetch: false,
    appointment: { start: '2026-03-10T15:00:00Z', end: '2026-03-10T15:45:00Z', timeZone: 'America/Chicago', status: 'booked', practitionerRef: 'host',
      patient: { name: 'Liam Carter', email: 'a@b.example\r\nBcc: x@y' } },
  };
  const d = decide({ change: c, hash: contentHash(c), connectionId: 'conn', clinicId: 'clinic', mapped: { practitionerId: 'p1' }, newId: 'a1', now: '2026-01-01T00:00:00Z', defaultTimeZone: 'Europe/London' });
  assert.equal(d.action, 'create');
  assert.ok(d.action === 'create' && d.next.patient.email === undefined && d.next.patient.name === 'Liam Carter');
  const ok = decide({ change: { ...c, appointment: { ...c.appointment!, patient: { name: 'L', email: 'liam@example.com' } } }, hash: 'h', connectionId: 'conn', clinicId: 'clinic', mapped: { practitionerId: 'p1' }, newId: 'a2', now: '2026-01-01T00:00:00Z', defaultTimeZone: 'Europe/London' });
  assert.ok(ok.action === 'create' && ok.next.patient.email === 'liam@example.com');
});
