// A scripted CloudBase realtime look-alike on 127.0.0.1:0 (protocol.md §2.2, §5.6): anonymous sign-in,
// `auth.wsWebSign`, and a WebSocket on /ws that records every client frame and lets the test answer,
// push events, or drop sockets; it can also refuse LOGINs and stop answering PING (the recovery paths). The SDK's side of the protocol is checked frame by frame against it; the
// end-to-end behaviour is tested against cloud-emulator (watch.test.mjs).
import http from 'node:http';
import { WebSocketServer } from 'ws';

/** One server event as NEXT_EVENT / INIT_EVENT carry it (`Doc` as JSON text, '' when not sent). */
export const ev = (ID, DataType, QueueType, DocID, doc, extra = {}) => ({
  ID,
  DataType,
  QueueType,
  DocID,
  Doc: doc === undefined ? '' : JSON.stringify(doc),
  ...extra,
});

export async function startRealtimeServer() {
  const frames = []; // { socket: n, msg }
  const closes = []; // { socket: n, code }: sockets closed, by either side
  const sockets = [];
  const waiters = [];
  let refuseSockets = false;
  let pongs = true;
  const loginRefusals = []; // codes for the next LOGINs, answered with LOGIN_RES { code, message } in turn
  let signs = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const send = (value) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const path = req.url.split('?')[0];
      if (path.startsWith('/auth/v1/')) {
        return send({ token_type: 'Bearer', access_token: 'AT-1', refresh_token: 'RT-1', expires_in: 7200, scope: 'anonymous', sub: 'u1' });
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      if (body.action === 'auth.wsWebSign') {
        signs += 1;
        const { port } = server.address();
        return send({ requestId: 'r', data: { signStr: `sig-${signs}`, wsUrl: `ws://127.0.0.1:${port}/ws`, secretVersion: 1, envId: body.env } });
      }
      return send({ code: 'INVALID_ACTION', message: body.action, requestId: 'r' });
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (refuseSockets) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      const index = sockets.length;
      sockets.push(ws);
      ws.on('close', (code) => {
        closes.push({ socket: index, code });
        for (const waiter of waiters.splice(0)) waiter();
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        frames.push({ socket: index, msg });
        if (msg.msgType === 'LOGIN') {
          const refused = loginRefusals.shift();
          const msgData = refused ? { code: refused, message: 'refused by the test' } : { envId: msg.msgData.envId };
          ws.send(JSON.stringify({ requestId: msg.requestId, msgType: 'LOGIN_RES', msgData }));
        }
        if (msg.msgType === 'PING' && pongs) ws.send(JSON.stringify({ requestId: msg.requestId, msgType: 'PONG', msgData: null }));
        for (const waiter of waiters.splice(0)) waiter();
      });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  /** Resolves with the first recorded frame (from `from` on) matching `predicate`. */
  async function frame(predicate, { from = 0, timeoutMs = 5000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = frames.slice(from).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such frame; got ${JSON.stringify(frames.map((f) => f.msg.msgType))}`);
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    frames,
    closes,
    sockets,
    frame,
    get signs() {
      return signs;
    },
    /** Sends `msg` on the latest socket. */
    push(msg) {
      sockets[sockets.length - 1].send(JSON.stringify(msg));
    },
    refuse(value) {
      refuseSockets = value;
    },
    /** Answers the next `count` LOGINs with `LOGIN_RES { code, message }` (a refused sign). */
    refuseLogins(count, code = 'SIGN_INVALID_ERROR') {
      loginRefusals.push(...Array(count).fill(code));
    },
    /** `false`: PING goes unanswered (no PONG) until `answerPings(true)`. */
    answerPings(value) {
      pongs = value;
    },
    dropAll() {
      for (const ws of sockets) ws.terminate();
    },
    close: () =>
      new Promise((resolve) => {
        for (const ws of sockets) ws.terminate();
        wss.close();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
