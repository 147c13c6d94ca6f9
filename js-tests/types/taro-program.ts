// A program typed against Taro 4.2.1's cloud typings (every member of `cloud & Cloud` except `callContainer`,
// which taro-program-container.ts covers), with values held in Taro's own types (`Taro.UploadTask`,
// `Taro.DB.Document`, `Taro.DB.IGeo.GeoPolygon`, …). types.test.mjs compiles it against Taro's types and against
// ours: both must accept it. What Taro declares and this package does not (on purpose) is listed in types/README.md.
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

  // Taro's return types hold what ours return.
  const uploadTask: Taro.UploadTask = cloud.uploadFile({ cloudPath: 'a/c.png', filePath, fail: (err) => console.log(err.errMsg) });
  uploadTask.offProgressUpdate(() => undefined);
  const downloadTask: Taro.DownloadTask = cloud.downloadFile({ fileID: 'cloud://a', complete: () => undefined });
  downloadTask.onProgressUpdate((res) => console.log(res.progress, res.totalBytesWritten));
  const traced = cloud.database({ env: 'db-env', traceUser: true });
  const config: Taro.cloud.IConfig = traced.config;
  const query: Taro.DB.Query = db.collection('todos').where({ done: false }).orderBy('due', 'desc');
  const counted: Taro.DB.Query.ICountResult = await query.count({});
  const listed: Taro.DB.Query.IQueryResult = await query.get({});
  const document: Taro.DB.Document = db.collection('todos').doc('todo-2');
  const single: Taro.DB.Query.IQuerySingleResult = await document.get({ config: { env: 'db-env' } });
  const serverDate: Taro.DB.Database.ServerDate = db.serverDate();
  const pattern: Taro.DB.Database.IRegExp = db.RegExp({ regexp: 'a' });
  const point: Taro.DB.IGeo.GeoPoint = db.Geo.Point(113, 23);
  const polygon: Taro.DB.IGeo.GeoPolygon = area;
  const polygonJson: Taro.DB.IGeo.JSONPolygon = area.toJSON();
  const lines: Taro.DB.IGeo.GeoMultiLineString = db.Geo.MultiLineString({
    type: 'MultiLineString',
    coordinates: [[[113, 23], [114, 24]]],
  });
  const polygons: Taro.DB.IGeo.GeoMultiPolygon = db.Geo.MultiPolygon([area]);

  // Collection.where / orderBy / limit / skip / field return a Collection in Taro's typings.
  const filtered = db.collection('todos').where({ done: true }).orderBy('due', 'asc').limit(5).skip(1).field({ title: 1 });
  const filteredName: string = filtered.collectionName;
  const viaFiltered = await filtered.doc('todo-3').get({});
  await filtered.add({ data: { title: 'via where' } });
  const viaFilteredAggregate = await filtered.aggregate().count('n').end();
  const databaseConfig: Taro.cloud.IConfig = filtered.database.config;
  const sampled = await filtered.database.collection('todos').aggregate().sample(2).end();

  // Collection.watch, and the watcher Taro types.
  const watcher: Taro.DB.Document.IWatcher = db
    .collection('todos')
    .where({ done: false })
    .watch({ onChange: (snapshot) => console.log(snapshot), onError: (err) => console.log(err.errMsg) });
  await watcher.close();
  const collectionWatcher: Taro.DB.Document.IWatcher = db.collection('todos').watch({
    onChange: () => undefined,
    onError: () => undefined,
  });
  await collectionWatcher.close();

  const taroTyped = [uploadTask, downloadTask, config, counted, listed, single, serverDate, pattern, point, polygon];
  const chained = [polygonJson, lines, polygons, filteredName, viaFiltered, viaFilteredAggregate, databaseConfig, sampled];
  return [...taroTyped, ...chained, errMsg, sharedResult, tempFilePath, url, maxAge, status, id, titles, total, one,
    updated, removed, created, near, aggregated];
}
