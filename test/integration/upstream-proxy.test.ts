// Outbound through an upstream HTTP proxy: `upstream.noProxy` matching as a table, and the CONNECT
// handshake against a raw loopback server that answers the way real (and broken) proxies do.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connectViaProxy, matchesNoProxy } from '../../src/upstream-proxy.js';

describe('matchesNoProxy', () => {
  it.each<[string, readonly string[], string, boolean]>([
    ['a listed name', ['graph.microsoft.com'], 'graph.microsoft.com', true],
    ['a subdomain of a listed name', ['microsoft.com'], 'graph.microsoft.com', true],
    ['a leading dot', ['.microsoft.com'], 'graph.microsoft.com', true],
    ['a leading dot, the name itself', ['.microsoft.com'], 'microsoft.com', true],
    ['a wildcard suffix', ['*.microsoft.com'], 'api.security.microsoft.com', true],
    ['an entry in capitals', ['Graph.Microsoft.COM'], 'graph.microsoft.com', true],
    ['the catch-all *', ['*'], 'anything.example', true],
    ['one entry of several', ['example.org', 'login.microsoftonline.com'], 'login.microsoftonline.com', true],
    ['a name that only ends with the same letters', ['soft.com'], 'microsoft.com', false],
    ['a parent of the listed name', ['graph.microsoft.com'], 'microsoft.com', false],
    ['a sibling name', ['graph.microsoft.com'], 'api.microsoft.com', false],
    ['an empty list', [], 'graph.microsoft.com', false],
  ])('%s: %j against %s is %s', (_what, noProxy, host, expected) => {
    expect(matchesNoProxy(noProxy, host)).toBe(expected);
  });
});

/** A raw upstream proxy: records each request head and answers with `answer` (or nothing). */
interface FakeProxy {
  readonly port: number;
  readonly heads: string[];
  close(): Promise<void>;
}

async function fakeProxy(answer: (socket: Socket, head: string) => void): Promise<FakeProxy> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      heads.push(buf.slice(0, end + 4));
      answer(socket, buf.slice(0, end + 4));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

const proxies: FakeProxy[] = [];
const start = async (answer: (socket: Socket, head: string) => void): Promise<FakeProxy> => {
  const p = await fakeProxy(answer);
  proxies.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/** Reads from a (paused) socket until it has n bytes. */
const readBytes = (socket: Socket, n: number): Promise<string> => new Promise((resolve) => {
  let got = '';
  const onData = (d: Buffer): void => {
    got += d.toString('latin1');
    if (got.length < n) return;
    socket.off('data', onData);
    resolve(got);
  };
  socket.on('data', onData);
  socket.resume();
});

describe('connectViaProxy', () => {
  it('sends CONNECT with the target as request-target and Host (RFC 9110 §9.3.6), then hands over the raw socket', async () => {
    const p = await start((socket) => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
    });
    const socket = await connectViaProxy({ host: '127.0.0.1', port: p.port }, 'api.security.microsoft.com:443', 3000);
    try {
      expect(p.heads).toEqual(['CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n']);
      socket.write('ping');
      expect(await readBytes(socket, 9)).toBe('echo:ping');
    } finally {
      socket.destroy();
    }
  });

  it('hands over the socket paused, the bytes that came with the 2xx head and after it unread', async () => {
    const p = await start((socket) => socket.write('HTTP/1.0 200 OK\r\nX-Extra: 1\r\n\r\nearly bytes', () => setTimeout(() => socket.write(' and later'), 20)));
    const socket = await connectViaProxy({ host: '127.0.0.1', port: p.port }, '[2001:db8::1]:443', 3000);
    try {
      expect(socket.isPaused()).toBe(true);
      await new Promise((r) => setTimeout(r, 100)); // the later bytes arrive while nobody reads
      expect(await readBytes(socket, 21)).toBe('early bytes and later');
      expect(p.heads[0]).toMatch(/^CONNECT \[2001:db8::1\]:443 HTTP\/1\.1\r\n/);
    } finally {
      socket.destroy();
    }
  });

  it('accepts a head that arrives one byte at a time', async () => {
    const p = await start((socket) => {
      const answer = 'HTTP/1.1 204 No Content\r\n\r\n';
      let i = 0;
      const next = (): void => {
        if (i < answer.length) socket.write(answer[i++]!, () => setImmediate(next));
      };
      next();
    });
    const socket = await connectViaProxy({ host: '127.0.0.1', port: p.port }, 'graph.microsoft.com:443', 3000);
    socket.destroy();
  });

  it.each([
    ['a 407', 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n', /refused CONNECT graph\.microsoft\.com:443 with 407/],
    ['a 502', 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n', /with 502/],
    ['a 1xx', 'HTTP/1.1 100 Continue\r\n\r\n', /with 100/],
    ['a malformed status line', 'SSH-2.0-OpenSSH_9.6\r\n\r\n', /with a malformed response/],
    ['HTTP/2 in the status line', 'HTTP/2 200\r\n\r\n', /with a malformed response/],
  ])('rejects %s with EUPSTREAMPROXY naming the answer', async (_what, answer, message) => {
    const p = await start((socket) => socket.write(answer));
    const err = await connectViaProxy({ host: '127.0.0.1', port: p.port }, 'graph.microsoft.com:443', 3000).catch((e: NodeJS.ErrnoException) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe('EUPSTREAMPROXY');
    expect((err as Error).message).toMatch(message);
  });

  it('rejects with ECONNRESET when the proxy closes without answering', async () => {
    const p = await start((socket) => socket.end());
    await expect(connectViaProxy({ host: '127.0.0.1', port: p.port }, 'graph.microsoft.com:443', 3000))
      .rejects.toMatchObject({ code: 'ECONNRESET', message: 'upstream proxy closed the connection before answering CONNECT graph.microsoft.com:443' });
  });

  it('rejects with ETIMEDOUT when the proxy never answers', async () => {
    const p = await start(() => undefined);
    await expect(connectViaProxy({ host: '127.0.0.1', port: p.port }, 'graph.microsoft.com:443', 200))
      .rejects.toMatchObject({ code: 'ETIMEDOUT', message: 'upstream proxy did not answer CONNECT graph.microsoft.com:443' });
  });

  it('rejects a response head over 16 KiB without waiting for its end', async () => {
    const p = await start((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Padding: ${'a'.repeat(17_000)}`));
    await expect(connectViaProxy({ host: '127.0.0.1', port: p.port }, 'graph.microsoft.com:443', 10_000))
      .rejects.toMatchObject({ code: 'UND_ERR_INFO', message: 'upstream proxy response head too large' });
  });

  it('rejects with the connect error when no proxy listens', async () => {
    const p = await start(() => undefined);
    const port = p.port;
    await p.close();
    await expect(connectViaProxy({ host: '127.0.0.1', port }, 'graph.microsoft.com:443', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
