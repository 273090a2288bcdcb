/**
 * Time windows in which a migration may run (e.g. nights): `HH:MM`-`HH:MM` in an IANA time zone;
 * a window whose end is before its start runs over midnight; start = end is the whole day. No
 * windows: always. Pure functions.
 */
export interface TimeWindow {
  start: string;
  end: string;
}

export const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Minutes since midnight of `at` in the time zone. */
export function minuteOfDay(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const m = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return h * 60 + m;
}

export function inWindows(at: Date, windows: TimeWindow[], timeZone = 'UTC'): boolean {
  if (!windows.length) return true;
  const now = minuteOfDay(at, timeZone);
  return windows.some(({ start, end }) => {
    const s = minutes(start);
    const e = minutes(end);
    if (s === e) return true;
    return s < e ? now >= s && now < e : now >= s || now < e;
  });
}

export function isTimeZone(tz: unknown): tz is string {
  if (typeof tz !== 'string' || !tz) return false;
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
