// Starts the real proxy on port 0 with Microsoft hosts mapped to a local origin via upstream.resolve.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type Config } from '../../src/config.js';
import { createProxy, type ProxyServer } from '../../src/server.js';
import type { ProxyObserver } from '../../src/events.js';
import { createRecorder, type Recorder } from './recorder.js';
import { testPki } from './pki.js';
import { startOrigin, type Origin } from './origin.js';

/** Hosts the tests reach; each maps to the echo origin. */
export const TEST_HOSTS = [
  'api.security.microsoft.com', 'us.api.security.microsoft.com', 'api.securitycenter.microsoft.com',
  'graph.microsoft.com', 'login.microsoftonline.com', 'www.example.org',
];

export interface TestProxy {
  readonly port: number;
  readonly url: string;
  readonly reversePorts: readonly number[];
  readonly caFile: string;
  readonly caPem: string;
  readonly stateDir: string;
  readonly recorder: Recorder;
  readonly proxy: ProxyServer;
  readonly config: Config;
  close(): Promise<void>;
}

/** The config document for a test proxy: doc's keys win over the test defaults. */
export async function testConfigDoc(originPort: number, doc: Record<string, unknown> = {}, extraResolve: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const pki = await testPki();
  const resolve: Record<string, string> = {};
  for (const h of TEST_HOSTS) {
    resolve[`${h}:443`] = `127.0.0.1:${originPort}`;
  }
  const upstream = (doc['upstream'] ?? {}) as Record<string, unknown>;
  return {
    version: 1,
    listen: '127.0.0.1:0',
    admin: 'off',
    stateDir: mkdtempSync(join(tmpdir(), 'mpp-state-')),
    products: [{ id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' }],
    log: { level: 'silent' },
    ...doc,
    upstream: { ca: pki.msRootFile, ...upstream, resolve: { ...resolve, ...extraResolve, ...((upstream['resolve'] as Record<string, string>) ?? {}) } },
  };
}

/** Starts a proxy for a config document; the recorder sees every event. */
export async function startProxy(originPort: number, doc: Record<string, unknown> = {}, opts: { observer?: ProxyObserver; extraResolve?: Record<string, string> } = {}): Promise<TestProxy> {
  const full = await testConfigDoc(originPort, doc, opts.extraResolve);
  const config = buildConfig(full, { source: 'test', baseDir: process.cwd() });
  const recorder = createRecorder();
  const proxy = await createProxy(config, { observer: opts.observer ?? recorder });
  const addrs = await proxy.listen();
  return {
    port: addrs.proxy.port,
    url: `http://127.0.0.1:${addrs.proxy.port}`,
    reversePorts: addrs.reverse.map((a) => a.port),
    caFile: proxy.ca.certFile,
    caPem: readFileSync(proxy.ca.certFile, 'utf8'),
    stateDir: config.stateDir,
    recorder,
    proxy,
    config,
    close: () => proxy.close(),
  };
}

export interface OriginsAndProxy {
  /** The TLS echo origin every Microsoft host on :443 resolves to. */
  readonly tlsOrigin: Origin;
  /** A plain-HTTP echo origin, api.security.microsoft.com:80's. */
  readonly plainOrigin: Origin;
  readonly proxy: TestProxy;
  close(): Promise<void>;
}

/**
 * The set-up of the request-path tests: both echo origins and a proxy with a reverse route to
 * api.security.microsoft.com; doc's keys are added to the config, extraResolve maps more hosts.
 */
export async function startWithOrigins(doc: Record<string, unknown> = {},
  extraResolve: (ports: { tls: number; plain: number }) => Record<string, string> = () => ({})): Promise<OriginsAndProxy> {
  const tlsOrigin = await startOrigin((await testPki()).msIssuer);
  const plainOrigin = await startOrigin();
  const proxy = await startProxy(tlsOrigin.port, {
    reverse: [{ listen: '127.0.0.1:0', upstream: 'https://api.security.microsoft.com', product: 'cognito' }],
    ...doc,
  }, { extraResolve: { 'api.security.microsoft.com:80': `127.0.0.1:${plainOrigin.port}`, ...extraResolve({ tls: tlsOrigin.port, plain: plainOrigin.port }) } });
  return {
    tlsOrigin, plainOrigin, proxy,
    async close() {
      await proxy.close();
      await tlsOrigin.close();
      await plainOrigin.close();
    },
  };
}
