import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_AFTER_S, retryAfterSeconds } from './restore-wait.js';

describe('retryAfterSeconds', () => {
  const now = new Date('2026-12-01T10:00:10Z');
  const started = new Date('2026-12-01T10:00:00Z');

  it('is the default before a restore started or copied anything', () => {
    expect(retryAfterSeconds(undefined, now)).toBe(DEFAULT_RETRY_AFTER_S);
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 0, startedAt: started }, now)).toBe(DEFAULT_RETRY_AFTER_S);
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 3, startedAt: null }, now)).toBe(DEFAULT_RETRY_AFTER_S);
  });

  it('extrapolates the rate so far to what is left', () => {
    // 2 of 10 in 10 s: 8 left at 5 s each
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 2, startedAt: started }, now)).toBe(40);
  });

  it('stays between 1 s and 1 h', () => {
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 10, startedAt: started }, now)).toBe(1);
    expect(retryAfterSeconds({ instancesTotal: 1_000_000, instancesRestored: 1, startedAt: started }, now)).toBe(3600);
    expect(retryAfterSeconds({ instancesTotal: 1000, instancesRestored: 999, startedAt: now }, now)).toBe(1);
  });

  it('waits for the next poll while S3 restores archived objects', () => {
    const poll = new Date('2026-12-01T10:10:10Z');
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 0, startedAt: started, archive: { nextPollAt: poll } }, now)).toBe(600);
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 0, startedAt: started, archive: { nextPollAt: new Date('2026-12-02T10:00:00Z') } }, now)).toBe(3600);
    // Poll due or done: the copy estimate applies again.
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 2, startedAt: started, archive: { nextPollAt: null } }, now)).toBe(40);
    expect(retryAfterSeconds({ instancesTotal: 10, instancesRestored: 0, startedAt: started, archive: { nextPollAt: started } }, now)).toBe(DEFAULT_RETRY_AFTER_S);
  });
});
