// PURE. What the start-up banner says about the listeners: the address each really binds, and a
// warning when a listener is reachable from other hosts that access.allowedClients refuses anyway.
import { formatAuthority } from './target.js';

/** A bound listener as the operator configured it and as the socket reports it. */
export interface BoundListener {
  readonly what: string;
  readonly host: string;
  readonly port: number;
}

/** True for an address only this host can reach: 127.0.0.0/8, ::1 or IPv4-mapped 127.x. */
export function isLoopbackAddress(addr: string): boolean {
  const a = addr.toLowerCase().replace(/^\[|\]$/g, '');
  return /^127\.\d+\.\d+\.\d+$/.test(a) || a === '::1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(a) || a === 'localhost';
}

/** True when a CIDR admits only loopback clients. */
function loopbackOnly(cidr: string): boolean {
  const [addr = '', bits = ''] = cidr.split('/');
  const n = Number(bits);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return addr.startsWith('127.') && n >= 8;
  const a = addr.toLowerCase();
  if (/^::ffff:127\.\d+\.\d+\.\d+$/.test(a)) return n >= 104;
  return (a === '::1' || a === '0:0:0:0:0:0:0:1') && n === 128;
}

/** The URL a listener answers on, with the address it really binds (0.0.0.0 stays 0.0.0.0). */
export function boundUrl(l: BoundListener): string {
  return `http://${formatAuthority({ host: l.host, port: l.port })}`;
}

/**
 * One warning line when a listener binds beyond loopback while access.allowedClients admits only
 * loopback: every other host would be refused with 403, which is seldom what such a bind meant.
 */
export function exposureWarning(listeners: readonly BoundListener[], allowedClients: readonly string[]): string | undefined {
  const open = listeners.filter((l) => !isLoopbackAddress(l.host));
  if (open.length === 0 || !allowedClients.every(loopbackOnly)) return undefined;
  const where = open.map((l) => `${l.what} ${formatAuthority(l)}`).join(', ');
  return `${where} ${open.length === 1 ? 'is' : 'are'} reachable from other hosts, but access.allowedClients (${allowedClients.join(', ')}) admits only loopback: every other host gets 403 ClientDenied. Add the clients' networks to access.allowedClients (e.g. 10.0.0.0/8), or listen on 127.0.0.1.`;
}
