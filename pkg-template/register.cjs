'use strict';
// CommonJS form of register.mjs (same logic; keep the two in step): `require('taro-cloud-wasm/register')`.
const taroModule = require('@tarojs/taro');
const { cloud } = require('./index.cjs');

/**
 * The Taro object behind a module: bundlers hand a namespace (or, from a prebundled "type": "module" remote in
 * webpack's dev server, a namespace whose `default` is again a getter-only namespace) — unwrap `default` until
 * an ordinary object, the one `import Taro from '@tarojs/taro'` gives pages.
 */
function taroObject(candidate) {
  for (let depth = 0; depth < 4 && candidate; depth++) {
    const inner = candidate.default;
    const isNamespace = candidate[Symbol.toStringTag] === 'Module' || candidate.__esModule === true;
    if (!isNamespace || inner == null || inner === candidate) break;
    candidate = inner;
  }
  return candidate;
}

/**
 * Sets `taro.cloud` (default: the `@tarojs/taro` import; a module namespace is unwrapped) unless it already holds
 * a cloud (ours, or a real wx.cloud); the cloud `taro` holds afterwards.
 */
function register(taro = taroModule) {
  taro = taroObject(taro);
  if (!taro || (typeof taro !== 'object' && typeof taro !== 'function')) {
    throw new TypeError("taro-cloud-wasm/register: '@tarojs/taro' gave no Taro object to put `cloud` on");
  }
  const current = taro.cloud;
  // A real cloud is an object with init(); Taro H5's stub export is a class (a function) and is replaced.
  if (current && typeof current === 'object' && typeof current.init === 'function') return current;
  try {
    taro.cloud = cloud;
    // A getter-only `cloud` (configurable) ignores or refuses the assignment: define the value instead.
    if (taro.cloud !== cloud) Object.defineProperty(taro, 'cloud', { value: cloud, writable: true, configurable: true, enumerable: true });
  } catch (cause) {
    try {
      Object.defineProperty(taro, 'cloud', { value: cloud, writable: true, configurable: true, enumerable: true });
    } catch {
      throw new TypeError('taro-cloud-wasm/register: cannot set Taro.cloud on this Taro object (' + cause.message + ')');
    }
  }
  return taro.cloud;
}

register();

exports.cloud = cloud;
exports.register = register;
