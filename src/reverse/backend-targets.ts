/**
 * How to reach each backend over node:http: address, protocol and the shared keep-alive agents. Used by
 * the WebSocket/Upgrade tunnels; HTTP requests go through the undici pools of backend-client.ts.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Backend } from '../balance/backend.js';
import { UPSTREAM_IDLE_KEEPALIVE_MS, type UpstreamTarget } from '../proxy/upstream-request.js';

/** `timeout`: idle pooled connections are closed by the proxy first (see UPSTREAM_IDLE_KEEPALIVE_MS). */
const AGENT_OPTIONS = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo', timeout: UPSTREAM_IDLE_KEEPALIVE_MS } as const;

/** Keep-alive pools shared by every backend (Node keys sockets by host:port). */
export const backendAgents = {
  http: new HttpAgent(AGENT_OPTIONS),
  https: new HttpsAgent(AGENT_OPTIONS),
} as const;

export function targetFor(backend: Backend): UpstreamTarget {
  const url = backend.url;
  const https = url.protocol === 'https:';
  return {
    protocol: https ? 'https:' : 'http:',
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: Number(url.port) || (https ? 443 : 80),
    agent: https ? backendAgents.https : backendAgents.http,
    label: url.origin,
  };
}
