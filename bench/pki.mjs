// The benchmark's PKI, made with the openssl command line so it shares no code with the proxy:
// a stand-in "Microsoft" root and one ECDSA P-256 origin certificate for every name the runs use
// (*.bench.test covers the 10,000-host run), and a separate CA for Squid's ssl_bump.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const openssl = (args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** The names on the origin certificate. */
export const ORIGIN_NAMES = ['api.security.microsoft.com', 'www.example.org', '*.bench.test', 'localhost'];

function rootCa(dir, base, subject) {
  const key = join(dir, `${base}-key.pem`);
  const cert = join(dir, `${base}.pem`);
  const ext = join(dir, `${base}.ext`);
  writeFileSync(ext, [
    '[req]', 'distinguished_name = dn', '[dn]', '[v3_ca]',
    'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash', '',
  ].join('\n'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-x509', '-new', '-key', key, '-sha256', '-days', '30', '-subj', subject, '-config', ext, '-extensions', 'v3_ca', '-out', cert]);
  return { cert, key };
}

/** Creates the PKI under dir and returns the file names. */
export function makePki(dir) {
  mkdirSync(dir, { recursive: true });
  const root = rootCa(dir, 'origin-root', '/O=bench/CN=Bench Microsoft Root');
  const key = join(dir, 'origin-key.pem');
  const csr = join(dir, 'origin.csr');
  const cert = join(dir, 'origin.pem');
  const ext = join(dir, 'origin.ext');
  writeFileSync(ext, [
    'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = serverAuth',
    `subjectAltName = ${ORIGIN_NAMES.map((n) => `DNS:${n}`).join(', ')}, IP:127.0.0.1`, '',
  ].join('\n'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', '/CN=api.security.microsoft.com', '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', root.cert, '-CAkey', root.key, '-CAcreateserial', '-days', '30', '-sha256', '-extfile', ext, '-out', cert]);
  const squid = rootCa(dir, 'squid-ca', '/O=bench/CN=Bench Squid ssl_bump CA');
  return { rootCert: root.cert, originCert: cert, originKey: key, squidCaCert: squid.cert, squidCaKey: squid.key };
}
