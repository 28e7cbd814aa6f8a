/** Finds one cookie's value in a Cookie header by index, without splitting or allocating. */

const SPACE = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
const QUOTE = 0x22;

/** The index where the value of cookie `name` starts (inside quotes, if quoted), or -1 when absent. */
export function cookieValueStart(header: string, name: string): number {
  const length = header.length;
  let i = 0;
  while (i < length) {
    let c = header.charCodeAt(i);
    while (c === SPACE || c === TAB) c = header.charCodeAt(++i);
    if (header.startsWith(name, i) && header.charCodeAt(i + name.length) === EQUALS) {
      const start = i + name.length + 1;
      return header.charCodeAt(start) === QUOTE ? start + 1 : start;
    }
    const semicolon = header.indexOf(';', i);
    if (semicolon === -1) return -1;
    i = semicolon + 1;
  }
  return -1;
}

/** The index just past the value that starts at `start` (trailing spaces and closing quote excluded). */
export function cookieValueEnd(header: string, start: number): number {
  const semicolon = header.indexOf(';', start);
  let end = semicolon === -1 ? header.length : semicolon;
  while (end > start && (header.charCodeAt(end - 1) === SPACE || header.charCodeAt(end - 1) === TAB)) end--;
  if (end > start && start > 0 && header.charCodeAt(start - 1) === QUOTE && header.charCodeAt(end - 1) === QUOTE) end--;
  return end;
}

/** Whether cookie `name` in `header` has exactly the value `value`. */
export function cookieEquals(header: string, name: string, value: string): boolean {
  const start = cookieValueStart(header, name);
  if (start < 0) return false;
  return cookieValueEnd(header, start) - start === value.length && header.startsWith(value, start);
}
