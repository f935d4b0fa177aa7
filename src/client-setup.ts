// What a client needs to use the proxy: the CA bundle to trust and the environment lines to set.
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { formatAuthority } from './target.js';

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The proxy URL clients use: the listen address, with 0.0.0.0/:: shown as loopback. */
export function proxyUrl(config: Config, port = config.listen.port): string {
  const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host === '::' ? '::1' : config.listen.host;
  return `http://${formatAuthority({ host, port })}`;
}

/**
 * Writes `ca-bundle.pem` beside the CA: the system roots plus the interception CA, for clients whose
 * variable replaces the trust store (curl, Python requests, Go) so other HTTPS keeps verifying.
 */
export function writeTrustBundle(stateDir: string, caCertPem: string): string {
  let system = '';
  try {
    system = readFileSync(SYSTEM_BUNDLE, 'utf8');
  } catch {
    // No system bundle: the bundle holds only the interception CA.
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'ca-bundle.pem');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${system.trimEnd()}\n${caCertPem.trim()}\n`, { mode: 0o644 });
  renameSync(tmp, file);
  return file;
}

/** Shell lines that point curl, Python, Node, Go, Java and others at the proxy and its CA. */
export function envLines(opts: { proxyUrl: string; caFile: string; bundleFile: string }): string[] {
  const { proxyUrl: url, caFile, bundleFile } = opts;
  return [
    `export HTTPS_PROXY=${url} https_proxy=${url}`,
    `export NO_PROXY=localhost,127.0.0.1,::1 no_proxy=localhost,127.0.0.1,::1`,
    `# curl, Python requests, Go, OpenSSL-based tools: system roots plus the interception CA`,
    `export CURL_CA_BUNDLE=${bundleFile} REQUESTS_CA_BUNDLE=${bundleFile} SSL_CERT_FILE=${bundleFile}`,
    `# Node.js: adds the CA to its roots; Node >= 24 also honours HTTPS_PROXY with NODE_USE_ENV_PROXY=1`,
    `export NODE_EXTRA_CA_CERTS=${caFile} NODE_USE_ENV_PROXY=1`,
    `# Java: keytool -importcert -noprompt -alias mde-partner-proxy -file ${caFile} -cacerts -storepass changeit`,
    `#       and run with -Dhttps.proxyHost=<host> -Dhttps.proxyPort=<port>`,
  ];
}

/** Human steps printed at start-up and by `ca init`: where the CA is and how to trust it. */
export function trustSteps(opts: { proxyUrl: string; caFile: string; bundleFile: string }): string {
  return [
    `Interception CA: ${opts.caFile}`,
    `Trust it in a client, for example:`,
    `  curl --proxy ${opts.proxyUrl} --cacert ${opts.caFile} https://api.security.microsoft.com/api/machines`,
    `  eval "$(mde-partner-proxy env)"     # HTTPS_PROXY plus CA variables for curl, Python, Node, Go`,
    `System-wide (Debian/Ubuntu): cp ${opts.caFile} /usr/local/share/ca-certificates/mde-partner-proxy.crt && update-ca-certificates`,
  ].join('\n');
}
