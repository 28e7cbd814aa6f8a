/**
 * The target → client half of a direct CONNECT tunnel, without Node's stream machinery in between:
 * the target socket reads straight into this relay's buffer (net `onread`) and each read is written
 * to the client from there. `pipe()` allocates a 64 KiB buffer per read, queues it in a Readable and
 * emits it as an event; those allocations (external memory that also drives full GCs) and events
 * were most of Portico's CPU per megabyte.
 *
 * A write that the kernel does not take at once keeps referencing the buffer (libuv writes from it
 * without a copy), so reading pauses until the client has nothing pending. The buffer starts small
 * (most tunnels carry small TLS records and sit idle) and grows while reads fill it (a bulk
 * transfer): fewer, larger reads and writes per megabyte.
 */
import type { OnReadOpts } from 'node:net';
import type { Duplex } from 'node:stream';

const INITIAL_BUFFER_BYTES = 16 * 1024;
const MAX_BUFFER_BYTES = 256 * 1024;
const GROWTH_FACTOR = 4;

export class DownstreamRelay {
  /** For net.connect(): the target socket reads into this relay. */
  readonly onread: OnReadOpts;
  private buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  private target: Duplex | null = null;
  private client: Duplex | null = null;
  /** Reading stopped because a write from the buffer is still in flight. */
  private waiting = false;

  constructor() {
    this.onread = { buffer: () => this.buffer, callback: (bytes, buffer) => this.relay(bytes, buffer as Buffer) };
  }

  /**
   * Starts reading the target (a socket made with `onread` and paused before it connected) into the
   * client; the target's end is passed on once everything before it is written.
   */
  start(target: Duplex, client: Duplex): void {
    this.target = target;
    this.client = client;
    target.once('end', () => client.end());
    target.resume();
  }

  /** One read from the target: returns false to stop reading while the buffer is still being written. */
  private relay(bytes: number, buffer: Buffer): boolean {
    const client = this.client!;
    client.write(buffer.subarray(0, bytes), this.onWritten);
    if (bytes === buffer.length && buffer.length < MAX_BUFFER_BYTES) this.buffer = Buffer.allocUnsafe(buffer.length * GROWTH_FACTOR);
    if (client.writableLength === 0) return true;
    this.waiting = true;
    return false;
  }

  private readonly onWritten = (err?: Error | null): void => {
    if (!this.waiting || err || this.client!.writableLength > 0) return;
    this.waiting = false;
    if (!this.target!.destroyed) this.target!.resume();
  };
}
