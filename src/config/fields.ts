/**
 * The config schema's field types, shared by its sections: units parsed into numbers (durations →
 * milliseconds, sizes → bytes), addresses, URLs and CIDRs, each with the message that says what was
 * expected.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration, parseListenAddress, parseSize, type ListenAddress } from './units.js';

export const msg = (expected: string) => ({ error: `expected ${expected}` });

export const positiveInt = z.int(msg('a positive integer')).positive(msg('a positive integer'));
export const nonNegativeInt = z.int(msg('a whole number ≥ 0')).nonnegative(msg('a whole number ≥ 0'));
export const bool = z.boolean(msg('true or false'));
export const text = z.string(msg('a string')).min(1, msg('a non-empty string'));

export const duration = z
  .union([z.string(), z.number()], msg('a duration like "5s", "500ms" or "2m"'))
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration like "5s", "500ms" or "2m"', input: value });
      return z.NEVER;
    }
    return ms;
  });

export const size = z
  .union([z.string(), z.number()], msg('a size like "256mb", "512kb" or a number of bytes'))
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === null) {
      ctx.addIssue({ code: 'custom', message: 'expected a size like "256mb", "512kb" or a number of bytes', input: value });
      return z.NEVER;
    }
    return bytes;
  });

export const listenAddress = (defaultHost: string) =>
  z
    .union([z.string(), z.number()], msg('an address like "8080", "127.0.0.1:8080" or "[::1]:8080"'))
    .transform((value, ctx): ListenAddress => {
      const addr = parseListenAddress(value, defaultHost);
      if (!addr) {
        ctx.addIssue({ code: 'custom', message: 'expected an address like "8080", "127.0.0.1:8080" or "[::1]:8080"', input: value });
        return z.NEVER;
      }
      return addr;
    });

export const httpUrl = z.string(msg('an http:// or https:// URL')).refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}, msg('an http:// or https:// URL with a host and no query, like "http://10.0.0.5:3000"'));

export const cidr = z.string(msg('a CIDR like "10.0.0.0/8" or an address')).refine(isCidr, msg('a CIDR like "10.0.0.0/8" or an address'));
export const oneOrMany = <T extends z.ZodType>(schema: T) => z.union([schema, z.array(schema)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

export function isCidr(value: string): boolean {
  const [addr, bits, extra] = value.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** True for 127.0.0.0/8, ::1, IPv4-mapped loopback and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}
