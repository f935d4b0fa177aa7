// `npm run build`: bundles src/ and its runtime dependencies into dist/ with esbuild, one file per
// entry point (cli.js, server.js, index.js: the library) plus shared chunks, with source maps back to src/*.ts.
// Why a bundle: Node 20 resolves, reads and compiles each ES module file separately; the ~350 files
// of zod, yargs, yaml, prom-client and pino cost ~270 ms and ~3 MiB at every start. One bundle
// loads in ~150 ms (numbers in bench/results.md). Type checking stays with tsc (`npm run typecheck`);
// tsc also writes the .d.ts files. No identifier is minified: stack traces keep their names.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, 'dist');

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli.ts', 'src/server.ts', 'src/index.ts'],
  outdir,
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
});
