/**
 * Conformance scenarios in the shape of the http-tests/cache-tests suite (required tests and the
 * "optimal" ones this cache aims for), run against the engine with a fake origin and a fake clock.
 * Each names the suite's test id it mirrors.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, type HeaderSpec, type Scenario, type ScenarioRequest } from './scenario-runner.js';

const FRESH: readonly HeaderSpec[] = [['Expires', 100000], ['Last-Modified', 0], ['Date', 0]];
const STALE: readonly HeaderSpec[] = [['Expires', -5000], ['Last-Modified', -100000], ['Date', 0]];
const fresh = (r: ScenarioRequest = {}): ScenarioRequest => ({ response_headers: FRESH, ...r });
const becomeStale = (r: ScenarioRequest = {}): ScenarioRequest => ({ response_headers: [['Cache-Control', 'max-age=2'], ['Template-A', '1']], pause_after: true, ...r });
const cc = (value: string, extra: readonly HeaderSpec[] = []): ScenarioRequest => ({ response_headers: [['Cache-Control', value], ...extra], pause_after: true });
const twoStep = (id: string, first: ScenarioRequest, second: ScenarioRequest): Scenario => ({ id, requests: [first, second] });
const reused = (id: string, first: ScenarioRequest): Scenario => twoStep(id, first, { expected_type: 'cached' });
const notReused = (id: string, first: ScenarioRequest): Scenario => twoStep(id, first, { expected_type: 'not_cached' });

const scenarios: Scenario[] = [
  // cc-freshness / cc-parse
  notReused('freshness-none', { pause_after: true }),
  reused('freshness-max-age', cc('max-age=3600')),
  notReused('freshness-max-age-stale', becomeStale()),
  notReused('freshness-max-age-0', cc('max-age=0')),
  reused('freshness-max-age-max-minus-1', cc('max-age=2147483647')),
  reused('freshness-max-age-max', cc('max-age=2147483648')),
  reused('freshness-max-age-max-plus-1', cc('max-age=2147483649')),
  reused('freshness-max-age-max-plus', cc('max-age=99999999999')),
  notReused('freshness-max-age-age', cc('max-age=3600', [['Date', 0], ['Age', '7200']])),
  notReused('freshness-max-age-date', cc('max-age=3600', [['Date', -7200]])),
  reused('freshness-max-age-expires', cc('max-age=3600', [['Expires', -7200], ['Date', 0]])),
  reused('freshness-max-age-expires-invalid', cc('max-age=3600', [['Expires', '0'], ['Date', 0]])),
  notReused('freshness-max-age-0-expires', cc('max-age=0', [['Expires', 3600], ['Date', 0]])),
  reused('freshness-max-age-extension', cc('foobar, max-age=3600')),
  reused('freshness-max-age-case-insenstive', cc('MaX-aGe=3600')),
  notReused('freshness-max-age-negative', cc('max-age=-3600')),
  reused('freshness-s-maxage-shared', cc('s-maxage=3600')),
  notReused('freshness-max-age-s-maxage-shared-longer', cc('max-age=3600, s-maxage=1')),
  notReused('freshness-max-age-s-maxage-shared-longer-reversed', cc('s-maxage=1, max-age=3600')),
  notReused('freshness-max-age-s-maxage-shared-longer-multiple', { response_headers: [['Cache-Control', 'max-age=3600'], ['Cache-Control', 's-maxage=1']], pause_after: true }),
  reused('freshness-max-age-s-maxage-shared-shorter', cc('max-age=1, s-maxage=3600')),
  reused('freshness-max-age-s-maxage-shared-shorter-expires', { response_headers: [['Expires', -10], ['Cache-Control', 'max-age=0, s-maxage=3600']], pause_after: true }),
  notReused('freshness-max-age-ignore-quoted', cc('extension="max-age=3600", max-age=1')),
  notReused('freshness-max-age-ignore-quoted-rev', cc('max-age=1, extension="max-age=3600"')),
  reused('freshness-max-age-quoted', cc('max-age="3600"')),
  notReused('freshness-max-age-space-before-equals', cc('max-age =3600')),
  notReused('freshness-max-age-space-after-equals', cc('max-age= 3600')),
  reused('freshness-max-age-leading-zero', cc('max-age=003600')),
  notReused('freshness-max-age-single-quoted', cc("max-age='3600'")),
  // age-parse
  reused('age-parse-nonnumeric', cc('max-age=3600', [['Date', 0], ['Age', 'abc']])),
  reused('age-parse-negative', cc('max-age=3600', [['Date', 0], ['Age', '-7200']])),
  reused('age-parse-float', cc('max-age=3600', [['Date', 0], ['Age', '7200.0']])),
  notReused('age-parse-large-minus-one', cc('max-age=3600', [['Date', 0], ['Age', '2147483647']])),
  notReused('age-parse-large', cc('max-age=3600', [['Date', 0], ['Age', '2147483648']])),
  notReused('age-parse-larger', cc('max-age=3600', [['Date', 0], ['Age', '2147483649']])),
  notReused('age-parse-suffix', cc('max-age=3600', [['Date', 0], ['Age', '7200, 0']])),
  reused('age-parse-prefix', cc('max-age=3600', [['Date', 0], ['Age', '0, 7200']])),
  notReused('age-parse-suffix-twoline', cc('max-age=3600', [['Date', 0], ['Age', '7200'], ['Age', '0']])),
  reused('age-parse-prefix-twoline', cc('max-age=3600', [['Date', 0], ['Age', '0'], ['Age', '7200']])),
  reused('age-parse-dup-0', cc('max-age=3600', [['Date', 0], ['Age', '0, 0']])),
  reused('age-parse-dup-old', cc('max-age=10000', [['Date', 0], ['Age', '3600'], ['Age', '3600']])),
  notReused('age-parse-parameter', cc('max-age=3600', [['Date', 0], ['Age', '7200;foo=bar']])),
  // expires
  reused('freshness-expires-future', { response_headers: [['Expires', 30 * 24 * 3600], ['Date', 0]], pause_after: true }),
  notReused('freshness-expires-past', { response_headers: [['Expires', -30 * 24 * 3600], ['Date', 0]], pause_after: true }),
  notReused('freshness-expires-present', { response_headers: [['Expires', 0], ['Date', 0]] }),
  notReused('freshness-expires-old-date', { response_headers: [['Expires', 300], ['Date', 400]], pause_after: true }),
  notReused('freshness-expires-invalid', { response_headers: [['Expires', '0'], ['Date', 0]], pause_after: true }),
  reused('freshness-expires-invalid-date', { response_headers: [['Date', 'foo'], ['Expires', 10]] }),
  notReused('freshness-expires-age-slow-date', { response_headers: [['Date', -10], ['Expires', 10], ['Age', '25']] }),
  notReused('freshness-expires-age-fast-date', { response_headers: [['Date', 10], ['Expires', 20], ['Age', '15']] }),
  reused('freshness-expires-wrong-case-weekday', { response_headers: [['Expires', 'THU, 18 Aug 2050 02:01:18 GMT'], ['Date', 0]], pause_after: true }),
  notReused('freshness-expires-invalid-utc', { response_headers: [['Expires', 'Thu, 18 Aug 2050 02:01:18 UTC'], ['Date', 0]], pause_after: true }),
  notReused('freshness-expires-invalid-2-digit-year', { response_headers: [['Expires', 'Thu, 18 Aug 50 02:01:18 GMT'], ['Date', 0]], pause_after: true }),
  notReused('freshness-expires-invalid-multiple-spaces', { response_headers: [['Expires', 'Thu, 18  Aug  2050 02:01:18 GMT'], ['Date', 0]] }),
  notReused('freshness-expires-invalid-1-digit-hour', { response_headers: [['Expires', 'Thu, 18 Aug 2050 2:01:18 GMT'], ['Date', 0]] }),
  // cc-response
  notReused('cc-resp-private-shared', { response_headers: [['Cache-Control', 'private, max-age=3600']] }),
  notReused('cc-resp-no-store', { response_headers: [['Cache-Control', 'no-store']] }),
  notReused('cc-resp-no-store-case-insensitive', { response_headers: [['Cache-Control', 'No-StOrE']] }),
  notReused('cc-resp-no-store-fresh', { response_headers: [['Cache-Control', 'max-age=10000, no-store'], ['Expires', 10000], ['Date', 0]] }),
  {
    id: 'cc-resp-no-store-old-new',
    requests: [
      { response_headers: [['Cache-Control', 'max-age=10000'], ['Expires', 10000], ['Date', 0], ['A', '1']], pause_after: true },
      { response_headers: [['Cache-Control', 'no-store'], ['Date', 0], ['A', '2']], pause_after: true },
      { expected_type: 'cached', expected_response_headers: [['a', '1']] },
    ],
  },
  notReused('cc-resp-no-cache', { response_headers: [['Cache-Control', 'max-age=10000, no-cache'], ['Expires', 10000], ['Date', 0]] }),
  notReused('cc-resp-no-cache-case-insensitive', { response_headers: [['Cache-Control', 'max-age=10000, No-CaChE'], ['Expires', 10000], ['Date', 0]] }),
  twoStep('cc-resp-no-cache-revalidate', { response_headers: [['Cache-Control', 'no-cache'], ['ETag', '"abcd"']] }, { expected_type: 'etag_validated' }),
  twoStep('cc-resp-no-cache-revalidate-fresh', { response_headers: [['Cache-Control', 'max-age=10000, no-cache'], ['Expires', 10000], ['Date', 0], ['ETag', '"abcd"']] }, { expected_type: 'etag_validated' }),
  twoStep(
    'headers-omit-headers-listed-in-Cache-Control-no-cache',
    { response_headers: [['Cache-Control', 'no-cache="a, b"'], ['a', '1'], ['b', '2'], ['c', '3'], ['Cache-Control', 'max-age=3600'], ['Date', 0]], pause_after: true },
    { expected_type: 'cached', expected_response_headers: [['c', '3']], expected_response_headers_missing: ['a', 'b'] },
  ),
  reused('cc-resp-must-revalidate-fresh', { response_headers: [['Cache-Control', 'max-age=10000, must-revalidate'], ['ETag', '"abcd"']] }),
  {
    id: 'cc-resp-must-revalidate-stale',
    requests: [
      { response_headers: [['Cache-Control', 'max-age=2, must-revalidate'], ['ETag', '"abcd"']] },
      { expected_type: 'cached', pause_after: true, response_headers: [['Cache-Control', 'max-age=2, must-revalidate'], ['ETag', '"abcd"']] },
      { expected_type: 'etag_validated' },
    ],
  },
  // heuristic
  ...(
    [
      [true, 200], [false, 201], [false, 202], [true, 203], [true, 204], [false, 403], [true, 404], [true, 405], [true, 410], [true, 414], [true, 501],
      [false, 502], [false, 503], [false, 504], [false, 599],
    ] as const
  ).map(([ok, code]) =>
    twoStep(
      `heuristic-${code}-${ok ? 'cached' : 'not_cached'}`,
      { response_status: [code, 'X'], response_headers: [['Last-Modified', -24 * 3600], ['Date', 0]], response_body: code === 204 ? '' : `body-${code}` },
      { expected_type: ok ? 'cached' : 'not_cached', response_status: [code, 'X'], response_body: code === 204 ? '' : `body-${code}` },
    ),
  ),
  twoStep(
    'heuristic-599-cached',
    { response_status: [599, 'X'], response_headers: [['Last-Modified', -24 * 3600], ['Date', 0], ['Cache-Control', 'public']], response_body: 'b' },
    { expected_type: 'cached', response_status: [599, 'X'], response_body: 'b' },
  ),
  // status
  ...[200, 203, 204, 299, 301, 302, 303, 307, 308, 400, 404, 410, 499, 500, 502, 503, 504, 599].flatMap((code): Scenario[] => [
    twoStep(`status-${code}-fresh`, fresh({ response_status: [code, 'X'], response_body: code === 204 ? '' : `b${code}` }), {
      expected_type: 'cached',
      response_status: [code, 'X'],
      response_body: code === 204 ? '' : `b${code}`,
    }),
    twoStep(`status-${code}-stale`, { response_headers: STALE, response_status: [code, 'X'], response_body: code === 204 ? '' : `b${code}` }, {
      expected_type: 'not_cached',
      response_body: code === 204 ? '' : `b${code}`,
    }),
  ]),
  twoStep('status-599-must-understand', { response_status: [599, 'X'], response_headers: [['Cache-Control', 'max-age=3600, no-store, must-understand']] }, { expected_type: 'not_cached' }),
  reused('status-200-must-understand', { response_headers: [['Cache-Control', 'max-age=3600, no-store, must-understand']] }),
  // cc-request
  twoStep('ccreq-ma0', fresh({ pause_after: true }), { request_headers: [['Cache-Control', 'max-age=0']], expected_type: 'not_cached' }),
  twoStep('ccreq-ma1', fresh({ pause_after: true }), { request_headers: [['Cache-Control', 'max-age=1']], expected_type: 'not_cached' }),
  twoStep('ccreq-magreaterage', { response_headers: [['Cache-Control', 'max-age=3600'], ['Age', '1800']] }, { request_headers: [['Cache-Control', 'max-age=600']], expected_type: 'not_cached' }),
  twoStep('ccreq-max-stale', cc('max-age=1'), { request_headers: [['Cache-Control', 'max-stale=1000']], expected_type: 'cached' }),
  // (ccreq-max-stale-age is not mirrored: a response that arrives stale and has no validator is not stored.)
  twoStep('ccreq-min-fresh', { response_headers: [['Cache-Control', 'max-age=1500']] }, { request_headers: [['Cache-Control', 'min-fresh=2000']], expected_type: 'not_cached' }),
  twoStep('ccreq-min-fresh-age', { response_headers: [['Cache-Control', 'max-age=1500'], ['Age', '1000']] }, { request_headers: [['Cache-Control', 'min-fresh=1000']], expected_type: 'not_cached' }),
  twoStep('ccreq-no-cache', { response_headers: [['Cache-Control', 'max-age=3600']] }, { request_headers: [['Cache-Control', 'no-cache']], expected_type: 'not_cached' }),
  twoStep('ccreq-no-cache-lm', { response_headers: [['Cache-Control', 'max-age=3600'], ['Last-Modified', -10000], ['Date', 0]] }, { request_headers: [['Cache-Control', 'no-cache']], expected_type: 'lm_validated' }),
  twoStep('ccreq-no-cache-etag', { response_headers: [['Cache-Control', 'max-age=3600'], ['ETag', 'abcxyz']] }, { request_headers: [['Cache-Control', 'no-cache']], expected_type: 'etag_validated' }),
  twoStep('ccreq-no-store', { response_headers: [['Cache-Control', 'max-age=3600']] }, { request_headers: [['Cache-Control', 'no-store']], expected_type: 'not_cached' }),
  { id: 'ccreq-oic', requests: [{ request_headers: [['Cache-Control', 'only-if-cached']], expected_status: 504 }] },
  // pragma
  twoStep('pragma-request-no-cache', { response_headers: [['Cache-Control', 'max-age=3600']] }, { request_headers: [['Pragma', 'no-cache']], expected_type: 'cached' }),
  reused('pragma-response-no-cache', { response_headers: [['Cache-Control', 'max-age=3600'], ['Pragma', 'no-cache']] }),
  // vary
  twoStep('vary-match', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Last-Modified', -3000], ['Date', 0], ['Vary', 'Foo']] }, { request_headers: [['Foo', '1']], expected_type: 'cached' }),
  twoStep('vary-no-match', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { request_headers: [['Foo', '2']], expected_type: 'not_cached' }),
  twoStep('vary-omit-stored', { response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { request_headers: [['Foo', '1']], expected_type: 'not_cached' }),
  twoStep('vary-omit', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { expected_type: 'not_cached' }),
  {
    id: 'vary-invalidate',
    requests: [
      { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']], response_body: 'foo_1' },
      { request_headers: [['Foo', '2']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']], response_body: 'foo_2', expected_type: 'not_cached' },
      { request_headers: [['Foo', '1']], response_body: 'foo_1', expected_type: 'cached' },
    ],
  },
  twoStep('vary-cache-key', { request_headers: [['Foo', '1'], ['Other', '2']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { request_headers: [['Foo', '1'], ['Other', '3']], expected_type: 'cached' }),
  twoStep('vary-2-no-match', { request_headers: [['Foo', '1'], ['Bar', 'abc']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo, Bar']] }, { request_headers: [['Foo', '2'], ['Bar', 'abc']], expected_type: 'not_cached' }),
  twoStep('vary-3-omit', { request_headers: [['Foo', '1'], ['Baz', '789']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo, Bar, Baz']] }, { request_headers: [['Foo', '1'], ['Baz', '789']], expected_type: 'cached' }),
  twoStep('vary-star', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', '*']] }, { request_headers: [['Foo', '1']], expected_type: 'not_cached' }),
  twoStep('vary-syntax-foo-star', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo, *']] }, { request_headers: [['Foo', '1']], expected_type: 'not_cached' }),
  twoStep('vary-syntax-empty-star-lines', { request_headers: [['Foo', '1']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', ''], ['Vary', '*']] }, { request_headers: [['Foo', '1']], expected_type: 'not_cached' }),
  twoStep('vary-normalise-combine', { request_headers: [['Foo', '1, 2']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { request_headers: [['Foo', '1'], ['Foo', '2']], expected_type: 'cached' }),
  twoStep('vary-normalise-space', { request_headers: [['Foo', '1,2']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Foo']] }, { request_headers: [['Foo', ' 1, 2 ']], expected_type: 'cached' }),
  twoStep('vary-normalise-lang-order', { request_headers: [['Accept-Language', 'en, de']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Accept-Language']] }, { request_headers: [['Accept-Language', 'de, en']], expected_type: 'cached' }),
  twoStep('vary-normalise-lang-case', { request_headers: [['Accept-Language', 'en, de']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Accept-Language']] }, { request_headers: [['Accept-Language', 'eN, De']], expected_type: 'cached' }),
  twoStep('vary-normalise-lang-space', { request_headers: [['Accept-Language', 'en, de']], response_headers: [['Cache-Control', 'max-age=5000'], ['Vary', 'Accept-Language']] }, { request_headers: [['Accept-Language', ' en ,   de']], expected_type: 'cached' }),
  // conditional
  twoStep('conditional-lm-fresh', { response_headers: [['Cache-Control', 'max-age=100000'], ['Last-Modified', -3000], ['Date', 0]], pause_after: true }, { request_headers: [['If-Modified-Since', -3003]], expected_type: 'cached', expected_status: 304 }),
  // Without Last-Modified, Date stands in for it (RFC 9111 §4.3.2).
  twoStep('conditional-lm-fresh-no-lm-later-ims', { response_headers: [['Cache-Control', 'max-age=10000'], ['Date', 0]], pause_after: true }, { request_headers: [['If-Modified-Since', -1]], expected_type: 'cached', expected_status: 304 }),
  twoStep('conditional-lm-fresh-no-lm-earlier-ims', { response_headers: [['Cache-Control', 'max-age=10000'], ['Date', 0]], pause_after: true }, { request_headers: [['If-Modified-Since', -3005]], expected_type: 'cached', expected_status: 200 }),
  twoStep('conditional-etag-strong-respond', fresh({ response_headers: [...FRESH, ['ETag', '"abcdef"']] }), { request_headers: [['If-None-Match', '"abcdef"']], expected_type: 'cached', expected_status: 304, expected_response_headers: [['ETag', '"abcdef"']] }),
  twoStep('conditional-etag-weak-respond', fresh({ response_headers: [...FRESH, ['ETag', 'W/"abcdef"']] }), { request_headers: [['If-None-Match', 'W/"abcdef"']], expected_type: 'cached', expected_status: 304 }),
  twoStep('conditional-etag-strong-respond-multiple-second', fresh({ response_headers: [...FRESH, ['ETag', '"abcdef"']] }), { request_headers: [['If-None-Match', '"1234", "abcdef", "5678"']], expected_type: 'cached', expected_status: 304 }),
  twoStep('conditional-etag-precedence', fresh({ response_headers: [...FRESH, ['Last-Modified', -5000], ['ETag', '"abcdef"']] }), { request_headers: [['If-None-Match', '"abcdef"'], ['If-Modified-Since', -6000]], expected_type: 'cached', expected_status: 304 }),
  twoStep('conditional-etag-vary-headers', { request_headers: [['Abc', '123']], response_headers: [['Expires', 1], ['ETag', '"abcdef"'], ['Date', 0], ['Vary', 'Abc']], pause_after: true }, { request_headers: [['Abc', '123']], expected_type: 'etag_validated', expected_request_headers: [['Abc', '123']] }),
  twoStep('conditional-etag-strong-generate', becomeStale({ response_headers: [['Cache-Control', 'max-age=2'], ['ETag', '"abcdef"']] }), { expected_request_headers: [['If-None-Match', '"abcdef"']], expected_type: 'etag_validated' }),
  twoStep('conditional-etag-weak-generate-weak', becomeStale({ response_headers: [['Cache-Control', 'max-age=2'], ['ETag', 'W/"abcdef"']] }), { expected_request_headers: [['If-None-Match', 'W/"abcdef"']], expected_type: 'etag_validated' }),
  { id: 'conditional-etag-forward', requests: [{ request_headers: [['If-None-Match', '"abcdef"']], expected_request_headers: [['If-None-Match', '"abcdef"']] }] },
  // update304
  {
    id: '304-lm-use-stored-Test-Header',
    requests: [
      { response_headers: [['Cache-Control', 'max-age=2'], ['Last-Modified', 'Wed, 01 Jan 2020 00:00:00 GMT'], ['Date', 0], ['Test-Header', 'A']], pause_after: true },
      { response_headers: [['Last-Modified', 'Wed, 01 Jan 2020 00:00:00 GMT'], ['Date', 0]], expected_type: 'lm_validated', expected_response_headers: [['Test-Header', 'A']] },
    ],
  },
  ...['Test-Header', 'X-Content-Foo', 'Cache-Control', 'Content-Type', 'Expires'].map((name): Scenario => {
    const a = name === 'Cache-Control' ? 'max-age=2' : name === 'Expires' ? 'Fri, 01 Jan 2038 01:01:01 GMT' : 'value-a';
    const b = name === 'Cache-Control' ? 'max-age=3600' : name === 'Expires' ? 'Mon, 11 Jan 2038 11:11:11 GMT' : 'value-b';
    const resp = (v: string): HeaderSpec[] => [['Date', 0], [name, v], ...(name === 'Cache-Control' ? [] : [['Cache-Control', 'max-age=2'] as HeaderSpec]), ['ETag', '"e1"']];
    return {
      id: `304-etag-update-response-${name}`,
      requests: [
        { response_headers: resp(a), pause_after: true },
        { response_headers: resp(b), expected_type: 'etag_validated', expected_response_headers: [[name, b]] },
        { response_headers: resp(b), expected_type: 'cached', expected_response_headers: [[name, b]] },
      ],
    };
  }),
  {
    id: '304-etag-update-response-Content-Length',
    requests: [
      { response_headers: [['Date', 0], ['Cache-Control', 'max-age=2'], ['ETag', '"e1"']], response_body: '12345', pause_after: true },
      { response_headers: [['Date', 0], ['Content-Length', '10'], ['Cache-Control', 'max-age=2'], ['ETag', '"e1"']], expected_type: 'etag_validated', expected_response_headers: [['Content-Length', '5']], expected_response_text: '12345' },
    ],
  },
  // invalidation
  ...['POST', 'PUT', 'DELETE', 'M-SEARCH'].flatMap((method): Scenario[] => [
    { id: `invalidate-${method}`, requests: [fresh(), { request_method: method }, { expected_type: 'not_cached' }] },
    { id: `invalidate-${method}-failed`, requests: [fresh(), { request_method: method, response_status: [500, 'Internal Server Error'] }, { expected_type: 'cached' }] },
    {
      id: `invalidate-${method}-location`,
      requests: [
        fresh({ filename: 'location_target' }),
        { request_method: method, response_headers: [['Location', 'location_target'], ['Content-Location', 'content_location_target']], magic_locations: true },
        fresh({ filename: 'location_target', expected_type: 'not_cached' }),
      ],
    },
    {
      id: `invalidate-${method}-cl`,
      requests: [
        fresh({ filename: 'content_location_target' }),
        { request_method: method, response_headers: [['Location', 'location_target'], ['Content-Location', 'content_location_target']], magic_locations: true },
        fresh({ filename: 'content_location_target', expected_type: 'not_cached' }),
      ],
    },
  ]),
  // partial
  twoStep('partial-store-complete-reuse-partial', { response_headers: [['Cache-Control', 'max-age=3600']], response_body: '01234567890' }, { request_headers: [['Range', 'bytes=0-1']], expected_type: 'cached', expected_status: 206, expected_response_text: '01' }),
  twoStep('partial-store-complete-reuse-partial-no-last', { response_headers: [['Cache-Control', 'max-age=3600']], response_body: '01234567890' }, { request_headers: [['Range', 'bytes=1-']], expected_type: 'cached', expected_status: 206, expected_response_text: '1234567890' }),
  twoStep('partial-store-complete-reuse-partial-suffix', { response_headers: [['Cache-Control', 'max-age=3600']], response_body: '0123456789A' }, { request_headers: [['Range', 'bytes=-1']], expected_type: 'cached', expected_status: 206, expected_response_text: 'A' }),
  twoStep('partial-use-stored-headers', { response_headers: [['Cache-Control', 'max-age=3600'], ['A', '1']], response_body: '01234567890' }, { request_headers: [['Range', 'bytes=0-1']], expected_type: 'cached', expected_status: 206, expected_response_text: '01', expected_response_headers: [['A', '1']] }),
  // stale
  twoStep('stale-close-must-revalidate-refused', cc('max-age=2, must-revalidate'), { disconnect: true, expected_status: 502 }),
  twoStep('stale-sie-close', cc('max-age=2, stale-if-error=60'), { disconnect: true, expected_type: 'cached' }),
  twoStep('stale-sie-503', cc('max-age=2, stale-if-error=60'), { response_status: [503, 'Service Unavailable'], expected_type: 'cached', expected_status: 200 }),
  twoStep('stale-if-error-cc-response', { response_headers: [['Cache-Control', 'max-age=0, stale-if-error=3600']] }, { response_status: [500, 'Internal Server Error'], expected_status: 200, expected_type: 'cached' }),
  twoStep('stale-if-error-cc-response-expired', { response_headers: [['Cache-Control', 'max-age=0, stale-if-error=1']], pause_after: true }, { response_status: [500, 'Internal Server Error'] }),
  twoStep('stale-if-error-cc-request', { response_headers: [['Cache-Control', 'max-age=0'], ['ETag', '"x"']] }, { request_headers: [['Cache-Control', 'stale-if-error=3600']], response_status: [500, 'Internal Server Error'], expected_status: 200, expected_type: 'cached' }),
  twoStep('stale-if-error-cc-request-expired', { response_headers: [['Cache-Control', 'max-age=0'], ['ETag', '"x"']], pause_after: true }, { request_headers: [['Cache-Control', 'stale-if-error=1']], response_status: [500, 'Internal Server Error'] }),
  twoStep('stale-sie-must-revalidate', cc('max-age=2, stale-if-error=60, must-revalidate'), { response_status: [503, 'Service Unavailable'] }),
  {
    id: 'stale-while-revalidate',
    requests: [
      { response_headers: [['Cache-Control', 'max-age=0, stale-while-revalidate=3600'], ['ETag', '"abc"']] },
      {
        pause_after: true,
        expected_response_headers: [['Cache-Control', 'max-age=0, stale-while-revalidate=3600'], ['ETag', '"abc"']],
        response_headers: [['Cache-Control', 'max-age=3600'], ['ETag', '"def"']],
      },
      { expected_type: 'cached', expected_response_headers: [['Cache-Control', 'max-age=3600'], ['ETag', '"def"']] },
    ],
  },
  // other
  twoStep('other-age-gen', fresh({ pause_after: true }), { expected_type: 'cached', expected_response_headers: [['Age', '>', 2]] }),
  twoStep('other-age-update-max-age', fresh({ response_headers: [...FRESH, ['Age', '30']], pause_after: true }), { expected_type: 'cached', expected_response_headers: [['Age', '>', 32]] }),
  twoStep('other-date-update', fresh({ pause_after: true }), { expected_type: 'cached', expected_response_headers: [['Date', 0]] }),
  twoStep('query-args-different', fresh({ query_arg: 'test=1' }), { query_arg: 'test=2', expected_type: 'not_cached' }),
  twoStep('query-args-same', fresh({ query_arg: 'test=1' }), { query_arg: 'test=1', expected_type: 'cached' }),
  twoStep('other-cookie', fresh(), { request_headers: [['Cookie', 'a=b']], expected_type: 'cached' }),
  twoStep('other-authorization', { request_headers: [['Authorization', 'FOO']], response_headers: [['Expires', 30 * 24 * 3600], ['Date', 0]], pause_after: true }, { expected_type: 'not_cached' }),
  twoStep('other-authorization-public', { request_headers: [['Authorization', 'FOO']], response_headers: [['Cache-Control', 'max-age=3600, public'], ['Date', 0]], pause_after: true }, { expected_type: 'cached' }),
  twoStep('other-authorization-must-revalidate', { request_headers: [['Authorization', 'FOO']], response_headers: [['Cache-Control', 'max-age=3600, must-revalidate'], ['Date', 0]], pause_after: true }, { expected_type: 'cached' }),
  twoStep('other-authorization-smaxage', { request_headers: [['Authorization', 'FOO']], response_headers: [['Cache-Control', 's-maxage=3600'], ['Date', 0]], pause_after: true }, { expected_type: 'cached' }),
  // headers
  ...['Test-Header', 'Content-Encoding', 'Content-Range', 'Content-Location', 'Content-Type', 'ETag', 'Expires', 'X-Frame-Options', 'Set-Cookie2'].map((name) =>
    twoStep(`headers-store-${name}`, { response_headers: [['Date', 0], [name, name === 'Expires' ? 'Mon, 11 Jan 2038 11:11:11 GMT' : 'stored-value'], ['Cache-Control', 'max-age=3600']], pause_after: true }, {
      expected_type: 'cached',
      expected_response_headers: [[name, name === 'Expires' ? 'Mon, 11 Jan 2038 11:11:11 GMT' : 'stored-value']],
    }),
  ),
  twoStep('headers-not-store-Proxy-Authentication-Info', { response_headers: [['Date', 0], ['Proxy-Authentication-Info', 'x'], ['Cache-Control', 'max-age=3600']], pause_after: true }, { expected_type: 'cached', expected_response_headers_missing: ['Proxy-Authentication-Info'] }),
  // cdn-cache-control
  reused('cdn-max-age', { response_headers: [['CDN-Cache-Control', 'max-age=3600']], pause_after: true }),
  reused('cdn-max-age-max-plus', { response_headers: [['CDN-Cache-Control', 'max-age=99999999999']], pause_after: true }),
  notReused('cdn-max-age-age', { response_headers: [['Date', 0], ['CDN-Cache-Control', 'max-age=3600'], ['Age', '7200']], pause_after: true }),
  notReused('cdn-max-age-0', { response_headers: [['CDN-Cache-Control', 'max-age=0']], pause_after: true }),
  reused('cdn-max-age-extension', { response_headers: [['CDN-Cache-Control', 'foobar, max-age=3600']], pause_after: true }),
  reused('cdn-max-age-expires', { response_headers: [['CDN-Cache-Control', 'max-age=3600'], ['Expires', -10000], ['Date', 0]], pause_after: true }),
  notReused('cdn-max-age-0-expires', { response_headers: [['CDN-Cache-Control', 'max-age=0'], ['Expires', 10000], ['Date', 0]], pause_after: true }),
  reused('cdn-max-age-short-cc-max-age', { response_headers: [['Cache-Control', 'max-age=1'], ['CDN-Cache-Control', 'max-age=3600']], pause_after: true }),
  notReused('cdn-max-age-long-cc-max-age', { response_headers: [['Cache-Control', 'max-age=3600'], ['CDN-Cache-Control', 'max-age=1']], pause_after: true }),
  notReused('cdn-private', { response_headers: [['CDN-Cache-Control', 'private'], ['Cache-Control', 'max-age=10000'], ['Expires', 10000], ['Date', 0]] }),
  notReused('cdn-no-cache', { response_headers: [['CDN-Cache-Control', 'no-cache'], ['Cache-Control', 'max-age=10000'], ['Expires', 10000], ['Date', 0]] }),
  notReused('cdn-no-store-cc-fresh', { response_headers: [['Cache-Control', 'max-age=10000'], ['CDN-Cache-Control', 'no-store'], ['Expires', 10000], ['Date', 0]], pause_after: true }),
  reused('cdn-fresh-cc-nostore', { response_headers: [['Cache-Control', 'no-store'], ['CDN-Cache-Control', 'max-age=10000']], pause_after: true }),
  notReused('cdn-cc-invalid-sh-type-unknown', { response_headers: [['CDN-Cache-Control', 'max-age=10000, &&&&&'], ['Cache-Control', 'no-store']], pause_after: true }),
  notReused('cdn-cc-invalid-sh-type-wrong', { response_headers: [['CDN-Cache-Control', 'max-age="10000"'], ['Cache-Control', 'no-store']], pause_after: true }),
  // HEAD
  twoStep('head-from-get', fresh(), { request_method: 'HEAD', expected_type: 'cached' }),
  {
    id: 'head-200-freshness-update',
    requests: [becomeStale(), { request_method: 'HEAD', expected_method: 'HEAD', response_headers: [['Cache-Control', 'max-age=1000']] }, { expected_type: 'cached', expected_response_headers: [['Template-A', '1']] }],
  },
];

describe('cache-tests style conformance scenarios', () => {
  it.each(scenarios.map((s) => [s.id, s] as const))('%s', async (_id, scenario) => {
    expect(await runScenario(scenario)).toBeNull();
  });
});
