/** Upstream proxy chaining: plain requests and CONNECT tunnels go through the upstream proxy (HTTP or SOCKS5), from config or the environment. */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { OriginConnector } from '../../src/forward/origin-connector.js';
import { silentLogger } from '../../src/core/log.js';
import { viaProxy, waitFor } from '../helpers/http.js';
import { deadAddress, startOrigin, type Origin } from '../helpers/origin.js';
import { connectThrough, curl, fakeLookup, hasCurl, httpsGetOverTunnel, startForward, startHttpsOrigin, type HttpsOrigin, type RunningForward } from './helpers.js';

let origin: Origin;
let secure: HttpsOrigin;
let upstream: RunningForward;
let downstream: RunningForward;

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`origin ${req.url} via=${req.headers.via ?? 'none'}`));
  secure = await startHttpsOrigin();
  upstream = await startForward({ connect_ports: [secure.port] });
  downstream = await startForward({ upstream_proxy: upstream.url, connect_ports: [secure.port] });
});

afterAll(async () => {
  await Promise.all([downstream.close(), upstream.close()]);
  await Promise.all([origin.close(), secure.close()]);
});

const waitUntil = (check: () => boolean) => waitFor(check, 5_000, 'the upstream proxy to see it');

describe('forward.upstream_proxy: http://', () => {
  it('sends plain requests through the upstream proxy', async () => {
    const before = upstream.handled.length;
    const r = await viaProxy(downstream.url, `${origin.url}/chained`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('origin /chained via=none');
    await waitUntil(() => upstream.handled.length === before + 1);
    expect(downstream.handled.at(-1)!.record.upstream).toBe(`${origin.url} via ${upstream.url}`);
  });

  it('opens CONNECT tunnels through the upstream proxy', async () => {
    const tunnel = await connectThrough(downstream.port, `127.0.0.1:${secure.port}`);
    expect(tunnel.status).toBe(200);
    expect(upstream.proxy.openTunnels).toBe(1);
    const r = await httpsGetOverTunnel(tunnel.socket, 'localhost', '/through-two');
    expect(r.body).toContain('secure hello');
    r.tls.destroy();
    tunnel.socket.destroy();
    await waitUntil(() => upstream.proxy.openTunnels === 0 && downstream.proxy.openTunnels === 0);
    expect(downstream.handled.at(-1)!.record.upstream).toBe(`127.0.0.1:${secure.port} via ${upstream.url}`);
  });

  it.skipIf(!hasCurl)('works for curl -x and curl -p -x', async () => {
    const tunnelsBefore = upstream.handled.length;
    const plain = await curl(['-x', downstream.url, `${origin.url}/curl-chain`]);
    expect(plain.stdout).toBe('origin /curl-chain via=none');
    const tls = await curl(['-p', '-x', downstream.url, '-k', `${secure.url}/curl-chain`]);
    expect(tls.stdout).toContain('secure hello');
    await waitUntil(() => upstream.handled.length >= tunnelsBefore + 2);
  });

  it('passes credentials from the upstream proxy URL to the upstream proxy only', async () => {
    const guarded = await startForward({ connect_ports: [secure.port], auth: { users: { up: 'stream' } } });
    const chained = await startForward({ upstream_proxy: `http://up:stream@127.0.0.1:${guarded.port}`, connect_ports: [secure.port] });
    try {
      const r = await viaProxy(chained.url, `${origin.url}/authed`);
      expect(r.status).toBe(200);
      expect(origin.requests.at(-1)!.headers['proxy-authorization']).toBeUndefined();
      const tunnel = await connectThrough(chained.port, `127.0.0.1:${secure.port}`);
      expect(tunnel.status).toBe(200);
      tunnel.socket.destroy();
    } finally {
      await Promise.all([chained.close(), guarded.close()]);
    }
  });

  it('maps upstream proxy failures: refused → 502, denied CONNECT → 403, silent → 504', async () => {
    const dead = await deadAddress();
    const toDead = await startForward({ upstream_proxy: dead, connect_ports: [secure.port], timeouts: { connect: '300ms' } });
    const denying = await startForward({ connect_ports: [secure.port], rules: [{ name: 'upstream-says-no', action: 'deny', method: 'CONNECT' }] });
    const toDenying = await startForward({ upstream_proxy: denying.url, connect_ports: [secure.port] });
    const silent: Server = createServer((s: Socket) => s.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const toSilent = await startForward({ upstream_proxy: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, connect_ports: [secure.port], timeouts: { connect: '300ms' } });
    try {
      const refused = await connectThrough(toDead.port, `127.0.0.1:${secure.port}`);
      expect(refused.status).toBe(502);
      expect(refused.headers['proxy-status']).toMatch(/connection_refused/);
      expect(refused.body).toContain('upstream proxy');
      const plainRefused = await viaProxy(toDead.url, `${origin.url}/x`);
      expect(plainRefused.status).toBe(502);
      const denied = await connectThrough(toDenying.port, `127.0.0.1:${secure.port}`);
      expect(denied.status).toBe(403);
      expect(denied.body).toContain('answered the CONNECT');
      const timedOut = await connectThrough(toSilent.port, `127.0.0.1:${secure.port}`);
      expect(timedOut.status).toBe(504);
      expect(timedOut.headers['proxy-status']).toMatch(/connection_timeout/);
    } finally {
      await Promise.all([toDead.close(), toDenying.close(), denying.close(), toSilent.close()]);
      silent.close();
    }
  });
});

describe('forward.upstream_proxy: socks5://', () => {
  it('sends plain requests and CONNECT tunnels through a SOCKS5 proxy', async () => {
    const socks = await startSocks5();
    const chained = await startForward({ upstream_proxy: `socks5://127.0.0.1:${socks.port}`, connect_ports: [secure.port] });
    try {
      const r = await viaProxy(chained.url, `${origin.url}/socks`);
      expect(r.body).toBe('origin /socks via=none');
      expect(socks.targets).toContain(`127.0.0.1:${origin.port}`);
      const tunnel = await connectThrough(chained.port, `127.0.0.1:${secure.port}`);
      expect(tunnel.status).toBe(200);
      const t = await httpsGetOverTunnel(tunnel.socket, 'localhost', '/socks-tls');
      expect(t.body).toContain('secure hello');
      t.tls.destroy();
      expect(socks.targets).toContain(`127.0.0.1:${secure.port}`);
    } finally {
      await chained.close();
      await socks.close();
    }
  });
});

describe('HTTP_PROXY / HTTPS_PROXY / NO_PROXY', () => {
  it('chains through the proxy named by the environment, except for NO_PROXY hosts', async () => {
    const lookup = fakeLookup({ 'bypass.test': '127.0.0.1', 'chained.test': '127.0.0.1' });
    const env = { HTTP_PROXY: upstream.url, https_proxy: upstream.url, NO_PROXY: 'localhost,.bypass.test' };
    const fromEnv = await startForward({ upstream_proxy: undefined, connect_ports: [secure.port] }, { env, lookup });
    try {
      expect(fromEnv.proxy.connector.chained).toBe(true);
      const before = upstream.handled.length;
      const direct = await viaProxy(fromEnv.url, `http://bypass.test:${origin.port}/direct`);
      expect(direct.status).toBe(200);
      expect(fromEnv.handled.at(-1)!.record.upstream).toBe(`http://bypass.test:${origin.port}`);
      const chained = await viaProxy(fromEnv.url, `${origin.url}/env-chained`);
      expect(chained.status).toBe(200);
      await waitUntil(() => upstream.handled.length === before + 1);
      const tunnel = await connectThrough(fromEnv.port, `127.0.0.1:${secure.port}`);
      expect(tunnel.status).toBe(200);
      expect(upstream.proxy.openTunnels).toBe(1);
      tunnel.socket.destroy();
      await waitUntil(() => upstream.proxy.openTunnels === 0);
    } finally {
      await fromEnv.close();
    }
  });

  it('"direct" ignores the environment', async () => {
    const direct = await startForward({ upstream_proxy: 'direct' }, { env: { HTTP_PROXY: upstream.url } });
    try {
      expect(direct.proxy.connector.chained).toBe(false);
    } finally {
      await direct.close();
    }
  });

  it('refuses an upstream proxy that is this proxy itself (config: error; environment: ignored)', () => {
    const own = { host: '127.0.0.1', port: 3128 };
    expect(() => new OriginConnector({ upstreamProxy: 'http://localhost:3128', env: {}, log: silentLogger, ownAddress: own, connectMs: 1_000 })).toThrow(ConfigError);
    expect(() => new OriginConnector({ upstreamProxy: 'http://localhost:3128', env: {}, log: silentLogger, ownAddress: own, connectMs: 1_000 })).toThrow(/forward\.upstream_proxy: expected another proxy/);
    const fromEnv = new OriginConnector({ upstreamProxy: undefined, env: { http_proxy: '127.0.0.1:3128' }, log: silentLogger, ownAddress: own, connectMs: 1_000 });
    expect(fromEnv.chained).toBe(false);
    const other = new OriginConnector({ upstreamProxy: undefined, env: { http_proxy: '127.0.0.1:3129' }, log: silentLogger, ownAddress: own, connectMs: 1_000 });
    expect(other.chained).toBe(true);
    other.stop();
  });
});

/** A minimal SOCKS5 proxy (no auth, CONNECT only) that records its targets. */
async function startSocks5(): Promise<{ port: number; targets: string[]; close(): Promise<void> }> {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client: Socket) => {
    sockets.add(client);
    client.on('error', () => {});
    client.once('data', (greeting: Buffer) => {
      if (greeting[0] !== 5) return client.destroy();
      client.write(Buffer.from([5, 0]));
      client.once('data', (req: Buffer) => {
        let host: string;
        let offset: number;
        if (req[3] === 1) {
          host = [...req.subarray(4, 8)].join('.');
          offset = 8;
        } else if (req[3] === 3) {
          const len = req[4]!;
          host = req.subarray(5, 5 + len).toString();
          offset = 5 + len;
        } else return client.destroy();
        const port = req.readUInt16BE(offset);
        targets.push(`${host}:${port}`);
        const target = connect({ host, port }, () => {
          client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          const rest = req.subarray(offset + 2);
          if (rest.length) target.write(rest);
          client.pipe(target);
          target.pipe(client);
        });
        sockets.add(target);
        target.on('error', () => client.destroy());
        client.on('close', () => target.destroy());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    targets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
