// Types of `import 'taro-cloud-wasm/register'` (see register.mjs). Taro declares `TaroStatic.cloud` as
// `cloud & Cloud`, and TypeScript does not let another declaration change a property's type; so this file merges
// this package's signatures into Taro's `cloud` and `Cloud` interfaces as extra overloads. Declared later, they
// are tried first: `Taro.cloud.callFunction(...)` resolves with `requestID`, `getTempFileURL` takes
// `{ fileID, maxAge }` items, `uploadFile` takes `file`, `CloudID` returns an object, `callContainer` has its
// callback form, and `database()` gives this package's database types (optional `get()` options, callback forms,
// `where().update()`, `_.exists`, `new Geo.Point`).
// Loads Taro's declarations before this file's: merged overloads are tried latest-declared first.
import '@tarojs/taro';
import type { CloudStatic, DB as TaroCloudWasmDB, OQ, RQ, cloud as TaroCloudWasm } from './index.js';

export { cloud } from './index.js';

/** Sets `taro.cloud` (default: the '@tarojs/taro' object) unless it already holds a cloud; the cloud it holds. */
export declare function register(taro?: object): CloudStatic;

declare module '@tarojs/taro' {
  interface cloud {
    CloudID(cloudID: string): TaroCloudWasm.CloudID;
    callFunction(param: OQ<TaroCloudWasm.CallFunctionParam>): void;
    callFunction(param: RQ<TaroCloudWasm.CallFunctionParam>): Promise<TaroCloudWasm.CallFunctionResult>;
    uploadFile(param: OQ<TaroCloudWasm.UploadFileParam>): TaroCloudWasm.UploadTask;
    uploadFile(param: RQ<TaroCloudWasm.UploadFileParam>): Promise<TaroCloudWasm.UploadFileResult>;
    downloadFile(param: OQ<TaroCloudWasm.DownloadFileParam>): TaroCloudWasm.DownloadTask;
    downloadFile(param: RQ<TaroCloudWasm.DownloadFileParam>): Promise<TaroCloudWasm.DownloadFileResult>;
    getTempFileURL(param: OQ<TaroCloudWasm.GetTempFileURLParam>): void;
    getTempFileURL(param: RQ<TaroCloudWasm.GetTempFileURLParam>): Promise<TaroCloudWasm.GetTempFileURLResult>;
    deleteFile(param: OQ<TaroCloudWasm.DeleteFileParam>): void;
    deleteFile(param: RQ<TaroCloudWasm.DeleteFileParam>): Promise<TaroCloudWasm.DeleteFileResult>;
    database(config?: TaroCloudWasm.IConfig): TaroCloudWasmDB.Database;
    callContainer<R = any, P = any>(param: OQ<TaroCloudWasm.CallContainerParam<P, R>>): void;
    callContainer<R = any, P = any>(param: RQ<TaroCloudWasm.CallContainerParam<P, R>>): Promise<TaroCloudWasm.CallContainerResult<R>>;
  }
  interface Cloud {
    CloudID(cloudID: string): TaroCloudWasm.CloudID;
    callFunction(param: OQ<TaroCloudWasm.CallFunctionParam>): void;
    callFunction(param: RQ<TaroCloudWasm.CallFunctionParam>): Promise<TaroCloudWasm.CallFunctionResult>;
    uploadFile(param: OQ<TaroCloudWasm.UploadFileParam>): TaroCloudWasm.UploadTask;
    uploadFile(param: RQ<TaroCloudWasm.UploadFileParam>): Promise<TaroCloudWasm.UploadFileResult>;
    downloadFile(param: OQ<TaroCloudWasm.DownloadFileParam>): TaroCloudWasm.DownloadTask;
    downloadFile(param: RQ<TaroCloudWasm.DownloadFileParam>): Promise<TaroCloudWasm.DownloadFileResult>;
    getTempFileURL(param: OQ<TaroCloudWasm.GetTempFileURLParam>): void;
    getTempFileURL(param: RQ<TaroCloudWasm.GetTempFileURLParam>): Promise<TaroCloudWasm.GetTempFileURLResult>;
    deleteFile(param: OQ<TaroCloudWasm.DeleteFileParam>): void;
    deleteFile(param: RQ<TaroCloudWasm.DeleteFileParam>): Promise<TaroCloudWasm.DeleteFileResult>;
    database(config?: TaroCloudWasm.IConfig): TaroCloudWasmDB.Database;
    callContainer<R = any, P = any>(param: OQ<TaroCloudWasm.CallContainerParam<P, R>>): void;
    callContainer<R = any, P = any>(param: RQ<TaroCloudWasm.CallContainerParam<P, R>>): Promise<TaroCloudWasm.CallContainerResult<R>>;
  }
  namespace cloud {
    interface IOptions {
      /** Web: base URL of a CloudBase-protocol server (e.g. a cloud-emulator). */
      endpoint?: string;
      region?: string;
      timeout?: number;
      persistence?: 'local' | 'session' | 'none';
      traceUser?: boolean;
    }
    interface IInitConfig {
      /** Web: base URL of a CloudBase-protocol server (e.g. a cloud-emulator). */
      endpoint?: string;
      region?: string;
      timeout?: number;
      persistence?: 'local' | 'session' | 'none';
    }
  }
}
