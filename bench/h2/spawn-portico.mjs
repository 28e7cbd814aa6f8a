// Starts Portico from dist/ with `conf` (a config with a reverse `tls_listen` on port 0) and resolves
// once its TLS listener is up, with the child process and the port it bound (read from its JSON log:
// the config must keep `log.level: info`). Shared by the h2 measurements in this folder.
import { spawn } from 'node:child_process';
import path from 'node:path';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export async function spawnPortico(conf) {
  const child = spawn(process.execPath, [path.join(repo, 'dist', 'cli.js'), '--config', conf], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buffer = '';
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`portico exited (${code}) before its TLS listener was up`)));
    child.stdout.on('data', (d) => {
      buffer += d;
      const m = /"listener":"reverseTls","address":"[^"]*:(\d+)"/.exec(buffer);
      if (m) resolve(Number(m[1]));
    });
  });
  child.removeAllListeners('exit');
  child.stdout.removeAllListeners('data');
  child.stdout.resume();
  return { child, port };
}
