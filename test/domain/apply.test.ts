// The domain rules for applying source changes: dedupe, ordering, reschedule stitching, and the
// property that any order of duplicated and late deliveries converges to the same schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { contentHash, decide, ChangeRejected, type RefState, type Decision } from '../../src/domain/apply.ts';
import type { Appointment, SourceChange } from '../../src/domain/types.ts';

/** A tiny in-memory store applying decisions the way src/engine/apply.ts does. */
class Sim {
  refs = new Map<string, RefState>();
  appts = new Map<string, Appointment>();
  private n = 0;
  apply(c: SourceChange): Decision {
    const ref = this.refs.get(c.externalId);
    const replacedRef = c.replacesExternalId ? this.refs.get(c.replacesExternalId) : undefined;
    const id = ref?.appointmentId ?? replacedRef?.appointmentId;
    const d = decide({
      change: c, hash: contentHash(c), connectionId: 'conn', clinicId: 'clinic', ref, replacedRef,
      existing: id ? this.appts.get(id) : undefined, mapped: { practitionerId: 'p1' }, newId: `a${++this.n}`,
      now: '2026-01-01T00:00:00Z', defaultTimeZone: 'Europe/London',
    });
    if (d.action === 'ignore') return d;
    if (d.action === 'create' || d.action === 'update') this.appts.set(d.next.id, d.next);
    this.refs.set(d.ref.externalId, d.ref);
    if (d.replacedRef) this.refs.set(d.replacedRef.externalId, d.replacedRef);
    return d;
  }
  /** The schedule as a person sees it: live appointments with their times and status. */
  schedule(): string[] {
    return [...this.appts.values()].filter((a) => a.status !== 'cancelled').map((a) => `${a.start}|${a.end}|${a.status}|${a.practitionerId}`).sort();
  }
}

function change(externalId: string, kind: SourceChange['kind'], occurredAt: string, extra: Partial<SourceChange> = {}, start = '2026-03-10T15:00:00Z', end = '2026-03-10T15:45:00Z'): SourceChange {
  return {
    platform: 'test', externalId, kind, occurredAt, needsFetch: false,
    appointment: { start, end, timeZone: 'America/Chicago', status: kind === 'cancel' ? 'cancelled' : kind === 'no_show' ? 'no_show' : 'booked', practitionerRef: 'host', patient: { name: 'Liam Carter' } },
    ...extra,
  };
}

test('a new booking creates one appointment; the same content again is a duplicate', () => {
  const s = new Sim();
  const c = change('A', 'upsert', '2026-02-09T16:41:07Z');
  assert.equal(s.apply(c).action, 'create');
  assert.deepEqual(s.apply({ ...c, deliveryId: 'other', occurredAt: '2026-02-09T16:41:08Z' }), { action: 'ignore', reason: 'duplicate' });
  assert.equal(s.appts.size, 1);
});

test('an older change never overwrites a newer one', () => {
  const s = new Sim();
  s.apply(change('A', 'upsert', '2026-02-09T10:00:00Z', {}, '2026-03-10T15:00:00Z', '2026-03-10T16:00:00Z'));
  s.apply(change('A', 'cancel', '2026-02-09T12:00:00Z'));
  assert.deepEqual(s.apply(change('A', 'upsert', '2026-02-09T11:00:00Z', {}, '2026-03-11T15:00:00Z', '2026-03-11T16:00:00Z')), { action: 'ignore', reason: 'stale' });
  assert.equal([...s.appts.values()][0].status, 'cancelled');
});

test('a platform version wins over delivery time', () => {
  const s = new Sim();
  s.apply(change('A', 'upsert', '2026-02-09T10:00:00Z', { version: 3 }));
  const d = s.apply(change('A', 'upsert', '2026-02-09T12:00:00Z', { version: 2 }, '2026-03-12T15:00:00Z', '2026-03-12T16:00:00Z'));
  assert.deepEqual(d, { action: 'ignore', reason: 'stale' });
});

test('a reschedule as cancel + new booking is stitched into one appointment, in either order', () => {
  for (const order of [[0, 1, 2], [0, 2, 1]]) {
    const s = new Sim();
    const steps = [
      change('A', 'upsert', '2026-02-09T16:41:07Z'),
      change('A', 'cancel', '2026-02-12T21:05:45Z'),
      change('B', 'upsert', '2026-02-12T21:05:45Z', { replacesExternalId: 'A' }, '2026-02-23T18:30:00Z', '2026-02-23T19:15:00Z'),
    ];
    for (const i of order) s.apply(steps[i]);
    assert.equal(s.appts.size, 1, `order ${order}`);
    const a = [...s.appts.values()][0];
    assert.equal(a.status, 'booked');
    assert.equal(a.start, '2026-02-23T18:30:00Z');
    assert.equal(a.origin.externalId, 'B');
    assert.equal(s.refs.get('A')?.superseded, true);
  }
});

test('an upsert without times for an unknown booking is rejected, not invented', () => {
  const s = new Sim();
  assert.throws(() => s.apply({ ...change('A', 'upsert', '2026-02-09T10:00:00Z'), appointment: { patient: { name: 'X' } } }), ChangeRejected);
});

test('a status-only change (a no-show and its undo, no times) changes the status and nothing the connection defaults supply', () => {
  const s = new Sim();
  const created = s.apply(change('A', 'upsert', '2026-02-09T10:00:00Z'));
  assert.equal(created.action, 'create');
  const id = (created as { next: { id: string } }).next.id;
  s.appts.set(id, { ...s.appts.get(id)!, practitionerId: 'p0', locationId: 'l0' }); // moved by staff, say
  const bare = (kind: SourceChange['kind'], at: string, status: 'no_show' | 'booked'): SourceChange => ({ platform: 'test', externalId: 'A', kind, occurredAt: at, needsFetch: false, appointment: { status } });
  const noShow = s.apply(bare('no_show', '2026-03-10T16:00:00Z', 'no_show'));
  assert.equal(noShow.action, 'update');
  // The engine fills in the zone of the mapped (default) practitioner; the change still names no time.
  const undo = decide({
    change: { ...bare('upsert', '2026-03-10T16:05:00Z', 'booked'), appointment: { status: 'booked', timeZone: 'Asia/Tokyo' } }, hash: 'h-undo', connectionId: 'conn', clinicId: 'clinic',
    ref: s.refs.get('A'), existing: s.appts.get(id), mapped: { practitionerId: 'p1', locationId: 'l1' }, newId: 'x', now: '2026-03-10T16:05:01Z', defaultTimeZone: 'Europe/London',
  });
  assert.equal(undo.action, 'update');
  const next = (undo as { next: { status: string; practitionerId: string; locationId?: string; timeZone: string; start: string } }).next;
  assert.deepEqual([next.status, next.practitionerId, next.locationId, next.timeZone, next.start], ['booked', 'p0', 'l0', 'America/Chicago', '2026-03-10T15:00:00Z']);
});

test('a cancel for a booking never seen is remembered, so the late booking stays cancelled', () => {
  const s = new Sim();
  const cancel = { ...change('A', 'cancel', '2026-02-09T12:00:00Z'), appointment: {} };
  assert.equal(s.apply(cancel).action, 'tombstone');
  assert.deepEqual(s.apply(change('A', 'upsert', '2026-02-09T10:00:00Z')), { action: 'ignore', reason: 'stale' });
  assert.deepEqual(s.schedule(), []);
});

test('property: any order of duplicated and late deliveries converges to the in-order schedule', () => {
  // Histories: booked → (rescheduled as cancel + new id) → (no-show | cancelled | moved again), per booking.
  const history = (n: number): SourceChange[] => {
    const A = `A${n}`, B = `B${n}`;
    const t = (h: number) => `2026-02-${String(10 + n).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00Z`;
    const day = (d: number, h: number) => `2026-03-${String(d + n).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00Z`;
    return [
      change(A, 'upsert', t(1), {}, day(1, 9), day(1, 10)),
      change(A, 'cancel', t(2)),
      change(B, 'upsert', t(2), { replacesExternalId: A }, day(2, 11), day(2, 12)),
      n % 2 ? change(B, 'no_show', t(3), {}, day(2, 11), day(2, 12)) : change(B, 'upsert', t(3), {}, day(3, 14), day(3, 15)),
    ];
  };
  const all = [0, 1, 2].flatMap(history);
  const expected = new Sim();
  for (const c of all) expected.apply(c);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: all.length - 1 }), { minLength: 0, maxLength: 6 }),
      fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
      (dups, rand) => {
        const deliveries = [...all, ...dups.map((i) => ({ ...all[i], deliveryId: `retry-${i}` }))];
        const r = rand.take(deliveries.length);
        const keyed = deliveries.map((d) => ({ d, k: r.next().value as number }));
        keyed.sort((x, y) => x.k - y.k);
        const s = new Sim();
        for (const { d } of keyed) s.apply(d);
        assert.deepEqual(s.schedule(), expected.schedule());
      },
    ),
    { numRuns: 400 },
  );
});
