// Server-side scenarios through the real wx-server-sdk 4.0.2 (the copy cloud-emulator provides: this folder
// has no node_modules), one per `event.op`; each returns what the SDK gave it so the suite can assert it.
const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
const db = cloud.database();
const _ = db.command;
const $ = _.aggregate;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a rejected promise carried (the SDK's error fields, or the raw value). */
async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    if (typeof e !== 'object' || e === null) return { raw: e };
    return { errCode: e.errCode, errMsg: e.errMsg, code: e.code, message: e.message };
  }
}

async function ensure(name) {
  const err = await failure(db.createCollection(name));
  if (err && err.code !== 'DATABASE_COLLECTION_ALREADY_EXIST') throw new Error(JSON.stringify(err));
  return err;
}

const ops = {
  async context() {
    return { ctx: cloud.getWXContext(), version: require('wx-server-sdk/package.json').version };
  },

  async crud({ coll }) {
    const again = await ensure(coll).then(() => failure(db.createCollection(coll)));
    const c = db.collection(coll);
    const at = new Date(1704164645678);
    const added = await c.add({
      data: {
        title: 'First', n: 1, price: 1.5, big: 2 ** 40, done: false, nothing: null, tags: ['a'],
        nested: { a: { b: 1 } }, at, when: db.serverDate({ offset: 1000 }), re: db.RegExp({ regexp: '^fi', options: 'i' }),
        loc: db.Geo.Point(113.3245, 23.1064),
      },
    });
    const many = await c.add({ data: [{ _id: 'x2', title: 'second', n: 2 }, { _id: 'x3', title: 'third', n: 3 }] });
    const one = await c.doc(added._id).get();
    const field = await c.doc('x2').field({ title: true }).get();
    const query = await c.where({ n: _.gt(0).and(_.lt(3)), title: /^(f|s)/i }).orderBy('n', 'desc').skip(0).limit(10).get();
    const or = await c.where(_.or([{ n: _.lt(2) }, { title: 'third' }])).orderBy('n', 'asc').get();
    const count = await c.where({ done: _.neq(true) }).count();
    const near = await c.where({ loc: _.geoNear({ geometry: db.Geo.Point(113.32, 23.1), maxDistance: 5000 }) }).get();
    const far = await c.where({ loc: _.geoNear({ geometry: db.Geo.Point(0, 0), maxDistance: 5000 }) }).get();
    const updated = await c.doc(added._id).update({
      data: { n: _.inc(10), tags: _.push(['b', 'c']), price: _.mul(2), 'nested.a.b': 2, nothing: _.remove() },
    });
    const multi = await c.where({ n: _.in([2, 3]) }).update({ data: { done: true } });
    const replaced = await c.doc('x2').set({ data: { title: 'replaced' } });
    const created = await c.doc('brand-new').set({ data: { title: 'upserted' } });
    const afterUpdate = await c.doc(added._id).get();
    const removed = await c.doc('x3').remove();
    const removedMany = await c.where({ title: _.in(['replaced', 'upserted']) }).remove();
    const missing = await failure(c.doc('nope').get());
    const noColl = await failure(db.collection('no_such_coll').get());
    const left = await c.get();
    const d = one.data;
    return {
      again, added: Object.keys(added).sort(), many, field: field.data, count: count.total,
      types: {
        at: d.at instanceof Date && d.at.getTime(), when: d.when instanceof Date && d.when.getTime() - Date.now(),
        big: d.big, price: d.price, nothing: d.nothing, re: d.re && [d.re.pattern, d.re.options],
        loc: d.loc && d.loc.longitude !== undefined ? [d.loc.longitude, d.loc.latitude] : d.loc,
      },
      query: query.data.map((x) => x.n), or: or.data.map((x) => x.n), near: [near.data.length, far.data.length],
      updated: updated.stats, multi: multi.stats, replaced: replaced.stats, created: [created._id, created.stats],
      afterUpdate: { n: afterUpdate.data.n, tags: afterUpdate.data.tags, price: afterUpdate.data.price, nested: afterUpdate.data.nested, hasNothing: 'nothing' in afterUpdate.data },
      removed: removed.stats, removedMany: removedMany.stats, missing, noColl, left: left.data.map((x) => x._id),
    };
  },

  async aggregate({ coll }) {
    await ensure(coll);
    const c = db.collection(coll);
    await c.add({ data: [{ k: 'a', n: 1 }, { k: 'a', n: 2 }, { k: 'b', n: 5 }, { k: 'c', n: 0.5 }] });
    const grouped = await c.aggregate()
      .match({ n: _.gt(0) })
      .group({ _id: '$k', total: $.sum('$n'), count: $.sum(1) })
      .sort({ total: -1 })
      .limit(2)
      .end();
    const projected = await c.aggregate().project({ _id: 0, k: 1, double: $.multiply(['$n', 2]) }).sort({ double: 1 }).end();
    const broken = await failure(db.collection('no_such_coll').aggregate().match({ a: 1 }).end());
    return { grouped: grouped.list, projected: projected.list, broken };
  },

  async transfer({ coll }) {
    await ensure(coll);
    const c = db.collection(coll);
    await c.doc('alice').set({ data: { balance: 100 } });
    await c.doc('bob').set({ data: { balance: 0 } });
    const result = await db.runTransaction(async (t) => {
      const alice = await t.collection(coll).doc('alice').get();
      await t.collection(coll).doc('alice').update({ data: { balance: _.inc(-30) } });
      await t.collection(coll).doc('bob').update({ data: { balance: _.inc(30) } });
      const log = await t.collection(coll).add({ data: { kind: 'log', amount: 30 } });
      return { before: alice.data.balance, logId: log._id };
    });
    const refused = await failure(db.runTransaction(async (t) => {
      await t.collection(coll).doc('alice').update({ data: { balance: _.inc(-1000) } });
      const alice = await t.collection(coll).doc('alice').get();
      if (alice.data.balance < 0) await t.rollback('insufficient balance');
    }));
    const alice = await c.doc('alice').get();
    const bob = await c.doc('bob').get();
    const log = await c.doc(result.logId).get();
    return { result, refused, alice: alice.data.balance, bob: bob.data.balance, log: log.data.amount };
  },

  // One of two concurrent calls: each reads the counter in a transaction, waits until both have read it,
  // then writes counter + 1. The second commit conflicts; wx-server-sdk retries its whole transaction.
  async increment({ coll, who }) {
    let attempts = 0;
    const saw = await db.runTransaction(async (t) => {
      attempts += 1;
      const counter = await t.collection(coll).doc('counter').get();
      if (attempts === 1) {
        await db.collection(coll).add({ data: { arrived: who } });
        for (let i = 0; i < 1000; i += 1) { // up to 20 s: the other call may be a cold start on a busy machine
          const { total } = await db.collection(coll).where({ arrived: _.exists(true) }).count();
          if (total >= 2) break;
          await sleep(20);
        }
      }
      await t.collection(coll).doc('counter').update({ data: { n: counter.data.n + 1 } });
      return counter.data.n;
    });
    return { attempts, saw };
  },

  async prepare({ coll, docs }) {
    await ensure(coll);
    for (const doc of docs) await db.collection(coll).doc(doc._id).set({ data: doc.data });
    return true;
  },

  async read({ coll, id }) {
    const { data } = await db.collection(coll).doc(id).get();
    return data;
  },

  async manual({ coll }) {
    const c = db.collection(coll);
    await ensure(coll);
    await c.doc('m').set({ data: { v: 1 } });
    // Committed: reads inside see the transaction's own writes; outside, nothing until commit.
    const t = await db.startTransaction();
    await t.collection(coll).doc('m').update({ data: { v: 2 } });
    await t.collection(coll).add({ data: { _id: 'created-in-t', v: 1 } });
    const inside = (await t.collection(coll).doc('m').get()).data.v;
    const outsideBefore = (await c.doc('m').get()).data.v;
    const committed = await t.commit();
    const outsideAfter = (await c.doc('m').get()).data.v;
    // Rolled back: none of its writes is ever visible.
    const r = await db.startTransaction();
    await r.collection(coll).doc('m').update({ data: { v: 99 } });
    await r.collection(coll).doc('created-in-t').remove();
    await r.collection(coll).add({ data: { _id: 'never', v: 1 } });
    await r.rollback();
    const afterRollback = (await c.doc('m').get()).data.v;
    const survivor = await failure(c.doc('created-in-t').get());
    const never = await failure(c.doc('never').get());
    const reuse = await failure(r.collection(coll).doc('m').get());
    // Snapshot: a write committed outside after the start is invisible to the transaction, and the
    // transaction's own write of that document then conflicts at commit.
    const s = await db.startTransaction();
    await s.collection(coll).doc('m').get();
    await c.doc('m').update({ data: { v: 3 } });
    const snapshot = (await s.collection(coll).doc('m').get()).data.v;
    await s.collection(coll).doc('m').update({ data: { v: 4 } });
    const conflict = await failure(s.commit());
    const final = (await c.doc('m').get()).data.v;
    const where = await failure(db.runTransaction(async (x) => x.collection(coll).where({ v: 1 }).get()));
    return {
      inside, outsideBefore, committed: Object.keys(committed), outsideAfter, afterRollback, survivor, never, reuse,
      snapshot, conflict, final, where,
    };
  },

  async call({ name, data }) {
    const res = await cloud.callFunction({ name, data });
    const missing = await failure(cloud.callFunction({ name: 'no-such-function', data: {} }));
    return { result: res.result, keys: Object.keys(res).sort(), missing, ctx: cloud.getWXContext() };
  },

  async storage() {
    const bytes = Buffer.from('hello from wx-server-sdk ✓');
    const up = await cloud.uploadFile({ cloudPath: 'sdk/hello world ✓.txt', fileContent: bytes });
    const urls = await cloud.getTempFileURL({ fileList: [up.fileID] });
    const viaUrl = await (await fetch(urls.fileList[0].tempFileURL)).text();
    const down = await cloud.downloadFile({ fileID: up.fileID });
    const removed = await cloud.deleteFile({ fileList: [up.fileID] });
    const gone = await failure(cloud.downloadFile({ fileID: up.fileID }));
    return {
      fileID: up.fileID, statusCode: up.statusCode, url: urls.fileList[0], viaUrl,
      down: down.fileContent.toString(), removed: removed.fileList, gone,
    };
  },

  async openapi() {
    return failure(cloud.openapi.subscribeMessage.send({ touser: 'x', templateId: 'T', data: {} }));
  },
};

exports.main = async (event) => ops[event.op](event);
