// A real PostgreSQL server for the tests, from Debian's `postgresql` package (.ci/run installs it):
// initdb in a temporary directory, the postmaster started directly on a free loopback port, stopped
// (or killed) by its PID, the directory removed. initdb and postgres refuse to run as root, so as
// root (here and in CI) they run as `nobody`, which owns the directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Postgres {
  readonly port: number;
  /** The postmaster's PID while it runs. */
  readonly pid: number | undefined;
  /** A connection URL for a database (default `postgres`). */
  url(database?: string): string;
  /** Creates a new empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Runs one statement on a database and returns its rows. */
  query(database: string, text: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** Kills the postmaster with SIGKILL (no shutdown) and waits until its processes are gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same directory and port (after kill or stop). */
  restart(): Promise<void>;
  /** Stops the server (fast shutdown) and removes its directory. */
  stop(): Promise<void>;
}

/** The directory of Debian's PostgreSQL binaries (the newest version installed), else PATH. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0) return join(which.stdout.trim(), '..');
  throw new Error('PostgreSQL is not installed: apt-get install -y postgresql (.ci/run does this)');
}

/** uid/gid of `nobody` when we are root, else undefined (run as ourselves). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = (line ?? 'nobody:x:65534:65534').split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs of the processes whose parent is pid (the postmaster's backends and helpers). */
function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** initdb in a temporary directory and start the server; resolves when it accepts connections. */
export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'mpp-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: 'C', LC_ALL: 'C' };
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], {
    env,
    cwd: dir,
    encoding: 'utf8',
    ...(user ?? {}),
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';

  const launch = async (): Promise<void> => {
    log = '';
    const c = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'max_connections=50'],
      { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}) },
    );
    child = c;
    c.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`postgres exited at start: ${log}`);
      const client = new pg.Client({ connectionString: url('postgres'), connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
      }
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 30 s: ${log}`);
      await sleep(50);
    }
  };

  const waitGone = async (pid: number, kids: number[]): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (alive(pid) || kids.some(alive)) {
      if (Date.now() > deadline) throw new Error(`postgres ${pid} still running`);
      await sleep(25);
    }
  };

  const url = (database = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let databases = 0;

  const query = async (database: string, text: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> => {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      return (await client.query(text, params as unknown[])).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (c?.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const kids = children(c.pid);
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    process.kill(c.pid, signal);
    await exited;
    await waitGone(c.pid, kids);
  };

  try {
    await launch();
  } catch (e) {
    await halt('SIGKILL').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    port,
    get pid() {
      return child?.pid;
    },
    url,
    createDatabase: async () => {
      const name = `t${++databases}`;
      await query('postgres', `CREATE DATABASE ${name}`);
      return url(name);
    },
    query,
    kill: () => halt('SIGKILL'),
    restart: launch,
    stop: async () => {
      try {
        await halt('SIGINT');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
