// Conformance of the database API: the official @cloudbase/js-sdk 3.7.0 browser build (CLOUD_API mode, the
// /web action protocol) and taro-cloud-wasm run the same script against one emulator — each in its own
// collection, since they sign in as different anonymous users — and must see the same documents, counts and
// results. The query and update languages are built with each SDK's own `db.command`.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { JS_TESTS_DIR, addCollections, startEmulator } from './helpers/emulator.mjs';

const ENV = 'db-conformance-env';
let emulator;
let official;
let ours;

/** Adapters that give both SDKs one calling convention (wx takes `{data}`, CloudBase the data itself). */
function officialAdapter(db) {
  return {
    db,
    add: (coll, data) => db.collection(coll).add(data),
    get: (query) => query.get().then((res) => res.data),
    count: (query) => query.count().then((res) => res.total),
    update: (query, data) => query.update(data).then((res) => res.updated),
    updateDoc: (coll, id, data) => db.collection(coll).doc(id).update(data).then((res) => res.updated),
    remove: (query) => query.remove().then((res) => res.deleted),
    aggregate: (pipeline) => pipeline.end().then((res) => res.data),
  };
}

function oursAdapter(db) {
  return {
    db,
    add: (coll, data) => db.collection(coll).add({ data }).then((res) => ({ id: res._id })),
    get: (query) => query.get().then((res) => res.data),
    count: (query) => query.count().then((res) => res.total),
    update: (query, data) => query.update({ data }).then((res) => res.stats.updated),
    updateDoc: (coll, id, data) => db.collection(coll).doc(id).update({ data }).then((res) => res.stats.updated),
    remove: (query) => query.remove().then((res) => res.stats.removed),
    aggregate: (pipeline) => pipeline.end().then((res) => res.list),
  };
}

/** Documents as comparable plain data: no `_id`/`_openid`, Dates as ms, Geo values as GeoJSON. */
function plain(value) {
  if (value instanceof Date) return { date: value.getTime() };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    if (typeof value.toJSON === 'function' && !(value.constructor === Object)) return plain(value.toJSON());
    const out = {};
    for (const key of Object.keys(value).sort()) {
      if (key !== '_id' && key !== '_openid') out[key] = plain(value[key]);
    }
    return out;
  }
  return value;
}

before(async () => {
  emulator = await startEmulator();
  installBrowserGlobals({ origin: `${emulator.url}/` });
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  const cloudbase = sdk.default ?? sdk;
  const app = cloudbase.init({ env: ENV, endPointMode: 'CLOUD_API' });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  await app.auth().signInAnonymously();
  official = officialAdapter(app.database());

  const { cloud } = await import('taro-cloud-wasm');
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  ours = oursAdapter(cloud.database());
  await addCollections(emulator.url, ENV, ['conf_official', 'conf_ours'], { deviceId: 'conformance0000000000000000000001' });
});
after(async () => {
  await emulator?.stop();
});

/** Runs `script` with both SDKs (each in its collection) and returns both outcomes. */
async function both(script) {
  return [await script(official, 'conf_official'), await script(ours, 'conf_ours')];
}

function seed(sdk) {
  const { Geo } = sdk.db;
  return [1, 2, 3, 4, 5, 6].map((k) => ({
    k,
    tag: k % 2 ? 'odd' : 'even',
    name: ['Apple', 'apricot', 'Banana', 'cherry', 'date', 'Elder'][k - 1],
    arr: Array.from({ length: k % 3 }, (_, i) => i + k),
    sub: { v: k * 10, deep: { w: k % 2 === 0 } },
    when: new Date(1700000000000 + k * 1000),
    loc: new Geo.Point(113 + k / 100, 23 + k / 100),
  }));
}

test('the official SDK and ours see the same documents for the same queries and updates', async () => {
  const [officialLog, oursLog] = await both(async (sdk, coll) => {
    const { db } = sdk;
    const _ = db.command;
    const log = [];
    for (const doc of seed(sdk)) await sdk.add(coll, doc);
    const ks = async (where) =>
      (await sdk.get(db.collection(coll).where(where).orderBy('k', 'asc').limit(20))).map((d) => d.k);
    const queries = {
      gtLt: { k: _.gt(1).and(_.lt(5)) },
      chainedOr: { k: _.lt(2).or(_.gt(5)) },
      inNin: { k: _.in([1, 2, 3]), tag: _.nin(['even']) },
      neq: { tag: _.neq('odd') },
      or: _.or([{ k: 1 }, { 'sub.v': _.gte(50) }]),
      and: _.and([{ k: _.gte(2) }, { k: _.lte(3) }]),
      nor: _.nor([{ tag: 'odd' }, { k: 6 }]),
      not: { k: _.not(_.gt(2)) },
      nested: { sub: { v: _.lte(30), deep: { w: true } } },
      exists: { arr: _.exists(true), k: _.gt(4) },
      size: { arr: _.size(2) },
      all: { arr: _.all([3]) },
      elemMatch: { arr: _.elemMatch(_.gt(5)) },
      mod: { k: _.mod([3, 0]) },
      regex: { name: db.RegExp({ regexp: '^a', options: 'i' }) },
      // The official SDK writes a bare RegExp or value inside a field-level or() without its field (the
      // RegExp even as `{}`); both SDKs agree on the commands-only form, ours also on the plain one below.
      regexOrCommands: { name: _.or([_.eq('Banana'), _.eq('date')]) },
      date: { when: _.gte(new Date(1700000004000)) },
      near: { loc: _.geoNear({ geometry: new db.Geo.Point(113.01, 23.01), maxDistance: 2000 }) },
    };
    for (const [name, where] of Object.entries(queries)) log.push([name, await ks(where)]);
    log.push(['count', await sdk.count(db.collection(coll).where({ tag: 'odd' }))]);
    log.push(['page', (await sdk.get(db.collection(coll).where({ k: _.gt(0) }).orderBy('k', 'desc').skip(1).limit(2).field({ k: true, name: true }))).map(plain)]);
    log.push(['multiUpdate', await sdk.update(db.collection(coll).where({ tag: 'even' }), { sub: { v: _.inc(1) }, arr: _.push([9]), flag: true })]);
    const [first] = await sdk.get(db.collection(coll).where({ k: 1 }));
    log.push(['docUpdate', await sdk.updateDoc(coll, first._id, { name: _.remove(), arr: _.unshift(0), 'sub.v': _.mul(3) })]);
    log.push(['remove', await sdk.remove(db.collection(coll).where({ k: _.gte(5) }))]);
    log.push(['docs', (await sdk.get(db.collection(coll).where({ k: _.gt(0) }).orderBy('k', 'asc'))).map(plain)]);
    const $ = _.aggregate;
    log.push(['aggregate', await sdk.aggregate(db.collection(coll).aggregate().match({ k: _.gt(0) }).group({ _id: '$tag', total: $.sum('$k') }).sort({ _id: 1 }))]);
    // lookup with let + pipeline ($.pipeline() … done()), joined on an expression over the let variables.
    const pipeline = $.pipeline()
      .match(_.expr($.and([$.eq(['$tag', '$$tag']), $.gt(['$k', '$$k'])])))
      .project({ _id: 0, k: 1 })
      .sort({ k: 1 })
      .done();
    log.push(['pipelineStages', pipeline]);
    log.push([
      'lookupPipeline',
      await sdk.aggregate(
        db.collection(coll).aggregate().match({ k: _.lte(4) }).lookup({ from: coll, let: { tag: '$tag', k: '$k' }, pipeline, as: 'later' }).project({ _id: 0, k: 1, later: 1 }).sort({ k: 1 }),
      ),
    ]);
    return log;
  });
  assert.deepEqual(oursLog, officialLog);
  // The script exercised something: the expected values of a few steps.
  const byName = Object.fromEntries(oursLog);
  assert.deepEqual(byName.gtLt, [2, 3, 4]);
  assert.deepEqual(byName.chainedOr, [1, 6]);
  assert.equal(byName.count, 3);
  assert.equal(byName.multiUpdate, 3);
  assert.equal(byName.remove, 2);
  assert.equal(byName.docs.length, 4);
  assert.deepEqual(byName.regexOrCommands, [3, 5]);
  assert.deepEqual(byName.lookupPipeline, [
    { k: 1, later: [{ k: 3 }] },
    { k: 2, later: [{ k: 4 }] },
    { k: 3, later: [] },
    { k: 4, later: [] },
  ]);
});
