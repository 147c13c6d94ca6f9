// Small assertions shared by the suites: the wx.cloud error shape (api-surface.md §4.4).
import assert from 'node:assert/strict';

/** Asserts `error` is an Error carrying numeric errCode and a string errMsg, and returns it. */
export function assertCloudError(error, errCode, { errMsgStartsWith, errMsgIncludes = [] } = {}) {
  assert.ok(error instanceof Error, `expected an Error, got ${describe(error)}`);
  assert.equal(error.errCode, errCode, `errCode of ${describe(error)}`);
  assert.equal(typeof error.errMsg, 'string', 'errMsg is a string');
  assert.ok(error.message.includes(error.errMsg), `message ${JSON.stringify(error.message)} shows errMsg`);
  if (errMsgStartsWith) {
    assert.ok(error.errMsg.startsWith(errMsgStartsWith), `errMsg ${JSON.stringify(error.errMsg)} starts with ${errMsgStartsWith}`);
  }
  for (const part of [errMsgIncludes].flat()) {
    assert.ok(error.errMsg.includes(part), `errMsg ${JSON.stringify(error.errMsg)} includes ${JSON.stringify(part)}`);
  }
  return error;
}

/** Awaits a promise that must reject, and returns the rejection. */
export async function rejection(promise) {
  assert.ok(promise && typeof promise.then === 'function', 'a Promise was returned');
  try {
    const value = await promise;
    assert.fail(`expected a rejection, got ${describe(value)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error;
  }
}

/** Calls `fn` which must throw synchronously, and returns what it threw. */
export function syncThrow(fn) {
  let thrown;
  let returned;
  try {
    returned = fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) {
    returned?.catch?.(() => {});
    assert.fail(`expected a synchronous throw, got ${describe(returned)}`);
  }
  return thrown;
}

export function describe(value) {
  if (value instanceof Error) return `${value.constructor.name}(${JSON.stringify({ message: value.message, errCode: value.errCode, errMsg: value.errMsg })})`;
  try {
    return JSON.stringify(value)?.slice(0, 300) ?? String(value);
  } catch {
    return String(value);
  }
}
