// The generated config JSON Schema and reference: current with the zod schema, complete, and
// referenced from every example, so editors check the files people copy.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { FIELD_DOCS, REFERENCE_FILE, SCHEMA_FILE, configJsonSchema, configJsonSchemaText, configReference } from '../../src/config-doc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STALE = 'stale: run `npm run config:schema` and commit the result';

/** Every example config a user may copy: config/*.yaml and each Kustomize overlay's config.yaml. */
function examples(): string[] {
  const files = readdirSync(join(ROOT, 'config')).filter((f) => f.endsWith('.yaml')).map((f) => join(ROOT, 'config', f));
  const overlays = join(ROOT, 'config', 'kubernetes', 'overlays');
  for (const dir of readdirSync(overlays)) if (existsSync(join(overlays, dir, 'config.yaml'))) files.push(join(overlays, dir, 'config.yaml'));
  return files;
}

describe('the generated config schema and reference', () => {
  it(`keeps ${SCHEMA_FILE} current with the zod schema`, () => {
    if (readFileSync(join(ROOT, SCHEMA_FILE), 'utf8') !== configJsonSchemaText()) throw new Error(`${SCHEMA_FILE} is ${STALE}`);
  });

  it(`keeps ${REFERENCE_FILE} current with the zod schema`, () => {
    const onDisk = readFileSync(join(ROOT, REFERENCE_FILE), 'utf8');
    if (onDisk !== configReference()) throw new Error(`${REFERENCE_FILE} is ${STALE}`);
  });

  it('describes every key of the schema, and documents no key the schema lacks', () => {
    const paths: string[] = [];
    const visit = (node: Record<string, unknown>, path: string): void => {
      for (const [k, v] of Object.entries((node['properties'] ?? {}) as Record<string, Record<string, unknown>>)) {
        const p = path === '' ? k : `${path}.${k}`;
        paths.push(p);
        expect([p, typeof v['description']]).toEqual([p, 'string']);
        visit(v, p);
        for (const alt of (v['anyOf'] ?? []) as Record<string, unknown>[]) visit(alt, p);
        if (v['items'] !== undefined) visit(v['items'] as Record<string, unknown>, `${p}[]`);
      }
    };
    visit(configJsonSchema(), '');
    expect(Object.keys(FIELD_DOCS).filter((k) => !paths.includes(k))).toEqual([]);
  });

  it.each(examples().map((f) => [f.slice(ROOT.length)]))('%s names the schema for the YAML language server', (file) => {
    const first = readFileSync(join(ROOT, file), 'utf8').split('\n')[0]!;
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    expect(m).not.toBeNull();
    expect(resolve(dirname(join(ROOT, file)), m![1]!)).toBe(join(ROOT, SCHEMA_FILE));
    expect((parse(readFileSync(join(ROOT, file), 'utf8')) as { version: number }).version).toBe(1);
  });
});
