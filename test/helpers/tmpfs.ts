// Small file systems for the store fault tests: a tmpfs of a given size (a full disk that is really
// full) that can be remounted read-only (a read-only directory even for root, who ignores modes).
// Mounting needs root, as the tests and CI run here; elsewhere mountTmpfs throws and says why.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  readonly dir: string;
  /** Remounts read-only (true) or read-write (false). */
  readOnly(on: boolean): void;
  /** Unmounts and removes the mount point. */
  remove(): void;
}

function mount(args: readonly string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()} (the store fault tests run as root, as in CI)`);
}

/** Mounts a tmpfs of sizeKiB on a new temporary directory. */
export function mountTmpfs(sizeKiB: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-tmpfs-'));
  try {
    mount(['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    readOnly: (on) => mount(['-o', on ? 'remount,ro' : 'remount,rw', dir]),
    remove: () => {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
