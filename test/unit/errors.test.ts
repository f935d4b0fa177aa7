// toProxyError, the identity 407 and the JSON body as tables: every outbound fault becomes one stable code.
import { ERRORS, ProxyError, UPSTREAM_ERROR_CODES, errorBody, identityError, toProxyError, type ErrorCode } from '../../src/errors.js';

const fault = (code: string | undefined, message = 'boom'): Error => Object.assign(new Error(message), code === undefined ? {} : { code });

describe('toProxyError', () => {
  const table: Array<[string, string | undefined, ErrorCode, number]> = [
    ['a refused connection', 'ECONNREFUSED', 'UpstreamUnreachable', 502],
    ['a destination the DNS guard refused', 'EDESTDENIED', 'DestinationDenied', 403],
    ['an upstream proxy that refused CONNECT', 'EUPSTREAMPROXY', 'UpstreamUnreachable', 502],
    ['an unreachable host', 'EHOSTUNREACH', 'UpstreamUnreachable', 502],
    ['an unreachable network', 'ENETUNREACH', 'UpstreamUnreachable', 502],
    ['no local address', 'EADDRNOTAVAIL', 'UpstreamUnreachable', 502],
    ['an unknown name', 'ENOTFOUND', 'UpstreamDnsError', 502],
    ['a DNS server failure', 'EAI_AGAIN', 'UpstreamDnsError', 502],
    ['a reset', 'ECONNRESET', 'UpstreamReset', 502],
    ['a broken pipe', 'EPIPE', 'UpstreamReset', 502],
    ['undici socket error', 'UND_ERR_SOCKET', 'UpstreamReset', 502],
    ['undici closed client', 'UND_ERR_CLOSED', 'UpstreamReset', 502],
    ['a connect timeout', 'ETIMEDOUT', 'UpstreamTimeout', 504],
    ['undici connect timeout', 'UND_ERR_CONNECT_TIMEOUT', 'UpstreamTimeout', 504],
    ['undici headers timeout', 'UND_ERR_HEADERS_TIMEOUT', 'UpstreamTimeout', 504],
    ['undici body timeout', 'UND_ERR_BODY_TIMEOUT', 'UpstreamTimeout', 504],
    ['undici bad response', 'UND_ERR_INFO', 'UpstreamProtocolError', 502],
    ['a bad status line', 'HPE_INVALID_CONSTANT', 'UpstreamProtocolError', 502],
    ['any other parser error', 'HPE_INVALID_CHUNK_SIZE', 'UpstreamProtocolError', 502],
    ['a body shorter than its Content-Length', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UpstreamProtocolError', 502],
    ['a response over the size limit', 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE', 'UpstreamProtocolError', 502],
    ['a plain-HTTP answer to TLS', 'ERR_SSL_WRONG_VERSION_NUMBER', 'UpstreamTlsError', 502],
    ['a TLS protocol error', 'EPROTO', 'UpstreamTlsError', 502],
    ['an untrusted leaf', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UpstreamTlsError', 502],
    ['a self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UpstreamTlsError', 502],
    ['an expired certificate', 'CERT_HAS_EXPIRED', 'UpstreamTlsError', 502],
    ['a name mismatch', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UpstreamTlsError', 502],
    ['an unknown issuer', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UpstreamTlsError', 502],
    ['an unknown code', 'ESOMETHINGNEW', 'UpstreamUnreachable', 502],
    ['no code at all', undefined, 'UpstreamUnreachable', 502],
  ];
  it.each(table)('maps %s (%s) to %s %d', (_what, code, expected, status) => {
    const e = toProxyError(fault(code), 'upstream api.security.microsoft.com:443');
    expect([e.code, e.status]).toEqual([expected, status]);
    expect(ERRORS[e.code].status).toBe(status);
  });

  it('gives only codes listed in UPSTREAM_ERROR_CODES, and the table reaches every one of them', () => {
    expect([...new Set(table.map(([, , code]) => code))].sort()).toEqual([...UPSTREAM_ERROR_CODES].sort());
  });

  it.each([
    ['code and message', fault('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), 'CONNECT x:443: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1'],
    ['a code without a message', fault('ECONNRESET', ''), 'CONNECT x:443: ECONNRESET'],
    ['a message without a code', fault(undefined, 'socket hang up'), 'CONNECT x:443: socket hang up'],
    ['a thrown string', 'weird', 'CONNECT x:443: weird'],
    ['undefined', undefined, 'CONNECT x:443: undefined'],
  ])('names the cause of %s in the message', (_what, err, message) => {
    expect(toProxyError(err, 'CONNECT x:443').message).toBe(message);
  });

  it('keeps the original fault as the cause and passes a ProxyError through unchanged', () => {
    const original = fault('ENOTFOUND');
    expect(toProxyError(original, 'x').cause).toBe(original);
    const already = new ProxyError('DestinationDenied', 'no');
    expect(toProxyError(already, 'x')).toBe(already);
  });
});

describe('identityError', () => {
  it.each(['missing-credentials', 'invalid-credentials', 'unsupported-scheme'] as const)('answers %s with 407 and a Basic challenge (RFC 9110 §15.5.8)', (reason) => {
    const e = identityError(reason);
    expect([e.code, e.status]).toEqual(['ProxyAuthenticationRequired', 407]);
    expect(e.headers['proxy-authenticate']).toMatch(/^Basic realm="mde-partner-proxy"/);
    expect(e.message).not.toBe('');
  });
});

describe('errorBody', () => {
  it.each([
    [undefined, '{"error":{"code":"BadRequest","message":"m"}}'],
    ['User-Agent', '{"error":{"code":"BadRequest","message":"m","target":"User-Agent"}}'],
  ])('writes Microsoft\'s error shape with target %p', (target, body) => {
    expect(errorBody('BadRequest', 'm', target)).toBe(body);
  });
});
