// The thin shim around the wasm: instantiates it synchronously from the inlined bytes (so apps can call
// cloud.init() at module top level right after import) and shapes the exported `cloud` object.
// The bytes are inlined by scripts/build-pkg.sh as one string whose char codes are the bytes (0-255):
// gzip keeps byte alignment, so it compresses ~25% better than base64.
// Inside WeChat (a global `wx` with `wx.cloud`) the exported `cloud` is `wx.cloud` and no wasm is loaded.
import { initSync, CloudHandle } from './glue/taro_cloud_wasm.js';
// The database classes through the namespace: a build without the `database` feature
// (scripts/build-pkg.sh --variant) has none of them, and then `glue.Database` is undefined.
import * as glue from './glue/taro_cloud_wasm.js';
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
// Storage, database and callContainer methods exist only when the wasm was built with those features.
const OPTIONAL_METHODS = ['uploadFile', 'downloadFile', 'getTempFileURL', 'deleteFile', 'database', 'callContainer'];
function expose(handle) {
  const face = {
    init: (config) => handle.init(config),
    callFunction: (options) => handle.callFunction(options),
  };
  for (const name of OPTIONAL_METHODS) {
    if (typeof handle[name] === 'function') face[name] = (options) => handle[name](options);
  }
  face.CloudID = CloudID;
  return face;
}

// Database statics: the Rust side takes variadic arguments as one array, and Geo classes are callable
// without `new` (wx allows both); `instanceof db.Geo.Point` still holds.
const COMMANDS =
  'eq neq lt lte gt gte in nin all elemMatch exists size mod geoNear geoWithin geoIntersects and or nor not ' +
  'expr set remove inc mul min max rename bit push pop shift unshift pull pullAll addToSet';
const CHAINED = 'eq neq lt lte gt gte in nin all elemMatch exists size mod geoNear geoWithin geoIntersects and or nor';
const AGGREGATE_OPERATORS =
  'abs add addToSet allElementsTrue and anyElementTrue arrayElemAt arrayToObject avg ceil cmp concat concatArrays ' +
  'cond convert dateFromParts dateToParts dateFromString dateToString dayOfMonth dayOfWeek dayOfYear divide eq exp ' +
  'filter first floor gt gte hour ifNull in indexOfArray indexOfBytes indexOfCP isArray isoDayOfWeek isoWeek ' +
  'isoWeekYear last let literal ln log log10 lt lte ltrim map max mergeObjects meta min millisecond minute mod month ' +
  'multiply neq not objectToArray or pow push range reduce reverseArray rtrim second setDifference setEquals ' +
  'setIntersection setIsSubset setUnion size slice split sqrt stdDevPop stdDevSamp strcasecmp strLenBytes strLenCP ' +
  'substr substrBytes substrCP subtract sum switch toBool toDate toDecimal toDouble toInt toLong toObjectId ' +
  'toString toLower toUpper trim trunc type week year zip';

// Builder methods the wasm exports as one `_call(index, …)` per class; the index is the position in
// these lists, which are the `*_METHODS` constants of src/database/bindings.rs (a native test compares).
const DATABASE_METHODS = 'collection serverDate RegExp';
const QUERY_METHODS = 'where orderBy limit skip field get count update remove doc add aggregate';
const DOCUMENT_METHODS = 'field get set update remove';

function defineCalls(Class, names) {
  names.split(' ').forEach((name, index) => {
    Object.defineProperty(Class.prototype, name, {
      value: function (first, second) {
        return this._call(index, first, second);
      },
      writable: true,
      configurable: true,
    });
  });
}

function installDatabaseStatics() {
  defineCalls(glue.Database, DATABASE_METHODS);
  defineCalls(glue.Query, QUERY_METHODS);
  defineCalls(glue.DocumentReference, DOCUMENT_METHODS);
  const command = { project: { slice: (value) => glue.makeCommand('project.slice', [value]) }, aggregate: {} };
  for (const name of COMMANDS.split(' ')) command[name] = (...args) => glue.makeCommand(name, args);
  for (const name of AGGREGATE_OPERATORS.split(' ')) {
    command.aggregate[name] = (param) => glue.makeCommand('aggregate.' + name, [param]);
  }
  for (const name of CHAINED.split(' ')) {
    glue.Command.prototype[name] = function (...args) {
      return this._chain(name, args);
    };
  }
  const Geo = {};
  for (const name of 'Point LineString Polygon MultiPoint MultiLineString MultiPolygon'.split(' ')) {
    const Factory = function (first, second) {
      return new glue.GeoValue(name, first, second);
    };
    Object.defineProperty(Factory, 'name', { value: name });
    Object.defineProperty(Factory, Symbol.hasInstance, {
      value: (value) => value instanceof glue.GeoValue && value._type === name,
    });
    Factory.prototype = glue.GeoValue.prototype;
    Geo[name] = Factory;
  }
  const stages = 'addFields bucket bucketAuto count geoNear group limit lookup match project replaceRoot sample skip';
  for (const name of (stages + ' sort sortByCount unwind').split(' ')) {
    glue.Aggregate.prototype[name] = function (param) {
      return this._stage(name, param);
    };
  }
  Object.defineProperty(glue.Database.prototype, 'command', { value: command });
  Object.defineProperty(glue.Database.prototype, 'Geo', { value: Geo });
}

function decode(text) {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function createCloud() {
  initSync({ module: decode(wasmBytes) });
  // scripts/build-pkg.sh drops this labelled statement (esbuild --drop-labels) when the wasm has no
  // database, so the statics and their name lists leave the bundle too.
  database: if (glue.Database) installDatabaseStatics();
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
