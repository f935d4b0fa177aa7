// A first start killed while it writes the CA: every state such a crash can leave must start
// again, with the CA that was being installed when it is whole, and without stale files.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCa, loadOrCreateCa, type CaMaterial } from '../../src/ca.js';

const DOMAINS = ['security.microsoft.com', 'graph.microsoft.com'];
let tmp: string;
let ca: CaMaterial;
/** A pid that is certainly not running: above the kernel's pid_max. */
const DEAD_PID = 4_194_304 + 17;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mde-ca-recovery-'));
  ca = await createCa({ permittedDomains: DOMAINS });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const stateDir = (): string => fs.mkdtempSync(path.join(tmp, 'state-'));

describe('loadOrCreateCa after a crash during the first start', () => {
  it('sets aside a key left without its certificate, removes stale temporary files and creates a CA', async () => {
    // What a SIGKILL between writing ca-key.pem and ca.pem left with the key-then-certificate writes.
    const dir = stateDir();
    fs.writeFileSync(path.join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'ca-key.pem.4242.0a1b2c3d4e5f.tmp'), ca.keyPem.slice(0, 40), { mode: 0o600 });
    const loaded = await loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS });
    expect(loaded.created).toBe(true);
    const files = fs.readdirSync(dir).sort();
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files).toContain('ca.pem');
    expect(files).toContain('ca-key.pem');
    const aside = files.filter((f) => f.startsWith('ca-key.pem.orphaned-'));
    expect(aside).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, aside[0]!), 'utf8')).toBe(ca.keyPem);
    expect(fs.statSync(path.join(dir, aside[0]!)).mode & 0o777).toBe(0o600);
    // The next start loads what this one created.
    const again = await loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS });
    expect(again.created).toBe(false);
    expect(again.ca).toEqual(loaded.ca);
  });

  it('finishes installing a whole staged CA whose writer died after placing the key', async () => {
    const dir = stateDir();
    const staging = path.join(dir, `ca.new.${DEAD_PID}`);
    fs.mkdirSync(staging, { mode: 0o700 });
    fs.writeFileSync(path.join(staging, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(staging, 'ca.pem'), ca.certPem);
    fs.linkSync(path.join(staging, 'ca-key.pem'), path.join(dir, 'ca-key.pem'));
    const loaded = await loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS });
    expect(loaded.created).toBe(false);
    expect(loaded.ca.certPem).toBe(ca.certPem);
    expect(fs.readdirSync(dir).sort()).toEqual(['ca-key.pem', 'ca.pem']);
  });

  it('discards a staged CA that was not written whole and creates a new one', async () => {
    const dir = stateDir();
    const staging = path.join(dir, `ca.new.${DEAD_PID}`);
    fs.mkdirSync(staging, { mode: 0o700 });
    fs.writeFileSync(path.join(staging, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(staging, 'ca.pem'), ca.certPem.slice(0, 100));
    const loaded = await loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS });
    expect(loaded.created).toBe(true);
    expect(loaded.ca.certPem).not.toBe(ca.certPem);
    expect(fs.readdirSync(dir).sort()).toEqual(['ca-key.pem', 'ca.pem']);
  });

  it('leaves alone a staging directory whose writer is still running, and says so', async () => {
    const dir = stateDir();
    const writer = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const staging = path.join(dir, `ca.new.${writer.pid!}`);
      fs.mkdirSync(staging, { mode: 0o700 });
      await expect(loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS })).rejects.toMatchObject({ code: 'CaUnwritable', file: staging });
      expect(fs.existsSync(staging)).toBe(true);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('treats a staging directory named with its own pid as left by an earlier run (a restarted container is pid 1 again)', async () => {
    const dir = stateDir();
    const staging = path.join(dir, `ca.new.${process.pid}`);
    fs.mkdirSync(staging, { mode: 0o700 });
    fs.writeFileSync(path.join(staging, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(staging, 'ca.pem'), ca.certPem);
    const loaded = await loadOrCreateCa({ stateDir: dir, permittedDomains: DOMAINS });
    expect(loaded.ca.certPem).toBe(ca.certPem);
    expect(fs.readdirSync(dir).sort()).toEqual(['ca-key.pem', 'ca.pem']);
  });
});

