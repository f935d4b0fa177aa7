// The Kustomize tree in config/kubernetes, built offline with the real `kubectl kustomize`
// (Debian's kubernetes-client in CI; kustomize v2 and v5 alike) and checked as a cluster would
// read it: generated ConfigMap names resolve, ports and labels line up, the proxy's config in
// each overlay loads, every metric the alerts and the dashboard query exists, and promtool
// accepts the rules.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { parseAllDocuments, parse } from 'yaml';
import { API_LABELS, createCatalogue, nameConstraintDomains } from '../../src/catalogue.js';
import { buildConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { cleanEnv } from '../helpers/child.js';
import { requireBinary } from '../helpers/prometheus.js';

const K8S = fileURLToPath(new URL('../../config/kubernetes/', import.meta.url));
const IMAGE = 'registry.example.com/mde-partner-proxy:0.1.0';

type Labels = Record<string, string>;

/** The fields of a built document that these tests read; kubectl has already checked the schema. */
interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
}
interface Container {
  name: string;
  image?: string;
  restartPolicy?: string;
  securityContext?: object;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  startupProbe?: { httpGet: { path: string } };
}
interface Deployment extends Doc {
  spec: { template: { metadata: { labels: Labels }; spec: {
    initContainers?: Container[];
    containers: Container[];
    volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
    enableServiceLinks?: boolean;
  } } };
}
/** The documents by kind. */
interface Kinds {
  Deployment: Deployment;
  ConfigMap: Doc & { data: Record<string, string> };
  PodMonitor: Doc & { spec: { podMetricsEndpoints: { port: string }[]; selector: { matchLabels: Labels } } };
  Service: Doc & { spec: { selector: Labels; ports: { targetPort: string | number }[] } };
  NetworkPolicy: Doc & { spec: { podSelector: { matchLabels: Labels }; ingress: { ports: { port: number }[] }[] } };
  PodDisruptionBudget: Doc & { spec: { selector: { matchLabels: Labels } } };
  Certificate: Doc & { spec: { isCA: boolean; secretName: string; issuerRef: { name: string }; nameConstraints: { critical: boolean; permitted: { dnsDomains: string[] } } } };
  Issuer: Doc;
  Bundle: Doc & { spec: { sources: object[] } };
  PrometheusRule: Doc & { spec: { groups: { rules: { alert?: string; expr: string }[] }[] } };
}

/** `kubectl kustomize DIR` as documents; fails the test on any error or on stderr other than kustomize's deprecation notes for the v2 forms (bases, patchesJson6902). */
function build(dir: string): Doc[] {
  const r = spawnSync('kubectl', ['kustomize', join(K8S, dir)], { encoding: 'utf8', env: cleanEnv() });
  if (r.error) throw new Error(`kubectl not found (${r.error.message}): install Debian's kubernetes-client; CI does this in .ci/run`);
  const stderr = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/Warning: '(bases|patchesJson6902)' is deprecated/.test(l));
  expect({ dir, status: r.status, stderr }).toEqual({ dir, status: 0, stderr: [] });
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc | null).filter((d) => d !== null);
}

/** The Secret name the overlays mount the CA from. */
const proxyCaSecret = (): string => {
  const volumes = one(build('overlays/shared'), 'Deployment').spec.template.spec.volumes;
  return volumes.find((v) => v.name === 'ca')!.secret!.secretName;
};

const ofKind = <K extends keyof Kinds>(docs: Doc[], kind: K): Kinds[K][] => docs.filter((d) => d.kind === kind) as Kinds[K][];
const one = <K extends keyof Kinds>(docs: Doc[], kind: K): Kinds[K] => {
  const found = ofKind(docs, kind);
  expect([kind, found.length]).toEqual([kind, 1]);
  return found[0]!;
};
const proxyContainer = (deployment: Deployment): Container => {
  const spec = deployment.spec.template.spec;
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === 'mde-partner-proxy');
  expect(found).toBeDefined();
  return found!;
};

/** Checks shared by every workload overlay; returns the proxy's config document. */
function checkWorkload(docs: Doc[]): unknown {
  const deployment = one(docs, 'Deployment');
  const container = proxyContainer(deployment);
  expect(container.image).toBe(IMAGE);
  expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  const podSpec = deployment.spec.template.spec;
  expect(podSpec.enableServiceLinks).toBe(false);
  // The config volume names the generated (hash-suffixed) ConfigMap that the build contains.
  const configMaps = ofKind(docs, 'ConfigMap');
  const configVolume = podSpec.volumes.find((v) => v.configMap !== undefined);
  const configMap = configMaps.find((c) => c.metadata.name === configVolume?.configMap?.name);
  expect(configMap).toBeDefined();
  expect(configMap!.metadata.name).toMatch(/-[a-z0-9]{10}$/);
  // The PodMonitor scrapes the port the proxy container names, on pods with the label it selects.
  const monitor = one(docs, 'PodMonitor');
  expect(container.ports?.map((p) => p.name)).toContain(monitor.spec.podMetricsEndpoints[0]?.port);
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
    expect([k, deployment.spec.template.metadata.labels[k]]).toEqual([k, v]);
  }
  expect(monitor.metadata.namespace).toBe(deployment.metadata.namespace);
  return parse(configMap!.data['config.yaml']!);
}

describe('kubectl kustomize config/kubernetes', () => {
  it('builds the sidecar overlay: a native sidecar whose config loads, and the app pointed at it', () => {
    const docs = build('overlays/sidecar');
    const config = checkWorkload(docs);
    const deployment = one(docs, 'Deployment');
    const sidecar = proxyContainer(deployment);
    expect(deployment.spec.template.spec.initContainers?.map((c) => c.name)).toEqual(['mde-partner-proxy']);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.startupProbe?.httpGet.path).toBe('/readyz');
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    const env = Object.fromEntries((app?.env ?? []).map((e) => [e.name, e.value]));
    expect(env['HTTPS_PROXY']).toBe('http://127.0.0.1:3128');
    expect(env['SSL_CERT_FILE']).toMatch(/ca-bundle\.pem$/);
    const built = buildConfig(config, { source: 'sidecar', baseDir: K8S, env: {} });
    expect(built.policy.products.map((p) => p.userAgent)).toEqual(['MdePartner-Fabrikam-FabrikamThreatSync/1.0.0']);
  });

  it('builds the sidecar-reverse overlay: reverse routes on loopback, no proxy settings in the app', () => {
    const docs = build('overlays/sidecar-reverse');
    const config = checkWorkload(docs);
    const deployment = one(docs, 'Deployment');
    expect(proxyContainer(deployment).restartPolicy).toBe('Always');
    const built = buildConfig(config, { source: 'sidecar-reverse', baseDir: K8S, env: {} });
    expect(built.reverse.map((r) => r.listen.host)).toEqual(['127.0.0.1', '127.0.0.1']);
    const app = deployment.spec.template.spec.containers.find((c) => c.name === 'app');
    expect(app).toBeDefined();
    expect((app?.env ?? []).map((e) => e.name)).not.toContain('HTTPS_PROXY');
  });

  it('builds the shared overlay: Deployment, Service and NetworkPolicy that select the same pods, in one namespace', () => {
    const docs = build('overlays/shared');
    checkWorkload(docs);
    const deployment = one(docs, 'Deployment');
    const service = one(docs, 'Service');
    const policy = one(docs, 'NetworkPolicy');
    const podLabels = deployment.spec.template.metadata.labels;
    for (const selector of [service.spec.selector, policy.spec.podSelector.matchLabels, one(docs, 'PodDisruptionBudget').spec.selector.matchLabels]) {
      for (const [k, v] of Object.entries(selector)) expect([k, podLabels[k]]).toEqual([k, v]);
    }
    expect(new Set(docs.map((d) => d.metadata.namespace))).toEqual(new Set(['mde-partner-proxy']));
    // Not named mde-partner-proxy: a Service so named would inject MDE_PARTNER_PROXY_* variables.
    expect(service.metadata.name).not.toMatch(/^mde-partner-proxy/);
    const proxyPort = proxyContainer(deployment).ports?.find((p) => p.containerPort === 3128);
    expect(proxyPort?.name).toBeDefined();
    expect(service.spec.ports[0]?.targetPort).toBe(proxyPort?.name);
    expect(policy.spec.ingress.flatMap((r) => r.ports.map((p) => p.port)).sort()).toEqual([3128, 9464]);
  });

  it('builds the shared-aks overlay with the PodMonitor in the azmonitoring.coreos.com/v1 flavour only', () => {
    const docs = build('overlays/shared-aks');
    checkWorkload(docs);
    expect(ofKind(docs, 'PodMonitor').map((d) => d.apiVersion)).toEqual(['azmonitoring.coreos.com/v1']);
    expect(docs.filter((d) => d.apiVersion.startsWith('monitoring.coreos.com'))).toEqual([]);
  });

  it('builds the cert-manager CA with the name constraints the proxy itself would write, and a trust-manager Bundle', () => {
    const docs = build('cert-manager');
    const cert = one(docs, 'Certificate');
    expect(cert.spec.isCA).toBe(true);
    expect(cert.spec.secretName).toBe(proxyCaSecret());
    expect([...cert.spec.nameConstraints.permitted.dnsDomains].sort()).toEqual([...nameConstraintDomains(createCatalogue(['commercial'], []))].sort());
    expect(cert.spec.nameConstraints.critical).toBe(true);
    expect(one(docs, 'Issuer').metadata.name).toBe(cert.spec.issuerRef.name);
    const bundle = one(docs, 'Bundle');
    expect(bundle.metadata.namespace).toBeUndefined();
    expect(bundle.spec.sources).toContainEqual({ secret: { name: cert.spec.secretName, key: 'ca.crt' } });
  });

  describe('monitoring', () => {
    let docs: Doc[];
    let names: Set<string>;

    beforeAll(async () => {
      docs = build('monitoring');
      const registry = new Registry();
      createMetrics({ registry, products: ['p'], apiLabels: API_LABELS, version: '0' });
      names = new Set((await registry.getMetricsAsJSON()).flatMap((m) => String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name]));
    });

    const metricsIn = (text: string): string[] => [...new Set(text.match(/\b(?:mde_partner_proxy|process|nodejs)_[a-z0-9_]+/g) ?? [])];

    it('has alert rules that promtool accepts, including the CA expiry 30 days ahead', () => {
      const rule = one(docs, 'PrometheusRule');
      expect(rule.metadata.namespace).toBe('monitoring');
      const dir = mkdtempSync(join(tmpdir(), 'mpp-rules-'));
      const file = join(dir, 'rules.yaml');
      writeFileSync(file, JSON.stringify({ groups: rule.spec.groups }));
      const r = spawnSync(requireBinary('promtool'), ['check', 'rules', file], { encoding: 'utf8', env: cleanEnv() });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      const alerts = rule.spec.groups.flatMap((g) => g.rules);
      const ca = alerts.find((a) => a.expr.includes('ca_expiry_timestamp_seconds'));
      expect(ca?.expr).toMatch(/- time\(\) < 30 \* 86400/);
    });

    it('queries only metrics the proxy exports, in the alerts and in the dashboard', () => {
      const rule = one(docs, 'PrometheusRule');
      const dashboard = ofKind(docs, 'ConfigMap').find((c) => c.metadata.labels?.grafana_dashboard === '1')!;
      const json = dashboard.data['grafana-dashboard.json']!;
      expect((JSON.parse(json) as { panels: unknown[] }).panels.length).toBeGreaterThan(3);
      const used = [...metricsIn(JSON.stringify(rule.spec)), ...metricsIn(json)];
      expect(used.length).toBeGreaterThan(3);
      expect(used.filter((n) => !names.has(n))).toEqual([]);
    });
  });
});
