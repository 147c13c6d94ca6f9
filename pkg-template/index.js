// The thin shim around the wasm: instantiates it synchronously from the inlined bytes (so apps can call
// cloud.init() at module top level right after import) and shapes the exported `cloud` object.
// The bytes are inlined by scripts/build-pkg.sh as one string whose char codes are the bytes (0-255):
// gzip keeps byte alignment, so it compresses ~25% better than base64.
// Inside WeChat (a global `wx` with `wx.cloud`) the exported `cloud` is `wx.cloud` and no wasm is loaded.
import { initSync, CloudHandle } from './glue/taro_cloud_wasm.js';
import wasmBytes from './glue/wasm-bytes.js';

// `cloud.CloudID(id)`: usable with or without `new`; serializes to the id.
function CloudID(cloudID) {
  if (!(this instanceof CloudID)) return new CloudID(cloudID);
  if (typeof cloudID !== 'string') {
    const error = new TypeError('parameter.cloudID should be string instead of ' + typeof cloudID + ';');
    error.errCode = -401003;
    error.errMsg = error.message;
    throw error;
  }
  this.cloudID = cloudID;
  Object.defineProperty(this, '_internalType', { value: Symbol.for('CLOUD_ID') });
}
CloudID.prototype.toJSON = CloudID.prototype.toString = function () {
  return this.cloudID;
};

// The JS face of one Cloud; closures keep the handle alive exactly as long as this object
// (the wasm side is freed by the glue's FinalizationRegistry: wasm-bindgen --weak-refs).
function expose(handle) {
  return {
    init: (config) => handle.init(config),
    callFunction: (options) => handle.callFunction(options),
    uploadFile: (options) => handle.uploadFile(options),
    downloadFile: (options) => handle.downloadFile(options),
    getTempFileURL: (options) => handle.getTempFileURL(options),
    deleteFile: (options) => handle.deleteFile(options),
    CloudID,
  };
}

function decode(text) {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function createCloud() {
  initSync({ module: decode(wasmBytes) });
  const cloud = expose(CloudHandle.createDefault());
  // `new cloud.Cloud({ resourceEnv, ... })` then `await instance.init()`.
  cloud.Cloud = function Cloud(options) {
    return expose(CloudHandle.createInstance(options));
  };
  return cloud;
}

const wx = typeof globalThis.wx === 'object' && globalThis.wx !== null ? globalThis.wx : undefined;

/** `wx.cloud` / `Taro.cloud` for the web. */
export const cloud = wx && wx.cloud ? wx.cloud : createCloud();
export default cloud;
