// `npm run build`: bundles src/ and its runtime dependencies into dist/ with esbuild, one file per
// entry point (cli.js, server.js, index.js: the library) plus shared chunks, with source maps back to src/*.ts.
// Why a bundle: Node 20 resolves, reads and compiles each ES module file separately; the ~350 files
// of zod, yargs, yaml, prom-client and pino cost ~270 ms and ~3 MiB at every start. One bundle
// loads in ~150 ms (numbers in bench/results.md). Type checking stays with tsc (`npm run typecheck`);
// tsc also writes the .d.ts files. No identifier is minified: stack traces keep their names.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, 'dist');

// Built beside dist/ and moved in file by file (rename is atomic): a proxy or test that runs from
// dist/ while another build runs (jest runs test files in parallel, several of which build) never
// sees a missing or half-written file. Chunk names carry a content hash, so builds of the same
// sources produce the same files; files of an older build are removed at the end.
const staging = mkdtempSync(join(root, '.dist-build-'));
const filesUnder = (dir, prefix = '') => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name), join(prefix, name)) : [join(prefix, name)]));
try {
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli.ts', 'src/server.ts', 'src/index.ts'],
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  logLevel: 'warning',
  // The CommonJS dependencies call require() for Node's own modules; ESM has no require of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  outdir: staging,
});
const built = filesUnder(staging);
mkdirSync(outdir, { recursive: true });
for (const file of built) {
  mkdirSync(dirname(join(outdir, file)), { recursive: true });
  renameSync(join(staging, file), join(outdir, file));
}
const keep = new Set(built);
for (const file of filesUnder(outdir)) {
  if (!keep.has(file) && /\.(js|js\.map|txt|LEGAL\.txt)$/.test(file) && !file.endsWith('.d.ts')) rmSync(join(outdir, file), { force: true });
}
} finally {
  rmSync(staging, { recursive: true, force: true });
}
