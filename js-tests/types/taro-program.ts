// A program typed against Taro 4.2.1's cloud typings (every member of `cloud & Cloud` except `callContainer`,
// which taro-program-container.ts covers, and `Collection.watch`, which this package does not type yet).
// types.test.mjs compiles it against Taro's types and against ours: both must accept it.
import type Taro from '@tarojs/taro';
import type { CloudUnderTest } from 'cloud-under-test';

export async function program(cloud: CloudUnderTest, filePath: string): Promise<unknown[]> {
  cloud.init({ env: 'my-env', traceUser: true });
  cloud.init({ env: { database: 'db-env', functions: 'fn-env', storage: 'st-env' } });

  const called: Taro.cloud.CallFunctionResult = await cloud.callFunction({ name: 'add', data: { a: 1, b: 2 }, config: { env: 'e' } });
  const errMsg: string = called.errMsg;
  cloud.callFunction({
    name: 'add',
    slow: true,
    success: (res) => console.log(res.result, res.errMsg),
    fail: (err) => console.log(err.errMsg),
    complete: () => undefined,
  });

  const uploaded: Taro.cloud.UploadFileResult = await cloud.uploadFile({ cloudPath: 'a/b.png', filePath, header: { 'x-n': 1 } });
  const task = cloud.uploadFile({ cloudPath: 'a/b.png', filePath, success: (res) => console.log(res.fileID, res.statusCode) });
  task.onProgressUpdate((res) => console.log(res.progress, res.totalBytesSent, res.totalBytesExpectedToSend));
  task.abort();

  const downloaded: Taro.cloud.DownloadFileResult = await cloud.downloadFile({ fileID: uploaded.fileID });
  const tempFilePath: string = downloaded.tempFilePath;
  cloud.downloadFile({ fileID: uploaded.fileID, success: (res) => console.log(res.statusCode) }).abort();

  const urls: Taro.cloud.GetTempFileURLResult = await cloud.getTempFileURL({ fileList: [uploaded.fileID] });
  const url: string = urls.fileList[0].tempFileURL;
  const maxAge: number = urls.fileList[0].maxAge;
  cloud.getTempFileURL({ fileList: ['cloud://a'], success: (res) => console.log(res.fileList.length) });

  const deleted: Taro.cloud.DeleteFileResult = await cloud.deleteFile({ fileList: [uploaded.fileID] });
  const status: number = deleted.fileList[0].status;
  cloud.deleteFile({ fileList: ['cloud://a'], fail: (err) => console.log(err.errMsg) });

  cloud.CloudID('cloud-id');

  const shared = new cloud.Cloud({ resourceAppid: 'wx0123', resourceEnv: 'shared-env' });
  await shared.init();
  const sharedResult: Taro.cloud.CallFunctionResult = await shared.callFunction({ name: 'add' });

  const db = cloud.database({ env: 'db-env' });
  const _ = db.command;
  const added = await db.collection('todos').add({
    data: { title: 'write', due: db.serverDate({ offset: 1000 }), where: db.Geo.Point(113.3, 23.1), done: false },
  });
  const id: string | number = added._id;
  db.collection('todos').add({ data: { title: 'cb' }, success: (res) => console.log(res.errMsg) });

  const found = await db
    .collection('todos')
    .where({ done: false, progress: _.gt(10).and(_.lt(90)), tag: _.in(['a', 'b']), other: _.nin([1]) })
    .orderBy('due', 'asc')
    .skip(10)
    .limit(20)
    .field({ title: true })
    .get();
  const titles: string[] = found.data.map((doc) => doc.title);
  const total: number = (await db.collection('todos').count()).total;
  const either = _.or([{ a: 1 }, { b: _.eq(2) }]);
  const both = _.and({ a: _.neq(1) }, { b: _.gte(2).or(_.lte(0)) });
  await db.collection('todos').where(either).get();
  await db.collection('todos').where(both).get();

  const one = await db.collection('todos').doc('todo-1').get({});
  db.collection('todos').doc('todo-1').get({ success: (res) => console.log(res.errMsg) });
  const updated = await db.collection('todos').doc('todo-1').update({ data: { n: _.inc(1), tags: _.push('x'), gone: _.remove() } });
  const set = await db.collection('todos').doc('todo-1').set({ data: { n: 1 } });
  const removed = await db.collection('todos').doc('todo-1').remove({});
  const created: number = set.stats.created;

  const near = await db
    .collection('places')
    .where({ location: _.geoNear({ geometry: db.Geo.Point(113, 23), maxDistance: 1000 }) })
    .get();
  const area = db.Geo.Polygon({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] });
  await db.collection('places').where({ location: _.geoWithin({ geometry: area }) }).get();
  db.RegExp({ regexp: '^a', options: 'i' });

  const aggregated = await db.collection('todos').aggregate().match({ done: false }).group({ _id: '$tag' }).sort({ _id: 1 }).limit(5).end();

  return [errMsg, sharedResult, tempFilePath, url, maxAge, status, id, titles, total, one, updated, removed, created, near, aggregated];
}
