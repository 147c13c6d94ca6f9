// The database API through the built package against a real cloud-emulator (api-surface.md §3, §4.3;
// protocol.md §5, §7): CRUD in both call styles, the query and update languages, Geo, aggregate, result
// shapes and decoding, client-side limits and misuse.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { addCollections, startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection, syncThrow } from './helpers/expect.mjs';

const ENV = 'database-env';
let emulator;
let cloud;
let db;
let _;

/** Runs a callback-style call; resolves with `{ kind: 'success' | 'fail', value, returned }` after `complete`. */
function callbacks(call) {
  return new Promise((resolve) => {
    let outcome;
    const returned = call({
      success: (value) => (outcome = { kind: 'success', value }),
      fail: (value) => (outcome = { kind: 'fail', value }),
      complete: (value) => {
        assert.equal(value, outcome.value, 'complete receives what success/fail received');
        resolve({ ...outcome, returned });
      },
    });
  });
}

before(async () => {
  emulator = await startEmulator();
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  db = cloud.database();
  _ = db.command;
  await addCollections(emulator.url, ENV, ['todos', 'places', 'many', 'agg', 'styles'], { allowExisting: true });
});
after(async () => {
  await emulator?.stop();
});

describe('CRUD and result shapes', () => {
  test('add, doc.get with Date and Geo decoding', async () => {
    const due = new Date(1700000000000);
    const added = await db.collection('todos').add({
      data: { title: 't', due, created: db.serverDate(), loc: db.Geo.Point(113.3, 23.1), nested: { x: 1 }, tags: ['a'] },
    });
    assert.equal(added.errMsg, 'collection.add:ok');
    assert.equal(typeof added._id, 'string');
    const got = await db.collection('todos').doc(added._id).get();
    assert.equal(got.errMsg, 'document.get:ok');
    assert.ok(!Array.isArray(got.data), 'doc.get gives an object');
    assert.equal(got.data._id, added._id);
    assert.ok(got.data.due instanceof Date);
    assert.equal(got.data.due.getTime(), due.getTime());
    assert.ok(got.data.created instanceof Date, 'serverDate is stored as a date');
    assert.ok(Math.abs(got.data.created.getTime() - Date.now()) < 60_000);
    assert.ok(got.data.loc instanceof db.Geo.Point);
    assert.equal(got.data.loc.longitude, 113.3);
    assert.equal(got.data.loc.latitude, 23.1);
    assert.deepEqual(got.data.nested, { x: 1 });
  });

  test('doc.get of a missing document fails; doc.remove of a missing one too', async () => {
    const error = await rejection(db.collection('todos').doc('no-such-doc').get());
    assertCloudError(error, -1, {
      errMsgStartsWith: 'document.get:fail cannot find document with _id no-such-doc',
    });
    const removeError = await rejection(db.collection('todos').doc('no-such-doc').remove());
    assertCloudError(removeError, -1, { errMsgStartsWith: 'document.remove:fail' });
  });

  test('set creates then replaces; update applies operators; remove', async () => {
    const id = 'set-' + randomUUID();
    const created = await db.collection('todos').doc(id).set({ data: { title: 'first', n: 1, arr: [1] } });
    assert.equal(created.errMsg, 'document.set:ok');
    assert.equal(created._id, id);
    assert.deepEqual(created.stats, { updated: 0, created: 1 });
    const replaced = await db.collection('todos').doc(id).set({ data: { title: 'second', n: 5, arr: [1, 2] } });
    assert.deepEqual(replaced.stats, { updated: 1, created: 0 });
    const updated = await db.collection('todos').doc(id).update({
      data: { n: _.inc(2), arr: _.push([3, 4]), title: _.remove(), obj: { k: 'v' }, ts: db.serverDate({ offset: 1000 }) },
    });
    assert.deepEqual(updated, { stats: { updated: 1 }, errMsg: 'document.update:ok' });
    const { data } = await db.collection('todos').doc(id).get();
    assert.equal(data.n, 7);
    assert.deepEqual(data.arr, [1, 2, 3, 4]);
    assert.equal('title' in data, false);
    assert.deepEqual(data.obj, { k: 'v' });
    assert.ok(data.ts instanceof Date);
    const ops = await db.collection('todos').doc(id).update({
      data: { arr: _.pull(2), n: _.mul(2), m: _.max(3), obj: _.set({ whole: true }) },
    });
    assert.equal(ops.stats.updated, 1);
    const after = (await db.collection('todos').doc(id).get()).data;
    assert.deepEqual(after.arr, [1, 3, 4]);
    assert.equal(after.n, 14);
    assert.equal(after.m, 3);
    assert.deepEqual(after.obj, { whole: true });
    const shifted = await db.collection('todos').doc(id).update({ data: { arr: _.shift() } });
    assert.equal(shifted.stats.updated, 1);
    await db.collection('todos').doc(id).update({ data: { arr: _.unshift(0), n: _.rename('count') } });
    const renamed = (await db.collection('todos').doc(id).get()).data;
    assert.deepEqual(renamed.arr, [0, 3, 4]);
    assert.equal(renamed.count, 14);
    const removed = await db.collection('todos').doc(id).remove();
    assert.deepEqual(removed, { stats: { removed: 1 }, errMsg: 'document.remove:ok' });
  });

  test('where().update() and where().remove() on several documents, count', async () => {
    const batch = 'b-' + randomUUID();
    for (let i = 0; i < 5; i++) await db.collection('many').add({ data: { batch, i, done: i < 3 } });
    const count = await db.collection('many').where({ batch }).count();
    assert.deepEqual(count, { total: 5, errMsg: 'collection.count:ok' });
    const updated = await db.collection('many').where({ batch, done: true }).update({ data: { done: false, stats: { views: _.inc(1) } } });
    assert.deepEqual(updated, { stats: { updated: 3 }, errMsg: 'collection.update:ok' });
    assert.equal((await db.collection('many').where({ batch, 'stats.views': 1 }).count()).total, 3);
    const removed = await db.collection('many').where({ batch, i: _.gte(2) }).remove();
    assert.deepEqual(removed, { stats: { removed: 3 }, errMsg: 'collection.remove:ok' });
    assert.equal((await db.collection('many').where({ batch }).count()).total, 2);
  });

  test('get() returns at most 20 documents by default and when asked for more', async () => {
    const batch = 'p-' + randomUUID();
    for (let i = 0; i < 25; i++) await db.collection('many').add({ data: { batch, i } });
    const first = await db.collection('many').where({ batch }).get();
    assert.equal(first.errMsg, 'collection.get:ok');
    assert.equal(first.data.length, 20);
    assert.equal((await db.collection('many').where({ batch }).limit(100).get()).data.length, 20);
    const page = await db.collection('many').where({ batch }).orderBy('i', 'desc').skip(3).limit(5).field({ i: true }).get();
    assert.deepEqual(page.data.map((d) => d.i), [21, 20, 19, 18, 17]);
    assert.deepEqual(Object.keys(page.data[0]).sort(), ['_id', 'i']);
  });

  test('a missing collection fails with -502005', async () => {
    const error = await rejection(db.collection('does-not-exist').get());
    assertCloudError(error, -502005, { errMsgStartsWith: 'collection.get:fail -502005' });
  });
});

describe('the query language', () => {
  const batch = 'q-' + randomUUID();
  const docs = [
    { k: 1, name: 'Apple', tags: ['a', 'b'], size: 2, items: [{ q: 1 }, { q: 5 }], sub: { v: 10 } },
    { k: 2, name: 'apricot', tags: ['b', 'c'], size: 3, items: [{ q: 2 }], sub: { v: 20 } },
    { k: 3, name: 'Banana', tags: ['c'], size: 1, sub: { v: 30 }, extra: true },
    { k: 4, name: 'cherry', tags: [], size: 0, items: [{ q: 9 }], sub: { v: 40 } },
  ];
  before(async () => {
    for (const doc of docs) await db.collection('todos').add({ data: { batch, ...doc } });
  });
  const ks = async (where) =>
    (await db.collection('todos').where({ batch }).where(where).orderBy('k', 'asc').get()).data.map((d) => d.k);

  test('comparison, in/nin, neq', async () => {
    assert.deepEqual(await ks({ k: _.gt(1).and(_.lt(4)) }), [2, 3]);
    assert.deepEqual(await ks({ k: _.gte(3) }), [3, 4]);
    assert.deepEqual(await ks({ k: _.lte(1) }), [1]);
    assert.deepEqual(await ks({ k: _.eq(2) }), [2]);
    assert.deepEqual(await ks({ k: _.neq(2) }), [1, 3, 4]);
    assert.deepEqual(await ks({ k: _.in([1, 4]) }), [1, 4]);
    assert.deepEqual(await ks({ k: _.nin([1, 4]) }), [2, 3]);
  });

  test('logic: or, and, nor, not, chained or', async () => {
    assert.deepEqual(await ks(_.or([{ k: 1 }, { k: 3 }])), [1, 3]);
    assert.deepEqual(await ks(_.or({ k: 1 }, { k: 2 })), [1, 2]);
    assert.deepEqual(await ks(_.and([{ k: _.gt(1) }, { k: _.lt(3) }])), [2]);
    assert.deepEqual(await ks(_.nor([{ k: 1 }, { k: 2 }])), [3, 4]);
    assert.deepEqual(await ks({ k: _.not(_.gt(2)) }), [1, 2]);
    assert.deepEqual(await ks({ k: _.lt(2).or(_.gt(3)) }), [1, 4]);
  });

  test('element and array operators, nested fields', async () => {
    assert.deepEqual(await ks({ extra: _.exists(true) }), [3]);
    assert.deepEqual(await ks({ tags: _.size(2) }), [1, 2]);
    assert.deepEqual(await ks({ tags: _.all(['b', 'c']) }), [2]);
    assert.deepEqual(await ks({ tags: 'c' }), [2, 3]);
    assert.deepEqual(await ks({ items: _.elemMatch({ q: _.gt(4) }) }), [1, 4]);
    assert.deepEqual(await ks({ k: _.mod([2, 0]) }), [2, 4]);
    assert.deepEqual(await ks({ sub: { v: _.gte(30) } }), [3, 4]);
    assert.deepEqual(await ks({ 'sub.v': 20 }), [2]);
  });

  test('regular expressions: db.RegExp and native RegExp', async () => {
    assert.deepEqual(await ks({ name: db.RegExp({ regexp: '^ap', options: 'i' }) }), [1, 2]);
    assert.deepEqual(await ks({ name: /^b/i }), [3]);
    // Inside a field-level or(): each RegExp or value is a condition on that field.
    assert.deepEqual(await ks({ name: _.or([/^ap/i, 'Banana']) }), [1, 2, 3]);
    assert.deepEqual(await ks({ name: _.or([db.RegExp({ regexp: 'rry$' }), /^B/]) }), [3, 4]);
  });

  test('expr with aggregate operators', async () => {
    const $ = _.aggregate;
    assert.deepEqual(await ks(_.expr($.gt(['$sub.v', $.multiply(['$k', 10])]))), []);
    assert.deepEqual(await ks(_.expr($.eq(['$sub.v', $.multiply(['$k', 10])]))), [1, 2, 3, 4]);
  });
});

describe('Geo', () => {
  before(async () => {
    await db.collection('places').add({ data: { name: 'near', loc: db.Geo.Point(113.3, 23.1) } });
    await db.collection('places').add({ data: { name: 'far', loc: new db.Geo.Point(116.4, 39.9) } });
  });

  test('geoNear sorts by distance and honours maxDistance', async () => {
    const res = await db.collection('places').where({ loc: _.geoNear({ geometry: db.Geo.Point(113.31, 23.11), maxDistance: 5000 }) }).get();
    assert.deepEqual(res.data.map((d) => d.name), ['near']);
    assert.ok(res.data[0].loc instanceof db.Geo.Point);
  });

  test('geoWithin a polygon, geoIntersects', async () => {
    const ring = [db.Geo.Point(113, 23), db.Geo.Point(114, 23), db.Geo.Point(114, 24), db.Geo.Point(113, 24), db.Geo.Point(113, 23)];
    const polygon = db.Geo.Polygon([db.Geo.LineString(ring)]);
    const within = await db.collection('places').where({ loc: _.geoWithin({ geometry: polygon }) }).get();
    assert.deepEqual(within.data.map((d) => d.name), ['near']);
    const intersects = await db.collection('places').where({ loc: _.geoIntersects({ geometry: polygon }) }).get();
    assert.deepEqual(intersects.data.map((d) => d.name), ['near']);
  });

  test('Geo values round-trip as Geo objects', async () => {
    const line = db.Geo.LineString([db.Geo.Point(0, 0), db.Geo.Point(1, 1)]);
    const { _id } = await db.collection('places').add({ data: { name: 'line', shape: line } });
    const { data } = await db.collection('places').doc(_id).get();
    assert.ok(data.shape instanceof db.Geo.LineString);
    assert.ok(!(data.shape instanceof db.Geo.Point), 'instanceof tells the kinds apart');
    assert.ok(data.shape.points[1] instanceof db.Geo.Point);
    assert.equal(data.shape.points[1].latitude, 1);
    assert.deepEqual(data.shape.toJSON(), { type: 'LineString', coordinates: [[0, 0], [1, 1]] });
  });
});

test("collection.database (Taro types it) is the database, kept through where/orderBy/limit/skip/field", async () => {
  const other = cloud.database();
  const collection = other.collection('todos');
  const query = collection.where({ n: _.gte(0) }).orderBy('n', 'asc').limit(3).skip(0).field({ n: 1 });
  assert.equal(collection.database, other);
  assert.equal(query.database, other);
  assert.notEqual(query.database, db);
  const res = await query.database.collection('todos').where({ n: query.database.command.exists(true) }).count();
  assert.equal(res.errMsg, 'collection.count:ok');
  assert.equal(typeof res.total, 'number');
});

describe('aggregate', () => {
  test('match, group, sort, limit', async () => {
    for (const [tag, n] of [['x', 1], ['x', 2], ['y', 3], ['y', 4], ['y', 5], ['z', 0]]) {
      await db.collection('agg').add({ data: { tag, n, done: false } });
    }
    const $ = _.aggregate;
    const res = await db
      .collection('agg')
      .aggregate()
      .match({ done: false, n: _.gt(0) })
      .group({ _id: '$tag', total: $.sum(1) })
      .sort({ total: -1 })
      .limit(5)
      .end();
    assert.equal(res.errMsg, 'collection.aggregate:ok');
    assert.deepEqual(res.list, [{ _id: 'y', total: 3 }, { _id: 'x', total: 2 }]);
  });

  test("sample: wx's { size } and Taro's typed bare number draw that many distinct documents", async () => {
    for (const size of [{ size: 2 }, 3]) {
      const res = await db.collection('agg').aggregate().match({ done: false }).sample(size).end();
      const expected = typeof size === 'number' ? size : size.size;
      assert.equal(res.list.length, expected, JSON.stringify(res.list));
      assert.equal(new Set(res.list.map((doc) => doc._id)).size, expected);
    }
    assert.deepEqual(_.aggregate.pipeline().sample(4).done(), [{ $sample: { size: 4 } }]);
  });

  test('bucket, sortByCount, replaceRoot, project with accumulators, lookup with let and $.pipeline()', async () => {
    const $ = _.aggregate;
    const agg = () => db.collection('agg').aggregate().match({ done: false });
    const buckets = await agg().bucket({ groupBy: '$n', boundaries: [0, 2, 4], default: 'big', output: { count: $.sum(1), ns: $.push('$n') } }).end();
    assert.deepEqual(buckets.list, [
      { _id: 0, count: 2, ns: [1, 0] },
      { _id: 2, count: 2, ns: [2, 3] },
      { _id: 'big', count: 2, ns: [4, 5] },
    ]);
    const counted = await agg().sortByCount('$tag').end();
    assert.deepEqual(counted.list, [{ _id: 'y', count: 3 }, { _id: 'x', count: 2 }, { _id: 'z', count: 1 }]);
    const rooted = await agg().match({ n: 5 }).replaceRoot({ newRoot: { t: '$tag', twice: $.multiply(['$n', 2]) } }).end();
    assert.deepEqual(rooted.list, [{ t: 'y', twice: 10 }]);
    const projected = await agg().group({ _id: '$tag', ns: $.push('$n') }).project({ _id: 1, max: $.max('$ns'), mean: $.avg('$ns'), sd: $.stdDevPop('$ns') }).sort({ _id: 1 }).end();
    assert.deepEqual(projected.list, [
      { _id: 'x', max: 2, mean: 1.5, sd: 0.5 },
      { _id: 'y', max: 5, mean: 4, sd: Math.sqrt(2 / 3) },
      { _id: 'z', max: 0, mean: 0, sd: 0 },
    ]);
    const joined = await agg()
      .match({ tag: 'x' })
      .lookup({ from: 'agg', let: { tag: '$tag', n: '$n' }, pipeline: $.pipeline().match(_.expr($.and([$.eq(['$tag', '$$tag']), $.neq(['$n', '$$n'])]))).project({ _id: 0, n: 1 }).done(), as: 'others' })
      .project({ _id: 0, n: 1, others: 1 })
      .sort({ n: 1 })
      .end();
    assert.deepEqual(joined.list, [{ n: 1, others: [{ n: 2 }] }, { n: 2, others: [{ n: 1 }] }]);
    assert.deepEqual($.pipeline().match({ n: _.gt(1) }).limit(2).done(), [{ $match: { n: { $gt: 1 } } }, { $limit: 2 }]);
  });

  test('geoNear through the SDK: nearest first, distance written', async () => {
    const { Point } = db.Geo;
    for (const [name, lng] of [['far', 113.05], ['near', 113.01], ['home', 113]]) {
      await db.collection('places').add({ data: { name, kind: 'geo-agg', at: new Point(lng, 23) } });
    }
    const res = await db.collection('places').aggregate()
      .geoNear({ near: new Point(113, 23), distanceField: 'd', key: 'at', query: { kind: 'geo-agg' }, maxDistance: 3000 })
      .project({ _id: 0, name: 1, d: 1 })
      .end();
    assert.deepEqual(res.list.map((p) => p.name), ['home', 'near']);
    assert.equal(res.list[0].d, 0);
    assert.ok(Math.abs(res.list[1].d - 1023.8) < 2, `about 1 km: ${res.list[1].d}`);
  });
});

describe('callback style', () => {
  test('every executing method serves success/complete and returns undefined', async () => {
    const coll = db.collection('styles');
    const added = await callbacks((cb) => coll.add({ data: { s: 1 }, ...cb }));
    assert.equal(added.kind, 'success');
    assert.equal(added.returned, undefined);
    const id = added.value._id;
    const got = await callbacks((cb) => coll.doc(id).get(cb));
    assert.equal(got.value.errMsg, 'document.get:ok');
    assert.equal((await callbacks((cb) => coll.where({ s: 1 }).get(cb))).value.errMsg, 'collection.get:ok');
    assert.equal((await callbacks((cb) => coll.where({ s: 1 }).count(cb))).value.total, 1);
    assert.equal((await callbacks((cb) => coll.doc(id).update({ data: { s: 2 }, ...cb }))).value.stats.updated, 1);
    assert.equal((await callbacks((cb) => coll.doc(id).set({ data: { s: 3 }, ...cb }))).value.stats.updated, 1);
    assert.equal((await callbacks((cb) => coll.where({ s: 3 }).update({ data: { s: 4 }, ...cb }))).value.stats.updated, 1);
    assert.equal((await callbacks((cb) => coll.aggregate().match({ s: 4 }).end(cb))).value.list.length, 1);
    assert.equal((await callbacks((cb) => coll.where({ s: 4 }).remove(cb))).value.stats.removed, 1);
  });

  test('failures go to fail then complete', async () => {
    const failed = await callbacks((cb) => db.collection('styles').doc('missing').get(cb));
    assert.equal(failed.kind, 'fail');
    assertCloudError(failed.value, -1, { errMsgStartsWith: 'document.get:fail' });
  });
});

describe('client-side validation', () => {
  test('misuse throws synchronously with wx errCodes', () => {
    assertCloudError(syncThrow(() => db.collection('')), -401003);
    assertCloudError(syncThrow(() => db.collection('todos').doc(undefined)), -401002, { errMsgIncludes: 'docId must not be empty' });
    assertCloudError(syncThrow(() => db.collection('todos').doc(null)), -401002);
    assertCloudError(syncThrow(() => db.collection('todos').where()), -401002);
    assertCloudError(syncThrow(() => db.collection('todos').where({ _id: undefined })), -401002, {
      errMsgIncludes: 'must not all be undefined',
    });
    assertCloudError(syncThrow(() => db.collection('todos').orderBy('a')), -401002);
    assertCloudError(syncThrow(() => db.collection('todos').limit()), -401002);
    assertCloudError(syncThrow(() => db.collection('todos').skip()), -401002);
    assertCloudError(syncThrow(() => db.collection('todos').field()), -401002);
    assertCloudError(syncThrow(() => db.Geo.Point(181, 0)), -401002, { errMsgIncludes: 'longitude' });
    assertCloudError(syncThrow(() => new db.Geo.Point(0, -91)), -401002, { errMsgIncludes: 'latitude' });
    const open = db.Geo.LineString([db.Geo.Point(0, 0), db.Geo.Point(1, 0), db.Geo.Point(1, 1), db.Geo.Point(0, 1)]);
    assertCloudError(syncThrow(() => db.Geo.Polygon([open])), -401002, { errMsgIncludes: 'not a closed cycle' });
    assertCloudError(syncThrow(() => _.geoWithin({ geometry: db.Geo.Point(0, 0) })), -401003);
    assertCloudError(syncThrow(() => cloud.database({ env: 1 })), -401003);
  });

  test('set() with operators, updating _id, oversized records and cycles fail without a request', async () => {
    const doc = db.collection('todos').doc('x');
    assertCloudError(await rejection(doc.set({ data: { a: _.inc(1) } })), -502001, { errMsgIncludes: 'update operator complicit' });
    assertCloudError(await rejection(doc.update({ data: { _id: 'y' } })), -401002, { errMsgIncludes: '不能更新_id的值' });
    assertCloudError(await rejection(doc.set({ data: { _id: 'y' } })), -401002);
    const big = 'x'.repeat(513 * 1024);
    assertCloudError(await rejection(db.collection('todos').add({ data: { big } })), -401002, { errMsgIncludes: 'record size must be less than 512 KB' });
    assertCloudError(await rejection(doc.update({ data: { big } })), -401002, { errMsgIncludes: 'update expression size must be less than 512 KB' });
    const cyclic = { a: 1 };
    cyclic.self = cyclic;
    assertCloudError(await rejection(db.collection('todos').add({ data: cyclic })), -402001);
    assertCloudError(await rejection(db.collection('todos').where({ a: 1 }).update({ data: { a: _.gt(1) } })), -401002);
    assertCloudError(await rejection(db.collection('todos').remove()), -401002, { errMsgIncludes: 'query condition must be provided' });
  });

  test('builders are immutable and a second where AND-merges', async () => {
    const batch = 'w-' + randomUUID();
    for (let k = 1; k <= 3; k++) await db.collection('todos').add({ data: { batch, k } });
    const base = db.collection('todos').where({ batch });
    const narrowed = base.where({ k: _.gte(2) });
    assert.notEqual(base, narrowed);
    assert.equal((await base.count()).total, 3, 'the first query is unchanged');
    assert.equal((await narrowed.count()).total, 2);
    assert.equal((await narrowed.where({ k: _.lt(3) }).count()).total, 1);
  });
});
