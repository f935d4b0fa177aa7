// Reading a /metrics scrape (Prometheus text format 0.0.4) in tests: samples with their labels,
// one series' value, a metric's sum. Throws on a line it cannot read, so a malformed scrape fails
// the test instead of reading as zero.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/** A sample value: a float, or NaN / ±Inf in any letter case (Prometheus reads them as Go's ParseFloat does; prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  const special = /^([+-]?)(inf|nan)$/i.exec(text);
  if (special !== null) return special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`unreadable sample value in scrape line: ${line}`);
  return value;
}

/** Label values with the format's escapes (`\\`, `\"`, `\n`) undone. */
function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (m === null || LABEL.lastIndex === start) throw new Error(`unreadable labels in scrape line: ${line}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** Every sample of a scrape, in order; comment and blank lines skipped. */
export function parseScrape(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`unreadable scrape line: ${line}`);
    samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', line), value: parseValue(m[3]!, line) });
  }
  return samples;
}

/**
 * The value of one series named as a scrape writes it (`name` or `name{a="x",b="y"}`: all its labels,
 * in any order); undefined when the scrape does not have it.
 */
export function findSeries(text: string, series: string): number | undefined {
  const [wanted] = parseScrape(`${series} 0`);
  const keys = Object.keys(wanted!.labels);
  const found = parseScrape(text).find((s) =>
    s.name === wanted!.name && Object.keys(s.labels).length === keys.length && keys.every((k) => s.labels[k] === wanted!.labels[k]));
  return found?.value;
}

/** findSeries, with 0 for a series the scrape does not have (as Prometheus reads an absent counter). */
export function seriesValue(text: string, series: string): number {
  return findSeries(text, series) ?? 0;
}

/** The sum of every sample of a metric name. */
export function sumOf(samples: readonly Sample[], name: string): number {
  return samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);
}
