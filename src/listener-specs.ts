/**
 * Which listeners a config asks for (forward, reverse, reverse TLS, admin), and binding one: what the
 * supervisor needs to bind the sockets its workers share, without loading the servers themselves
 * (src/listeners.ts).
 */
import type { AddressInfo, Server as NetServer } from 'node:net';
import { ConfigError } from './config/errors.js';
import type { Config } from './config/schema.js';
import { formatAddress, type ListenAddress } from './config/units.js';

export type ListenerName = 'forward' | 'reverse' | 'reverseTls' | 'admin';

export type ListeningAddresses = Partial<Record<ListenerName, string>>;

/** Under the supervisor: the listening sockets it bound, by listener (Node TCP handles). */
export type SharedSockets = Partial<Record<ListenerName, object>>;

/** One listener a config asks for: its name, address, and the config key that set it (for errors). */
export interface ListenerSpec {
  readonly name: ListenerName;
  readonly address: ListenAddress;
  readonly key: string;
}

/** The listeners `config` asks for, in a fixed order. */
export function listenerSpecs(config: Config): ListenerSpec[] {
  const specs: ListenerSpec[] = [];
  if (config.forward) specs.push({ name: 'forward', address: config.forward.listen, key: 'forward.listen' });
  const reverse = config.reverse;
  if (reverse?.listen) specs.push({ name: 'reverse', address: reverse.listen, key: 'reverse.listen' });
  if (reverse?.tls_listen && reverse.tls) specs.push({ name: 'reverseTls', address: reverse.tls_listen, key: 'reverse.tls_listen' });
  if (config.admin) specs.push({ name: 'admin', address: config.admin.listen, key: 'admin.listen' });
  return specs;
}

/**
 * Binds `server` to the spec's address — or listens on `handle`, a socket the supervisor bound for it
 * (src/workers/shared-listener.ts); rejects with a ConfigError that says why it cannot.
 */
export function listenOn(server: NetServer, spec: ListenerSpec, handle?: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'is already in use'
          : err.code === 'EACCES'
            ? 'needs more privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
            : err.code === 'EADDRNOTAVAIL'
              ? 'is not an address of this machine'
              : `cannot be listened on (${err.code ?? err.message})`;
      reject(new ConfigError([`${spec.key}: address ${formatAddress(spec.address)} ${why}`]));
    };
    server.once('error', onError);
    const listening = () => {
      server.off('error', onError);
      const bound = server.address() as AddressInfo | null;
      resolve(formatAddress(bound ? { host: bound.address, port: bound.port } : spec.address));
    };
    if (handle === undefined) server.listen(spec.address.port, spec.address.host, listening);
    else server.listen(handle, listening);
  });
}
