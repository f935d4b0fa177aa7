// Bearer tokens shaped like Entra ID's (header.payload.signature, base64url), unsigned test data.
// The signature part differs per token (seeded, test/helpers/prng.ts) so tests can look for it
// anywhere the proxy writes.
import { createPrng } from './prng.js';

const prng = createPrng();

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A JWT with the given claims and a pseudo-random 256-byte "signature". */
export function makeToken(claims: Record<string, unknown>): string {
  return `${b64({ typ: 'JWT', alg: 'RS256', kid: 'test-key' })}.${b64({ aud: 'https://api.securitycenter.microsoft.com', ver: '1.0', ...claims })}.${prng.bytes(256).toString('base64url')}`;
}

/** The signature part of a token. */
export function signatureOf(token: string): string {
  return token.slice(token.lastIndexOf('.') + 1);
}
