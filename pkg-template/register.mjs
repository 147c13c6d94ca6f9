// `import 'taro-cloud-wasm/register'`: makes `Taro.cloud` this package's cloud on the Taro object pages get.
// Taro's H5 builds alias '@tarojs/taro' to a plain object without `cloud` (its `cloud` named export is a class
// of stubs), so `Taro.cloud.init()` would throw; inside a mini-program Taro already set `Taro.cloud = wx.cloud`,
// and that is kept. Importing it twice (or from two entries) changes nothing the second time.
// A default import, as pages write it: Taro's babel plugin (transform-taroapi) rewrites imports of
// '@tarojs/taro' in H5 builds and drops namespace imports.
import taroModule from '@tarojs/taro';
import { cloud } from './index.mjs';

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
export function register(taro = taroModule) {
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

export { cloud };
