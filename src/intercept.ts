// TLS termination with minted leaves: a tls.TLSSocket over the CONNECT socket, fed to one
// internal http.Server. No loopback hop and no server per host: the decrypted stream enters
// the very same handleRequest as plain and reverse requests.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { LeafIssuer } from './ca.js';
import { ProxyError, handleClientError, writeRawError } from './errors.js';
import type { RequestContext } from './context.js';
import { formatAuthority } from './target.js';

/** The answer that opens a tunnel (RFC 9110 §9.3.6: any 2xx; no body). */
export const CONNECT_ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** How an interception began: TLS offered, the client gone first, or the refusal written to the client. */
export type InterceptStart = 'established' | 'client-gone' | ProxyError;

export interface Interceptor {
  /** Answers the CONNECT with 200, terminates TLS for host and serves the requests inside. */
  intercept(socket: Duplex, head: Buffer, ctx: RequestContext & { origin: NonNullable<RequestContext['origin']> }): Promise<InterceptStart>;
  /** Closes idle intercepted connections; busy ones end after their current response. */
  closeIdle(): void;
  /** Destroys every intercepted connection. */
  closeAll(): void;
}

/** Wraps a socket whose first bytes were already read (the CONNECT `head`) so TLS sees them first. */
function withHead(socket: Duplex, head: Buffer): Duplex {
  if (head.length === 0) return socket;
  const wrapped = new Duplex({
    read() { socket.resume(); },
    write(chunk, encoding, cb) { socket.write(chunk, encoding, cb); },
    final(cb) { socket.end(); cb(); },
    destroy(err, cb) { socket.destroy(err ?? undefined); cb(err); },
  });
  wrapped.push(head);
  socket.on('data', (d: Buffer) => { if (!wrapped.push(d)) socket.pause(); });
  socket.on('end', () => wrapped.push(null));
  socket.on('error', (e) => wrapped.destroy(e));
  socket.on('close', () => wrapped.destroy());
  return wrapped;
}

/** First byte of a TLS handshake record (RFC 8446 §5.1, ContentType handshake = 22). */
const TLS_HANDSHAKE_RECORD = 0x16;
/** A fatal handshake_failure alert record (RFC 8446 §6): level 2, description 40. */
const TLS_HANDSHAKE_FAILURE_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

/** Resolves with the first chunk a socket sends, or undefined when it ends first; the socket is left paused. */
function firstChunk(socket: Duplex): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      done();
      socket.pause();
      resolve(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(undefined);
    };
    const done = (): void => {
      socket.off('data', onData).off('end', onEnd).off('close', onEnd);
    };
    socket.on('data', onData).once('end', onEnd).once('close', onEnd);
  });
}

/**
 * Creates the interceptor over server, an http.Server that never listens (createProxy makes it and
 * owns its settings); onRequest is handleRequest bound to the live runtime.
 */
export function createInterceptor(opts: {
  server: Server;
  issuer: () => LeafIssuer;
  onRequest: (ctx: RequestContext, req: IncomingMessage, res: ServerResponse) => void;
  /** Bytes the parser cannot read; the listeners' handler, so an exchange in flight is answered first. */
  onClientError?: (err: NodeJS.ErrnoException, socket: Duplex) => void;
}): Interceptor {
  const contexts = new WeakMap<object, RequestContext>();
  const { server } = opts;
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx = contexts.get(req.socket);
    if (ctx === undefined) return void res.destroy();
    opts.onRequest(ctx, req, res);
  };
  server.on('request', serve);
  // An Expect other than 100-continue comes here instead of 'request'; handleRequest answers it (417).
  server.on('checkExpectation', serve);
  // This server never listens: connections arrive by emit('connection'). Node starts its connection
  // tracking on 'listening', and that tracking is what enforces headersTimeout (slowloris) and what
  // closeIdleConnections/closeAllConnections walk, so start it by hand.
  server.emit('listening');
  server.on('clientError', opts.onClientError ?? handleClientError);
  // A CONNECT inside an intercepted tunnel would escape the policy.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    writeRawError(socket, new ProxyError('BadRequest', 'CONNECT is not allowed inside an intercepted connection'));
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    writeRawError(socket, new ProxyError('BadRequest', 'Protocol upgrades are not supported on Microsoft security APIs'));
  });

  /**
   * A plain-HTTP tunnel (CONNECT host:80): the same internal server reads the requests, without TLS.
   * A TLS ClientHello as the first bytes is refused with a fatal TLS alert (RFC 8446 §6) and never
   * forwarded: the client expected TLS where the destination speaks plain HTTP.
   */
  const servePlain = async (socket: Duplex, head: Buffer, ctx: RequestContext): Promise<InterceptStart> => {
    if (socket.destroyed) return 'client-gone';
    socket.write(CONNECT_ESTABLISHED);
    const first = head.length > 0 ? head : await firstChunk(socket);
    if (first === undefined) return 'client-gone';
    if (first[0] === TLS_HANDSHAKE_RECORD) {
      socket.end(TLS_HANDSHAKE_FAILURE_ALERT);
      return new ProxyError('PlainHttpExpected', `a TLS handshake arrived on a plain-HTTP tunnel to ${formatAuthority(ctx.origin!)}`);
    }
    // The parser must see the bytes already read: hand it a stream that replays them first.
    const stream = withHead(socket, first);
    contexts.set(stream, ctx);
    server.emit('connection', stream);
    return 'established';
  };

  return {
    async intercept(socket, head, ctx) {
      const host = ctx.origin.host;
      if (ctx.origin.scheme === 'http') return servePlain(socket, head, ctx);
      let secureContext;
      try {
        secureContext = await opts.issuer().secureContextFor(host);
      } catch (err) {
        // A host outside the CA's name constraints is a setup fault with a known fix, not an internal error.
        const refusal = (err as { code?: string }).code === 'CaHostNotPermitted'
          ? new ProxyError('CaHostNotPermitted', `The interception CA does not cover ${host} (its name constraints predate this host in extraHosts or clouds): run \`mde-partner-proxy ca init --force\`, restart, and trust the new CA in clients`)
          : new ProxyError('InternalError', `cannot issue a certificate for ${host}: ${(err as Error).message}`);
        writeRawError(socket, refusal);
        return refusal;
      }
      if (socket.destroyed) return 'client-gone';
      socket.write(CONNECT_ESTABLISHED);
      const tls = new TLSSocket(withHead(socket, head), {
        isServer: true,
        secureContext,
        // HTTP/2 is not offered, so every client speaks HTTP/1.1 to the policy (no bypass by ALPN).
        ALPNProtocols: ['http/1.1'],
        // A ClientHello naming another host than the CONNECT fails the handshake: never forward elsewhere.
        // A match keeps the context given above (no second context: see release() in ca.ts).
        SNICallback: (name, cb) => (name.toLowerCase().replace(/\.$/, '') === host ? cb(null, undefined) : cb(new Error(`SNI ${name} does not match CONNECT ${host}`), undefined)),
      });
      tls.on('error', () => tls.destroy());
      socket.on('error', () => tls.destroy());
      contexts.set(tls, ctx);
      server.emit('connection', tls);
      return 'established';
    },
    closeIdle() {
      server.closeIdleConnections();
    },
    closeAll() {
      server.closeAllConnections();
      server.close(); // stops the connection-checking interval; the server has no handle to close
    },
  };
}
