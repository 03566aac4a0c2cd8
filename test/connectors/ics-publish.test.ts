// The ICS feed, read back with ical.js: valid RFC 5545, a VTIMEZONE for every TZID, stable UIDs,
// increasing SEQUENCE, cancelled appointments as STATUS:CANCELLED, and correct instants across DST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ICAL from 'ical.js';
import { renderFeed } from '../../src/connectors/targets/ics-publish/index.ts';
import { parseCalendar, isAmbiguousWallTime } from '../../src/connectors/shared/icalendar.ts';
import type { FeedEvent } from '../../src/connectors/types.ts';

const ev = (id: string, start: string, end: string, timeZone: string, status: FeedEvent['status'] = 'booked', revision = 1): FeedEvent => ({
  appointmentId: id, revision, title: `T ${id}`, description: 'line one\nline two, with; punctuation', location: 'Lakeview',
  start, end, timeZone, status, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-02T00:00:00.000Z',
});

const events = [
  ev('a1', '2026-02-20T15:00:00Z', '2026-02-20T15:45:00Z', 'America/Chicago'),
  // Spring forward in New York: 03:30 EDT on 2026-03-08.
  ev('a2', '2026-03-08T07:30:00Z', '2026-03-08T08:30:00Z', 'America/New_York'),
  // 01:30 on 2026-11-01 in New York happens twice; this is the second one (EST).
  ev('a3', '2026-11-01T06:30:00Z', '2026-11-01T07:00:00Z', 'America/New_York', 'cancelled', 3),
  ev('a4', '2026-10-24T00:30:00Z', '2026-10-24T01:30:00Z', 'Europe/London', 'requested', 2),
];
const text = renderFeed({ name: 'Dr. Okafor', timeZone: 'America/Chicago', events, now: new Date('2026-02-01T12:00:00Z'), publicUrl: 'https://meridian.example.org' });

test('the feed parses, with one VEVENT per appointment and stable UIDs on our domain', () => {
  const { events: parsed } = parseCalendar(text);
  assert.deepEqual(parsed.map((e) => e.uid), ['a1', 'a2', 'a3', 'a4'].map((id) => `${id}@meridian.example.org`));
  assert.deepEqual(parsed.map((e) => e.sequence), [1, 1, 3, 2]);
});

test('every instant survives the round trip, including across daylight-saving changes', () => {
  const { events: parsed } = parseCalendar(text);
  for (const [i, e] of parsed.entries()) {
    assert.equal(e.start, events[i].start, `start of ${e.uid}`);
    assert.equal(e.end, events[i].end, `end of ${e.uid}`);
  }
});

test('zoned times carry a TZID with a VTIMEZONE; the repeated hour is written in UTC', () => {
  assert.equal(isAmbiguousWallTime('2026-11-01T06:30:00Z', 'America/New_York'), true);
  assert.equal(isAmbiguousWallTime('2026-11-01T04:30:00Z', 'America/New_York'), false);
  const root = new ICAL.Component(ICAL.parse(text));
  const tzids = new Set(root.getAllSubcomponents('vtimezone').map((z) => z.getFirstPropertyValue('tzid')));
  const used = new Set<string>();
  for (const v of root.getAllSubcomponents('vevent')) {
    for (const p of ['dtstart', 'dtend']) {
      const tz = v.getFirstProperty(p)!.getParameter('tzid');
      if (typeof tz === 'string') used.add(tz);
    }
  }
  for (const tz of used) assert.ok(tzids.has(tz), `VTIMEZONE for ${tz}`);
  assert.ok(used.has('America/Chicago') && used.has('Europe/London'));
  const a3 = root.getAllSubcomponents('vevent')[2];
  assert.equal(a3.getFirstProperty('dtstart')!.getParameter('tzid'), undefined);
  assert.match(text, /DTSTART:20261101T063000Z/);
});

test('DTSTAMP, CREATED and LAST-MODIFIED are UTC; no METHOD; statuses map', () => {
  assert.match(text, /DTSTAMP:20260201T120000Z/);
  assert.doesNotMatch(text, /^DTSTAMP:\d{8}T\d{6}\r?$/m);
  assert.doesNotMatch(text, /^CREATED:\d{8}T\d{6}\r?$/m);
  assert.doesNotMatch(text, /^METHOD:/m);
  const { events: parsed } = parseCalendar(text);
  assert.deepEqual(parsed.map((e) => e.status), ['CONFIRMED', 'CONFIRMED', 'CANCELLED', 'TENTATIVE']);
  assert.equal(parsed[0].description, 'line one\nline two, with; punctuation');
  assert.match(text, /\r\n/);
  for (const line of text.split('\r\n')) assert.ok(Buffer.byteLength(line) <= 75, `folded: ${line}`);
});

test('reading back: the repeated hour written with a TZID means its first occurrence (RFC 5545)', () => {
  const text = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//t//t//EN', 'BEGIN:VEVENT', 'UID:x@y', 'DTSTAMP:20260101T000000Z',
    'DTSTART;TZID=America/New_York:20261101T013000', 'DTEND;TZID=America/New_York:20261101T023000', 'SUMMARY:s', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
  const [e] = parseCalendar(text).events;
  assert.equal(e.start, '2026-11-01T05:30:00Z', 'EDT, the first 01:30');
  assert.equal(e.end, '2026-11-01T07:30:00Z', '02:30 EST');
  const gap = parseCalendar(text.replace('20261101T013000', '20260308T023000').replace('20261101T023000', '20260308T040000')).events[0];
  assert.equal(gap.start, '2026-03-08T07:30:00Z', 'a time in the gap moves forward');
});
