// The Taro 4.2.1 typing defects listed in api-surface.md §10, each written as the wx / Taro docs write the call;
// Taro's typings reject every one of them, this package's accept them.
import { cloud, type DB } from 'taro-cloud-wasm';

export async function defects(): Promise<unknown[]> {
  // getTempFileURL takes { fileID, maxAge } items (Taro: string[] only).
  const urls = await cloud.getTempFileURL({ fileList: [{ fileID: 'cloud://a', maxAge: 3600 }, 'cloud://b'] });

  const db = cloud.database();
  const _ = db.command;
  // Document methods without options (Taro: the options argument is required).
  const got = await db.collection('t').doc('x').get();
  const removed = await db.collection('t').doc('x').remove();
  // Collection.get / count with callbacks (Taro: no arguments at all on Collection).
  db.collection('t').get({ success: (res) => console.log(res.data.length) });
  db.collection('t').count({ success: (res) => console.log(res.total) });
  // Geo constructors with `new` (Taro: not constructible), and each returns its own type.
  const point: DB.GeoPoint = new db.Geo.Point(113, 23);
  const line: DB.GeoLineString = db.Geo.LineString([point, new db.Geo.Point(114, 24)]);
  const many: DB.GeoMultiPoint = db.Geo.MultiPoint([point]);
  // Commands Taro lacks.
  const condition = { a: _.exists(true), b: _.size(2), c: _.all([1]), d: _.elemMatch({ x: 1 }), e: _.mod(2, 0), f: _.not(_.eq(1)) };
  const sum = _.aggregate.sum('$n');
  const sliced = _.project.slice(3);
  // Multi-document update / remove on a query (Taro: missing on Collection).
  const updated = await db.collection('t').where({ done: false }).update({ data: { done: true, n: _.inc(1) } });
  const dropped = await db.collection('t').where({ done: true }).remove();
  // CloudID gives an object (Taro: void).
  const cloudID: { cloudID: string } = cloud.CloudID('id');
  const constructed = new cloud.CloudID('id');
  // aggregate().end with callbacks (Taro: no arguments).
  db.collection('t').aggregate().group({ _id: null, n: _.aggregate.sum(1) }).end({ success: (res) => console.log(res.list) });
  // callFunction results carry requestID; uploadFile takes the bytes on the web; downloadFile gives them back.
  const called = await cloud.callFunction({ name: 'f' });
  const requestID: string = called.requestID;
  await cloud.uploadFile({ cloudPath: 'a.bin', file: new Uint8Array([1, 2]) });
  await cloud.uploadFile({ cloudPath: 'b.bin', file: new Blob(['x']) });
  const bytes: ArrayBuffer = (await cloud.downloadFile({ fileID: 'cloud://a' })).data;
  // Errors are typed with a numeric errCode.
  cloud.callFunction({ name: 'f', fail: (err) => console.log(err.errCode + 1, err.errMsg) });
  // Promise calls take an AbortSignal.
  await cloud.callFunction({ name: 'f', signal: AbortSignal.timeout(1000) });
  // Web options on init and instances.
  cloud.init({ env: 'e', endpoint: 'http://127.0.0.1:8787', timeout: 5000, persistence: 'session' });
  const other = new cloud.Cloud({ resourceEnv: 'e2', endpoint: 'http://127.0.0.1:8787', region: 'ap-guangzhou' });
  await other.init();
  const orderedByString = db.collection('t').orderBy('n', 'desc');
  // callContainer has a callback form (Taro: Promise only, and `success` typed with CallFunctionResult).
  const nothing: void = cloud.callContainer({ path: '/', header: { 'X-WX-SERVICE': 's' }, success: (res) => console.log(res.statusCode) });
  // dataType is a string such as 'json' (Taro: typed as the `request.DataType` interface itself).
  await cloud.callContainer({ path: '/', header: { 'X-WX-SERVICE': 's' }, dataType: 'json' });

  return [urls, got, removed, line, many, condition, sum, sliced, updated, dropped, cloudID, constructed, requestID, bytes, orderedByString, nothing];
}
