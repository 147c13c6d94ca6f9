// Types of taro-cloud-wasm: a superset of Taro's `cloud` typings (api-surface.md §2.2/§2.3) with the web
// options, `requestID`, numeric `errCode` and a usable `CloudID` return type.

/** Options with at least one of success / fail / complete: callback style, returns `void`. */
export type OQ<T extends Partial<Record<'complete' | 'success' | 'fail', (...args: any[]) => any>>> =
  | (RQ<T> & Required<Pick<T, 'success'>>)
  | (RQ<T> & Required<Pick<T, 'fail'>>)
  | (RQ<T> & Required<Pick<T, 'complete'>>)
  | (RQ<T> & Required<Pick<T, 'success' | 'fail'>>)
  | (RQ<T> & Required<Pick<T, 'success' | 'complete'>>)
  | (RQ<T> & Required<Pick<T, 'fail' | 'complete'>>)
  | (RQ<T> & Required<Pick<T, 'fail' | 'complete' | 'success'>>);
/** Options without success / fail / complete: Promise style. */
export type RQ<T extends Partial<Record<'complete' | 'success' | 'fail', (...args: any[]) => any>>> = Pick<
  T,
  Exclude<keyof T, 'complete' | 'success' | 'fail'>
>;

export namespace cloud {
  /** What `fail`, `complete` and a rejection receive: an `Error` with wx's fields. */
  interface CloudError extends Error {
    /** Numeric wx errCode, e.g. -404011 (function failed), -501000 (not found), -501002 (timeout). */
    errCode: number;
    /** `<api>:fail <errCode> <description>. <detail>`; equal to `message`. */
    errMsg: string;
    /** The server request id, when known. */
    requestID?: string;
    /** The CloudBase string code (`FUNCTION_NOT_FOUND`, `FUNCTIONS_EXECUTE_FAIL`, …), when there is one. */
    code?: string;
  }

  /** Web-only options (accepted by `init` and `new Cloud`). */
  interface WebOptions {
    /** Base URL such as `http://127.0.0.1:8080`; default `https://{env}.{region}.tcb-api.tencentcloudapi.com`. */
    endpoint?: string;
    /** CloudBase region (default `ap-shanghai`); sent as `X-TCB-Region` when given. */
    region?: string;
    /** Per-request timeout in milliseconds (default 15000). */
    timeout?: number;
    /** Where credentials are kept (default `'local'`). */
    persistence?: 'local' | 'session' | 'none';
  }

  interface IInitConfig extends WebOptions {
    env?: string | { database?: string; functions?: string; storage?: string };
    traceUser?: boolean;
  }

  interface IConfig {
    /** Overrides the init env on the default `cloud` (ignored on instances, as in wx). */
    env?: string;
    traceUser?: boolean;
  }

  interface IOptions extends WebOptions {
    resourceAppid?: string;
    resourceEnv: string;
    traceUser?: boolean;
  }

  interface CallFunctionResult {
    /** What the function returned (JSON-decoded). */
    result: any;
    requestID: string;
    errMsg: string;
  }

  interface CallFunctionParam {
    name: string;
    data?: Record<string, any>;
    slow?: boolean;
    config?: IConfig;
    /** Aborts the call; it then fails with errCode -1, errMsg `cloud.callFunction:fail abort`. */
    signal?: AbortSignal;
    success?: (res: CallFunctionResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: CallFunctionResult | CloudError) => void;
  }

  /** `onProgressUpdate` events of an upload (`progress` is a whole percent, 0-100). */
  interface UploadProgress {
    progress: number;
    totalBytesSent: number;
    totalBytesExpectedToSend: number;
  }

  /** `onProgressUpdate` events of a download (`totalBytesExpectedToWrite` is 0 until known). */
  interface DownloadProgress {
    progress: number;
    totalBytesWritten: number;
    totalBytesExpectedToWrite: number;
  }

  interface HeadersReceived {
    header: Record<string, string>;
  }

  /** What `uploadFile` returns in callback style. `off…` without a listener removes every listener. */
  interface UploadTask {
    abort(): void;
    onProgressUpdate(callback: (res: UploadProgress) => void): void;
    offProgressUpdate(callback?: (res: UploadProgress) => void): void;
    onHeadersReceived(callback: (res: HeadersReceived) => void): void;
    offHeadersReceived(callback?: (res: HeadersReceived) => void): void;
  }

  /** What `downloadFile` returns in callback style. */
  interface DownloadTask {
    abort(): void;
    onProgressUpdate(callback: (res: DownloadProgress) => void): void;
    offProgressUpdate(callback?: (res: DownloadProgress) => void): void;
    onHeadersReceived(callback: (res: HeadersReceived) => void): void;
    offHeadersReceived(callback?: (res: HeadersReceived) => void): void;
  }

  interface UploadFileResult {
    /** `cloud://{env}.{bucket}/{cloudPath}`. */
    fileID: string;
    /** The upload URL's status: 200 (PUT) or 201 (POST form). */
    statusCode: number;
    errMsg: string;
  }

  interface UploadFileParam {
    /** Object key; checked against the naming rules before any I/O (-401002). Same path overwrites. */
    cloudPath: string;
    /** The bytes (web). */
    file?: Blob | ArrayBuffer | ArrayBufferView;
    /** A `blob:` / object URL (what Taro H5's chooseImage returns), or a Blob. */
    filePath?: string | Blob;
    /** Extra headers on the upload request. */
    header?: Record<string, string>;
    /** `'put'` (presigned PUT, default) or `'post'` (COS form upload). */
    method?: 'put' | 'post';
    config?: IConfig;
    /** Aborts the upload (errCode -1, `cloud.uploadFile:fail abort`). */
    signal?: AbortSignal;
    success?: (res: UploadFileResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: UploadFileResult | CloudError) => void;
  }

  interface DownloadFileResult {
    /** The bytes. */
    data: ArrayBuffer;
    /** An object URL of the bytes, where the runtime has `URL.createObjectURL`. */
    tempFilePath?: string;
    statusCode: number;
    header: Record<string, string>;
    /** `'downloadFile:ok'` (no `cloud.` prefix, as wx). */
    errMsg: string;
  }

  interface DownloadFileParam {
    fileID: string;
    cloudPath?: string;
    config?: IConfig;
    signal?: AbortSignal;
    success?: (res: DownloadFileResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: DownloadFileResult | CloudError) => void;
  }

  interface GetTempFileURLResultItem {
    fileID: string;
    /** `''` when the item failed. */
    tempFileURL: string;
    /** Seconds. */
    maxAge: number;
    /** 0 on success, else the storage errCode (e.g. -503003 file not found). */
    status: number;
    /** `'ok'` or the reason. */
    errMsg: string;
  }

  interface GetTempFileURLResult {
    fileList: GetTempFileURLResultItem[];
    errMsg: string;
  }

  interface GetTempFileURLParam {
    /** At most 50 (-401002); `maxAge` in seconds. */
    fileList: (string | { fileID: string; maxAge?: number })[];
    config?: IConfig;
    signal?: AbortSignal;
    success?: (res: GetTempFileURLResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: GetTempFileURLResult | CloudError) => void;
  }

  interface DeleteFileResultItem {
    fileID: string;
    status: number;
    errMsg: string;
  }

  interface DeleteFileResult {
    fileList: DeleteFileResultItem[];
    errMsg: string;
  }

  interface DeleteFileParam {
    /** At most 50 fileIDs (-401002). */
    fileList: string[];
    config?: IConfig;
    signal?: AbortSignal;
    success?: (res: DeleteFileResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: DeleteFileResult | CloudError) => void;
  }

  interface CloudID {
    readonly cloudID: string;
    toJSON(): string;
    toString(): string;
  }

  interface CloudIDConstructor {
    new (cloudID: string): CloudID;
    (cloudID: string): CloudID;
  }
}

/** One Cloud: the default `cloud` and `new cloud.Cloud(...)` instances share these members. */
export interface Cloud {
  /** Default `cloud`: first call wins. Instance: makes it usable. Sign-in happens lazily on first use. */
  init(config?: cloud.IInitConfig): Promise<void>;
  CloudID: cloud.CloudIDConstructor;
  callFunction(param: OQ<cloud.CallFunctionParam>): void;
  callFunction(param: RQ<cloud.CallFunctionParam>): Promise<cloud.CallFunctionResult>;
  uploadFile(param: OQ<cloud.UploadFileParam>): cloud.UploadTask;
  uploadFile(param: RQ<cloud.UploadFileParam>): Promise<cloud.UploadFileResult>;
  downloadFile(param: OQ<cloud.DownloadFileParam>): cloud.DownloadTask;
  downloadFile(param: RQ<cloud.DownloadFileParam>): Promise<cloud.DownloadFileResult>;
  getTempFileURL(param: OQ<cloud.GetTempFileURLParam>): void;
  getTempFileURL(param: RQ<cloud.GetTempFileURLParam>): Promise<cloud.GetTempFileURLResult>;
  deleteFile(param: OQ<cloud.DeleteFileParam>): void;
  deleteFile(param: RQ<cloud.DeleteFileParam>): Promise<cloud.DeleteFileResult>;
}

/** The exported `cloud` (what `Taro.cloud` / `wx.cloud` is). */
export interface CloudStatic extends Cloud {
  Cloud: new (options: cloud.IOptions) => Cloud;
}

export declare const cloud: CloudStatic;
export default cloud;
