// The DNS guard as the outbound side uses it: a dns.lookup replacement given to net.connect. Names
// come from /etc/hosts (localhost) and IP literals, which getaddrinfo answers without a DNS server;
// connections go to a real listener on loopback.
import type { LookupAddress } from 'node:dns';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { guardedLookup } from '../../src/dns-guard.js';

type Answer = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

/** Calls the guard like Node does and resolves with what it answered. */
function lookup(allowPrivate: boolean, hostname: string, options: { all?: boolean; family?: number } = {}): Promise<Answer> {
  return new Promise((resolve) => guardedLookup(allowPrivate)(hostname, options, (err, address, family) => resolve({ err, address, family })));
}

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((s) => s.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('guardedLookup', () => {
  it.each([
    ['a loopback name', 'localhost'],
    ['a loopback address', '127.0.0.1'],
    ['another loopback address', '127.8.9.10'],
    ['a private address', '10.1.2.3'],
    ['a carrier-grade NAT address', '100.64.0.1'],
    ['a link-local address (cloud metadata)', '169.254.169.254'],
    ['the unspecified address', '0.0.0.0'],
    ['the IPv6 loopback', '::1'],
    ['an IPv4-mapped private address', '::ffff:192.168.1.1'],
  ])('refuses %s (%s) with EDESTDENIED, naming the host', async (_what, host) => {
    const { err } = await lookup(false, host);
    expect(err?.code).toBe('EDESTDENIED');
    expect(err?.message).toBe(`${host} resolves only to restricted addresses`);
  });

  it.each([
    ['IPv4', '203.0.114.7', 4],
    ['IPv6', '2001:4860:4860::8888', 6],
  ])('passes a public %s address with its family', async (_what, host, family) => {
    expect(await lookup(false, host)).toEqual({ err: null, address: host, family });
  });

  it('answers the list form when the caller asks for all addresses', async () => {
    expect(await lookup(false, '203.0.114.7', { all: true })).toEqual({ err: null, address: [{ address: '203.0.114.7', family: 4 }], family: undefined });
  });

  it('passes restricted addresses when private destinations are allowed', async () => {
    expect(await lookup(true, '127.0.0.1')).toEqual({ err: null, address: '127.0.0.1', family: 4 });
    const all = await lookup(true, 'localhost', { all: true });
    expect(all.err).toBeNull();
    expect((all.address as LookupAddress[]).map((a) => a.address)).toContain('127.0.0.1');
  });
});

describe('guardedLookup as net.connect\'s lookup', () => {
  const dial = (allowPrivate: boolean): Promise<string> => new Promise((resolve, reject) => {
    const socket = connect({ host: 'localhost', port, lookup: guardedLookup(allowPrivate) });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });

  it('never opens a connection to a name that resolves to loopback', async () => {
    let accepted = 0;
    const count = (): void => void accepted++;
    server.on('connection', count);
    try {
      await expect(dial(false)).rejects.toMatchObject({ code: 'EDESTDENIED' });
      expect(accepted).toBe(0);
    } finally {
      server.off('connection', count);
    }
  });

  it('connects when private destinations are allowed', async () => {
    expect(await dial(true)).toBe('hello');
  });
});
