// bench/transactions.mjs: timings measured inside a function with the real wx-server-sdk, one operation at a
// time. The three operations are interleaved sample by sample, so a busy machine slows them alike.
const { performance } = require('node:perf_hooks');
const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
const db = cloud.database();
const _ = db.command;

async function time(op) {
  const start = performance.now();
  await op();
  return performance.now() - start;
}

exports.main = async ({ samples }) => {
  await db.createCollection('bench_txn').catch(() => {});
  const c = db.collection('bench_txn');
  await c.doc('counter').set({ data: { n: 0 } });
  await c.doc('other').set({ data: { n: 0 } });
  const plainUpdate = () => c.doc('counter').update({ data: { n: _.inc(1) } });
  const transaction = () => db.runTransaction(async (t) => {
    const { data } = await t.collection('bench_txn').doc('counter').get();
    await t.collection('bench_txn').doc('counter').update({ data: { n: data.n + 1 } });
  });
  const times = { plain: [], transaction: [], plainWhileOpen: [] };
  for (let i = 0; i < samples + 20; i += 1) {
    const plain = await time(plainUpdate);
    const txn = await time(transaction);
    // While a transaction stays open, every commit records what it changes (the store's change log).
    const open = await db.startTransaction();
    await open.collection('bench_txn').doc('other').get();
    const whileOpen = await time(plainUpdate);
    await open.rollback();
    if (i >= 20) { // the first 20 rounds warm up
      times.plain.push(plain);
      times.transaction.push(txn);
      times.plainWhileOpen.push(whileOpen);
    }
  }
  const { data } = await c.doc('counter').get();
  return { ...times, final: data.n };
};
