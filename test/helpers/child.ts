// Real clients as child processes, with a clean environment: this machine presets
// SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which would hide trust mistakes.
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';

/** PATH and HOME only. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a clean environment (plus extra), bounded by timeoutMs; never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...cleanEnv(), ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

let python: string | undefined;

/** A python3 that can import requests: Debian's (python3-requests) first, then whatever is on PATH. */
export function pythonWithRequests(): string {
  if (python !== undefined) return python;
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(candidate, ['-c', 'import requests'], { env: cleanEnv() });
    if (r.status === 0) return (python = candidate);
  }
  throw new Error('no python3 with the requests module: apt-get install -y python3-requests (CI does this in .ci/run)');
}
