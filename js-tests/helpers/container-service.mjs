// A tiny container service for the callContainer suites: a real node:http server on 127.0.0.1 that the
// emulator reaches through `--container NAME=URL`. It records every request it gets.
//   /status?code=N  answers N with a JSON body shaped like a gateway error (code NOT_FOUND): a service answer
//   /text           text/plain 'plain words'
//   /bytes?n=N      N bytes (i & 255), application/octet-stream
//   /slow?ms=N      answers 'late' after N ms (at most 10 s)
//   anything else   echoes { method, path, query, headers, body, length, sha256 } as JSON, with x-service
//                   and set-cookie headers
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

export async function startContainerService() {
  const requests = [];
  const timers = new Set();
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://service.local');
    requests.push({ method: req.method, url: req.url, headers: req.headers, length: body.length });
    switch (url.pathname) {
      case '/status': {
        res.writeHead(Number(url.searchParams.get('code')), { 'content-type': 'application/json', 'x-service': 'status' });
        res.end(JSON.stringify({ code: 'NOT_FOUND', message: 'no such item', requestId: 'svc-1' }));
        return;
      }
      case '/text':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('plain words');
        return;
      case '/bytes': {
        const bytes = Buffer.alloc(Number(url.searchParams.get('n')));
        for (let i = 0; i < bytes.length; i++) bytes[i] = i & 255;
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(bytes);
        return;
      }
      case '/slow': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          res.end('late');
        }, Math.min(Number(url.searchParams.get('ms')), 10_000));
        timers.add(timer);
        return;
      }
      default:
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'x-service': 'echo',
          'set-cookie': 'session=abc; Path=/',
        });
        res.end(
          JSON.stringify({
            method: req.method,
            path: url.pathname,
            query: url.search,
            headers: req.headers,
            body: body.toString('utf8'),
            length: body.length,
            sha256: createHash('sha256').update(body).digest('hex'),
          }),
        );
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const stop = async () => {
    for (const timer of timers) clearTimeout(timer);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return { url, requests, stop };
}
