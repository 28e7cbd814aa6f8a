/** Absolute-URI requests through the forward proxy: relaying, headers, HTTP/1.0, keep-alive, cache, PAC. */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadAddress, startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { viaProxy } from '../helpers/http.js';
import { rawExchange } from '../helpers/raw.js';
import { curl, hasCurl, startForward, type RunningForward } from './helpers.js';

let origin: Origin;
let portico: RunningPortico;
let fwd: RunningForward;
const originSockets = new Set<Socket>();

beforeAll(async () => {
  origin = await startOrigin((req, res, body) => {
    if (req.url === '/cacheable') {
      res.setHeader('cache-control', 'max-age=60');
      res.end('cached body');
    } else if (req.url === '/echo') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, headers: req.headers, body, httpVersion: req.httpVersion }));
    } else {
      res.end(`page ${req.url}`);
    }
  });
  origin.server.on('connection', (s: Socket) => originSockets.add(s));
  portico = await startPortico({ forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct' } });
  fwd = await startForward();
});

afterAll(async () => {
  await Promise.all([portico.stop(), fwd.close()]);
  await origin.close();
});

describe.skipIf(!hasCurl)('curl -x', () => {
  it('fetches a plain-HTTP page through the proxy', async () => {
    const before = origin.count('/hello');
    const r = await curl(['-x', portico.forwardUrl!, `${origin.url}/hello`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('page /hello');
    expect(origin.count('/hello')).toBe(before + 1);
  });
});

describe('relaying absolute-URI requests', () => {
  it('relays every method with its body streamed, and the response status and headers', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const body = method === 'GET' || method === 'OPTIONS' ? undefined : `payload for ${method}`;
      const r = await viaProxy(fwd.url, `${origin.url}/echo`, { method, body, headers: body ? { 'content-type': 'text/plain' } : {} });
      expect(`${method} ${r.status} ${r.status === 200 ? '' : r.body}`).toBe(`${method} 200 `);
      const seen = JSON.parse(r.body) as { method: string; body: string };
      expect(seen.method).toBe(method);
      expect(seen.body).toBe(body ?? '');
    }
    const head = await viaProxy(fwd.url, `${origin.url}/hello`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('streams a large chunked upload', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const r = await viaProxy(fwd.url, `${origin.url}/echo`, { method: 'POST', body: big, headers: { 'transfer-encoding': 'chunked' } });
    expect((JSON.parse(r.body) as { body: string }).body.length).toBe(big.length);
  });

  it('removes Proxy-Connection, Proxy-Authorization and hop-by-hop headers, and sets Host from the URL', async () => {
    const r = await viaProxy(fwd.url, `${origin.url}/echo`, {
      headers: {
        host: 'wrong.example',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic dXNlcjpwYXNz',
        connection: 'x-private',
        'x-private': 'secret',
        te: 'trailers',
        'x-kept': 'yes',
      },
    });
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen.headers['proxy-connection']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers['x-private']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
  });

  it('serves HTTP/1.0 clients (raw socket, no Host header, connection closed after the reply)', async () => {
    const { text } = await rawExchange(fwd.port, `GET ${origin.url}/old HTTP/1.0\r\nUser-Agent: ancient\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.toLowerCase()).not.toContain('transfer-encoding: chunked');
    expect(text.endsWith('page /old')).toBe(true);
  });

  it('keeps the client connection alive and reuses upstream connections', async () => {
    const before = originSockets.size;
    const { text } = await rawExchange(
      fwd.port,
      `GET ${origin.url}/k1 HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\nGET ${origin.url}/k2 HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`,
      { endAfter: /page \/k2$/ },
    );
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(originSockets.size - before).toBeLessThanOrEqual(1);
  });

  it('answers 400 for a target that is not an http(s) URL and keeps serving', async () => {
    const { text } = await rawExchange(fwd.port, `GET ftp://example.com/file HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    const ok = await viaProxy(fwd.url, `${origin.url}/after`);
    expect(ok.body).toBe('page /after');
  });

  it('reports an unreachable origin as 502 with Proxy-Status', async () => {
    const dead = await deadAddress();
    const r = await viaProxy(fwd.url, `${dead}/x`);
    expect(r.status).toBe(502);
    expect(r.headers['proxy-status']).toMatch(/error=connection_refused/);
  });
});

describe('caching plain HTTP', () => {
  it('serves a second identical request for a cacheable page from the cache', async () => {
    const first = await viaProxy(portico.forwardUrl!, `${origin.url}/cacheable`);
    const second = await viaProxy(portico.forwardUrl!, `${origin.url}/cacheable`);
    expect(first.body).toBe('cached body');
    expect(second.body).toBe('cached body');
    expect(origin.count('/cacheable')).toBe(1);
    expect(second.headers['cache-status']).toMatch(/hit/);
  });
});

describe('loops and non-proxy requests', () => {
  it('answers 508 to a request that carries this proxy\'s Via token', async () => {
    const open = await startForward({ anonymize: false });
    try {
      const r = await viaProxy(open.url, `${origin.url}/echo`);
      const via = (JSON.parse(r.body) as { headers: Record<string, string> }).headers.via!;
      expect(via).toMatch(/^1\.1 portico-[0-9a-f]+$/);
      const looped = await viaProxy(open.url, `${origin.url}/echo`, { headers: { via } });
      expect(looped.status).toBe(508);
      expect(looped.headers['proxy-status']).toMatch(/proxy_loop_detected/);
    } finally {
      await open.close();
    }
  });

  it('answers 508 to a request for the proxy itself', async () => {
    const before = origin.requests.length;
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await viaProxy(fwd.url, `http://${host}:${fwd.port}/proxy.pac`);
      expect(r.status).toBe(508);
    }
    const { text: c } = await rawExchange(fwd.port, `CONNECT 127.0.0.1:${fwd.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(c).toMatch(/^HTTP\/1\.1 (403|508) /);
    expect(origin.requests.length).toBe(before);
  });

  it('answers an origin-form request with a page that explains this is a proxy', async () => {
    const { text } = await rawExchange(fwd.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${fwd.port}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('This is a proxy');
    expect(text).toContain(`http://127.0.0.1:${fwd.port}/proxy.pac`);
  });
});

describe('PAC file', () => {
  it('serves /proxy.pac and /wpad.dat naming the proxy, with DIRECT for bypass hosts', async () => {
    const pac = await startForward({ pac: { bypass: ['intranet.example', '*.corp.example', '.lan', '10.0.0.0/8', '<local>'] } });
    try {
      for (const path of ['/proxy.pac', '/wpad.dat']) {
        const { text } = await rawExchange(pac.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${pac.port}\r\nConnection: close\r\n\r\n`);
        expect(text).toMatch(/^HTTP\/1\.1 200 /);
        expect(text.toLowerCase()).toContain('content-type: application/x-ns-proxy-autoconfig');
        expect(text).toContain(`"PROXY 127.0.0.1:${pac.port}"`);
        expect(text).toContain('host == "intranet.example"');
        expect(text).toContain('shExpMatch(host, "*.corp.example")');
      }
      const body = (await rawExchange(pac.port, `GET /proxy.pac HTTP/1.1\r\nHost: proxy.example:${pac.port}\r\nConnection: close\r\n\r\n`)).text.split('\r\n\r\n')[1]!;
      const FindProxyForURL = evaluatePac(body);
      expect(FindProxyForURL('http://a.b/', 'www.example.com')).toBe(`PROXY proxy.example:${pac.port}`);
      expect(FindProxyForURL('http://intranet.example/', 'intranet.example')).toBe('DIRECT');
      expect(FindProxyForURL('http://x/', 'deep.a.corp.example')).toBe('DIRECT');
      expect(FindProxyForURL('http://x/', 'corp.example')).toBe(`PROXY proxy.example:${pac.port}`);
      expect(FindProxyForURL('http://x/', 'lan')).toBe('DIRECT');
      expect(FindProxyForURL('http://x/', 'nas.lan')).toBe('DIRECT');
      expect(FindProxyForURL('http://x/', '10.1.2.3')).toBe('DIRECT');
      expect(FindProxyForURL('http://x/', 'printer')).toBe('DIRECT');
    } finally {
      await pac.close();
    }
  });
});

/** Evaluates a PAC script with the few PAC helper functions it uses. */
function evaluatePac(script: string): (url: string, host: string) => string {
  const helpers = {
    isPlainHostName: (h: string) => !h.includes('.'),
    dnsDomainIs: (h: string, d: string) => h.endsWith(d),
    shExpMatch: (s: string, p: string) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s),
    isInNet: (h: string, net: string, mask: string) => {
      const n = (ip: string) => ip.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
      return (n(h) & n(mask)) >>> 0 === (n(net) & n(mask)) >>> 0;
    },
  };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(...Object.keys(helpers), `${script}\nreturn FindProxyForURL;`) as (...args: unknown[]) => (url: string, host: string) => string;
  return factory(...Object.values(helpers));
}
