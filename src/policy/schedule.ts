/**
 * Time-of-day windows (`09:00-17:00`, may wrap midnight: `22:00-06:00`) and day sets (`mon-fri`,
 * `sat,sun`, `fri-mon`), both in the process's local time. Start is inclusive, end exclusive; a window
 * whose start equals its end covers the whole day. Days and time are checked independently against the
 * same instant (as Squid's `time` ACL does).
 */

export interface TimeWindow {
  /** Minutes since local midnight. */
  readonly start: number;
  readonly end: number;
}

export function parseTimeWindow(text: string): TimeWindow | null {
  const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (Number(m[2]) > 59 || Number(m[4]) > 59 || start >= 24 * 60 || end > 24 * 60) return null;
  return { start, end };
}

export function inTimeWindow(window: TimeWindow, minuteOfDay: number): boolean {
  const { start, end } = window;
  if (start === end) return true;
  return start < end ? minuteOfDay >= start && minuteOfDay < end : minuteOfDay >= start || minuteOfDay < end;
}

/** Day names in Date#getDay() order. */
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** `mon-fri`, `sat,sun`, `fri-mon` (wraps) → bit mask over getDay() (bit 0 = Sunday); null if invalid. */
export function parseDays(text: string): number | null {
  let mask = 0;
  for (const part of text.toLowerCase().split(',')) {
    const [from, to, extra] = part.trim().split('-').map((s) => s.trim());
    if (extra !== undefined) return null;
    const a = DAY_NAMES.indexOf(from as (typeof DAY_NAMES)[number]);
    const b = to === undefined ? a : DAY_NAMES.indexOf(to as (typeof DAY_NAMES)[number]);
    if (a < 0 || b < 0) return null;
    for (let d = a; ; d = (d + 1) % 7) {
      mask |= 1 << d;
      if (d === b) break;
    }
  }
  return mask;
}

export function onDay(mask: number, day: number): boolean {
  return (mask & (1 << day)) !== 0;
}
