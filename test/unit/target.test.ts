import {
  classifyHost,
  formatAuthority,
  isRestricted,
  normaliseHost,
  parseAbsoluteTarget,
  parseAuthority,
  parseIPv4Loose,
  parseIPv6,
  type AddressClass,
} from '../../src/target.js';

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

describe('normaliseHost', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com..', 'example.com.'],
    ['[::1]', '::1'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['.', '.'],
    ['', ''],
  ])('%j → %j', (input, expected) => {
    expect(normaliseHost(input)).toBe(expected);
  });
});

describe('classifyHost', () => {
  const rows: [string, AddressClass][] = [
    // names
    ['api.security.microsoft.com', 'name'],
    ['Graph.Microsoft.COM.', 'name'],
    ['127.0.0.1.nip.io', 'name'],
    ['1password.com', 'name'],
    ['0x7f.example', 'name'],
    ['localhost', 'loopback'],
    ['LOCALHOST.', 'loopback'],
    ['app.localhost', 'loopback'],
    ['notlocalhost', 'name'],
    // IPv4 by range
    ['8.8.8.8', 'public'],
    ['20.190.128.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.128.0.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    // disguised IPv4 spellings accepted by inet_aton / getaddrinfo
    ['127.1', 'loopback'],
    ['127.0.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['0X7F000001', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0177.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['0x7f.0x0.0x0.0x1', 'loopback'],
    ['017700000001', 'loopback'],
    ['127.0.0.1.', 'loopback'],
    ['[127.0.0.1]', 'loopback'],
    ['0', 'unspecified'],
    ['0x0', 'unspecified'],
    ['167772161', 'private'],
    ['10.1', 'private'],
    ['192.168.257', 'private'],
    ['0xa9.0xfe.0xa9.0xfe', 'link-local'],
    ['2852039166', 'link-local'],
    ['134744072', 'public'],
    // numeric-looking hosts that are not valid IPv4: fail closed
    ['256.0.0.1', 'reserved'],
    ['1.2.3.4.5', 'reserved'],
    ['4294967296', 'reserved'],
    ['08.0.0.1', 'reserved'],
    ['0x7g.1', 'reserved'],
    ['example.123', 'reserved'],
    ['127.0.0.1..', 'reserved'],
    ['', 'reserved'],
    ['exa mple.com', 'reserved'],
    // IPv6
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::', 'unspecified'],
    ['[::]', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['ff05::2', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['2603:1030::1', 'public'],
    ['2a01:111:f400::1', 'public'],
    // IPv6 forms embedding IPv4
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['[::FFFF:7F00:0001]', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['::7f00:1', 'loopback'],
    ['::8.8.8.8', 'reserved'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b:1::8.8.8.8', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:c0a8:101::1', 'private'],
    ['2002:a9fe:a9fe::', 'link-local'],
    ['2002:808:808::1', 'public'],
    // malformed IPv6: fail closed
    ['1::2::3', 'reserved'],
    ['fe80::1%eth0', 'reserved'],
    ['::ffff:127.1', 'reserved'],
    ['12345::', 'reserved'],
  ];
  it.each(rows)('classifies %j as %s', (host, expected) => {
    expect(classifyHost(host)).toBe(expected);
  });
});

describe('isRestricted', () => {
  it.each([
    ['name', false],
    ['public', false],
    ['loopback', true],
    ['private', true],
    ['link-local', true],
    ['unspecified', true],
    ['multicast', true],
    ['reserved', true],
  ] as [AddressClass, boolean][])('%s → %s', (cls, expected) => {
    expect(isRestricted(cls)).toBe(expected);
  });

  it.each(['127.1', '2130706433', '[::1]', '0x7f.1', '::ffff:7f00:1', '10.0.0.1', '169.254.169.254', 'localhost'])(
    'restricts the disguised address %s',
    (host) => {
      expect(isRestricted(classifyHost(host))).toBe(true);
    },
  );
});

describe('parseIPv4Loose (inet_aton)', () => {
  it.each([
    ['1.2.3.4', 0x01020304],
    ['1.2.772', 0x01020304],
    ['1.131844', 0x01020304],
    ['16909060', 0x01020304],
    ['0x01020304', 0x01020304],
    ['01.02.03.04', 0x01020304],
    ['255.255.255.255', 0xffffffff],
    ['4294967295', 0xffffffff],
  ])('%s → %d', (input, expected) => {
    expect(parseIPv4Loose(input)).toBe(expected);
  });

  it.each(['', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '1.2.65536', '1.16777216', '4294967296', '09', '0xg', '1..2', '1.2.3.', 'a.b.c.d', ' 1.2.3.4'])(
    'rejects %j',
    (input) => {
      expect(parseIPv4Loose(input)).toBeUndefined();
    },
  );
});

describe('parseIPv6 (RFC 4291 §2.2)', () => {
  it.each([
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['1:2:3:4:5:6:7::', [1, 2, 3, 4, 5, 6, 7, 0]],
    ['::2:3:4:5:6:7:8', [0, 2, 3, 4, 5, 6, 7, 8]],
    ['fe80::abcd:EF01', [0xfe80, 0, 0, 0, 0, 0, 0xabcd, 0xef01]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]],
    ['1:2:3:4:5:6:1.2.3.4', [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]],
  ])('%s', (input, expected) => {
    expect(parseIPv6(input)).toEqual(expected);
  });

  it.each([':', ':::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '1::2::3', ':1::', '1::2:',
    '12345::', 'g::', '1.2.3.4::', '::1.2.3.4:5', '::01.2.3.4', '::1.2.3', '::256.1.1.1', 'fe80::1%eth0', '[::1]'])(
    'rejects %j',
    (input) => {
      expect(parseIPv6(input)).toBeUndefined();
    },
  );
});
