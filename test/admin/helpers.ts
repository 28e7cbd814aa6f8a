/** Helpers for the admin tests: JSON calls to the admin API, config files on disk. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminHandler } from '../../src/admin/admin-handler.js';
import { silentLogger } from '../../src/core/log.js';
import type { Portico } from '../../src/server.js';
import { request, type Reply, type RequestOptions } from '../helpers/http.js';

export interface JsonReply<T = Record<string, unknown>> extends Reply {
  readonly json: T;
}

/** A request whose answer is JSON. */
export async function api<T = Record<string, any>>(url: string, options: RequestOptions = {}): Promise<JsonReply<T>> {
  const reply = await request(url, options);
  let json: T;
  try {
    json = JSON.parse(reply.body) as T;
  } catch {
    throw new Error(`expected JSON from ${url}, got ${reply.status}: ${reply.body.slice(0, 200)}`);
  }
  return { ...reply, json };
}

/** POST with a JSON body (or none). */
export function post<T = Record<string, any>>(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonReply<T>> {
  return api<T>(url, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A fresh temp directory with `name` written in it; returns the file's path. */
export function writeTempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'portico-admin-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Sends `n` requests one after another; returns the bodies. */
export async function bodies(url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await request(url)).body);
  return out;
}

/**
 * A second admin listener for `portico` that behaves as one reachable beyond loopback would (every
 * API call needs the token), while the tests still only listen on 127.0.0.1.
 */
export async function exposedAdmin(portico: Portico): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(new AdminHandler(portico, { exposed: true, log: silentLogger, version: 'test' }).handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
