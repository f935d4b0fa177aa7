// PURE. Parse, format and check partner User-Agents of the form
// `MdePartner-{Company}-{Product}/{Version}`. Runs per request: no regex, no allocation beyond the
// parsed result, lookup tables built once at load.

/** The current prefix and the two older ones Microsoft documented (2020 MDATP, Defender XDR). */
export type PartnerPrefix = 'MdePartner' | 'MdatpPartner' | 'M365DPartner';

export interface PartnerIdentity {
  readonly company: string;
  readonly product: string;
  readonly version: string;
}

export interface ParsedPartnerUserAgent extends PartnerIdentity {
  readonly prefix: PartnerPrefix;
  readonly legacy: boolean;
  /** text after the first product token, trimmed ('' if none) */
  readonly rest: string;
}

/** The prefix every compliant User-Agent starts with. */
export const PARTNER_PREFIX: PartnerPrefix = 'MdePartner';

/** Every prefix that parses, current first; matching is exact-case. */
export const PARTNER_PREFIXES: readonly PartnerPrefix[] = ['MdePartner', 'MdatpPartner', 'M365DPartner'];

const PREFIX_MATCHERS: readonly { readonly prefix: PartnerPrefix; readonly lead: string }[] =
  PARTNER_PREFIXES.map((prefix) => ({ prefix, lead: `${prefix}-` }));

const HTAB = 0x09;
const SP = 0x20;

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_"
//                          / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

function isTokenRange(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) if (!isTchar(s.charCodeAt(i))) return false;
  return true;
}

function isWs(c: number): boolean {
  return c === SP || c === HTAB;
}

// RFC 9110 §5.5: field-vchar = VCHAR / obs-text, plus SP and HTAB inside the value.
// DEL (0x7F) and every other CTL are excluded; anything above 0xFF cannot be sent as Latin-1.
function isFieldChar(c: number): boolean {
  return (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff) || c === HTAB;
}

/** RFC 9110 §5.6.2 token: one or more tchar. */
export function isToken(s: string): boolean {
  return isTokenRange(s, 0, s.length);
}

/** RFC 9110 §5.5 field value text: non-empty, no CTL but HTAB, Latin-1 only, no surrounding whitespace. */
export function isHeaderValueText(s: string): boolean {
  const n = s.length;
  if (n === 0 || isWs(s.charCodeAt(0)) || isWs(s.charCodeAt(n - 1))) return false;
  for (let i = 0; i < n; i++) if (!isFieldChar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * Parse the first product (RFC 9110 §10.1.5: product *( RWS ( product / comment ) )) as a partner
 * token. Undefined when there is no User-Agent, it is not valid field text, or its first product is
 * not `{prefix}-{Company}-{Product}/{Version}` with token parts.
 */
export function parsePartnerUserAgent(ua: string | undefined): ParsedPartnerUserAgent | undefined {
  if (ua === undefined) return undefined;
  // Surrounding OWS is not part of the field value (RFC 9110 §5.5).
  let start = 0;
  let end = ua.length;
  while (start < end && isWs(ua.charCodeAt(start))) start++;
  while (end > start && isWs(ua.charCodeAt(end - 1))) end--;
  if (start === end) return undefined;

  let tokenEnd = -1;
  for (let i = start; i < end; i++) {
    const c = ua.charCodeAt(i);
    if (!isFieldChar(c)) return undefined;
    if (tokenEnd < 0 && isWs(c)) tokenEnd = i;
  }
  if (tokenEnd < 0) tokenEnd = end;

  let matcher: (typeof PREFIX_MATCHERS)[number] | undefined;
  for (const m of PREFIX_MATCHERS) {
    if (ua.startsWith(m.lead, start)) {
      matcher = m;
      break;
    }
  }
  if (matcher === undefined) return undefined;

  const companyStart = start + matcher.lead.length;
  const slash = ua.indexOf('/', companyStart);
  if (slash < 0 || slash >= tokenEnd) return undefined;
  const hyphen = ua.indexOf('-', companyStart);
  if (hyphen < 0 || hyphen >= slash) return undefined;
  if (!isTokenRange(ua, companyStart, hyphen)) return undefined;
  if (!isTokenRange(ua, hyphen + 1, slash)) return undefined;
  if (!isTokenRange(ua, slash + 1, tokenEnd)) return undefined;

  let restStart = tokenEnd;
  while (restStart < end && isWs(ua.charCodeAt(restStart))) restStart++;
  return {
    prefix: matcher.prefix,
    legacy: matcher.prefix !== PARTNER_PREFIX,
    company: ua.slice(companyStart, hyphen),
    product: ua.slice(hyphen + 1, slash),
    version: ua.slice(slash + 1, tokenEnd),
    rest: ua.slice(restStart, end),
  };
}

/** Format the compliant User-Agent for an identity; callers validate the identity first. */
export function formatPartnerUserAgent(id: PartnerIdentity): string {
  return `${PARTNER_PREFIX}-${id.company}-${id.product}/${id.version}`;
}

/** True when the first product is exactly `MdePartner-{company}-{product}/{any token}` (case-sensitive). */
export function isCompliant(ua: string | undefined, id: PartnerIdentity): boolean {
  const parsed = parsePartnerUserAgent(ua);
  return (
    parsed !== undefined &&
    !parsed.legacy &&
    parsed.company === id.company &&
    parsed.product === id.product
  );
}

function fieldProblem(field: string, value: string): string | undefined {
  if (value.length === 0) return `${field} is empty`;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) return `${field} contains CR/LF`;
    if (c < 0x20 || c === 0x7f) return `${field} contains a control character`;
    if (c > 0xff) return `${field} contains non-Latin-1 text`;
  }
  return undefined;
}

/** Why an identity cannot form a valid partner User-Agent, or undefined when it can. */
export function validateIdentity(id: PartnerIdentity): string | undefined {
  const fields: readonly (keyof PartnerIdentity)[] = ['company', 'product', 'version'];
  for (const field of fields) {
    const value = id[field];
    const problem = fieldProblem(field, value);
    if (problem !== undefined) return problem;
    // RFC 9110 §5.6.2 token: no spaces, no separators such as "/" or "(".
    if (!isToken(value)) return `${field} must be a token (letters, digits and !#$%&'*+-.^_\`|~; no spaces or separators)`;
    if (field === 'company' && value.indexOf('-') >= 0) return 'company must not contain "-" (the first "-" ends the company)';
  }
  return undefined;
}

/**
 * Strictly parse a configured User-Agent: exactly one partner product token and nothing else.
 * Legacy prefixes are accepted and upgraded: the identity is the same, only the prefix changes.
 */
export function parseIdentityString(ua: string): PartnerIdentity | undefined {
  for (let i = 0; i < ua.length; i++) if (isWs(ua.charCodeAt(i))) return undefined;
  const parsed = parsePartnerUserAgent(ua);
  if (parsed === undefined) return undefined;
  return { company: parsed.company, product: parsed.product, version: parsed.version };
}
