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
}

/** The exported `cloud` (what `Taro.cloud` / `wx.cloud` is). */
export interface CloudStatic extends Cloud {
  Cloud: new (options: cloud.IOptions) => Cloud;
}

export declare const cloud: CloudStatic;
export default cloud;
