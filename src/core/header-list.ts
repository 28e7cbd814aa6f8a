/** Small helpers over flat raw header lists (`[name, value, name, value, …]`). */

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

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string, name: string): string | null {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
