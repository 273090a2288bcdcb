import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

/** Simulates takers on a fake clock: each waits for its reservation, then "uses" the token. */
function simulate(bucket: TokenBucket, clock: { t: number }, n: number, rateChanges: Array<[number, number]> = []): number[] {
  const used: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const [at, rate] of rateChanges) if (i === at) bucket.setRate(rate);
    const wait = bucket.reserve();
    clock.t += wait;
    used.push(clock.t);
  }
  return used;
}

function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0; i < times.length; i++) {
    let j = i;
    while (j < times.length && times[j]! - times[i]! <= windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

describe('TokenBucket', () => {
  it('hands out at most capacity + rate * t tokens in any interval', () => {
    const clock = { t: 0 };
    const b = new TokenBucket(5, 1, () => clock.t);
    const used = simulate(b, clock, 50);
    expect(used[0]).toBe(0);
    expect(used[49]).toBeCloseTo((49 / 5) * 1000, 6);
    for (let i = 1; i < used.length; i++) expect(used[i]! - used[i - 1]!).toBeCloseTo(200, 6);
    expect(maxInWindow(used, 1000)).toBeLessThanOrEqual(1 + 5);
  });

  it('a burst after idle time is limited by the capacity', () => {
    const clock = { t: 0 };
    const b = new TokenBucket(10, 3, () => clock.t);
    clock.t = 60_000;
    const waits = [b.reserve(), b.reserve(), b.reserve(), b.reserve()];
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    expect(waits[3]).toBeCloseTo(100, 6);
  });

  it('concurrent reservations queue up behind each other', () => {
    const clock = { t: 0 };
    const b = new TokenBucket(2, 1, () => clock.t);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 500, 1000]);
  });

  it('a new rate applies to the next reservations', () => {
    const clock = { t: 0 };
    const b = new TokenBucket(10, 1, () => clock.t);
    const used = simulate(b, clock, 40, [[20, 2]]);
    const late = used.slice(21);
    for (let i = 1; i < late.length; i++) expect(late[i]! - late[i - 1]!).toBeCloseTo(500, 6);
    expect(maxInWindow(used.slice(0, 20), 1000)).toBeLessThanOrEqual(11);
  });

  it('take() waits for its reservation on the real clock', async () => {
    const b = new TokenBucket(20, 1);
    const t0 = performance.now();
    await b.take();
    await b.take();
    await b.take();
    // Two waits of 50 ms each at 20 per second: a lower bound, never an upper one.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new TokenBucket(0)).toThrow();
    expect(() => new TokenBucket(1).setRate(-1)).toThrow();
  });
});
