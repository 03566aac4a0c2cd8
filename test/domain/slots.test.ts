// Preferences → wall-time windows (table tests), DST edges in America/New_York, working hours, and the
// first free slot (table + property tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Temporal } from 'temporal-polyfill';
import { firstFreeSlot, intersect, preferenceWindows, readPreference, workingWindows, type Horizon, type Interval } from '../../src/domain/slots.ts';

const WED = Temporal.PlainDate.from('2026-03-04'); // a Wednesday
const NY = 'America/New_York';

test('phrases: days, parts of the day, times, ranges and dates', () => {
  const cases: [string, object[]][] = [
    ['Tuesday afternoon, acupuncture', [{ weekdays: [2], range: [720, 1020] }]],
    ['weekday mornings after 10', [{ weekdays: [1, 2, 3, 4, 5], after: 600, range: [480, 720] }]],
    ['next Monday 3pm', [{ dates: [Temporal.PlainDate.from('2026-03-09')], at: 900 }]],
    ['this Wednesday evening', [{ dates: [WED], range: [1020, 1260] }]],
    ['Monday or Tuesday afternoon', [{ weekdays: [1], range: [720, 1020] }, { weekdays: [2], range: [720, 1020] }]],
    ['between 2 and 4pm on Fridays', [{ weekdays: [5], range: [840, 960] }]],
    ['10-2pm weekends', [{ weekdays: [6, 7], range: [600, 840] }]],
    ['March 10 at 9:30am', [{ dates: [Temporal.PlainDate.from('2026-03-10')], at: 570 }]],
    ['the 2nd of March', [{ dates: [Temporal.PlainDate.from('2027-03-02')] }]],
    ['tomorrow before noon', [{ dates: [Temporal.PlainDate.from('2026-03-05')], before: 720 }]],
    ['tuesdays 09:00-11:00', [{ weekdays: [2], range: [540, 660] }]],
    ['at 2:30 on thu', [{ weekdays: [4], at: 870 }]],
    ['I am free whenever', [{ weekdays: [1, 2, 3, 4, 5, 6, 7] }]],
    ['asap please', []],
    ['acupuncture', []],
  ];
  for (const [text, want] of cases) assert.deepEqual(JSON.parse(JSON.stringify(readPreference(text, WED))), JSON.parse(JSON.stringify(want)), text);
});

const horizon = (from: string, days: number, timeZone = NY): Horizon => ({ timeZone, from: new Date(from), to: new Date(Date.parse(from) + days * 86_400_000) });

test('"Tuesday afternoon" is 12:00–17:00 New York time on each Tuesday, before and after the spring change', () => {
  const h = horizon('2026-03-02T05:00:00Z', 14); // Mon 2 Mar 00:00 EST, two weeks
  const { windows, unread } = preferenceWindows([{ text: 'Tuesday afternoon' }], h, 60);
  assert.deepEqual(unread, []);
  assert.deepEqual(windows, [
    { start: '2026-03-03T17:00:00Z', end: '2026-03-03T22:00:00Z' }, // EST, UTC-5
    { start: '2026-03-10T16:00:00Z', end: '2026-03-10T21:00:00Z' }, // EDT, UTC-4 (clocks went forward on Sun 8 Mar)
  ]);
});

test('DST edges: the spring gap shortens a night window, the autumn repeat lengthens it', () => {
  const spring = preferenceWindows([{ text: 'Sunday 1am-4am' }], horizon('2026-03-07T05:00:00Z', 2), 60).windows;
  assert.deepEqual(spring, [{ start: '2026-03-08T06:00:00Z', end: '2026-03-08T08:00:00Z' }], 'two real hours (02:00–03:00 does not exist)');
  const autumn = preferenceWindows([{ text: 'Sunday 1am-4am' }], horizon('2026-10-31T04:00:00Z', 2), 60).windows;
  assert.deepEqual(autumn, [{ start: '2026-11-01T05:00:00Z', end: '2026-11-01T09:00:00Z' }], 'four real hours (01:00–02:00 happens twice)');
  // A time inside the gap moves later (RFC 5545 style), not to the previous hour.
  const gap = preferenceWindows([{ date: '2026-03-08', from: '02:30', to: '04:00' }], horizon('2026-03-07T05:00:00Z', 2), 60).windows;
  assert.deepEqual(gap, [{ start: '2026-03-08T07:30:00Z', end: '2026-03-08T08:00:00Z' }]);
});

test('working hours follow the wall clock across the change; the horizon clips', () => {
  const h = horizon('2026-03-06T14:00:00Z', 4); // Fri 6 Mar 09:00 EST … Tue 10 Mar
  const w = workingWindows({ fri: ['09:00-12:00', '13:00-17:00'], mon: ['09:00-17:00'] }, h);
  assert.deepEqual(w, [
    { start: '2026-03-06T14:00:00Z', end: '2026-03-06T17:00:00Z' },
    { start: '2026-03-06T18:00:00Z', end: '2026-03-06T22:00:00Z' },
    { start: '2026-03-09T13:00:00Z', end: '2026-03-09T21:00:00Z' },
  ]);
});

test('structured preferences: instants, a date with a range; unreadable ones are reported', () => {
  const h = horizon('2026-03-02T05:00:00Z', 14);
  const r = preferenceWindows([
    { start: '2026-03-05T15:00:00Z', end: '2026-03-05T17:00:00Z' },
    { date: '2026-03-06', from: '09:00', to: '11:00' },
    { date: 'someday' },
    { text: 'as soon as possible' },
  ], h, 60);
  assert.deepEqual(r.windows, [
    { start: '2026-03-05T15:00:00Z', end: '2026-03-05T17:00:00Z' },
    { start: '2026-03-06T14:00:00Z', end: '2026-03-06T16:00:00Z' },
  ]);
  assert.deepEqual(r.unread, ['someday', 'as soon as possible']);
  assert.deepEqual(preferenceWindows([], h, 60).windows, [{ start: '2026-03-02T05:00:00Z', end: '2026-03-16T05:00:00Z' }], 'no preference: any time');
  assert.deepEqual(preferenceWindows([{ text: 'next Monday 3pm' }], horizon('2026-03-04T17:00:00Z', 14), 45).windows,
    [{ start: '2026-03-09T19:00:00Z', end: '2026-03-09T19:45:00Z' }], 'an exact time is a window of the service\'s length');
});

test('first free slot: skips a taken one, needs the whole duration inside one window', () => {
  const cands: Interval[] = [{ start: '2026-03-10T17:00:00Z', end: '2026-03-10T21:00:00Z' }];
  assert.deepEqual(firstFreeSlot(cands, [], 60), { start: '2026-03-10T17:00:00Z', end: '2026-03-10T18:00:00Z' });
  assert.deepEqual(firstFreeSlot(cands, [{ start: '2026-03-10T17:00:00Z', end: '2026-03-10T18:00:00Z' }], 60), { start: '2026-03-10T18:00:00Z', end: '2026-03-10T19:00:00Z' });
  assert.deepEqual(firstFreeSlot(cands, [{ start: '2026-03-10T16:30:00Z', end: '2026-03-10T17:10:00Z' }], 60), { start: '2026-03-10T17:15:00Z', end: '2026-03-10T18:15:00Z' }, 'next quarter hour after the busy block');
  assert.equal(firstFreeSlot(cands, [{ start: '2026-03-10T17:30:00Z', end: '2026-03-10T20:30:00Z' }], 60), undefined);
  assert.equal(firstFreeSlot([{ start: '2026-03-10T17:00:00Z', end: '2026-03-10T17:45:00Z' }], [], 60), undefined);
  assert.deepEqual(intersect([{ start: '2026-03-10T16:00:00Z', end: '2026-03-10T21:00:00Z' }], [{ start: '2026-03-10T13:00:00Z', end: '2026-03-10T16:00:00Z' }, { start: '2026-03-10T17:00:00Z', end: '2026-03-10T21:00:00Z' }]),
    [{ start: '2026-03-10T17:00:00Z', end: '2026-03-10T21:00:00Z' }]);
});

test('property: the slot is inside the candidates, clear of busy time, and no earlier grid start would do', () => {
  const BASE = Date.parse('2026-03-10T00:00:00Z');
  const q = 15 * 60_000;
  const interval = fc.tuple(fc.integer({ min: 0, max: 96 }), fc.integer({ min: 1, max: 24 })).map(([s, len]) => ({ start: new Date(BASE + s * q).toISOString(), end: new Date(BASE + (s + len) * q).toISOString() }));
  fc.assert(fc.property(fc.array(interval, { maxLength: 5 }), fc.array(interval, { maxLength: 8 }), fc.integer({ min: 1, max: 8 }), (cands, busy, quarters) => {
    const dur = quarters * 15;
    // Touching candidates form one window: every quarter hour of the slot must be covered.
    const covered = (t: number) => cands.some((c) => Date.parse(c.start) <= t && t + q <= Date.parse(c.end));
    const ok = (s: number) => Array.from({ length: quarters }, (_, i) => s + i * q).every(covered)
      && !busy.some((b) => Date.parse(b.start) < s + dur * 60_000 && s < Date.parse(b.end));
    const slot = firstFreeSlot(cands, busy, dur);
    const firstOk = Array.from({ length: 130 }, (_, i) => BASE + i * q).find(ok);
    if (firstOk === undefined) return slot === undefined;
    return slot !== undefined && Date.parse(slot.start) === firstOk && Date.parse(slot.end) - Date.parse(slot.start) === dur * 60_000;
  }), { numRuns: 300 });
});
