/** Pure pieces of the forward proxy: target parsing, password formats, proxy environment, PAC, config errors. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/load.js';
import { htpasswdVerifier, md5Crypt, userPasswordVerifier } from '../../src/forward/password-hash.js';
import { pacScript, proxyAddressFor } from '../../src/forward/pac.js';
import { ProxyAuthenticator, parseBasic } from '../../src/forward/proxy-auth.js';
import { chooseUpstreamProxy, NoProxyList, redactProxyUrl } from '../../src/forward/proxy-env.js';
import { parseAbsoluteTarget, parseConnectTarget } from '../../src/forward/request-target.js';
import { startPortico } from '../helpers/portico.js';

describe('parseAbsoluteTarget', () => {
  it.each([
    ['http://Example.COM/a/../b?x=1#frag', { scheme: 'http', hostname: 'example.com', port: 80, authority: 'Example.COM'.toLowerCase(), path: '/a/../b?x=1', origin: 'http://example.com' }],
    ['http://example.com', { hostname: 'example.com', port: 80, path: '/' }],
    ['http://example.com?q', { path: '/?q' }],
    ['HTTPS://user:pw@example.com:8443/x', { scheme: 'https', hostname: 'example.com', port: 8443, authority: 'example.com:8443', origin: 'https://example.com:8443' }],
    ['http://example.com:80/x', { authority: 'example.com', port: 80 }],
    ['http://[::1]:8080/x', { hostname: '::1', port: 8080, authority: '[::1]:8080' }],
    ['http://127.0.0.1:3000/p', { hostname: '127.0.0.1', port: 3000, authority: '127.0.0.1:3000' }],
    ['http://example.com./', { hostname: 'example.com' }],
    ['http://127.1:8080/', { hostname: '127.0.0.1', authority: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }],
    ['http://2130706433/', { hostname: '127.0.0.1' }],
    ['http://0x7f.0.0.1/', { hostname: '127.0.0.1' }],
  ])('%s', (url, expected) => {
    expect(parseAbsoluteTarget(url)).toMatchObject(expected);
  });

  it.each(['/relative', 'ftp://example.com/', 'http:///path', 'http://exa mple.com/', 'http://example.com:99999/', 'http://[zz]/', 'http://bad_host!/', 'http://1.2.3.4.5/', 'http://a.1/'])('rejects %s', (url) => {
    expect(parseAbsoluteTarget(url)).toBeNull();
  });
});

describe('parseConnectTarget', () => {
  it.each([
    ['example.com:443', { hostname: 'example.com', port: 443 }],
    ['EXAMPLE.com:8443', { hostname: 'example.com', port: 8443 }],
    ['[2001:db8::1]:443', { hostname: '2001:db8::1', port: 443 }],
    ['10.0.0.1:22', { hostname: '10.0.0.1', port: 22 }],
    ['10.1:22', { hostname: '10.0.0.1', port: 22 }],
  ])('%s', (authority, expected) => {
    expect(parseConnectTarget(authority)).toEqual(expected);
  });

  it.each(['example.com', 'example.com:', 'example.com:0', ':443', '[::1]', 'a b:443', 'example.com:44x'])('rejects %s', (authority) => {
    expect(parseConnectTarget(authority)).toBeNull();
  });
});

describe('password formats', () => {
  it('computes MD5-crypt like openssl passwd', () => {
    expect(md5Crypt('secret', 'abcdefgh', '$apr1$')).toBe('$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
    expect(md5Crypt('secret', 'abcdefgh', '$1$')).toBe('$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1');
  });

  it('verifies {SHA}, plain and plain: entries', async () => {
    expect(await htpasswdVerifier(`{SHA}${createHash('sha1').update('pw').digest('base64')}`).verify('pw')).toBe(true);
    expect(await htpasswdVerifier('pw').verify('pw')).toBe(true);
    expect(await userPasswordVerifier('plain:scrypt:literally').verify('scrypt:literally')).toBe(true);
    expect(await userPasswordVerifier('pw').verify('pW')).toBe(false);
  });

  it('rejects malformed hashes with what was expected', () => {
    expect(() => userPasswordVerifier('scrypt:nope')).toThrow(/expected "scrypt:N:r:p:SALT:KEY"/);
    expect(() => userPasswordVerifier('bcrypt:$2y$10$short')).toThrow(/expected a bcrypt hash/);
    expect(() => htpasswdVerifier('$6$salt$hash')).toThrow(/not supported/);
    expect(() => htpasswdVerifier('{SHA}abc')).toThrow(/SHA-1/);
  });

  it('parses Basic credentials', () => {
    expect(parseBasic(`Basic ${Buffer.from('a:b:c').toString('base64')}`)).toEqual({ user: 'a', password: 'b:c' });
    expect(parseBasic(`basic ${Buffer.from('ü:pä').toString('base64')}`)).toEqual({ user: 'ü', password: 'pä' });
    expect(parseBasic('Digest x')).toBeNull();
    expect(parseBasic(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeNull();
  });

  it('names the key or htpasswd line that is wrong', () => {
    const files: Record<string, string> = { 'bad.htpasswd': 'good:{SHA}' + createHash('sha1').update('x').digest('base64') + '\nno-colon-here\nsix:$6$x$y\n' };
    try {
      new ProxyAuthenticator({ realm: 'r', htpasswd: 'bad.htpasswd', users: { eve: 'scrypt:1:2' } }, (p) => files[p]!);
      throw new Error('expected ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        'forward.auth.htpasswd: line 2 of "bad.htpasswd": expected "user:hash"',
        'forward.auth.htpasswd: line 3 of "bad.htpasswd": expected a bcrypt ($2y$), MD5 ($apr1$), {SHA} or plain entry; SHA-crypt and yescrypt hashes are not supported',
        'forward.auth.users.eve: expected "scrypt:N:r:p:SALT:KEY" with N a power of two, SALT and KEY in base64',
      ]);
    }
    expect(() => new ProxyAuthenticator({ realm: 'r', htpasswd: 'missing' }, () => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); })).toThrow(
      'forward.auth.htpasswd: expected a readable htpasswd file, cannot read "missing" (ENOENT)',
    );
  });
});

describe('proxy environment', () => {
  it('reads lower- and upper-case variables, lower-case first, ALL_PROXY as fallback', () => {
    expect(chooseUpstreamProxy(undefined, { HTTP_PROXY: 'http://up:1', http_proxy: 'http://low:1' }).http).toBe('http://low:1');
    expect(chooseUpstreamProxy(undefined, { ALL_PROXY: 'socks5://s:1080' })).toMatchObject({ http: 'socks5://s:1080', https: 'socks5://s:1080', source: 'environment' });
    expect(chooseUpstreamProxy(undefined, { HTTPS_PROXY: 'proxy.local:3128' })).toMatchObject({ http: null, https: 'http://proxy.local:3128' });
    expect(chooseUpstreamProxy(undefined, {}).source).toBe('none');
    expect(chooseUpstreamProxy('direct', { HTTP_PROXY: 'http://x:1' }).source).toBe('none');
    expect(chooseUpstreamProxy('http://cfg:3128', { HTTP_PROXY: 'http://x:1' })).toMatchObject({ http: 'http://cfg:3128', https: 'http://cfg:3128', source: 'config' });
  });

  it.each<[string, string, number, boolean]>([
    ['example.com', 'example.com', 80, true],
    ['example.com', 'www.example.com', 80, true],
    ['.example.com', 'example.com', 80, true],
    ['*.example.com', 'a.b.example.com', 80, true],
    ['example.com', 'notexample.com', 80, false],
    ['example.com:8080', 'example.com', 80, false],
    ['example.com:8080', 'example.com', 8080, true],
    ['10.0.0.0/8', '10.1.2.3', 80, true],
    ['10.0.0.0/8', '11.1.2.3', 80, false],
    ['localhost, 127.0.0.1', '127.0.0.1', 443, true],
    ['*', 'anything.example', 80, true],
  ])('NO_PROXY=%s bypasses %s:%i → %s', (value, host, port, expected) => {
    expect(new NoProxyList(value).bypasses(host, port)).toBe(expected);
  });

  it('redacts passwords in proxy URLs', () => {
    expect(redactProxyUrl('http://user:secret@proxy.example:3128')).toBe('http://user:***@proxy.example:3128');
    expect(redactProxyUrl('socks5://proxy.example:1080')).toBe('socks5://proxy.example:1080');
  });
});

describe('PAC', () => {
  it('names the proxy from the Host header, or the socket address', () => {
    expect(proxyAddressFor('proxy.example:3128', '127.0.0.1', 3128)).toBe('proxy.example:3128');
    expect(proxyAddressFor('proxy.example', '127.0.0.1', 8080)).toBe('proxy.example:8080');
    expect(proxyAddressFor('[::1]:3128', '::1', 3128)).toBe('[::1]:3128');
    expect(proxyAddressFor('evil";alert(1);"', '::ffff:10.0.0.1', 3128)).toBe('10.0.0.1:3128');
    expect(proxyAddressFor(undefined, '::1', 3128)).toBe('[::1]:3128');
  });

  it('is a valid script with escaped bypass entries', () => {
    const script = pacScript('p.example:3128', ['a"b', '*.x']);
    expect(script).toContain('host == "a\\"b"');
    expect(() => new Function(`${script}; return FindProxyForURL;`)).not.toThrow();
  });
});

describe('config errors', () => {
  it('a bad rule stops Portico from starting and names the key', async () => {
    await expect(startPortico({ forward: { listen: '127.0.0.1:0', rules: [{ action: 'deny', host: 'a' }, { action: 'deny' }, { action: 'deny', user_agent: '([' }] } })).rejects.toThrow(
      'forward.rules[2].user_agent: expected a valid regular expression, got "(["',
    );
    await expect(startPortico({ forward: { listen: '127.0.0.1:0', rules: [{ action: 'deny', hosts_file: '/nonexistent/list.txt' }] } })).rejects.toThrow(
      /forward\.rules\[0\]\.hosts_file: expected a readable file of domains, cannot read "\/nonexistent\/list\.txt" \(ENOENT\)/,
    );
  });

  it('validates forward.upstream_proxy', () => {
    expect(() => validateConfig({ forward: { upstream_proxy: 'ftp://x:21' } })).toThrow(/forward\.upstream_proxy: expected a proxy URL/);
    expect(validateConfig({ forward: { upstream_proxy: 'socks5://127.0.0.1:1080' } }).forward!.upstream_proxy).toBe('socks5://127.0.0.1:1080');
    expect(validateConfig({ forward: { upstream_proxy: 'direct' } }).forward!.upstream_proxy).toBe('direct');
  });
});
