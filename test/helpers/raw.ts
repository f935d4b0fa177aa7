// Wire-level clients: raw net.Socket requests and CONNECT tunnels, for cases real clients never send.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** Sends bytes on a new loopback connection and collects everything until the peer closes or timeoutMs passes. */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return requestOver(connect(port, '127.0.0.1'), data, timeoutMs);
}

/** The status code of a raw HTTP response. */
export function statusOf(response: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
}

/** The JSON body of a raw HTTP response. */
export function jsonBodyOf(response: string): unknown {
  const i = response.indexOf('\r\n\r\n');
  return JSON.parse(response.slice(i + 4));
}

/** Opens a CONNECT tunnel and resolves with the socket once the proxy's response head arrived. */
export function openTunnel(port: number, request: string, timeoutMs = 3000): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no CONNECT response; got ${JSON.stringify(buf)}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ socket, head: buf.slice(0, end) });
    };
    socket.on('data', onData);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.write(request);
  });
}

/** TLS over an open tunnel; rejects when the handshake fails. */
export function tlsOver(socket: Socket, opts: { servername: string; ca: string | string[] }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername: opts.servername, ca: opts.ca, ALPNProtocols: ['h2', 'http/1.1'] }, () => resolve(tls));
    tls.once('error', reject);
  });
}

/** Sends bytes over a (TLS) socket and resolves with everything received until it closes or timeoutMs passes; rejects only on an error before any byte. */
export function requestOver(socket: Socket | TLSSocket, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, timeoutMs);
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', (e: Error) => {
      clearTimeout(timer);
      if (out !== '') resolve(out);
      else reject(e);
    });
    socket.write(data);
  });
}
