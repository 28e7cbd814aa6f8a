/**
 * Vary (RFC 9110 §12.5.5, RFC 9111 §4.1): which request headers select a stored response, and how
 * their values are normalised before comparison (field lines combined, whitespace around list
 * commas removed, case folded for fields whose values are case-insensitive).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { cookieValue } from '../core/header-list.js';

/** The lower-case field names a response varies on, in order and without duplicates; '*' when it varies on everything. */
export type VaryNames = readonly string[] | '*';

export const NO_VARY: readonly string[] = Object.freeze([]);

/** Parses all Vary field lines (joined with ","). */
export function parseVary(value: string | readonly string[] | undefined): VaryNames {
  if (value === undefined) return NO_VARY;
  const text = typeof value === 'string' ? value : value.join(',');
  if (text.trim() === '') return NO_VARY;
  const names: string[] = [];
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '') continue;
    if (name === '*') return '*';
    if (!names.includes(name)) names.push(name);
  }
  return names.length === 0 ? NO_VARY : names;
}

/** Fields whose values compare case-insensitively (tokens, language tags, media ranges). */
const CASE_INSENSITIVE: ReadonlySet<string> = new Set(['accept', 'accept-charset', 'accept-encoding', 'accept-language']);

/** Preference lists whose member order carries no meaning (only qvalues do): sorted for comparison. */
const UNORDERED_PREFERENCES: ReadonlySet<string> = new Set(['accept-charset', 'accept-encoding', 'accept-language']);

const AROUND_COMMA = /[ \t]*,[ \t]*/g;
const AROUND_PARAM = /[ \t]*([;=])[ \t]*/g;
const RUNS_OF_WS = /[ \t]+/g;
const QVALUE = /;q=([0-9.]+)/;

/**
 * The normalised value of one selecting header in a request; null when the request lacks it. A name
 * `cookie:NAME` (an operator's key rule, see cache-rule.ts) selects on one cookie's value.
 */
export function selectingValue(name: string, headers: IncomingHttpHeaders): string | null {
  if (name.startsWith('cookie:')) return headers.cookie === undefined ? null : cookieValue(headers.cookie, name.slice(7));
  const raw = headers[name];
  if (raw === undefined) return null;
  if (name === 'accept-encoding') return encodingBucket(Array.isArray(raw) ? raw.join(',') : raw);
  let value = Array.isArray(raw) ? raw.join(',') : raw;
  if (value.indexOf(',') >= 0) value = value.replace(AROUND_COMMA, ',');
  value = value.trim();
  if (value.indexOf(' ') >= 0 || value.indexOf('\t') >= 0) value = value.replace(RUNS_OF_WS, ' ');
  if (!CASE_INSENSITIVE.has(name)) return value;
  value = value.toLowerCase();
  return UNORDERED_PREFERENCES.has(name) && value.indexOf(',') >= 0 ? sortPreferences(value) : value;
}

/** Content codings a response may come in that tell clients apart (others are ignored). */
const KNOWN_CODINGS = ['br', 'deflate', 'gzip', 'zstd'] as const;

/**
 * Accept-Encoding reduced to the set of known codings the client accepts (`br,gzip`, `gzip`, '' for
 * none): browsers send these in many spellings and orders, and a response fit for one client is fit for
 * every client that accepts the same codings. Two clients that accept different sets never share.
 */
export function encodingBucket(value: string): string {
  let star: boolean | null = null;
  const accepted = new Map<string, boolean>();
  for (const member of value.toLowerCase().split(',')) {
    const [coding = '', ...params] = member.split(';').map((p) => p.trim());
    if (coding === '') continue;
    const q = params.find((p) => p.startsWith('q='));
    const ok = q === undefined || Number(q.slice(2)) > 0;
    const name = coding === 'x-gzip' ? 'gzip' : coding;
    if (name === '*') star = ok;
    else accepted.set(name, ok);
  }
  return KNOWN_CODINGS.filter((c) => accepted.get(c) ?? star === true).join(',');
}

/** `en, de;q=0.5, fr` → `en,fr,de;q=0.5`: highest qvalue first, then alphabetical. */
function sortPreferences(value: string): string {
  const members = value.replace(AROUND_PARAM, '$1').split(',').filter((m) => m !== '');
  const weighted = members.map((m) => {
    const q = QVALUE.exec(m);
    return { m, q: q ? Number(q[1]) : 1 };
  });
  weighted.sort((a, b) => b.q - a.q || (a.m < b.m ? -1 : a.m > b.m ? 1 : 0));
  return weighted.map((w) => w.m).join(',');
}

/** The normalised selecting values of a request for `names` (null for absent headers). */
export function selectingValues(names: readonly string[], headers: IncomingHttpHeaders): (string | null)[] {
  const out: (string | null)[] = new Array<string | null>(names.length);
  for (let i = 0; i < names.length; i++) out[i] = selectingValue(names[i]!, headers);
  return out;
}

/** True when the request's selecting values equal the stored ones. */
export function varyMatches(names: readonly string[], stored: readonly (string | null)[], headers: IncomingHttpHeaders): boolean {
  for (let i = 0; i < names.length; i++) {
    if (selectingValue(names[i]!, headers) !== stored[i]) return false;
  }
  return true;
}

/** The secondary key: the names and values, in a string that cannot collide across different sets. */
export function variantKey(names: readonly string[], values: readonly (string | null)[]): string {
  if (names.length === 0) return '';
  let key = '';
  for (let i = 0; i < names.length; i++) {
    const v = values[i];
    key += `${names[i]}${v === null || v === undefined ? '\u0000' : `=${JSON.stringify(v)}`}\n`;
  }
  return key;
}
