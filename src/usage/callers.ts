// PURE. Which of the partner's own call sites sent a non-compliant request: the User-Agent family
// (its first product token) that the recorder counts per product and client address.

/** The User-Agent family of a request without a User-Agent. */
export const NO_USER_AGENT = '(none)';

/** Longest User-Agent family kept. */
export const FAMILY_MAX = 64;

// RFC 9110 §5.6.2 tchar, as a lookup by char code.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * The User-Agent family: its first product token without the version (RFC 9110 §10.1.5
 * `product = token ["/" product-version]`): 'python-requests', 'Go-http-client',
 * 'MdatpPartner-Contoso-ContosoCognito'; '(none)' when there is no User-Agent and '(invalid)' when
 * it does not start with a token. Cut to FAMILY_MAX characters.
 */
export function userAgentFamily(userAgent: string | undefined): string {
  if (userAgent === undefined) return NO_USER_AGENT;
  let start = 0;
  while (start < userAgent.length && (userAgent.charCodeAt(start) === 0x20 || userAgent.charCodeAt(start) === 0x09)) start++;
  if (start === userAgent.length) return NO_USER_AGENT;
  let end = start;
  while (end < userAgent.length && end - start < FAMILY_MAX) {
    const c = userAgent.charCodeAt(end);
    if (c >= 128 || TCHAR[c] !== 1) break;
    end++;
  }
  return end === start ? '(invalid)' : userAgent.slice(start, end);
}
