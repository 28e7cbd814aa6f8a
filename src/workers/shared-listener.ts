/**
 * The listening sockets the supervisor holds for the life of the service. Each is bound once, here, and
 * passed to every worker (over IPC, as a descriptor), which listens on it and accepts its own
 * connections: no connection passes through the supervisor. The supervisor never accepts on its copy;
 * it only keeps the socket open, so while no worker listens (a worker died, the spare is taking over)
 * connections wait in the socket's accept queue instead of being refused.
 *
 * The handle is Node's internal TCP handle, made with `net._createServerHandle` — exported by Node for
 * its own cluster module, which shares listening sockets between processes the same way (cluster's
 * "SCHED_NONE"). A handle made by it is bound but not listening: the first worker's listen() makes the
 * socket listen, and it keeps listening as long as any process holds it. Binding reports only some
 * errors (an address already in use shows at listen() time), so each address is first tried with a
 * plain listen, which says exactly what is wrong.
 */
import * as net from 'node:net';
import { ConfigError } from '../config/errors.js';
import { formatAddress } from '../config/units.js';
import { listenOn, type ListenerSpec } from '../listener-specs.js';

/** A bound TCP handle, as Node's IPC passes it ("net.Native"). */
export interface SharedHandle {
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: 4 | 6) => SharedHandle | number;
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

/** Binds `spec`'s address for the workers to listen on; rejects with ConfigError when it cannot be listened on. */
export async function bindShared(spec: ListenerSpec): Promise<{ handle: SharedHandle; address: string }> {
  const probe = net.createServer();
  const address = await listenOn(probe, spec);
  const bound = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const handle = createServerHandle(bound.address, bound.port, bound.family === 'IPv6' ? 6 : 4);
  if (typeof handle === 'number') throw new ConfigError([`${spec.key}: address ${formatAddress(spec.address)} cannot be listened on (error ${handle})`]);
  return { handle, address };
}
