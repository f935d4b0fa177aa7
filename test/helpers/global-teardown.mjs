// Jest globalTeardown: removes the run's temporary directory (global-setup.mjs). Set
// MPP_KEEP_TMP=1 to keep it for a look after a failure.
import { rmSync } from 'node:fs';

export default function teardown() {
  const dir = process.env.MPP_TEST_RUN_DIR;
  if (dir === undefined || process.env.MPP_KEEP_TMP === '1') return;
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
