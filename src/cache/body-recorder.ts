/**
 * Streams an upstream body to the client while keeping a copy for the store: in memory (a memory
 * store), or written to the store's file as it arrives (a disk store: a large body is never held in
 * memory, and the relay waits for the disk).
 *
 * - The copy is handed to `onComplete` only when the upstream body ended cleanly and stayed within
 *   `limit` bytes (else `onComplete(null)`); the client's stream ends after `onComplete` settles, so
 *   the next request finds the entry stored.
 * - An upstream error, or an upstream that closes without ending, destroys the client stream with an
 *   error (the client sees a broken transfer, never a clean short one) and stores nothing.
 * - A client that goes away destroys the upstream body and stores nothing — unless `abandon()` finds
 *   the response far enough along (`quickAbort`, Squid's quick_abort_pct): then the recorder reads the
 *   rest on its own and stores it.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { BodyWriter } from './stored-response.js';

export interface RecorderOptions {
  /** Largest body kept, in bytes. */
  readonly limit: number;
  /** Writes the copy into the store as it arrives; null keeps it in memory. */
  readonly writer: BodyWriter | null;
  /** The body's declared length (Content-Length), if any. */
  readonly expectedLength: number | null;
  /** Fraction (0…1) of the declared length after which an abandoned body is still stored; above 1: never. */
  readonly quickAbort: number;
}

export class BodyRecorder extends Transform {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private overflow = false;
  private settled = false;
  private abandoned = false;

  constructor(
    source: Readable,
    private readonly options: RecorderOptions,
    private readonly onComplete: (body: Buffer | BodyWriter | null) => Promise<void>,
  ) {
    super();
    source.once('error', (err) => this.destroy(err));
    source.once('close', () => {
      if (!source.readableEnded) this.destroy(new Error('the upstream body closed before it was complete'));
    });
    this.once('close', () => {
      if (!source.readableEnded && !source.destroyed) source.destroy();
      this.finish(null);
    });
    source.pipe(this);
  }

  /**
   * The client went away. Returns true when the response is far enough along to be finished into the
   * cache anyway (the recorder then keeps reading it, with nobody to relay it to); false when it should
   * be dropped (the caller destroys the recorder, which cuts the upstream).
   */
  abandon(): boolean {
    const expected = this.options.expectedLength;
    if (this.overflow || expected === null || expected === 0 || this.bytes / expected < this.options.quickAbort) return false;
    this.abandoned = true;
    // Nobody reads the relayed side any more (after the pipe to the client has let go of it).
    setImmediate(() => this.resume());
    return true;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.overflow) {
      callback(null, chunk);
      return;
    }
    this.bytes += chunk.length;
    if (this.bytes > this.options.limit) {
      this.overflow = true;
      this.chunks = [];
      this.options.writer?.abort();
      callback(null, chunk);
      return;
    }
    const writer = this.options.writer;
    if (writer === null) {
      this.chunks.push(chunk);
      callback(null, chunk);
      return;
    }
    const wait = writer.write(chunk);
    if (wait === null) callback(null, this.abandoned ? undefined : chunk);
    else wait.then(() => callback(null, this.abandoned ? undefined : chunk), (err: unknown) => callback(err as Error));
  }

  override _flush(callback: TransformCallback): void {
    let body: Buffer | BodyWriter | null;
    if (this.overflow) body = null;
    else if (this.options.writer !== null) body = this.options.writer;
    else body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    this.finish(body).then(
      () => callback(),
      () => callback(),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.settled) this.options.writer?.abort();
    callback(err);
  }

  private finish(body: Buffer | BodyWriter | null): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.onComplete(body);
  }
}
