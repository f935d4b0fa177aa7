// explainRequest as a table: the steps a request reaches, in the proxy's order, and the answer.
import { createCatalogue } from '../../src/catalogue.js';
import { explainRequest, type Explanation } from '../../src/explain.js';
import { createProduct, type Policy } from '../../src/policy.js';
import { basicAuth } from '../helpers/auth.js';

const cognito = createProduct('cognito', { company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' });
const scanner = createProduct('scanner', { company: 'Fabrikam', product: 'Scanner', version: '2.1' }, { username: 'scan', password: 'pw-scan' });
const UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const APP = '11111111-2222-3333-4444-555555555555';

function policy(over: Partial<Policy> = {}): Policy {
  return {
    mode: 'rewrite', rewrite: 'replace', catalogue: createCatalogue(['commercial'], []), otherHosts: 'tunnel',
    products: [cognito], defaultProduct: cognito, allowPrivateDestinations: false, connectPorts: new Set([443]),
    resolve: new Map([['api.security.microsoft.com:443', { host: '127.0.0.1', port: 8443 }]]),
    ...over,
  };
}

/** A token whose payload names APP (no signature: the proxy never checks one). */
const token = `x.${Buffer.from(JSON.stringify({ tid: APP, appid: APP })).toString('base64url')}.y`;

describe('explainRequest', () => {
  it.each<[string, Partial<Policy>, Parameters<typeof explainRequest>[1], Partial<Explanation>]>([
    ['an MDE call without a User-Agent is rewritten', {}, { url: 'https://api.security.microsoft.com/api/machines' }, {
      connect: { action: 'intercept', reason: 'catalogue-host' }, destination: null, decision: { action: 'rewritten', reason: 'missing-user-agent' },
      api: 'machines', userAgentSent: UA, response: null, connectsTo: { host: '127.0.0.1', port: 8443, overridden: true },
    }],
    ['a compliant MDE call is left alone', {}, { url: 'https://api.security.microsoft.com/api/alerts', userAgent: UA }, {
      decision: { action: 'compliant', reason: 'compliant-user-agent' }, userAgentSent: null, response: null,
    }],
    ['reject mode answers 403 itself', { mode: 'reject' }, { url: 'https://api.security.microsoft.com/api/alerts', userAgent: 'curl/8.5.0' }, {
      decision: { action: 'rejected', reason: 'non-partner-user-agent' }, connectsTo: null,
      response: { status: 403, code: 'PartnerUserAgentRequired', message: `Calls to Microsoft security APIs must send User-Agent: ${UA} (non partner user agent)` },
    }],
    ['plain http to loopback is refused before anything else', {}, { url: 'http://127.0.0.1:8080/x' }, {
      connect: null, destination: { action: 'deny', reason: 'loopback-destination' }, identity: null, decision: null, connectsTo: null,
      response: { status: 403, code: 'DestinationDenied', message: '127.0.0.1:8080 refused: it is a loopback address' },
    }],
    ['plain http to an unknown host passes when otherHosts is tunnel', {}, { url: 'http://www.example.org/' }, {
      destination: { action: 'allow', reason: 'public-destination' }, decision: { action: 'passed', reason: 'not-an-api-call' }, api: null,
      connectsTo: { host: 'www.example.org', port: 80, overridden: false },
    }],
    ['plain http to an unknown host is refused when otherHosts is deny', { otherHosts: 'deny' }, { url: 'http://www.example.org/' }, {
      destination: { action: 'deny', reason: 'other-host-denied' },
      response: { status: 403, code: 'DestinationDenied', message: 'www.example.org:80 refused: only Microsoft security API hosts are allowed (otherHosts: deny)' },
    }],
    ['a CONNECT to a disguised loopback address is refused', {}, { url: 'https://2130706433/' }, {
      connect: { action: 'deny', reason: 'loopback-destination' },
      response: { status: 403, code: 'DestinationDenied', message: 'CONNECT 2130706433:443 refused: it is a loopback address' },
    }],
    ['a token endpoint is a blind tunnel', {}, { url: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' }, {
      hostKind: 'token', connect: { action: 'tunnel', reason: 'token-endpoint' }, identity: null, decision: null, response: null,
      connectsTo: { host: 'login.microsoftonline.com', port: 443, overridden: false },
    }],
    ['credentials are checked at the CONNECT, before its destination', { products: [scanner], defaultProduct: undefined }, { url: 'https://127.0.0.1/' }, {
      connect: null, identity: { error: 'missing-credentials' },
      response: { status: 407, code: 'ProxyAuthenticationRequired', message: 'This proxy requires Proxy-Authorization: Basic with a product\'s user name and password' },
    }],
    ['valid credentials bind the product', { products: [scanner], defaultProduct: undefined }, { url: 'https://api.security.microsoft.com/api/alerts', proxyAuthorization: basicAuth('scan', 'pw-scan') }, {
      identity: { product: 'scanner', userAgent: 'MdePartner-Fabrikam-Scanner/2.1', boundBy: 'proxy-credentials', app: 'unknown' }, userAgentSent: 'MdePartner-Fabrikam-Scanner/2.1',
    }],
    ['the token\'s application binds the product that lists it', { products: [cognito, createProduct('app', { company: 'Fabrikam', product: 'Scanner', version: '3' }, undefined, [APP])],
      appProducts: new Map([[APP, createProduct('app', { company: 'Fabrikam', product: 'Scanner', version: '3' }, undefined, [APP])]]) },
    { url: 'https://api.security.microsoft.com/api/alerts', token: `Bearer ${token}` }, {
      token: { tenant: APP, app: APP, appName: '' }, identity: { product: 'app', userAgent: 'MdePartner-Fabrikam-Scanner/3', boundBy: 'token-application', app: APP },
    }],
  ])('%s', (_what, over, input, expected) => {
    expect(explainRequest(policy(over), input)).toMatchObject(expected);
  });

  it('returns undefined for something that is not an absolute http(s) URL', () => {
    expect(explainRequest(policy(), { url: 'api.security.microsoft.com/api/machines' })).toBeUndefined();
  });

  it('never puts the Proxy-Authorization or the token in the explanation', () => {
    const auth = basicAuth('scan', 'pw-scan');
    const x = explainRequest(policy({ products: [scanner], defaultProduct: undefined }), { url: 'https://api.security.microsoft.com/api/alerts', proxyAuthorization: auth, token });
    expect(JSON.stringify(x)).not.toMatch(/pw-scan|c2Nhbjpwdy1zY2Fu/);
    expect(JSON.stringify(x)).not.toContain(token);
  });
});
