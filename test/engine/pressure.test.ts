// Ingest pressure (src/engine/pressure.ts): background work is paced only while deliveries arrive
// faster than the busy rate, and all consumers share one budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IngestPressure } from '../../src/engine/hub/pressure.ts';

function clocked() {
  let t = 1_000;
  const p = new IngestPressure(1_000, 0.2, 30_000, () => t);
  const advance = (ms: number) => void (t += ms);
  /** `n` deliveries, one every `gapMs`. */
  const arrive = (n: number, gapMs: number) => {
    for (let i = 0; i < n; i++) {
      p.receipt();
      advance(gapMs);
    }
  };
  return { p, advance, arrive, now: () => t };
}

test('below the busy rate nothing is paced; above it each step is followed by four times its length', () => {
  const { p, arrive } = clocked();
  arrive(50, 2); // 500 a second
  assert.equal(p.busy, false, `rate ${p.rate}`);
  assert.equal(p.pauseAfter(10), 0);
  arrive(300, 0.5); // 2,000 a second
  assert.ok(p.busy, `rate ${p.rate}`);
  assert.equal(p.pauseAfter(10), 40, 'share 0.2: 10 ms of work, 40 ms left to receipts');
});

test('two consumers share the budget: the second waits for the first one\'s pause too', () => {
  const { p, arrive } = clocked();
  arrive(300, 0.5);
  assert.equal(p.pauseAfter(10), 40);
  assert.equal(p.pauseAfter(5), 60, 'pushed back behind the first pause');
  arrive(120, 0.5); // the burst goes on for the 60 ms of those pauses
  assert.equal(p.pauseAfter(5), 20, 'after the pauses ran out, only its own');
});

test('the burst ends: within two buckets of silence the rate falls to nothing', () => {
  const { p, advance, arrive } = clocked();
  arrive(300, 0.5);
  assert.ok(p.busy);
  advance(250);
  assert.equal(p.rate, 0);
  assert.equal(p.pauseAfter(10), 0);
});

test('once a delivery has waited 30 s for its apply, applying is not paced any more', () => {
  const { p, arrive, now } = clocked();
  const queuedAt = now();
  p.noteBacklog(queuedAt);
  arrive(300, 0.5);
  assert.ok(p.busy, 'a young backlog: receipts first');
  arrive(60_000, 0.5); // the burst goes on for 30 s
  assert.ok(p.rate > 1_000);
  assert.equal(p.busy, false, 'the oldest delivery waited over 30 s');
  assert.equal(p.pauseAfter(10), 0);
  p.noteBacklog(now());
  assert.ok(p.busy, 'caught up: receipts first again');
});
