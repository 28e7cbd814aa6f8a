/**
 * HTTP/2 through the real CLI, where the supervisor accepts the TCP connections and hands them to a
 * worker (`server.emit('connection', socket)`): h2 and HTTP/1.1 on the TLS listener, h2c with prior
 * knowledge and HTTP/1.1 on the plain one, with `--workers 1` and `--workers 2`.
 */
import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startCli } from '../helpers/cli.js';
import { h2Close, h2Connect, h2Request } from '../helpers/h2.js';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { selfSignedCert, type CertFiles } from '../helpers/tls.js';

const cleanup = cleanupAfterEach();
let origin: Origin;
let tls: CertFiles;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.setHeader('cache-control', 'max-age=60');
    res.end(`hello ${req.url} over ${req.headers['x-forwarded-proto']}`);
  });
  tls = await selfSignedCert();
});

afterAll(async () => {
  await origin.close();
});

function configFile(workers: number): string {
  const file = join(mkdtempSync(join(tmpdir(), 'portico-h2-')), 'portico.yaml');
  writeFileSync(
    file,
    `workers: ${workers}
reverse:
  listen: 127.0.0.1:0
  tls_listen: 127.0.0.1:0
  tls: { cert: ${tls.certPath}, key: ${tls.keyPath} }
  h2c: true
  routes: [{ path: /, pool: web }]
pools:
  web:
    servers: [{ url: ${origin.url} }]
log:
  stats_interval: 0
`,
  );
  return file;
}

describe('shutdown', () => {
  it('sends GOAWAY to open HTTP/2 connections, lets the stream in flight finish, and exits', async () => {
    const slow = await startOrigin((_req, res) => setTimeout(() => res.end('finished'), 300));
    const file = configFile(1).replace(/portico\.yaml$/, 'slow.yaml');
    writeFileSync(file, `reverse:
  tls_listen: 127.0.0.1:0
  tls: { cert: ${tls.certPath}, key: ${tls.keyPath} }
  routes: [{ path: /, pool: web }]
pools:
  web:
    servers: [{ url: ${slow.url} }]
log:
  stats_interval: 0
`);
    const cli = await startCli(['--config', file], ['reverseTls']);
    cleanup.push(async () => {
      await cli.stop();
      await slow.close();
    });
    const session = await h2Connect(cli.urls.reverseTls!.replace('http:', 'https:'));
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code) => resolve(code)));
    const inFlight = h2Request(session, '/slow');
    await new Promise((r) => setTimeout(r, 100));
    cli.child.kill('SIGTERM');
    expect(await goaway).toBe(0);
    const reply = await inFlight;
    expect(reply.text).toBe('finished');
    expect(await cli.exited).toBe(0);
  });
});

describe.each([1, 2])('through the CLI with --workers %i', (workers) => {
  it('serves h2 and HTTP/1.1 on the TLS listener and h2c and HTTP/1.1 on the plain one', async () => {
    const cli = await startCli(['--config', configFile(workers)], ['reverse', 'reverseTls']);
    cleanup.push(cli.stop);
    const tlsUrl = cli.urls.reverseTls!.replace('http:', 'https:');
    const plainUrl = cli.urls.reverse!;
    // Several connections, so that with two workers both serve some.
    for (let i = 0; i < 4; i++) {
      const session = await h2Connect(tlsUrl);
      expect(session.alpnProtocol).toBe('h2');
      const replies = await Promise.all([h2Request(session, `/a${i}`), h2Request(session, `/a${i}`), h2Request(session, `/b${i}`)]);
      await h2Close(session);
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(replies[2]!.text).toBe(`hello /b${i} over https`);
    }
    const h2c = await h2Connect(plainUrl);
    const overH2c = await h2Request(h2c, '/c');
    await h2Close(h2c);
    expect(overH2c.text).toBe('hello /c over http');
    expect((await request(`${tlsUrl}/d`)).body).toBe('hello /d over https');
    expect((await request(`${plainUrl}/e`)).body).toBe('hello /e over http');
    expect(cli.stderr()).not.toMatch(/error|warning|exception/i);
    expect(cli.stderr()).toMatch(/reverse  https:\/\/[^ ]+ +\(h2, http\/1.1\)/);
    expect(cli.stderr()).toMatch(/reverse  http:\/\/[^ ]+ +\(http\/1.1, h2c\)/);
  });
});
