// Module hooks that let a child `node` process run the TypeScript sources, as Jest does in-process:
// `.js` imports from a .ts file resolve to the .ts beside it, and .ts files are compiled by @swc/core
// (the compiler Jest uses here). For tests that need a second process on the same store.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from '@swc/core';

/** Maps './x.js' imported from a .ts file to './x.ts' when that file exists. */
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const ts = new URL(specifier, context.parentURL).href.replace(/\.js$/, '.ts');
    if (existsSync(fileURLToPath(ts))) return { url: ts, shortCircuit: true };
  }
  return next(specifier, context);
}

/** Compiles .ts files to ES modules. */
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const filename = fileURLToPath(url);
  const out = await transform(await readFile(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
  });
  return { format: 'module', source: out.code, shortCircuit: true };
}
