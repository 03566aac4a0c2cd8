// The web app's zone arithmetic (no date library in the bundle), checked against Temporal (temporal-polyfill,
// what the server uses) on ordinary days and across America/Chicago's and Europe/Berlin's DST changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localToUtc } from '../../src/domain/time.ts';
import { addDays, fromWall, toWall, todayIn } from '../../src/ui/time.ts';

test('wall times convert both ways, with DST gaps moved later and repeated hours taken first (RFC 5545, like the server)', () => {
  const cases: [string, string, string][] = [
    ['2026-03-09T09:00', 'America/Chicago', '2026-03-09T14:00:00Z'],
    ['2026-03-08T02:30', 'America/Chicago', '2026-03-08T08:30:00Z'], // the spring-forward gap → 03:30 CDT
    ['2026-11-01T01:30', 'America/Chicago', '2026-11-01T06:30:00Z'], // the repeated hour → the first (CDT)
    ['2026-03-29T02:15', 'Europe/Berlin', '2026-03-29T01:15:00Z'],
    ['2026-10-25T02:30', 'Europe/Berlin', '2026-10-25T00:30:00Z'],
    ['2026-06-01T00:00', 'Asia/Kolkata', '2026-05-31T18:30:00Z'],
  ];
  for (const [wall, tz, utc] of cases) {
    assert.equal(fromWall(wall, tz), utc, `${wall} ${tz}`);
    assert.equal(fromWall(wall, tz), localToUtc(`${wall}:00`, tz), `${wall} ${tz} agrees with Temporal`);
  }
  assert.equal(toWall('2026-11-01T06:30:00Z', 'America/Chicago'), '2026-11-01T01:30:00');
  assert.equal(toWall('2026-11-01T07:30:00Z', 'America/Chicago'), '2026-11-01T01:30:00', 'the second 01:30 (CST)');
  assert.equal(toWall('2026-03-08T08:30:00Z', 'America/Chicago'), '2026-03-08T03:30:00');
  // Every quarter hour across both Chicago changes round-trips (outside the gap).
  for (let t = Date.parse('2026-03-07T00:00:00Z'); t < Date.parse('2026-03-10T00:00:00Z'); t += 900_000) {
    assert.equal(Date.parse(fromWall(toWall(t, 'America/Chicago'), 'America/Chicago')), t);
  }
});

test('today and day arithmetic follow the zone, not the machine', () => {
  assert.equal(todayIn('America/Chicago', Date.parse('2026-03-09T03:00:00Z')), '2026-03-08');
  assert.equal(todayIn('Europe/Berlin', Date.parse('2026-03-09T03:00:00Z')), '2026-03-09');
  assert.equal(addDays('2026-02-28', 1), '2026-03-01');
  assert.equal(addDays('2026-03-08', 1), '2026-03-09', 'a 23-hour day is still one day');
});
