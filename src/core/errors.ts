/**
 * The one error type of the request pipeline. Every failure that reaches a client is a ProxyError:
 * its code decides the status, the RFC 9209 Proxy-Status error name and the short body the client sees.
 */

export type ErrorSource = 'client' | 'upstream' | 'policy' | 'internal';

interface ErrorKind {
  readonly status: number;
  readonly source: ErrorSource;
  /** RFC 9209 Proxy-Status error type. */
  readonly proxyStatus: string;
  /** What the client reads. */
  readonly title: string;
}

export const ERROR_KINDS = {
  bad_request: { status: 400, source: 'client', proxyStatus: 'http_request_error', title: 'Bad Request' },
  forbidden: { status: 403, source: 'policy', proxyStatus: 'http_request_denied', title: 'Forbidden' },
  not_found: { status: 404, source: 'client', proxyStatus: 'http_request_error', title: 'Not Found' },
  method_not_allowed: { status: 405, source: 'client', proxyStatus: 'http_request_error', title: 'Method Not Allowed' },
  proxy_auth_required: { status: 407, source: 'policy', proxyStatus: 'http_request_denied', title: 'Proxy Authentication Required' },
  request_timeout: { status: 408, source: 'client', proxyStatus: 'http_request_error', title: 'Request Timeout' },
  payload_too_large: { status: 413, source: 'client', proxyStatus: 'http_request_error', title: 'Payload Too Large' },
  uri_too_long: { status: 414, source: 'client', proxyStatus: 'http_request_error', title: 'URI Too Long' },
  too_many_requests: { status: 429, source: 'policy', proxyStatus: 'http_request_denied', title: 'Too Many Requests' },
  headers_too_large: { status: 431, source: 'client', proxyStatus: 'http_request_error', title: 'Request Header Fields Too Large' },
  internal: { status: 500, source: 'internal', proxyStatus: 'proxy_internal_error', title: 'Internal Server Error' },
  connection_refused: { status: 502, source: 'upstream', proxyStatus: 'connection_refused', title: 'Bad Gateway' },
  connection_reset: { status: 502, source: 'upstream', proxyStatus: 'connection_terminated', title: 'Bad Gateway' },
  dns_error: { status: 502, source: 'upstream', proxyStatus: 'dns_error', title: 'Bad Gateway' },
  destination_unavailable: { status: 502, source: 'upstream', proxyStatus: 'destination_unavailable', title: 'Bad Gateway' },
  destination_prohibited: { status: 403, source: 'policy', proxyStatus: 'destination_ip_prohibited', title: 'Forbidden' },
  bad_response: { status: 502, source: 'upstream', proxyStatus: 'http_response_incomplete', title: 'Bad Gateway' },
  tls_error: { status: 502, source: 'upstream', proxyStatus: 'tls_protocol_error', title: 'Bad Gateway' },
  no_backend: { status: 503, source: 'upstream', proxyStatus: 'destination_unavailable', title: 'Service Unavailable' },
  queue_full: { status: 503, source: 'upstream', proxyStatus: 'connection_limit_reached', title: 'Service Unavailable' },
  tunnel_limit: { status: 503, source: 'policy', proxyStatus: 'connection_limit_reached', title: 'Service Unavailable' },
  connection_timeout: { status: 504, source: 'upstream', proxyStatus: 'connection_timeout', title: 'Gateway Timeout' },
  response_timeout: { status: 504, source: 'upstream', proxyStatus: 'http_response_timeout', title: 'Gateway Timeout' },
  only_if_cached: { status: 504, source: 'client', proxyStatus: 'http_request_error', title: 'Gateway Timeout' },
  loop_detected: { status: 508, source: 'client', proxyStatus: 'proxy_loop_detected', title: 'Loop Detected' },
} as const satisfies Record<string, ErrorKind>;

export type ProxyErrorCode = keyof typeof ERROR_KINDS;

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  /** True when nothing reached the upstream, so the request may go to another backend. */
  readonly retryable: boolean;
  /** Extra response headers (Retry-After, Proxy-Authenticate, …). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    code: ProxyErrorCode,
    message: string,
    options: { retryable?: boolean; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.headers = options.headers;
  }

  get status(): number {
    return ERROR_KINDS[this.code].status;
  }

  get source(): ErrorSource {
    return ERROR_KINDS[this.code].source;
  }
}

/** Turns any thrown value into a ProxyError (an unexpected one is the proxy's own failure: 500). */
export function asProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError('internal', 'the proxy failed to handle this request', { cause: err });
}

/** Maps a socket/DNS error from talking to an upstream into a ProxyError. */
export function upstreamError(err: unknown, what: string): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return new ProxyError('connection_refused', `${what} refused the connection`, { retryable: true, cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return new ProxyError('dns_error', `${what}: DNS lookup failed (${code})`, { retryable: true, cause: err });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ProxyError('destination_unavailable', `${what} is unreachable (${code})`, { retryable: true, cause: err });
    case 'ETIMEDOUT':
    case 'ECONNECT_TIMEOUT':
      return new ProxyError('connection_timeout', `${what} did not accept the connection in time`, { retryable: true, cause: err });
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return new ProxyError('connection_reset', `${what} closed the connection before responding`, { cause: err });
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_STATUS':
      return new ProxyError('bad_response', `${what} sent a malformed response (${code})`, { cause: err });
    default:
      if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT')) {
        return new ProxyError('tls_error', `${what}: TLS failure (${code})`, { cause: err });
      }
      if (code.startsWith('HPE_')) {
        return new ProxyError('bad_response', `${what} sent a malformed response (${code})`, { cause: err });
      }
      return new ProxyError('connection_reset', `${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
