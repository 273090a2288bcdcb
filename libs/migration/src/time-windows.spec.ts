import { describe, expect, it } from 'vitest';
import { inWindows, isTimeZone, minuteOfDay } from './time-windows.js';

const at = (iso: string) => new Date(iso);

describe('time windows', () => {
  it('no windows: always', () => {
    expect(inWindows(at('2026-01-01T12:00:00Z'), [])).toBe(true);
  });

  it('a day window: start inclusive, end exclusive', () => {
    const w = [{ start: '09:00', end: '17:00' }];
    expect(inWindows(at('2026-01-01T08:59:00Z'), w)).toBe(false);
    expect(inWindows(at('2026-01-01T09:00:00Z'), w)).toBe(true);
    expect(inWindows(at('2026-01-01T16:59:00Z'), w)).toBe(true);
    expect(inWindows(at('2026-01-01T17:00:00Z'), w)).toBe(false);
  });

  it('a night window runs over midnight; several windows', () => {
    const w = [{ start: '20:00', end: '06:00' }, { start: '12:00', end: '13:00' }];
    expect(inWindows(at('2026-01-01T23:30:00Z'), w)).toBe(true);
    expect(inWindows(at('2026-01-01T05:59:00Z'), w)).toBe(true);
    expect(inWindows(at('2026-01-01T06:00:00Z'), w)).toBe(false);
    expect(inWindows(at('2026-01-01T12:30:00Z'), w)).toBe(true);
    expect(inWindows(at('2026-01-01T19:59:00Z'), w)).toBe(false);
  });

  it('start = end is the whole day', () => {
    expect(inWindows(at('2026-01-01T03:00:00Z'), [{ start: '00:00', end: '00:00' }])).toBe(true);
  });

  it('in a time zone (Europe/Berlin is UTC+1 in January, UTC+2 in July)', () => {
    expect(minuteOfDay(at('2026-01-15T19:30:00Z'), 'Europe/Berlin')).toBe(20 * 60 + 30);
    expect(minuteOfDay(at('2026-07-15T19:30:00Z'), 'Europe/Berlin')).toBe(21 * 60 + 30);
    const nights = [{ start: '20:00', end: '06:00' }];
    expect(inWindows(at('2026-01-15T19:30:00Z'), nights, 'Europe/Berlin')).toBe(true);
    expect(inWindows(at('2026-01-15T19:30:00Z'), nights, 'UTC')).toBe(false);
  });

  it('recognises IANA time zones', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });
});
