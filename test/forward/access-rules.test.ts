/**
 * Who may use the proxy and where they may go: the client allow-list and the access rules, for
 * absolute-URI requests and CONNECT, checked before any DNS lookup.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico } from '../helpers/portico.js';
import { viaProxy } from '../helpers/http.js';
import { connectThrough, fakeLookup, startForward, type RunningForward } from './helpers.js';

let origin: Origin;
let fwd: RunningForward;
const lookup = fakeLookup({ 'allowed.example': '127.0.0.1', 'www.allowed.example': '127.0.0.1' });
const logLines: Array<Record<string, unknown>> = [];
let hostsFile: string;

/** A window of `minutes` around now (or away from now), in local time, as HH:MM-HH:MM. */
function windowAround(now: Date, startOffsetMin: number, endOffsetMin: number): string {
  const fmt = (d: Date) => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return `${fmt(new Date(now.getTime() + startOffsetMin * 60_000))}-${fmt(new Date(now.getTime() + endOffsetMin * 60_000))}`;
}

// A fixed clock: Wednesday 2025-06-11 10:30 local time.
const WEDNESDAY_1030 = new Date(2025, 5, 11, 10, 30);

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`origin ${req.url}`));
  const dir = mkdtempSync(join(tmpdir(), 'portico-rules-'));
  hostsFile = join(dir, 'blocklist.txt');
  const lines = ['# a blocklist in the common formats', '0.0.0.0 localhost', '0.0.0.0 ads.example', '127.0.0.1 tracker.example # inline comment', '||adblock-style.example^', 'plain-domain.example', ''];
  for (let i = 0; i < 5000; i++) lines.push(`0.0.0.0 ad${i}.network.example`);
  writeFileSync(hostsFile, lines.join('\n'));
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  }));
  fwd = await startForward(
    {
      connect_ports: [443, origin.port],
      rules: [
        { name: 'social', action: 'deny', host: ['blocked.example', '*.blocked.example'] },
        { action: 'deny', host: '/^casino[0-9]*\\./' },
        { name: 'no-bots', action: 'deny', user_agent: 'badbot|evil-crawler' },
        { name: 'lunch-break', action: 'deny', host: 'games.example', time: '12:00-13:00' },
        { name: 'office-hours-video', action: 'deny', host: 'video.example', time: '09:00-17:00', days: 'mon-fri' },
        { name: 'night', action: 'deny', host: 'night.example', time: '22:00-06:00' },
        { name: 'blocklist', action: 'deny', hosts_file: hostsFile },
        { name: 'no-delete', action: 'deny', method: 'DELETE' },
        { name: 'guest-net', action: 'deny', client: '127.0.0.99/32' },
        { name: 'only-https-connect', action: 'deny', method: 'CONNECT', port: 8443 },
        { action: 'allow', host: 'allowed.example' },
        { name: 'allowed-first', action: 'deny', host: ['allowed.example', 'www.allowed.example'] },
      ],
    },
    { lookup, now: () => WEDNESDAY_1030, log },
  );
});

afterAll(async () => {
  await fwd.close();
  await origin.close();
});

async function expectBlocked(url: string, rule: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await viaProxy(fwd.url, url, { headers });
  expect(r.status, url).toBe(403);
  expect(r.body).toContain('blocked by policy');
  expect(r.body).toContain(rule);
  expect(r.headers['proxy-status']).toMatch(/error=http_request_denied/);
}

describe('client allow-list (forward.clients)', () => {
  it('by default only loopback clients may use the proxy', async () => {
    const r = await viaProxy(fwd.url, `${origin.url}/hi`);
    expect(r.status).toBe(200);
  });

  it('a client address outside forward.clients gets 403, for requests and CONNECT', async () => {
    const only7 = await startForward({ clients: ['127.0.0.7/32'], connect_ports: [origin.port] });
    try {
      const before = origin.requests.length;
      const denied = await viaProxy(only7.url, `${origin.url}/hi`, { localAddress: '127.0.0.1' });
      expect(denied.status).toBe(403);
      expect(denied.body).toContain('not allowed to use this proxy');
      const tunnel = await connectThrough(only7.port, `127.0.0.1:${origin.port}`, {}, { localAddress: '127.0.0.1' });
      expect(tunnel.status).toBe(403);
      expect(origin.requests.length).toBe(before);
      const allowed = await viaProxy(only7.url, `${origin.url}/hi`, { localAddress: '127.0.0.7' });
      expect(allowed.status).toBe(200);
    } finally {
      await only7.close();
    }
  });
});

describe('access rules', () => {
  it('blocks a domain and its subdomains at any depth, naming the rule, before any DNS lookup', async () => {
    lookup.calls.length = 0;
    await expectBlocked('http://blocked.example/', '"social" (forward.rules[0])');
    await expectBlocked('http://www.blocked.example/page', 'social');
    await expectBlocked('http://a.b.c.blocked.example:8080/', 'social');
    await expectBlocked('http://BLOCKED.Example./', 'social');
    expect(lookup.calls).toEqual([]);
  });

  it('does not block look-alike names', async () => {
    const r = await viaProxy(fwd.url, 'http://notblocked.example/', {});
    expect(r.status).toBe(502);
    expect(r.headers['proxy-status']).toMatch(/dns_error/);
  });

  it('blocks by /regex/ and names an unnamed rule by its index', async () => {
    await expectBlocked('http://casino77.example/', 'forward.rules[1]');
  });

  it('blocks a User-Agent (case-insensitive regex)', async () => {
    await expectBlocked(`${origin.url}/x`, 'no-bots', { 'user-agent': 'Mozilla/5.0 (compatible; BadBot/2.1)' });
    const ok = await viaProxy(fwd.url, `${origin.url}/x`, { headers: { 'user-agent': 'GoodBrowser' } });
    expect(ok.status).toBe(200);
  });

  it('applies time-of-day windows and days in local time', async () => {
    // The clock says Wednesday 10:30.
    await expectBlocked('http://video.example/', 'office-hours-video');
    lookup.calls.length = 0;
    const lunch = await viaProxy(fwd.url, 'http://games.example/');
    expect(lunch.status).toBe(502); // not blocked at 10:30: it went on to DNS (which fails here)
    expect(lookup.calls).toEqual(['games.example']);
    const night = await viaProxy(fwd.url, 'http://night.example/');
    expect(night.status).toBe(502);
  });

  it('blocks every domain of a hosts_file (thousands of entries; hosts, plain and adblock formats) and their subdomains', async () => {
    await expectBlocked('http://ads.example/', 'blocklist');
    await expectBlocked('http://cdn.tracker.example/', 'blocklist');
    await expectBlocked('http://adblock-style.example/', 'blocklist');
    await expectBlocked('http://plain-domain.example/', 'blocklist');
    await expectBlocked('http://ad4999.network.example/', 'blocklist');
    await expectBlocked('http://x.ad1234.network.example/', 'blocklist');
    const local = await viaProxy(fwd.url, `http://localhost:${origin.port}/not-blocked`);
    expect(local.status).toBe(200);
  });

  it('matches method, client and port conditions', async () => {
    const del = await viaProxy(fwd.url, `${origin.url}/x`, { method: 'DELETE' });
    expect(del.status).toBe(403);
    expect(del.body).toContain('no-delete');
    const guest = await viaProxy(fwd.url, `${origin.url}/x`, { localAddress: '127.0.0.99' });
    expect(guest.status).toBe(403);
    expect(guest.body).toContain('guest-net');
  });

  it('first match wins: an allow rule before a deny rule lets the request through', async () => {
    const allowed = await viaProxy(fwd.url, `http://allowed.example:${origin.port}/first`);
    expect(allowed.status).toBe(200);
    expect(allowed.body).toBe('origin /first');
    await expectBlocked('http://www.allowed.example/', 'allowed-first');
  });

  it('sends an HTML block page to browsers and plain text to tools', async () => {
    const html = await viaProxy(fwd.url, 'http://blocked.example/', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.body).toContain('<h1>Blocked by policy</h1>');
    expect(html.body).toContain('&#34;social&#34; (forward.rules[0])');
    const text = await viaProxy(fwd.url, 'http://blocked.example/', { headers: { accept: '*/*' } });
    expect(text.headers['content-type']).toMatch(/^text\/plain/);
    expect(text.body).toMatch(/^403 Forbidden: Access to blocked\.example is blocked by policy \(rule "social" \(forward\.rules\[0\]\)\)/);
  });

  it('logs every blocked request with the rule', async () => {
    await viaProxy(fwd.url, 'http://www.blocked.example/logged');
    const line = logLines.find((l) => l.msg === 'blocked by policy' && l.target === 'www.blocked.example');
    expect(line).toMatchObject({ rule: '"social" (forward.rules[0])', client: '127.0.0.1', method: 'GET' });
    const access = logLines.find((l) => l.msg === 'request' && l.url === 'http://www.blocked.example/logged');
    expect(access).toMatchObject({ status: 403, error: 'forbidden' });
  });
});

describe('rules on CONNECT', () => {
  it('a blocked host gets 403 by its CONNECT host, before any DNS lookup', async () => {
    lookup.calls.length = 0;
    for (const authority of ['blocked.example:443', 'deep.www.blocked.example:443', 'ads.example:443']) {
      const r = await connectThrough(fwd.port, authority);
      expect(r.status, authority).toBe(403);
      expect(r.body).toContain('blocked by policy');
      expect(r.headers['proxy-status']).toMatch(/http_request_denied/);
    }
    expect(lookup.calls).toEqual([]);
  });

  it('CONNECT to a port outside connect_ports (e.g. 80) gets 403', async () => {
    const r = await connectThrough(fwd.port, 'allowed.example:80');
    expect(r.status).toBe(403);
    expect(r.body).toContain('CONNECT to port 80 is not allowed');
    expect(lookup.calls).not.toContain('allowed.example');
  });

  it('rules can match CONNECT by method and port', async () => {
    const custom = await startForward({ connect_ports: [8443], rules: [{ name: 'no-8443', action: 'deny', method: 'CONNECT', port: 8443 }] }, { lookup });
    try {
      const r = await connectThrough(custom.port, 'allowed.example:8443');
      expect(r.status).toBe(403);
      expect(r.body).toContain('no-8443');
    } finally {
      await custom.close();
    }
  });
});

describe('time windows through the real clock', () => {
  it('a rule whose window covers now blocks; one that does not, allows', async () => {
    const now = new Date();
    const p = await startPortico({
      forward: {
        listen: '127.0.0.1:0',
        upstream_proxy: 'direct',
        rules: [
          { name: 'not-now', action: 'deny', host: `127.0.0.1`, time: windowAround(now, 120, 180) },
          { name: 'right-now', action: 'deny', host: `127.0.0.1`, time: windowAround(now, -5, 5) },
        ],
      },
    });
    try {
      const r = await viaProxy(p.forwardUrl!, `${origin.url}/now`);
      expect(r.status).toBe(403);
      expect(r.body).toContain('right-now');
    } finally {
      await p.stop();
    }
  });
});
