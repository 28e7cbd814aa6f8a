// Peer: node-http-proxy as a reverse proxy (one process, keep-alive upstream agent).
// Usage: node node-http-proxy.mjs PORT TARGET_URL
import http from 'node:http';
import httpProxy from 'http-proxy';

const [port, target] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
proxy.on('error', (err, req, res) => {
  if (res && !res.headersSent && typeof res.writeHead === 'function') {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`bad gateway: ${err.message}\n`);
  } else {
    res?.destroy?.();
  }
});
http.createServer((req, res) => proxy.web(req, res)).listen(Number(port), '127.0.0.1');
