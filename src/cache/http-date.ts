/**
 * HTTP-date parsing (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime formats
 * that recipients must still accept. Anything else is invalid (null) — for Expires that means
 * "already expired" (RFC 9111 §5.3). Day and month names and "GMT" are matched case-insensitively,
 * which the grammar does not require but which harms nothing; all other deviations are rejected.
 */

const IMF_FIXDATE = /^(?:mon|tue|wed|thu|fri|sat|sun), (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const RFC850_DATE = /^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const ASCTIME_DATE = /^(?:mon|tue|wed|thu|fri|sat|sun) ([a-z]{3}) ((?:\d| )\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

const MONTHS: Readonly<Record<string, number>> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

/** Milliseconds since the epoch, or null when `value` is not a valid HTTP-date. */
export function parseHttpDate(value: string | undefined | null): number | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m) return build(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(text);
  if (m) {
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
    let year = 2000 + Number(m[3]);
    if (year > new Date().getUTCFullYear() + 50) year -= 100;
    return build(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  m = ASCTIME_DATE.exec(text);
  if (m) return build(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return null;
}

function build(year: number, monthName: string, day: number, hh: string, mm: string, ss: string): number | null {
  const month = MONTHS[monthName.toLowerCase()];
  if (month === undefined) return null;
  const hours = Number(hh);
  const minutes = Number(mm);
  const seconds = Number(ss);
  if (day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return null;
  const ms = Date.UTC(year, month, day, hours, minutes, Math.min(seconds, 59));
  // Reject dates like 31 Feb that Date.UTC would roll over.
  if (new Date(ms).getUTCDate() !== day) return null;
  return ms;
}
