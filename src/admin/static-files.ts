/**
 * The dashboard's files (src/admin/static, shipped in the package as they are: no build step). Read
 * once, then served from memory.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

/** From src/admin (tests) and dist/admin (the package) alike. */
const STATIC_DIR = new URL('../../src/admin/static/', import.meta.url);

const FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

const loaded = new Map<string, Buffer>();

function load(file: string): Buffer {
  let body = loaded.get(file);
  if (body === undefined) {
    body = readFileSync(new URL(file, STATIC_DIR));
    loaded.set(file, body);
  }
  return body;
}

export function isStaticPath(path: string): boolean {
  return Object.hasOwn(FILES, path);
}

/** Serves one of the dashboard's files (the path must satisfy isStaticPath). */
export function serveStatic(path: string, method: string, res: ServerResponse): void {
  const entry = FILES[path]!;
  const body = load(entry.file);
  res.writeHead(200, {
    'content-type': entry.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    ...SECURITY_HEADERS,
  });
  res.end(method === 'HEAD' ? undefined : body);
}
