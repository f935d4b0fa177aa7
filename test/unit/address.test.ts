import {
  classifyHost,
  clientAddress,
  isRestricted,
  normaliseHost,
  parseIPv4Loose,
  parseIPv6,
  type AddressClass,
} from '../../src/address.js';

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

describe('clientAddress', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['::1', '::1'],
    ['2001:db8::ffff:1', '2001:db8::ffff:1'],
    [undefined, ''],
  ])('turns remote address %p into %p', (remoteAddress, expected) => {
    expect(clientAddress({ remoteAddress })).toBe(expected);
  });
});
