//! Documents in SQLite: `<data dir>/database.sqlite3`, WAL, `synchronous=FULL`.
//!
//! Durability: every acknowledged write is one `BEGIN IMMEDIATE … COMMIT` transaction, and the answer
//! is sent only after `COMMIT` returned. In WAL mode `synchronous=FULL` fsyncs the WAL on every commit,
//! so an acknowledged write survives a `kill -9` of the emulator *and* an OS crash or power loss.
//! (`NORMAL` would survive `kill -9` too, since committed WAL frames are in the OS page cache, but could
//! lose the last commits on power loss; the fsync costs well under a millisecond on an SSD.)
//!
//! Tables:
//! * `collections (cid, env, name, rules JSON, indexes JSON array of field paths, created_ms)`;
//! * `documents (seq, cid, id_key, json)`: `seq` keeps insertion order (the natural order of results),
//!   `id_key` is the canonical JSON text of `_id` (unique per collection, so duplicates are refused);
//! * `doc_index (cid, field, key, seq)`: one row per value of each declared single-field index
//!   (every element of an array: multikey; a missing field indexes as null), `key` an order-preserving
//!   byte encoding (type class byte, then the value) so equality and ranges are B-tree range scans.
//!
//! Planning ([`plan_query`]): an `_id` equality or `$in` reads the documents by primary key; else the
//! first declared index with an equality, `$in` or range condition on scalars (numbers, strings,
//! booleans, dates) gives the candidates; else the collection is scanned. Candidates are always re-checked
//! by the full [`Matcher`](crate::Matcher), so the index only has to give a superset.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use cloud_protocol::codes;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{Map, Value};

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::feed::{ChangeListener, CommitBatch, DocChange};
use crate::value::{path_candidates, split_path};

/// Name of the document database inside the data dir.
pub const DATABASE_FILE: &str = "database.sqlite3";
/// Most declared indexes per collection (CloudBase: 100).
pub const MAX_INDEXES: usize = 100;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    rules TEXT NOT NULL,
    indexes TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (env, name)
);
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    id_key TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (cid, id_key)
);
CREATE TABLE IF NOT EXISTS doc_index (
    cid INTEGER NOT NULL,
    field TEXT NOT NULL,
    key BLOB NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_index_key ON doc_index (cid, field, key, seq);
CREATE INDEX IF NOT EXISTS doc_index_seq ON doc_index (seq);
";

/// A collection's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionMeta {
    /// Internal id.
    pub cid: i64,
    /// The env it belongs to.
    pub env: String,
    /// Its name.
    pub name: String,
    /// Its permission rules (see [`crate::rules`]).
    pub rules: Value,
    /// Declared single-field indexes (dotted paths).
    pub indexes: Vec<String>,
}

/// One stored document.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    /// Insertion sequence number.
    pub seq: i64,
    /// The document.
    pub doc: Value,
}

/// How a query finds its candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// By primary key: these `_id` keys.
    Ids(Vec<String>),
    /// A declared index on `field`, over these byte ranges.
    Index {
        /// The indexed field.
        field: String,
        /// Key ranges (each `(lower, lower inclusive, upper, upper inclusive)`).
        ranges: Vec<KeyRange>,
    },
    /// Every document of the collection.
    Scan,
}

/// A range of index keys.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRange {
    /// Lower bound and whether it is inclusive.
    pub lower: (Vec<u8>, bool),
    /// Upper bound and whether it is inclusive.
    pub upper: (Vec<u8>, bool),
}

fn failed(err: impl std::fmt::Display) -> DbError {
    DbError {
        code: codes::DATABASE_REQUEST_FAILED,
        message: format!("database storage error: {err}"),
    }
}

/// The canonical key of an `_id` value (its JSON text; integral numbers without a fraction), or an
/// error for values that cannot be ids (objects, arrays, null, booleans).
pub fn id_key(id: &Value) -> DbResult<String> {
    match id {
        Value::String(s) => {
            if s.is_empty() || s.len() > 256 {
                return Err(DbError::invalid_param("_id must be 1 to 256 characters"));
            }
            Ok(Value::String(s.clone()).to_string())
        }
        Value::Number(n) => Ok(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        _ => Err(DbError::invalid_param("_id must be a string or a number")),
    }
}

/// A new `_id`: 32 lowercase hex digits.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

const CLASS_NULL: u8 = 0x10;
const CLASS_NUMBER: u8 = 0x20;
const CLASS_STRING: u8 = 0x30;
const CLASS_BOOL: u8 = 0x40;
const CLASS_DATE: u8 = 0x50;

fn f64_key(f: f64) -> [u8; 8] {
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

/// The index key of a scalar value (type class byte + order-preserving bytes), `None` for values an
/// index does not serve (objects other than dates, arrays, regexes).
pub fn index_key(value: Option<&Value>) -> Option<Vec<u8>> {
    let mut key = Vec::new();
    match value {
        None | Some(Value::Null) => key.push(CLASS_NULL),
        Some(Value::Number(n)) => {
            key.push(CLASS_NUMBER);
            key.extend_from_slice(&f64_key(n.as_f64()?));
        }
        Some(Value::String(s)) => {
            key.push(CLASS_STRING);
            key.extend_from_slice(s.as_bytes());
        }
        Some(Value::Bool(b)) => {
            key.push(CLASS_BOOL);
            key.push(u8::from(*b));
        }
        Some(other) => {
            let ms = ejson::date_number(other)?.as_f64()?;
            key.push(CLASS_DATE);
            key.extend_from_slice(&f64_key(ms));
        }
    }
    Some(key)
}

/// The keys a document contributes to an index on `field` (deduplicated).
pub fn index_keys(doc: &Value, field: &str) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for candidate in path_candidates(doc, &split_path(field)) {
        match candidate {
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    keys.extend(index_key(None));
                }
                for item in items {
                    keys.extend(index_key(Some(item)));
                }
            }
            other => keys.extend(index_key(other)),
        }
    }
    keys
}

/// A value an index can serve as an equality or range bound (not null: null also matches missing
/// fields and arrays holding null, which the plan would have to special-case).
fn servable(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null | Value::Array(_) => None,
        Value::Object(_) if ejson::date_number(value).is_none() => None,
        other => index_key(Some(other)),
    }
}

fn eq_range(key: Vec<u8>) -> KeyRange {
    KeyRange {
        lower: (key.clone(), true),
        upper: (key, true),
    }
}

/// True when no other number shares `value`'s index key (|n| < 2^53; non-numbers always).
fn exact_key_bound(value: &Value) -> bool {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let number = match ejson::date_number(value) {
        Some(ms) => ms.as_f64(),
        None => value.as_f64(),
    };
    number.is_none_or(|n| n.abs() < EXACT)
}

/// The range of one field condition (`5`, `{"$eq":5}`, `{"$in":[…]}`, `{"$gt":1,"$lte":9}`), if servable.
fn condition_ranges(condition: &Value) -> Option<Vec<KeyRange>> {
    let Value::Object(ops) = condition else {
        return servable(condition).map(|key| vec![eq_range(key)]);
    };
    if ejson::date_number(condition).is_some() {
        return servable(condition).map(|key| vec![eq_range(key)]);
    }
    if !ops.keys().all(|k| k.starts_with('$')) {
        return None;
    }
    if let Some(value) = ops.get("$eq") {
        return servable(value).map(|key| vec![eq_range(key)]);
    }
    if let Some(Value::Array(items)) = ops.get("$in") {
        return items
            .iter()
            .map(|item| servable(item).map(eq_range))
            .collect();
    }
    let mut lower: Option<(Vec<u8>, bool)> = None;
    let mut upper: Option<(Vec<u8>, bool)> = None;
    for (op, value) in ops {
        // Number and date keys are f64: integers of magnitude ≥ 2^53 share keys with neighbours, so
        // a strict bound there would drop them. Such bounds stay inclusive; the matcher re-checks.
        let inclusive = matches!(op.as_str(), "$gte" | "$lte") || !exact_key_bound(value);
        match op.as_str() {
            "$gt" | "$gte" => lower = Some((servable(value)?, inclusive)),
            "$lt" | "$lte" => upper = Some((servable(value)?, inclusive)),
            _ => {}
        }
    }
    // Comparisons only match within the operand's type class (MongoDB type bracketing).
    let class = lower.as_ref().or(upper.as_ref())?.0[0];
    if lower.as_ref().is_some_and(|l| l.0[0] != class)
        || upper.as_ref().is_some_and(|u| u.0[0] != class)
    {
        return None;
    }
    Some(vec![KeyRange {
        lower: lower.unwrap_or((vec![class], true)),
        upper: upper.unwrap_or((vec![class + 1], false)),
    }])
}

/// The top-level conditions of a query (`$and` members included), as `(path, condition)`.
fn top_conditions<'a>(query: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    let Value::Object(map) = query else { return };
    for (key, value) in map {
        if key == "$and" {
            if let Value::Array(items) = value {
                items.iter().for_each(|item| top_conditions(item, out));
            }
        } else if !key.starts_with('$') {
            out.push((key, value));
        }
    }
}

/// Chooses how to find the candidates of `query` given the declared `indexes`.
pub fn plan_query(query: &Value, indexes: &[String]) -> Plan {
    let mut conditions = Vec::new();
    top_conditions(query, &mut conditions);
    for (path, condition) in &conditions {
        if *path != "_id" {
            continue;
        }
        let ids: Option<Vec<&Value>> = match condition {
            Value::String(_) | Value::Number(_) => Some(vec![condition]),
            Value::Object(ops) if ops.len() == 1 => match ops.iter().next() {
                Some((op, value)) if op == "$eq" => Some(vec![value]),
                Some((op, Value::Array(items))) if op == "$in" => Some(items.iter().collect()),
                _ => None,
            },
            _ => None,
        };
        if let Some(ids) = ids {
            // Values that cannot be ids match nothing stored.
            return Plan::Ids(ids.into_iter().filter_map(|v| id_key(v).ok()).collect());
        }
    }
    for (path, condition) in &conditions {
        if indexes.iter().any(|field| field == path) {
            if let Some(ranges) = condition_ranges(condition) {
                return Plan::Index {
                    field: path.to_string(),
                    ranges,
                };
            }
        }
    }
    Plan::Scan
}

/// A document's identity across commits: collection id and canonical `_id` key.
pub type DocKey = (i64, String);

/// A document a write transaction changed, and its JSON text before (`None`: it did not exist).
type TouchedDoc = (DocKey, Option<String>);

/// What committed writes changed while snapshots were open (for transactions: snapshot reads and
/// write-conflict detection). Empty, and not recorded into, while no snapshot is open.
#[derive(Default)]
struct ChangeLog {
    /// Bumped by every committed write transaction that changed documents while snapshots were open.
    version: u64,
    /// Open snapshots: version → how many.
    open: BTreeMap<u64, usize>,
    /// Per document, in commit order: the version of each change and the document before it
    /// (its JSON text; `None` when it did not exist).
    changes: HashMap<DocKey, Vec<(u64, Option<String>)>>,
}

impl ChangeLog {
    /// Drops the changes no open snapshot can ask about (those at or before the oldest snapshot).
    fn prune(&mut self) {
        match self.open.keys().next().copied() {
            None => self.changes.clear(),
            Some(oldest) => self.changes.retain(|_, list| {
                list.retain(|(version, _)| *version > oldest);
                !list.is_empty()
            }),
        }
    }

    /// The first change of `key` after `snapshot`, if any.
    fn first_change_after(&self, key: &DocKey, snapshot: u64) -> Option<&(u64, Option<String>)> {
        self.changes
            .get(key)?
            .iter()
            .find(|(version, _)| *version > snapshot)
    }
}

/// The document store: one writer connection behind a mutex (SQLite allows one writer at a time anyway)
/// and a pool of read connections, so point reads never queue behind a scan or a write: in WAL mode each
/// read transaction sees the last commit as of its start while writes go on.
pub struct DocStore {
    writer: Mutex<Connection>,
    readers: ReaderPool,
    examined: AtomicU64,
    /// Sequence number of the last commit published to the change feed (read and bumped under `conn`).
    commit_seq: AtomicU64,
    listener: RwLock<Option<ChangeListener>>,
    change_log: Mutex<ChangeLog>,
    /// How many snapshots are open; writes record what they change only while it is non-zero.
    open_snapshots: AtomicUsize,
}

/// Most read connections open at once. A read beyond that waits for one to come back; each connection
/// costs a page cache (2 MiB at most), so this bounds memory too.
pub const MAX_READERS: usize = 16;

/// Idle read connections, opened on demand up to [`MAX_READERS`].
struct ReaderPool {
    path: PathBuf,
    state: Mutex<ReaderState>,
    returned: Condvar,
}

struct ReaderState {
    idle: Vec<Connection>,
    open: usize,
}

/// A read connection lent out of the pool; it goes back when dropped (a panic inside a read
/// included: its transaction was rolled back by then).
struct LentReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl Drop for LentReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(&self.pool.state).idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn configure(conn: &Connection, pragmas: &str) -> rusqlite::Result<()> {
    conn.execute_batch(pragmas)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

impl ReaderPool {
    fn lend(&self) -> DbResult<LentReader<'_>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(LentReader {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                // Opened outside the lock; `query_only` makes a read that tries to write fail loudly.
                let opened = Connection::open(&self.path)
                    .and_then(|conn| configure(&conn, "PRAGMA query_only=ON;").map(|_| conn));
                return match opened {
                    Ok(conn) => Ok(LentReader {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(err) => {
                        lock(&self.state).open -= 1;
                        self.returned.notify_one();
                        Err(failed(err))
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl DocStore {
    /// Opens (or creates) `<dir>/database.sqlite3`.
    pub fn open(dir: &Path) -> std::io::Result<DocStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DATABASE_FILE);
        let conn = Connection::open(&path).map_err(std::io::Error::other)?;
        configure(
            &conn,
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;",
        )
        .and_then(|_| conn.execute_batch(SCHEMA))
        .map_err(std::io::Error::other)?;
        Ok(DocStore {
            writer: Mutex::new(conn),
            readers: ReaderPool {
                path,
                state: Mutex::new(ReaderState {
                    idle: Vec::new(),
                    open: 0,
                }),
                returned: Condvar::new(),
            },
            examined: AtomicU64::new(0),
            commit_seq: AtomicU64::new(0),
            listener: RwLock::new(None),
            change_log: Mutex::new(ChangeLog::default()),
            open_snapshots: AtomicUsize::new(0),
        })
    }

    /// Sets the change-feed listener (see [`crate::feed`]): from now on every committed write
    /// transaction that changed documents is handed to it, in commit order.
    pub fn set_change_listener(&self, listener: ChangeListener) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = Some(listener);
    }

    fn log(&self) -> MutexGuard<'_, ChangeLog> {
        lock(&self.change_log)
    }

    /// Opens a snapshot of the committed state as of now and returns its version: until
    /// [`DocStore::close_snapshot`], [`DocStore::read_at`] answers as of this moment and
    /// [`DocStore::changed_since`] tells which documents later commits touched.
    pub fn open_snapshot(&self) -> u64 {
        // Holding the connection means no write transaction is half done: the snapshot sits between commits.
        let _writer = lock(&self.writer);
        let mut log = self.log();
        let version = log.version;
        *log.open.entry(version).or_default() += 1;
        self.open_snapshots.fetch_add(1, AtomicOrdering::AcqRel);
        version
    }

    /// Closes a snapshot opened by [`DocStore::open_snapshot`].
    pub fn close_snapshot(&self, version: u64) {
        let mut log = self.log();
        if let Some(count) = log.open.get_mut(&version) {
            *count -= 1;
            if *count == 0 {
                log.open.remove(&version);
            }
            self.open_snapshots.fetch_sub(1, AtomicOrdering::AcqRel);
        }
        log.prune();
    }

    /// The document `key` as it was at snapshot `version` (`None`: it did not exist).
    pub fn read_at(&self, version: u64, key: &DocKey) -> DbResult<Option<Value>> {
        let current = self.read(|t| {
            let mut found = None;
            t.scan(key.0, &Plan::Ids(vec![key.1.clone()]), &mut |stored| {
                found = Some(stored.doc);
                Ok(false)
            })?;
            Ok(found)
        })?;
        // Checked after the read: a commit the read saw has its change recorded already.
        let log = self.log();
        match log.first_change_after(key, version) {
            Some((_, Some(before))) => serde_json::from_str(before).map(Some).map_err(failed),
            Some((_, None)) => Ok(None),
            None => Ok(current),
        }
    }

    /// Whether a commit after snapshot `version` changed any of `keys`.
    pub fn changed_since(&self, version: u64, keys: &[DocKey]) -> bool {
        let log = self.log();
        keys.iter()
            .any(|key| log.first_change_after(key, version).is_some())
    }

    /// How many stored documents queries have read and parsed so far (for tests of the planner).
    pub fn documents_examined(&self) -> u64 {
        self.examined.load(AtomicOrdering::Relaxed)
    }

    /// Runs `f` in a read transaction on a pooled read connection (concurrently with other reads and
    /// with the writer); it sees every write committed before it started.
    pub fn read<T>(&self, f: impl FnOnce(&Txn<'_>) -> DbResult<T>) -> DbResult<T> {
        let mut reader = self.readers.lend()?;
        let conn = reader
            .conn
            .as_mut()
            .expect("a lent reader holds its connection");
        self.transaction(conn, TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in a read transaction on the writer connection: no commit can land between the
    /// transaction's start and its snapshot, so [`Txn::commit_seq`] is exactly the last commit it sees
    /// (what a change-feed consumer needs to join a snapshot with later batches). Pooled [`DocStore::read`]s
    /// give no such guarantee; this one waits for writes like a write does.
    pub fn read_consistent<T>(&self, f: impl FnOnce(&Txn<'_>) -> DbResult<T>) -> DbResult<T> {
        let mut conn = lock(&self.writer);
        self.transaction(&mut conn, TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in a write transaction, committed (durably) when `f` succeeds and rolled back otherwise.
    pub fn write<T>(&self, f: impl FnOnce(&Txn<'_>) -> DbResult<T>) -> DbResult<T> {
        let mut conn = lock(&self.writer);
        self.transaction(&mut conn, TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in a transaction of `behavior`, committed when `f` succeeds (dropped, so rolled back, otherwise).
    fn transaction<T>(
        &self,
        conn: &mut Connection,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Txn<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        let tx = conn.transaction_with_behavior(behavior).map_err(failed)?;
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut txn = Txn {
            tx,
            examined: &self.examined,
            changes: listener.as_ref().map(|_| RefCell::new(Vec::new())),
            reconfigured: RefCell::new(Vec::new()),
            commit_seq: self.commit_seq.load(AtomicOrdering::Acquire),
            touched: (self.open_snapshots.load(AtomicOrdering::Acquire) > 0)
                .then(|| RefCell::new(Vec::new())),
        };
        let out = f(&txn)?;
        let changes = txn
            .changes
            .take()
            .map(RefCell::into_inner)
            .unwrap_or_default();
        let touched = txn
            .touched
            .take()
            .map(RefCell::into_inner)
            .unwrap_or_default();
        // Snapshot records go in before the commit becomes visible (the guard is held across it), so a
        // reader that sees the commit also sees the record.
        let log_guard = (!touched.is_empty()).then(|| {
            let mut log = self.log();
            log.version += 1;
            let version = log.version;
            for (key, before) in touched {
                let list = log.changes.entry(key).or_default();
                if list.last().is_none_or(|(v, _)| *v != version) {
                    list.push((version, before));
                }
            }
            log
        });
        let reconfigured = txn.reconfigured.take();
        txn.tx.commit().map_err(failed)?;
        drop(log_guard);
        // Still under the connection lock: batches reach the listener in commit order.
        if let Some(listener) = listener {
            if !changes.is_empty() || !reconfigured.is_empty() {
                let seq = self.commit_seq.fetch_add(1, AtomicOrdering::AcqRel) + 1;
                listener(Arc::new(CommitBatch {
                    seq,
                    changes,
                    reconfigured,
                }));
            }
        }
        Ok(out)
    }
}

/// A transaction on the store.
pub struct Txn<'a> {
    tx: Transaction<'a>,
    examined: &'a AtomicU64,
    /// The document changes made so far, when a change listener is set.
    changes: Option<RefCell<Vec<DocChange>>>,
    /// Collections whose rules or indexes were set.
    reconfigured: RefCell<Vec<(String, String)>>,
    commit_seq: u64,
    /// While snapshots are open: each document this transaction changed and its JSON before.
    touched: Option<RefCell<Vec<TouchedDoc>>>,
}

fn row_to_meta(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, String, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn meta_from(parts: (i64, String, String, String, String)) -> DbResult<CollectionMeta> {
    let (cid, env, name, rules, indexes) = parts;
    Ok(CollectionMeta {
        cid,
        env,
        name,
        rules: serde_json::from_str(&rules).map_err(failed)?,
        indexes: serde_json::from_str(&indexes).map_err(failed)?,
    })
}

impl Txn<'_> {
    /// The [`CommitBatch::seq`] of the last commit published before this transaction began. In a
    /// [`DocStore::read_consistent`] or write transaction it sees exactly the changes of the batches up to
    /// this one; a pooled read may already see a later commit.
    pub fn commit_seq(&self) -> u64 {
        self.commit_seq
    }

    fn record(
        &self,
        meta: &CollectionMeta,
        id: Value,
        before: Option<Value>,
        after: Option<Value>,
        replaced: bool,
    ) {
        if let Some(changes) = &self.changes {
            changes.borrow_mut().push(DocChange {
                env: meta.env.clone(),
                collection: meta.name.clone(),
                id,
                before,
                after,
                replaced,
            });
        }
    }

    /// The collection `name` of `env`, if it exists.
    pub fn find_collection(&self, env: &str, name: &str) -> DbResult<Option<CollectionMeta>> {
        self.tx
            .query_row(
                "SELECT cid, env, name, rules, indexes FROM collections WHERE env = ?1 AND name = ?2",
                params![env, name],
                row_to_meta,
            )
            .optional()
            .map_err(failed)?
            .map(meta_from)
            .transpose()
    }

    /// The collection, or `DATABASE_COLLECTION_NOT_EXIST`.
    pub fn collection(&self, env: &str, name: &str) -> DbResult<CollectionMeta> {
        self.find_collection(env, name)?.ok_or_else(|| DbError {
            code: codes::DATABASE_COLLECTION_NOT_EXIST,
            message: format!("Db or Table not exist: collection {name} does not exist"),
        })
    }

    /// Every collection (of `env`, or of all envs), ordered by env and name.
    pub fn collections(&self, env: Option<&str>) -> DbResult<Vec<CollectionMeta>> {
        let mut stmt = self
            .tx
            .prepare(
                "SELECT cid, env, name, rules, indexes FROM collections
                 WHERE ?1 IS NULL OR env = ?1 ORDER BY env, name",
            )
            .map_err(failed)?;
        let rows = stmt
            .query_map(params![env], row_to_meta)
            .map_err(failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        rows.into_iter().map(meta_from).collect()
    }

    /// Creates a collection; `DATABASE_COLLECTION_ALREADY_EXIST` when it exists.
    pub fn create_collection(
        &self,
        env: &str,
        name: &str,
        rules: &Value,
        indexes: &[String],
        now_ms: i64,
    ) -> DbResult<CollectionMeta> {
        if self.find_collection(env, name)?.is_some() {
            return Err(DbError {
                code: codes::DATABASE_COLLECTION_ALREADY_EXIST,
                message: format!("Table exist: collection {name} already exists"),
            });
        }
        self.tx
            .execute(
                "INSERT INTO collections (env, name, rules, indexes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![env, name, rules.to_string(), Value::from(indexes.to_vec()).to_string(), now_ms],
            )
            .map_err(failed)?;
        let meta = self.collection(env, name)?;
        Ok(meta)
    }

    /// Sets a collection's rules and declared indexes (rebuilding index rows that changed).
    pub fn configure_collection(
        &self,
        meta: &CollectionMeta,
        rules: &Value,
        indexes: &[String],
    ) -> DbResult<CollectionMeta> {
        self.reconfigured
            .borrow_mut()
            .push((meta.env.clone(), meta.name.clone()));
        self.tx
            .execute(
                "UPDATE collections SET rules = ?2, indexes = ?3 WHERE cid = ?1",
                params![
                    meta.cid,
                    rules.to_string(),
                    Value::from(indexes.to_vec()).to_string()
                ],
            )
            .map_err(failed)?;
        let dropped: Vec<&String> = meta
            .indexes
            .iter()
            .filter(|f| !indexes.contains(f))
            .collect();
        for field in dropped {
            self.tx
                .execute(
                    "DELETE FROM doc_index WHERE cid = ?1 AND field = ?2",
                    params![meta.cid, field],
                )
                .map_err(failed)?;
        }
        let added: Vec<String> = indexes
            .iter()
            .filter(|f| !meta.indexes.contains(f))
            .cloned()
            .collect();
        if !added.is_empty() {
            let docs = self.all(meta.cid)?;
            for stored in docs {
                self.write_index(meta.cid, &added, stored.seq, &stored.doc)?;
            }
        }
        self.collection(&meta.env, &meta.name)
    }

    fn write_index(&self, cid: i64, fields: &[String], seq: i64, doc: &Value) -> DbResult<()> {
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO doc_index (cid, field, key, seq) VALUES (?1, ?2, ?3, ?4)")
            .map_err(failed)?;
        for field in fields {
            for key in index_keys(doc, field) {
                stmt.execute(params![cid, field, key, seq])
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    fn parse(&self, json: &str) -> DbResult<Value> {
        self.examined.fetch_add(1, AtomicOrdering::Relaxed);
        serde_json::from_str(json).map_err(failed)
    }

    fn all(&self, cid: i64) -> DbResult<Vec<StoredDoc>> {
        let mut out = Vec::new();
        self.scan(cid, &Plan::Scan, &mut |stored| {
            out.push(stored);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `visit` with each candidate document of `plan` in insertion order, until it returns false.
    pub fn scan(
        &self,
        cid: i64,
        plan: &Plan,
        visit: &mut dyn FnMut(StoredDoc) -> DbResult<bool>,
    ) -> DbResult<()> {
        match plan {
            Plan::Scan => {
                let mut stmt = self
                    .tx
                    .prepare_cached("SELECT seq, json FROM documents WHERE cid = ?1 ORDER BY seq")
                    .map_err(failed)?;
                let mut rows = stmt.query(params![cid]).map_err(failed)?;
                while let Some(row) = rows.next().map_err(failed)? {
                    let seq: i64 = row.get(0).map_err(failed)?;
                    let json: String = row.get(1).map_err(failed)?;
                    let doc = self.parse(&json)?;
                    if !visit(StoredDoc { seq, doc })? {
                        break;
                    }
                }
                Ok(())
            }
            Plan::Ids(keys) => {
                let mut found = Vec::new();
                let mut stmt = self
                    .tx
                    .prepare_cached(
                        "SELECT seq, json FROM documents WHERE cid = ?1 AND id_key = ?2",
                    )
                    .map_err(failed)?;
                let unique: BTreeSet<&String> = keys.iter().collect();
                for key in unique {
                    if let Some((seq, json)) = stmt
                        .query_row(params![cid, key], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                        })
                        .optional()
                        .map_err(failed)?
                    {
                        found.push((seq, json));
                    }
                }
                self.visit_sorted(found, visit)
            }
            Plan::Index { field, ranges } => {
                let mut seqs = BTreeSet::new();
                for range in ranges {
                    let lower_op = if range.lower.1 { ">=" } else { ">" };
                    let upper_op = if range.upper.1 { "<=" } else { "<" };
                    let sql = format!(
                        "SELECT seq FROM doc_index WHERE cid = ?1 AND field = ?2 AND key {lower_op} ?3 AND key {upper_op} ?4"
                    );
                    let mut stmt = self.tx.prepare_cached(&sql).map_err(failed)?;
                    let rows = stmt
                        .query_map(params![cid, field, range.lower.0, range.upper.0], |row| {
                            row.get::<_, i64>(0)
                        })
                        .map_err(failed)?;
                    for seq in rows {
                        seqs.insert(seq.map_err(failed)?);
                    }
                }
                let mut stmt = self
                    .tx
                    .prepare_cached("SELECT json FROM documents WHERE seq = ?1")
                    .map_err(failed)?;
                for seq in seqs {
                    let json: Option<String> = stmt
                        .query_row(params![seq], |row| row.get(0))
                        .optional()
                        .map_err(failed)?;
                    if let Some(json) = json {
                        let doc = self.parse(&json)?;
                        if !visit(StoredDoc { seq, doc })? {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn visit_sorted(
        &self,
        mut found: Vec<(i64, String)>,
        visit: &mut dyn FnMut(StoredDoc) -> DbResult<bool>,
    ) -> DbResult<()> {
        found.sort_by_key(|(seq, _)| *seq);
        for (seq, json) in found {
            let doc = self.parse(&json)?;
            if !visit(StoredDoc { seq, doc })? {
                break;
            }
        }
        Ok(())
    }

    /// Inserts `doc` (which must carry `_id`); a duplicate `_id` is `INVALID_PARAM`.
    pub fn insert(&self, meta: &CollectionMeta, doc: &Value) -> DbResult<i64> {
        let id = doc
            .get("_id")
            .ok_or_else(|| DbError::invalid_param("document has no _id"))?;
        let key = id_key(id)?;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO documents (cid, id_key, json) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute(params![meta.cid, key, doc.to_string()]))
            .map_err(failed)?;
        if inserted == 0 {
            return Err(DbError::invalid_param(format!(
                "E11000 duplicate key error collection: {} index: _id_ dup key: {{ _id: {} }}",
                meta.name, key
            )));
        }
        let seq = self.tx.last_insert_rowid();
        self.write_index(meta.cid, &meta.indexes, seq, doc)?;
        self.record(meta, id.clone(), None, Some(doc.clone()), false);
        if let Some(touched) = &self.touched {
            touched.borrow_mut().push(((meta.cid, key), None));
        }
        Ok(seq)
    }

    /// Reads the document at `seq` once, before a write changes it, for whoever needs it: the snapshot log
    /// (while snapshots are open) gets its JSON text; the change feed (when a listener is set) its value,
    /// returned. No read at all when neither is on.
    fn before_change(&self, meta: &CollectionMeta, seq: i64) -> DbResult<Option<Value>> {
        if self.changes.is_none() && self.touched.is_none() {
            return Ok(None);
        }
        let row: Option<(String, String)> = self
            .tx
            .prepare_cached("SELECT id_key, json FROM documents WHERE seq = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![seq], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(failed)?;
        let Some((key, json)) = row else {
            return Ok(None);
        };
        let before = if self.changes.is_some() {
            Some(serde_json::from_str(&json).map_err(failed)?)
        } else {
            None
        };
        if let Some(touched) = &self.touched {
            touched.borrow_mut().push(((meta.cid, key), Some(json)));
        }
        Ok(before)
    }

    /// Stores `doc` in place of the document at `seq` (same `_id`): the result of updating some of
    /// its fields (update operators, a merge).
    pub fn replace(&self, meta: &CollectionMeta, seq: i64, doc: &Value) -> DbResult<()> {
        self.store_over(meta, seq, doc, false)
    }

    /// Stores `doc` in place of the document at `seq` (same `_id`) as a whole-document replacement
    /// (`set()`): the change feed marks it [`DocChange::replaced`].
    pub fn replace_whole(&self, meta: &CollectionMeta, seq: i64, doc: &Value) -> DbResult<()> {
        self.store_over(meta, seq, doc, true)
    }

    fn store_over(
        &self,
        meta: &CollectionMeta,
        seq: i64,
        doc: &Value,
        whole: bool,
    ) -> DbResult<()> {
        let before = self.before_change(meta, seq)?;
        self.tx
            .prepare_cached("UPDATE documents SET json = ?2 WHERE seq = ?1")
            .and_then(|mut stmt| stmt.execute(params![seq, doc.to_string()]))
            .map_err(failed)?;
        if !meta.indexes.is_empty() {
            self.tx
                .prepare_cached("DELETE FROM doc_index WHERE seq = ?1")
                .and_then(|mut stmt| stmt.execute(params![seq]))
                .map_err(failed)?;
            self.write_index(meta.cid, &meta.indexes, seq, doc)?;
        }
        if let Some(before) = before {
            let id = doc.get("_id").cloned().unwrap_or(Value::Null);
            self.record(meta, id, Some(before), Some(doc.clone()), whole);
        }
        Ok(())
    }

    /// Deletes the document at `seq`.
    pub fn delete(&self, meta: &CollectionMeta, seq: i64) -> DbResult<()> {
        let before = self.before_change(meta, seq)?;
        self.tx
            .prepare_cached("DELETE FROM documents WHERE seq = ?1")
            .and_then(|mut stmt| stmt.execute(params![seq]))
            .map_err(failed)?;
        if !meta.indexes.is_empty() {
            self.tx
                .prepare_cached("DELETE FROM doc_index WHERE seq = ?1")
                .and_then(|mut stmt| stmt.execute(params![seq]))
                .map_err(failed)?;
        }
        if let Some(before) = before {
            let id = before.get("_id").cloned().unwrap_or(Value::Null);
            self.record(meta, id, Some(before), None, false);
        }
        Ok(())
    }

    /// Drops a collection with its documents and index rows (the dashboard's "delete collection").
    pub fn drop_collection(&self, meta: &CollectionMeta) -> DbResult<()> {
        for sql in [
            "DELETE FROM doc_index WHERE cid = ?1",
            "DELETE FROM documents WHERE cid = ?1",
            "DELETE FROM collections WHERE cid = ?1",
        ] {
            self.tx.execute(sql, params![meta.cid]).map_err(failed)?;
        }
        Ok(())
    }

    /// How many documents a collection holds.
    pub fn document_count(&self, meta: &CollectionMeta) -> DbResult<u64> {
        self.tx
            .query_row(
                "SELECT COUNT(*) FROM documents WHERE cid = ?1",
                params![meta.cid],
                |row| row.get::<_, i64>(0),
            )
            .map(|count| count as u64)
            .map_err(failed)
    }

    /// Every document of a collection, in insertion order.
    pub fn documents(&self, meta: &CollectionMeta) -> DbResult<Vec<Value>> {
        Ok(self.all(meta.cid)?.into_iter().map(|s| s.doc).collect())
    }

    /// `EXPLAIN QUERY PLAN` of the SQL an index plan runs (for tests).
    pub fn explain_index_lookup(&self) -> DbResult<String> {
        let mut stmt = self
            .tx
            .prepare(
                "EXPLAIN QUERY PLAN SELECT seq FROM doc_index WHERE cid = 1 AND field = 'f' AND key >= x'20' AND key <= x'30'",
            )
            .map_err(failed)?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(3))
            .map_err(failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        Ok(rows.join("; "))
    }
}

/// An object with `_id` first (inserting the given id), as stored documents are laid out.
pub fn with_id_first(doc: Map<String, Value>, id: Value) -> Value {
    let mut out = Map::new();
    out.insert("_id".to_string(), id);
    for (k, v) in doc {
        if k != "_id" {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_keys_keep_numeric_order() {
        let values = [-1e300, -5.5, -1.0, 0.0, 1.0, 2.5, 10.0, 1e300];
        let keys: Vec<Vec<u8>> = values
            .iter()
            .map(|v| index_key(Some(&json!(v))).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(index_key(Some(&json!(1))), index_key(Some(&json!(1.0))));
    }

    #[test]
    fn range_bounds_do_not_lose_integers_beyond_2_pow_53() {
        // 2^53 + 1 and 2^53 share an f64 key: a strict bound on the key would drop the larger one.
        let dir = tempfile::tempdir().unwrap();
        let store = DocStore::open(dir.path()).unwrap();
        let meta = store
            .write(|t| t.create_collection("e", "c", &json!({}), &["n".to_string()], 0))
            .unwrap();
        store
            .write(|t| {
                t.insert(&meta, &json!({"_id": "a", "n": 9_007_199_254_740_992_i64}))?;
                t.insert(&meta, &json!({"_id": "b", "n": 9_007_199_254_740_993_i64}))
            })
            .unwrap();
        for (query, want) in [
            (json!({"n": {"$gt": 9_007_199_254_740_992_i64}}), vec!["b"]),
            (json!({"n": {"$lt": 9_007_199_254_740_993_i64}}), vec!["a"]),
            (json!({"n": 9_007_199_254_740_993_i64}), vec!["b"]),
        ] {
            let plan = plan_query(&query, &meta.indexes);
            assert!(matches!(plan, Plan::Index { .. }), "{query}");
            let matcher = crate::Matcher::new(&query).unwrap();
            let mut seen = Vec::new();
            store
                .read(|t| {
                    t.scan(meta.cid, &plan, &mut |s| {
                        if matcher.matches(&s.doc)? {
                            seen.push(s.doc["_id"].as_str().unwrap().to_owned());
                        }
                        Ok(true)
                    })
                })
                .unwrap();
            assert_eq!(seen, want, "{query}");
        }
    }

    #[test]
    fn plans_use_ids_then_declared_indexes() {
        let indexes = vec!["age".to_string()];
        assert_eq!(
            plan_query(&json!({"_id": "a"}), &indexes),
            Plan::Ids(vec!["\"a\"".into()])
        );
        assert!(matches!(
            plan_query(&json!({"x": 1, "$and": [{"age": {"$gt": 3}}]}), &indexes),
            Plan::Index { .. }
        ));
        assert_eq!(plan_query(&json!({"x": 1}), &indexes), Plan::Scan);
        assert_eq!(plan_query(&json!({"age": null}), &indexes), Plan::Scan);
        assert_eq!(
            plan_query(&json!({"age": {"$gt": 1, "$lt": "z"}}), &indexes),
            Plan::Scan
        );
    }

    #[test]
    fn store_round_trip_and_duplicate_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocStore::open(dir.path()).unwrap();
        let meta = store
            .write(|t| t.create_collection("e", "c", &json!({}), &["n".to_string()], 0))
            .unwrap();
        store
            .write(|t| {
                for n in 0..50 {
                    t.insert(&meta, &json!({"_id": format!("d{n}"), "n": n}))?;
                }
                Ok(())
            })
            .unwrap();
        let err = store
            .write(|t| t.insert(&meta, &json!({"_id": "d1"})))
            .unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAM);
        let before = store.documents_examined();
        let plan = plan_query(&json!({"n": {"$gte": 10, "$lt": 13}}), &meta.indexes);
        let mut seen = Vec::new();
        store
            .read(|t| {
                t.scan(meta.cid, &plan, &mut |s| {
                    seen.push(s.doc["n"].as_i64().unwrap());
                    Ok(true)
                })
            })
            .unwrap();
        assert_eq!(seen, vec![10, 11, 12]);
        assert_eq!(store.documents_examined() - before, 3);
        let explain = store.read(|t| t.explain_index_lookup()).unwrap();
        assert!(
            explain.contains("USING") && explain.contains("INDEX"),
            "{explain}"
        );
    }

    /// A read in progress holds neither the other reads nor the writer: while one read transaction is
    /// open (parked on a channel), a second read, a write, and a read that sees that write all complete;
    /// a read that tries to write is refused (`query_only`).
    #[test]
    fn reads_run_beside_a_long_read_and_the_writer() {
        use std::sync::mpsc;
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let store = DocStore::open(dir.path()).unwrap();
        let meta = store
            .write(|t| t.create_collection("e", "c", &json!({}), &[], 0))
            .unwrap();
        store
            .write(|t| t.insert(&meta, &json!({"_id": "a"})))
            .unwrap();
        let count = |t: &Txn<'_>| -> DbResult<usize> {
            let mut n = 0;
            t.scan(meta.cid, &Plan::Scan, &mut |_| {
                n += 1;
                Ok(true)
            })?;
            Ok(n)
        };
        let (entered_tx, entered) = mpsc::channel();
        let (release_tx, release) = mpsc::channel::<()>();
        let (store, count) = (&store, &count);
        std::thread::scope(|scope| {
            let long_read = scope.spawn(move || {
                store.read(|t| {
                    let before = count(t)?;
                    entered_tx.send(()).unwrap();
                    release.recv_timeout(Duration::from_secs(10)).unwrap();
                    // Its snapshot is the one it started with.
                    Ok((before, count(t)?))
                })
            });
            entered.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(store.read(count).unwrap(), 1);
            store
                .write(|t| t.insert(&meta, &json!({"_id": "b"})))
                .unwrap();
            assert_eq!(store.read(count).unwrap(), 2);
            release_tx.send(()).unwrap();
            assert_eq!(long_read.join().unwrap().unwrap(), (1, 1));
        });
        let refused = store
            .read(|t| t.insert(&meta, &json!({"_id": "c"})))
            .unwrap_err();
        assert_eq!(refused.code, codes::DATABASE_REQUEST_FAILED);
        assert_eq!(store.read(count).unwrap(), 2);
    }
}
