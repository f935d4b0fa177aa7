// `mde-partner-proxy report`: the same report as `GET /report`, from the usage store named by the
// config (or --store), or for a whole fleet from Prometheus (--prometheus). cli.ts parses argv and
// exits; this file gathers the rows and facts, renders, and writes the file or stdout.

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { parseFormat, parseRange, renderReport, reportModel, ReportInputError, rowsFromStore, staticFacts, type RenderedReport } from './evidence.js';
import { displayUrl, rowsFromPrometheus } from './prometheus.js';
import { storeFactory } from './open-store.js';
import type { UsageStore } from './store.js';
import { describeStore, parseStoreSpec, type StoreSpec } from './usage-config.js';

export interface ReportCommandArgs {
  from?: string;
  to?: string;
  format?: string;
  out?: string;
  store?: string;
  prometheus?: string;
}

export interface ReportIo {
  out(text: string): void;
  err(text: string): void;
}

/**
 * Opens the store --store names, else the config's usage.store; undefined when that is none. A
 * SQLite file that does not exist is an error: the report never creates an empty store.
 */
export async function openReportStore(option: string | undefined, config: Config): Promise<UsageStore | undefined> {
  let spec: StoreSpec = config.usage.store;
  if (option !== undefined) {
    const parsed = parseStoreSpec(option, config.stateDir, process.cwd(), '--store');
    if ('error' in parsed) throw new ReportInputError('--store', parsed.error);
    spec = parsed;
  }
  if (spec.kind === 'none') return undefined;
  if (spec.kind === 'sqlite' && !existsSync(spec.file)) {
    throw new Error(`no usage store at ${spec.file}: has a proxy with this stateDir (or usage.store) run yet? Give --store FILE|URL or --prometheus URL`);
  }
  const store = await storeFactory(spec)!();
  try {
    await store.open();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw new Error(`cannot open the usage store ${describeStore(spec)}: ${(e as Error).message.split('\n', 1)[0]}`, { cause: e });
  }
  return store;
}

/** The interception CA's certificate text, if it exists; the report never creates one. */
function readCaPem(config: Config): string | undefined {
  try {
    return readFileSync(config.ca.cert ?? join(config.stateDir, 'ca.pem'), 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes the file whole or not at all: a half-written evidence file is worse than none. */
function writeAtomically(file: string, body: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, body, { mode: 0o644 });
    renameSync(temp, file);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
}

/** Renders the report the arguments ask for; resolves to the process exit code. */
export async function runReport(config: Config, version: string, args: ReportCommandArgs, io: ReportIo): Promise<number> {
  const now = Date.now();
  let rendered: RenderedReport;
  let headline: string;
  try {
    const range = parseRange(args.from, args.to, now);
    const format = parseFormat(args.format, '--format');
    const facts = staticFacts(config, readCaPem(config), version);
    if (args.prometheus !== undefined) {
      const { rows, versions } = await rowsFromPrometheus({ url: args.prometheus }, range, now);
      const model = reportModel(facts, rows, range, { kind: 'prometheus', name: displayUrl(args.prometheus) }, now, versions);
      rendered = renderReport(model, format);
      headline = model.products.map((p) => p.headline).join(' ');
    } else {
      const store = await openReportStore(args.store, config);
      if (store === undefined) {
        io.err('mde-partner-proxy: report: no usage store to read (usage.store is none); give --store FILE|URL or --prometheus URL');
        return 2;
      }
      try {
        const rows = await rowsFromStore(store, range);
        const model = reportModel(facts, rows, range, { kind: 'store', name: store.kind }, now);
        rendered = renderReport(model, format);
        headline = model.products.map((p) => p.headline).join(' ');
      } finally {
        await store.close();
      }
    }
  } catch (e) {
    if (e instanceof ReportInputError) {
      io.err(`mde-partner-proxy: report: ${e.field.startsWith('--') ? e.field : `--${e.field}`}: ${e.message.slice(e.field.length + 2)}`);
      return 2;
    }
    io.err(`mde-partner-proxy: report: ${(e as Error).message}`);
    return 1;
  }
  if (args.out === undefined || args.out === '-') {
    io.out(rendered.body.replace(/\n$/, ''));
  } else {
    try {
      writeAtomically(args.out, rendered.body);
    } catch (e) {
      io.err(`mde-partner-proxy: report: cannot write ${args.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return 1;
    }
    io.err(`wrote ${args.out} (${Buffer.byteLength(rendered.body)} bytes). ${headline}`);
  }
  return 0;
}
