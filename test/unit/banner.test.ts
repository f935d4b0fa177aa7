// The start-up banner's facts: real bind addresses and the loopback-only allow-list warning.
import { boundUrl, exposureWarning, isLoopbackAddress } from '../../src/banner.js';

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

describe('boundUrl', () => {
  it.each([
    ['0.0.0.0', 3128, 'http://0.0.0.0:3128'],
    ['::', 3128, 'http://[::]:3128'],
    ['127.0.0.1', 41000, 'http://127.0.0.1:41000'],
    ['10.1.2.3', 8080, 'http://10.1.2.3:8080'],
  ])('%s:%d → %s', (host, port, url) => {
    expect(boundUrl({ what: 'proxy', host, port })).toBe(url);
  });
});

describe('isLoopbackAddress', () => {
  it.each([
    ['127.0.0.1', true], ['127.9.9.9', true], ['::1', true], ['[::1]', true], ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false], ['::', false], ['10.0.0.1', false], ['fd00::1', false],
  ])('%s → %s', (addr, expected) => {
    expect(isLoopbackAddress(addr)).toBe(expected);
  });
});

describe('exposureWarning', () => {
  it.each([
    ['0.0.0.0 with the loopback default', [{ what: 'proxy', host: '0.0.0.0', port: 3128 }], LOOPBACK, true],
    ['[::] with ::1 only', [{ what: 'proxy', host: '::', port: 3128 }], ['::1/128'], true],
    ['a reverse route on a LAN address', [{ what: 'proxy', host: '127.0.0.1', port: 3128 }, { what: 'reverse route', host: '10.0.0.5', port: 8443 }], LOOPBACK, true],
    ['0.0.0.0 with a LAN allowed', [{ what: 'proxy', host: '0.0.0.0', port: 3128 }], [...LOOPBACK, '10.0.0.0/8'], false],
    ['loopback listeners', [{ what: 'proxy', host: '127.0.0.1', port: 3128 }], LOOPBACK, false],
    ['0.0.0.0 with 127.0.0.0/7 (wider than loopback)', [{ what: 'proxy', host: '0.0.0.0', port: 3128 }], ['127.0.0.0/7'], false],
  ])('%s → %s', (_name, listeners, allowed, warns) => {
    const w = exposureWarning(listeners, allowed);
    expect(w !== undefined).toBe(warns);
    if (w !== undefined) {
      expect(w).toContain('access.allowedClients');
      expect(w).not.toContain('\n');
    }
  });
});
