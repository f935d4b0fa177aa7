// Attribution: tenant and application from a bearer token's payload, the product its application
// binds (policy.productForApp). The cache in front of it: attribution-cache.test.ts.
import { APP_NAME_MAX, attributeAuthorization, attributeToken, bearerToken, cleanAppName, guidOrUnknown } from '../../src/attribution.js';
import { buildConfig } from '../../src/config.js';
import { productForApp } from '../../src/policy.js';
import { makeToken } from '../helpers/tokens.js';

const TID = '8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6';
const APP = '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d';
const AZP = '11111111-2222-4333-8444-555555555555';
const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('attributeToken', () => {
  it.each([
    ['a v1 token: tid, appid, app_displayname', makeToken({ tid: TID, appid: APP, app_displayname: 'Contoso Cognito' }), { tenant: TID, app: APP, appName: 'Contoso Cognito' }],
    ['a v2 token: azp when there is no appid', makeToken({ tid: TID, azp: AZP }), { tenant: TID, app: AZP, appName: '' }],
    ['appid wins over azp', makeToken({ tid: TID, appid: APP, azp: AZP }), { tenant: TID, app: APP, appName: '' }],
    ['upper-case GUIDs are lowercased', makeToken({ tid: TID.toUpperCase(), appid: APP.toUpperCase() }), { tenant: TID, app: APP, appName: '' }],
    ['a tid that is not a GUID is unknown', makeToken({ tid: 'contoso.onmicrosoft.com', appid: APP }), { tenant: 'unknown', app: APP, appName: '' }],
    ['an appid that is not a GUID falls back to azp', makeToken({ tid: TID, appid: 'x'.repeat(500), azp: AZP }), { tenant: TID, app: AZP, appName: '' }],
    ['claims of the wrong type are unknown', makeToken({ tid: 42, appid: [APP], app_displayname: { x: 1 } }), { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['no claims at all', makeToken({}), { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['a payload that is not JSON', `${b64({ alg: 'none' })}.${b64('not json')}.sig`, { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['a payload that is a JSON array', `${b64({})}.${b64([TID])}.sig`, { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['a payload with base64 characters outside base64url', `a.${b64({ tid: TID })}+/.s`, { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['one segment', 'opaque-token-value', { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['an empty payload', 'a..b', { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['a huge payload is not decoded', `a.${'A'.repeat(20_000)}.b`, { tenant: 'unknown', app: 'unknown', appName: '' }],
    ['undefined', undefined, { tenant: 'unknown', app: 'unknown', appName: '' }],
  ])('%s', (_name, token, expected) => {
    expect(attributeToken(token)).toEqual(expected);
  });

  it('cleans and bounds the display name', () => {
    const a = attributeToken(makeToken({ tid: TID, app_displayname: `Evil\r\nX-Header: 1\u0000${'n'.repeat(200)}` }));
    expect(a.appName).not.toMatch(/[\r\n\0]/);
    expect(a.appName.length).toBe(APP_NAME_MAX);
    expect(a.appName.startsWith('Evil X-Header: 1 nnn')).toBe(true);
    expect(cleanAppName('  two   spaces ')).toBe('two spaces');
  });

  it('never returns text from the token other than GUIDs and the cleaned display name', () => {
    const a = attributeToken(makeToken({ tid: '<script>', appid: '../../etc', azp: 'DROP TABLE' }));
    expect(a).toEqual({ tenant: 'unknown', app: 'unknown', appName: '' });
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc.def.ghi', 'abc.def.ghi'],
    ['BEARER   abc.def.ghi  ', 'abc.def.ghi'],
    ['Basic dXNlcjpwYXNz', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    ['Bearerabc.def.ghi', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, expected) => {
    expect(bearerToken(value)).toBe(expected);
  });

  it('attributeAuthorization reads the header value', () => {
    expect(attributeAuthorization(`Bearer ${makeToken({ tid: TID, appid: APP })}`)).toEqual({ tenant: TID, app: APP, appName: '' });
    expect(attributeAuthorization('Basic abc')).toEqual({ tenant: 'unknown', app: 'unknown', appName: '' });
  });
});

describe('guidOrUnknown', () => {
  it.each([[TID, TID], [TID.toUpperCase(), TID], ['unknown', 'unknown'], ['', 'unknown'], [`${TID}x`, 'unknown'], [null, 'unknown']])('%j → %j', (v, out) => {
    expect(guidOrUnknown(v)).toBe(out);
  });
});

describe('productForApp', () => {
  const config = buildConfig({ version: 1, products: [
    { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', apps: [APP.toUpperCase()] },
    { id: 'sync', company: 'Contoso', product: 'ContosoSync', version: '2.0.0', apps: [AZP] },
  ] }, { source: 'test', baseDir: '/tmp', env: {} });

  it.each([[APP, 'cognito'], [AZP, 'sync'], ['unknown', undefined], ['99999999-2222-4333-8444-555555555555', undefined]])('%s → %s', (app, id) => {
    expect(productForApp(config.policy, app)?.id).toBe(id);
  });
});
