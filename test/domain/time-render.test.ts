// Time handling across daylight-saving edges, conflicts, and event text at each privacy level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localToUtc, utcToLocal, toUtc, isIanaZone, overlaps } from '../../src/domain/time.ts';
import { findConflicts } from '../../src/domain/conflicts.ts';
import { renderEventText, disallowedPlaceholders, initials, DEFAULT_TEMPLATES } from '../../src/domain/render.ts';
import type { Appointment } from '../../src/domain/types.ts';

test('wall-clock times in the spring-forward gap move forward (RFC 5545), not back', () => {
  // 2026-03-08 02:30 does not exist in New York; RFC 5545 reads it as 03:30 EDT = 07:30Z.
  assert.equal(localToUtc('2026-03-08T02:30:00', 'America/New_York'), '2026-03-08T07:30:00Z');
  // Europe/London, 2026-03-29 01:30 does not exist either.
  assert.equal(localToUtc('2026-03-29T01:30:00', 'Europe/London'), '2026-03-29T01:30:00Z');
});

test('the repeated hour when clocks go back resolves to the first occurrence', () => {
  // 2026-11-01 01:30 happens twice in New York: EDT (05:30Z) then EST (06:30Z).
  assert.equal(localToUtc('2026-11-01T01:30:00', 'America/New_York'), '2026-11-01T05:30:00Z');
  assert.equal(utcToLocal('2026-11-01T06:30:00Z', 'America/New_York').hour, 1);
  assert.equal(utcToLocal('2026-11-01T06:30:00Z', 'America/New_York').offset, '-05:00');
});

test('a 60-minute visit across the fall-back change lasts 60 real minutes', () => {
  const start = localToUtc('2026-10-25T01:30:00', 'Europe/Berlin'); // CEST → CET at 03:00 local
  const end = new Date(Date.parse(start) + 3_600_000).toISOString();
  assert.equal(utcToLocal(end, 'Europe/Berlin').toPlainTime().toString(), '02:30:00');
  assert.equal(utcToLocal(end, 'Europe/Berlin').offset, '+02:00');
});

test('instants are normalised to UTC Z without milliseconds; zones must be IANA names', () => {
  assert.equal(toUtc('2026-02-20T09:00:00.000000-06:00'), '2026-02-20T15:00:00Z');
  assert.equal(toUtc('2026-02-20T15:00:00.250Z'), '2026-02-20T15:00:00.250Z');
  assert.throws(() => toUtc('next tuesday'), RangeError);
  assert.equal(isIanaZone('America/Chicago'), true);
  assert.equal(isIanaZone('Mars/Olympus'), false);
  assert.equal(isIanaZone('EST'), false);
});

const base: Appointment = {
  id: 'appt-1', clinicId: 'c', practitionerId: 'p1', patient: { name: 'Liam Carter', email: 'liam@example.net', phone: '+1 312 555 0100' },
  start: '2026-02-20T15:00:00Z', end: '2026-02-20T15:45:00Z', timeZone: 'America/Chicago', status: 'booked', notes: 'left shoulder',
  origin: { platform: 'x', connectionId: 'x', externalId: 'e' }, revision: 1, conflicts: [], createdAt: '', updatedAt: '',
};

test('overlap is half-open: back-to-back visits do not conflict; same room does', () => {
  assert.equal(overlaps('2026-01-01T10:00:00Z', '2026-01-01T11:00:00Z', '2026-01-01T11:00:00Z', '2026-01-01T12:00:00Z'), false);
  const other = { ...base, id: 'b', start: '2026-02-20T15:30:00Z', end: '2026-02-20T16:00:00Z' };
  assert.deepEqual(findConflicts(base, [base, other]), ['b']);
  assert.deepEqual(findConflicts(base, [{ ...other, practitionerId: 'p2' }]), []);
  assert.deepEqual(findConflicts({ ...base, roomId: 'r1' }, [{ ...other, practitionerId: 'p2', roomId: 'r1' }]), ['b']);
  assert.deepEqual(findConflicts(base, [{ ...other, status: 'cancelled' }]), []);
});

const ctx = { clinicName: 'Lotus', practitionerName: 'Dr. Okafor', serviceName: 'Acupuncture', locationName: 'Lakeview', sourceName: 'Calendly' };

test('minimal (the default) shows initials and service, never the name, contact or notes', () => {
  const t = renderEventText(base, ctx, 'minimal');
  const all = `${t.title}\n${t.description}`;
  assert.equal(t.title, 'L. C. · Acupuncture');
  for (const secret of ['Liam', 'Carter', 'liam@example.net', '555', 'shoulder']) assert.ok(!all.includes(secret), secret);
  assert.equal(t.location, 'Lakeview');
});

test('busy shows nothing about the patient or the service', () => {
  const t = renderEventText(base, ctx, 'busy');
  assert.equal(t.title, 'Busy');
  assert.ok(!`${t.title}${t.description}`.includes('Acupuncture'));
  assert.equal(t.location, undefined);
});

test('full shows the patient; a cancelled one is prefixed; empty fields leave no dangling labels', () => {
  const t = renderEventText({ ...base, status: 'cancelled', patient: { name: 'Liam Carter' }, notes: undefined }, ctx, 'full');
  assert.equal(t.title, '[Cancelled] Liam Carter · Acupuncture');
  assert.ok(!/Email:|Phone:|Notes:/.test(t.description), t.description);
});

test('a template asking for more than its level allows is refused, and never filled', () => {
  const tpl = { title: '{{patient.name}}', description: '{{notes}} {{service}}' };
  assert.deepEqual(disallowedPlaceholders(tpl, 'minimal'), ['notes', 'patient.name']);
  assert.deepEqual(disallowedPlaceholders(DEFAULT_TEMPLATES.minimal, 'minimal'), []);
  const t = renderEventText(base, ctx, 'minimal', tpl);
  assert.ok(!t.title.includes('Liam'));
  assert.ok(!t.description.includes('shoulder'));
});

test('initials handle hyphens, accents and single names', () => {
  assert.equal(initials('Zoë Saint-Aubin'), 'Z. A.');
  assert.equal(initials('Cher'), 'C.');
  assert.equal(initials('  '), '?');
});
