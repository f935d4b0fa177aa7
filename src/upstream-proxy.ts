// Outbound connections through an upstream HTTP proxy: `upstream.noProxy` matching and the
// CONNECT handshake (RFC 9110 §9.3.6) that yields a raw socket to the destination.
import { connect as netConnect, type Socket } from 'node:net';

/** Largest CONNECT response head accepted from the upstream proxy. */
const MAX_HEAD = 16384;

/** True when host matches an `upstream.noProxy` entry: `*`, a name, or a domain suffix (`.x`, `*.x`). */
export function matchesNoProxy(noProxy: readonly string[], host: string): boolean {
  return noProxy.some((p) => {
    const n = p.toLowerCase().replace(/^\*?\./, '');
    return n === '*' || host === n || host.endsWith(`.${n}`);
  });
}

/** Opens a CONNECT tunnel through the upstream proxy and returns the raw socket, paused, once it answered 2xx. */
export function connectViaProxy(proxy: { host: string; port: number }, target: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`upstream proxy did not answer CONNECT ${target}`), { code: 'ETIMEDOUT' })), timeoutMs);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffered.length > MAX_HEAD) socket.destroy(Object.assign(new Error('upstream proxy response head too large'), { code: 'UND_ERR_INFO' }));
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString('latin1'))?.[1];
      if (status === undefined || status[0] !== '2') {
        socket.destroy();
        reject(Object.assign(new Error(`upstream proxy refused CONNECT ${target} with ${status ?? 'a malformed response'}`), { code: 'EUPSTREAMPROXY' }));
        return;
      }
      // Paused, so bytes after the head (put back for the caller) and any that follow wait for the
      // caller's reader; a flowing socket without a 'data' listener would drop them.
      socket.pause();
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    // A proxy that closes without an error or an answer must not leave the request waiting (a settled promise ignores this).
    socket.once('close', () => onError(Object.assign(new Error(`upstream proxy closed the connection before answering CONNECT ${target}`), { code: 'ECONNRESET' })));
    socket.once('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
  });
}
