// Proxy credentials as clients send them (RFC 7617 Basic: base64 of `user:password`).

/** A Basic credentials value for Proxy-Authorization; without a password, the user part alone (no colon), as a malformed client sends it. */
export function basicAuth(user: string, password?: string): string {
  return `Basic ${Buffer.from(password === undefined ? user : `${user}:${password}`, 'utf8').toString('base64')}`;
}
