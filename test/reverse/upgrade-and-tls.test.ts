/** WebSocket pass-through and TLS termination on tls_listen. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';

let origin: Origin;
let wss: WebSocketServer;
let p: RunningPortico;
let upgradeHeaders: Record<string, string | string[] | undefined> = {};

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`hello over ${req.headers['x-forwarded-proto']}`));
  wss = new WebSocketServer({ server: origin.server });
  wss.on('connection', (ws, req) => {
    upgradeHeaders = req.headers;
    ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
    ws.send('welcome');
  });
  const tls = await selfSignedCert();
  p = await startPortico({
    reverse: {
      listen: '127.0.0.1:0',
      tls_listen: '127.0.0.1:0',
      tls: { cert: tls.certPath, key: tls.keyPath },
      routes: [{ path: '/', pool: 'app' }],
    },
    pools: { app: { servers: [{ url: origin.url }] } },
  });
});

afterAll(async () => {
  await p.stop();
  wss.close();
  await origin.close();
});

describe('WebSocket', () => {
  it('tunnels an Upgrade both ways with Host and X-Forwarded-For set', async () => {
    const ws = new WebSocket(`${p.reverseUrl.replace('http', 'ws')}/socket`, { headers: { host: 'chat.test' } });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (data) => {
        messages.push(data.toString());
        if (messages.length === 1) ws.send('ping');
        if (messages.length === 2) resolve();
      });
    });
    ws.close();
    expect(messages).toEqual(['welcome', 'echo:ping']);
    expect(upgradeHeaders.host).toBe('chat.test');
    expect(upgradeHeaders['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('TLS termination', () => {
  it('serves HTTPS on tls_listen and tells the backend the client used https', async () => {
    expect(p.reverseTlsUrl).toBeDefined();
    const reply = await request(`${p.reverseTlsUrl}/`, { rejectUnauthorized: false });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello over https');
  });
});
