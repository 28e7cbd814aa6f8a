/** CONNECT tunnels: HTTPS through the proxy, ports, failures with reasons, idle timeout, bytes both ways. */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { deadAddress } from '../helpers/origin.js';
import { connectThrough, curl, fakeLookup, hasCurl, httpsGetOverTunnel, startForward, startHttpsOrigin, type HttpsOrigin, type RunningForward } from './helpers.js';

let secure: HttpsOrigin;
let echo: Server;
let echoPort: number;
let deadPort: number;
let fwd: RunningForward;
const lookup = fakeLookup({ 'secure.test': '127.0.0.1' });

beforeAll(async () => {
  secure = await startHttpsOrigin();
  echo = createServer((s: Socket) => {
    s.on('data', (d: Buffer) => {
      if (d.toString() === 'bye') s.end('ciao');
      else s.write(d);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
  deadPort = Number(new URL(await deadAddress()).port);
  fwd = await startForward({ connect_ports: [443, secure.port, echoPort, deadPort] }, { lookup });
});

afterAll(async () => {
  await fwd.close();
  await secure.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

describe.skipIf(!hasCurl)('curl -p -x (--proxytunnel)', () => {
  it('fetches an HTTPS page over CONNECT', async () => {
    const before = secure.paths.length;
    const r = await curl(['-p', '-x', fwd.url, '-k', `${secure.url}/over-tunnel`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('secure hello');
    expect(secure.paths.slice(before)).toEqual(['/over-tunnel']);
  });
});

describe('CONNECT', () => {
  it('opens a tunnel to an HTTPS origin (self-signed certificate) by name and by address', async () => {
    for (const authority of [`secure.test:${secure.port}`, `127.0.0.1:${secure.port}`]) {
      const tunnel = await connectThrough(fwd.port, authority);
      expect(tunnel.status).toBe(200);
      expect(tunnel.head).toMatch(/^HTTP\/1\.1 200 Connection Established/);
      const r = await httpsGetOverTunnel(tunnel.socket, 'localhost', '/raw');
      expect(r.status).toBe(200);
      expect(r.body).toContain('secure hello');
      r.tls.destroy();
    }
  });

  it('relays bytes sent right after the CONNECT head, both ways, until either side closes', async () => {
    const tunnel = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
    tunnel.socket.write('ping');
    const [data] = (await once(tunnel.socket, 'data')) as [Buffer];
    expect(data.toString()).toBe('ping');
    tunnel.socket.write('bye');
    let rest = '';
    tunnel.socket.on('data', (d: Buffer) => (rest += d.toString()));
    await once(tunnel.socket, 'end');
    expect(rest).toBe('ciao');
    tunnel.socket.destroy();
  });

  it('forwards data the client pipelined after the CONNECT request', async () => {
    const socket = connect({ port: fwd.port, host: '127.0.0.1' });
    socket.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\nearly-bytes`);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise<void>((resolve) => {
      const check = () => (text.includes('early-bytes') ? resolve() : socket.once('data', check));
      socket.once('data', check);
    });
    expect(text).toBe(`HTTP/1.1 200 Connection Established\r\n\r\nearly-bytes`);
    socket.destroy();
  });

  it('closes an idle tunnel after tunnel_idle_timeout', async () => {
    const quick = await startForward({ connect_ports: [echoPort], tunnel_idle_timeout: '200ms' });
    try {
      const tunnel = await connectThrough(quick.port, `127.0.0.1:${echoPort}`);
      const started = Date.now();
      await once(tunnel.socket, 'close');
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      await new Promise((r) => setImmediate(r));
      expect(quick.proxy.openTunnels).toBe(0);
      const done = quick.handled.at(-1)!;
      expect(done.status).toBe(200);
    } finally {
      await quick.close();
    }
  });

  it('answers 502 with Proxy-Status connection_refused when the target refuses', async () => {
    const r = await connectThrough(fwd.port, `127.0.0.1:${deadPort}`);
    expect(r.status).toBe(502);
    expect(r.headers['proxy-status']).toMatch(/^portico; error=connection_refused/);
    expect(r.body).toContain('refused');
  });

  it('reports a DNS failure as such', async () => {
    const r = await connectThrough(fwd.port, 'no-such-host.test:443');
    expect(r.status).toBe(502);
    expect(r.headers['proxy-status']).toMatch(/error=dns_error/);
    expect(r.body).toMatch(/DNS lookup failed/);
  });

  it('answers 400 to a malformed CONNECT target and 403 to a port not in connect_ports', async () => {
    expect((await connectThrough(fwd.port, 'no-port-here')).status).toBe(400);
    expect((await connectThrough(fwd.port, 'secure.test:99999')).status).toBe(400);
    const r = await connectThrough(fwd.port, `secure.test:80`);
    expect(r.status).toBe(403);
    expect(r.body).toContain('forward.connect_ports');
  });

  it('counts each finished tunnel once', async () => {
    const before = fwd.handled.length;
    const tunnel = await connectThrough(fwd.port, `127.0.0.1:${echoPort}`);
    tunnel.socket.destroy();
    await waitFor(() => fwd.handled.length > before, 5_000, 'the tunnel to be counted');
    expect(fwd.handled.length).toBe(before + 1);
    expect(fwd.handled.at(-1)!.record.upstream).toBe(`127.0.0.1:${echoPort}`);
  });
});
