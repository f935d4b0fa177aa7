// `npm run config:schema`: writes config/mde-partner-proxy.schema.json and docs/configuration.md
// from the zod schema (src/config-doc.ts). test/unit/config-doc.test.ts fails when they are stale.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = mkdtempSync(join(tmpdir(), 'mpp-config-doc-'));
try {
  await build({ absWorkingDir: root, entryPoints: ['src/config-doc.ts'], outfile: join(out, 'config-doc.mjs'), bundle: true, platform: 'node', format: 'esm', logLevel: 'warning',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" } });
  const doc = await import(pathToFileURL(join(out, 'config-doc.mjs')).href);
  writeFileSync(join(root, doc.SCHEMA_FILE), doc.configJsonSchemaText());
  mkdirSync(join(root, dirname(doc.REFERENCE_FILE)), { recursive: true });
  writeFileSync(join(root, doc.REFERENCE_FILE), doc.configReference());
  console.log(`wrote ${doc.SCHEMA_FILE} and ${doc.REFERENCE_FILE}`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
