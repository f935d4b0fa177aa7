// The benchmark origin, in its own process: an HTTPS and a plain HTTP echo server on 127.0.0.1 that
// answer every request with a small JSON body naming what they received (method, target, Host,
// User-Agent), so the runner checks what reached "Microsoft". Prints {"tls":port,"plain":port}.
// Exits when its stdin closes, so it never outlives the runner.
import { readFileSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';

const [certFile, keyFile] = process.argv.slice(2);

function echo(req, res) {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, userAgent: req.headers['user-agent'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

const options = { keepAliveTimeout: 60_000, headersTimeout: 30_000, requestTimeout: 0 };
const tls = createHttps({ ...options, cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' }, echo);
const plain = createHttp(options, echo);
for (const s of [tls, plain]) s.on('clientError', (_err, socket) => socket.destroy());

await Promise.all([tls, plain].map((s) => new Promise((resolve) => s.listen(0, '127.0.0.1', 1024, resolve))));
process.stdout.write(`${JSON.stringify({ tls: tls.address().port, plain: plain.address().port })}\n`);
process.stdin.on('end', () => process.exit(0)).resume();
process.on('SIGTERM', () => process.exit(0));
