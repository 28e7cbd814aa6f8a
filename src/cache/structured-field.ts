/**
 * A Structured Field Dictionary parser (RFC 8941 §4.2.2, with RFC 9651 dates), used for targeted
 * cache-control fields such as CDN-Cache-Control (RFC 9213 §2.1). Parameters are parsed for syntax
 * and then dropped: no cache directive uses them. Returns null when the value does not parse, in
 * which case the whole field is to be ignored.
 */

export type SfBareItem =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'decimal'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'token'; readonly value: string }
  | { readonly type: 'binary'; readonly value: string }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'date'; readonly value: number }
  | { readonly type: 'inner-list'; readonly value: readonly SfBareItem[] };

class SfSyntaxError extends Error {}

/** Parses a dictionary; duplicate keys keep the last value, as RFC 8941 says. */
export function parseSfDictionary(input: string): Map<string, SfBareItem> | null {
  try {
    return new Parser(input).dictionary();
  } catch (err) {
    if (err instanceof SfSyntaxError) return null;
    throw err;
  }
}

const TRUE: SfBareItem = { type: 'boolean', value: true };

function isLcAlpha(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || isLcAlpha(c);
}
/** tchar (RFC 9110 §5.6.2) plus ':' and '/', as sf-token allows. */
function isTokenChar(c: number): boolean {
  return isAlpha(c) || isDigit(c) || '!#$%&\'*+-.^_`|~:/'.includes(String.fromCharCode(c));
}

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  dictionary(): Map<string, SfBareItem> {
    const out = new Map<string, SfBareItem>();
    this.skipSp();
    if (this.pos >= this.s.length) throw new SfSyntaxError('empty');
    while (this.pos < this.s.length) {
      const key = this.key();
      let value: SfBareItem;
      if (this.peek() === 0x3d /* = */) {
        this.pos++;
        value = this.peek() === 0x28 /* ( */ ? this.innerList() : this.bareItem();
      } else {
        value = TRUE;
      }
      this.parameters();
      out.delete(key);
      out.set(key, value);
      this.skipOws();
      if (this.pos >= this.s.length) return out;
      if (this.peek() !== 0x2c /* , */) throw new SfSyntaxError('expected ","');
      this.pos++;
      this.skipOws();
      if (this.pos >= this.s.length) throw new SfSyntaxError('trailing ","');
    }
    return out;
  }

  private peek(): number {
    return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1;
  }

  private skipSp(): void {
    while (this.peek() === 0x20) this.pos++;
  }

  private skipOws(): void {
    while (this.peek() === 0x20 || this.peek() === 0x09) this.pos++;
  }

  private key(): string {
    const c = this.peek();
    if (!isLcAlpha(c) && c !== 0x2a /* * */) throw new SfSyntaxError('bad key');
    const start = this.pos++;
    for (;;) {
      const d = this.peek();
      if (isLcAlpha(d) || isDigit(d) || d === 0x5f || d === 0x2d || d === 0x2e || d === 0x2a) this.pos++;
      else break;
    }
    return this.s.slice(start, this.pos);
  }

  private parameters(): void {
    while (this.peek() === 0x3b /* ; */) {
      this.pos++;
      this.skipSp();
      this.key();
      if (this.peek() === 0x3d) {
        this.pos++;
        this.bareItem();
      }
    }
  }

  private innerList(): SfBareItem {
    this.pos++; // (
    const items: SfBareItem[] = [];
    for (;;) {
      this.skipSp();
      if (this.peek() === 0x29 /* ) */) {
        this.pos++;
        return { type: 'inner-list', value: items };
      }
      items.push(this.bareItem());
      this.parameters();
      const c = this.peek();
      if (c !== 0x20 && c !== 0x29) throw new SfSyntaxError('bad inner list');
    }
  }

  private bareItem(): SfBareItem {
    const c = this.peek();
    if (c === 0x2d || isDigit(c)) return this.number();
    if (c === 0x22 /* " */) return this.string();
    if (c === 0x2a || isAlpha(c)) return this.token();
    if (c === 0x3a /* : */) return this.binary();
    if (c === 0x3f /* ? */) return this.boolean();
    if (c === 0x40 /* @ */) {
      this.pos++;
      const n = this.number();
      if (n.type !== 'integer') throw new SfSyntaxError('bad date');
      return { type: 'date', value: n.value };
    }
    throw new SfSyntaxError('bad item');
  }

  private number(): SfBareItem {
    let sign = 1;
    if (this.peek() === 0x2d) {
      sign = -1;
      this.pos++;
    }
    const start = this.pos;
    let dot = -1;
    for (;;) {
      const c = this.peek();
      if (isDigit(c)) this.pos++;
      else if (c === 0x2e && dot < 0) {
        if (this.pos - start > 12) throw new SfSyntaxError('decimal too long');
        dot = this.pos++;
      } else break;
      const len = this.pos - start;
      if (dot < 0 ? len > 15 : len > 16) throw new SfSyntaxError('number too long');
    }
    const text = this.s.slice(start, this.pos);
    if (text === '' || !isDigit(text.charCodeAt(0))) throw new SfSyntaxError('bad number');
    if (dot < 0) return { type: 'integer', value: sign * Number(text) };
    const frac = this.pos - dot - 1;
    if (frac < 1 || frac > 3) throw new SfSyntaxError('bad decimal');
    return { type: 'decimal', value: sign * Number(text) };
  }

  private string(): SfBareItem {
    this.pos++;
    let out = '';
    for (;;) {
      if (this.pos >= this.s.length) throw new SfSyntaxError('unterminated string');
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x5c /* \ */) {
        const next = this.peek();
        if (next !== 0x22 && next !== 0x5c) throw new SfSyntaxError('bad escape');
        out += String.fromCharCode(next);
        this.pos++;
      } else if (c === 0x22) {
        return { type: 'string', value: out };
      } else if (c < 0x20 || c > 0x7e) {
        throw new SfSyntaxError('bad string char');
      } else {
        out += String.fromCharCode(c);
      }
    }
  }

  private token(): SfBareItem {
    const start = this.pos++;
    while (isTokenChar(this.peek())) this.pos++;
    return { type: 'token', value: this.s.slice(start, this.pos) };
  }

  private binary(): SfBareItem {
    const end = this.s.indexOf(':', this.pos + 1);
    if (end < 0) throw new SfSyntaxError('unterminated binary');
    const body = this.s.slice(this.pos + 1, end);
    if (!/^[A-Za-z0-9+/]*=*$/.test(body)) throw new SfSyntaxError('bad binary');
    this.pos = end + 1;
    return { type: 'binary', value: body };
  }

  private boolean(): SfBareItem {
    this.pos++;
    const c = this.peek();
    if (c !== 0x30 && c !== 0x31) throw new SfSyntaxError('bad boolean');
    this.pos++;
    return { type: 'boolean', value: c === 0x31 };
  }
}
