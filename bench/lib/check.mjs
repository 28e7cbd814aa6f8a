// One sample request through a server, checked byte for byte, and the cache evidence in its headers.
import http from 'node:http';
import https from 'node:https';

/**
 * GET `requestPath` through the server (origin-form for reverse, absolute-form for forward); over TLS
 * (HTTP/1.1, any certificate) for the TLS rows. A server with a `siteHost` (instances behind one
 * name) gets it as Host, as wrk sends it.
 */
export function sampleRequest({ port, access, siteHost }, requestPath, originHost, tls = false) {
  return new Promise((resolve) => {
    const options =
      access === 'forward'
        ? { host: '127.0.0.1', port, path: `http://${originHost}${requestPath}`, headers: { host: originHost } }
        : { host: '127.0.0.1', port, path: requestPath, headers: siteHost ? { host: siteHost } : {} };
    const req = (tls ? https : http).get({ ...options, agent: false, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ ok: true, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (err) => resolve({ ok: false, reason: `response error: ${err.message}` }));
    });
    req.on('error', (err) => resolve({ ok: false, reason: `request error: ${err.message}` }));
    req.setTimeout(10000, () => req.destroy(new Error('timed out after 10 s')));
  });
}

/** Checks status and body. `expected` is a Buffer (exact bytes) or a number (size only). */
export function checkBody(res, expected) {
  if (!res.ok) return res.reason;
  if (res.status !== 200) return `status ${res.status}: ${res.body.toString('utf8', 0, 200).trim()}`;
  const size = typeof expected === 'number' ? expected : expected.length;
  if (res.body.length !== size) return `body is ${res.body.length} bytes, expected ${size}`;
  if (typeof expected !== 'number' && !res.body.equals(expected)) return 'body differs from the origin file';
  return null;
}

/**
 * What the response headers say about the cache: { hit: true | false | null, evidence }.
 * Cache-Status (RFC 9211), X-Cache (Squid), X-Cache-Status (nginx add_header), X-Varnish, Age.
 */
export function cacheEvidence(headers) {
  const cs = headers['cache-status'];
  if (cs) return { hit: /;\s*hit\b/i.test(cs), evidence: `Cache-Status: ${cs}` };
  const xc = headers['x-cache'];
  if (xc) return { hit: /^HIT\b/i.test(xc), evidence: `X-Cache: ${xc}` };
  const xcs = headers['x-cache-status'];
  if (xcs) return { hit: /^HIT$/i.test(xcs), evidence: `X-Cache-Status: ${xcs}` };
  const xv = headers['x-varnish'];
  if (xv) return { hit: /^\d+\s+\d+$/.test(xv.trim()), evidence: `X-Varnish: ${xv}` };
  if (headers.age !== undefined) return { hit: Number(headers.age) > 0 ? true : null, evidence: `Age: ${headers.age}` };
  return { hit: null, evidence: 'no cache header' };
}
