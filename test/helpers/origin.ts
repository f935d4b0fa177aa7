// An echo origin: answers every request with what it received (method, target, raw headers,
// body, the TLS server name), so tests assert what reached "Microsoft", not what the proxy says.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { LeafIssuer } from '../../src/ca.js';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly body: string;
  readonly servername: string | undefined;
}

export interface Origin {
  readonly port: number;
  readonly received: Received[];
  /** Values of a header in the last request the origin received. */
  last(): Received;
  close(): Promise<void>;
}

/** The values of a header in a raw header list. */
export function headerValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** Streams n bytes of 'x' in 64 KiB chunks, honouring backpressure (GET /bytes/N). */
function streamBytes(res: ServerResponse, n: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  const chunk = Buffer.alloc(65536, 'x');
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!res.write(part)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

/** Consumes a body of any size without holding it and answers its length and SHA-256 (POST /sink). */
function sink(req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  req.on('end', () => {
    const body = JSON.stringify({ bytes, sha256: hash.digest('hex') });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

function handler(received: Received[], timers: Set<NodeJS.Timeout>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url?.startsWith('/sink')) return sink(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
        servername: (req.socket as TLSSocket).servername || undefined,
      };
      received.push(r);
      if (r.url.startsWith('/trailers')) {
        // A chunked body followed by trailer fields (RFC 9112 §7.1.2), for relaying tests.
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-Checksum, X-Records' });
        res.write('first chunk;');
        res.write('second chunk');
        res.addTrailers([['X-Checksum', 'sha256-abc'], ['X-Records', '2']]);
        res.end();
        return;
      }
      const bytes = /^\/bytes\/(\d+)/.exec(r.url)?.[1];
      if (bytes !== undefined) return void streamBytes(res, Number(bytes));
      // The status comes from the path (/status/429) or, for any path, an x-echo-status header;
      // a 429 carries Retry-After from x-echo-retry-after (default 1).
      const status = /^\/status\/(\d{3})/.exec(r.url)?.[1] ?? /^\d{3}$/.exec(headerValues(r.rawHeaders, 'x-echo-status')[0] ?? '')?.[0];
      const retryAfter = headerValues(r.rawHeaders, 'x-echo-retry-after')[0] ?? '1';
      const delay = Number(/^\/slow\/(\d+)/.exec(r.url)?.[1] ?? 0);
      const body = JSON.stringify(r);
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.writeHead(status ? Number(status) : 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-origin': 'echo',
          ...(status === '429' ? { 'retry-after': retryAfter } : {}),
        });
        res.end(body);
      }, delay);
      timers.add(timer);
    });
  };
}

/** Starts an HTTPS echo origin whose certificates come from issuer (per SNI), or plain HTTP when issuer is undefined. */
export async function startOrigin(issuer?: LeafIssuer): Promise<Origin> {
  const received: Received[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let server: Server;
  if (issuer !== undefined) {
    const fallback = await issuer.secureContextFor('api.security.microsoft.com');
    server = createHttpsServer({
      SNICallback: (name, cb) => {
        issuer.secureContextFor(name).then((ctx) => cb(null, ctx), (e: Error) => cb(e, undefined));
      },
      secureContext: fallback,
    } as Parameters<typeof createHttpsServer>[0], handler(received, timers));
  } else {
    server = createHttpServer(handler(received, timers));
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    last() {
      const r = received[received.length - 1];
      if (r === undefined) throw new Error('the origin received no request');
      return r;
    },
    close: () => new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
