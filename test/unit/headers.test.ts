// Header surgery on flat rawHeaders arrays.
import { buildRequestHeaders, buildResponseHeaders, countHeader, decideHead, getHeader, parseRetryAfter } from '../../src/headers.js';

describe('buildRequestHeaders', () => {
  it.each([
    ['keeps end-to-end headers in order', ['Accept', 'a', 'Authorization', 'Bearer t'], undefined, ['Accept', 'a', 'Authorization', 'Bearer t']],
    ['drops hop-by-hop headers (RFC 9110 §7.6.1)', ['Connection', 'keep-alive', 'Keep-Alive', '5', 'TE', 'trailers', 'Upgrade', 'h2c', 'Accept', 'a'], undefined, ['Accept', 'a']],
    ['drops headers named by Connection', ['Connection', 'X-A, x-b', 'X-A', '1', 'X-B', '2', 'X-C', '3'], undefined, ['X-C', '3']],
    ['never lets Connection remove User-Agent or Authorization', ['Connection', 'user-agent, Authorization', 'User-Agent', 'MdePartner-A-B/1', 'Authorization', 'Bearer t'], undefined, ['User-Agent', 'MdePartner-A-B/1', 'Authorization', 'Bearer t']],
    ['drops proxy credentials and client-address headers', ['Proxy-Authorization', 'Basic x', 'X-Forwarded-For', '1.2.3.4', 'Forwarded', 'for=x', 'X-Real-IP', 'x', 'Via', '1.1 p'], undefined, []],
    ['drops Host, Expect and Transfer-Encoding (rebuilt by the client)', ['Host', 'h', 'Expect', '100-continue', 'Transfer-Encoding', 'chunked'], undefined, []],
    ['replaces every User-Agent with one', ['User-Agent', 'a', 'Accept', 'x', 'user-agent', 'b'], 'P/1', ['Accept', 'x', 'User-Agent', 'P/1']],
    ['adds a User-Agent when none was sent', ['Accept', 'x'], 'P/1', ['Accept', 'x', 'User-Agent', 'P/1']],
    ['keeps the User-Agent when no rewrite is asked', ['User-Agent', 'a'], undefined, ['User-Agent', 'a']],
  ] as const)('%s', (_name, raw, ua, expected) => {
    expect(buildRequestHeaders(raw, ua)).toEqual(expected);
  });
});

describe('buildResponseHeaders', () => {
  it.each([
    ['converts latin1 buffers to strings', [Buffer.from('Content-Type'), Buffer.from('application/json')], ['Content-Type', 'application/json']],
    ['drops hop-by-hop response headers', [Buffer.from('Connection'), Buffer.from('keep-alive'), Buffer.from('Transfer-Encoding'), Buffer.from('chunked'), Buffer.from('X-Ms'), Buffer.from('1')], ['X-Ms', '1']],
    ['keeps repeated Set-Cookie', ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'], ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']],
  ] as const)('%s', (_name, raw, expected) => {
    expect(buildResponseHeaders(raw as readonly (Buffer | string)[])).toEqual(expected);
  });
});

describe('getHeader / countHeader', () => {
  const raw = ['Host', 'h', 'user-agent', 'a', 'User-Agent', 'b'];
  it.each([
    ['host', 'h', 1],
    ['user-agent', 'a', 2],
    ['accept', undefined, 0],
  ])('%s', (name, first, count) => {
    expect(getHeader(raw, name)).toBe(first);
    expect(countHeader(raw, name)).toBe(count);
  });
});

describe('decideHead', () => {
  const fields = (n: number): string[] => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v']).flat();
  it.each([
    ['a head at the field limit', fields(10), 1, undefined],
    ['one field past the limit', fields(11), 1, 'too-many-header-fields'],
    ['HTTP/2 on the request line', fields(1), 2, 'http-version'],
    ['HTTP/0 on the request line', fields(1), 0, 'http-version'],
    ['Transfer_Encoding', ['Transfer_Encoding', 'chunked'], 1, 'underscore-field-name'],
    ['content_length in any case', ['CONTENT_length', '5'], 1, 'underscore-field-name'],
    ['Proxy_Authorization', ['Proxy_Authorization', 'Basic eA=='], 1, 'underscore-field-name'],
    ['User_Agent', ['User_Agent', 'x'], 1, 'underscore-field-name'],
    ['an unrelated underscored name', ['X_Request_Id', '1'], 1, undefined],
    ['Content-Encoding: chunked', ['Content-Encoding', 'chunked'], 1, 'chunked-content-encoding'],
    ['chunked among content codings', ['content-encoding', 'gzip , Chunked'], 1, 'chunked-content-encoding'],
    ['Content-Encoding: gzip', ['Content-Encoding', 'gzip'], 1, undefined],
    ['Expect: 100-continue in any case', ['Expect', ' 100-Continue'], 1, undefined],
    ['Expect: something else', ['expect', '200-ok'], 1, 'expectation-failed'],
    ['an empty Expect', ['Expect', ''], 1, 'expectation-failed'],
  ] as const)('%s → %s', (_name, raw, major, reason) => {
    expect(decideHead(raw, major, 10)?.reason).toBe(reason);
  });
});

describe('parseRetryAfter', () => {
  const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
  it.each([
    ['1', 1], ['120', 120], ['999999999', 86_400], [' 30 ', 30], [undefined, undefined], ['soon', undefined], ['-5', undefined],
    [new Date(T0 + 30_000).toUTCString(), 30], [new Date(T0 - 30_000).toUTCString(), 0],
  ])('%j → %j', (value, seconds) => {
    expect(parseRetryAfter(value, T0)).toBe(seconds);
  });
});
