/**
 * HTTP/2 with prior knowledge on the plain listener (`reverse.h2c`): a connection that opens with the
 * HTTP/2 preface (RFC 9113 §3.4, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`) goes to the HTTP/2 server, any
 * other to the HTTP/1.1 server that owns the listener. Nothing else is sniffed, and `Upgrade: h2c` is
 * still refused by admission (h2c smuggling).
 */
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Puts a preface check in front of `http1`'s own connection handling. Call it after every other
 * 'connection' listener of `http1` is in place (they run first and may refuse the connection).
 */
export function acceptPriorKnowledge(http1: HttpServer, http2: Http2Server): void {
  // Node's HTTP/1 connection listener, which would otherwise claim the socket at once.
  const [own] = http1.listeners('connection') as ((socket: Socket) => void)[];
  if (own === undefined) return;
  http1.removeListener('connection', own);
  http1.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    let seen: Buffer | null = null;
    const decide = (chunk: Buffer) => {
      seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isPreface = seen.compare(PREFACE, 0, n, 0, n) === 0;
      if (isPreface && seen.length < PREFACE.length) return; // a prefix of the preface so far: wait
      socket.off('data', decide);
      socket.off('end', onEnd);
      socket.pause();
      if (isPreface) {
        // Node's HTTP/2 session reads what is already buffered on the socket.
        socket.unshift(seen);
        http2.emit('connection', socket);
      } else {
        own.call(http1, socket);
        // The HTTP/1 parser now owns the socket; it is fed the bytes read so far first.
        socket.emit('data', seen);
        socket.resume();
      }
    };
    const onEnd = () => socket.destroy();
    socket.on('data', decide);
    socket.once('end', onEnd);
  });
}
