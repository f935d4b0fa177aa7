// A connection flood with slowloris sockets: 1,500 idle connections and 200 sockets dribbling a
// request head never stop a normal client from being served; the slow heads get 408.
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { buildCli, sleep, startCli, writeConfig, type RunningProxy } from '../helpers/cli-process.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';

let origin: Origin;
let p: RunningProxy;
const sockets: Socket[] = [];

beforeAll(async () => {
  buildCli();
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  const dir = mkdtempSync(join(tmpdir(), 'mpp-flood-'));
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: origin.port, msRootFile: pki.msRootFile, extra: 'timeouts:\n  headers: 3000' });
  p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
}, 60_000);
afterAll(async () => {
  for (const s of sockets) s.destroy();
  p?.child.kill('SIGKILL');
  await origin?.close();
});

const open = (): Promise<Socket> => new Promise((resolve) => {
  const s = connect(p.port, '127.0.0.1', () => resolve(s));
  s.on('error', () => resolve(s));
  sockets.push(s);
});

it('serves a normal client during a flood of idle and slowloris connections', async () => {
  for (let i = 0; i < 1500; i += 100) await Promise.all(Array.from({ length: 100 }, open));
  const slow = await Promise.all(Array.from({ length: 200 }, open));
  const answers = slow.map((s) => {
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    return () => got;
  });
  // Slowloris: one byte of a request head every 200 ms, never finishing it.
  const head = 'GET http://api.security.microsoft.com/api/machines HTTP/1.1\r\nHost: api.security.microsoft.com\r\nX-Slow: ' + 'a'.repeat(200);
  let stop = false;
  const dribble = (async () => {
    for (let i = 0; !stop && i < head.length; i++) {
      for (const s of slow) if (!s.destroyed) s.write(head[i]!);
      await sleep(200);
    }
  })();
  const dispatcher = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
  try {
    for (let i = 0; i < 20; i++) {
      const res = await request(`https://api.security.microsoft.com/api/machines?normal=${i}`, { dispatcher });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    // timeouts.headers is 3 s: every slow head is answered 408 and closed.
    await sleep(5000);
    const timedOut = answers.filter((got) => / 408 /.test(got().split('\r\n')[0] ?? '')).length;
    expect(timedOut).toBe(200);
  } finally {
    stop = true;
    await dribble;
    await dispatcher.close();
  }
}, 60_000);
