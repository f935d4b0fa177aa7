// decideConnect / decideDestination / decideRequest / decideIdentity as tables.
import { createCatalogue } from '../../src/catalogue.js';
import { createProduct, decideConnect, decideDestination, decideIdentity, decidePlain, decideRequest, rewrittenUserAgent, resolveDestination, type Policy } from '../../src/policy.js';
import { basicAuth } from '../helpers/auth.js';

const cognito = createProduct('cognito', { company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' });
const scanner = createProduct('scanner', { company: 'Fabrikam', product: 'Scanner', version: '2.1' }, { username: 'scan', password: 'pw' });
const UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';

function policy(over: Partial<Policy> = {}): Policy {
  return {
    mode: 'rewrite', rewrite: 'replace', catalogue: createCatalogue(['commercial'], ['*.partner.test']), otherHosts: 'tunnel',
    products: [cognito], defaultProduct: cognito, allowPrivateDestinations: false, connectPorts: new Set([443]),
    resolve: new Map([['api.security.microsoft.com:443', { host: '127.0.0.1', port: 8443 }], ['10.0.0.5:443', { host: '10.0.0.5', port: 443 }]]),
    ...over,
  };
}

describe('decideConnect', () => {
  it.each([
    ['api.security.microsoft.com', 443, {}, 'intercept', 'catalogue-host'],
    ['eu.api.security.microsoft.com', 443, {}, 'intercept', 'catalogue-host'],
    ['graph.microsoft.com', 443, {}, 'intercept', 'catalogue-host'],
    ['x.partner.test', 443, {}, 'intercept', 'catalogue-host'],
    ['login.microsoftonline.com', 443, {}, 'tunnel', 'token-endpoint'],
    ['login.microsoftonline.com', 443, { otherHosts: 'deny' }, 'tunnel', 'token-endpoint'],
    ['www.example.org', 443, {}, 'tunnel', 'other-host'],
    ['www.example.org', 443, { otherHosts: 'deny' }, 'deny', 'other-host-denied'],
    ['api.security.microsoft.com', 80, {}, 'intercept', 'plain-http-tunnel'],
    ['x.partner.test', 80, {}, 'intercept', 'plain-http-tunnel'],
    ['graph.microsoft.com', 80, {}, 'intercept', 'plain-http-tunnel'],
    ['api.security.microsoft.com', 8443, {}, 'deny', 'port-not-allowed'],
    ['login.microsoftonline.com', 80, {}, 'deny', 'port-not-allowed'],
    ['www.example.org', 80, {}, 'deny', 'port-not-allowed'],
    ['www.example.org', 80, { connectPorts: new Set([443, 80]) }, 'tunnel', 'other-host'],
    ['127.0.0.1', 443, {}, 'deny', 'loopback-destination'],
    ['127.1', 443, {}, 'deny', 'loopback-destination'],
    ['10.0.0.1', 443, {}, 'deny', 'private-destination'],
    ['10.0.0.5', 443, {}, 'tunnel', 'other-host'], // named by upstream.resolve
    ['10.0.0.1', 443, { allowPrivateDestinations: true }, 'tunnel', 'other-host'],
    ['169.254.169.254', 443, {}, 'deny', 'link-local-destination'],
  ] as const)('CONNECT %s:%d with %j → %s (%s)', (host, port, over, action, reason) => {
    expect(decideConnect(policy(over as Partial<Policy>), host, port)).toMatchObject({ action, reason });
  });

  it.each([
    ['api.security.microsoft.com', 443, 'https'],
    ['api.security.microsoft.com', 80, 'http'],
  ] as const)('an intercepted CONNECT %s:%d carries %s', (host, port, scheme) => {
    expect(decideConnect(policy(), host, port).scheme).toBe(scheme);
  });
});

describe('decideRequest', () => {
  const facts = (host: string, path: string, userAgent: string | undefined) => ({ product: cognito, host, path, userAgent });
  it.each([
    ['rewrite', 'api.security.microsoft.com', '/api/machines', undefined, 'rewritten', 'missing-user-agent', UA],
    ['rewrite', 'api.security.microsoft.com', '/api/machines', '', 'rewritten', 'missing-user-agent', UA],
    ['rewrite', 'api.security.microsoft.com', '/api/machines', 'curl/8.5', 'rewritten', 'non-partner-user-agent', UA],
    ['rewrite', 'api.security.microsoft.com', '/api/machines', 'MdatpPartner-Contoso-ContosoCognito/1.0.0', 'rewritten', 'legacy-user-agent', UA],
    ['rewrite', 'api.security.microsoft.com', '/api/machines', 'MdePartner-Other-Thing/1.0', 'rewritten', 'other-product-user-agent', UA],
    ['rewrite', 'api.security.microsoft.com', '/api/machines', 'MdePartner-Contoso-ContosoCognito/7', 'compliant', 'compliant-user-agent', undefined],
    ['reject', 'api.security.microsoft.com', '/api/machines', 'curl/8.5', 'rejected', 'non-partner-user-agent', undefined],
    ['reject', 'api.security.microsoft.com', '/api/machines', UA, 'compliant', 'compliant-user-agent', undefined],
    ['audit', 'api.security.microsoft.com', '/api/machines', 'curl/8.5', 'audited', 'non-partner-user-agent', undefined],
    ['rewrite', 'graph.microsoft.com', '/v1.0/security/alerts_v2', 'curl/8.5', 'rewritten', 'non-partner-user-agent', UA],
    ['rewrite', 'graph.microsoft.com', '/v1.0/users', 'curl/8.5', 'passed', 'not-an-api-call', undefined],
    ['reject', 'graph.microsoft.com', '/v1.0/me', 'curl/8.5', 'passed', 'not-an-api-call', undefined],
    ['rewrite', 'www.example.org', '/api/machines', 'curl/8.5', 'passed', 'not-an-api-call', undefined],
  ] as const)('%s: %s%s with %j → %s', (mode, host, path, ua, action, reason, userAgent) => {
    const d = decideRequest(policy({ mode }), facts(host, path, ua));
    expect(d).toEqual(userAgent === undefined ? { action, reason } : { action, reason, userAgent });
  });
});

describe('rewrittenUserAgent', () => {
  it.each([
    ['replace', 'python-requests/2.32.3', UA],
    ['prepend', 'python-requests/2.32.3', `${UA} python-requests/2.32.3`],
    ['prepend', undefined, UA],
    ['prepend', '   ', UA],
    ['prepend', 'MdePartner-Other-Thing/1.0 curl/8', `${UA} curl/8`],
    ['prepend', 'MdatpPartner-Contoso-ContosoCognito/1.0.0', UA],
  ] as const)('%s of %j → %j', (style, original, expected) => {
    expect(rewrittenUserAgent(style, cognito, original)).toBe(expected);
  });
});

describe('decideIdentity', () => {
  const open = policy();
  const locked = policy({ products: [cognito, scanner], defaultProduct: undefined });
  it.each([
    ['no credentials, default product', open, undefined, 'cognito', undefined],
    ['unrequested credentials keep the default', open, basicAuth('x', 'y'), 'cognito', undefined],
    ['an unrequested Bearer scheme keeps the default', open, 'Bearer abc', 'cognito', undefined],
    ['no credentials when required', locked, undefined, undefined, 'missing-credentials'],
    ['right user and password', locked, basicAuth('scan', 'pw'), 'scanner', undefined],
    ['wrong password', locked, basicAuth('scan', 'pw2'), undefined, 'invalid-credentials'],
    ['unknown user', locked, basicAuth('nobody', 'pw'), undefined, 'invalid-credentials'],
    ['no colon', locked, basicAuth('scan'), undefined, 'invalid-credentials'],
    ['Bearer scheme', locked, 'Bearer abc', undefined, 'unsupported-scheme'],
    ['lower-case scheme name (RFC 9110 §11.1)', locked, basicAuth('scan', 'pw').replace('Basic', 'basic'), 'scanner', undefined],
  ] as const)('%s', (_name, p, header, productId, error) => {
    const d = decideIdentity(p, header);
    expect(d.product?.id).toBe(productId);
    expect(d.error).toBe(error);
  });
});

describe('resolveDestination', () => {
  it.each([
    ['api.security.microsoft.com', 443, { host: '127.0.0.1', port: 8443, overridden: true }],
    ['graph.microsoft.com', 443, { host: 'graph.microsoft.com', port: 443, overridden: false }],
  ])('%s:%d', (host, port, expected) => {
    expect(resolveDestination(policy(), host, port)).toEqual(expected);
  });
});

describe('decidePlain', () => {
  it.each([
    ['api.security.microsoft.com', 80, {}, 'allow', 'public-destination'],
    ['www.example.org', 80, {}, 'allow', 'public-destination'],
    ['www.example.org', 80, { otherHosts: 'deny' }, 'deny', 'other-host-denied'],
    ['graph.microsoft.com', 80, { otherHosts: 'deny' }, 'allow', 'public-destination'],
    ['127.1', 80, {}, 'deny', 'loopback-destination'],
    ['127.1', 80, { allowPrivateDestinations: true }, 'allow', 'private-destinations-allowed'],
    ['10.0.0.1', 80, { otherHosts: 'deny', allowPrivateDestinations: true }, 'deny', 'other-host-denied'],
  ] as const)('http://%s:%d with %j → %s (%s)', (host, port, over, action, reason) => {
    expect(decidePlain(policy(over as Partial<Policy>), host, port)).toMatchObject({ action, reason });
  });
});

describe('decideDestination', () => {
  it.each([
    ['www.contoso.com', 443, {}, 'allow', 'public-destination'],
    ['::1', 443, {}, 'deny', 'loopback-destination'],
    ['2130706433', 443, {}, 'deny', 'loopback-destination'],
    ['10.1.2.3', 443, {}, 'deny', 'private-destination'],
    ['10.1.2.3', 443, { allowPrivateDestinations: true }, 'allow', 'private-destinations-allowed'],
    ['10.1.2.3', 443, { resolve: new Map([['10.1.2.3:443', { host: '127.0.0.1', port: 1 }]]) }, 'allow', 'resolve-override'],
  ] as const)('%s:%d with %j → %s (%s)', (host, port, over, action, reason) => {
    expect(decideDestination(policy(over as Partial<Policy>), host, port)).toMatchObject({ action, reason });
  });
});
