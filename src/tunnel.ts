// handleConnect: deny | blind splice | intercept, decided by policy.decideConnect.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError, toProxyError, writeRawError } from './errors.js';
import type { Runtime } from './forward.js';
import { identityError } from './forward.js';
import { getHeader } from './headers.js';
import type { Interceptor } from './intercept.js';
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

/** Serves one CONNECT (RFC 9110 §9.3.6). Never throws. */
export function handleConnect(rt: Runtime, interceptor: Interceptor, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { policy, timeouts } = rt.config;
  socket.on('error', () => socket.destroy());
  // RFC 9112 §3.2.3: CONNECT takes authority-form, host:port, and the port is required.
  const authority = parseAuthority(req.url ?? '');
  if (authority === undefined) {
    writeRawError(socket, new ProxyError('BadRequest', `CONNECT needs host:port (authority-form), got ${JSON.stringify((req.url ?? '').slice(0, 100))}`));
    return;
  }
  const { host, port } = authority;
  const id = decideIdentity(policy, getHeader(req.rawHeaders, 'proxy-authorization'));
  if (id.error !== undefined) {
    rt.observer.tunnel?.({ action: 'denied', reason: id.error, product: 'unregistered', host, port, error: 'ProxyAuthenticationRequired' });
    writeRawError(socket, identityError(id.error));
    return;
  }
  const product = id.product;
  const decision = decideConnect(policy, host, port);
  const event = { reason: decision.reason, product: product.id, host, port };
  switch (decision.action) {
    case 'deny': {
      const code = decision.error ?? 'DestinationDenied';
      rt.observer.tunnel?.({ ...event, action: 'denied', error: code });
      writeRawError(socket, new ProxyError(code, `CONNECT ${formatAuthority(authority)} refused: ${denialText(decision.reason, port)}`));
      return;
    }
    case 'tunnel': {
      rt.observer.tunnel?.({ ...event, action: 'tunnelled' });
      rt.upstream.dial(host, port).then(
        (upstream) => {
          if (socket.destroyed) return void upstream.destroy();
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) upstream.write(head);
          splice(socket, upstream, timeouts.idle);
        },
        (err: unknown) => {
          const perr = toProxyError(err, `CONNECT ${formatAuthority(authority)}`);
          rt.observer.upstreamError?.(perr.code);
          writeRawError(socket, perr);
        },
      );
      return;
    }
    case 'intercept':
      rt.observer.tunnel?.({ ...event, action: 'intercepted' });
      void interceptor.intercept(socket, head, { mode: 'intercept', origin: { scheme: 'https', host, port }, product });
      return;
  }
}
