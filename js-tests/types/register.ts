// `import 'taro-cloud-wasm/register'` as a Taro page writes it: `Taro.cloud` keeps Taro's type, with this
// package's signatures merged in, so the §10 fixes and the web fields reach code that only knows `Taro.cloud`.
import 'taro-cloud-wasm/register';
import Taro from '@tarojs/taro';
import { register } from 'taro-cloud-wasm/register';

export async function page(): Promise<unknown[]> {
  Taro.cloud.init({ env: 'my-env', endpoint: 'http://127.0.0.1:8787' });
  const called = await Taro.cloud.callFunction({ name: 'add', data: { a: 1 } });
  const requestID: string = called.requestID;
  const urls = await Taro.cloud.getTempFileURL({ fileList: [{ fileID: 'cloud://a', maxAge: 60 }] });
  const cloudID: { cloudID: string } = Taro.cloud.CloudID('id');
  await Taro.cloud.uploadFile({ cloudPath: 'a.bin', file: new Blob(['x']) });
  const bytes: ArrayBuffer = (await Taro.cloud.downloadFile({ fileID: 'cloud://a' })).data;
  const db = Taro.cloud.database();
  const _ = db.command;
  const got = await db.collection('t').doc('x').get();
  await db.collection('t').where({ a: _.exists(true) }).update({ data: { b: _.inc(1) } });
  const point = new db.Geo.Point(1, 2);
  const shared = new Taro.cloud.Cloud({ resourceEnv: 'other', endpoint: 'http://127.0.0.1:8787' });
  await shared.init();
  const sharedCall = await shared.callFunction({ name: 'add' });
  const sharedID: string = sharedCall.requestID;
  const container = await Taro.cloud.callContainer({ path: '/', header: { 'X-WX-SERVICE': 'greeter' } });
  const containerErrMsg: string = container.errMsg;
  Taro.cloud.callContainer({ path: '/', header: { 'X-WX-SERVICE': 'greeter' }, success: (res) => console.log(res.statusCode) });
  // Taro's own signatures still apply.
  const legacy = await Taro.cloud.uploadFile({ cloudPath: 'a.png', filePath: 'blob:x' });
  const again = register();
  // @ts-expect-error still no such API
  Taro.cloud.callFunctions({ name: 'x' });
  return [requestID, urls, cloudID, bytes, got, point, sharedID, legacy, again, containerErrMsg];
}
