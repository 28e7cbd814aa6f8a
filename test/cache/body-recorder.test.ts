import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyRecorder } from '../../src/cache/body-recorder.js';

function setup(limit = 100) {
  const source = new PassThrough();
  let stored: Buffer | null | undefined;
  const recorder = new BodyRecorder(source, { limit, writer: null, expectedLength: null, quickAbort: 2 }, async (body) => {
    stored = body as Buffer | null;
  });
  const received: Buffer[] = [];
  recorder.on('data', (c: Buffer) => received.push(c));
  return { source, recorder, received, stored: () => stored };
}

const closed = (s: NodeJS.EventEmitter) => new Promise<void>((r) => s.once('close', () => r()));

describe('BodyRecorder', () => {
  it('passes the body through and keeps a copy once it ended cleanly', async () => {
    const t = setup();
    t.source.write('hello ');
    t.source.end('world');
    await new Promise((r) => t.recorder.once('end', r));
    expect(Buffer.concat(t.received).toString()).toBe('hello world');
    expect(t.stored()?.toString()).toBe('hello world');
  });

  it('streams but does not keep a body over the limit', async () => {
    const t = setup(5);
    t.source.end('0123456789');
    await new Promise((r) => t.recorder.once('end', r));
    expect(Buffer.concat(t.received).toString()).toBe('0123456789');
    expect(t.stored()).toBeNull();
  });

  it('errors the client stream and keeps nothing when the upstream fails half-way', async () => {
    const t = setup();
    const errored = new Promise<Error>((r) => t.recorder.once('error', r));
    const done = closed(t.recorder);
    t.source.write('part');
    t.source.destroy(new Error('upstream reset'));
    expect((await errored).message).toBe('upstream reset');
    await done;
    expect(t.stored()).toBeNull();
  });

  it('treats an upstream that closes without ending as a failure', async () => {
    const t = setup();
    const errored = new Promise<Error>((r) => t.recorder.once('error', r));
    t.source.write('part');
    t.source.destroy();
    await errored;
    expect(t.stored()).toBeNull();
  });

  it('destroys the upstream and keeps nothing when the client goes away', async () => {
    const t = setup();
    t.source.write('part');
    t.recorder.destroy();
    await closed(t.source);
    expect(t.source.destroyed).toBe(true);
    expect(t.stored()).toBeNull();
  });
});
