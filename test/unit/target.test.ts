import { formatAuthority, parseAbsoluteTarget, parseAuthority } from '../../src/target.js';

describe('parseAuthority (RFC 9112 §3.2.3, RFC 9110 §7.2)', () => {
  it.each([
    ['a name and port', 'api.security.microsoft.com:443', undefined, { host: 'api.security.microsoft.com', port: 443 }],
    ['upper case, lowered', 'API.Security.Microsoft.COM:443', undefined, { host: 'api.security.microsoft.com', port: 443 }],
    ['a trailing dot, stripped', 'graph.microsoft.com.:443', undefined, { host: 'graph.microsoft.com', port: 443 }],
    ['an IPv4 address', '203.0.113.7:8443', undefined, { host: '203.0.113.7', port: 8443 }],
    ['a bracketed IPv6 address', '[2001:db8::1]:443', undefined, { host: '2001:db8::1', port: 443 }],
    ['a bracketed IPv6 address in upper case', '[2001:DB8::A]:443', undefined, { host: '2001:db8::a', port: 443 }],
    ['IPv6 with an embedded IPv4', '[::ffff:127.0.0.1]:443', undefined, { host: '::ffff:127.0.0.1', port: 443 }],
    ['a name without port, defaulted', 'example.com', 80, { host: 'example.com', port: 80 }],
    ['IPv6 without port, defaulted', '[::1]', 443, { host: '::1', port: 443 }],
    ['an explicit port beating the default', 'example.com:8080', 80, { host: 'example.com', port: 8080 }],
    ['the highest port', 'example.com:65535', undefined, { host: 'example.com', port: 65535 }],
    ['a port with leading zeros', 'example.com:0443', undefined, { host: 'example.com', port: 443 }],
    ['a single-label name', 'localhost:3128', undefined, { host: 'localhost', port: 3128 }],
    ['an underscore in a label', '_srv.example.com:443', undefined, { host: '_srv.example.com', port: 443 }],
    ['a disguised IPv4 (left for classifyHost)', '127.1:443', undefined, { host: '127.1', port: 443 }],
    ['a decimal IPv4 (left for classifyHost)', '2130706433:443', undefined, { host: '2130706433', port: 443 }],
  ])('parses %s', (_name, input, defaultPort, expected) => {
    expect(parseAuthority(input, defaultPort)).toEqual(expected);
  });

  it.each([
    ['an empty string', '', 443],
    ['an empty host', ':443', undefined],
    ['a missing port without default', 'example.com', undefined],
    ['an empty port', 'example.com:', 443],
    ['port 0', 'example.com:0', undefined],
    ['port 65536', 'example.com:65536', undefined],
    ['a huge port', 'example.com:4294967739', undefined],
    ['a negative port', 'example.com:-1', undefined],
    ['a signed port', 'example.com:+443', undefined],
    ['a hex port', 'example.com:0x1bb', undefined],
    ['a port with a space', 'example.com: 443', undefined],
    ['userinfo', 'user@example.com:443', undefined],
    ['userinfo with password', 'user:pw@example.com:443', undefined],
    ['a path', 'example.com:443/path', undefined],
    ['a path without port', 'example.com/path', 443],
    ['a query', 'example.com?x:443', undefined],
    ['a fragment', 'example.com#x:443', undefined],
    ['a space in the host', 'exa mple.com:443', undefined],
    ['a leading space', ' example.com:443', undefined],
    ['a CR LF', 'example.com\r\n:443', undefined],
    ['a percent-encoded host', 'exa%6dple.com:443', undefined],
    ['a sub-delim in the host', 'exa!mple.com:443', undefined],
    ['a non-ASCII host', 'b\u00fccher.de:443', undefined],
    ['an empty label', 'a..b:443', undefined],
    ['a leading dot', '.example.com:443', undefined],
    ['a lone dot', '.:443', undefined],
    ['two trailing dots', 'example.com..:443', undefined],
    ['a label over 63 characters', `${'a'.repeat(64)}.com:443`, undefined],
    ['a name over 253 characters', `${'a.'.repeat(127)}com:443`, undefined],
    ['IPv6 without brackets', '::1:443', undefined],
    ['IPv6 without brackets or port', '2001:db8::1', 443],
    ['an unclosed bracket', '[::1:443', undefined],
    ['junk after the bracket', '[::1]x:443', undefined],
    ['empty brackets', '[]:443', undefined],
    ['a name in brackets', '[example.com]:443', undefined],
    ['an IPv4 in brackets', '[127.0.0.1]:443', undefined],
    ['IPvFuture', '[v1.fe80::a+en1]:443', undefined],
    ['a zone identifier', '[fe80::1%25eth0]:443', undefined],
    ['a bad IPv6', '[1:2:3:4:5:6:7:8:9]:443', undefined],
    ['two double colons', '[1::2::3]:443', undefined],
    ['bracketed IPv6 with an empty port', '[::1]:', 443],
  ])('rejects %s', (_name, input, defaultPort) => {
    expect(parseAuthority(input, defaultPort)).toBeUndefined();
  });
});

describe('parseAuthority with allowZero (listen addresses)', () => {
  it.each([
    ['port 0, any free port', '127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['IPv6 port 0', '[::1]:0', { host: '::1', port: 0 }],
    ['an ordinary port', 'localhost:3128', { host: 'localhost', port: 3128 }],
  ])('parses %s', (_name, input, expected) => {
    expect(parseAuthority(input, undefined, { allowZero: true })).toEqual(expected);
  });

  it.each([
    ['a missing port', '127.0.0.1'],
    ['an empty port', '[::1]:'],
    ['port 65536', '127.0.0.1:65536'],
    ['a six-digit port', '127.0.0.1:000080'],
    ['a negative port', '127.0.0.1:-1'],
    ['IPv6 without brackets', '::1:0'],
  ])('rejects %s', (_name, input) => {
    expect(parseAuthority(input, undefined, { allowZero: true })).toBeUndefined();
  });
});

describe('formatAuthority', () => {
  it.each([
    [{ host: 'example.com', port: 443 }, 'example.com:443'],
    [{ host: '127.0.0.1', port: 80 }, '127.0.0.1:80'],
    [{ host: '2001:db8::1', port: 443 }, '[2001:db8::1]:443'],
    [{ host: '::1', port: 8443 }, '[::1]:8443'],
  ])('formats %j as %s', (authority, expected) => {
    expect(formatAuthority(authority)).toBe(expected);
    expect(parseAuthority(expected)).toEqual(authority);
  });
});

describe('parseAbsoluteTarget (RFC 9112 §3.2.2)', () => {
  it.each([
    ['https with path and query', 'https://api.security.microsoft.com/api/machines?$top=1',
      { scheme: 'https', host: 'api.security.microsoft.com', port: 443, path: '/api/machines?$top=1' }],
    ['http with default port', 'http://example.com/a', { scheme: 'http', host: 'example.com', port: 80, path: '/a' }],
    ['an upper-case scheme and host', 'HTTPS://Graph.Microsoft.COM/v1.0/security',
      { scheme: 'https', host: 'graph.microsoft.com', port: 443, path: '/v1.0/security' }],
    ['an explicit port', 'http://example.com:8080/x', { scheme: 'http', host: 'example.com', port: 8080, path: '/x' }],
    ['no path', 'http://example.com', { scheme: 'http', host: 'example.com', port: 80, path: '/' }],
    ['no path with a port', 'https://example.com:8443', { scheme: 'https', host: 'example.com', port: 8443, path: '/' }],
    ['a query without a path', 'http://example.com?a=1', { scheme: 'http', host: 'example.com', port: 80, path: '/?a=1' }],
    ['dot segments kept byte-for-byte', 'http://example.com/a/../b/./c', { scheme: 'http', host: 'example.com', port: 80, path: '/a/../b/./c' }],
    ['double slashes kept', 'http://example.com//x//y', { scheme: 'http', host: 'example.com', port: 80, path: '//x//y' }],
    ['percent-encoding kept', 'http://example.com/%2e%2e/%41?q=%20', { scheme: 'http', host: 'example.com', port: 80, path: '/%2e%2e/%41?q=%20' }],
    ['path case kept', 'http://example.com/API/Machines', { scheme: 'http', host: 'example.com', port: 80, path: '/API/Machines' }],
    ['an IPv6 host', 'http://[::1]:8080/x', { scheme: 'http', host: '::1', port: 8080, path: '/x' }],
    ['a URL in the query', 'http://example.com/r?u=https://other/', { scheme: 'http', host: 'example.com', port: 80, path: '/r?u=https://other/' }],
    ['a trailing-dot host', 'http://example.com./', { scheme: 'http', host: 'example.com', port: 80, path: '/' }],
  ])('parses %s', (_name, input, expected) => {
    expect(parseAbsoluteTarget(input)).toEqual(expected);
  });

  it.each([
    ['origin-form', '/api/machines'],
    ['authority-form', 'example.com:443'],
    ['asterisk-form', '*'],
    ['another scheme', 'ftp://example.com/'],
    ['a websocket scheme', 'ws://example.com/'],
    ['a scheme without slashes', 'http:example.com/'],
    ['a single slash', 'http:/example.com/'],
    ['an empty host', 'http:///path'],
    ['userinfo', 'http://user@example.com/'],
    ['userinfo with password', 'https://user:pw@example.com/'],
    ['a fragment', 'http://example.com/a#frag'],
    ['a fragment in the authority', 'http://example.com#frag'],
    ['a space in the path', 'http://example.com/a b'],
    ['a CR LF in the path', 'http://example.com/a\r\nHost: evil'],
    ['a non-ASCII path', 'http://example.com/caf\u00e9'],
    ['port 0', 'http://example.com:0/'],
    ['a bad port', 'http://example.com:http/'],
    ['IPv6 without brackets', 'http://::1/'],
    ['a leading space', ' http://example.com/'],
  ])('rejects %s', (_name, input) => {
    expect(parseAbsoluteTarget(input)).toBeUndefined();
  });
});
