// Peer: a bare Node http server returning a constant body of SIZE bytes with the headers a cache
// hit would carry. The ceiling for anything Node does per request.
// Usage: node node-ceiling.mjs PORT SIZE
import http from 'node:http';

const [port, size] = process.argv.slice(2).map(Number);
const body = Buffer.alloc(size, 'x');
http
  .createServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'public, max-age=3600',
    });
    res.end(body);
  })
  .listen(port, '127.0.0.1');
