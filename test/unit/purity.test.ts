// The pure modules import no I/O: they stay table-testable and safe to call on the hot path.
import { readFileSync } from 'node:fs';

const PURE = ['catalogue', 'user-agent', 'policy', 'headers', 'target', 'explain', 'address', 'banner', 'attribution', 'usage/callers', 'usage/limits', 'usage/lru', 'usage/report', 'usage/html', 'usage/sql', 'usage/store'];
const IO = /from ['"](node:)?(net|http|https|http2|tls|fs|fs\/promises|dns|child_process|dgram)['"]/;

it.each(PURE)('src/%s.ts imports no net, http, tls, fs or dns', (name) => {
  const source = readFileSync(new URL(`../../src/${name}.ts`, import.meta.url), 'utf8');
  const imports = source.split('\n').filter((l) => /^\s*import\b/.test(l) || /\bfrom\s+['"]/.test(l));
  expect(imports.filter((l) => IO.test(l))).toEqual([]);
  expect(source).not.toMatch(/\brequire\(/);
});
