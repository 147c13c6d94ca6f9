// A tiny CloudBase look-alike on 127.0.0.1:0 that records every request it gets and answers like the
// emulator (protocol.md §2.2, §3.1). Used by the golden test to see exactly what an SDK puts on the wire.
import http from 'node:http';

export async function startRecordingServer() {
  const requests = [];
  let issued = 0;
  const credentials = () => {
    issued += 1;
    return {
      token_type: 'Bearer',
      access_token: `AT-rec-${issued}`,
      refresh_token: `RT-rec-${issued}`,
      expires_in: 7200,
      scope: 'anonymous',
      sub: 'uid-rec-1',
      groups: ['anonymous'],
    };
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const send = (status, value) => {
        res.writeHead(status, {
          'content-type': 'application/json',
          'access-control-allow-origin': '*',
          'access-control-allow-headers': '*',
          'access-control-allow-methods': 'GET, POST, OPTIONS',
        });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'OPTIONS') return send(204, {});
      const path = req.url.split('?')[0];
      if (path === '/auth/v1/signin/anonymously' || path === '/auth/v1/token') return send(200, credentials());
      if (path === '/auth/v1/user/me') {
        return send(200, { sub: 'uid-rec-1', groups: ['anonymous'], status: 'ACTIVE' });
      }
      if (path === '/web') {
        let envelope;
        try {
          envelope = JSON.parse(body);
        } catch {
          return send(200, { code: 'INVALID_PARAM', message: 'body is not JSON', requestId: 'rec-bad' });
        }
        const requestId = `rec-${requests.length}`;
        if (envelope.action === 'functions.invokeFunction') {
          const data = envelope.request_data ? JSON.parse(envelope.request_data) : {};
          const value = { echo: data, ok: true };
          return send(200, { requestId, data: { response_data: JSON.stringify(value) } });
        }
        return send(200, { code: 'INVALID_ACTION', message: `unknown action ${envelope.action}`, requestId });
      }
      return send(404, { code: 'RESOURCE_NOT_FOUND', message: `no route ${path}`, requestId: 'rec-404' });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
