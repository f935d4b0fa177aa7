import {
  API_LABELS,
  CATALOGUE_HOSTS,
  CLOUDS,
  apiLabel,
  createCatalogue,
  hostKind,
  isEnforced,
  isTokenHost,
  nameConstraintDomains,
  normaliseHostPattern,
  type Cloud,
  type HostKind,
} from '../../src/catalogue.js';
import { createPrng } from '../helpers/prng.js';

const commercial = createCatalogue(['commercial']);
const gcc = createCatalogue(['gcc']);
const gccHigh = createCatalogue(['gcc-high']);
const dod = createCatalogue(['dod']);
const byCloud: Record<Cloud, ReturnType<typeof createCatalogue>> = { commercial, gcc, 'gcc-high': gccHigh, dod };

const COMMERCIAL_API_HOSTS = [
  'api.security.microsoft.com',
  'us.api.security.microsoft.com',
  'eu.api.security.microsoft.com',
  'uk.api.security.microsoft.com',
  'au.api.security.microsoft.com',
  'swa.api.security.microsoft.com',
  'ina.api.security.microsoft.com',
  'aea.api.security.microsoft.com',
  'api-us.security.microsoft.com',
  'api-eu.security.microsoft.com',
  'api-uk.security.microsoft.com',
  'api.securitycenter.microsoft.com',
  'api-us.securitycenter.microsoft.com',
  'api-eu.securitycenter.microsoft.com',
  'api-uk.securitycenter.microsoft.com',
  'api-au.securitycenter.microsoft.com',
  'api.securitycenter.windows.com',
  'wdatp-alertexporter-eu.securitycenter.windows.com',
];
const GOVERNMENT_API_HOSTS = [
  'api-gcc.securitycenter.microsoft.us',
  'api-gov.securitycenter.microsoft.us',
  'api-gcc.security.microsoft.us',
  'api-gov.security.microsoft.us',
];
const TOKEN_HOSTS = ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.windows.net', 'login.microsoft.com'];

describe('hostKind per cloud', () => {
  // [host, commercial, gcc, gcc-high, dod]
  const rows: [string, HostKind, HostKind, HostKind, HostKind][] = [
    ...COMMERCIAL_API_HOSTS.map((h): [string, HostKind, HostKind, HostKind, HostKind] => [h, 'api', 'other', 'other', 'other']),
    ...GOVERNMENT_API_HOSTS.map((h): [string, HostKind, HostKind, HostKind, HostKind] => [h, 'other', 'api', 'api', 'api']),
    ['graph.microsoft.com', 'graph', 'graph', 'other', 'other'],
    ['graph.microsoft.us', 'other', 'graph', 'graph', 'graph'],
    ['dod-graph.microsoft.us', 'other', 'graph', 'graph', 'graph'],
    ...TOKEN_HOSTS.map((h): [string, HostKind, HostKind, HostKind, HostKind] => [h, 'token', 'token', 'token', 'token']),
    // a future geo below the XDR base URI
    ['jpn.api.security.microsoft.com', 'api', 'other', 'other', 'other'],
    // portals and look-alikes are not API hosts
    ['security.microsoft.com', 'other', 'other', 'other', 'other'],
    ['securitycenter.microsoft.com', 'other', 'other', 'other', 'other'],
    ['securitycenter.windows.com', 'other', 'other', 'other', 'other'],
    ['security.microsoft.us', 'other', 'other', 'other', 'other'],
    ['securitycenter.microsoft.us', 'other', 'other', 'other', 'other'],
    ['api-fr.securitycenter.microsoft.com', 'other', 'other', 'other', 'other'],
    ['evilsecuritycenter.windows.com', 'other', 'other', 'other', 'other'],
    ['api.security.microsoft.com.evil.example', 'other', 'other', 'other', 'other'],
    ['xapi.security.microsoft.com', 'other', 'other', 'other', 'other'],
    ['sub.graph.microsoft.com', 'other', 'other', 'other', 'other'],
    ['microsoft.com', 'other', 'other', 'other', 'other'],
    ['example.com', 'other', 'other', 'other', 'other'],
    ['127.0.0.1', 'other', 'other', 'other', 'other'],
    ['', 'other', 'other', 'other', 'other'],
  ];
  it.each(rows)('%s is commercial:%s gcc:%s gcc-high:%s dod:%s', (host, ...expected) => {
    expect(CLOUDS.map((cloud) => hostKind(byCloud[cloud], host))).toEqual(expected);
  });

  it.each([
    ['upper case', 'API.Security.Microsoft.COM', 'api'],
    ['a trailing dot', 'api.security.microsoft.com.', 'api'],
    ['upper case and a trailing dot on Graph', 'GRAPH.MICROSOFT.COM.', 'graph'],
    ['a token host in upper case', 'Login.MicrosoftOnline.com', 'token'],
    ['a token host with a trailing dot', 'login.windows.net.', 'token'],
  ])('normalises %s', (_name, host, expected) => {
    expect(hostKind(commercial, host)).toBe(expected);
  });

  it('combines clouds', () => {
    const both = createCatalogue(['commercial', 'gcc-high']);
    expect(both.clouds).toEqual(['commercial', 'gcc-high']);
    expect(hostKind(both, 'api.security.microsoft.com')).toBe('api');
    expect(hostKind(both, 'api-gov.securitycenter.microsoft.us')).toBe('api');
    expect(hostKind(both, 'graph.microsoft.com')).toBe('graph');
    expect(hostKind(both, 'graph.microsoft.us')).toBe('graph');
  });

  it('knows token hosts with no cloud selected', () => {
    const none = createCatalogue([]);
    expect(TOKEN_HOSTS.map((h) => hostKind(none, h))).toEqual(TOKEN_HOSTS.map(() => 'token'));
    expect(hostKind(none, 'api.security.microsoft.com')).toBe('other');
  });
});

describe('extraHosts', () => {
  const cat = createCatalogue(['commercial'], ['API.Contoso.example.', '*.Partner.Example', 'graph.microsoft.com', '*.microsoftonline.com']);

  it.each([
    ['a bare extra host', 'api.contoso.example', 'api'],
    ['a bare extra host in other case', 'Api.Contoso.Example', 'api'],
    ['a subdomain of a bare extra host', 'x.api.contoso.example', 'other'],
    ['a name below a wildcard', 'eu.partner.example', 'api'],
    ['a name two levels below a wildcard', 'a.b.partner.example', 'api'],
    ['the wildcard apex', 'partner.example', 'other'],
    ['a look-alike of the wildcard', 'evilpartner.example', 'other'],
    ['a built-in Graph host named as extra, which keeps its path scope', 'graph.microsoft.com', 'graph'],
    ['a token host below a wildcard extra', 'login.microsoftonline.com', 'token'],
    ['another name below that wildcard', 'other.microsoftonline.com', 'api'],
  ])('treats %s as %s', (_name, host, expected) => {
    expect(hostKind(cat, host)).toBe(expected);
  });

  it('keeps the normalised, deduplicated extra hosts', () => {
    const c = createCatalogue([], ['A.example.com', 'a.example.com.', '*.B.example.com']);
    expect(c.extraHosts).toEqual(['a.example.com', '*.b.example.com']);
  });

  it.each([
    ['an empty entry', ''],
    ['a bare wildcard', '*'],
    ['a wildcard over a TLD', '*.com'],
    ['a wildcard in the middle', 'api.*.example.com'],
    ['an IPv4 literal', '10.0.0.5'],
    ['an IPv6 literal', '::1'],
    ['a host with a port', 'example.com:443'],
    ['a URL', 'https://example.com/'],
    ['a space', 'exa mple.com'],
    ['an empty label', 'a..example.com'],
  ])('refuses %s', (_name, pattern) => {
    expect(normaliseHostPattern(pattern)).toBeUndefined();
    expect(() => createCatalogue([], [pattern])).toThrow(RangeError);
  });

  it('refuses a token endpoint as an extra host', () => {
    expect(() => createCatalogue([], ['login.microsoftonline.com'])).toThrow(/token endpoint/);
  });

  it('refuses an unknown cloud', () => {
    expect(() => createCatalogue(['mooncake' as Cloud])).toThrow(RangeError);
  });
});

describe('isEnforced', () => {
  it.each([
    ['an MDE path', 'api.security.microsoft.com', '/api/machines', true],
    ['any path on an API host', 'api.securitycenter.microsoft.com', '/', true],
    ['a geo host', 'swa.api.security.microsoft.com', '/api/alerts', true],
    ['the Graph v1.0 security root', 'graph.microsoft.com', '/v1.0/security', true],
    ['the Graph v1.0 security root with a slash', 'graph.microsoft.com', '/v1.0/security/', true],
    ['a Graph v1.0 security collection', 'graph.microsoft.com', '/v1.0/security/alerts_v2', true],
    ['a Graph beta security collection', 'graph.microsoft.com', '/beta/security/incidents/42?$expand=alerts', true],
    ['a Graph security root with a query', 'graph.microsoft.com', '/v1.0/security?$select=id', true],
    ['a Graph security path in other case', 'graph.microsoft.com', '/V1.0/Security/Alerts_V2', true],
    ['a Graph security path with doubled slashes', 'graph.microsoft.com', '//v1.0//security/alerts_v2', true],
    ['a government Graph security path', 'graph.microsoft.us', '/v1.0/security/incidents', false], // not selected
    ['a Graph path beyond a segment boundary', 'graph.microsoft.com', '/v1.0/securityX', false],
    ['a Graph path beyond a segment boundary, nested', 'graph.microsoft.com', '/v1.0/securityX/alerts', false],
    ['a Graph path with security in the query only', 'graph.microsoft.com', '/v1.0/me?x=/v1.0/security', false],
    ['a Graph path with security in the fragment only', 'graph.microsoft.com', '/v1.0/me#/v1.0/security', false],
    ['another Graph API', 'graph.microsoft.com', '/v1.0/users', false],
    ['another Graph version', 'graph.microsoft.com', '/v2.0/security/alerts', false],
    ['Graph security without a version', 'graph.microsoft.com', '/security/alerts', false],
    ['Graph batch', 'graph.microsoft.com', '/v1.0/$batch', false],
    ['a token host', 'login.microsoftonline.com', '/tenant/oauth2/v2.0/token', false],
    ['another host', 'example.com', '/api/machines', false],
  ])('%s → %s', (_name, host, path, expected) => {
    expect(isEnforced(commercial, host, path)).toBe(expected);
  });

  it.each([
    ['gcc', 'graph.microsoft.com'],
    ['gcc', 'graph.microsoft.us'],
    ['gcc-high', 'graph.microsoft.us'],
    ['dod', 'dod-graph.microsoft.us'],
  ] as [Cloud, string][])('enforces Graph security in %s on %s', (cloud, host) => {
    expect(isEnforced(byCloud[cloud], host, '/v1.0/security/alerts_v2')).toBe(true);
    expect(isEnforced(byCloud[cloud], host, '/v1.0/me')).toBe(false);
  });

  it.each(GOVERNMENT_API_HOSTS)('enforces every path on %s in government clouds', (host) => {
    expect(isEnforced(gccHigh, host, '/api/machines')).toBe(true);
    expect(isEnforced(commercial, host, '/api/machines')).toBe(false);
  });
});

describe('isTokenHost', () => {
  it.each([
    ...TOKEN_HOSTS.map((h): [string, boolean] => [h, true]),
    ['LOGIN.MICROSOFTONLINE.COM.', true],
    ['login.microsoftonline.de', false],
    ['evil-login.microsoftonline.com', false],
    ['graph.microsoft.com', false],
  ])('%s → %s', (host, expected) => {
    expect(isTokenHost(host)).toBe(expected);
  });
});

describe('nameConstraintDomains', () => {
  it.each([
    ['commercial', ['graph.microsoft.com', 'security.microsoft.com', 'securitycenter.microsoft.com', 'securitycenter.windows.com']],
    ['gcc', ['dod-graph.microsoft.us', 'graph.microsoft.com', 'graph.microsoft.us', 'security.microsoft.us', 'securitycenter.microsoft.us']],
    ['gcc-high', ['dod-graph.microsoft.us', 'graph.microsoft.us', 'security.microsoft.us', 'securitycenter.microsoft.us']],
    ['dod', ['dod-graph.microsoft.us', 'graph.microsoft.us', 'security.microsoft.us', 'securitycenter.microsoft.us']],
  ] as [Cloud, string[]][])('lists the %s domains', (cloud, expected) => {
    expect(nameConstraintDomains(byCloud[cloud])).toEqual(expected);
  });

  it.each(CLOUDS)('covers every %s catalogue host and no token host', (cloud) => {
    const domains = nameConstraintDomains(byCloud[cloud]);
    const covered = (name: string): boolean => domains.some((d) => name === d || name.endsWith(`.${d}`));
    for (const rule of CATALOGUE_HOSTS[cloud]) expect([rule.pattern, covered(rule.pattern.replace(/^\*\./, ''))]).toEqual([rule.pattern, true]);
    for (const token of TOKEN_HOSTS) expect([token, covered(token)]).toEqual([token, false]);
  });

  it('adds extra hosts, deduplicated and without names another entry covers', () => {
    const cat = createCatalogue(['commercial', 'gcc'], ['*.partner.example', 'api.partner.example', 'api.contoso.example', 'x.security.microsoft.com']);
    expect(nameConstraintDomains(cat)).toEqual([
      'api.contoso.example',
      'dod-graph.microsoft.us',
      'graph.microsoft.com',
      'graph.microsoft.us',
      'partner.example',
      'security.microsoft.com',
      'security.microsoft.us',
      'securitycenter.microsoft.com',
      'securitycenter.microsoft.us',
      'securitycenter.windows.com',
    ]);
  });

  it('returns a copy', () => {
    nameConstraintDomains(commercial).push('evil.example');
    expect(nameConstraintDomains(commercial)).not.toContain('evil.example');
  });
});

describe('apiLabel for MDE and Defender XDR hosts', () => {
  it.each([
    ['/api/machines', 'machines'],
    ['/api/machines/', 'machines'],
    ['/api/machines/abc123/isolate', 'machines'],
    ['/api/Machines/SoftwareVulnerabilitiesByMachine?pageSize=1000', 'machines'],
    ["/api/machines('abc')", 'machines'],
    ['/api/machines/findbyip(ip=\'10.0.0.1\',timestamp=2024-01-01T00:00:00Z)', 'machines'],
    ['/API/ALERTS', 'alerts'],
    ['/api/alerts/CreateAlertByReference', 'alerts'],
    ['/api/v1.0/alerts', 'alerts'],
    ['/api/V1.0/Machines/x', 'machines'],
    ['/api/machineactions/1/GetPackageUri', 'machineactions'],
    ['/api/indicators/import', 'indicators'],
    ['/api/files/sha1/stats', 'files'],
    ['/api/ips/10.0.0.1/alerts', 'ips'],
    ['/api/domains/example.com/machines', 'domains'],
    ['/api/users/alice/machines', 'users'],
    ['/api/investigations', 'investigations'],
    ['/api/vulnerabilities/machinesVulnerabilities', 'vulnerabilities'],
    ['/api/Software/microsoft-_-edge/distributions', 'software'],
    ['/api/recommendations/id/machineReferences', 'recommendations'],
    ['/api/advancedqueries/run', 'advancedqueries'],
    ['/api/advancedhunting/run', 'advancedhunting'],
    ['/api/incidents?$top=10', 'incidents'],
    ['/api/exposureScore/ByMachineGroups', 'exposurescore'],
    ['/api/configurationScore', 'configurationscore'],
    ['/api/libraryfiles/script.ps1', 'libraryfiles'],
    ['/api/remediationTasks/1/machineReferences', 'remediationtasks'],
    ['/api/deviceavinfo', 'deviceavinfo'],
    ['/api/public/avdeviceshealth', 'deviceavinfo'],
    ['/api/browserextensions/permissionsinfo', 'browserextensions'],
    ['/api/baselineConfigurations', 'baselineconfigurations'],
    ['/api/baselineProfiles', 'baselineprofiles'],
    ['/api/DeviceAuthenticatedScanDefinitions/BatchDelete', 'deviceauthenticatedscandefinitions'],
    ['/api/DeviceAuthenticatedScanAgents/1', 'deviceauthenticatedscanagents'],
    ['/api/machines#frag', 'machines'],
    ['//api//machines', 'machines'],
    ['/api', 'other'],
    ['/api/', 'other'],
    ['/api/v1.0', 'other'],
    ['/api/unknown', 'other'],
    ['/api/machinesX', 'other'],
    ['/api/$metadata', 'other'],
    ['/apix/machines', 'other'],
    ['/machines', 'other'],
    ['/', 'other'],
    ['', 'other'],
    ['/v1.0/security/alerts_v2', 'other'],
    ['/api?x=/api/machines', 'other'],
  ])('%s → %s', (path, expected) => {
    expect(apiLabel('api', path)).toBe(expected);
  });
});

describe('apiLabel for Graph hosts', () => {
  it.each([
    ['/v1.0/security', 'security'],
    ['/v1.0/security/', 'security'],
    ['/v1.0/security?$select=id', 'security'],
    ['/v1.0/security/alerts_v2', 'security.alerts_v2'],
    ['/v1.0/security/alerts_v2/da637551227677560813_-961444813?$expand=evidence', 'security.alerts_v2'],
    ["/v1.0/security/alerts_v2('id')", 'security.alerts_v2'],
    ['/beta/security/ALERTS_V2', 'security.alerts_v2'],
    ['/v1.0/security/incidents/2972395', 'security.incidents'],
    ['/v1.0/security/runHuntingQuery', 'security.runHuntingQuery'],
    ['/v1.0/security/microsoft.graph.security.runHuntingQuery', 'security.runHuntingQuery'],
    ['/beta/security/runhuntingquery', 'security.runHuntingQuery'],
    ['/v1.0/security/alerts/1', 'security.alerts'],
    ['/v1.0/security/secureScores?$top=1', 'security.secureScores'],
    ['/v1.0/security/secureScoreControlProfiles', 'security.secureScoreControlProfiles'],
    ['/v1.0/security/threatIntelligence/hosts/contoso.com', 'security.threatIntelligence'],
    ['/v1.0/security/cases/ediscoveryCases', 'security.cases'],
    ['/beta/security/attackSimulation/simulations', 'security.attackSimulation'],
    ['/v1.0/security/triggers/retentionEvents', 'security.triggers'],
    ['/v1.0/security/triggerTypes/retentionEventTypes', 'security.triggerTypes'],
    ['/v1.0/security/labels/retentionLabels', 'security.labels'],
    ['/beta/security/tiIndicators', 'security.tiIndicators'],
    ['/v1.0/security/identities/healthIssues', 'security.identities'],
    ['/beta/security/dataDiscovery/cloudAppDiscovery/uploadedStreams', 'security.dataDiscovery'],
    ['/v1.0/security/auditLog/queries', 'security.auditLog'],
    ['/beta/security/collaboration/analyzedEmails', 'security.collaboration'],
    ['/v1.0/security/threatSubmission/emailThreats', 'security.threatSubmission'],
    ['/v1.0/security/informationProtection/sensitivityLabels', 'security.informationProtection'],
    ['/v1.0/security/dataSecurityAndGovernance/sensitivityLabels', 'security.dataSecurityAndGovernance'],
    ['/beta/security/rules/detectionRules', 'security.rules'],
    ['/beta/security/securityActions', 'security.securityActions'],
    ['/beta/security/subjectRightsRequests', 'security.subjectRightsRequests'],
    ['/v1.0/security/unknownThing', 'other'],
    ['/v1.0/securityX', 'other'],
    ['/v1.0/me', 'other'],
    ['/v1.0/users?$filter=x', 'other'],
    ['/security/alerts_v2', 'other'],
    ['/api/machines', 'other'],
    ['/', 'other'],
    ['', 'other'],
  ])('%s → %s', (path, expected) => {
    expect(apiLabel('graph', path)).toBe(expected);
  });

  it.each([['token'], ['other']] as [HostKind][])('labels every %s-host request as other', (kind) => {
    expect(apiLabel(kind, '/api/machines')).toBe('other');
    expect(apiLabel(kind, '/v1.0/security/alerts_v2')).toBe('other');
  });
});

describe('API_LABELS', () => {
  it('has no duplicates and includes other and the Graph root', () => {
    expect(new Set(API_LABELS).size).toBe(API_LABELS.length);
    expect(API_LABELS).toContain('other');
    expect(API_LABELS).toContain('security');
  });

  // Seeded (test/helpers/prng.ts), so a failure reproduces.
  const prng = createPrng(20240501);
  const random = prng.next;
  const pick = prng.pick;
  const ALPHABET = 'aAbBzZ09_-.~!$&\'()*+,;=:@%2F/?#\u00e9 ';
  const word = (): string => {
    if (random() < 0.4) return pick([...API_LABELS, ...API_LABELS.map((l) => l.replace('security.', '')), 'api', 'v1.0', 'beta', 'security', 'public', 'microsoft.graph.security.runHuntingQuery', '']);
    let s = '';
    const n = Math.floor(random() * 12);
    for (let i = 0; i < n; i++) s += pick([...ALPHABET]);
    return random() < 0.5 ? s.toUpperCase() : s;
  };
  const paths = Array.from({ length: 400 }, () => {
    const prefix = pick(['/api/', '/api/v1.0/', '/v1.0/security/', '/beta/security/', '/', '//', '', '/v1.0/', '?']);
    const segments = Array.from({ length: Math.floor(random() * 5) }, word);
    return prefix + segments.join(pick(['/', '//', '(', '?', '#']));
  });

  it.each(['api', 'graph', 'token', 'other'] as HostKind[])('bounds every label of 400 generated %s paths', (kind) => {
    const labels = new Set(paths.map((p) => apiLabel(kind, p)));
    for (const label of labels) expect([label, API_LABELS.includes(label)]).toEqual([label, true]);
    if (kind === 'api' || kind === 'graph') expect(labels.size).toBeGreaterThan(5);
  });
});

describe('Graph paths that could be normalised into /security fail closed', () => {
  const cat = createCatalogue(['commercial']);
  it.each([
    ['/v1.0/./security/alerts_v2', true],
    ['/v1.0/%73ecurity/alerts_v2', true],
    ['/V1.0/security/..;/x', true],
    ['/v1.0/users/../security/alerts_v2', true],
    ['/v1.0/users?$filter=a%20b', false],
    ['/v1.0/users/x.y', false],
  ])('%s enforced: %s', (path, enforced) => {
    expect(isEnforced(cat, 'graph.microsoft.com', path)).toBe(enforced);
  });
});

describe('hostKind asked again', () => {
  it('answers each catalogue for itself when the same host alternates between them', () => {
    const host = 'api.securitycenter.microsoft.us';
    for (let i = 0; i < 3; i++) {
      expect(hostKind(commercial, host)).toBe('other');
      expect(hostKind(gccHigh, host)).toBe('api');
      expect(hostKind(gccHigh, 'api.security.microsoft.com')).toBe('other');
      expect(hostKind(commercial, 'API.Security.Microsoft.com.')).toBe('api');
      expect(hostKind(commercial, 'api.security.microsoft.com')).toBe('api');
    }
  });
});
