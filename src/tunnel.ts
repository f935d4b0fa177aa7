// handleConnect: deny | blind splice | intercept, decided by policy.decideConnect, and one
// tunnelEnd event when the CONNECT is over (at once for a refusal, at the close otherwise).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError, identityError, toProxyError, writeRawError } from './errors.js';
import type { TunnelAction, TunnelEvent } from './events.js';
import { clientAddress } from './address.js';
import type { Runtime } from './context.js';
import { getHeader } from './headers.js';
import { CONNECT_ESTABLISHED, type Interceptor } from './intercept.js';
import { decideConnect, decideIdentity, denialText } from './policy.js';
import { formatAuthority, parseAuthority } from './target.js';

/** Splices two sockets until either side ends, errors or stays idle for idleMs. */
function splice(a: Duplex, b: Duplex, idleMs: number): void {
  const destroyBoth = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', destroyBoth).on('close', destroyBoth);
  b.on('error', destroyBoth).on('close', destroyBoth);
  for (const s of [a, b]) (s as Duplex & { setTimeout?: (ms: number, cb: () => void) => void }).setTimeout?.(idleMs, destroyBoth);
  a.pipe(b);
  b.pipe(a);
}

/** Byte counters of the client socket (a net.Socket; typed loosely because 'connect' hands a Duplex). */
type Counted = Duplex & { readonly bytesRead?: number; readonly bytesWritten?: number };

/** Serves one CONNECT (RFC 9110 §9.3.6). Never throws. */
export function handleConnect(rt: Runtime, interceptor: Interceptor, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const start = performance.now();
  const { policy, timeouts } = rt.config;
  const client = clientAddress(req.socket);
  socket.on('error', () => socket.destroy());
  // RFC 9112 §3.2.3: CONNECT takes authority-form, host:port, and the port is required.
  const authority = parseAuthority(req.url ?? '');
  if (authority === undefined) {
    writeRawError(socket, new ProxyError('BadRequest', `CONNECT needs host:port (authority-form), got ${JSON.stringify((req.url ?? '').slice(0, 100))}`));
    return;
  }
  const { host, port } = authority;
  const report = (e: Pick<TunnelEvent, 'action' | 'outcome' | 'reason' | 'product' | 'error'>, bytesFromClient = 0, bytesToClient = 0): void => {
    rt.observer.tunnelEnd?.({ ...e, host, port, client, durationMs: performance.now() - start, bytesFromClient, bytesToClient });
  };
  const id = decideIdentity(policy, getHeader(req.rawHeaders, 'proxy-authorization'));
  if (id.error !== undefined) {
    report({ action: 'denied', outcome: 'denied', reason: id.error, product: 'unregistered', error: 'ProxyAuthenticationRequired' });
    writeRawError(socket, identityError(id.error));
    return;
  }
  const product = id.product.id;
  const decision = decideConnect(policy, host, port);
  if (decision.action === 'deny') {
    const code = decision.error ?? 'DestinationDenied';
    report({ action: 'denied', outcome: 'denied', reason: decision.reason, product, error: code });
    writeRawError(socket, new ProxyError(code, `CONNECT ${formatAuthority(authority)} refused: ${denialText(decision.reason, port)}`));
    return;
  }

  // From here the tunnel ends when the client socket closes; its counters give the bytes each way
  // after the CONNECT head (the head's trailing bytes are the client's first payload) and after the 200.
  const counted = socket as Counted;
  const readAtStart = (counted.bytesRead ?? 0) - head.length;
  const writtenAtStart = (counted.bytesWritten ?? 0) + CONNECT_ESTABLISHED.length;
  const action: TunnelAction = decision.action === 'intercept' ? 'intercepted' : 'tunnelled';
  let established = false;
  let failure: string | undefined;
  socket.once('close', () => {
    if (failure !== undefined) return report({ action, outcome: 'failed', reason: decision.reason, product, error: failure });
    if (!established) return report({ action, outcome: 'closed', reason: decision.reason, product });
    report({ action, outcome: 'closed', reason: decision.reason, product },
      Math.max(0, (counted.bytesRead ?? 0) - readAtStart), Math.max(0, (counted.bytesWritten ?? 0) - writtenAtStart));
  });

  if (decision.action === 'intercept') {
    void interceptor.intercept(socket, head, { mode: 'intercept', origin: { scheme: decision.scheme ?? 'https', host, port }, product: id.product, client }).then((result) => {
      if (result === 'established') established = true;
      else if (result instanceof ProxyError) failure = result.code;
    });
    return;
  }
  rt.upstream.dial(host, port).then(
    (upstream) => {
      if (socket.destroyed) return void upstream.destroy();
      socket.write(CONNECT_ESTABLISHED);
      established = true;
      if (head.length > 0) upstream.write(head);
      splice(socket, upstream, timeouts.idle);
    },
    (err: unknown) => {
      const perr = toProxyError(err, `CONNECT ${formatAuthority(authority)}`);
      failure = perr.code;
      rt.observer.upstreamError?.(perr.code);
      writeRawError(socket, perr);
    },
  );
}
