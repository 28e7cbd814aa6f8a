// The scenarios of issue 7. `expect` says what the origin's request counter must show: 'miss' (every
// request reached the origin), 'hit' (almost none did). `ref` is the peer every row is compared to.
/** Each server at its own peak: wrk keeps 50 connections busy. */
const AT_PEAK = [
  {
    id: 'reverse-miss-1k',
    title: 'Reverse proxy, proxied miss, 1 KiB',
    mode: 'http',
    access: 'reverse',
    path: '/nc/1k',
    body: '1k',
    expect: 'miss',
    peers: ['direct', 'nginx', 'haproxy', 'node-http-proxy', 'portico-nocache', 'portico', 'portico-workers'],
    refs: ['nginx'],
    what: 'GET /nc/1k, origin answers `Cache-Control: no-store`',
  },
  {
    id: 'reverse-miss-100k',
    title: 'Reverse proxy, proxied miss, 100 KiB',
    mode: 'http',
    access: 'reverse',
    path: '/nc/100k',
    body: '100k',
    expect: 'miss',
    peers: ['direct', 'nginx', 'haproxy', 'node-http-proxy', 'portico-nocache', 'portico'],
    refs: ['nginx'],
    what: 'GET /nc/100k, origin answers `Cache-Control: no-store`',
  },
  {
    id: 'reverse-hit-1k',
    title: 'Reverse proxy, cache hit, 1 KiB',
    mode: 'http',
    access: 'reverse',
    path: '/c/1k',
    body: '1k',
    expect: 'hit',
    peers: ['direct', 'nginx', 'varnish', 'ceiling', 'portico', 'portico-workers'],
    refs: ['nginx', 'ceiling'],
    what: 'GET /c/1k, origin answers `Cache-Control: public, max-age=3600`; caches filled by the warm-up',
  },
  {
    id: 'reverse-hit-1k-10k-urls',
    title: 'Reverse proxy, cache hits over 10,000 URLs, 1 KiB',
    mode: 'http',
    access: 'reverse',
    path: '/c/1k',
    body: '1k',
    expect: 'hit',
    // One set of URLs for the warm-up and every round (the warm-up stores them all), not one per round.
    urlSet: 10000,
    urlTag: 'hot',
    warmup: 6,
    peers: ['direct', 'nginx', 'varnish', 'portico'],
    refs: ['nginx'],
    what: 'GET /c/1k?set=hot&u=0 … 9999 in turn, again and again (`Cache-Control: public, max-age=3600`); a warm-up of at least 6 s stores all 10,000 first: hits over a working set, where the one-URL row hits a single entry',
  },
  {
    id: 'reverse-hit-100k',
    title: 'Reverse proxy, cache hit, 100 KiB',
    mode: 'http',
    access: 'reverse',
    path: '/c/100k',
    body: '100k',
    expect: 'hit',
    peers: ['direct', 'nginx', 'varnish', 'ceiling', 'portico'],
    refs: ['nginx', 'ceiling'],
    what: 'GET /c/100k, origin answers `Cache-Control: public, max-age=3600`; caches filled by the warm-up',
  },
  {
    id: 'forward-miss-1k',
    title: 'Forward proxy, absolute-URI miss, 1 KiB',
    mode: 'http',
    access: 'forward',
    path: '/nc/1k',
    body: '1k',
    expect: 'miss',
    peers: ['direct', 'squid', 'proxy-chain', 'portico', 'portico-workers'],
    refs: ['squid'],
    what: 'GET http://127.0.0.1:ORIGIN/nc/1k in absolute form, origin answers `Cache-Control: no-store`',
  },
  {
    id: 'forward-hit-1k',
    title: 'Forward proxy, cache hit, 1 KiB',
    mode: 'http',
    access: 'forward',
    path: '/c/1k',
    body: '1k',
    expect: 'hit',
    peers: ['direct', 'squid', 'portico'],
    refs: ['squid'],
    what: 'GET http://127.0.0.1:ORIGIN/c/1k in absolute form, origin answers `Cache-Control: public, max-age=3600`',
  },
  {
    id: 'connect-throughput',
    title: 'CONNECT tunnel throughput (200 MB transfers)',
    mode: 'connect-throughput',
    access: 'forward',
    path: '/big/200m',
    body: '200m',
    expect: 'miss',
    peers: ['direct', 'squid', 'proxy-chain', 'portico'],
    refs: ['squid'],
    unit: 'MB/s',
    what: 'one tunnel at a time: CONNECT 127.0.0.1:ORIGIN → GET /big/200m (200 MB) → close; MB/s of body; latency = one whole transfer',
  },
  {
    id: 'connect-setup',
    title: 'CONNECT setup rate (new tunnel + one 1 KiB GET)',
    mode: 'connect-setup',
    access: 'forward',
    path: '/c/1k',
    body: '1k',
    expect: 'miss',
    peers: ['direct', 'squid', 'proxy-chain', 'portico'],
    refs: ['squid'],
    unit: 'tunnels/s',
    what: '50 concurrent loops of: new TCP connection → CONNECT 127.0.0.1:ORIGIN → GET /c/1k (Connection: close) → close (direct: the same without CONNECT)',
  },
];

/**
 * The reverse TLS listener, loaded by h2load (nghttp2-client): HTTP/2 with multiplexed streams, and
 * HTTP/1.1 over the same TLS for comparison. nginx terminates TLS with HTTP/2 on (1.22: \`listen … ssl
 * http2\`). The origin is not TLS, so there is no direct row.
 */
const OVER_TLS = [
  ...[
    ['1k', 'hit', '/c/1k'],
    ['100k', 'hit', '/c/100k'],
    ['1k', 'miss', '/nc/1k'],
  ].flatMap(([body, expect, path]) => [
    {
      id: `reverse-${expect}-${body}-h2`,
      title: `Reverse proxy over TLS, ${expect === 'hit' ? 'cache hit' : 'proxied miss'}, ${body === '1k' ? '1 KiB' : '100 KiB'}, HTTP/2 (10 connections × 10 streams)`,
      mode: 'h2load',
      tls: true,
      h1: false,
      // A baseline from before HTTP/2 would not negotiate h2.
      baselineRow: false,
      connections: 10,
      streams: 10,
      access: 'reverse',
      path,
      body,
      expect,
      peers: ['nginx', 'portico'],
      refs: ['nginx'],
      what: `h2load -c10 -m10 over TLS (ALPN h2): GET ${path}, 100 requests in flight on 10 connections; origin answers \`Cache-Control: ${expect === 'hit' ? 'public, max-age=3600' : 'no-store'}\``,
    },
    {
      id: `reverse-${expect}-${body}-https1`,
      title: `Reverse proxy over TLS, ${expect === 'hit' ? 'cache hit' : 'proxied miss'}, ${body === '1k' ? '1 KiB' : '100 KiB'}, HTTP/1.1 (50 connections)`,
      mode: 'h2load',
      tls: true,
      h1: true,
      connections: 50,
      access: 'reverse',
      path,
      body,
      expect,
      peers: ['nginx', 'portico'],
      refs: ['nginx'],
      what: `h2load --h1 -c50 over TLS: GET ${path}, one request at a time on each of 50 connections; origin answers \`Cache-Control: ${expect === 'hit' ? 'public, max-age=3600' : 'no-store'}\``,
    },
  ]),
];

/**
 * The shared tier on Redis (issue 13), every Portico row with a redis-server of its own: what a hit
 * from Redis costs next to a hit from memory and a miss; and what sharing saves the origin when two
 * instances serve the same URLs. Skipped with the reason when redis-server is not installed.
 */
const WITH_REDIS = [
  {
    id: 'reverse-redis-1k',
    title: 'Reverse proxy with the Redis tier, 1 KiB: hit from memory, hit from Redis, miss',
    mode: 'http',
    access: 'reverse',
    path: '/c/1k',
    body: '1k',
    expect: 'hit',
    peers: ['direct', 'portico-redis', 'portico-redis-tier', 'portico-redis-miss'],
    refs: ['portico-redis'],
    what:
      'GET /c/1k (`Cache-Control: public, max-age=3600`) through Portico with `--cache-redis` (one redis-server per row); memory hit: the memory tier holds it; Redis hit: `--cache-size 1kb`, a memory tier too small for the entry, so every hit is read from Redis (checked: `Cache-Status: …; detail=redis` after the warm-up, at least one Redis command per request, none of the requests reach the origin); miss: GET /c/1k?miss=ROUND-N, a URL no run asked for before, every request (memory miss, Redis miss, fill lock, origin, write to both tiers; the origin must see every request)',
  },
  {
    id: 'reverse-redis-shared',
    title: 'Two Portico instances under one load, 1,000 URLs: sharing one Redis vs not',
    mode: 'pair',
    access: 'reverse',
    path: '/c/1k',
    body: '1k',
    expect: 'fill',
    urlSet: 1000,
    peers: ['portico-pair', 'portico-pair-redis'],
    refs: ['portico-pair'],
    what:
      'two Portico processes (`--no-supervise`: one Node process each) serving one site (`Host: bench.test`, as behind a load balancer), each loaded by its own wrk (the same options as every row) at the same time with the same script: GET /c/1k?set=ROUND&u=0 … 999 in turn, over and over (`Cache-Control: public, max-age=3600`); each round (and the warm-up) has a URL set of its own, so every cache — Redis included — starts the round cold for it. req/s and requests: both instances together; p50/p99: the higher of the two. *origin requests* is the stub_status delta of a round: ≈1,000 (each URL fetched once for both) when the two share a redis-server, 2,000 (once per instance) when not',
  },
];

export const SCENARIOS = [
  ...AT_PEAK,
  ...OVER_TLS,
  ...WITH_REDIS,
  // The p99 target compares latency at the same load: wrk paced to a fixed request rate that every
  // server sustains (each connection waits between requests), instead of each server at its own peak.
  ...[
    ['reverse-miss-1k', 2000],
    ['reverse-miss-100k', 1000],
    ['reverse-hit-1k', 2000],
    ['reverse-hit-100k', 2000],
  ].map(([base, rate]) => paced(base, rate)),
];

function paced(baseId, rate) {
  const base = AT_PEAK.find((s) => s.id === baseId);
  return {
    ...base,
    id: `${baseId}-paced`,
    title: `${base.title}, paced at ${rate.toLocaleString('en-US')} req/s`,
    rate,
    peers: ['direct', 'nginx', 'portico'],
    refs: ['nginx'],
    what: `${base.what}; every connection waits between requests so that the load is about ${rate.toLocaleString('en-US')} req/s for every server: latency at the same load`,
  };
}

/** Issue 7's targets for Portico, evaluated on the medians of one run. */
export const TARGETS = [
  { scenario: 'reverse-miss-1k', text: 'reverse proxied miss 1 KiB ≥ 0.5× nginx', of: 'portico', ref: 'nginx', min: 0.5 },
  { scenario: 'reverse-miss-1k', text: 'reverse proxied miss 1 KiB ≥ 2.5× node-http-proxy', of: 'portico', ref: 'node-http-proxy', min: 2.5 },
  { scenario: 'reverse-miss-100k', text: 'reverse 100 KiB (miss) ≥ 0.5× nginx', of: 'portico', ref: 'nginx', min: 0.5 },
  { scenario: 'reverse-hit-1k', text: 'reverse cache hit 1 KiB ≥ 0.9× bare Node http', of: 'portico', ref: 'ceiling', min: 0.9 },
  { scenario: 'reverse-hit-100k', text: 'reverse cache hit 100 KiB ≥ 0.9× bare Node http', of: 'portico', ref: 'ceiling', min: 0.9 },
  { scenario: 'forward-miss-1k', text: 'forward absolute-URI miss ≥ 1.0× Squid', of: 'portico', ref: 'squid', min: 1.0 },
  { scenario: 'forward-hit-1k', text: 'forward cache hit ≥ 0.9× Squid', of: 'portico', ref: 'squid', min: 0.9 },
  { scenario: 'reverse-miss-1k', text: '--workers 2: reverse miss ≥ 1.2× one worker', of: 'portico-workers', ref: 'portico', min: 1.2 },
  { scenario: 'reverse-hit-1k', text: '--workers 2: reverse hit ≥ 1.2× one worker', of: 'portico-workers', ref: 'portico', min: 1.2 },
  { scenario: 'forward-miss-1k', text: '--workers 2: forward miss ≥ 1.2× one worker', of: 'portico-workers', ref: 'portico', min: 1.2 },
  { scenario: 'connect-throughput', text: 'CONNECT throughput ≥ 1.2× Squid', of: 'portico', ref: 'squid', min: 1.2 },
  { scenario: 'connect-setup', text: 'CONNECT setup rate ≥ 1.0× Squid', of: 'portico', ref: 'squid', min: 1.0 },
  ...['reverse-miss-1k-paced', 'reverse-miss-100k-paced', 'reverse-hit-1k-paced', 'reverse-hit-100k-paced'].map((scenario) => ({
    scenario,
    text: `p99 ≤ 2× nginx's at the same load (${scenario})`,
    of: 'portico',
    ref: 'nginx',
    metric: 'p99',
    max: 2,
  })),
];
