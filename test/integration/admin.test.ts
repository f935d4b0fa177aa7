import net from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { createMetrics } from '../../src/metrics.js';

describe('admin server', () => {
  let admin: AdminServer;
  let base: string;
  let port: number;

  beforeAll(async () => {
    const registry = new Registry();
    const metrics = createMetrics({ registry, products: ['cognito'], apiLabels: ['machines', 'other'], version: '9.9.9', collectDefault: false });
    metrics.observer.exchangeEnd?.({
      product: 'cognito',
      api: 'machines',
      method: 'GET',
      status: 200,
      action: 'rewritten',
      reason: 'test',
      mode: 'intercept',
      host: 'api.security.microsoft.com',
      userAgent: undefined,
      durationMs: 10,
      client: '127.0.0.1',
    });
    admin = createAdminServer({ registry });
    const address = await admin.listen(0, '127.0.0.1');
    port = address.port;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await admin.close();
  });

  const get = async (path: string, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS' = 'GET') => {
    const res = await request(`${base}${path}`, { method });
    const body = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body };
  };

  it('serves /metrics in the Prometheus text format with its Content-Type', async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain(
      'mde_partner_proxy_requests_total{product="cognito",api="machines",method="GET",code="200",action="rewritten"} 1',
    );
    expect(res.body).toContain('mde_partner_proxy_build_info{version="9.9.9"');
  });

  it('ignores a query string on /metrics', async () => {
    expect((await get('/metrics?name[]=x')).status).toBe(200);
  });

  it('answers /livez with ok', async () => {
    const res = await get('/livez');
    expect(res).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('answers /healthz with a small JSON document', async () => {
    const res = await get('/healthz');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'ok' });
  });

  it('fails /readyz while starting and while draining, and passes when ready', async () => {
    const status = async () => {
      const res = await get('/readyz');
      return [res.status, (JSON.parse(res.body) as { status: string }).status];
    };
    expect(await status()).toEqual([503, 'starting']);
    admin.setReady(true);
    expect(await status()).toEqual([200, 'ready']);
    admin.setDraining(true);
    expect(await status()).toEqual([503, 'draining']);
    admin.setDraining(false);
    expect(await status()).toEqual([200, 'ready']);
    admin.setReady(false);
    expect(await status()).toEqual([503, 'starting']);
  });

  it('answers HEAD with headers and no body', async () => {
    const res = await get('/metrics', 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
    expect(res.body).toBe('');
    expect((await get('/livez', 'HEAD')).status).toBe(200);
  });

  it('answers unknown paths with a 404 JSON error', async () => {
    for (const path of ['/', '/metric', '/metrics/', '/../etc/passwd', '/%00', `/${'a'.repeat(4000)}`]) {
      const res = await get(path);
      expect([path.slice(0, 20), res.status]).toEqual([path.slice(0, 20), 404]);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'NotFound' } });
    }
  });

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS'] as const)('refuses %s with 405 and Allow', async (method) => {
    const res = await get('/metrics', method);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });

  it('survives malformed requests on raw sockets and keeps serving', async () => {
    const raw = (payload: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(payload));
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
        socket.on('close', () => resolve(out));
        socket.on('error', () => resolve(out));
      });
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET http://admin.example/livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200/);
    expect((await get('/livez')).status).toBe(200);
  });

  it('closes even when a client holds a keep-alive connection', async () => {
    const other = createAdminServer({ registry: new Registry() });
    const { port: p } = await other.listen(0, '127.0.0.1');
    const res = await request(`http://127.0.0.1:${p}/livez`); // undici keeps the connection alive
    await res.body.text();
    await expect(other.close()).resolves.toBeUndefined();
    await expect(other.close()).resolves.toBeUndefined(); // idempotent
  });

  it('closes connections past maxConnections unread, logs that once, and serves again when one ends', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const other = createAdminServer({ registry: new Registry(), maxConnections: 3, logger });
    const { port: p } = await other.listen(0, '127.0.0.1');
    const open = (): Promise<net.Socket> => new Promise((resolve, reject) => {
      const socket = net.connect(p, '127.0.0.1', () => resolve(socket));
      socket.on('error', reject);
    });
    /** Resolves with what the server sent before it closed the socket. */
    const closedUnread = (socket: net.Socket): Promise<string> => new Promise((resolve) => {
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      socket.on('close', () => resolve(got));
    });
    try {
      const held = [await open(), await open(), await open()];
      await new Promise((r) => setTimeout(r, 50)); // the server has accepted all three
      for (let i = 0; i < 2; i++) {
        const extra = await open();
        const answer = closedUnread(extra);
        extra.write('GET /livez HTTP/1.1\r\nHost: x\r\n\r\n');
        expect(await answer).toBe('');
      }
      expect(lines.filter((l) => l.includes('admin-connections-refused'))).toHaveLength(1);
      held[0]!.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const res = await request(`http://127.0.0.1:${p}/livez`, { reset: true });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      for (const s of held) s.destroy();
    } finally {
      await other.close();
    }
  });

  it('rejects listen on a port in use', async () => {
    const other = createAdminServer({ registry: new Registry() });
    await expect(other.listen(port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
  });
});
