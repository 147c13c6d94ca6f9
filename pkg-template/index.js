// The thin shim around the wasm: instantiates it synchronously from the inlined bytes (so apps can call
// cloud.init() at module top level right after import) and shapes the exported `cloud` object.
// The bytes are inlined by scripts/build-pkg.sh as one string, a char (code 0-255) per byte through a
// per-build list of swapped byte pairs (scripts/inline-wasm.mjs): gzip keeps byte alignment, so it compresses
// ~25% better than base64, and the frequent bytes are ASCII chars no bundler needs to escape.
// Inside WeChat (a global `wx` with `wx.cloud`) the exported `cloud` is `wx.cloud` and no wasm is loaded.
//
// Trap recovery: should the wasm ever trap (a WebAssembly.RuntimeError: a bug, or a stack or memory
// exhausted by input the Rust side failed to refuse), its memory may be inconsistent, so that instance is
// never used again. The call that trapped fails with errCode -1 and code INTERNAL_ERROR; a fresh instance
// from a fresh copy of the glue (scripts/glue-factory.mjs) serves every later call, with each Cloud's
// init config replayed. Database objects made before the restart throw a clear error: make them again.
import { createGlue } from './glue/factory.js';
import wasmBytes, { swaps } from './glue/wasm-bytes.js';

let glue; // the current copy of the glue and its wasm instance
let generation = 0; // counts instances; a Cloud re-creates its handle when this moves on
let wasmModule; // compiled once, instantiated again after a trap

function start() {
  glue = createGlue();
  glue.initSync({ module: wasmModule });
  generation++;
  // scripts/build-pkg.sh drops this labelled statement (esbuild --drop-labels) when the wasm has no
  // database, so the statics and their name lists leave the bundle too.
  database: if (glue.Database) installDatabaseStatics(glue, generation);
}

function internalError(api, message) {
  const error = new Error(api + ':fail ' + message);
  error.errCode = -1;
  error.errMsg = error.message;
  error.code = 'INTERNAL_ERROR';
  return error;
}

// After a trap in instance `trapped`: retire it and start a fresh one (once, however many calls trapped).
function restart(api, trap, trapped) {
  if (trapped === generation) {
    const old = glue;
    start();
    old.retire(() =>
      internalError(api, 'this object was made before the SDK restarted after an internal error; make it again'),
    );
  }
  return internalError(api, 'internal error (' + trap.message + '); the SDK restarted itself, later calls work');
}

// Runs `call` into the wasm; a trap (thrown, or rejecting the returned Promise) restarts the instance and
// fails this call with errCode -1 instead (as a rejected Promise, or through fail/complete when given).
function guard(api, options, call) {
  const current = generation;
  let result;
  try {
    result = call();
  } catch (error) {
    if (!(error instanceof WebAssembly.RuntimeError)) throw error;
    const failure = restart(api, error, current);
    if (options === undefined) throw failure;
    if (options && (options.success || options.fail || options.complete)) {
      setTimeout(() => {
        try {
          if (typeof options.fail === 'function') options.fail(failure);
        } finally {
          if (typeof options.complete === 'function') options.complete(failure);
        }
      });
      return undefined;
    }
    return Promise.reject(failure);
  }
  if (result instanceof Promise) {
    return result.then(undefined, (error) => {
      throw error instanceof WebAssembly.RuntimeError ? restart(api, error, current) : error;
    });
  }
  return result;
}

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
// (the wasm side is freed by the glue's FinalizationRegistry: wasm-bindgen --weak-refs). After a restart
// the handle is made again in the new instance and the last `init(config)` replayed.
// Storage, database and callContainer methods exist only when the wasm was built with those features.
const OPTIONAL_METHODS = ['uploadFile', 'downloadFile', 'getTempFileURL', 'deleteFile', 'database', 'callContainer'];
function expose(create) {
  let handle = create();
  let made = generation;
  let initialised = false;
  let lastConfig;
  let lane; // callContainer's fast path (src/container.rs), once the handle has one
  const current = () => {
    if (made !== generation) {
      handle = create();
      made = generation;
      lane = undefined;
      if (initialised) handle.init(lastConfig);
    }
    return handle;
  };
  const face = {
    init: (config) => {
      initialised = true;
      lastConfig = config;
      return guard('cloud.init', null, () => current().init(config));
    },
    callFunction: (options) => guard('cloud.callFunction', options, () => current().callFunction(options)),
  };
  for (const name of OPTIONAL_METHODS) {
    if (typeof handle[name] === 'function') {
      // `database(config)` returns an object: a trap while making it is thrown.
      const style = name === 'database' ? () => undefined : (options) => options;
      face[name] = (options) => guard('cloud.' + name, style(options), () => current()[name](options));
    }
  }
  if (face.callContainer) {
    // A Promise-style call the lane can run alone never enters the wasm (see src/container.rs).
    face.callContainer = (options) =>
      guard('cloud.callContainer', options, () => {
        const live = current(); // first: a restarted instance has no lane yet
        return (lane || (lane = live.containerLane()))?.call(options) || live.callContainer(options);
      });
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
const QUERY_METHODS = 'where orderBy limit skip field get count update remove doc add aggregate watch';
const DOCUMENT_METHODS = 'field get set update remove watch';

function defineCalls(Class, names, api, Query) {
  names.split(' ').forEach((name, index) => {
    Object.defineProperty(Class.prototype, name, {
      value: function (first, second) {
        const result = guard(api + '.' + name, undefined, () => this._call(index, first, second));
        // `collection.database` (Taro types it): set by db.collection(), kept by where()/orderBy()/….
        if (result instanceof Query) result.database = this.database || this;
        return result;
      },
      writable: true,
      configurable: true,
    });
  });
}

// Installs the database statics on one copy of the glue (`g`, instance number `made`).
function installDatabaseStatics(g, made) {
  defineCalls(g.Database, DATABASE_METHODS, 'database', g.Query);
  defineCalls(g.Query, QUERY_METHODS, 'collection', g.Query);
  defineCalls(g.DocumentReference, DOCUMENT_METHODS, 'document', g.Query);
  const make = (name, args) => guard('db.command', undefined, () => g.makeCommand(name, args));
  const command = { project: { slice: (value) => make('project.slice', [value]) }, aggregate: {} };
  for (const name of COMMANDS.split(' ')) command[name] = (...args) => make(name, args);
  for (const name of AGGREGATE_OPERATORS.split(' ')) {
    command.aggregate[name] = (param) => make('aggregate.' + name, [param]);
  }
  for (const name of CHAINED.split(' ')) {
    g.Command.prototype[name] = function (...args) {
      return guard('db.command', undefined, () => this._chain(name, args));
    };
  }
  // An SDK value of a retired instance reads as token 0 (no value), so passing it to a new instance's
  // where()/update() fails with a type error instead of naming whatever holds its slot there now.
  for (const Class of [g.Command, g.GeoValue, g.ServerDate, g.DbRegExp]) {
    const token = Object.getOwnPropertyDescriptor(Class.prototype, '__tcw');
    Object.defineProperty(Class.prototype, '__tcw', {
      get() {
        return made === generation ? token.get.call(this) : 0;
      },
      configurable: true,
    });
  }
  const Geo = {};
  for (const name of 'Point LineString Polygon MultiPoint MultiLineString MultiPolygon'.split(' ')) {
    const Factory = function (first, second) {
      return guard('db.Geo.' + name, undefined, () => new g.GeoValue(name, first, second));
    };
    Object.defineProperty(Factory, 'name', { value: name });
    Object.defineProperty(Factory, Symbol.hasInstance, {
      value: (value) => value instanceof g.GeoValue && value._type === name,
    });
    Factory.prototype = g.GeoValue.prototype;
    Geo[name] = Factory;
  }
  const stages = 'addFields bucket bucketAuto count geoNear group limit lookup match project replaceRoot sample skip';
  // `$.pipeline()`: stage values encoded as `aggregate()` encodes them; `done()` gives [{$stage: value}].
  function Pipeline(texts) {
    this._texts = texts;
  }
  Pipeline.prototype.done = function () {
    return this._texts.map(([name, text]) => ({ ['$' + name]: JSON.parse(text) }));
  };
  command.aggregate.pipeline = () => new Pipeline([]);
  // Taro types `sample(size)`, wx `sample({ size })`: a bare number is the size.
  const stageParam = (name, param) => (name === 'sample' && typeof param === 'number' ? { size: param } : param);
  for (const name of (stages + ' sort sortByCount unwind').split(' ')) {
    g.Aggregate.prototype[name] = function (param) {
      return guard('aggregate.' + name, undefined, () => this._stage(name, stageParam(name, param)));
    };
    Pipeline.prototype[name] = function (param) {
      return new Pipeline([...this._texts, [name, glue.stageValue(name, stageParam(name, param))]]);
    };
  }
  Object.defineProperty(g.Database.prototype, 'command', { value: command });
  Object.defineProperty(g.Database.prototype, 'Geo', { value: Geo });
}

function decode(text) {
  const byteOf = new Uint8Array(256).map((_, code) => code);
  for (let i = 0; i < swaps.length; i += 2) {
    byteOf[swaps.charCodeAt(i)] = swaps.charCodeAt(i + 1);
    byteOf[swaps.charCodeAt(i + 1)] = swaps.charCodeAt(i);
  }
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = byteOf[text.charCodeAt(i)];
  return bytes;
}

function createCloud() {
  wasmModule = new WebAssembly.Module(decode(wasmBytes));
  start();
  const cloud = expose(() => glue.CloudHandle.createDefault());
  // `new cloud.Cloud({ resourceEnv, ... })` then `await instance.init()`.
  cloud.Cloud = function Cloud(options) {
    return expose(() => glue.CloudHandle.createInstance(options));
  };
  return cloud;
}

const wx = typeof globalThis.wx === 'object' && globalThis.wx !== null ? globalThis.wx : undefined;

/** `wx.cloud` / `Taro.cloud` for the web. */
export const cloud = wx && wx.cloud ? wx.cloud : createCloud();
export default cloud;
