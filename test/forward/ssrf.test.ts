/**
 * The forward proxy as an SSRF vector: it refuses its own listeners (admin, reverse, itself), and with
 * forward.deny_private private/loopback/link-local destinations, checked on literal addresses before
 * connecting and on names inside the lookup of the very connection (DNS-rebinding safe), for relayed
 * requests and CONNECT alike. Also forward.max_tunnels and Max-Forwards on OPTIONS/TRACE.
 *
 * Everything here runs on 127.0.0.1: the "private" destinations are loopback origins, which is exactly
 * what deny_private must refuse. No traffic goes anywhere else.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type LookupFunction, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestinationGuard, ownListenersOf } from '../../src/forward/destination-guard.js';
import { validateConfig } from '../../src/config/load.js';
import { viaProxy, waitFor } from '../helpers/http.js';
import { deadAddress, startOrigin, type Origin } from '../helpers/origin.js';
import { reverseConfig, startPortico } from '../helpers/portico.js';
import { connectThrough, fakeLookup, startForward, type RunningForward } from './helpers.js';

let origin: Origin;
let echo: Server;
let echoPort: number;
let echoConnections = 0;
/** Stands in for the admin API of the same process: must never be reached through the proxy. */
let admin: Origin;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  admin = await startOrigin((_req, res) => res.end('admin secrets'));
  echo = createServer((s: Socket) => {
    echoConnections++;
    s.on('data', (d: Buffer) => s.write(d));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
});

afterAll(async () => {
  await origin.close();
  await admin.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

async function tunnelWorks(port: number, authority: string): Promise<void> {
  const tunnel = await connectThrough(port, authority);
  expect(tunnel.status).toBe(200);
  tunnel.socket.write('ping');
  const [data] = (await once(tunnel.socket, 'data')) as [Buffer];
  expect(data.toString()).toBe('ping');
  tunnel.socket.destroy();
}

describe('forward.deny_private', () => {
  let open: RunningForward;
  let strict: RunningForward;
  const lookup = fakeLookup({ 'public-looking.example': '127.0.0.1', 'v6.example': '::1', 'mapped.example': '::ffff:127.0.0.1' });

  beforeAll(async () => {
    open = await startForward({ connect_ports: [echoPort] }, { lookup });
    strict = await startForward({ connect_ports: [echoPort], deny_private: true }, { lookup });
  });
  afterAll(async () => {
    await open.close();
    await strict.close();
  });

  it('is off by default: loopback targets are relayed and tunnelled', async () => {
    expect(validateConfig({ forward: {} }).forward!.deny_private).toBe(false);
    const r = await viaProxy(open.url, `${origin.url}/open`);
    expect(r.status).toBe(200);
    const named = await viaProxy(open.url, `http://public-looking.example:${origin.port}/open-by-name`);
    expect(named.status).toBe(200);
    await tunnelWorks(open.port, `127.0.0.1:${echoPort}`);
    await tunnelWorks(open.port, `public-looking.example:${echoPort}`);
  });

  it('refuses literal private addresses in every spelling before connecting (403, destination_ip_prohibited)', async () => {
    const before = origin.requests.length;
    const targets = [
      `http://127.0.0.1:${origin.port}/`,
      `http://127.0.0.2:${origin.port}/`,
      `http://0.0.0.0:${origin.port}/`,
      `http://[::1]:${origin.port}/`,
      `http://[::ffff:127.0.0.1]:${origin.port}/`,
      `http://[::ffff:7f00:1]:${origin.port}/`,
      `http://[0:0:0:0:0:0:0:1]:${origin.port}/`,
      `http://localhost:${origin.port}/`,
      `http://10.1.2.3/`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://192.168.1.1/`,
      `http://172.16.0.1/`,
      `http://100.64.0.1/`,
      `http://[fd00::1]/`,
      `http://[fe80::1]/`,
      `https://127.0.0.1:${origin.port}/`,
    ];
    for (const target of targets) {
      const r = await viaProxy(strict.url, target);
      expect(`${target} → ${r.status}`).toBe(`${target} → 403`);
      expect(r.headers['proxy-status']).toMatch(/^portico; error=destination_ip_prohibited; details=".*forward\.deny_private/);
      expect(r.headers['cache-control']).toBe('no-store');
    }
    expect(origin.requests.length).toBe(before);
    expect(strict.handled.at(-1)!.record.error).toBe('destination_prohibited');
  });

  it('checks names after DNS: a public-looking name that resolves to loopback is refused (absolute URI)', async () => {
    const before = origin.requests.length;
    const calls = lookup.calls.length;
    for (const name of ['public-looking.example', 'v6.example', 'mapped.example']) {
      const r = await viaProxy(strict.url, `http://${name}:${origin.port}/rebound`);
      expect(r.status).toBe(403);
      expect(r.headers['proxy-status']).toMatch(/error=destination_ip_prohibited/);
      expect(r.body).toMatch(new RegExp(`${name.replaceAll('.', '\\.')}:${origin.port} resolves to [0-9a-f:.]+, which is a private`));
    }
    expect(origin.requests.length).toBe(before);
    // One lookup per connection attempt: the check is inside the connection's own lookup, there is no
    // separate resolution for checking that a rebinding DNS server could answer differently.
    expect(lookup.calls.slice(calls)).toEqual(['public-looking.example', 'v6.example', 'mapped.example']);
  });

  it('checks names after DNS for CONNECT too, and literal addresses before connecting', async () => {
    const before = echoConnections;
    for (const authority of [`public-looking.example:${echoPort}`, `v6.example:${echoPort}`, `127.0.0.1:${echoPort}`, `[::1]:${echoPort}`, `localhost:${echoPort}`]) {
      const r = await connectThrough(strict.port, authority);
      expect(`${authority} → ${r.status}`).toBe(`${authority} → 403`);
      expect(r.headers['proxy-status']).toMatch(/error=destination_ip_prohibited/);
      expect(r.body).toContain('forward.deny_private');
    }
    expect(echoConnections).toBe(before);
  });

  it('reads numeric host spellings (127.1, 2130706433, 0x7f.1) as the address they stand for', async () => {
    // Resolvers and URL parsers (undici's too) turn these into 127.0.0.1: so do the rules and checks.
    const system = await startForward({ deny_private: true, connect_ports: [echoPort] });
    const allowing = await startForward({});
    try {
      for (const host of ['127.1', '2130706433', '0x7f.1']) {
        const refused = await viaProxy(system.url, `http://${host}:${origin.port}/numeric`);
        expect(`${host} → ${refused.status}`).toBe(`${host} → 403`);
        expect(refused.body).toContain(`127.0.0.1:${origin.port} is a private`);
        expect((await connectThrough(system.port, `${host}:${echoPort}`)).status).toBe(403);
        const allowed = await viaProxy(allowing.url, `http://${host}:${origin.port}/numeric`);
        expect(`${host} → ${allowed.status}`).toBe(`${host} → 200`);
      }
    } finally {
      await system.close();
      await allowing.close();
    }
  });

  it('refuses literal private addresses even when requests go through an upstream proxy', async () => {
    const dead = await deadAddress();
    const chained = await startForward({ deny_private: true, upstream_proxy: dead, connect_ports: [echoPort] });
    try {
      const r = await viaProxy(chained.url, `http://10.0.0.1:${origin.port}/`);
      expect(r.status).toBe(403);
      const c = await connectThrough(chained.port, `127.0.0.1:${echoPort}`);
      expect(c.status).toBe(403);
    } finally {
      await chained.close();
    }
  });
});

describe('own listeners', () => {
  let fwd: RunningForward;
  const lookup = fakeLookup({ 'admin.example': '127.0.0.1', 'me.example': '127.0.0.1' });

  beforeAll(async () => {
    fwd = await startForward(
      { connect_ports: [admin.port, echoPort] },
      { lookup, ownAddresses: [{ key: 'admin.listen', host: '127.0.0.1', port: admin.port }] },
    );
  });
  afterAll(() => fwd.close());

  it('never relays to the admin listener, by address or by name, even without deny_private', async () => {
    for (const target of [`http://127.0.0.1:${admin.port}/api/config`, `http://localhost:${admin.port}/`, `http://[::ffff:127.0.0.1]:${admin.port}/`, `http://admin.example:${admin.port}/api/config`]) {
      const r = await viaProxy(fwd.url, target);
      expect(`${target} → ${r.status}`).toBe(`${target} → 403`);
      expect(r.headers['proxy-status']).toMatch(/error=destination_ip_prohibited; details=".*own admin\.listen listener/);
    }
    const c = await connectThrough(fwd.port, `127.0.0.1:${admin.port}`);
    expect(c.status).toBe(403);
    const named = await connectThrough(fwd.port, `admin.example:${admin.port}`);
    expect(named.status).toBe(403);
    expect(named.body).toContain('admin.listen');
    expect(admin.requests).toHaveLength(0);
    // Other loopback ports are still fine (deny_private is off).
    await tunnelWorks(fwd.port, `127.0.0.1:${echoPort}`);
  });

  it('answers 508 to a name that resolves to the forward listener itself', async () => {
    const r = await viaProxy(fwd.url, `http://me.example:${fwd.port}/`);
    expect(r.status).toBe(508);
    expect(r.headers['proxy-status']).toMatch(/error=proxy_loop_detected/);
    expect(r.body).toContain('is this proxy itself');
  });

  it('is wired from the config: a running Portico refuses its admin and reverse listeners', async () => {
    const [adminPort, reversePort] = await freePorts(2);
    const config = reverseConfig([origin.url], {}, {
      forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', connect_ports: [adminPort] },
      admin: { listen: `127.0.0.1:${adminPort}` },
    });
    (config.reverse as { listen: string }).listen = `127.0.0.1:${reversePort}`;
    expect(ownListenersOf(validateConfig(config)).map((l) => `${l.key} ${l.port}`)).toEqual([`reverse.listen ${reversePort}`, `admin.listen ${adminPort}`]);
    const portico = await startPortico(config);
    try {
      const a = await viaProxy(portico.forwardUrl!, `http://127.0.0.1:${adminPort}/api/config`);
      expect(a.status).toBe(403);
      expect(a.body).toContain('admin.listen');
      const r = await viaProxy(portico.forwardUrl!, `http://localhost:${reversePort}/`);
      expect(r.status).toBe(403);
      expect(r.body).toContain('reverse.listen');
      const c = await connectThrough(Number(new URL(portico.forwardUrl!).port), `127.0.0.1:${adminPort}`);
      expect(c.status).toBe(403);
      // The reverse proxy itself works when asked directly.
      const direct = await viaProxy(portico.reverseUrl, `${portico.reverseUrl}/`);
      expect(direct.status).toBe(200);
    } finally {
      await portico.stop();
    }
  });
});

describe('DestinationGuard', () => {
  const base = (answer: { address: string; family: number }[]): LookupFunction =>
    ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      process.nextTick(() => (options.all ? cb(null, answer) : cb(null, answer[0]!.address, answer[0]!.family)));
    }) as unknown as LookupFunction;
  const resolve = (lookup: LookupFunction, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((done) => lookup('x.example', { all }, (err, address) => done({ err, address })));

  it('drops prohibited addresses from a multi-address answer and fails only when none is left', async () => {
    const guard = new DestinationGuard({ denyPrivate: true, ownListeners: [] });
    const mixed = guard.lookupFor(443, base([{ address: '10.0.0.1', family: 4 }, { address: '203.0.113.9', family: 4 }, { address: '::1', family: 6 }]))!;
    expect(await resolve(mixed, true)).toEqual({ err: null, address: [{ address: '203.0.113.9', family: 4 }] });
    const bad = guard.lookupFor(443, base([{ address: '10.0.0.1', family: 4 }, { address: 'fe80::1', family: 6 }]))!;
    const r = await resolve(bad, true);
    expect(r.err).toMatchObject({ code: 'destination_prohibited' });
    expect(r.err!.message).toBe('x.example:443 resolves to 10.0.0.1, which is a private, loopback or link-local address (forward.deny_private)');
    const single = await resolve(bad, false);
    expect(single.err).toMatchObject({ code: 'destination_prohibited' });
  });

  it('leaves the lookup alone when nothing needs checking on that port', () => {
    const lookup = base([{ address: '127.0.0.1', family: 4 }]);
    const guard = new DestinationGuard({ denyPrivate: false, ownListeners: [{ key: 'admin.listen', host: '127.0.0.1', port: 9090 }] });
    expect(guard.lookupFor(443, lookup)).toBe(lookup);
    expect(guard.lookupFor(9090, lookup)).not.toBe(lookup);
  });

  it('treats every local address as the listener when it listens on 0.0.0.0 or ::', () => {
    const guard = new DestinationGuard({
      denyPrivate: false,
      ownListeners: [
        { key: 'admin.listen', host: '0.0.0.0', port: 9090 },
        { key: 'reverse.listen', host: '::', port: 8080 },
        { key: 'reverse.tls_listen', host: '192.168.7.7', port: 8443 },
      ],
      localAddresses: () => ['127.0.0.1', '::1', '192.168.7.7', 'fe80::7'],
    });
    const refused = (a: string, p: number) => guard.checkAddress(a, p, `${a}:${p}`)?.code ?? 'allowed';
    expect(refused('192.168.7.7', 9090)).toBe('destination_prohibited');
    expect(refused('::ffff:192.168.7.7', 9090)).toBe('destination_prohibited');
    expect(refused('127.0.0.5', 9090)).toBe('destination_prohibited');
    expect(refused('0.0.0.0', 9090)).toBe('destination_prohibited');
    expect(refused('fe80::7', 8080)).toBe('destination_prohibited');
    expect(refused('192.168.7.8', 9090)).toBe('allowed');
    expect(refused('192.168.7.7', 9091)).toBe('allowed');
    expect(refused('192.168.7.7', 8443)).toBe('destination_prohibited');
    expect(refused('127.0.0.1', 8443)).toBe('allowed');
    expect(guard.checkTarget('localhost', 9090, 'localhost:9090')?.code).toBe('destination_prohibited');
    expect(guard.checkTarget('example.com', 9090, 'example.com:9090')).toBeNull();
  });
});

describe('forward.max_tunnels', () => {
  it('defaults to 10000', () => {
    expect(validateConfig({ forward: {} }).forward!.max_tunnels).toBe(10_000);
    expect(() => validateConfig({ forward: { max_tunnels: 0 } })).toThrow(/forward\.max_tunnels/);
  });

  it('refuses CONNECT beyond the limit with 503 and a reason, counting tunnels still being opened', async () => {
    // A lookup that holds 'slow.example' until released: its tunnel stays "opening".
    const held: (() => void)[] = [];
    const quick = fakeLookup({});
    const lookup = ((hostname: string, options: unknown, cb: (...args: unknown[]) => void) => {
      if (hostname === 'slow.example') held.push(() => cb(Object.assign(new Error('getaddrinfo ENOTFOUND slow.example'), { code: 'ENOTFOUND' })));
      else (quick as unknown as (...args: unknown[]) => void)(hostname, options, cb);
    }) as unknown as LookupFunction;
    const fwd = await startForward({ connect_ports: [echoPort], max_tunnels: 2 }, { lookup });
    try {
      const first = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
      expect(first.status).toBe(200);
      const slow = connectThrough(fwd.port, `slow.example:${echoPort}`);
      await waitFor(() => fwd.proxy.openingTunnels === 1, 5_000, 'the slow tunnel to be opening');
      expect(fwd.proxy.openTunnels).toBe(1);

      const refused = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
      expect(refused.status).toBe(503);
      expect(refused.headers['proxy-status']).toMatch(/^portico; error=connection_limit_reached; details=".*forward\.max_tunnels/);
      expect(refused.body).toContain('2 tunnels open');
      expect(fwd.handled.at(-1)!.record.error).toBe('tunnel_limit');
      // Plain requests are not tunnels.
      expect((await viaProxy(fwd.url, `${origin.url}/not-a-tunnel`)).status).toBe(200);

      // The slow one fails: its slot is free again.
      for (const release of held.splice(0)) release();
      expect((await slow).status).toBe(502);
      expect(fwd.proxy.openingTunnels).toBe(0);
      const second = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
      expect(second.status).toBe(200);
      expect((await connectThrough(fwd.port, `127.0.0.1:${echoPort}`)).status).toBe(503);

      // A closed tunnel frees its slot.
      first.socket.destroy();
      await waitFor(() => fwd.proxy.openTunnels === 1, 5_000, 'the first tunnel to close');
      await tunnelWorks(fwd.port, `127.0.0.1:${echoPort}`);
      second.socket.destroy();
    } finally {
      for (const release of held.splice(0)) release();
      await fwd.close();
    }
  });

  it('frees the slot of a tunnel whose client leaves while it is being opened', async () => {
    const held: (() => void)[] = [];
    const lookup = ((_hostname: string, _options: unknown, cb: (...args: unknown[]) => void) => {
      held.push(() => cb(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })));
    }) as unknown as LookupFunction;
    const fwd = await startForward({ connect_ports: [echoPort], max_tunnels: 1 }, { lookup });
    try {
      const client = connect({ port: fwd.port, host: '127.0.0.1' });
      client.on('error', () => {});
      client.write(`CONNECT slow.example:${echoPort} HTTP/1.1\r\nHost: slow.example:${echoPort}\r\n\r\n`);
      await waitFor(() => fwd.proxy.openingTunnels === 1, 5_000, 'the tunnel to be opening');
      const refused = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
      expect(refused.status).toBe(503);
      // The waiting client goes away: the attempt is aborted and the slot freed.
      client.destroy();
      await waitFor(() => fwd.proxy.openingTunnels === 0, 5_000, 'the aborted tunnel to free its slot');
      await tunnelWorks(fwd.port, `127.0.0.1:${echoPort}`);
      expect(fwd.handled.some((h) => h.status === 499)).toBe(true);
    } finally {
      for (const release of held.splice(0)) release();
      await fwd.close();
    }
  });
});

describe('CONNECT while the target connection opens', () => {
  it('keeps the bytes a client sends before the 200 and delivers them through the tunnel', async () => {
    const held: (() => void)[] = [];
    const lookup = ((_hostname: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      held.push(() => (options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
    }) as unknown as LookupFunction;
    const fwd = await startForward({ connect_ports: [echoPort] }, { lookup });
    try {
      const client = connect({ port: fwd.port, host: '127.0.0.1' });
      let text = '';
      client.on('data', (d: Buffer) => (text += d.toString()));
      client.write(`CONNECT later.example:${echoPort} HTTP/1.1\r\nHost: later.example:${echoPort}\r\n\r\nfirst-`);
      await waitFor(() => held.length === 1, 5_000, 'the lookup');
      client.write('second');
      await new Promise((r) => setTimeout(r, 50));
      held.shift()!();
      await waitFor(() => text.includes('second'), 5_000, 'the echo');
      expect(text).toBe('HTTP/1.1 200 Connection Established\r\n\r\nfirst-second');
      client.destroy();
    } finally {
      await fwd.close();
    }
  });
});

describe('Max-Forwards on OPTIONS and TRACE (RFC 9110 §7.6.2)', () => {
  let fwd: RunningForward;
  beforeAll(async () => {
    fwd = await startForward();
  });
  afterAll(() => fwd.close());

  it('answers OPTIONS with Max-Forwards: 0 itself', async () => {
    const before = origin.requests.length;
    const r = await viaProxy(fwd.url, `${origin.url}/options`, { method: 'OPTIONS', headers: { 'max-forwards': '0' } });
    expect(r.status).toBe(200);
    expect(r.headers.allow).toContain('OPTIONS');
    expect(r.body).toBe('');
    expect(origin.requests.length).toBe(before);
  });

  it('answers TRACE with Max-Forwards: 0 itself, echoing the request without credentials', async () => {
    const before = origin.requests.length;
    const r = await viaProxy(fwd.url, `${origin.url}/trace?q=1`, {
      method: 'TRACE',
      headers: { 'max-forwards': '0', 'x-probe': 'here', cookie: 'session=secret', authorization: 'Basic c2VjcmV0', 'proxy-authorization': 'Basic c2VjcmV0' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('message/http');
    expect(r.body.startsWith(`TRACE ${origin.url}/trace?q=1 HTTP/1.1\r\n`)).toBe(true);
    expect(r.body).toContain('x-probe: here\r\n');
    expect(r.body).toContain('max-forwards: 0\r\n');
    expect(r.body).not.toMatch(/secret|c2VjcmV0/);
    expect(origin.requests.length).toBe(before);
  });

  it('decrements Max-Forwards when relaying OPTIONS/TRACE, and leaves other methods alone', async () => {
    const options = await viaProxy(fwd.url, `${origin.url}/mf`, { method: 'OPTIONS', headers: { 'max-forwards': '3' } });
    expect((JSON.parse(options.body) as { headers: Record<string, string> }).headers['max-forwards']).toBe('2');
    const trace = await viaProxy(fwd.url, `${origin.url}/mf`, { method: 'TRACE', headers: { 'max-forwards': '1' } });
    expect((JSON.parse(trace.body) as { headers: Record<string, string> }).headers['max-forwards']).toBe('0');
    const get = await viaProxy(fwd.url, `${origin.url}/mf`, { headers: { 'max-forwards': '0' } });
    expect(get.status).toBe(200);
    expect((JSON.parse(get.body) as { headers: Record<string, string> }).headers['max-forwards']).toBe('0');
    const junk = await viaProxy(fwd.url, `${origin.url}/mf`, { method: 'OPTIONS', headers: { 'max-forwards': 'zero' } });
    expect((JSON.parse(junk.body) as { headers: Record<string, string> }).headers['max-forwards']).toBe('zero');
  });
});

/** Ports free right now on 127.0.0.1 (for listeners that must be configured with a fixed port). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<Server>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
