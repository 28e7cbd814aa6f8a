/**
 * Malformed and hostile requests, as raw bytes. `{T}` is the request target (origin-form for the
 * reverse proxy, absolute-form for the forward proxy), `{H}` the Host value.
 * Each entry: [what it is, the bytes, the status the client must get].
 */
export type CorpusEntry = readonly [name: string, raw: string, status: number];

const R = 'Host: {H}\r\n';
const big = (n: number, c = 'a') => c.repeat(n);

export const CORPUS: readonly CorpusEntry[] = [
  // Request smuggling: framing that two parsers could read differently.
  ['Content-Length and Transfer-Encoding', `POST {T} HTTP/1.1\r\n${R}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding and Content-Length (reversed)', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`, 400],
  ['two different Content-Lengths', `POST {T} HTTP/1.1\r\n${R}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`, 400],
  ['two equal Content-Lengths', `POST {T} HTTP/1.1\r\n${R}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['Content-Length list', `POST {T} HTTP/1.1\r\n${R}Content-Length: 4, 4\r\n\r\nabcd`, 400],
  ['Content-Length negative', `POST {T} HTTP/1.1\r\n${R}Content-Length: -1\r\n\r\n`, 400],
  ['Content-Length with plus sign', `POST {T} HTTP/1.1\r\n${R}Content-Length: +4\r\n\r\nabcd`, 400],
  ['Content-Length in hex', `POST {T} HTTP/1.1\r\n${R}Content-Length: 0x4\r\n\r\nabcd`, 400],
  ['Content-Length overflowing 64 bits', `POST {T} HTTP/1.1\r\n${R}Content-Length: 99999999999999999999999\r\n\r\n`, 400],
  ['Content-Length with space before colon', `POST {T} HTTP/1.1\r\n${R}Content-Length : 4\r\n\r\nabcd`, 400],
  ['Transfer-Encoding gzip', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: gzip\r\n\r\nabcd`, 400],
  ['Transfer-Encoding chunked, gzip', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding gzip, chunked', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding xchunked', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding identity', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: identity\r\n\r\nabcd`, 400],
  ['two Transfer-Encoding headers', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding repeated chunked', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding with space before colon', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding in an HTTP/1.0 request', `POST {T} HTTP/1.0\r\n${R}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['obsolete line folding', `GET {T} HTTP/1.1\r\n${R}X-A: a\r\n b\r\n\r\n`, 400],
  ['folded Transfer-Encoding', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['bare LF line endings', `GET {T} HTTP/1.1\n${R.replace('\r\n', '\n')}\n`, 400],
  ['bare CR in a header value', `GET {T} HTTP/1.1\r\n${R}X-A: a\rb\r\n\r\n`, 400],
  ['bare CR ending a header', `GET {T} HTTP/1.1\r\n${R}X-A: a\r\r\n\r\n`, 400],
  ['invalid chunk size', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk size overflowing 64 bits', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n`, 400],
  ['negative chunk size', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk extension with a control character', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk lines ended by bare LF', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n`, 400],
  ['chunk data longer than its size', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n`, 400],
  // Control characters and bad tokens.
  ['NUL in a header value', `GET {T} HTTP/1.1\r\n${R}X-A: a\0b\r\n\r\n`, 400],
  ['control character in a header value', `GET {T} HTTP/1.1\r\n${R}X-A: a\x01b\r\n\r\n`, 400],
  ['DEL in a header name', `GET {T} HTTP/1.1\r\n${R}X\x7fA: b\r\n\r\n`, 400],
  ['space inside a header name', `GET {T} HTTP/1.1\r\n${R}X A: b\r\n\r\n`, 400],
  ['empty header name', `GET {T} HTTP/1.1\r\n${R}: v\r\n\r\n`, 400],
  ['header line without a colon', `GET {T} HTTP/1.1\r\n${R}foo\r\n\r\n`, 400],
  ['whitespace before the first header', `GET {T} HTTP/1.1\r\n ${R}\r\n`, 400],
  ['NUL in the request target', `GET {T}a\0b HTTP/1.1\r\n${R}\r\n`, 400],
  ['space in the request target', `GET {T}a b HTTP/1.1\r\n${R}\r\n`, 400],
  ['tab in the request target', `GET {T}a\tb HTTP/1.1\r\n${R}\r\n`, 400],
  ['invalid method token', `G@T {T} HTTP/1.1\r\n${R}\r\n`, 400],
  ['lower-case method', `get {T} HTTP/1.1\r\n${R}\r\n`, 400],
  ['method of 200 letters', `${big(200, 'A')} {T} HTTP/1.1\r\n${R}\r\n`, 400],
  ['request line with a trailing space', `GET {T} HTTP/1.1 \r\n${R}\r\n`, 400],
  ['no version in the request line', `GET {T}\r\n${R}\r\n`, 400],
  ['HTTP/0.9 simple request', `GET {T}\r\n\r\n`, 400],
  ['lower-case protocol name', `GET {T} http/1.1\r\n${R}\r\n`, 400],
  ['version HTTP/1.x', `GET {T} HTTP/1.x\r\n${R}\r\n`, 400],
  ['version HTTP/2.0 over HTTP/1 framing', `GET {T} HTTP/2.0\r\n${R}\r\n`, 400],
  ['version HTTP/3.1', `GET {T} HTTP/3.1\r\n${R}\r\n`, 400],
  // Host.
  ['HTTP/1.1 without Host', `GET {T} HTTP/1.1\r\n\r\n`, 400],
  ['two Host headers', `GET {T} HTTP/1.1\r\n${R}Host: evil.example\r\n\r\n`, 400],
  ['Host with a space', `GET {T} HTTP/1.1\r\nHost: a b\r\n\r\n`, 400],
  ['Host with user info', `GET {T} HTTP/1.1\r\nHost: user@{H}\r\n\r\n`, 400],
  ['Host with a slash', `GET {T} HTTP/1.1\r\nHost: {H}/x\r\n\r\n`, 400],
  // Sizes.
  ['request target of 10,000 bytes', `GET {T}${big(10_000)} HTTP/1.1\r\n${R}\r\n`, 414],
  ['one header of 40,000 bytes', `GET {T} HTTP/1.1\r\n${R}X-A: ${big(40_000)}\r\n\r\n`, 431],
  ['150 header fields', `GET {T} HTTP/1.1\r\n${R}${Array.from({ length: 150 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`, 431],
  ['Content-Length over the body limit', `POST {T} HTTP/1.1\r\n${R}Content-Length: 2000000\r\n\r\n`, 413],
  ['Expect: 100-continue over the body limit', `POST {T} HTTP/1.1\r\n${R}Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n`, 413],
  ['chunked body over the body limit', `POST {T} HTTP/1.1\r\n${R}Transfer-Encoding: chunked\r\n\r\n${'100000\r\n' + big(0x100000) + '\r\n'}${'100000\r\n' + big(0x100000) + '\r\n'}0\r\n\r\n`, 413],
];
