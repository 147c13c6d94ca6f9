// How watch() recovers (src/transport/realtime.js), seen from the wire and from the user: a refused LOGIN, a
// sign refused for a running watch, a server that stops answering PING, and INIT_WATCH / REBUILD_WATCH that
// get no answer. Each test has its own scripted server (helpers/realtime-server.mjs) in this process and runs
// the SDK in a child process that prints what its watcher saw as JSON lines.
//
// The child runs on a scaled clock: its global setTimeout divides every delay of 1 s or more by CLOCK_SCALE
// before 'taro-cloud-wasm' is imported. The SDK's idle tick (PING, CHECK_LAST, resends) is 10 s, so the
// "no PONG" and "no answer" paths take 20–60 s of real time; scaled they take 1–3 s through the very same
// code paths. Shorter delays (the reconnect backoff's first steps) stay as they are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runNode } from './helpers/emulator.mjs';
import { ev, startRealtimeServer } from './helpers/realtime-server.mjs';

const ENV = 'rt-env';
// 10 s → 500 ms: still room for the sign, the socket and LOGIN (bounded by one tick) on a busy machine.
const CLOCK_SCALE = 20;

/**
 * Starts a child that watches `collection` on `server` and prints `{ snapshot }` / `{ error }` lines; it closes
 * its watcher and exits after `snapshots` snapshots or the first error, else prints `{ deadline }` and exits
 * after `deadlineMs` of real time. Resolves with what it printed once it has exited.
 */
async function watchInChild(server, { collection = 'todos', snapshots = 0, clockScale = CLOCK_SCALE, deadlineMs = 15_000 }) {
  const source = `
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = (callback, ms, ...args) =>
      realSetTimeout(callback, ms >= 1000 ? ms / ${clockScale} : ms, ...args);
    const { cloud } = await import('taro-cloud-wasm');
    // The request timeout is scaled too: 60 s → 3 s for the sign requests.
    cloud.init({ env: ${JSON.stringify(ENV)}, endpoint: ${JSON.stringify(server.url)}, persistence: 'none', timeout: 60000 });
    const print = (value) => console.log(JSON.stringify(value));
    const exit = () => realSetTimeout(() => process.exit(0), 100); // lets CLOSE_WATCH reach the server
    realSetTimeout(() => (print({ deadline: true }), process.exit(0)), ${deadlineMs});
    let seen = 0;
    const listener = cloud.database().collection(${JSON.stringify(collection)}).watch({
      onChange: (s) => {
        print({ snapshot: { id: s.id, type: s.type ?? null, docs: s.docs.map((d) => d._id), changes: s.docChanges.map((c) => c.id) } });
        if (++seen === ${snapshots}) listener.close().then(exit);
      },
      onError: (e) => {
        print({ error: { errCode: e.errCode, errMsg: e.errMsg } });
        exit();
      },
    });
  `;
  const run = await runNode(source, { timeoutMs: deadlineMs + 10_000 });
  assert.equal(run.code, 0, `child exit ${run.code} ${run.signal ?? ''}; printed ${run.stdout}\nstderr:\n${run.stderr}`);
  const lines = run.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  return {
    snapshots: lines.filter((l) => l.snapshot).map((l) => l.snapshot),
    errors: lines.filter((l) => l.error).map((l) => l.error),
    deadline: lines.some((l) => l.deadline),
  };
}

/**
 * Runs `scenario(server, watch)` against a fresh server; `watch(options)` starts a child (watchInChild). The
 * server closes after every child has exited, also when the scenario failed (each child has its deadline).
 */
async function withServer(scenario) {
  const server = await startRealtimeServer();
  const children = [];
  const watch = (options = {}) => {
    const child = watchInChild(server, options);
    children.push(child);
    return child;
  };
  try {
    return await scenario(server, watch);
  } finally {
    await Promise.allSettled(children);
    await server.close();
  }
}

/** The msgTypes the client sent on socket `socket`, without those in `skip`. */
const sent = (server, socket, skip = []) =>
  server.frames.filter((f) => f.socket === socket && !skip.includes(f.msg.msgType)).map((f) => f.msg.msgType);

const answer = (server, request, msgType, msgData) =>
  server.push({ watchId: request.watchId, requestId: request.requestId, msgType, msgData });

const waitFor = async (what, predicate, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const IDLE = ['PING', 'CHECK_LAST'];

test('a refused LOGIN: the socket is dropped, a new sign and socket, LOGIN again, INIT_WATCH on the new socket only', async () => {
  await withServer(async (server, watch) => {
    server.refuseLogins(1, 'SIGN_INVALID_ERROR');
    const child = watch({ snapshots: 1 });
    const init = await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { timeoutMs: 10_000 });
    answer(server, init.msg, 'INIT_EVENT', { queryID: 'q-1', currEvent: 3, events: [ev(0, 'init', 'init', 'a', { _id: 'a' })] });
    const seen = await child;

    assert.deepEqual(seen.errors, [], 'no onError');
    assert.deepEqual(seen.snapshots, [{ id: 3, type: 'init', docs: ['a'], changes: [3] }]);
    assert.equal(server.signs, 2, 'auth.wsWebSign again after the refusal');
    assert.equal(server.sockets.length, 2);
    assert.deepEqual(sent(server, 0), ['LOGIN'], 'nothing but LOGIN on the refused socket');
    assert.deepEqual(sent(server, 1, IDLE), ['LOGIN', 'INIT_WATCH', 'CLOSE_WATCH']);
    const logins = server.frames.filter((f) => f.msg.msgType === 'LOGIN').map((f) => f.msg.exMsgData.signStr);
    assert.deepEqual(logins, ['sig-1', 'sig-2'], 'the second LOGIN carries the new sign');
    assert.ok(server.closes.some((c) => c.socket === 0 && c.code === 1000), `the client closed the refused socket; ${JSON.stringify(server.closes)}`);
  });
});

test('LOGIN refused every time: after 6 attempts (5 reconnects) onError -402012 with the LOGIN code', async () => {
  await withServer(async (server, watch) => {
    server.refuseLogins(20, 'SIGN_EXPIRED_ERROR');
    const seen = await watch({ snapshots: 1 });
    assert.deepEqual(seen.snapshots, []);
    assert.equal(seen.errors.length, 1, JSON.stringify(seen));
    assert.equal(seen.errors[0].errCode, -402012);
    assert.match(seen.errors[0].errMsg, /^collection\.watch:fail -402012 .*LOGIN SIGN_EXPIRED_ERROR - refused by the test/);
    assert.equal(server.signs, 6, 'a fresh sign for each attempt');
    assert.deepEqual(server.sockets.map((_, socket) => sent(server, socket)), Array(6).fill(['LOGIN']));
  });
});

test('a sign refused for a running watch (ERROR with a sign code): new sign, new socket, REBUILD_WATCH from the last event; nothing lost or repeated', async () => {
  await withServer(async (server, watch) => {
    const child = watch({ snapshots: 4 });
    const init = (await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { timeoutMs: 10_000 })).msg;
    answer(server, init, 'INIT_EVENT', { queryID: 'q-2', currEvent: 2, events: [ev(0, 'init', 'init', 'a', { _id: 'a' })] });
    const next = (currEvent, events, requestId = 'srv') =>
      answer(server, { watchId: init.watchId, requestId }, 'NEXT_EVENT', { queryID: 'q-2', currEvent, events });
    next(3, [ev(3, 'add', 'enqueue', 'b', { _id: 'b' })]);
    // For this watcher (by watchId), after its snapshots 2 and 3.
    answer(server, { watchId: init.watchId, requestId: 'srv' }, 'ERROR', { code: 'SIGN_EXPIRED_ERROR', message: 'expired' });

    const rebuild = await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH', { timeoutMs: 10_000 });
    assert.equal(rebuild.socket, 1, 'on a new socket');
    assert.deepEqual(rebuild.msg.msgData, { envId: ENV, collName: 'todos', queryID: 'q-2', eventID: 3 });
    assert.equal(rebuild.msg.watchId, init.watchId);
    // The server resends event 3 (already applied) with event 4.
    next(4, [ev(3, 'add', 'enqueue', 'b', { _id: 'b' }), ev(4, 'add', 'enqueue', 'c', { _id: 'c' })], rebuild.msg.requestId);
    // Then a sign error for no watcher in particular (no watchId, same socket, so after event 4): log in again too.
    server.push({ requestId: 'srv', msgType: 'ERROR', msgData: { code: 'CHECK_LOGIN_FAILED', message: 'who are you' } });
    const rebuild2 = await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH' && f.socket === 2, { timeoutMs: 10_000 });
    assert.deepEqual(rebuild2.msg.msgData, { envId: ENV, collName: 'todos', queryID: 'q-2', eventID: 4 });
    next(5, [ev(5, 'remove', 'dequeue', 'a')], rebuild2.msg.requestId);
    const seen = await child;

    assert.deepEqual(seen.errors, [], 'no onError');
    assert.deepEqual(
      seen.snapshots.map((s) => [s.id, s.docs]),
      [
        [2, ['a']],
        [3, ['b', 'a']],
        [4, ['c', 'b', 'a']],
        [5, ['c', 'b']],
      ],
    );
    assert.deepEqual(seen.snapshots.map((s) => s.changes), [[2], [3], [4], [5]], 'each event once');
    const signs = server.frames.filter((f) => f.msg.msgType === 'LOGIN').map((f) => f.msg.exMsgData.signStr);
    assert.deepEqual(signs, ['sig-1', 'sig-2', 'sig-3'], 'a fresh sign for each new socket');
    assert.deepEqual(sent(server, 0, IDLE), ['LOGIN', 'INIT_WATCH']);
    assert.deepEqual(sent(server, 1, IDLE), ['LOGIN', 'REBUILD_WATCH']);
    assert.deepEqual(sent(server, 2, IDLE), ['LOGIN', 'REBUILD_WATCH', 'CLOSE_WATCH']);
    for (const socket of [0, 1]) {
      assert.ok(server.closes.some((c) => c.socket === socket && c.code === 1000), `the client closed socket ${socket}; ${JSON.stringify(server.closes)}`);
    }
  });
});

test('no PONG: the socket is kept while PING is answered, dropped at the tick after an unanswered PING; resumes with REBUILD_WATCH', async () => {
  await withServer(async (server, watch) => {
    const child = watch({ snapshots: 3 });
    const init = (await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { timeoutMs: 10_000 })).msg;
    answer(server, init, 'INIT_EVENT', { queryID: 'q-3', currEvent: 3, events: [ev(0, 'init', 'init', 'a', { _id: 'a' })] });
    answer(server, { watchId: init.watchId, requestId: 'srv' }, 'NEXT_EVENT', { queryID: 'q-3', currEvent: 4, events: [ev(4, 'add', 'enqueue', 'b', { _id: 'b' })] });

    // Two ticks with PONG: the socket stays. Then silence.
    const pings = () => server.frames.filter((f) => f.socket === 0 && f.msg.msgType === 'PING').length;
    await waitFor('two PINGs', () => pings() === 2);
    server.answerPings(false);
    assert.equal(server.sockets.length, 1, 'answered PINGs keep the socket');
    const rebuild = await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH', { timeoutMs: 10_000 });
    server.answerPings(true);
    assert.equal(rebuild.socket, 1);
    assert.deepEqual(rebuild.msg.msgData, { envId: ENV, collName: 'todos', queryID: 'q-3', eventID: 4 });
    answer(server, rebuild.msg, 'NEXT_EVENT', {
      queryID: 'q-3',
      currEvent: 5,
      events: [ev(4, 'add', 'enqueue', 'b', { _id: 'b' }), ev(5, 'add', 'enqueue', 'c', { _id: 'c' })],
    });
    const seen = await child;

    assert.deepEqual(seen.errors, [], 'no onError');
    assert.deepEqual(seen.snapshots.map((s) => [s.id, s.changes, s.docs]), [
      [3, [3], ['a']],
      [4, [4], ['b', 'a']],
      [5, [5], ['c', 'b', 'a']],
    ]);
    // Third PING unanswered; the next tick drops the socket (sends nothing more on it).
    assert.deepEqual(sent(server, 0, ['CHECK_LAST']), ['LOGIN', 'INIT_WATCH', 'PING', 'PING', 'PING']);
    assert.ok(server.closes.some((c) => c.socket === 0 && c.code === 1000), `the client closed socket 0; ${JSON.stringify(server.closes)}`);
    assert.equal(server.signs, 2, 'a fresh sign for the new socket');
    assert.deepEqual(sent(server, 1, IDLE), ['LOGIN', 'REBUILD_WATCH', 'CLOSE_WATCH']);
  });
});

test('INIT_WATCH never answered: resent on the 2nd and 4th idle tick, onError -402002 at the 6th, CLOSE_WATCH sent', async () => {
  await withServer(async (server, watch) => {
    const seen = await watch({ snapshots: 1 });

    assert.deepEqual(seen.snapshots, []);
    assert.equal(seen.errors.length, 1, JSON.stringify(seen));
    assert.equal(seen.errors[0].errCode, -402002);
    assert.match(seen.errors[0].errMsg, /^collection\.watch:fail -402002 .*no answer from the server/);
    assert.equal(server.sockets.length, 1, 'PONGs came: no reconnect');
    assert.deepEqual(sent(server, 0), [
      'LOGIN', 'INIT_WATCH', 'PING', 'PING', 'INIT_WATCH', 'PING', 'PING', 'INIT_WATCH', 'PING', 'PING', 'CLOSE_WATCH',
    ]);
    const inits = server.frames.filter((f) => f.msg.msgType === 'INIT_WATCH').map((f) => f.msg);
    assert.equal(new Set(inits.map((m) => m.requestId)).size, 3, 'each resend is a new request');
    for (const m of inits) {
      assert.equal(m.watchId, inits[0].watchId);
      assert.deepEqual(m.msgData, { envId: ENV, collName: 'todos', query: '{}' });
    }
    assert.equal(server.frames.find((f) => f.msg.msgType === 'CLOSE_WATCH').msg.watchId, inits[0].watchId);
    assert.ok(server.closes.some((c) => c.socket === 0 && c.code === 1000), 'the last watcher gone, the socket is released');
  });
});

test('an INIT_WATCH answered after it was sent again: one init snapshot, from the latest answer', async () => {
  await withServer(async (server, watch) => {
    const child = watch({ snapshots: 2, deadlineMs: 8_000 });
    const first = (await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { timeoutMs: 10_000 })).msg;
    const again = (await server.frame((f) => f.msg.msgType === 'INIT_WATCH' && f.msg.requestId !== first.requestId, { timeoutMs: 10_000 })).msg;
    // The slow server answers both, the first one late; then one change follows.
    answer(server, first, 'INIT_EVENT', { queryID: 'q-old', currEvent: 1, events: [ev(1, 'init', 'init', 'a', { _id: 'a' })] });
    answer(server, again, 'INIT_EVENT', { queryID: 'q-new', currEvent: 2, events: [ev(2, 'init', 'init', 'a', { _id: 'a' }), ev(2, 'init', 'init', 'b', { _id: 'b' })] });
    answer(server, { watchId: again.watchId, requestId: 'srv' }, 'NEXT_EVENT', { queryID: 'q-new', currEvent: 3, events: [ev(3, 'add', 'enqueue', 'c', { _id: 'c' })] });
    const seen = await child;

    assert.deepEqual(seen.errors, [], 'no onError');
    assert.deepEqual(seen.snapshots.map((s) => [s.id, s.type, s.docs]), [
      [2, 'init', ['b', 'a']], // no orderBy: _id descending, as the server orders
      [3, null, ['c', 'b', 'a']],
    ]);
  });
});

test('REBUILD_WATCH never answered: resent twice on idle ticks, then onError -402004', async () => {
  await withServer(async (server, watch) => {
    const child = watch({ snapshots: 2 });
    const init = (await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { timeoutMs: 10_000 })).msg;
    answer(server, init, 'INIT_EVENT', { queryID: 'q-4', currEvent: 1, events: [] });
    // Event 2 is missing: the client asks for it with REBUILD_WATCH, which the server never answers.
    answer(server, { watchId: init.watchId, requestId: 'srv' }, 'NEXT_EVENT', { queryID: 'q-4', currEvent: 3, events: [ev(3, 'add', 'enqueue', 'c', { _id: 'c' })] });
    const seen = await child;

    assert.deepEqual(seen.snapshots, [{ id: 1, type: 'init', docs: [], changes: [] }]);
    assert.equal(seen.errors.length, 1, JSON.stringify(seen));
    assert.equal(seen.errors[0].errCode, -402004);
    assert.match(seen.errors[0].errMsg, /^collection\.watch:fail -402004 .*no answer from the server/);
    assert.equal(server.sockets.length, 1);
    const types = sent(server, 0, ['CHECK_LAST']);
    assert.deepEqual(types.slice(types.indexOf('REBUILD_WATCH')), [
      'REBUILD_WATCH', 'PING', 'PING', 'REBUILD_WATCH', 'PING', 'PING', 'REBUILD_WATCH', 'PING', 'PING', 'CLOSE_WATCH',
    ]);
    const rebuilds = server.frames.filter((f) => f.msg.msgType === 'REBUILD_WATCH').map((f) => f.msg);
    for (const m of rebuilds) assert.deepEqual(m.msgData, { envId: ENV, collName: 'todos', queryID: 'q-4', eventID: 1 });
    assert.equal(new Set(rebuilds.map((m) => m.requestId)).size, 3);
  });
});

// A server that answers LOGIN and then nothing (no PONG, no INIT_EVENT): every second idle tick drops the
// socket ("no answer to PING") before the watcher's INIT_WATCH counts as unanswered, so only the reconnect
// limit can end it, which is why a LOGIN_RES alone does not reset the failures (src/transport/realtime.js;
// found by this test: it reconnected with a new sign every ~20 s for ever, onError never called).
test(
  'a server that answers LOGIN and nothing else: onError after at most 6 sockets',
  async () => {
    await withServer(async (server, watch) => {
      server.answerPings(false);
      let done = false;
      // A faster clock still: each round (LOGIN, two ticks, backoff) takes ~0.7 s instead of ~20 s.
      const child = watch({ snapshots: 1, clockScale: 40 }).finally(() => (done = true));
      await waitFor('onError or a 7th socket', () => done || server.sockets.length > 6, 15_000);
      // Ends the child either way: refused sockets never log in, so the reconnects run out (-402009).
      server.refuse(true);
      const seen = await child;
      server.refuse(false);
      assert.deepEqual(seen.snapshots, []);
      assert.ok(server.sockets.length <= 6, `${server.sockets.length} sockets (${server.signs} signs) without onError`);
      assert.equal(seen.errors.length, 1, JSON.stringify(seen));
      assert.ok([-402002, -402009].includes(seen.errors[0].errCode), seen.errors[0].errMsg);
    });
  },
);
