'use strict';
// cloud-emulator's wx-server-sdk: what `require('wx-server-sdk')` gives a function run by the emulator.
// It talks to the emulator over HTTP with the per-run admin token (CLOUD_EMULATOR_URL,
// CLOUD_EMULATOR_ADMIN_TOKEN), so database calls have admin rights (collection rules do not apply).
// Covered: init, DYNAMIC_CURRENT_ENV, getWXContext, callFunction, database() (collection/doc/where/
// orderBy/skip/limit/field/get/count/add/update/set/remove, command, serverDate, RegExp, Geo, aggregate),
// storage (uploadFile, downloadFile, getTempFileURL, deleteFile).
// Not covered: transactions, watch (they reject with a clear message).
// Storage runs as the admin, like wx-server-sdk: the storage rules do not apply, and files it creates
// belong to the admin (to users they are someone else's files), not to the calling user.

const DYNAMIC_CURRENT_ENV = Symbol.for('DYNAMIC_CURRENT_ENV');
const ERR_CODES = {
  INVALID_PARAM: -501007,
  INVALID_ENV: -501005,
  DATABASE_REQUEST_FAILED: -502001,
  DATABASE_INVALID_OPERRATOR: -502002,
  DATABASE_PERMISSION_DENIED: -502003,
  DATABASE_COLLECTION_EXCEED_LIMIT: -502004,
  DATABASE_COLLECTION_NOT_EXIST: -502005,
  DATABASE_COLLECTION_ALREADY_EXIST: -502006,
  FUNCTION_NOT_FOUND: -501000,
  FUNCTIONS_EXECUTE_FAIL: -504002,
  FUNCTIONS_REQUEST_FAIL: -504001,
  STORAGE_REQUEST_FAIL: -503001,
  STORAGE_EXCEED_AUTHORITY: -503002,
  STORAGE_FILE_NONEXIST: -503003,
  STORAGE_SIGN_PARAM_INVALID: -503004,
  PERMISSION_DENIED: -501023,
};
// wx's descriptions of the errCodes storage calls report (`<api>:fail <errCode> <description>. <detail>`).
const ERR_DESCRIPTIONS = {
  [-403001]: 'max upload file size exceeded',
  [-501001]: 'resource system error',
  [-501005]: 'invalid env',
  [-501007]: 'invalid parameters',
  [-501012]: 'invalid api name',
  [-501023]: 'permission denied',
  [-503001]: 'storage request fail',
  [-503002]: 'storage permission denied',
  [-503003]: 'storage file not exists',
  [-503004]: 'storage invalid sign parameter',
};
// At most this many files per getTempFileURL / deleteFile call, as wx's server API states.
const STORAGE_MAX_ITEMS = 50;
const SERVER_MAX_LIMIT = 100;

let initConfig = {};

function cloudError(api, code, message) {
  const errCode = typeof code === 'number' ? code : ERR_CODES[code] || -501001;
  const err = new Error(`${api}:fail ${errCode} ${message}`);
  err.errCode = errCode;
  err.errMsg = err.message;
  if (typeof code === 'string') err.code = code;
  return err;
}

function resolveEnv(env, service) {
  let value = env === undefined ? initConfig.env : env;
  if (value && typeof value === 'object' && value !== DYNAMIC_CURRENT_ENV) {
    value = value[service] || value.default;
  }
  if (value === undefined || value === null || value === DYNAMIC_CURRENT_ENV) return process.env.TCB_ENV;
  return String(value);
}

async function post(path, body) {
  const base = process.env.CLOUD_EMULATOR_URL;
  const token = process.env.CLOUD_EMULATOR_ADMIN_TOKEN;
  if (!base || !token) throw new Error('wx-server-sdk (cloud-emulator): not running inside the emulator');
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new Error(`wx-server-sdk (cloud-emulator): HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
}

async function action(api, env, name, params) {
  const answer = await post(`/web?env=${encodeURIComponent(env)}`, {
    action: name,
    dataVersion: '2020-01-10',
    env,
    access_token: process.env.CLOUD_EMULATOR_ADMIN_TOKEN,
    ...params,
  });
  if (answer.code) throw cloudError(api, answer.code, answer.message);
  return answer;
}

// Promise or callbacks (success/fail/complete), as wx APIs do.
function dual(options, run) {
  const promise = Promise.resolve().then(run);
  if (options && (options.success || options.fail || options.complete)) {
    promise.then(
      (res) => {
        if (options.success) options.success(res);
        if (options.complete) options.complete(res);
      },
      (err) => {
        if (options.fail) options.fail(err);
        if (options.complete) options.complete(err);
      },
    );
    return undefined;
  }
  return promise;
}

// ---- values -------------------------------------------------------------------------------------

class ServerDate {
  constructor(options) {
    this.options = { offset: (options && options.offset) || 0 };
  }
}
class DbRegExp {
  constructor(options) {
    if (!options || typeof options.regexp !== 'string') throw new TypeError('regexp must be a string');
    this.regexp = options.regexp;
    this.options = options.options || '';
  }
}

function checkPoint(lng, lat) {
  if (typeof lng !== 'number' || lng < -180 || lng > 180) throw new TypeError('longitude should be a number ranges from -180 to 180');
  if (typeof lat !== 'number' || lat < -90 || lat > 90) throw new TypeError('latitude should be a number ranges from -90 to 90');
}
class GeoPoint {
  constructor(lng, lat) {
    if (lng && typeof lng === 'object') [lng, lat] = lng.coordinates;
    checkPoint(lng, lat);
    this.longitude = lng;
    this.latitude = lat;
  }
  toJSON() { return { type: 'Point', coordinates: [this.longitude, this.latitude] }; }
  toString() { return JSON.stringify(this.toJSON()); }
}
function geoClass(type, field) {
  return class {
    constructor(value) {
      this[field] = value && value.type === type ? value.coordinates : value;
    }
    toJSON() {
      const plain = (v) => (v && typeof v.toJSON === 'function' ? v.toJSON().coordinates : Array.isArray(v) ? v.map(plain) : v);
      return { type, coordinates: plain(this[field]) };
    }
    toString() { return JSON.stringify(this.toJSON()); }
  };
}
const GeoClasses = {
  Point: GeoPoint,
  MultiPoint: geoClass('MultiPoint', 'points'),
  LineString: geoClass('LineString', 'points'),
  MultiLineString: geoClass('MultiLineString', 'lines'),
  Polygon: geoClass('Polygon', 'lines'),
  MultiPolygon: geoClass('MultiPolygon', 'polygons'),
};
const Geo = {};
for (const [name, Cls] of Object.entries(GeoClasses)) {
  Geo[name] = function geo(...args) { return new Cls(...args); };
}

function isGeo(v) { return Object.values(GeoClasses).some((Cls) => v instanceof Cls); }
function isPlainObject(v) {
  return v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

// ---- commands -----------------------------------------------------------------------------------

class QueryCommand {
  constructor(op, operand) { this.op = op; this.operand = operand; }
  and(...more) { return new LogicCommand('$and', [this, ...flat(more)]); }
  or(...more) { return new LogicCommand('$or', [this, ...flat(more)]); }
}
class LogicCommand {
  constructor(op, operands) { this.op = op; this.operands = operands; }
  and(...more) { return new LogicCommand('$and', [this, ...flat(more)]); }
  or(...more) { return new LogicCommand('$or', [this, ...flat(more)]); }
}
class UpdateCommand {
  constructor(op, operand) { this.op = op; this.operand = operand; }
}
function flat(args) { return args.length === 1 && Array.isArray(args[0]) ? args[0] : args; }

const q = (op) => (operand) => new QueryCommand(op, operand);
const u = (op) => (operand) => new UpdateCommand(op, operand);
const command = {
  eq: q('$eq'), neq: q('$ne'), lt: q('$lt'), lte: q('$lte'), gt: q('$gt'), gte: q('$gte'),
  in: q('$in'), nin: q('$nin'), exists: q('$exists'), size: q('$size'), all: q('$all'),
  elemMatch: q('$elemMatch'), mod: q('$mod'), expr: (e) => new QueryCommand('$expr', e),
  not: (cmd) => new QueryCommand('$not', cmd),
  and: (...a) => new LogicCommand('$and', flat(a)),
  or: (...a) => new LogicCommand('$or', flat(a)),
  nor: (...a) => new LogicCommand('$nor', flat(a)),
  geoNear: (o) => new QueryCommand('$nearSphere', o),
  geoWithin: (o) => new QueryCommand('$geoWithin', o),
  geoIntersects: (o) => new QueryCommand('$geoIntersects', o),
  set: u('$set'), remove: () => new UpdateCommand('$unset', ''), inc: u('$inc'), mul: u('$mul'),
  min: u('$min'), max: u('$max'), rename: u('$rename'), pull: u('$pull'), pullAll: u('$pullAll'),
  push: (...a) => new UpdateCommand('$push', a.length === 1 ? a[0] : a),
  unshift: (...a) => new UpdateCommand('$unshift', flat(a)),
  addToSet: u('$addToSet'), pop: () => new UpdateCommand('$pop', 1), shift: () => new UpdateCommand('$pop', -1),
  project: { slice: (n) => ({ $slice: n }) },
  aggregate: new Proxy({}, { get: (_, name) => (...args) => ({ [`$${name === 'neq' ? 'ne' : name}`]: args.length === 1 ? args[0] : args }) }),
};

function encodeValue(v) {
  if (v instanceof Date) return { $date: v.getTime() };
  if (v instanceof RegExp) return { $regex: v.source, $options: v.flags };
  if (v instanceof DbRegExp) return { $regex: v.regexp, $options: v.options };
  if (v instanceof ServerDate) return { $date: { offset: v.options.offset } };
  if (isGeo(v)) return v.toJSON();
  if (v instanceof QueryCommand || v instanceof LogicCommand) return encodeOperator(v);
  if (v instanceof UpdateCommand) throw new TypeError('update commands are not allowed here');
  if (Array.isArray(v)) return v.map(encodeValue);
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = encodeValue(x);
    return out;
  }
  return v;
}

function encodeOperator(cmd) {
  if (cmd instanceof LogicCommand) throw new TypeError('nested logic commands need a field');
  switch (cmd.op) {
    case '$not': return { $not: encodeOperator(cmd.operand) };
    case '$elemMatch': return { $elemMatch: encodeQuery(cmd.operand) };
    case '$nearSphere': {
      const o = cmd.operand || {};
      const out = { $geometry: encodeValue(o.geometry) };
      if (o.maxDistance !== undefined) out.$maxDistance = o.maxDistance;
      if (o.minDistance !== undefined) out.$minDistance = o.minDistance;
      return { $nearSphere: out };
    }
    case '$geoWithin': case '$geoIntersects': return { [cmd.op]: { $geometry: encodeValue(cmd.operand.geometry) } };
    default: return { [cmd.op]: encodeValue(cmd.operand) };
  }
}

function fieldLogic(field, cmd) {
  return {
    [cmd.op]: cmd.operands.map((c) => (c instanceof LogicCommand ? fieldLogic(field, c) : { [field]: encodeOperator(c) })),
  };
}

function encodeQuery(query) {
  if (query instanceof LogicCommand) return { [query.op]: query.operands.map(encodeQuery) };
  const out = {};
  const and = [];
  const walk = (obj, prefix) => {
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      if (value instanceof LogicCommand) {
        const logic = fieldLogic(path, value);
        if (value.op === '$and') and.push(...logic.$and);
        else if (out[value.op] === undefined) out[value.op] = logic[value.op];
        else and.push(logic);
      } else if (value instanceof QueryCommand) {
        out[path] = encodeOperator(value);
      } else if (isPlainObject(value) && Object.keys(value).length > 0) {
        walk(value, path);
      } else {
        out[path] = encodeValue(value);
      }
    }
  };
  walk(query || {}, '');
  if (and.length) out.$and = and;
  return out;
}

function encodeUpdate(data) {
  const out = {};
  const put = (op, path, value) => { (out[op] = out[op] || {})[path] = value; };
  const walk = (obj, prefix) => {
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      if (value instanceof UpdateCommand) {
        const { op, operand } = value;
        if (op === '$push' || op === '$unshift') {
          const spec = isPlainObject(operand) && 'each' in operand ? operand : { each: Array.isArray(operand) ? operand : [operand] };
          const enc = { $each: encodeValue(spec.each) };
          if (op === '$unshift') enc.$position = 0;
          if (spec.position !== undefined) enc.$position = spec.position;
          if (spec.sort !== undefined) enc.$sort = spec.sort;
          if (spec.slice !== undefined) enc.$slice = spec.slice;
          put('$push', path, enc);
        } else if (op === '$addToSet' && isPlainObject(operand) && 'each' in operand) {
          put(op, path, { $each: encodeValue(operand.each) });
        } else if (op === '$pull' && (operand instanceof QueryCommand || operand instanceof LogicCommand)) {
          put(op, path, encodeOperator(operand));
        } else {
          put(op, path, op === '$set' ? encodeValue(operand) : encodeValue(operand));
        }
      } else if (isPlainObject(value) && Object.keys(value).length > 0) {
        walk(value, path);
      } else {
        put('$set', path, encodeValue(value));
      }
    }
  };
  walk(data, '');
  return out;
}

function hasUpdateCommand(v) {
  if (v instanceof UpdateCommand) return true;
  if (Array.isArray(v)) return v.some(hasUpdateCommand);
  if (isPlainObject(v)) return Object.values(v).some(hasUpdateCommand);
  return false;
}

function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '$date' && typeof v.$date === 'number') return new Date(v.$date);
    if (v.type === 'Point' && Array.isArray(v.coordinates) && keys.length === 2) {
      try { return new GeoPoint(v.coordinates[0], v.coordinates[1]); } catch (_) { /* keep as is */ }
    }
    const out = {};
    for (const k of keys) out[k] = decode(v[k]);
    return out;
  }
  return v;
}

function decodeCanonical(v) {
  if (Array.isArray(v)) return v.map(decodeCanonical);
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [k] = keys;
      if (k === '$numberInt' || k === '$numberLong' || k === '$numberDouble' || k === '$numberDecimal') return Number(v[k]);
      if (k === '$oid') return v[k];
      if (k === '$date') {
        const d = v[k];
        return new Date(typeof d === 'object' && d ? Number(d.$numberLong) : d);
      }
      if (k === '$regularExpression') return new RegExp(v[k].pattern, v[k].options);
    }
    const out = {};
    for (const key of keys) out[key] = decodeCanonical(v[key]);
    return out;
  }
  return v;
}

// ---- database -----------------------------------------------------------------------------------

class Query {
  constructor(db, name, state) {
    this._db = db;
    this.collectionName = name;
    this._state = state || { where: null, order: [], offset: 0, limit: undefined, projection: undefined };
  }
  _with(change) { return new Query(this._db, this.collectionName, { ...this._state, ...change }); }
  where(condition) {
    if (!condition || typeof condition !== 'object') throw new TypeError('query condition must be an object');
    const where = this._state.where ? new LogicCommand('$and', [this._state.where, condition]) : condition;
    return this._with({ where });
  }
  orderBy(field, direction) {
    return this._with({ order: [...this._state.order, { field, direction: direction === 'desc' ? 'desc' : 'asc' }] });
  }
  skip(n) { return this._with({ offset: n }); }
  limit(n) { return this._with({ limit: n }); }
  field(projection) {
    const out = {};
    for (const [k, v] of Object.entries(projection || {})) {
      if (v === true || v === 1) out[k] = 1;
      else if (v === false || v === 0) out[k] = 0;
      else if (v && typeof v === 'object') out[k] = v;
    }
    return this._with({ projection: out });
  }
  _query() {
    const w = this._state.where;
    if (!w) return {};
    return w instanceof LogicCommand && w.op === '$and' ? { $and: w.operands.map(encodeQuery) } : encodeQuery(w);
  }
  get(options) {
    return dual(options, async () => {
      const limit = Math.min(this._state.limit === undefined ? SERVER_MAX_LIMIT : this._state.limit, SERVER_MAX_LIMIT);
      const params = { collectionName: this.collectionName, queryType: 'WHERE', query: this._query(), limit };
      if (this._state.order.length) params.order = this._state.order;
      if (this._state.offset) params.offset = this._state.offset;
      if (this._state.projection) params.projection = this._state.projection;
      const res = await action('collection.get', this._db._env, 'database.queryDocument', params);
      return { data: decode(res.data.list), errMsg: 'collection.get:ok' };
    });
  }
  count(options) {
    return dual(options, async () => {
      const res = await action('collection.count', this._db._env, 'database.countDocument', {
        collectionName: this.collectionName, queryType: 'WHERE', query: this._query(),
      });
      return { total: res.data.total, errMsg: 'collection.count:ok' };
    });
  }
  update(options) {
    return dual(options, async () => {
      if (!this._state.where) throw cloudError('collection.update', 'INVALID_PARAM', 'query condition must be provided');
      const res = await action('collection.update', this._db._env, 'database.updateDocument', {
        collectionName: this.collectionName, queryType: 'WHERE', query: this._query(),
        multi: true, merge: true, upsert: false, data: encodeUpdate((options && options.data) || {}),
      });
      return { stats: { updated: res.data.updated }, errMsg: 'collection.update:ok' };
    });
  }
  remove(options) {
    return dual(options, async () => {
      if (!this._state.where) throw cloudError('collection.remove', 'INVALID_PARAM', 'query condition must be provided and not be empty');
      const res = await action('collection.remove', this._db._env, 'database.deleteDocument', {
        collectionName: this.collectionName, queryType: 'WHERE', query: this._query(), multi: true,
      });
      return { stats: { removed: res.data.deleted }, errMsg: 'collection.remove:ok' };
    });
  }
  watch() { throw new Error('watch is not available in cloud functions'); }
}

class CollectionReference extends Query {
  doc(id) {
    if (id === undefined || id === null || id === '') throw new TypeError('collection.doc:fail docId must not be empty');
    return new DocumentReference(this._db, this.collectionName, id);
  }
  add(options) {
    return dual(options, async () => {
      const data = options && options.data;
      if (!data || typeof data !== 'object') throw cloudError('collection.add', 'INVALID_PARAM', 'data must be an object');
      const res = await action('collection.add', this._db._env, 'database.addDocument', {
        collectionName: this.collectionName, data: encodeValue(data),
      });
      if (Array.isArray(data)) return { _ids: res.data.insertedIds, errMsg: 'collection.add:ok' };
      return { _id: res.data._id, errMsg: 'collection.add:ok' };
    });
  }
  aggregate() { return new Aggregate(this._db, this.collectionName, []); }
}

class DocumentReference {
  constructor(db, name, id) {
    this._db = db;
    this.collectionName = name;
    this._id = id;
    this._projection = undefined;
  }
  field(projection) { this._projection = new Query(this._db, this.collectionName).field(projection)._state.projection; return this; }
  _params(extra) { return { collectionName: this.collectionName, queryType: 'DOC', query: { _id: this._id }, multi: false, ...extra }; }
  get(options) {
    return dual(options, async () => {
      const res = await action('document.get', this._db._env, 'database.queryDocument', this._params({ projection: this._projection || {} }));
      const list = decode(res.data.list);
      if (!list.length) {
        throw cloudError('document.get', -502001, `document.get:fail cannot find document with _id ${this._id}, please make sure that the document exists and you have the corresponding access permission`);
      }
      return { data: list[0], errMsg: 'document.get:ok' };
    });
  }
  set(options) {
    return dual(options, async () => {
      const data = options && options.data;
      if (!data || typeof data !== 'object' || Array.isArray(data)) throw cloudError('document.set', 'INVALID_PARAM', 'data must be an object');
      if (hasUpdateCommand(data)) throw cloudError('document.set', 'INVALID_PARAM', 'update operator complicit');
      const replacement = encodeValue(data);
      delete replacement._id;
      const res = await action('document.set', this._db._env, 'database.updateDocument', this._params({ merge: false, upsert: true, data: replacement }));
      const created = res.data.upserted_id !== null && res.data.upserted_id !== undefined ? 1 : 0;
      return { _id: this._id, stats: { updated: res.data.updated, created }, errMsg: 'document.set:ok' };
    });
  }
  update(options) {
    return dual(options, async () => {
      const data = (options && options.data) || {};
      if ('_id' in data) throw cloudError('document.update', 'INVALID_PARAM', '不能更新_id的值');
      const res = await action('document.update', this._db._env, 'database.updateDocument', this._params({ merge: true, upsert: false, data: encodeUpdate(data) }));
      return { stats: { updated: res.data.updated }, errMsg: 'document.update:ok' };
    });
  }
  remove(options) {
    return dual(options, async () => {
      const res = await action('document.remove', this._db._env, 'database.deleteDocument', this._params({}));
      return { stats: { removed: res.data.deleted }, errMsg: 'document.remove:ok' };
    });
  }
  watch() { throw new Error('watch is not available in cloud functions'); }
}

class Aggregate {
  constructor(db, name, stages) { this._db = db; this.collectionName = name; this._stages = stages; }
  _add(key, value) { return new Aggregate(this._db, this.collectionName, [...this._stages, { stageKey: key, stageValue: JSON.stringify(value) }]); }
  match(q) { return new Aggregate(this._db, this.collectionName, [...this._stages, { stageKey: '$match', stageValue: JSON.stringify(encodeQuery(q)) }]); }
  end(options) {
    return dual(options, async () => {
      const res = await action('collection.aggregate', this._db._env, 'database.aggregate', { collectionName: this.collectionName, stages: this._stages });
      return { list: JSON.parse(res.data.list).map((s) => decodeCanonical(JSON.parse(s))), errMsg: 'collection.aggregate:ok' };
    });
  }
}
for (const stage of ['project', 'group', 'sort', 'skip', 'limit', 'count', 'unwind', 'addFields', 'lookup', 'replaceRoot', 'sample', 'bucket']) {
  Aggregate.prototype[stage] = function addStage(value) { return this._add(`$${stage}`, value); };
}

class Database {
  constructor(config) {
    this.config = config || {};
    this._env = resolveEnv(this.config.env, 'database');
    this.command = command;
    this.Geo = Geo;
  }
  collection(name) {
    if (!name || typeof name !== 'string') throw new TypeError('collectionName must be provided');
    return new CollectionReference(this, name);
  }
  serverDate(options) { return new ServerDate(options); }
  RegExp(options) { return new DbRegExp(options); }
  createCollection(name) {
    return action('database.createCollection', this._env, 'database.addCollection', { collectionName: name })
      .then(() => ({ errMsg: 'createCollection:ok' }));
  }
  runTransaction() { return Promise.reject(new Error('transactions are not supported by cloud-emulator')); }
  startTransaction() { return Promise.reject(new Error('transactions are not supported by cloud-emulator')); }
}

// ---- storage ------------------------------------------------------------------------------------

// An Error as wx-server-sdk rejects with: errMsg `<api>:fail <errCode> <description>. <detail>`.
function storageError(api, code, detail) {
  const errCode = typeof code === 'number' ? code : ERR_CODES[code] || -501001;
  const description = ERR_DESCRIPTIONS[errCode];
  const err = new Error(description ? `${api}:fail ${errCode} ${description}. ${detail}` : `${api}:fail ${errCode} ${detail}`);
  err.errCode = errCode;
  err.errMsg = err.message;
  if (typeof code === 'string') err.code = code;
  return err;
}

async function storageAction(api, env, name, params) {
  const answer = await post(`/web?env=${encodeURIComponent(env)}`, {
    action: name,
    dataVersion: '2020-01-10',
    env,
    access_token: process.env.CLOUD_EMULATOR_ADMIN_TOKEN,
    ...params,
  });
  if (answer.code) throw storageError(api, answer.code, answer.message || answer.code);
  return answer.data || {};
}

function storageEnv(options) {
  return resolveEnv(options && options.config && options.config.env, 'storage');
}

function xmlField(body, tag) {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body);
  return match ? match[1].trim() : undefined;
}

// A refused upload: too large → -403001, refused credentials or rule → -503002, else -503001.
function uploadFailure(status, body) {
  const cosCode = xmlField(body, 'Code');
  let errCode = ERR_CODES.STORAGE_REQUEST_FAIL;
  if (cosCode === 'EntityTooLarge' || status === 413) errCode = -403001;
  else if (cosCode === 'AccessDenied' || cosCode === 'SignatureDoesNotMatch' || status === 403) errCode = ERR_CODES.STORAGE_EXCEED_AUTHORITY;
  const err = storageError('uploadFile', errCode, `status ${status}, error: ${body.trim()};`);
  if (cosCode) err.code = cosCode;
  return err;
}

function isStream(value) {
  return value !== null && typeof value === 'object' && typeof value.pipe === 'function' && typeof value[Symbol.asyncIterator] === 'function';
}

// The bytes to PUT: a Buffer (or other byte view, or a string) as is; a readable stream is streamed.
function uploadBody(content) {
  if (Buffer.isBuffer(content) || content instanceof Uint8Array) return content;
  if (ArrayBuffer.isView(content)) return new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
  if (content instanceof ArrayBuffer) return new Uint8Array(content);
  if (typeof content === 'string') return Buffer.from(content);
  if (isStream(content)) return content;
  return undefined;
}

// The fileList of getTempFileURL / deleteFile: an array of at most 50 items.
function checkFileList(api, fileList) {
  if (!Array.isArray(fileList)) throw storageError(api, 'INVALID_PARAM', 'fileList must be an array');
  if (fileList.length > STORAGE_MAX_ITEMS) {
    throw storageError(api, 'INVALID_PARAM', `fileList exceed max length ${STORAGE_MAX_ITEMS}`);
  }
}

// wx's per-item `status` (0 or the errCode) and `errMsg` ('ok' or the reason).
function itemOutcome(item) {
  if (item && item.code === 'SUCCESS') return { status: 0, errMsg: 'ok' };
  const code = (item && item.code) || 'STORAGE_REQUEST_FAIL';
  return { status: ERR_CODES[code] || -501001, errMsg: (item && item.message) || code };
}

async function tempFileUrls(api, env, fileList) {
  const request = fileList.map((file) => {
    if (typeof file === 'string') return { fileid: file };
    if (file && typeof file === 'object' && typeof file.fileID === 'string') {
      return file.maxAge === undefined ? { fileid: file.fileID } : { fileid: file.fileID, max_age: file.maxAge };
    }
    throw storageError(api, 'INVALID_PARAM', 'fileList items must be fileID strings or {fileID, maxAge} objects');
  });
  if (!request.length) return [];
  const data = await storageAction(api, env, 'storage.batchGetDownloadUrl', { file_list: request });
  const answers = Array.isArray(data.download_list) ? data.download_list : [];
  return request.map((asked, index) => {
    const item = answers[index];
    const { status, errMsg } = itemOutcome(item);
    return {
      fileID: asked.fileid,
      tempFileURL: status === 0 ? item.tempFileURL || item.download_url || '' : '',
      maxAge: status === 0 && typeof item.max_age === 'number' ? item.max_age : asked.max_age,
      status,
      errMsg,
    };
  });
}

function uploadFile(options) {
  return dual(options, async () => {
    const api = 'uploadFile';
    const cloudPath = options && options.cloudPath;
    if (typeof cloudPath !== 'string' || !cloudPath) throw storageError(api, 'INVALID_PARAM', 'cloudPath must be a non-empty string');
    const body = uploadBody(options.fileContent);
    if (body === undefined) throw storageError(api, 'INVALID_PARAM', 'fileContent must be a Buffer or a ReadStream');
    const env = storageEnv(options);
    const meta = await storageAction(api, env, 'storage.getUploadMetadata', { path: cloudPath, method: 'put', headers: {} });
    const response = await fetch(meta.url, {
      method: 'PUT',
      headers: {
        authorization: meta.authorization,
        'x-cos-meta-fileid': meta.cosFileId,
        'x-cos-security-token': meta.token,
      },
      body,
      duplex: 'half',
    });
    const text = await response.text();
    if (!response.ok) throw uploadFailure(response.status, text);
    return { fileID: meta.fileId, statusCode: response.status, errMsg: 'uploadFile:ok' };
  });
}

function downloadFile(options) {
  return dual(options, async () => {
    const api = 'downloadFile';
    const fileID = options && options.fileID;
    if (typeof fileID !== 'string' || !fileID) throw storageError(api, 'INVALID_PARAM', 'fileID must be a non-empty string');
    const [item] = await tempFileUrls(api, storageEnv(options), [fileID]);
    if (item.status !== 0) throw storageError(api, item.status, item.errMsg);
    const response = await fetch(item.tempFileURL);
    const fileContent = Buffer.from(await response.arrayBuffer());
    if (!response.ok) {
      throw storageError(api, 'STORAGE_REQUEST_FAIL', `status ${response.status}, error: ${fileContent.toString('utf8').trim()};`);
    }
    return { fileContent, statusCode: response.status, errMsg: 'downloadFile:ok' };
  });
}

function getTempFileURL(options) {
  return dual(options, async () => {
    const api = 'getTempFileURL';
    const fileList = options && options.fileList;
    checkFileList(api, fileList);
    const items = await tempFileUrls(api, storageEnv(options), fileList);
    return { fileList: items, errMsg: 'getTempFileURL:ok' };
  });
}

function deleteFile(options) {
  return dual(options, async () => {
    const api = 'deleteFile';
    const fileList = options && options.fileList;
    checkFileList(api, fileList);
    if (fileList.some((id) => typeof id !== 'string' || !id)) throw storageError(api, 'INVALID_PARAM', 'fileList items must be fileID strings');
    if (!fileList.length) return { fileList: [], errMsg: 'deleteFile:ok' };
    const data = await storageAction(api, storageEnv(options), 'storage.batchDeleteFile', { fileid_list: fileList });
    const answers = Array.isArray(data.delete_list) ? data.delete_list : [];
    const items = fileList.map((fileID, index) => ({ fileID, ...itemOutcome(answers[index]) }));
    return { fileList: items, errMsg: 'deleteFile:ok' };
  });
}

// ---- cloud --------------------------------------------------------------------------------------

const cloud = {
  DYNAMIC_CURRENT_ENV,
  init(config) { initConfig = { ...(config || {}) }; },
  getWXContext() {
    return {
      OPENID: process.env.WX_OPENID || '',
      APPID: process.env.WX_APPID || '',
      UNIONID: process.env.WX_UNIONID || '',
      ENV: process.env.TCB_ENV || '',
      SOURCE: 'wx_client',
    };
  },
  database(config) { return new Database(config); },
  callFunction(options) {
    return dual(options, async () => {
      if (!options || typeof options.name !== 'string') throw cloudError('cloud.callFunction', 'INVALID_PARAM', 'name must be a string');
      const env = resolveEnv(options.config && options.config.env, 'functions');
      const answer = await post(`/admin/v1/functions/${encodeURIComponent(options.name)}`, {
        env, data: options.data || {}, openid: process.env.WX_OPENID || '', appid: process.env.WX_APPID || '',
      });
      if (answer.code) throw cloudError('cloud.callFunction', answer.code, answer.message);
      return { result: answer.result, requestId: answer.requestId, errMsg: 'cloud.callFunction:ok' };
    });
  },
  uploadFile,
  downloadFile,
  getTempFileURL,
  deleteFile,
  Geo,
};

module.exports = cloud;
