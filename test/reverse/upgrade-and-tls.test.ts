/** WebSocket pass-through and TLS termination on tls_listen. */
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
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

  it('a reload swaps the certificate on the running listener: no restart needed', async () => {
    const before = await selfSignedCert('before.test');
    const after = await selfSignedCert('after.test');
    const config = (cert: typeof before): ConfigInput => ({
      reverse: { tls_listen: '127.0.0.1:0', tls: { cert: cert.certPath, key: cert.keyPath }, routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origin.url }] } },
    });
    const q = await startPortico(config(before));
    try {
      const tlsPort = Number(new URL(q.reverseTlsUrl!).port);
      expect(await servedName(tlsPort)).toBe('before.test');
      const outcome = q.portico.reload(validateConfig(config(after)));
      expect(outcome.changes).toContain('reverse.tls: changed');
      expect(outcome.restartNeeded).toEqual([]);
      expect(await servedName(tlsPort)).toBe('after.test');
    } finally {
      await q.stop();
    }
  });
});

/** The common name of the certificate a new TLS connection to 127.0.0.1:`port` is shown. */
function servedName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const name = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(String(name));
    });
    socket.on('error', reject);
  });
}
