// Every command shown in the docs runs here. Fenced blocks marked ```sh test run in bash (errexit,
// pipefail) in a scratch directory with the project's CLI on PATH as `mde-partner-proxy` (built
// from src into the scratch directory), `config/` linked in, and a fresh HOME and state directory;
// the kubectl ones build the Kustomize tree offline. A sh block that calls the CLI without the
// mark fails the test, so a new command cannot be documented untested.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { cleanEnv } from '../helpers/child.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const CLI_CALL = /(^|[\s;&|(])(npx )?mde-partner-proxy (check-ua|explain|config|ca|env|doctor|completion)\b/m;

interface Block { file: string; line: number; info: string; code: string }

function blocks(file: string): Block[] {
  const out: Block[] = [];
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S.*)?$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    out.push({ file, line: start + 1, info: (open[1] ?? '').trim(), code: body.join('\n') });
  }
  return out;
}

const all = DOCS.flatMap(blocks);
const runnable = all.filter((b) => /^(sh|bash) test$/.test(b.info));

let scratch: string;
let bin: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'mpp-docs-'));
  // The CLI as `npm run build` makes it, in the scratch directory (dist/ of the tree is left alone).
  await build({ absWorkingDir: ROOT, entryPoints: ['src/cli.ts'], outdir: join(scratch, 'pkg', 'dist'), bundle: true, splitting: true, platform: 'node', format: 'esm',
    target: 'node20.19', logLevel: 'warning', banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" } });
  copyFileSync(join(ROOT, 'package.json'), join(scratch, 'pkg', 'package.json'));
  symlinkSync(join(ROOT, 'config'), join(scratch, 'pkg', 'config'));
  symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'pkg', 'node_modules'));
  bin = join(scratch, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'mde-partner-proxy'), `#!/bin/sh\nexec "${process.execPath}" "${join(scratch, 'pkg', 'dist', 'cli.js')}" "$@"\n`);
  chmodSync(join(bin, 'mde-partner-proxy'), 0o755);
}, 60_000);

describe('the commands in the docs', () => {
  it('marks every block that calls the CLI as runnable', () => {
    const unmarked = all.filter((b) => /^(sh|bash)$/.test(b.info) && CLI_CALL.test(b.code) && !/npm start|HTTPS_PROXY|eval/.test(b.code));
    expect(unmarked.map((b) => `${b.file}:${b.line}`)).toEqual([]);
    expect(runnable.length).toBeGreaterThan(5);
  });

  it.each(runnable.map((b) => [`${b.file}:${b.line}`, b] as const))('runs %s', (_where, block) => {
    const cwd = mkdtempSync(join(scratch, 'run-'));
    symlinkSync(join(ROOT, 'config'), join(cwd, 'config'));
    const home = join(cwd, 'home');
    mkdirSync(home);
    const script = `set -euo pipefail\n${block.code.replace(/\bnpx mde-partner-proxy\b/g, 'mde-partner-proxy')}\n`;
    const r = spawnSync('bash', ['-c', script], {
      cwd, encoding: 'utf8', timeout: 60_000,
      env: { ...cleanEnv(), PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: home, XDG_STATE_HOME: join(home, 'state') },
    });
    expect({ where: `${block.file}:${block.line}`, status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ where: `${block.file}:${block.line}`, status: 0, stderr: '' });
  });
});
