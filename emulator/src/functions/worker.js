'use strict';
// cloud-emulator functions worker: runs one cloud function, one call at a time.
// Requests arrive as JSON lines on stdin. Replies leave as JSON lines on stdout, each prefixed with a
// per-worker marker; user output is moved to stderr so it can never be mistaken for a reply.
const path = require('path');
const readline = require('readline');
const { pathToFileURL } = require('url');

const marker = process.env.CLOUD_EMULATOR_WORKER_MARKER || '';
const modulePath = process.env.CLOUD_EMULATOR_FUNCTION_MAIN || '';
delete process.env.CLOUD_EMULATOR_WORKER_MARKER;
delete process.env.CLOUD_EMULATOR_FUNCTION_MAIN;

const writeReply = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

function sendReply(message) {
  writeReply(marker + JSON.stringify(message) + '\n');
}

// Frames of this worker script say nothing about the user's code.
function cleanStack(stack) {
  return stack
    .split('\n')
    .filter((line) => !line.includes('[eval]'))
    .join('\n');
}

function describeError(err) {
  if (err && typeof err === 'object' && ('stack' in err || 'message' in err)) {
    const message = String(err.message === undefined ? err : err.message);
    const stack = typeof err.stack === 'string' ? cleanStack(err.stack) : '';
    return stack ? `${message}\n${stack}` : message;
  }
  if (typeof err === 'string') return err;
  try {
    const text = JSON.stringify(err);
    return text === undefined ? String(err) : text;
  } catch (_) {
    return String(err);
  }
}

// `require('wx-server-sdk')`: a function with its own node_modules/wx-server-sdk gets that copy, as in
// the cloud; one without gets the real wx-server-sdk the emulator provides (CLOUD_EMULATOR_WX_SERVER_SDK,
// the package folder of a pinned version). Either way the SDK reaches this emulator through
// TCB_CONTEXT_CNFG and signs with the per-run credentials in the environment.
const Module = require('module');
const originalResolve = Module._resolveFilename;
Module._resolveFilename = function resolveWithEmulatorSdk(request, parent, isMain, options) {
  try {
    return originalResolve.call(this, request, parent, isMain, options);
  } catch (err) {
    const sdk = process.env.CLOUD_EMULATOR_WX_SERVER_SDK;
    const wanted = request === 'wx-server-sdk' || request.startsWith('wx-server-sdk/');
    if (!wanted || !sdk || !err || err.code !== 'MODULE_NOT_FOUND') throw err;
    const target = sdk + request.slice('wx-server-sdk'.length);
    try {
      return originalResolve.call(this, target, parent, isMain, options);
    } catch (_) {
      err.message +=
        `\nThe function has no node_modules/wx-server-sdk and cloud-emulator's own copy is missing at ${sdk}: ` +
        'run `npm install wx-server-sdk` in the function folder, or scripts/setup.sh (or `npm ci` in ' +
        'emulator/wx-server-sdk), or point --wx-server-sdk / CLOUD_EMULATOR_WX_SERVER_SDK_DIR at a wx-server-sdk folder.';
      throw err;
    }
  }
};

// Console output of the call in progress, sent back with its reply so the emulator can show it per
// call (the dashboard); it still goes to stderr as well. Output after a call has answered is not kept.
const util = require('util');
const MAX_LOG_LINES = 200;
const MAX_LOG_LINE_CHARS = 4000;
let callLogs = null;
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (callLogs && callLogs.length < MAX_LOG_LINES) {
      let text = util.format(...args);
      if (text.length > MAX_LOG_LINE_CHARS) text = text.slice(0, MAX_LOG_LINE_CHARS) + '…';
      callLogs.push({ level, text });
    }
    original(...args);
  };
}

let mainFunction = null;

async function loadMain() {
  if (mainFunction) return mainFunction;
  let exported;
  try {
    exported = require(modulePath);
  } catch (err) {
    // An ES module ("type": "module" or .mjs) cannot be required on Node 20; import it instead.
    if (!err || err.code !== 'ERR_REQUIRE_ESM') throw err;
    exported = await import(pathToFileURL(modulePath).href);
  }
  let main = exported && exported.main;
  if (typeof main !== 'function' && exported && exported.default) main = exported.default.main;
  if (typeof main !== 'function') {
    throw new TypeError(`exports.main is not a function in ${path.basename(modulePath)}`);
  }
  mainFunction = main;
  return main;
}

async function handle(request) {
  const logs = [];
  callLogs = logs;
  const reply = (message) => {
    callLogs = null;
    sendReply({ ...message, logs });
  };
  const { id, event, context, env } = request;
  for (const [key, value] of Object.entries(env || {})) process.env[key] = String(value);
  let result;
  try {
    const main = await loadMain();
    // Loading the code (a cold start) is the platform's init phase: the call's time limit starts now.
    sendReply({ id, status: 'started' }); // not the final reply: console capture goes on
    result = await main(event, context);
  } catch (err) {
    reply({ id, status: 'threw', message: describeError(err) });
    return;
  }
  let text;
  try {
    text = result === undefined ? 'null' : JSON.stringify(result);
  } catch (err) {
    reply({
      id,
      status: 'nonjson',
      message: `The function's return value cannot be converted to JSON: ${err && err.message}`,
    });
    return;
  }
  if (text === undefined) {
    reply({
      id,
      status: 'nonjson',
      message: `The function's return value cannot be converted to JSON: a ${typeof result} is not a JSON value`,
    });
    return;
  }
  reply({ id, status: 'ok', result: text });
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (!line) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    sendReply({ id: null, status: 'protocol', message: `bad request line: ${err.message}` });
    return;
  }
  handle(request).catch((err) => sendReply({ id: request.id, status: 'threw', message: describeError(err) }));
});
// The emulator went away (or retired this worker): nothing more will come.
lines.on('close', () => process.exit(0));

sendReply({ status: 'ready' });
