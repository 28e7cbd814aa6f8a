/**
 * A CONNECT tunnel once both ends are up: bytes flow both ways until either side closes; an end (FIN)
 * is passed on so the last bytes are delivered; an error or the idle timeout closes both sides.
 * Client → target is piped; target → client goes through the connection's DownstreamRelay when it
 * has one (a direct connection), otherwise it is piped too.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TunnelStats } from '../pipeline/session.js';
import type { TunnelConnection } from './origin-connector.js';


export class Tunnel {
  private closed = false;
  private idle = false;

  readonly target: Duplex;

  constructor(
    readonly client: Duplex,
    connection: TunnelConnection,
    head: Buffer,
    idleMs: number,
    private readonly onClose: (tunnel: Tunnel, stats: TunnelStats) => void,
  ) {
    const target = connection.socket;
    this.target = target;
    const destroyBoth = () => {
      client.destroy();
      target.destroy();
    };
    client.on('error', destroyBoth);
    target.on('error', destroyBoth);
    // The client is gone: nothing more can reach it.
    client.once('close', () => {
      target.destroy();
      this.finish();
    });
    // The target is gone: after a clean end (passed on to the client) let the last bytes reach the client,
    // then close it (nothing it sends can be delivered any more); otherwise cut it at once.
    target.once('close', () => {
      if (!target.readableEnded || client.writableFinished) client.destroy();
      else client.once('finish', () => client.destroy());
      this.finish();
    });
    if (idleMs > 0) {
      const onIdle = () => {
        this.idle = true;
        destroyBoth();
      };
      setIdle(client, idleMs, onIdle);
      setIdle(target, idleMs, onIdle);
    }
    if (head.length > 0) target.write(head);
    client.pipe(target);
    if (connection.downstream === null) target.pipe(client);
    else connection.downstream.start(target, client);
  }

  close(): void {
    this.client.destroy();
    this.target.destroy();
  }

  private finish(): void {
    if (this.closed || !(this.client.destroyed || this.client.closed) || !(this.target.destroyed || this.target.closed)) return;
    this.closed = true;
    // Counted on the target side (the client side also carried the CONNECT exchange).
    const socket = this.target as Partial<Socket>;
    this.onClose(this, { up: socket.bytesWritten ?? 0, down: socket.bytesRead ?? 0, idle: this.idle });
  }
}

function setIdle(stream: Duplex, ms: number, onIdle: () => void): void {
  const socket = stream as Partial<Socket>;
  if (typeof socket.setTimeout === 'function') socket.setTimeout(ms, onIdle);
}
