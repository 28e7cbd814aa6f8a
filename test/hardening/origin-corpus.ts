/**
 * Hostile origin responses, as raw bytes, with what a client of the proxy must see for each.
 *
 * Outcomes (what a user sees):
 * - `ok`: a complete, correct response (`status`, and for GET the body `body`): a 1xx skipped, a 204/304
 *   relayed without a body, extra bytes after a complete response dropped.
 * - `502` / `504`: a well-formed error response from the proxy with a `Proxy-Status` header; no byte of
 *   the broken response was sent.
 * - `truncated`: the response (`status`) started, then the connection closed before its declared end,
 *   so the client can tell it is incomplete. A proxy that noticed the failure before it had sent
 *   anything may answer a well-formed 502/504 instead; that is accepted too.
 * Never: a connection dropped with nothing sent, a crash, a clean-looking short body.
 *
 * Where more than one outcome is listed, each is correct (RFC 9112 lets a recipient either reject or
 * repair that input); the first is the one we prefer.
 *
 * Every broken body contains `BROKEN`: no error page, and no cache hit, may ever contain it. Hostile
 * 2xx responses say `Cache-Control: max-age=60`, so that a proxy that accepted one would store it.
 */
import type { AfterReply, ReplyStep } from './scripted-origin.js';

export type Expected = 'ok' | '502' | '504' | 'truncated';

export interface OriginShape {
  readonly name: string;
  /** What the origin writes once the request head is in. */
  readonly steps: readonly ReplyStep[];
  readonly then: AfterReply;
  /** What a GET client sees (the first listed is preferred). */
  readonly get: Expected | readonly Expected[];
  /** What a HEAD client sees. */
  readonly head: Expected | readonly Expected[];
  /** Status of the final response when it is relayed (`ok`, `truncated`); 200 if not given. */
  readonly status?: number;
  /** The body a GET client gets when the outcome is `ok` ('' if not given). */
  readonly body?: string;
}

/** The response stored before the revalidation paths: its body, validator and length. */
export const STORED_BODY = 'stored-good-body';
export const STORED_ETAG = '"v1"';
/** The body of the good `ok` shapes. */
export const FINE = 'fine-body';
export const MARKER = 'BROKEN';

const pause = { pauseMs: 15 } as const;
/** A 200 head start that a cache would store. */
const H = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: "v2"\r\n';
const okFine = `${H}Content-Length: ${FINE.length}\r\n\r\n${FINE}`;
const chunked = `${H}Transfer-Encoding: chunked\r\n\r\n`;
const S304 = `HTTP/1.1 304 Not Modified\r\nETag: ${STORED_ETAG}\r\n`;

export const ORIGIN_CORPUS: readonly OriginShape[] = [
  // --- Framing ----------------------------------------------------------------------------------
  { name: 'Content-Length longer than the body, then FIN', steps: [`${H}Content-Length: 40\r\n\r\n${MARKER}-partial`, pause], then: 'end', get: 'truncated', head: 'ok' },
  { name: 'Content-Length shorter than the body (extra bytes follow)', steps: [`${H}Content-Length: ${FINE.length}\r\n\r\n${FINE}${MARKER}-extra`], then: 'end', get: 'ok', head: 'ok', body: FINE },
  { name: 'two different Content-Lengths', steps: [`${H}Content-Length: 6\r\nContent-Length: 13\r\n\r\n${MARKER}-dup-cl`], then: 'end', get: '502', head: '502' },
  { name: 'a Content-Length list of different values', steps: [`${H}Content-Length: 6, 13\r\n\r\n${MARKER}-cl-list`], then: 'end', get: '502', head: '502' },
  { name: 'Content-Length and Transfer-Encoding: chunked', steps: [`${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: ['502', 'ok'] },
  { name: 'a negative Content-Length', steps: [`${H}Content-Length: -1\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a non-numeric Content-Length', steps: [`${H}Content-Length: ten\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a Content-Length overflowing 64 bits', steps: [`${H}Content-Length: 99999999999999999999999\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'an invalid chunk size', steps: [`${chunked}zz\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: 'ok' },
  { name: 'a chunk size overflowing 64 bits', steps: [`${chunked}fffffffffffffffff1\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: 'ok' },
  { name: 'a negative chunk size', steps: [`${chunked}-6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: 'ok' },
  { name: 'the final chunk missing, then FIN', steps: [`${chunked}6\r\n${MARKER}\r\n`, pause], then: 'end', get: 'truncated', head: 'ok' },
  { name: 'chunk data longer than its size', steps: [`${chunked}3\r\n${MARKER}-too-long\r\n0\r\n\r\n`], then: 'end', get: 'truncated', head: 'ok' },
  { name: 'Transfer-Encoding: gzip, chunked', steps: [`${H}Transfer-Encoding: gzip, chunked\r\n\r\n6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: '502' },
  { name: 'Transfer-Encoding: chunked given twice', steps: [`${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: '502', head: '502' },
  { name: 'a body delimited by the connection close', steps: [`${H}\r\n${FINE}`], then: 'end', get: 'ok', head: 'ok', body: FINE },
  { name: 'a close-delimited body cut by a reset', steps: [`${H}\r\n${MARKER}-close-delimited`, pause], then: 'reset', get: 'truncated', head: 'ok' },
  { name: 'a chunked body with a trailer section', steps: [`${chunked}9\r\n${FINE}\r\n0\r\nX-Trailer: t\r\n\r\n`], then: 'keep', get: 'ok', head: 'ok', body: FINE },

  // --- 1xx ----------------------------------------------------------------------------------------
  { name: 'one 100 Continue before the final response', steps: [`HTTP/1.1 100 Continue\r\n\r\n${okFine}`], then: 'keep', get: 'ok', head: 'ok', body: FINE },
  {
    name: 'a storm of 300 interim responses (100, 102, 103) before the final one',
    steps: [`${'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n'.repeat(100)}${okFine}`],
    then: 'keep',
    get: 'ok',
    head: 'ok',
    body: FINE,
  },
  { name: '103 Early Hints, then the response', steps: [`HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n${okFine}`], then: 'keep', get: 'ok', head: 'ok', body: FINE },
  { name: '101 Switching Protocols to a plain GET', steps: [`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${MARKER}-upgraded`], then: 'end', get: '502', head: '502' },
  { name: '100 Continue, then FIN', steps: ['HTTP/1.1 100 Continue\r\n\r\n'], then: 'end', get: '502', head: '502' },

  // --- Bodies where none may be ------------------------------------------------------------------------
  { name: '204 with Content-Length and body bytes', steps: [`HTTP/1.1 204 No Content\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: 'ok', head: 'ok', status: 204 },
  { name: '204 with Transfer-Encoding: chunked and a body', steps: [`HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: 'ok', head: 'ok', status: 204 },
  { name: '304 with the stored body\'s Content-Length and no body', steps: [`${S304}Content-Length: ${STORED_BODY.length}\r\n\r\n`], then: 'keep', get: 'ok', head: 'ok', status: 304 },
  { name: '304 with Content-Length: 999 and no body', steps: [`${S304}Content-Length: 999\r\n\r\n`], then: 'keep', get: 'ok', head: 'ok', status: 304 },
  { name: '304 with Content-Length: 5 and five body bytes', steps: [`${S304}Content-Length: 5\r\n\r\nBROKE`], then: 'keep', get: 'ok', head: 'ok', status: 304 },
  { name: '304 with Transfer-Encoding: chunked and a body', steps: [`${S304}Transfer-Encoding: chunked\r\n\r\n6\r\n${MARKER}\r\n0\r\n\r\n`], then: 'end', get: 'ok', head: 'ok', status: 304 },
  // On the HEAD path this is a body after a HEAD response, on a connection left open for reuse.
  { name: 'a complete response left open (HEAD: a body follows the head)', steps: [okFine], then: 'keep', get: 'ok', head: 'ok', body: FINE },

  // --- Truncations and resets ------------------------------------------------------------------------
  { name: 'FIN before any byte', steps: [], then: 'end', get: '502', head: '502' },
  { name: 'reset before any byte', steps: [], then: 'reset', get: '502', head: '502' },
  { name: 'FIN in the middle of the status line', steps: ['HTTP/1.1 20'], then: 'end', get: '502', head: '502' },
  { name: 'FIN in the middle of the headers', steps: [`${H}Content-Len`], then: 'end', get: '502', head: '502' },
  { name: 'reset in the middle of the headers', steps: [`${H}Content-Len`, pause], then: 'reset', get: '502', head: '502' },
  { name: 'FIN right after the head', steps: [`${H}Content-Length: 100\r\n\r\n`, pause], then: 'end', get: 'truncated', head: 'ok' },
  { name: 'reset right after the head', steps: [`${H}Content-Length: 100\r\n\r\n`, pause], then: 'reset', get: 'truncated', head: 'ok' },
  { name: 'reset in the middle of a Content-Length body', steps: [`${H}Content-Length: 100\r\n\r\n${MARKER}-partial`, pause], then: 'reset', get: 'truncated', head: 'ok' },
  { name: 'FIN in the middle of a chunk', steps: [`${chunked}20\r\n${MARKER}-partial`, pause], then: 'end', get: 'truncated', head: 'ok' },
  { name: 'reset in the middle of a chunk', steps: [`${chunked}20\r\n${MARKER}-partial`, pause], then: 'reset', get: 'truncated', head: 'ok' },
  {
    name: 'a 500 cut short',
    steps: [`HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\n${MARKER}-500`, pause],
    then: 'end',
    get: 'truncated',
    head: 'ok',
    status: 500,
  },
  { name: 'a complete 500', steps: ['HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\nerror-500'], then: 'keep', get: 'ok', head: 'ok', status: 500, body: 'error-500' },

  // --- Invalid header bytes and names ------------------------------------------------------------
  { name: 'NUL in a header value', steps: [`${H}X-Bad: a\0b\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a bare CR in a header value', steps: [`${H}X-Bad: a\rb\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a control character (0x01) in a header value', steps: [`${H}X-Bad: a\x01b\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a space inside a header name', steps: [`${H}X Bad: v\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'whitespace between a header name and the colon', steps: [`${H}Content-Length : 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a header line without a colon', steps: [`${H}NoColonHere\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  // RFC 9112 §5.2: a proxy either rejects obs-fold (502) or replaces it with spaces.
  { name: 'an obs-fold continuation line', steps: [`${H}X-Folded: a\r\n b\r\nContent-Length: ${FINE.length}\r\n\r\n${FINE}`], then: 'end', get: ['502', 'ok'], head: ['502', 'ok'], body: FINE },
  { name: 'a 70 KiB header', steps: [`${H}X-Big: ${'b'.repeat(70 * 1024)}\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },

  // --- Status lines -------------------------------------------------------------------------------------
  { name: 'a garbage status line', steps: [`HELLO WORLD\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'an HTTP/0.9 reply (a body, no status line)', steps: [`<html>${MARKER}-0.9</html>`], then: 'end', get: '502', head: '502' },
  { name: 'a four-digit status code', steps: [`HTTP/1.1 2000 OK\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'an HTTP/2.0 status line over HTTP/1 framing', steps: [`HTTP/2.0 200 OK\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'a lower-case protocol name', steps: [`http/1.1 200 OK\r\nContent-Length: 6\r\n\r\n${MARKER}`], then: 'end', get: '502', head: '502' },
  { name: 'an HTTP/1.0 response without Content-Length', steps: [`HTTP/1.0 200 OK\r\nCache-Control: max-age=60\r\n\r\n${FINE}`], then: 'end', get: 'ok', head: 'ok', body: FINE },

  // --- Stalls (the proxy's timeouts, shortened by the test) ------------------------------------------
  { name: 'silent after the request', steps: [], then: 'stall', get: '504', head: '504' },
  { name: 'a stall in the middle of the body', steps: [`${H}Content-Length: 100\r\n\r\n${MARKER}-partial`], then: 'stall', get: 'truncated', head: 'ok' },

  // --- Content-Encoding that lies (the proxy relays bytes; it does not decode) -------------------------
  { name: 'Content-Encoding: gzip on a body that is not gzip', steps: [`${H}Content-Encoding: gzip\r\nContent-Length: ${FINE.length}\r\n\r\n${FINE}`], then: 'keep', get: 'ok', head: 'ok', body: FINE },
];
