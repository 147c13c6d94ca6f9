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
    /**
     * The WebSocket constructor for `watch()` where the runtime has none (Node 18/20 without the `ws`
     * package installed); by default the global `WebSocket`, else `require('ws')`.
     */
    WebSocket?: new (url: string) => any;
  }

  interface IInitConfig extends WebOptions {
    /** One env for everything, or one per service (callContainer then needs `config.env`, as in wx). */
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

  /**
   * wx.request's methods (Taro's `keyof request.Method`). `TRACE` and `CONNECT` cannot be sent from a web
   * page (`fetch` forbids them): the call then fails with -401002. Any case is accepted.
   */
  type CallContainerMethod = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'TRACE' | 'CONNECT';

  interface CallContainerResult<R = any> {
    /** The body: parsed when `dataType` is `'json'` (default) and it is JSON, else the text; an
     *  `ArrayBuffer` with `responseType: 'arraybuffer'`. */
    data: R;
    /** The service's HTTP status: any status the service answers is a success (as `wx.request`). */
    statusCode: number;
    /** Response headers, names lowercased. */
    header: Record<string, any>;
    /** Mini-programs only (wx docs): never set on the web, where `Set-Cookie` is not readable. */
    cookies?: Record<string, any>;
    errMsg: string;
  }

  interface CallContainerParam<P = any, R = any> {
    /** The path on the service, starting with `/` (a query may follow). */
    path: string;
    /** Default `'GET'`. */
    method?: CallContainerMethod;
    /** GET/HEAD: an object becomes the query (`k=v&…`), a string is appended as it is. Otherwise a string is
     *  sent as it is, bytes as bytes, an object as JSON (or `k=v&…` with a form `content-type`). Text at most
     *  100 KB, bytes at most 20 MB (wx cloud hosting's limits); larger fails with -401002. */
    data?: P;
    /** Must name the service in `X-WX-SERVICE` (as wx requires). `content-type` defaults to
     *  `application/json`. `Referer` is refused (as in wx), and so is `Authorization`, which the CloudBase
     *  gateway uses for the caller's token. */
    header?: Record<string, any>;
    /** Per-call timeout in milliseconds (default: the `init` timeout); fails with -501002. */
    timeout?: number;
    /** `'json'` (default) parses a JSON body; anything else gives the text. */
    dataType?: 'json' | (string & {});
    /** `'text'` (default) or `'arraybuffer'`. */
    responseType?: 'text' | 'arraybuffer';
    /** The env on the default `cloud` (instances use their `resourceEnv`, as in wx). */
    config?: IConfig;
    /** The service, as the wx web SDK also accepts it; `header['X-WX-SERVICE']` is the wx way. */
    service?: string;
    /** Aborts the call; it then fails with errCode -1, errMsg `cloud.callContainer:fail abort`. */
    signal?: AbortSignal;
    success?: (res: CallContainerResult<R>) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: CallContainerResult<R> | CloudError) => void;
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
    /** Extra headers on the upload request (values are sent as strings). */
    header?: Record<string, any>;
    /** `'put'` (presigned PUT, default) or `'post'` (COS form upload). */
    method?: 'put' | 'post';
    config?: IConfig;
    /** Aborts the upload (errCode -1, `cloud.uploadFile:fail abort`). */
    signal?: AbortSignal;
    /** Fail with -501002 after this many ms without a byte moving (default 30000); no total-duration limit. */
    stallTimeout?: number;
    success?: (res: UploadFileResult) => void;
    fail?: (err: CloudError) => void;
    complete?: (res: UploadFileResult | CloudError) => void;
  }

  interface DownloadFileResult {
    /** The bytes. */
    data: ArrayBuffer;
    /** An object URL of the bytes (made on first read; every supported runtime has `URL.createObjectURL`). */
    tempFilePath: string;
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
    /** Fail with -501002 after this many ms without a byte arriving (default 30000); no total-duration limit. */
    stallTimeout?: number;
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

  /** Taro's names for the common options (`@tarojs/taro` `cloud.IApiParam` / `cloud.ICloudAPIParam`). */
  interface IApiParam<T = any> {
    config?: IConfig;
    success?: (res: T) => void;
    fail?: (err: CloudError) => void;
    complete?: (val: T | CloudError) => void;
  }
  type ICloudAPIParam<T = any> = IApiParam<T>;
}

/** The database API (`cloud.database()`), as wx.cloud's (api-surface.md §3). */
export namespace DB {
  type DocumentId = string | number;
  interface IDocumentData {
    _id?: DocumentId;
    [key: string]: any;
  }
  type IQueryCondition = Record<string, any> | DatabaseLogicCommand;
  /** Options of the executing methods: Promise without callbacks, `undefined` with them. */
  interface CallOptions<T> {
    /** Accepted as Taro's typings do; the env of a database is the one of `cloud.database({ env })`. */
    config?: cloud.IConfig;
    /** Aborts the call (it then fails with errCode -1). */
    signal?: AbortSignal;
    success?: (res: T) => void;
    fail?: (err: cloud.CloudError) => void;
    complete?: (res: T | cloud.CloudError) => void;
  }
  interface DataOptions<T> extends CallOptions<T> {
    data: IDocumentData;
  }
  interface QueryResult {
    data: IDocumentData[];
    errMsg: string;
  }
  interface QuerySingleResult {
    data: IDocumentData;
    errMsg: string;
  }
  interface AddResult {
    _id: DocumentId;
    errMsg: string;
  }
  interface CountResult {
    total: number;
    errMsg: string;
  }
  interface UpdateResult {
    stats: { updated: number };
    errMsg: string;
  }
  interface SetResult {
    _id: DocumentId;
    stats: { updated: number; created: number };
    errMsg: string;
  }
  interface RemoveResult {
    stats: { removed: number };
    errMsg: string;
  }
  interface AggregateResult {
    list: any[];
    errMsg: string;
  }

  interface Database {
    readonly config: cloud.IConfig;
    readonly command: Command;
    readonly Geo: IGeo;
    serverDate(options?: { offset: number }): ServerDate;
    RegExp(options: { regexp: string; options?: string }): IRegExp;
    collection(collectionName: string): CollectionReference;
  }
  interface ServerDate {
    readonly options: { offset: number };
  }
  interface IRegExp {
    readonly regexp: string;
    readonly options: string;
  }

  interface Query {
    where(condition: IQueryCondition): Query;
    orderBy(fieldPath: string, order: 'asc' | 'desc' | string): Query;
    limit(max: number): Query;
    skip(offset: number): Query;
    field(projection: Record<string, any>): Query;
    get(options: OQ<CallOptions<QueryResult>>): void;
    get(options?: RQ<CallOptions<QueryResult>>): Promise<QueryResult>;
    count(options: OQ<CallOptions<CountResult>>): void;
    count(options?: RQ<CallOptions<CountResult>>): Promise<CountResult>;
    /** Updates every matching document (needs a `where`). */
    update(options: OQ<DataOptions<UpdateResult>>): void;
    update(options: RQ<DataOptions<UpdateResult>>): Promise<UpdateResult>;
    /** Removes every matching document (needs a non-empty `where`). */
    remove(options: OQ<CallOptions<RemoveResult>>): void;
    remove(options?: RQ<CallOptions<RemoveResult>>): Promise<RemoveResult>;
    /** Live results of `where` / `orderBy` / `limit` (`field` is ignored, as in wx). */
    watch(options: IWatchOptions): RealtimeListener;
  }
  /**
   * `db.collection(name)`. The runtime has one query class, so `where` / `orderBy` / `limit` / `skip` / `field`
   * keep `doc`, `add`, `aggregate` and `collectionName` (Taro types them as returning `Collection`); `doc` and
   * `add` ignore the conditions.
   */
  interface CollectionReference extends Query {
    readonly collectionName: string;
    /** The database this collection came from (Taro types it; wx's runtime does not set it). */
    readonly database: Database;
    where(condition: IQueryCondition): CollectionReference;
    orderBy(fieldPath: string, order: 'asc' | 'desc' | string): CollectionReference;
    limit(max: number): CollectionReference;
    skip(offset: number): CollectionReference;
    field(projection: Record<string, any>): CollectionReference;
    doc(docId: DocumentId): DocumentReference;
    add(options: OQ<DataOptions<AddResult>>): void;
    add(options: RQ<DataOptions<AddResult>>): Promise<AddResult>;
    aggregate(): Aggregate;
  }
  interface DocumentReference {
    readonly _id: DocumentId;
    field(projection: Record<string, any>): DocumentReference;
    get(options: OQ<CallOptions<QuerySingleResult>>): void;
    get(options?: RQ<CallOptions<QuerySingleResult>>): Promise<QuerySingleResult>;
    set(options: OQ<DataOptions<SetResult>>): void;
    set(options: RQ<DataOptions<SetResult>>): Promise<SetResult>;
    update(options: OQ<DataOptions<UpdateResult>>): void;
    update(options: RQ<DataOptions<UpdateResult>>): Promise<UpdateResult>;
    remove(options: OQ<CallOptions<RemoveResult>>): void;
    remove(options?: RQ<CallOptions<RemoveResult>>): Promise<RemoveResult>;
    /** Live view of this one document. */
    watch(options: IWatchOptions): RealtimeListener;
  }

  /** One change of a realtime snapshot. */
  interface ChangeEvent {
    id: number;
    dataType: 'init' | 'update' | 'replace' | 'add' | 'remove' | 'limit';
    queueType: 'init' | 'update' | 'enqueue' | 'dequeue';
    docId: string;
    /** The document after the change (before it, for `remove` / `dequeue`). */
    doc: Record<string, any>;
    /** Present on `update`: the changed fields by dotted path. */
    updatedFields?: Record<string, any>;
    /** Present on `update`: the removed fields' paths. */
    removedFields?: string[];
  }
  /** What `onChange` receives: the changes of one event and the whole result after it. */
  interface ISnapshot {
    id: number;
    docChanges: ChangeEvent[];
    docs: Record<string, any>[];
    /** `'init'` on the first snapshot (and after the server re-initialised the watch). */
    type?: 'init';
  }
  interface IWatchOptions {
    onChange: (snapshot: ISnapshot) => void;
    /** Called once, with errCode -402002…-402012, when the watch ends after its retries. */
    onError: (error: cloud.CloudError) => void;
  }
  interface RealtimeListener {
    /** Stops the watch; resolves at once. A no-op when already closed. */
    close(): Promise<void>;
  }
  interface Aggregate {
    addFields(object: object): Aggregate;
    bucket(object: object): Aggregate;
    bucketAuto(object: object): Aggregate;
    count(fieldName: string): Aggregate;
    geoNear(options: object): Aggregate;
    group(object: object): Aggregate;
    limit(value: number): Aggregate;
    lookup(object: object): Aggregate;
    match(condition: IQueryCondition): Aggregate;
    project(object: object): Aggregate;
    replaceRoot(object: object): Aggregate;
    /** `{ size }` as wx; a bare number (as Taro types it) is the size. */
    sample(options: { size: number } | number): Aggregate;
    skip(value: number): Aggregate;
    sort(object: Record<string, 1 | -1> | object): Aggregate;
    sortByCount(object: any): Aggregate;
    unwind(value: string | object): Aggregate;
    end(options: OQ<CallOptions<AggregateResult>>): void;
    end(options?: RQ<CallOptions<AggregateResult>>): Promise<AggregateResult>;
  }

  interface DatabaseQueryCommand extends DatabaseLogicCommand {
    eq(val: any): DatabaseLogicCommand;
    neq(val: any): DatabaseLogicCommand;
    gt(val: any): DatabaseLogicCommand;
    gte(val: any): DatabaseLogicCommand;
    lt(val: any): DatabaseLogicCommand;
    lte(val: any): DatabaseLogicCommand;
    in(val: any[]): DatabaseLogicCommand;
    nin(val: any[]): DatabaseLogicCommand;
    exists(val: boolean): DatabaseLogicCommand;
    size(val: number): DatabaseLogicCommand;
    all(val: any[]): DatabaseLogicCommand;
    elemMatch(val: any): DatabaseLogicCommand;
    mod(divisor: number | [number, number], remainder?: number): DatabaseLogicCommand;
    geoNear(options: GeoNearOptions): DatabaseLogicCommand;
    geoWithin(options: { geometry: GeoPolygon | GeoMultiPolygon }): DatabaseLogicCommand;
    geoIntersects(options: { geometry: GeoValue }): DatabaseLogicCommand;
  }
  interface DatabaseLogicCommand {
    and(...expressions: any[]): DatabaseLogicCommand;
    or(...expressions: any[]): DatabaseLogicCommand;
    nor(...expressions: any[]): DatabaseLogicCommand;
    toJSON(): any;
  }
  interface DatabaseUpdateCommand {
    toJSON(): any;
  }
  interface GeoNearOptions {
    geometry: GeoPoint;
    maxDistance?: number;
    minDistance?: number;
  }
  interface Command {
    eq(val: any): DatabaseQueryCommand;
    neq(val: any): DatabaseQueryCommand;
    gt(val: any): DatabaseQueryCommand;
    gte(val: any): DatabaseQueryCommand;
    lt(val: any): DatabaseQueryCommand;
    lte(val: any): DatabaseQueryCommand;
    in(val: any[]): DatabaseQueryCommand;
    nin(val: any[]): DatabaseQueryCommand;
    exists(val: boolean): DatabaseQueryCommand;
    size(val: number): DatabaseQueryCommand;
    all(val: any[]): DatabaseQueryCommand;
    elemMatch(val: any): DatabaseQueryCommand;
    mod(divisor: number | [number, number], remainder?: number): DatabaseQueryCommand;
    expr(aggregateExpression: any): Record<string, any>;
    geoNear(options: GeoNearOptions): DatabaseQueryCommand;
    geoWithin(options: { geometry: GeoPolygon | GeoMultiPolygon }): DatabaseQueryCommand;
    geoIntersects(options: { geometry: GeoValue }): DatabaseQueryCommand;
    and(...expressions: any[]): DatabaseLogicCommand;
    or(...expressions: any[]): DatabaseLogicCommand;
    nor(...expressions: any[]): DatabaseLogicCommand;
    not(expression: DatabaseLogicCommand | RegExp): DatabaseLogicCommand;
    set(val: any): DatabaseUpdateCommand;
    remove(): DatabaseUpdateCommand;
    inc(val: number): DatabaseUpdateCommand;
    mul(val: number): DatabaseUpdateCommand;
    min(val: any): DatabaseUpdateCommand;
    max(val: any): DatabaseUpdateCommand;
    rename(val: string): DatabaseUpdateCommand;
    bit(val: any): DatabaseUpdateCommand;
    push(...values: any[]): DatabaseUpdateCommand;
    pop(): DatabaseUpdateCommand;
    shift(): DatabaseUpdateCommand;
    unshift(...values: any[]): DatabaseUpdateCommand;
    addToSet(val: any): DatabaseUpdateCommand;
    pull(val: any): DatabaseUpdateCommand;
    pullAll(val: any[]): DatabaseUpdateCommand;
    project: { slice(val: number | [number, number]): Record<string, any> };
    /** `db.command.aggregate.<operator>(param)` → `{ $<operator>: param }` (106 operators). */
    aggregate: Record<string, (param: any) => any> & {
      /** A stage list for `lookup({ from, let, pipeline: $.pipeline().match(…).done(), as })`. */
      pipeline(): AggregatePipeline;
    };
  }

  /** `db.command.aggregate.pipeline()`: the stages of `Aggregate` without a collection; `done()` lists them. */
  type AggregatePipeline = {
    [K in Exclude<keyof Aggregate, 'end'>]: (param: Parameters<Aggregate[K]>[0]) => AggregatePipeline;
  } & { done(): object[] };

  /** A Geo value: `toJSON()` is its GeoJSON (`J`), `toString()` the JSON text. */
  interface GeoValueBase<J extends { type: string; coordinates: any[] }> {
    toJSON(): J;
    toString(): string;
  }
  type Position = [longitude: number, latitude: number];
  interface JSONPoint {
    type: 'Point';
    coordinates: Position;
  }
  interface JSONLineString {
    type: 'LineString';
    coordinates: Position[];
  }
  interface JSONPolygon {
    type: 'Polygon';
    coordinates: Position[][];
  }
  interface JSONMultiPoint {
    type: 'MultiPoint';
    coordinates: Position[];
  }
  interface JSONMultiLineString {
    type: 'MultiLineString';
    coordinates: Position[][];
  }
  interface JSONMultiPolygon {
    type: 'MultiPolygon';
    coordinates: Position[][][];
  }
  interface GeoPoint extends GeoValueBase<JSONPoint> {
    readonly longitude: number;
    readonly latitude: number;
  }
  interface GeoLineString extends GeoValueBase<JSONLineString> {
    readonly points: GeoPoint[];
  }
  interface GeoPolygon extends GeoValueBase<JSONPolygon> {
    readonly lines: GeoLineString[];
  }
  interface GeoMultiPoint extends GeoValueBase<JSONMultiPoint> {
    readonly points: GeoPoint[];
  }
  interface GeoMultiLineString extends GeoValueBase<JSONMultiLineString> {
    readonly lines: GeoLineString[];
  }
  interface GeoMultiPolygon extends GeoValueBase<JSONMultiPolygon> {
    readonly polygons: GeoPolygon[];
  }
  type GeoValue = GeoPoint | GeoLineString | GeoPolygon | GeoMultiPoint | GeoMultiLineString | GeoMultiPolygon;
  /** Callable with or without `new`; GeoJSON accepted too. Ranges and closed rings are checked (throws -401002). */
  interface GeoConstructor<T, A extends any[]> {
    new (...args: A): T;
    (...args: A): T;
  }
  interface IGeo {
    Point: GeoConstructor<GeoPoint, [longitude: number, latitude: number] | [geojson: object]>;
    LineString: GeoConstructor<GeoLineString, [points: GeoPoint[] | object]>;
    Polygon: GeoConstructor<GeoPolygon, [lines: GeoLineString[] | object]>;
    MultiPoint: GeoConstructor<GeoMultiPoint, [points: GeoPoint[] | object]>;
    MultiLineString: GeoConstructor<GeoMultiLineString, [lines: GeoLineString[] | object]>;
    MultiPolygon: GeoConstructor<GeoMultiPolygon, [polygons: GeoPolygon[] | object]>;
  }
}

/** Taro's type names (`Taro.DB.Collection`, `Taro.DB.Query.IQueryResult`, …) for this package's types. */
export namespace DB {
  type Collection = CollectionReference;
  type Document = DocumentReference;
  namespace Database {
    type ServerDate = DB.ServerDate;
    type IRegExp = DB.IRegExp;
    namespace ServerDate {
      type IOptions = { offset: number };
    }
    namespace IRegExp {
      type IRegExpOptions = { regexp: string; options?: string };
    }
  }
  namespace Query {
    type IQueryCondition = DB.IQueryCondition;
    type IStringQueryCondition = string;
    type IQueryResult = QueryResult;
    type IQuerySingleResult = QuerySingleResult;
    type IAddResult = AddResult;
    type IUpdateResult = UpdateResult;
    type ISetResult = SetResult;
    type IRemoveResult = RemoveResult;
    type ICountResult = CountResult;
  }
  namespace Document {
    type DocumentId = DB.DocumentId;
    type IDocumentData = DB.IDocumentData;
    type IDBAPIParam = cloud.IApiParam;
    type IGetDocumentOptions = CallOptions<QuerySingleResult>;
    type ICountDocumentOptions = CallOptions<CountResult>;
    type IAddDocumentOptions = DataOptions<AddResult>;
    type IUpdateDocumentOptions = DataOptions<UpdateResult>;
    type IUpdateSingleDocumentOptions = DataOptions<UpdateResult>;
    type ISetDocumentOptions = DataOptions<SetResult>;
    type ISetSingleDocumentOptions = DataOptions<SetResult>;
    type IRemoveSingleDocumentOptions = CallOptions<RemoveResult>;
    type IUpdateCondition = Record<string, any>;
    type IWatchDocumentOptions = IWatchOptions;
    type ISnapshot = DB.ISnapshot;
    type ChangeEvent = DB.ChangeEvent;
    type IWatcher = RealtimeListener;
  }
  namespace Command {
    type DatabaseLogicCommand = DB.DatabaseLogicCommand;
    type DatabaseQueryCommand = DB.DatabaseQueryCommand;
    type DatabaseUpdateCommand = DB.DatabaseUpdateCommand;
    type NearCommandOptions = GeoNearOptions;
    type WithinCommandOptions = { geometry: GeoPolygon | GeoMultiPolygon };
    type IntersectsCommandOptions = { geometry: GeoValue };
  }
  namespace IGeo {
    type GeoPoint = DB.GeoPoint;
    type GeoLineString = DB.GeoLineString;
    type GeoPolygon = DB.GeoPolygon;
    type GeoMultiPoint = DB.GeoMultiPoint;
    type GeoMultiLineString = DB.GeoMultiLineString;
    type GeoMultiPolygon = DB.GeoMultiPolygon;
    type JSONPoint = DB.JSONPoint;
    type JSONLineString = DB.JSONLineString;
    type JSONPolygon = DB.JSONPolygon;
    type JSONMultiPoint = DB.JSONMultiPoint;
    type JSONMultiLineString = DB.JSONMultiLineString;
    type JSONMultiPolygon = DB.JSONMultiPolygon;
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
  /**
   * Calls a container service (WeChat cloud hosting / CloudBase Run) through the CloudBase gateway:
   * `{method} {gateway}/v1/cloudrun/{service}{path}`. Gateway failures fail: unknown service -501000,
   * service unreachable -501001, timeout -501002; any HTTP answer of the service is a success.
   */
  callContainer<R = any, P = any>(param: OQ<cloud.CallContainerParam<P, R>>): void;
  callContainer<R = any, P = any>(param: RQ<cloud.CallContainerParam<P, R>>): Promise<cloud.CallContainerResult<R>>;
  /** The database; `config.env` must be a string when given (throws -401003 otherwise); `traceUser` is ignored. */
  database(config?: cloud.IConfig): DB.Database;
}

/** The exported `cloud` (what `Taro.cloud` / `wx.cloud` is). */
export interface CloudStatic extends Cloud {
  Cloud: new (options: cloud.IOptions) => Cloud;
}

export declare const cloud: CloudStatic;
export default cloud;
