/** The forward header policy as a pure function over header objects. */
import type { OutgoingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { CLIENT_IDENTIFYING_HEADERS, HeaderPolicy, STRICT_ACCEPT_LANGUAGE, STRICT_USER_AGENT, trimReferer } from '../../src/policy/header-policy.js';

const ctx = { clientAddress: '192.0.2.10', targetOrigin: 'http://site.example', httpVersion: '1.1' };

function everything(): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { host: 'site.example', 'user-agent': 'UA/1', 'accept-language': 'fr', referer: 'http://other.example/a?b', accept: '*/*' };
  for (const name of CLIENT_IDENTIFYING_HEADERS) h[name] = '198.51.100.2';
  return h;
}

describe('HeaderPolicy', () => {
  it('anonymize true removes every identifying header and keeps the rest', () => {
    const h = everything();
    new HeaderPolicy(true).apply(h, ctx);
    expect(Object.keys(h).sort()).toEqual(['accept', 'accept-language', 'host', 'referer', 'user-agent']);
    expect(h['user-agent']).toBe('UA/1');
  });

  it('strict also normalises User-Agent and Accept-Language and trims a cross-origin Referer', () => {
    const h = everything();
    new HeaderPolicy('strict').apply(h, ctx);
    expect(h['user-agent']).toBe(STRICT_USER_AGENT);
    expect(h['accept-language']).toBe(STRICT_ACCEPT_LANGUAGE);
    expect(h.referer).toBe('http://other.example/');
    const noLang: OutgoingHttpHeaders = {};
    new HeaderPolicy('strict').apply(noLang, ctx);
    expect(noLang['accept-language']).toBeUndefined();
    expect(noLang['user-agent']).toBe(STRICT_USER_AGENT);
  });

  it('off appends Via (with the client HTTP version) and X-Forwarded-For', () => {
    const policy = new HeaderPolicy(false, 'portico-test');
    const h: OutgoingHttpHeaders = { via: '1.1 a', 'x-forwarded-for': '10.0.0.1', 'proxy-authorization': 'Basic x' };
    policy.apply(h, { ...ctx, httpVersion: '1.0' });
    expect(h.via).toBe('1.1 a, 1.0 portico-test');
    expect(h['x-forwarded-for']).toBe('10.0.0.1, 192.0.2.10');
    expect(h['proxy-authorization']).toBeUndefined();
  });

  it('detects its own Via token only', () => {
    const policy = new HeaderPolicy(false);
    expect(policy.viaToken).toMatch(/^portico-[0-9a-f]{10}$/);
    expect(policy.seenBefore({ via: `1.1 x, 1.1 ${policy.viaToken}` })).toBe(true);
    expect(policy.seenBefore({ via: '1.1 portico-0000000000' })).toBe(false);
    expect(policy.seenBefore({})).toBe(false);
    expect(new HeaderPolicy(true).viaToken).not.toBe(policy.viaToken);
  });

  it.each([
    ['http://site.example/page', 'http://site.example/page'],
    ['https://site.example/page', 'https://site.example/'],
    ['http://other.example:8080/x?y', 'http://other.example:8080/'],
    ['not a url', null],
    ['ftp://files.example/x', null],
  ])('trimReferer(%s)', (referer, expected) => {
    expect(trimReferer(referer, 'http://site.example')).toBe(expected);
  });
});
