// PURE. What a host is: a DNS name or an IP literal in any spelling inet_aton/getaddrinfo accept
// (the disguised IPv4 forms included), classified by address range so the proxy can refuse to dial
// loopback, private and other special-purpose destinations.

export type AddressClass =
  | 'name'
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

// Host names we accept: DNS letters, digits, '-', '_' and '.'. Stricter than RFC 3986 §3.2.2
// reg-name on purpose: sub-delims and pct-encoding in a host have no meaning to DNS and only
// create ways to spell one host twice.
const NAME_CHAR = new Uint8Array(128);
for (const c of '-._') NAME_CHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) NAME_CHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) NAME_CHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) NAME_CHAR[c] = 1;

/** Lowercase, strip one trailing dot and the brackets around an IPv6 literal. */
export function normaliseHost(host: string): string {
  let h = host;
  if (h.length >= 2 && h.charCodeAt(0) === 0x5b && h.charCodeAt(h.length - 1) === 0x5d) h = h.slice(1, -1);
  if (h.length > 1 && h.charCodeAt(h.length - 1) === 0x2e) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** True for a host name as parseAuthority accepts it: labels of letters, digits, '-', '_', 1-63 chars, <= 253 total. */
export function isDnsName(h: string): boolean {
  if (h.length === 0 || h.length > MAX_NAME_LENGTH) return false;
  let labelStart = 0;
  for (let i = 0; i <= h.length; i++) {
    const c = i < h.length ? h.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = i - labelStart;
      if (len === 0 || len > MAX_LABEL_LENGTH) return false;
      labelStart = i + 1;
    } else if (c >= 128 || NAME_CHAR[c] !== 1) {
      return false;
    }
  }
  return true;
}


/**
 * Parse an IPv4 address the way inet_aton does: 1 to 4 parts, each decimal, octal (leading 0) or
 * hex (0x); the last part fills the remaining bytes ('127.1', '2130706433', '0x7f.1').
 * Returns the address as an unsigned 32-bit number, or undefined.
 */
export function parseIPv4Loose(s: string): number | undefined {
  if (s.length === 0 || s.length > 64) return undefined;
  const parts = s.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    const v = parseIPv4Part(part);
    if (v === undefined) return undefined;
    values.push(v);
  }
  const last = values.length - 1;
  let addr = 0;
  for (let i = 0; i < last; i++) {
    const v = values[i] as number;
    if (v > 0xff) return undefined;
    addr += v * 2 ** (8 * (3 - i));
  }
  const tail = values[last] as number;
  if (tail >= 2 ** (8 * (4 - last))) return undefined;
  return addr + tail;
}

function parseIPv4Part(p: string): number | undefined {
  if (p.length === 0) return undefined;
  let radix = 10;
  let i = 0;
  if (p.length >= 2 && p.charCodeAt(0) === 0x30 && (p.charCodeAt(1) | 0x20) === 0x78) {
    radix = 16;
    i = 2;
  } else if (p.length >= 2 && p.charCodeAt(0) === 0x30) {
    radix = 8;
    i = 1;
  }
  let n = 0;
  for (; i < p.length; i++) {
    const c = p.charCodeAt(i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (radix === 16 && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
    else return undefined;
    if (d >= radix) return undefined;
    n = n * radix + d;
    if (n > 0xffffffff) return undefined;
  }
  return n;
}

/**
 * Parse an IPv6 address (RFC 4291 §2.2, RFC 3986 §3.2.2 IPv6address), including a trailing
 * dotted-quad. No zone identifier. Returns eight 16-bit groups, or undefined.
 */
export function parseIPv6(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const headGroups = head.length === 0 ? [] : parseGroups(head, dbl < 0);
  const tailGroups = tail.length === 0 ? [] : parseGroups(tail, true);
  if (headGroups === undefined || tailGroups === undefined) return undefined;
  const count = headGroups.length + tailGroups.length;
  if (dbl >= 0 ? count > 7 : count !== 8) return undefined;
  const zeros = new Array<number>(8 - count).fill(0);
  return [...headGroups, ...zeros, ...tailGroups];
}

function parseGroups(s: string, mayEndInIPv4: boolean): number[] | undefined {
  const pieces = s.split(':');
  const out: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i] as string;
    if (i === pieces.length - 1 && mayEndInIPv4 && piece.includes('.')) {
      const quad = parseDottedQuad(piece);
      if (quad === undefined) return undefined;
      out.push(Math.floor(quad / 0x10000), quad % 0x10000);
      continue;
    }
    if (piece.length === 0 || piece.length > 4) return undefined;
    let n = 0;
    for (let j = 0; j < piece.length; j++) {
      const c = piece.charCodeAt(j) | 0x20;
      if (c >= 0x30 && c <= 0x39) n = n * 16 + (c - 0x30);
      else if (c >= 0x61 && c <= 0x66) n = n * 16 + (c - 0x61 + 10);
      else return undefined;
    }
    out.push(n);
  }
  return out;
}

// RFC 3986 §3.2.2 dec-octet: strict four-part decimal, no leading zeros.
function parseDottedQuad(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let addr = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p.charCodeAt(0) === 0x30)) return undefined;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      const d = p.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    if (n > 255) return undefined;
    addr = addr * 256 + n;
  }
  return addr;
}

function inV4(addr: number, base: number, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return addr >= base && addr < base + size;
}

function v4(a: number, b: number, c: number, d: number): number {
  return ((a * 256 + b) * 256 + c) * 256 + d;
}

// RFC 6890 special-purpose IPv4 ranges, most specific first.
const V4_RANGES: readonly [number, number, AddressClass][] = [
  [v4(255, 255, 255, 255), 32, 'reserved'], // limited broadcast
  [v4(0, 0, 0, 0), 8, 'unspecified'], // "this network" (RFC 1122 §3.2.1.3)
  [v4(10, 0, 0, 0), 8, 'private'], // RFC 1918
  [v4(100, 64, 0, 0), 10, 'private'], // shared address space, CGNAT (RFC 6598)
  [v4(127, 0, 0, 0), 8, 'loopback'],
  [v4(169, 254, 0, 0), 16, 'link-local'], // RFC 3927
  [v4(172, 16, 0, 0), 12, 'private'],
  [v4(192, 0, 0, 0), 24, 'reserved'], // IETF protocol assignments
  [v4(192, 0, 2, 0), 24, 'reserved'], // TEST-NET-1
  [v4(192, 168, 0, 0), 16, 'private'],
  [v4(198, 18, 0, 0), 15, 'reserved'], // benchmarking
  [v4(198, 51, 100, 0), 24, 'reserved'], // TEST-NET-2
  [v4(203, 0, 113, 0), 24, 'reserved'], // TEST-NET-3
  [v4(224, 0, 0, 0), 4, 'multicast'],
  [v4(240, 0, 0, 0), 4, 'reserved'],
];

/** Classify an IPv4 address given as an unsigned 32-bit number (RFC 6890 special-purpose ranges). */
export function classifyIPv4(addr: number): AddressClass {
  for (const [base, bits, cls] of V4_RANGES) if (inV4(addr, base, bits)) return cls;
  return 'public';
}

function embeddedV4(hi: number, lo: number): number {
  return hi * 0x10000 + lo;
}

/** Classify an IPv6 address given as eight groups (RFC 6890, RFC 4291 §2.5, RFC 6052, RFC 3056). */
export function classifyIPv6(g: readonly number[]): AddressClass {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const upper80Zero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (upper80Zero && g5 === 0) {
    if (g6 === 0 && g7 === 0) return 'unspecified';
    if (g6 === 0 && g7 === 1) return 'loopback';
    // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): never routable, but report a disguised
    // loopback or private address as what it is.
    const inner = classifyIPv4(embeddedV4(g6, g7));
    return inner === 'public' ? 'reserved' : inner;
  }
  // IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2) and IPv4-translated ::ffff:0:0:0/96 (RFC 2765).
  if (upper80Zero && g5 === 0xffff) return classifyIPv4(embeddedV4(g6, g7));
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return classifyIPv4(embeddedV4(g6, g7));
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1) and local-use 64:ff9b:1::/48 (RFC 8215).
  if (g0 === 0x64 && g1 === 0xff9b) {
    const inner = classifyIPv4(embeddedV4(g6, g7));
    if (g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return inner;
    if (g2 === 1) return inner === 'public' ? 'private' : inner;
    return 'reserved';
  }
  // 6to4 2002::/16 embeds the IPv4 address in bits 16-47 (RFC 3056 §2).
  if (g0 === 0x2002) return classifyIPv4(embeddedV4(g1, g2));
  if (g0 >= 0xfe80 && g0 <= 0xfebf) return 'link-local'; // fe80::/10
  if (g0 >= 0xfec0 && g0 <= 0xfeff) return 'private'; // site-local fec0::/10, deprecated
  if (g0 >= 0xfc00 && g0 <= 0xfdff) return 'private'; // unique local fc00::/7
  if (g0 >= 0xff00) return 'multicast'; // ff00::/8
  if (g0 === 0x2001 && g1 === 0x0db8) return 'reserved'; // documentation
  if (g0 === 0x2001 && g1 < 0x0200) return 'reserved'; // IETF protocol assignments 2001::/23 incl. Teredo
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return 'reserved'; // discard-only 100::/64
  if (g0 < 0x2000 || g0 > 0x3fff) return 'reserved'; // outside global unicast 2000::/3
  return 'public';
}

// WHATWG URL "ends in a number": a last label that is decimal digits or 0x-hex means the host
// must be an IPv4 address; if it does not parse as one we fail closed rather than hand it to a
// resolver.
function endsInNumber(h: string): boolean {
  const start = h.lastIndexOf('.') + 1;
  if (start >= h.length) return false;
  let i = start;
  let hex = false;
  if (h.length - start >= 2 && h.charCodeAt(start) === 0x30 && h.charCodeAt(start + 1) === 0x78) {
    hex = true;
    i += 2;
  }
  for (; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39;
    if (!digit && !(hex && c >= 0x61 && c <= 0x66)) return false;
  }
  return true;
}

/**
 * Classify a host: an IP literal in any spelling inet_aton or getaddrinfo accepts by its
 * address range, 'localhost' and '*.localhost' as loopback (RFC 6761 §6.3), other names as 'name'.
 * Unparseable literals and malformed names are 'reserved' so callers fail closed.
 */
export function classifyHost(host: string): AddressClass {
  const h = normaliseHost(host);
  if (h.length === 0) return 'reserved';
  if (h.includes(':')) {
    const groups = parseIPv6(h);
    return groups === undefined ? 'reserved' : classifyIPv6(groups);
  }
  if (h === 'localhost' || h.endsWith('.localhost')) return 'loopback';
  if (endsInNumber(h)) {
    const addr = parseIPv4Loose(h);
    return addr === undefined ? 'reserved' : classifyIPv4(addr);
  }
  return isDnsName(h) ? 'name' : 'reserved';
}

/** True for every class a proxy must not dial unless told to: all but 'name' and 'public'. */
export function isRestricted(cls: AddressClass): boolean {
  return cls !== 'name' && cls !== 'public';
}

/** A host as a DNS name (normalised); undefined for any IP literal spelling, localhost or a malformed name. */
export function dnsNameOf(host: string): string | undefined {
  const name = normaliseHost(host);
  return isDnsName(name) && classifyHost(name) === 'name' ? name : undefined;
}

/** True when name is domain or a name below it, on a label boundary (`api.x.com` is within `x.com`, `apix.com` is not). */
export function isWithinDomain(name: string, domain: string): boolean {
  return name === domain || (name.endsWith(domain) && name.charCodeAt(name.length - domain.length - 1) === 0x2e);
}

/** The caller's address of a socket with an IPv4-mapped IPv6 prefix removed ('' when it has none). */
export function clientAddress(socket: { readonly remoteAddress?: string | undefined }): string {
  const addr = socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
