/** Small helpers over flat raw header lists (`[name, value, name, value, …]`). */
import type { IncomingHttpHeaders } from 'node:http';

/** Lower-case header object for a raw list: repeated fields joined with ", ", Set-Cookie kept as a list. */
export function headerMap(raw: readonly string[]): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'set-cookie') {
      (out['set-cookie'] ??= []).push(value);
    } else {
      const prev = out[name] as string | undefined;
      out[name] = prev === undefined ? value : `${prev}, ${value}`;
    }
  }
  return out;
}

/** Every value of `name` (lower-case), one per field line. */
export function fieldLines(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  }
  return out;
}

/** A copy of `raw` without the fields whose lower-case names are in `names`. */
export function withoutFields(raw: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!names.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** A copy of `raw` keeping only the fields whose lower-case names are in `names`. */
export function onlyFields(raw: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (names.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The first value of a header in a Node header object, as a string. */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Byte size of a raw header list as it would be kept in memory (names, values and some overhead). */
export function headerBytes(raw: readonly string[]): number {
  let n = 0;
  for (const s of raw) n += Buffer.byteLength(s) + 8;
  return n;
}
