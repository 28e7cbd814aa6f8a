/** Dead, failing and unhealthy backends: retries, passive and active health, 502/503 bodies. */
import { describe, expect, it } from 'vitest';
import { request, waitFor } from '../helpers/http.js';
import { deadAddress, startOrigin, type Origin } from '../helpers/origin.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function origin(name: string): Promise<Origin> {
  const o = await startOrigin((_req, res) => res.end(name));
  cleanup.push(() => o.close());
  return o;
}

async function proxy(...args: Parameters<typeof reverseConfig>): Promise<RunningPortico> {
  const p = await startPortico(reverseConfig(...args));
  cleanup.push(() => p.stop());
  return p;
}

describe('failing backends', () => {
  it('a pool with one dead backend among three serves 20 requests with no client error', async () => {
    const a = await origin('a');
    const c = await origin('c');
    const p = await proxy([a.url, await deadAddress(), c.url], { retries: 2 });
    for (let i = 0; i < 20; i++) {
      const reply = await request(`${p.reverseUrl}/x`);
      expect(reply.status).toBe(200);
      expect(['a', 'c']).toContain(reply.body);
    }
  });

  it('a pool with only dead backends answers 502 with a body that says why', async () => {
    const p = await proxy([await deadAddress(), await deadAddress()]);
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(502);
    expect(reply.body).toMatch(/refused/);
    expect(reply.headers['proxy-status']).toMatch(/error=connection_refused/);
  });

  it('passive health never blacks out a pool: with its only backend out, requests still try it, and it answers the moment it is back', async () => {
    // The documented quick start (one --upstream, default passive health) while the app restarts.
    const dead = await deadAddress();
    const p = await proxy([dead]);
    for (let i = 0; i < 5; i++) {
      const reply = await request(`${p.reverseUrl}/x${i}`);
      expect(reply.status).toBe(502);
      expect(reply.headers['proxy-status']).toMatch(/error=connection_refused/);
    }
    expect(p.portico.pools.get('p')!.snapshot()[0]!.state).toBe('down');
    // The app comes back on its port: the very next request is answered, not a 503 for fail_timeout.
    const back = await startOrigin((_req, res) => res.end('back'), { port: Number(new URL(dead).port) });
    cleanup.push(() => back.close());
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('back');
    expect(p.portico.pools.get('p')!.snapshot()[0]!.state).toBe('up');
  });

  it('with every backend out, requests go to them in turn, and a drained backend stays out', async () => {
    const a = await deadAddress();
    const b = await deadAddress();
    const p = await proxy([a, b], { retries: 0, passive: { max_fails: 1, fail_timeout: '30s' } });
    for (let i = 0; i < 4; i++) expect((await request(`${p.reverseUrl}/x`)).status).toBe(502);
    const pool = p.portico.pools.get('p')!;
    expect(pool.snapshot().map((s) => s.state)).toEqual(['down', 'down']);
    expect(pool.snapshot().map((s) => s.requests)).toEqual([2, 2]);
    pool.drain(pool.snapshot()[0]!.id);
    for (let i = 0; i < 2; i++) expect((await request(`${p.reverseUrl}/x`)).status).toBe(502);
    expect(pool.snapshot().map((s) => s.requests)).toEqual([2, 4]);
    pool.drain(pool.snapshot()[1]!.id);
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(503);
    expect(reply.body).toMatch(/Service Unavailable/);
  });

  it('a backend whose /health turns 500 is taken out, and put back when it recovers', async () => {
    let healthy = true;
    const a = await startOrigin((req, res) => {
      if (req.url === '/health') {
        res.statusCode = healthy ? 200 : 500;
        res.end();
      } else res.end('a');
    });
    cleanup.push(() => a.close());
    const b = await origin('b');
    const p = await proxy([a.url, b.url], { health: { path: '/health', interval: '40ms', timeout: '200ms', rise: 2, fall: 2 } });
    const state = () => p.portico.pools.get('p')!.snapshot().find((s) => s.url.startsWith(a.url))!.state;
    healthy = false;
    await waitFor(() => state() === 'down', 3_000, 'backend a down');
    for (let i = 0; i < 6; i++) expect((await request(`${p.reverseUrl}/x`)).body).toBe('b');
    healthy = true;
    await waitFor(() => state() === 'up', 3_000, 'backend a up');
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) bodies.add((await request(`${p.reverseUrl}/x`)).body);
    expect(bodies).toEqual(new Set(['a', 'b']));
  });

  it('an upstream that does not answer in time gives 504', async () => {
    const hang = await startOrigin(() => {
      /* never answers */
    });
    cleanup.push(() => hang.close());
    const p = await proxy([hang.url], { retries: 0, timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(504);
    expect(reply.headers['proxy-status']).toMatch(/http_response_timeout/);
  });
});
