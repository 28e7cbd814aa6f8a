// A redis-server of the bench's own for the rows of Portico's shared tier (cache.redis): one per row,
// on 127.0.0.1 and a free port, nothing written to disk, stopped by its PID with the row. Its command
// counter (INFO stats) shows where a row's hits came from: a hit from Redis costs at least one command,
// a hit from memory none.
import net from 'node:net';
import path from 'node:path';
import { freePort, startProcess, waitForPort } from './procs.mjs';

/**
 * Starts redis-server in `dir` (its log goes there). `maxmemory` bounds what the miss rows leave
 * behind (a new key every request); volatile-lru is what Portico's README suggests (every key has a TTL).
 * Returns { port, proc, url, commands() }.
 */
export async function startRedis(bin, dir) {
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory', '1gb', '--maxmemory-policy', 'volatile-lru'];
  const proc = startProcess('redis-server', bin, args, { logFile: path.join(dir, 'redis.log') });
  await waitForPort(port, proc);
  const redis = {
    port,
    proc,
    url: `redis://127.0.0.1:${port}`,
    polls: 0,
    /** Commands the server has processed so far, excluding our own INFO polls. */
    async commands() {
      const info = await command(port, 'INFO stats');
      const m = /total_commands_processed:(\d+)/.exec(info);
      if (!m) throw new Error(`unexpected INFO stats reply: ${info.slice(0, 200)}`);
      // An INFO is counted once it has run: this reply counts every earlier poll, not itself.
      return Number(m[1]) - redis.polls++;
    },
  };
  return redis;
}

/** One inline command on a fresh connection; resolves with the bulk-string reply as text. */
function command(port, line) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    socket.setTimeout(5000, () => socket.destroy(new Error(`redis ${line}: timed out`)));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.toString('latin1', 0, eol);
      if (head[0] !== '$') {
        socket.destroy();
        reject(new Error(`redis ${line}: ${head}`));
        return;
      }
      const length = Number(head.slice(1));
      if (buf.length < eol + 2 + length) return;
      socket.destroy();
      resolve(buf.toString('utf8', eol + 2, eol + 2 + length));
    });
  });
}
