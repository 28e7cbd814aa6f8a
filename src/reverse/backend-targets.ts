/** How to reach each backend: address, protocol and the shared keep-alive connection pools. */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Backend } from '../balance/backend.js';
import type { UpstreamTarget } from '../proxy/upstream-request.js';

/** Keep-alive pools shared by every backend (Node keys sockets by host:port). */
export const backendAgents = {
  http: new HttpAgent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo' }),
  https: new HttpsAgent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo' }),
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
