// The shared iCalendar reader: each of DTSTART and DTEND is read in its own zone (RFC 5545 §3.3.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCalendar } from '../../src/connectors/shared/icalendar.ts';

const cal = (...lines: string[]) => ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//t//EN', 'BEGIN:VEVENT', 'UID:u1', 'DTSTAMP:20261101T000000Z', ...lines, 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');

test('a UTC DTEND beside a zoned DTSTART is UTC, not a wall time in the start zone', () => {
  const [e] = parseCalendar(cal('DTSTART;TZID=America/New_York:20261110T090000', 'DTEND:20261110T144500Z')).events;
  assert.equal(e.start, '2026-11-10T14:00:00Z');
  assert.equal(e.end, '2026-11-10T14:45:00Z');
});

test('an end given by DURATION follows the start zone, across the end of daylight time', () => {
  const [e] = parseCalendar(cal('DTSTART;TZID=America/New_York:20261101T013000', 'DURATION:PT1H')).events;
  assert.equal(e.start, '2026-11-01T05:30:00Z', 'the first 01:30 (EDT), as RFC 5545 resolves it');
  assert.equal(Date.parse(e.end) - Date.parse(e.start) > 0, true);
});

test('a DTEND in another zone is read in that zone', () => {
  const [e] = parseCalendar(cal('DTSTART;TZID=Europe/London:20261110T090000', 'DTEND;TZID=Europe/Paris:20261110T110000')).events;
  assert.equal(e.start, '2026-11-10T09:00:00Z');
  assert.equal(e.end, '2026-11-10T10:00:00Z');
});
