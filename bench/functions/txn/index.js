// bench/transactions.mjs: timings measured inside a function with the real wx-server-sdk (one op at a time).
const { performance } = require('node:perf_hooks');
const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
const db = cloud.database();
const _ = db.command;

async function timed(samples, op) {
  for (let i = 0; i < Math.min(20, samples); i += 1) await op(); // warm-up
  const times = [];
  for (let i = 0; i < samples; i += 1) {
    const start = performance.now();
    await op();
    times.push(performance.now() - start);
  }
  return times;
}

exports.main = async ({ samples }) => {
  await db.createCollection('bench_txn').catch(() => {});
  const c = db.collection('bench_txn');
  await c.doc('counter').set({ data: { n: 0 } });
  await c.doc('other').set({ data: { n: 0 } });
  const plain = await timed(samples, () => c.doc('counter').update({ data: { n: _.inc(1) } }));
  const transaction = await timed(samples, () => db.runTransaction(async (t) => {
    const { data } = await t.collection('bench_txn').doc('counter').get();
    await t.collection('bench_txn').doc('counter').update({ data: { n: data.n + 1 } });
  }));
  // While a transaction stays open, every commit records what it changes (the store's change log).
  const open = await db.startTransaction();
  await open.collection('bench_txn').doc('other').get();
  const plainWhileOpen = await timed(samples, () => c.doc('counter').update({ data: { n: _.inc(1) } }));
  await open.rollback();
  const { data } = await c.doc('counter').get();
  return { plain, transaction, plainWhileOpen, final: data.n };
};
