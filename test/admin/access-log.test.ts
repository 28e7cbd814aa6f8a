/** The access log: one JSON line per request with what the issue lists; log.anonymize leaves out the client. */
import { describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { reverseConfig, startPortico } from '../helpers/portico.js';
import { recordingLogger } from '../balance/logs.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function origin(): Promise<Origin> {
  const o = await startOrigin((_req, res) => {
    res.setHeader('cache-control', 'max-age=60');
    res.end('x'.repeat(1000));
  });
  cleanup.push(() => o.close());
  return o;
}

describe('access log', () => {
  it('has door, client, method, URL, status, cache result, backend, bytes and duration', async () => {
    const o = await origin();
    const { log, lines } = recordingLogger();
    const p = await startPortico(reverseConfig([o.url]), log);
    cleanup.push(() => p.stop());
    await request(`${p.reverseUrl}/page?q=1`);
    await request(`${p.reverseUrl}/page?q=1`);
    const entries = lines.filter((l) => l.msg === 'request') as any[];
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ door: 'reverse', client: '127.0.0.1', method: 'GET', url: '/page?q=1', status: 200, cache: 'miss', upstream: o.url });
    expect(entries[1]).toMatchObject({ cache: 'hit', status: 200 });
    for (const e of entries) {
      expect(e.bytes).toBeGreaterThan(1000);
      expect(e.ms).toBeGreaterThanOrEqual(0);
    }
  });

  it('leaves out the client address with log.anonymize', async () => {
    const o = await origin();
    const { log, lines } = recordingLogger();
    const p = await startPortico(reverseConfig([o.url], {}, { log: { anonymize: true } }), log);
    cleanup.push(() => p.stop());
    await request(`${p.reverseUrl}/page`);
    const entry = lines.find((l) => l.msg === 'request') as any;
    expect(entry).toMatchObject({ door: 'reverse', method: 'GET', status: 200 });
    expect(entry).not.toHaveProperty('client');
  });
});
