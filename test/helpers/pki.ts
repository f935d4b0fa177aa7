// Test PKI, made once per test file: a stand-in "Microsoft" root that signs the echo origin's
// certificates (trusted by the proxy through upstream.ca), and a rogue root nobody trusts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, createLeafIssuer, type CaMaterial, type LeafIssuer } from '../../src/ca.js';

export interface TestPki {
  readonly dir: string;
  readonly msRoot: CaMaterial;
  readonly msRootFile: string;
  readonly msIssuer: LeafIssuer;
  readonly rogueIssuer: LeafIssuer;
}

const ORIGIN_DOMAINS = ['microsoft.com', 'microsoftonline.com', 'windows.net', 'microsoft.us', 'example.org', 'partner.test'];

let made: Promise<TestPki> | undefined;

/** The test PKI for this file (created on first use). */
export function testPki(): Promise<TestPki> {
  made ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-pki-'));
    const msRoot = await createCa({ commonName: 'Test Microsoft Root', permittedDomains: ORIGIN_DOMAINS });
    const rogueRoot = await createCa({ commonName: 'Rogue Root', permittedDomains: ORIGIN_DOMAINS });
    const msRootFile = join(dir, 'ms-root.pem');
    writeFileSync(msRootFile, msRoot.certPem);
    return { dir, msRoot, msRootFile, msIssuer: await createLeafIssuer(msRoot), rogueIssuer: await createLeafIssuer(rogueRoot) };
  })();
  return made;
}
