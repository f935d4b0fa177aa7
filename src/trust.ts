// The trust store for upstream TLS: Node's roots, the system bundle and `upstream.ca`. Building
// one is costly (tls.createSecureContext over ~170 roots: ~1 MB outside the heap and ~27 ms), so
// it is built once and reused for as long as `upstream.ca` stays the same.
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/** Debian's system bundle; Node's own store is Mozilla's, so the system trust is added to it. */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** A built trust store and the extra roots it was built with. */
export interface UpstreamTrust {
  readonly extraPem: readonly string[];
  readonly context: SecureContext;
}

function readSystemRoots(): string[] {
  try {
    const text = readFileSync(SYSTEM_BUNDLE, 'utf8');
    return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  } catch {
    return [];
  }
}

/** Builds the trust for upstream TLS from Node's roots, the system bundle and extraPem. */
export function createUpstreamTrust(extraPem: readonly string[]): SecureContext {
  // Most system roots are Node's too: parsing each root once saves ~40 ms of start-up (bench).
  const body = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s+/g, '');
  const known = new Set(rootCertificates.map(body));
  const extra = readSystemRoots().filter((pem) => !known.has(body(pem)));
  return createSecureContext({ ca: [...rootCertificates, ...extra, ...extraPem], minVersion: 'TLSv1.2' });
}

/** The previous trust when it was built from the same extra roots, else a new one. */
export function reuseOrCreateTrust(extraPem: readonly string[], previous?: UpstreamTrust): UpstreamTrust {
  if (previous !== undefined && previous.extraPem.length === extraPem.length && previous.extraPem.every((p, i) => p === extraPem[i])) return previous;
  return { extraPem: [...extraPem], context: createUpstreamTrust(extraPem) };
}
