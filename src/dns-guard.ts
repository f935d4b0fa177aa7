// The DNS guard: a dns.lookup for outbound connections that drops restricted addresses, so a
// public name cannot lead to a loopback, private or link-local host.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { classifyHost, isRestricted } from './address.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup that refuses restricted addresses (EDESTDENIED when none is left), unless private destinations are allowed. */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const allowed = allowPrivate ? addresses : addresses.filter((a) => !isRestricted(classifyHost(a.address)));
      if (allowed.length === 0) {
        const denied = Object.assign(new Error(`${hostname} resolves only to restricted addresses`), { code: 'EDESTDENIED' });
        return callback(denied, '');
      }
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
