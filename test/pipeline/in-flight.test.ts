/**
 * The list of requests in flight (what a fatal-error report names): newest first, and a request leaves
 * it when it finishes, in whatever order requests finish. Real sockets: a backend that holds each
 * request until the test lets it go.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { requestsInFlight } from '../../src/pipeline/session.js';
import { fetchOutcome, waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';

let origin: Origin | undefined;
let portico: RunningPortico | undefined;

afterEach(async () => {
  await portico?.stop();
  await origin?.close();
  portico = origin = undefined;
});

describe('requests in flight', () => {
  it('are listed newest first and leave the list as each one finishes, out of order too', async () => {
    const held = new Map<string, ServerResponse>();
    origin = await startOrigin((req, res) => {
      held.set(req.url ?? '', res);
    });
    portico = await startPortico(reverseConfig([origin.url]));
    const answers: Promise<{ status: number; body: Buffer }>[] = [];
    for (const path of ['/a', '/b', '/c']) {
      answers.push(fetchOutcome(`${portico.reverseUrl}${path}`, { headers: { 'cache-control': 'no-store' } }));
      await waitFor(() => held.has(path), 5_000, `${path} to reach the backend`);
    }
    expect(requestsInFlight(10).map((r) => r.url)).toEqual(['/c', '/b', '/a']);
    expect(requestsInFlight(2).map((r) => r.url)).toEqual(['/c', '/b']);
    expect(requestsInFlight(10)[0]).toMatchObject({ door: 'reverse', method: 'GET', client: '127.0.0.1' });

    // The middle one first, then the newest, then the oldest.
    held.get('/b')!.end('b');
    expect((await answers[1])!.body.toString()).toBe('b');
    await waitFor(() => requestsInFlight(10).length === 2, 5_000, '/b to leave the list');
    expect(requestsInFlight(10).map((r) => r.url)).toEqual(['/c', '/a']);

    held.get('/c')!.end('c');
    await answers[2];
    await waitFor(() => requestsInFlight(10).length === 1, 5_000, '/c to leave the list');
    expect(requestsInFlight(10).map((r) => r.url)).toEqual(['/a']);

    held.get('/a')!.end('a');
    await answers[0];
    await waitFor(() => requestsInFlight(10).length === 0, 5_000, '/a to leave the list');

    // The list is whole again: a new request is its only entry.
    answers.push(fetchOutcome(`${portico.reverseUrl}/d`));
    await waitFor(() => held.has('/d'), 5_000, '/d to reach the backend');
    expect(requestsInFlight(10).map((r) => r.url)).toEqual(['/d']);
    held.get('/d')!.end('d');
    await answers[3];
  });
});
