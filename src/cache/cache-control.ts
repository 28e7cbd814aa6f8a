/**
 * Cache-Control parsing (RFC 9111 §5.2): `#( token [ "=" ( token / quoted-string ) ] )`.
 *
 * - Directive names are case-insensitive; values may be tokens or quoted strings (commas and `=`
 *   inside quotes belong to the value, so `extension="max-age=100"` is not a max-age).
 * - A malformed element (`max-age =100`, `max-age= 100`, junk after a quoted string) still counts as
 *   the directive it names, with an invalid argument: a restrictive flag like `no-store` still
 *   applies, a malformed `max-age` makes the response stale (§4.2.1).
 * - A directive given twice with different arguments is "conflicting": its argument is treated as
 *   invalid (stale for delta-seconds, unqualified for no-cache/private) — the most restrictive of
 *   the readings §4.2.1 allows.
 *
 * Targeted fields (RFC 9213) are Structured Field Dictionaries and are parsed with that grammar into
 * the same shape; a targeted field that does not parse is ignored as a whole (null).
 */
import { parseSfDictionary } from './structured-field.js';

/** The argument of a directive: a string, null for none, or INVALID. */
export const INVALID: unique symbol = Symbol('invalid directive argument');
export type DirectiveArgument = string | null | typeof INVALID;

/** delta-seconds values larger than this are taken as this (RFC 9111 §1.2.2). */
export const MAX_DELTA_SECONDS = 2147483648;

export class CacheDirectives {
  static readonly EMPTY = new CacheDirectives(new Map());

  constructor(private readonly args: ReadonlyMap<string, DirectiveArgument>) {}

  get size(): number {
    return this.args.size;
  }

  has(name: string): boolean {
    return this.args.has(name);
  }

  argument(name: string): DirectiveArgument | undefined {
    return this.args.get(name);
  }

  /**
   * A delta-seconds argument: undefined when the directive is absent, NaN when it is present but its
   * argument is missing, malformed or conflicting, else whole seconds (capped at 2^31).
   */
  seconds(name: string): number | undefined {
    const arg = this.args.get(name);
    if (arg === undefined) return undefined;
    return parseDeltaSeconds(arg);
  }

  /**
   * For no-cache and private: undefined when absent, null for the unqualified form (also when the
   * argument is malformed), else the lower-case field names it lists.
   */
  fieldNames(name: string): readonly string[] | null | undefined {
    const arg = this.args.get(name);
    if (arg === undefined) return undefined;
    if (arg === null || arg === INVALID) return null;
    const names: string[] = [];
    for (const part of arg.split(',')) {
      const n = part.trim().toLowerCase();
      if (n !== '') names.push(n);
    }
    return names.length === 0 ? null : names;
  }

  names(): IterableIterator<string> {
    return this.args.keys();
  }
}

export function parseDeltaSeconds(arg: DirectiveArgument): number {
  if (arg === null || arg === INVALID || arg.length === 0) return Number.NaN;
  for (let i = 0; i < arg.length; i++) {
    const c = arg.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return Number.NaN;
  }
  const n = Number(arg);
  return n > MAX_DELTA_SECONDS ? MAX_DELTA_SECONDS : n;
}

function isTchar(c: number): boolean {
  // ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) return true;
  switch (c) {
    case 0x21: case 0x23: case 0x24: case 0x25: case 0x26: case 0x27: case 0x2a: case 0x2b:
    case 0x2d: case 0x2e: case 0x5e: case 0x5f: case 0x60: case 0x7c: case 0x7e:
      return true;
    default:
      return false;
  }
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Parses one or more Cache-Control field values (several field lines may be passed joined with ","
 * or as an array).
 */
export function parseCacheControl(value: string | readonly string[] | undefined): CacheDirectives {
  if (value === undefined) return CacheDirectives.EMPTY;
  const text = typeof value === 'string' ? value : value.join(',');
  if (text.length === 0) return CacheDirectives.EMPTY;
  const args = new Map<string, DirectiveArgument>();
  const n = text.length;
  let i = 0;
  while (i < n) {
    // Skip OWS and empty list elements.
    let c = text.charCodeAt(i);
    if (isOws(c) || c === 0x2c) {
      i++;
      continue;
    }
    // Name.
    const nameStart = i;
    while (i < n && isTchar(text.charCodeAt(i))) i++;
    if (i === nameStart) {
      // Not a token: skip the element (respecting quotes).
      i = skipElement(text, i);
      continue;
    }
    const name = text.slice(nameStart, i).toLowerCase();
    let arg: DirectiveArgument = null;
    c = i < n ? text.charCodeAt(i) : -1;
    if (c === 0x3d /* = */) {
      i++;
      c = i < n ? text.charCodeAt(i) : -1;
      if (c === 0x22 /* " */) {
        const q = readQuoted(text, i);
        arg = q.value;
        i = q.end;
      } else {
        const valueStart = i;
        while (i < n && isTchar(text.charCodeAt(i))) i++;
        arg = i === valueStart ? INVALID : text.slice(valueStart, i);
      }
    }
    // Only OWS may follow before the next comma.
    let j = i;
    while (j < n && isOws(text.charCodeAt(j))) j++;
    if (j < n && text.charCodeAt(j) !== 0x2c) {
      arg = INVALID;
      i = skipElement(text, j);
    } else {
      i = j;
    }
    record(args, name, arg);
  }
  return new CacheDirectives(args);
}

function record(args: Map<string, DirectiveArgument>, name: string, arg: DirectiveArgument): void {
  const prev = args.get(name);
  if (prev === undefined) {
    args.set(name, arg);
  } else if (prev !== arg) {
    args.set(name, INVALID);
  }
}

function readQuoted(text: string, start: number): { value: string | typeof INVALID; end: number } {
  let out = '';
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */ && i + 1 < text.length) {
      out += text[i + 1];
      i += 2;
    } else if (c === 0x22) {
      return { value: out, end: i + 1 };
    } else {
      out += text[i];
      i++;
    }
  }
  return { value: INVALID, end: i };
}

/** Index just past the current list element (the next top-level comma, or the end). */
function skipElement(text: string, start: number): number {
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x2c) return i;
    if (c === 0x22) {
      i = readQuoted(text, i).end;
      continue;
    }
    i++;
  }
  return i;
}

/**
 * Parses a targeted cache-control field (RFC 9213) as a Structured Field Dictionary. Returns null when
 * the field is absent, empty or invalid (the cache then falls back to Cache-Control). Arguments of a
 * type a directive cannot take (a decimal or string max-age) become INVALID.
 */
export function parseTargetedCacheControl(value: string | readonly string[] | undefined): CacheDirectives | null {
  if (value === undefined) return null;
  const text = typeof value === 'string' ? value : value.join(', ');
  if (text.trim() === '') return null;
  const dict = parseSfDictionary(text.trim());
  if (dict === null) return null;
  const args = new Map<string, DirectiveArgument>();
  for (const [key, item] of dict) {
    switch (item.type) {
      case 'boolean':
        // `key` alone is ?1; an explicit ?0 means "not set".
        if (item.value) args.set(key, null);
        break;
      case 'integer':
        args.set(key, item.value >= 0 ? String(item.value) : INVALID);
        break;
      case 'string':
        // Only the field-name lists of private / no-cache may be strings.
        args.set(key, key === 'private' || key === 'no-cache' ? item.value : INVALID);
        break;
      case 'inner-list':
        args.set(
          key,
          key === 'private' || key === 'no-cache'
            ? item.value.map((v) => (v.type === 'token' || v.type === 'string' ? v.value : '')).join(', ')
            : INVALID,
        );
        break;
      default:
        args.set(key, INVALID);
    }
  }
  return new CacheDirectives(args);
}
