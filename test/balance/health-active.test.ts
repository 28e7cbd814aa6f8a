import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import type { HealthSpec, ServerSpec } from '../../src/balance/types.js';
import { recordingLogger } from './logs.js';
import { poolSpec, request, server } from './helpers.js';
import { Backend } from '../../src/balance/backend.js';

const servers: http.Server[] = [];
const pools: Pool[] = [];

afterEach(async () => {
  for (const pool of pools.splice(0)) pool.stop();
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

/** A loopback origin whose /health answers with `state.status`, or never answers when `state.hang`. */
async function origin(): Promise<{ url: string; state: { status: number; hang: boolean; checks: number; paths: string[]; open: number } }> {
  const state = { status: 200, hang: false, checks: 0, paths: [] as string[], open: 0 };
  const s = http.createServer((req, res) => {
    state.checks++;
    state.paths.push(req.url ?? '');
    if (state.hang) return;
    res.writeHead(state.status, { 'content-type': 'text/plain' }).end('ok');
  });
  s.on('connection', (socket) => {
    state.open++;
    socket.on('close', () => state.open--);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, state };
}

/** A loopback address where nothing listens. */
async function refusingUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function health(overrides: Partial<HealthSpec> = {}): HealthSpec {
  return { path: '/health', intervalMs: 30, timeoutMs: 200, rise: 2, fall: 2, expectStatus: [], host: undefined, ...overrides };
}

function startPool(serverSpecs: ServerSpec[], spec: HealthSpec) {
  const { log, lines } = recordingLogger();
  const pool = new Pool(poolSpec({ servers: serverSpecs, health: spec }), { registry: new HealthRegistry(), log });
  pools.push(pool);
  pool.start();
  return { pool, lines };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('active health checks (real loopback servers)', () => {
  it('takes a backend out after `fall` failed checks and puts it back after `rise`', async () => {
    const a = await origin();
    const b = await origin();
    const { pool, lines } = startPool([server(a.url), server(b.url)], health());
    await waitFor(() => a.state.checks >= 2, 'the first checks');
    expect(a.state.paths[0]).toBe('/health');
    expect(pool.snapshot()[0]!.state).toBe('up');

    a.state.status = 500;
    const failedFrom = a.state.checks;
    await waitFor(() => pool.snapshot()[0]!.state === 'down', 'backend down');
    expect(a.state.checks - failedFrom).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 6; i++) {
      const chosen = pool.acquire(request(), null) as Backend;
      expect(chosen.url.port).toBe(new URL(b.url).port);
      pool.release(chosen, 'ok', 1);
    }

    a.state.status = 200;
    const recoveredFrom = a.state.checks;
    await waitFor(() => pool.snapshot()[0]!.state === 'up', 'backend up');
    expect(a.state.checks - recoveredFrom).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.msg === 'backend down' || l.msg === 'backend up').map((l) => l.msg)).toEqual(['backend down', 'backend up']);
    expect(lines[0]).toMatchObject({ pool: 'test', reason: expect.stringContaining('500') });
  });

  it('counts a check that times out as a failure', async () => {
    const a = await origin();
    a.state.hang = true;
    const { pool, lines } = startPool([server(a.url)], health({ timeoutMs: 40, fall: 1, intervalMs: 10_000 }));
    await waitFor(() => pool.snapshot()[0]!.state === 'down', 'backend down');
    expect(lines.find((l) => l.msg === 'backend down')!.reason).toMatch(/timed out after 40ms/);
    await waitFor(() => a.state.open === 0, 'the timed-out check to be closed');
    expect(a.state.checks).toBe(1);
  });

  it('counts a refused connection as a failure', async () => {
    const url = await refusingUrl();
    const { pool, lines } = startPool([server(url)], health({ fall: 2 }));
    await waitFor(() => pool.snapshot()[0]!.state === 'down', 'backend down');
    expect(lines.find((l) => l.msg === 'backend down')!.reason).toMatch(/ECONNREFUSED/);
    expect(() => pool.acquire(request(), null)).toThrow(expect.objectContaining({ code: 'no_backend' }));
  });

  it('accepts only the expected status codes when given, and sends the configured Host', async () => {
    const a = await origin();
    let host = '';
    servers[0]!.prependListener('request', (req: http.IncomingMessage) => (host = req.headers.host ?? ''));
    a.state.status = 204;
    const { pool } = startPool([server(a.url)], health({ expectStatus: [200], fall: 1, host: 'app.example' }));
    await waitFor(() => pool.snapshot()[0]!.state === 'down', 'backend down');
    expect(host).toBe('app.example');
    a.state.status = 200;
    await waitFor(() => pool.snapshot()[0]!.state === 'up', 'backend up');
  });

  it('stops checking after stop(), and aborts a check in flight', async () => {
    const a = await origin();
    a.state.hang = true;
    const { pool } = startPool([server(a.url)], health({ timeoutMs: 5_000 }));
    await waitFor(() => a.state.checks === 1, 'the first check');
    expect(a.state.open).toBe(1);
    pool.stop();
    await waitFor(() => a.state.open === 0, 'the check connection to close');
    const checks = a.state.checks;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(a.state.checks).toBe(checks);
    expect(pool.snapshot()[0]!.state).toBe('up');
  });
});
