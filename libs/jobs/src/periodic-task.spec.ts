import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeriodicTask } from './periodic-task.js';

/** A promise settled from outside. */
function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('PeriodicTask', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs once at start (first = true), then every interval (first = false)', async () => {
    const calls: boolean[] = [];
    const task = new PeriodicTask({ everyMs: 1000, run: async (first) => void calls.push(first), onError: () => undefined });
    task.start();
    expect(calls).toEqual([true]);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toEqual([true]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([true, false]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toEqual([true, false, false, false]);
    await task.stop();
  });

  it('never overlaps: a tick while a run is in flight is skipped', async () => {
    let runs = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const gate = deferred();
    const task = new PeriodicTask({
      everyMs: 100,
      run: async () => {
        runs++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (runs === 1) await gate.promise;
        inFlight--;
      },
      onError: () => undefined,
    });
    task.start();
    await vi.advanceTimersByTimeAsync(550); // five ticks while the first run is held
    expect(runs).toBe(1);
    expect(task.busy).toBe(true);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(task.busy).toBe(false);
    await vi.advanceTimersByTimeAsync(50); // the next tick (t = 600) runs again
    expect(runs).toBe(2);
    expect(maxInFlight).toBe(1);
    await task.stop();
  });

  it('a failed run (rejected or thrown) goes to onError and the loop keeps going', async () => {
    const errors: string[] = [];
    let n = 0;
    const task = new PeriodicTask({
      everyMs: 100,
      run: (() => {
        n++;
        if (n === 1) throw new Error('thrown');
        if (n === 2) return Promise.reject(new Error('rejected'));
        return Promise.resolve();
      }) as (first: boolean) => Promise<unknown>,
      onError: (e) => errors.push(e.message),
    });
    task.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual(['thrown']);
    await vi.advanceTimersByTimeAsync(100);
    expect(errors).toEqual(['thrown', 'rejected']);
    await vi.advanceTimersByTimeAsync(100);
    expect(n).toBe(3);
    expect(errors).toHaveLength(2);
    await task.stop();
  });

  it('an onError that throws does not stop the loop', async () => {
    let n = 0;
    const task = new PeriodicTask({
      everyMs: 100,
      run: () => {
        n++;
        return Promise.reject(new Error('x'));
      },
      onError: () => {
        throw new Error('reporter broke');
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(n).toBe(4);
    await task.stop();
  });

  it('stop() waits for the run in flight, and no run starts after it', async () => {
    let runs = 0;
    const gate = deferred();
    const task = new PeriodicTask({
      everyMs: 100,
      run: async () => {
        runs++;
        await gate.promise;
      },
      onError: () => undefined,
    });
    task.start();
    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(stopped).toBe(true);
    expect(task.busy).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(1);
  });

  it('stop() with nothing in flight (or before start) resolves at once; start() again restarts', async () => {
    let runs = 0;
    const task = new PeriodicTask({ everyMs: 100, run: async () => void runs++, onError: () => undefined });
    await task.stop();
    task.start();
    task.start(); // a second start while running is a no-op
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(1);
    await task.stop();
    task.start();
    expect(runs).toBe(2);
    await task.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('its timer does not keep the process alive (unref)', async () => {
    vi.useRealTimers();
    const unref = vi.spyOn(globalThis, 'setInterval');
    const task = new PeriodicTask({ everyMs: 60_000, run: async () => undefined, onError: () => undefined });
    task.start();
    const timer = unref.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    await task.stop();
    unref.mockRestore();
  });
});
