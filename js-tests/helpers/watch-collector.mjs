// A watch() listener for the suites: collects snapshots and errors; `until(predicate, what, timeoutMs)` waits
// (bounded, woken by each callback) for a condition. With `noErrors`, any onError fails the wait at once.
import assert from 'node:assert/strict';

export function collect(target, { noErrors = false } = {}) {
  const snapshots = [];
  const errors = [];
  let wake = () => {};
  const listener = target.watch({
    onChange: (snapshot) => {
      snapshots.push(snapshot);
      wake();
    },
    onError: (error) => {
      errors.push(error);
      wake();
    },
  });
  const until = async (predicate, what = 'condition', timeoutMs = 15000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (noErrors) assert.deepEqual(errors.map((e) => e.errMsg), [], 'no watch error');
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; ${snapshots.length} snapshots (last ${JSON.stringify(snapshots.at(-1))}), ` +
            `errors ${errors.map((e) => e.errMsg)}`,
        );
      }
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  const last = () => snapshots.at(-1);
  return { listener, snapshots, errors, until, last };
}
