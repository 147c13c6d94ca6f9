// A fault-injecting reverse proxy for tests: 127.0.0.1:0 in front of a cloud-emulator. Requests pass through
// unchanged (the Host header is rewritten to the emulator's, and the emulator's own origin in answers to the
// proxy's, so upload and download URLs come back through the proxy too) unless a planned fault matches:
//
//   proxy.plan({ action: 'database.queryDocument' }, { fault: 'status', status: 503 }, { times: 2 })
//
// Matching: `action` (the /web action), `path` (a RegExp or a string prefix of the path), `method`.
// Faults (each bounded: a stalled exchange is cut when the proxy closes):
//   status      answer `status` with `body` (default a non-JSON text) without contacting the emulator
//   json        answer 200 with the JSON `body` (e.g. { code: 'ACCESS_TOKEN_EXPIRED' }) without contacting it
//   reset       destroy the connection as soon as the request arrived (fetch: "other side closed")
//   reset-body  forward, send the headers and half of the answer, then destroy the connection
//   truncate    forward, send the headers and half of the answer, then end the connection cleanly
//   non-json    forward, but answer 200 with an HTML page instead of the emulator's answer
//   stall       forward, send the headers and `bytes` (default 0) bytes of the answer, then nothing
//   stall-upload  stop reading the request body after `bytes` (default 64 KiB) and never answer
//   slow        forward, then send the answer in `chunk`-byte pieces every `everyMs` ms
// `proxy.seen` lists every request as { method, path, action, fault } in arrival order.
import http from 'node:http';

export async function startFaultProxy(upstreamUrl) {
  const upstream = new URL(upstreamUrl);
  const rules = [];
  const seen = [];
  const sockets = new Set();
  const timers = new Set();
  let origin = '';

  const later = (fn, ms) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const matches = (rule, request) =>
    (!rule.match.action || rule.match.action === request.action) &&
    (!rule.match.method || rule.match.method === request.method) &&
    (!rule.match.path ||
      (rule.match.path instanceof RegExp ? rule.match.path.test(request.path) : request.path.startsWith(rule.match.path)));

  const take = (request) => {
    const rule = rules.find((candidate) => candidate.times > 0 && matches(candidate, request));
    if (!rule) return undefined;
    rule.times -= 1;
    return rule.fault;
  };

  function forward(req, body, onAnswer) {
    const headers = { ...req.headers, host: upstream.host };
    delete headers['content-length'];
    if (body) headers['content-length'] = String(body.length);
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (answer) => {
        const chunks = [];
        answer.on('data', (chunk) => chunks.push(chunk));
        answer.on('end', () => {
          let bytes = Buffer.concat(chunks);
          const type = String(answer.headers['content-type'] ?? '');
          if (/json|xml|text/.test(type)) {
            bytes = Buffer.from(bytes.toString('utf8').replaceAll(upstream.origin, origin));
          }
          const answerHeaders = { ...answer.headers };
          delete answerHeaders['content-length'];
          delete answerHeaders['transfer-encoding'];
          onAnswer(answer.statusCode, answerHeaders, bytes);
        });
      },
    );
    out.on('error', () => req.socket.destroy());
    out.end(body);
  }

  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    const early = { method: req.method, path, action: undefined };
    const uploadStall = rules.find((rule) => rule.times > 0 && rule.fault.fault === 'stall-upload' && matches(rule, early));
    if (uploadStall) {
      uploadStall.times -= 1;
      seen.push({ ...early, fault: 'stall-upload' });
      let received = 0;
      const limit = uploadStall.fault.bytes ?? 64 * 1024;
      req.on('data', (chunk) => {
        received += chunk.length;
        if (received >= limit) req.pause(); // TCP back-pressure: the client's writes stop making progress
      });
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      let action;
      if (path === '/web' && body) {
        try {
          action = JSON.parse(body.toString('utf8')).action;
        } catch {}
      }
      const request = { method: req.method, path, action };
      const fault = take(request);
      seen.push({ ...request, fault: fault?.fault });
      if (!fault) {
        return forward(req, body, (status, headers, bytes) => {
          res.writeHead(status, { ...headers, 'content-length': bytes.length });
          res.end(bytes);
        });
      }
      switch (fault.fault) {
        case 'status': {
          const text = fault.body === undefined ? `${fault.status} injected by the fault proxy` : JSON.stringify(fault.body);
          res.writeHead(fault.status, {
            'content-type': fault.body === undefined ? 'text/plain' : 'application/json',
            'access-control-allow-origin': '*',
            ...(fault.headers ?? {}),
          });
          return res.end(text);
        }
        case 'json':
          res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
          return res.end(JSON.stringify(fault.body));
        case 'reset':
          return req.socket.destroy();
        default:
          return forward(req, body, (status, headers, bytes) => {
            const half = bytes.subarray(0, Math.floor(bytes.length / 2));
            switch (fault.fault) {
              case 'reset-body':
                res.writeHead(status, { ...headers, 'content-length': bytes.length });
                res.write(half);
                return later(() => req.socket.destroy(), 20);
              case 'truncate':
                res.writeHead(status, { ...headers, 'content-length': bytes.length });
                res.write(half);
                return later(() => req.socket.end(), 20);
              case 'non-json':
                res.writeHead(200, { 'content-type': 'text/html', 'access-control-allow-origin': '*' });
                return res.end('<html><body>502 Bad Gateway</body></html>');
              case 'stall':
                res.writeHead(status, { ...headers, 'content-length': bytes.length });
                if (fault.bytes) res.write(bytes.subarray(0, fault.bytes));
                return; // nothing more until the proxy closes
              case 'slow': {
                res.writeHead(status, { ...headers, 'content-length': bytes.length });
                const chunk = fault.chunk ?? 1024;
                let offset = 0;
                const next = () => {
                  if (offset >= bytes.length) return res.end();
                  res.write(bytes.subarray(offset, offset + chunk));
                  offset += chunk;
                  later(next, fault.everyMs ?? 50);
                };
                return next();
              }
              default:
                throw new Error(`fault proxy: unknown fault ${fault.fault}`);
            }
          });
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;

  return {
    url: origin,
    seen,
    /** Plans `fault` for the next `times` (default 1) requests matching `match`. */
    plan(match, fault, { times = 1 } = {}) {
      rules.push({ match, fault, times });
    },
    /** Forgets unused plans and the request log. */
    reset() {
      rules.length = 0;
      seen.length = 0;
    },
    /** Requests seen for `action` (or matching a path prefix). */
    count(action) {
      return seen.filter((request) => request.action === action || (action.startsWith('/') && request.path.startsWith(action))).length;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
