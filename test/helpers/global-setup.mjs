// Jest globalSetup: every test run gets its own temporary directory (TMPDIR, which os.tmpdir()
// reads), so the state directories, keys and configs the tests write are removed in one piece by
// global-teardown.mjs instead of piling up in /tmp. Workers inherit TMPDIR from this process.
// Mode 0755: the PostgreSQL helper runs its server as an unprivileged user below it.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-test-run-'));
  chmodSync(dir, 0o755);
  process.env.MPP_TEST_RUN_DIR = dir;
  process.env.TMPDIR = dir;
}
