// The package as people adopt it: `npm pack` of a clean copy, installed offline (from the npm cache
// that `npm ci` filled) into an empty project, then `npx mde-partner-proxy --version` and the
// library entry (`createProxy`, `loadConfig`) used for real. Also the container image's
// ENTRYPOINT: node with the same flags as cli.ts' shebang, no `env -S`.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv, run } from '../helpers/child.js';
import { buildCli, logLines, startCli, until } from '../helpers/cli-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; files: string[] };
const NPM_TIMEOUT = 240_000;
const npmEnv = (): NodeJS.ProcessEnv => ({ ...cleanEnv(), npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });

let tarball: string;
let installDir: string;
let packed: string[];

beforeAll(async () => {
  // A copy, so the build that prepack runs never races the other test files' dist/.
  const src = mkdtempSync(join(tmpdir(), 'mpp-pack-src-'));
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', ...PKG.files, 'src', 'scripts']) {
    if (existsSync(join(ROOT, entry)) && !existsSync(join(src, entry))) cpSync(join(ROOT, entry), join(src, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  const out = mkdtempSync(join(tmpdir(), 'mpp-pack-out-'));
  const pack = await run('npm', ['pack', '--json', '--pack-destination', out], { env: { ...npmEnv() }, timeoutMs: NPM_TIMEOUT, cwd: src });
  if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(out, info[0]!.filename);
  packed = info[0]!.files.map((f) => f.path);
  installDir = mkdtempSync(join(tmpdir(), 'mpp-pack-install-'));
  // An empty project that depends on the tarball, with a lock made of the tarball and the project
  // lock's runtime entries: `npm ci --offline` then takes every dependency from the npm cache that
  // `npm ci` filled (resolution without a lock would need the registry's metadata).
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const manifest = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')) as Record<string, unknown>;
  const packages: Record<string, unknown> = {
    '': { dependencies: { 'mde-partner-proxy': `file:${tarball}` } },
    'node_modules/mde-partner-proxy': {
      version: manifest['version'], resolved: `file:${tarball}`, integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
      license: manifest['license'], dependencies: manifest['dependencies'], bin: manifest['bin'], engines: manifest['engines'],
    },
  };
  for (const [key, entry] of Object.entries(lock.packages)) if (key.startsWith('node_modules/') && entry.dev !== true) packages[key] = entry;
  writeFileSync(join(installDir, 'package.json'), JSON.stringify({ private: true, dependencies: { 'mde-partner-proxy': `file:${tarball}` } }));
  writeFileSync(join(installDir, 'package-lock.json'), JSON.stringify({ name: 'adopter', lockfileVersion: 3, requires: true, packages }));
  // Install scripts off: a native addon (better-sqlite3) would compile for minutes. Its binary is
  // the one `npm ci` built on this machine for the project, copied in after the install.
  const install = await run('npm', ['ci', '--offline', '--ignore-scripts'], { env: npmEnv(), timeoutMs: NPM_TIMEOUT, cwd: installDir });
  if (install.code !== 0) throw new Error(`npm ci --offline of the tarball failed: ${install.stderr}${install.stdout}`);
  for (const [key, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean; hasInstallScript?: boolean }>)) {
    if (!key.startsWith('node_modules/') || entry.dev === true || entry.hasInstallScript !== true) continue;
    const built = join(ROOT, key, 'build');
    if (existsSync(built)) cpSync(built, join(installDir, key, 'build'), { recursive: true });
  }
}, 2 * NPM_TIMEOUT);

describe('the npm package', () => {
  it('holds the built CLI and library, the licence and the project documents, and no sources or tests', () => {
    for (const file of ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', 'SECURITY.md', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts']) expect([file, packed.includes(file)]).toEqual([file, true]);
    expect(packed.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  });

  it('installs offline in an empty directory and runs `npx mde-partner-proxy --version`', async () => {
    const r = await run('npx', ['--offline', 'mde-partner-proxy', '--version'], { env: npmEnv(), cwd: installDir, timeoutMs: 60_000 });
    expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({ code: 0, stdout: PKG.version });
  });

  it('serves the library entry: loadConfig and createProxy run a proxy that listens and closes', async () => {
    const script = `
      import { createProxy, loadConfig } from 'mde-partner-proxy';
      const config = loadConfig(undefined, { userAgent: 'MdePartner-Fabrikam-Scanner/2.0.0', listen: '127.0.0.1:0', stateDir: process.argv[1] }, {});
      const proxy = await createProxy(config);
      const { proxy: address } = await proxy.listen();
      await proxy.close();
      console.log(JSON.stringify({ ua: config.policy.products[0].userAgent, port: address.port > 0 }));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script, join(installDir, 'state')], { cwd: installDir, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ua: 'MdePartner-Fabrikam-Scanner/2.0.0', port: true });
  });

  it('names Node.js 20.19, 22 and 24 as supported', () => {
    const engines = (JSON.parse(readFileSync(join(installDir, 'node_modules', 'mde-partner-proxy', 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines.split('||').map((s) => s.trim())).toEqual(['^20.19.0', '^22.12.0', '>=24']);
  });
});

describe('the container image', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('starts node directly with the V8 flags of the CLI shebang (no env -S), on Node 24', async () => {
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]!) as string[];
    const shebang = readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8').split('\n')[0]!;
    const flags = shebang.replace(/^#!\/usr\/bin\/env -S node\s*/, '').split(/\s+/).filter((f) => f !== '');
    expect(entrypoint).toEqual(['node', ...flags, '/app/dist/cli.js']);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-/m);
    // The same command line works: node, the flags, the installed CLI.
    const cli = join(installDir, 'node_modules', 'mde-partner-proxy', 'dist', 'cli.js');
    const r = await run(process.execPath, [...flags, cli, '--version'], { timeoutMs: 30_000 });
    expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({ code: 0, stdout: PKG.version });
  });

  it("runs from exactly what its runtime stage copies: dist/ and the SQLite driver's packages, with the embedded usage store", async () => {
    buildCli();
    // The runtime stage's COPY lines, mapped from the build stage (/src) to this checkout.
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    const copies = [...runtime.matchAll(/^COPY (?:--from=build \/src\/)?(\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(copies.map(([from]) => from)).toEqual(expect.arrayContaining(['package.json', 'dist', 'node_modules/better-sqlite3']));
    const app = mkdtempSync(join(tmpdir(), 'mpp-image-app-'));
    for (const [from, to] of copies) {
      const target = to.endsWith('/') ? join(app, to, from.split('/').pop()!) : join(app, to);
      cpSync(join(ROOT, from), target, { recursive: true });
    }
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]!) as string[];
    const state = mkdtempSync(join(tmpdir(), 'mpp-image-state-'));
    // From another directory, as the container's user would; nothing resolves from this checkout.
    const p = await startCli(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--state-dir', state], {},
      { cli: join(app, 'dist', 'cli.js'), nodeFlags: entrypoint.slice(1, -1), cwd: state });
    try {
      const store = await until(() => logLines(p.stdout()).find((l) => l['event'] === 'usage-store'), () => `a usage-store line\n${p.stdout()}${p.stderr()}`);
      expect(store).toMatchObject({ result: 'open' });
      expect(existsSync(join(state, 'usage.db'))).toBe(true);
      const health = await fetch(`${p.adminUrl!}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  }, 60_000);
});
