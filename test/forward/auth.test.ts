/** Basic proxy authentication: 407 without or with wrong credentials, for requests and CONNECT; the credential never leaves the proxy. */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPasswordScrypt } from '../../src/forward/password-hash.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { viaProxy } from '../helpers/http.js';
import { connectThrough, curl, hasCurl, startForward, startHttpsOrigin, type HttpsOrigin, type RunningForward } from './helpers.js';

let origin: Origin;
let secure: HttpsOrigin;
let fwd: RunningForward;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(JSON.stringify(req.headers)));
  secure = await startHttpsOrigin();
  const dir = mkdtempSync(join(tmpdir(), 'portico-auth-'));
  const htpasswd = join(dir, 'htpasswd');
  writeFileSync(
    htpasswd,
    [
      '# users managed with htpasswd',
      `sha:{SHA}${createHash('sha1').update('sha-pass').digest('base64')}`,
      'md5:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/', // openssl passwd -apr1 -salt abcdefgh secret
      `bcrypted:${bcrypt.hashSync('bcrypt-pass', 4).replace(/^\$2b\$/, '$2y$')}`,
      'plainfile:plain-pass',
      '',
    ].join('\n'),
  );
  fwd = await startForward({
    connect_ports: [secure.port],
    auth: {
      realm: 'Office "proxy"',
      htpasswd,
      users: {
        alice: 'wonderland',
        scrypted: await hashPasswordScrypt('scrypt-pass', 1024),
        bcrypter: `bcrypt:${bcrypt.hashSync('bc', 4)}`,
      },
    },
    rules: [{ name: 'alice-no-admin', action: 'deny', user: 'alice', host: 'admin.example' }],
  });
});

afterAll(async () => {
  await fwd.close();
  await Promise.all([origin.close(), secure.close()]);
});

describe('proxy authentication', () => {
  it('no credentials → 407 with Proxy-Authenticate: Basic realm', async () => {
    const before = origin.requests.length;
    const r = await viaProxy(fwd.url, `${origin.url}/x`);
    expect(r.status).toBe(407);
    expect(r.headers['proxy-authenticate']).toBe('Basic realm="Office \\"proxy\\"", charset="UTF-8"');
    expect(origin.requests.length).toBe(before);
  });

  it('wrong credentials → 407; unknown user → 407; another scheme → 407', async () => {
    for (const header of [basic('alice', 'wrong'), basic('mallory', 'wonderland'), 'Bearer abc', 'Basic !!!', basic('alice', '')]) {
      const r = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'proxy-authorization': header } });
      expect(r.status, header).toBe(407);
    }
  });

  it('right credentials → 200, and the origin never sees Proxy-Authorization', async () => {
    const r = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'proxy-authorization': basic('alice', 'wonderland') } });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Record<string, string>;
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(Buffer.from('alice:wonderland').toString('base64'));
  });

  it('accepts every stored format: plain, scrypt:, bcrypt:, and htpasswd {SHA}, $apr1$, $2y$ and plain lines', async () => {
    const good: Array<[string, string]> = [
      ['scrypted', 'scrypt-pass'],
      ['bcrypter', 'bc'],
      ['sha', 'sha-pass'],
      ['md5', 'secret'],
      ['bcrypted', 'bcrypt-pass'],
      ['plainfile', 'plain-pass'],
    ];
    for (const [user, password] of good) {
      const ok = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'proxy-authorization': basic(user, password) } });
      expect(ok.status, user).toBe(200);
      // Twice: the second time the remembered credential answers.
      const again = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'proxy-authorization': basic(user, password) } });
      expect(again.status, user).toBe(200);
      const bad = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'proxy-authorization': basic(user, `${password}x`) } });
      expect(bad.status, user).toBe(407);
    }
  });

  it('CONNECT without credentials → 407 with Proxy-Authenticate; with them → tunnel', async () => {
    const denied = await connectThrough(fwd.port, `127.0.0.1:${secure.port}`);
    expect(denied.status).toBe(407);
    expect(denied.headers['proxy-authenticate']).toMatch(/^Basic realm=/);
    const wrong = await connectThrough(fwd.port, `127.0.0.1:${secure.port}`, { 'Proxy-Authorization': basic('alice', 'nope') });
    expect(wrong.status).toBe(407);
    const ok = await connectThrough(fwd.port, `127.0.0.1:${secure.port}`, { 'Proxy-Authorization': basic('alice', 'wonderland') });
    expect(ok.status).toBe(200);
    ok.socket.destroy();
  });

  it('rules can match the authenticated user', async () => {
    const r = await viaProxy(fwd.url, 'http://admin.example/', { headers: { 'proxy-authorization': basic('alice', 'wonderland') } });
    expect(r.status).toBe(403);
    expect(r.body).toContain('alice-no-admin');
  });
});

describe.skipIf(!hasCurl)('curl with --proxy-user', () => {
  it('gets 407 without credentials and the page with them, over plain HTTP and CONNECT', async () => {
    const noCreds = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-x', fwd.url, `${origin.url}/curl`]);
    expect(noCreds.stdout).toBe('407');
    const withCreds = await curl(['-x', fwd.url, '-U', 'alice:wonderland', `${origin.url}/curl`]);
    expect(withCreds.code).toBe(0);
    expect(JSON.parse(withCreds.stdout)['proxy-authorization']).toBeUndefined();
    const tunnel = await curl(['-p', '-x', fwd.url, '-U', 'md5:secret', '-k', `${secure.url}/curl`]);
    expect(tunnel.stdout).toContain('secure hello');
  });
});
