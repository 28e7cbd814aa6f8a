/** The same cache engine behind the forward proxy: plain-HTTP absolute-URI requests are cached. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';

let origin: Origin;
let portico: RunningPortico;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    if (req.method === 'PUT') {
      res.statusCode = 204;
      res.end();
      return;
    }
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('ETag', '"f1"');
    res.end(`hello ${req.url}`);
  });
  portico = await startPortico({ forward: { listen: '127.0.0.1:0' } });
});

afterAll(async () => {
  await portico.stop();
  await origin.close();
});

/** An absolute-form request through the forward proxy. */
const viaProxy = (url: string, method = 'GET') => request(url, { method, proxy: portico.forwardUrl });

it('caches plain-HTTP responses for forward-proxy clients', async () => {
  const url = `${origin.url}/page?a=1`;
  const a = await viaProxy(url);
  const b = await viaProxy(url);
  expect(a.headers['cache-status']).toContain('stored');
  expect(b.body).toBe('hello /page?a=1');
  expect(b.headers['cache-status']).toContain('hit');
  expect(origin.count('/page')).toBe(1);
});

it('passes PUT through untouched and invalidates the stored response', async () => {
  const url = `${origin.url}/doc`;
  await viaProxy(url);
  const put = await viaProxy(url, 'PUT');
  expect(put.status).toBe(204);
  const again = await viaProxy(url);
  expect(again.headers['cache-status']).toContain('fwd=uri-miss');
  expect(origin.requests.filter((r) => r.url === '/doc').map((r) => r.method)).toEqual(['GET', 'PUT', 'GET']);
});
