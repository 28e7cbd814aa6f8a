/**
 * Blocklist files: one domain per line, in the formats the common lists use. Every entry means the
 * domain and all its subdomains, except `*.name`, which means subdomains only.
 *
 *   example.com                  a plain domain list
 *   0.0.0.0 ads.example.com      hosts-file format (any address; several names per line allowed)
 *   127.0.0.1 a.example b.example
 *   ||tracker.example^           Adblock-style domain anchors (lines with options are skipped)
 *   *.example.net / .example.net wildcard / domain forms
 *   # comment, ! comment         comments; text after " #" is ignored too
 *
 * Names a hosts file maps for the machine itself (localhost, broadcasthost, …) are never taken as
 * entries.
 */
import { isIP } from 'node:net';
import { isHostName, normalizeHost } from './host-matcher.js';

export interface HostsList {
  /** Entries matching the domain and its subdomains. */
  readonly domains: string[];
  /** Entries matching only strict subdomains (`*.name`). */
  readonly subdomainsOf: string[];
  /** Lines that were not understood (count and the first one, for a warning). */
  readonly skipped: number;
  readonly firstSkipped: { line: number; text: string } | undefined;
}

const LOCAL_NAMES: ReadonlySet<string> = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

export function parseHostsList(text: string): HostsList {
  const domains: string[] = [];
  const subdomainsOf: string[] = [];
  let skipped = 0;
  let firstSkipped: HostsList['firstSkipped'];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === '' || line.startsWith('!') || line.startsWith('[')) continue;
    const tokens = line.split(/\s+/);
    const names = tokens.length > 1 && isIP(tokens[0]!) !== 0 ? tokens.slice(1) : tokens.length === 1 ? tokens : null;
    let ok = names !== null;
    if (names) {
      for (const raw of names) {
        const entry = classify(raw);
        if (entry === null) {
          ok = false;
        } else if (entry !== 'local') {
          (entry.sub ? subdomainsOf : domains).push(entry.name);
        }
      }
    }
    if (!ok) {
      skipped++;
      firstSkipped ??= { line: i + 1, text: lines[i]!.trim().slice(0, 80) };
    }
  }
  return { domains, subdomainsOf, skipped, firstSkipped };
}

function classify(raw: string): { name: string; sub: boolean } | 'local' | null {
  let token = raw.toLowerCase();
  let sub = false;
  if (token.startsWith('||')) {
    if (!token.endsWith('^')) return null;
    token = token.slice(2, -1);
  } else if (token.startsWith('*.')) {
    sub = true;
    token = token.slice(2);
  } else if (token.startsWith('.')) {
    token = token.slice(1);
  }
  const name = normalizeHost(token);
  if (LOCAL_NAMES.has(name)) return 'local';
  return isHostName(name) ? { name, sub } : null;
}
