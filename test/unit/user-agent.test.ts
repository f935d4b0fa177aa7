import {
  formatPartnerUserAgent,
  isCompliant,
  isHeaderValueText,
  isToken,
  parseIdentityString,
  parsePartnerUserAgent,
  validateIdentity,
  type PartnerIdentity,
} from '../../src/user-agent.js';

const CONTOSO: PartnerIdentity = { company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' };

describe('parsePartnerUserAgent', () => {
  type Row = [string, string | undefined, ReturnType<typeof parsePartnerUserAgent>];
  const parses: Row[] = [
    ['the documented example', 'MdePartner-Contoso-ContosoCognito/1.0.0',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: '' }],
    ['a product with hyphens', 'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1',
      { prefix: 'MdePartner', legacy: false, company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1', rest: '' }],
    ['the prepend form, keeping the rest', 'MdePartner-Contoso-ContosoCognito/1.0.0 python-requests/2.32.3',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: 'python-requests/2.32.3' }],
    ['several products and a comment after it', 'MdePartner-Contoso-ContosoCognito/1.0.0  curl/8.5.0 (x86_64; Linux) ',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: 'curl/8.5.0 (x86_64; Linux)' }],
    ['a tab as the separator', 'MdePartner-Contoso-ContosoCognito/1.0.0\tx/1',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: 'x/1' }],
    ['surrounding whitespace', '  MdePartner-Contoso-ContosoCognito/1.0.0 ',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: '' }],
    ['another product\'s partner token', 'MdePartner-Fabrikam-FabrikamSentry/2.1',
      { prefix: 'MdePartner', legacy: false, company: 'Fabrikam', product: 'FabrikamSentry', version: '2.1', rest: '' }],
    ['the legacy MDATP form', 'MdatpPartner-Contoso-ContosoCognito/1.0.0',
      { prefix: 'MdatpPartner', legacy: true, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: '' }],
    ['the legacy XDR form', 'M365DPartner-Contoso-ContosoCognito/1.0.0 Go-http-client/1.1',
      { prefix: 'M365DPartner', legacy: true, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: 'Go-http-client/1.1' }],
    ['token characters in every part', "MdePartner-C0.n~t!o's-P_r|o`d^u+c*t-x/1.0-beta+build.5",
      { prefix: 'MdePartner', legacy: false, company: "C0.n~t!o's", product: 'P_r|o`d^u+c*t-x', version: '1.0-beta+build.5', rest: '' }],
    ['Latin-1 text in a later comment', 'MdePartner-Contoso-ContosoCognito/1.0.0 (caf\u00e9)',
      { prefix: 'MdePartner', legacy: false, company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', rest: '(caf\u00e9)' }],
  ];
  it.each(parses)('parses %s', (_name, ua, expected) => {
    expect(parsePartnerUserAgent(ua)).toEqual(expected);
  });

  const rejects: [string, string | undefined][] = [
    ['no User-Agent', undefined],
    ['an empty User-Agent', ''],
    ['whitespace only', '   '],
    ['a plain client', 'python-requests/2.32.3'],
    ['a partner token that is not first', 'python-requests/2.32.3 MdePartner-Contoso-ContosoCognito/1.0.0'],
    ['a missing version', 'MdePartner-Contoso-ContosoCognito'],
    ['an empty version', 'MdePartner-Contoso-ContosoCognito/'],
    ['a version that is not a token', 'MdePartner-Contoso-ContosoCognito/1.0/2'],
    ['no product', 'MdePartner-Contoso/1.0'],
    ['an empty company', 'MdePartner--ContosoCognito/1.0'],
    ['an empty product', 'MdePartner-Contoso-/1.0'],
    ['nothing after the prefix', 'MdePartner-'],
    ['the bare prefix', 'MdePartner/1.0'],
    ['a lower-case prefix', 'mdepartner-Contoso-ContosoCognito/1.0.0'],
    ['an upper-case prefix', 'MDEPARTNER-Contoso-ContosoCognito/1.0.0'],
    ['a look-alike prefix', 'MdePartners-Contoso-ContosoCognito/1.0.0'],
    ['a slash before the product', 'MdePartner-Contoso/Cognito-x/1.0'],
    ['a non-token in the company', 'MdePartner-Con:toso-ContosoCognito/1.0.0'],
    ['a non-token in the product', 'MdePartner-Contoso-Contoso@Cognito/1.0.0'],
    ['a CR LF injection', 'MdePartner-Contoso-ContosoCognito/1.0.0\r\nX-Injected: 1'],
    ['a bare LF', 'MdePartner-Contoso-ContosoCognito/1.0.0\nx'],
    ['a NUL', 'MdePartner-Contoso-ContosoCognito/1.0.0\u0000'],
    ['a DEL', 'MdePartner-Contoso-ContosoCognito/1.0.0 \u007f'],
    ['non-Latin-1 text in the product', 'MdePartner-Contoso-Contoso\u00e9/1.0.0'],
    ['non-Latin-1 text anywhere', 'MdePartner-Contoso-ContosoCognito/1.0.0 (\u2603)'],
  ];
  it.each(rejects)('rejects %s', (_name, ua) => {
    expect(parsePartnerUserAgent(ua)).toBeUndefined();
  });
});

describe('isCompliant', () => {
  it.each([
    ['the exact User-Agent', 'MdePartner-Contoso-ContosoCognito/1.0.0'],
    ['any other token version', 'MdePartner-Contoso-ContosoCognito/9.9-rc1'],
    ['the prepend form', 'MdePartner-Contoso-ContosoCognito/1.0.0 python-requests/2.32.3'],
  ])('accepts %s', (_name, ua) => {
    expect(isCompliant(ua, CONTOSO)).toBe(true);
  });

  it.each([
    ['no User-Agent', undefined],
    ['an empty User-Agent', ''],
    ['a plain client', 'python-requests/2.32.3'],
    ['another product of the same company', 'MdePartner-Contoso-ContosoOther/1.0.0'],
    ['another company', 'MdePartner-Fabrikam-ContosoCognito/1.0.0'],
    ['the product with a longer hyphenated name', 'MdePartner-Contoso-ContosoCognito-Extra/1.0.0'],
    ['different case in the company', 'MdePartner-contoso-ContosoCognito/1.0.0'],
    ['different case in the product', 'MdePartner-Contoso-contosocognito/1.0.0'],
    ['the legacy MDATP form', 'MdatpPartner-Contoso-ContosoCognito/1.0.0'],
    ['the legacy XDR form', 'M365DPartner-Contoso-ContosoCognito/1.0.0'],
    ['the partner token second', 'curl/8.5.0 MdePartner-Contoso-ContosoCognito/1.0.0'],
    ['a missing version', 'MdePartner-Contoso-ContosoCognito'],
    ['a CR LF injection', 'MdePartner-Contoso-ContosoCognito/1.0.0\r\nX: y'],
  ])('refuses %s', (_name, ua) => {
    expect(isCompliant(ua, CONTOSO)).toBe(false);
  });

  it('matches a product whose name contains hyphens', () => {
    const joe = { company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1' };
    expect(isCompliant('MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1', joe)).toBe(true);
    expect(isCompliant('MdePartner-JoeSecurity-JoeSecuritySandbox/4.4.1', joe)).toBe(false);
  });
});

describe('formatPartnerUserAgent', () => {
  it.each([
    [CONTOSO, 'MdePartner-Contoso-ContosoCognito/1.0.0'],
    [{ company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1' },
      'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1'],
  ])('formats %j', (id, expected) => {
    expect(formatPartnerUserAgent(id)).toBe(expected);
  });

  it('round-trips through the parser as compliant', () => {
    const ua = formatPartnerUserAgent(CONTOSO);
    expect(parseIdentityString(ua)).toEqual(CONTOSO);
    expect(isCompliant(ua, CONTOSO)).toBe(true);
  });
});

describe('isToken (RFC 9110 §5.6.2)', () => {
  it.each([
    ['Contoso', true],
    ["!#$%&'*+-.^_`|~09AZaz", true],
    ['', false],
    ['a b', false],
    ['a/b', false],
    ['a:b', false],
    ['a"b', false],
    ['(a)', false],
    ['a\tb', false],
    ['caf\u00e9', false],
    ['a\u0000', false],
  ])('%j → %s', (s, expected) => {
    expect(isToken(s)).toBe(expected);
  });
});

describe('isHeaderValueText (RFC 9110 §5.5)', () => {
  it.each([
    ['MdePartner-Contoso-ContosoCognito/1.0.0', true],
    ['a b\tc', true],
    ['caf\u00e9 \u00ff', true],
    ['(comment) "quoted"', true],
    ['', false],
    [' leading', false],
    ['trailing ', false],
    ['\tleading tab', false],
    ['a\r\nb', false],
    ['a\rb', false],
    ['a\nb', false],
    ['a\u0000b', false],
    ['a\u0001b', false],
    ['a\u007fb', false],
    ['snow\u2603man', false],
    ['emoji \u{1f600}', false],
  ])('%j → %s', (s, expected) => {
    expect(isHeaderValueText(s)).toBe(expected);
  });
});

describe('validateIdentity', () => {
  const ok = CONTOSO;
  it.each([
    ['a valid identity', ok, undefined],
    ['a product with hyphens', { ...ok, product: 'Sandbox-AzureFunctionApp' }, undefined],
    ['a company with a hyphen', { ...ok, company: 'Con-toso' }, 'company must not contain "-" (the first "-" ends the company)'],
    ['a company with a space', { ...ok, company: 'Con toso' }, "company must be a token (letters, digits and !#$%&'*+-.^_`|~; no spaces or separators)"],
    ['an empty company', { ...ok, company: '' }, 'company is empty'],
    ['a product with a slash', { ...ok, product: 'a/b' }, "product must be a token (letters, digits and !#$%&'*+-.^_`|~; no spaces or separators)"],
    ['a product with CR/LF', { ...ok, product: 'Cognito\r\nX-Evil: 1' }, 'product contains CR/LF'],
    ['a product with a NUL', { ...ok, product: 'Cog\u0000nito' }, 'product contains a control character'],
    ['an empty version', { ...ok, version: '' }, 'version is empty'],
    ['a version with a space', { ...ok, version: '1.0 beta' }, "version must be a token (letters, digits and !#$%&'*+-.^_`|~; no spaces or separators)"],
    ['a version with LF', { ...ok, version: '1.0\n' }, 'version contains CR/LF'],
    ['a non-Latin-1 company', { ...ok, company: 'Contoso\u2603' }, 'company contains non-Latin-1 text'],
    ['a Latin-1 but non-token product', { ...ok, product: 'Caf\u00e9' }, "product must be a token (letters, digits and !#$%&'*+-.^_`|~; no spaces or separators)"],
  ])('reports %s', (_name, id, expected) => {
    expect(validateIdentity(id)).toBe(expected);
  });
});

describe('parseIdentityString', () => {
  it.each([
    ['the documented example', 'MdePartner-Contoso-ContosoCognito/1.0.0', CONTOSO],
    ['a legacy MDATP form, upgraded', 'MdatpPartner-Contoso-ContosoCognito/1.0.0', CONTOSO],
    ['a legacy XDR form, upgraded', 'M365DPartner-Contoso-ContosoCognito/1.0.0', CONTOSO],
    ['a product with hyphens', 'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1',
      { company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1' }],
  ])('accepts %s', (_name, ua, expected) => {
    expect(parseIdentityString(ua)).toEqual(expected);
  });

  it.each([
    ['two products', 'MdePartner-Contoso-ContosoCognito/1.0.0 python-requests/2.32.3'],
    ['a trailing space', 'MdePartner-Contoso-ContosoCognito/1.0.0 '],
    ['a leading space', ' MdePartner-Contoso-ContosoCognito/1.0.0'],
    ['a plain client', 'python-requests/2.32.3'],
    ['no version', 'MdePartner-Contoso-ContosoCognito'],
    ['no product', 'MdePartner-Contoso/1.0'],
    ['an empty string', ''],
    ['a CR LF', 'MdePartner-Contoso-ContosoCognito/1.0.0\r\n'],
  ])('rejects %s', (_name, ua) => {
    expect(parseIdentityString(ua)).toBeUndefined();
  });
});
