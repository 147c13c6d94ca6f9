// Taro's type names (`Taro.DB.Query.IQueryResult`, `Taro.DB.Document.IWatcher`, `Taro.cloud.IApiParam`, …) exist in
// this package's namespaces too, so code moving its type imports from '@tarojs/taro' to 'taro-cloud-wasm' keeps them.
import { cloud } from 'taro-cloud-wasm';
import type { DB, cloud as Cloud } from 'taro-cloud-wasm';

export async function names(): Promise<unknown[]> {
  const options: Cloud.ICloudAPIParam<Cloud.CallFunctionResult> = { config: { env: 'e' } };
  const db = cloud.database();
  const collection: DB.Collection = db.collection('todos').where({ done: false });
  const condition: DB.Query.IQueryCondition = { done: true };
  const listed: DB.Query.IQueryResult = await collection.where(condition).get();
  const counted: DB.Query.ICountResult = await collection.count();
  const added: DB.Query.IAddResult = await collection.add({ data: { n: 1 } });
  const document: DB.Document = collection.doc(added._id);
  const single: DB.Query.IQuerySingleResult = await document.get();
  const set: DB.Query.ISetResult = await document.set({ data: { n: 2 } });
  const update: DB.Document.IUpdateSingleDocumentOptions = { data: { n: db.command.inc(1) } };
  const updated: DB.Query.IUpdateResult = await document.update(update);
  const removed: DB.Query.IRemoveResult = await document.remove();
  const data: DB.Document.IDocumentData = single.data;
  const watchOptions: DB.Document.IWatchDocumentOptions = {
    onChange: (snapshot: DB.Document.ISnapshot) => snapshot.docChanges.map((change: DB.Document.ChangeEvent) => change.docId),
    onError: (err) => console.log(err.errCode),
  };
  const watcher: DB.Document.IWatcher = collection.watch(watchOptions);
  await watcher.close();
  const near: DB.Command.NearCommandOptions = { geometry: db.Geo.Point(113, 23), maxDistance: 10 };
  const within: DB.Command.WithinCommandOptions = { geometry: db.Geo.Polygon([db.Geo.LineString([])]) };
  const query: DB.Command.DatabaseQueryCommand = db.command.geoNear(near);
  const logic: DB.Command.DatabaseLogicCommand = query.and(db.command.geoWithin(within));
  const inc: DB.Command.DatabaseUpdateCommand = db.command.inc(1);
  const json: DB.IGeo.JSONPoint = db.Geo.Point(113, 23).toJSON();
  const line: DB.IGeo.GeoLineString = db.Geo.LineString([db.Geo.Point(1, 2), db.Geo.Point(3, 4)]);
  const offset: DB.Database.ServerDate.IOptions = { offset: 60_000 };
  const serverDate: DB.Database.ServerDate = db.serverDate(offset);
  const regexpOptions: DB.Database.IRegExp.IRegExpOptions = { regexp: '^a', options: 'i' };
  const regexp: DB.Database.IRegExp = db.RegExp(regexpOptions);
  return [options, listed, counted, set, updated, removed, data, logic, inc, json, line, serverDate, regexp];
}
