// Squid with ssl_bump as a reference peer, when Debian's squid-openssl is installed: a generated
// squid.conf that bumps api.security.microsoft.com (rewriting the User-Agent, as the proxy does),
// splices every other host, caches nothing, and resolves the bench names to 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SQUID = '/usr/sbin/squid';
const CERTGEN = '/usr/lib/squid/security_file_certgen';

/** Squid's version line when it is installed with OpenSSL (ssl_bump), else undefined. */
export function squidVersion() {
  if (!existsSync(SQUID) || !existsSync(CERTGEN)) return undefined;
  try {
    const v = execFileSync(SQUID, ['-v'], { encoding: 'utf8' });
    if (!/--with-openssl/.test(v)) return undefined;
    return v.split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

function proxyUser() {
  try {
    const uid = Number(execFileSync('id', ['-u', 'proxy'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'proxy'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

function chownTree(path, owner) {
  chownSync(path, owner.uid, owner.gid);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), owner);
}

/** Writes squid.conf under dir and returns the command line that runs it in the foreground. */
export function prepareSquid(dir, { port, caCert: caCertIn, caKey: caKeyIn, originRoot: originRootIn, userAgent }) {
  mkdirSync(dir, { recursive: true });
  // Copies inside dir, which is handed to Squid's unprivileged user below.
  const [caCert, caKey, originRoot] = [[caCertIn, 'ca.pem'], [caKeyIn, 'ca-key.pem'], [originRootIn, 'origin-root.pem']].map(([from, to]) => {
    copyFileSync(from, join(dir, to));
    return join(dir, to);
  });
  const db = join(dir, 'ssl_db');
  execFileSync(CERTGEN, ['-c', '-s', db, '-M', '16MB'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 api.security.microsoft.com www.example.org localhost\n');
  const conf = join(dir, 'squid.conf');
  writeFileSync(conf, [
    `http_port 127.0.0.1:${port} ssl-bump tls-cert=${caCert} tls-key=${caKey} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB`,
    `sslcrtd_program ${CERTGEN} -s ${db} -M 16MB`,
    'sslcrtd_children 4 startup=1 idle=1',
    'acl step1 at_step SslBump1',
    'acl intercepted ssl::server_name api.security.microsoft.com',
    'ssl_bump peek step1',
    'ssl_bump bump intercepted',
    'ssl_bump splice all',
    `tls_outgoing_options cafile=${originRoot}`,
    'acl bench_clients src 127.0.0.1/32',
    'http_access allow bench_clients',
    'http_access deny all',
    'cache deny all',
    'cache_mem 8 MB',
    'request_header_access User-Agent deny all',
    `request_header_replace User-Agent ${userAgent}`,
    'via off',
    'forwarded_for delete',
    `hosts_file ${join(dir, 'hosts')}`,
    'access_log none',
    `cache_log ${join(dir, 'cache.log')}`,
    `pid_filename ${join(dir, 'squid.pid')}`,
    `coredump_dir ${dir}`,
    'shutdown_lifetime 0 seconds',
    'pinger_enable off',
    'icp_port 0',
    'htcp_port 0',
    'workers 1',
    '',
  ].join('\n'));
  // Squid drops root for the proxy user: it must read its CA and write its certificate database.
  const owner = proxyUser();
  if (owner) chownTree(dir, owner);
  chmodSync(dir, 0o755);
  return { cmd: SQUID, args: ['-N', '-f', conf] };
}
