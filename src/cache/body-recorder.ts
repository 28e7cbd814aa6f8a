/**
 * Streams an upstream body to the client while keeping a copy for the store.
 *
 * - The copy is handed to `onComplete` only when the upstream body ended cleanly and stayed within
 *   `limit` bytes (else `onComplete(null)`); the client's stream ends after `onComplete` settles, so
 *   the next request finds the entry stored.
 * - An upstream error, or an upstream that closes without ending, destroys the client stream with an
 *   error (the client sees a broken transfer, never a clean short one) and stores nothing.
 * - A client stream destroyed by its consumer (the client went away) destroys the upstream body and
 *   stores nothing.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';

export class BodyRecorder extends Transform {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private overflow = false;
  private settled = false;

  constructor(
    source: Readable,
    private readonly limit: number,
    private readonly onComplete: (body: Buffer | null) => Promise<void>,
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

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.overflow) {
      this.bytes += chunk.length;
      if (this.bytes > this.limit) {
        this.overflow = true;
        this.chunks = [];
      } else {
        this.chunks.push(chunk);
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const body = this.overflow ? null : this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    this.finish(body).then(
      () => callback(),
      () => callback(),
    );
  }

  private finish(body: Buffer | null): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.onComplete(body);
  }
}
