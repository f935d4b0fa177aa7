// The User-Agent family of a non-compliant caller, as the recorder counts it.
import { FAMILY_MAX, userAgentFamily } from '../../../src/usage/callers.js';

describe('userAgentFamily', () => {
  it.each([
    [undefined, '(none)'],
    ['', '(none)'],
    ['   ', '(none)'],
    ['python-requests/2.32.3', 'python-requests'],
    ['Go-http-client/1.1', 'Go-http-client'],
    ['curl/8.5.0', 'curl'],
    ['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla'],
    ['MdatpPartner-Contoso-ContosoCognito/1.0.0', 'MdatpPartner-Contoso-ContosoCognito'],
    ['MdePartner-Fabrikam-Sync/2.0 python-requests/2.31', 'MdePartner-Fabrikam-Sync'],
    ['  leading-space/1', 'leading-space'],
    ['(comment first)', '(invalid)'],
    ['naïve/1.0', 'na'],
    ['x'.repeat(500), 'x'.repeat(FAMILY_MAX)],
  ])('%j → %j', (ua, family) => {
    expect(userAgentFamily(ua)).toBe(family);
  });
});
