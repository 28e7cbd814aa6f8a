// The soak run's origins, one process per invocation (so that one can be killed with SIGKILL and
// started again on the same port):
//   node bench/lib/soak-origin.mjs --name b --http PORT[,PORT…] [--echo PORT]
// HTTP: GET [/f]/c/<n>?size=S   Cache-Control: max-age=2 (hits, then revalidations/misses), ETag
//       GET [/f]/nc/<n>?size=S  Cache-Control: no-store (always a miss)
//       GET /health         200
// Every body is `size` bytes derived from the path (bodyFor), so the client can check each byte.
// Echo: a TCP server that sends back what it receives (the CONNECT target).
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

/** The body for `path` (without query) of `size` bytes: deterministic, so the client can check it. */
export function bodyFor(path, size) {
  const seed = createHash('sha256').update(path).digest();
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = 97 + ((seed[i % 32] + i) % 26);
  return out;
}

function parse(argv) {
  const o = { name: 'origin', http: [], echo: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--name') o.name = argv[++i];
    else if (argv[i] === '--http') o.http = argv[++i].split(',').map(Number);
    else if (argv[i] === '--echo') o.echo = Number(argv[++i]);
  }
  return o;
}

function handler(name) {
  return (req, res) => {
    req.resume();
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
      return;
    }
    const size = Math.min(Number(url.searchParams.get('size')) || 1024, 1024 * 1024);
    const body = bodyFor(url.pathname, size);
    const cacheable = /^\/(f\/)?c\//.test(url.pathname);
    const etag = `"${size}-${url.pathname.length}"`;
    if (cacheable && req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag, 'cache-control': 'max-age=2', 'x-backend': name }).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'cache-control': cacheable ? 'max-age=2' : 'no-store',
      etag,
      'x-backend': name,
    });
    res.end(body);
  };
}

async function main() {
  const o = parse(process.argv.slice(2));
  for (const port of o.http) {
    const server = http.createServer({ keepAliveTimeout: 5_000 }, handler(o.name));
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  }
  if (o.echo !== null) {
    const echo = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    });
    await new Promise((resolve, reject) => {
      echo.once('error', reject);
      echo.listen(o.echo, '127.0.0.1', resolve);
    });
  }
  process.stdout.write(`ready ${o.name}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}
