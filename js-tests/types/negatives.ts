// Misuse that must not type-check: each line carries `@ts-expect-error`, and tsc fails on one that compiles.
import { cloud } from 'taro-cloud-wasm';

export async function negatives(): Promise<void> {
  // @ts-expect-error callFunction needs a name
  await cloud.callFunction({ data: {} });
  // @ts-expect-error name is a string
  await cloud.callFunction({ name: 42 });
  // @ts-expect-error callback style returns void, not a Promise
  const notPromise: Promise<unknown> = cloud.callFunction({ name: 'f', success: () => undefined });
  // @ts-expect-error the Promise style has no task
  cloud.uploadFile({ cloudPath: 'a', file: new Blob([]) }).onProgressUpdate(() => undefined);
  // @ts-expect-error uploadFile needs a cloudPath
  await cloud.uploadFile({ file: new Blob([]) });
  // @ts-expect-error a Cloud instance needs its resourceEnv
  new cloud.Cloud({ resourceAppid: 'wx0' });
  // @ts-expect-error persistence is one of local / session / none
  cloud.init({ persistence: 'disk' });
  // @ts-expect-error deleteFile takes fileIDs, not objects
  await cloud.deleteFile({ fileList: [{ fileID: 'a' }] });
  // @ts-expect-error result has no such field
  (await cloud.getTempFileURL({ fileList: ['a'] })).files;
  const db = cloud.database();
  // @ts-expect-error add needs data
  await db.collection('t').add({});
  // @ts-expect-error orderBy needs a direction
  db.collection('t').orderBy('n');
  // @ts-expect-error limit takes a number
  db.collection('t').limit('10');
  // @ts-expect-error errCode is a number
  cloud.callFunction({ name: 'f', fail: (err) => err.errCode.toUpperCase() });
  // @ts-expect-error database's env is a string (a number throws -401003)
  cloud.database({ env: 1 });
  // @ts-expect-error watch needs onError too (the runtime asserts both functions, as wx does)
  db.collection('t').watch({ onChange: () => undefined });
  // @ts-expect-error onChange receives a snapshot, which has no errMsg
  db.collection('t').watch({ onChange: (snapshot) => snapshot.errMsg, onError: () => undefined });
  // @ts-expect-error a document reference has no where
  db.collection('t').doc('x').where({});
  // @ts-expect-error sample takes { size } or the size
  db.collection('t').aggregate().sample('3');
  // @ts-expect-error a command's operator lives in the wasm (Taro declares @cloudbase/database's internals)
  db.command.gt(1).operator;
  // @ts-expect-error collection.database is read-only
  db.collection('t').database = db;
  // @ts-expect-error a document reference has no database
  db.collection('t').doc('x').database;
  // @ts-expect-error a Point's GeoJSON is not a Polygon's
  const notPolygon: import('taro-cloud-wasm').DB.JSONPolygon = db.Geo.Point(1, 2).toJSON();
  void notPromise;
  void notPolygon;
}
