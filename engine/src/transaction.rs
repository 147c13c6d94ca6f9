//! Multi-request transactions of the admin protocol (`db.runTransaction` / `db.startTransaction` in
//! `wx-server-sdk`): start → single-document reads and writes carrying the transaction id → commit or
//! abort.
//!
//! Semantics (MongoDB's snapshot isolation, as CloudBase runs it):
//! * **Snapshot reads.** A transaction reads the committed state as of its start (through
//!   [`DocStore::read_at`]) plus its own writes; commits made meanwhile are invisible to it.
//! * **Buffered writes.** Writes are kept in the transaction until commit, then applied in one store
//!   write transaction through the store's shared write path; an abort (or expiry) discards them, so
//!   nobody else ever sees them.
//! * **Write conflicts, first committer wins.** At commit, if any document the transaction wrote was
//!   changed by a commit after its start (another transaction or a plain write), nothing is applied and
//!   the commit fails with `DATABASE_TRANSACTION_CONFLICT` — the code `wx-server-sdk`'s `runTransaction`
//!   retries on. Conflicts are found at commit rather than at the write (where MongoDB finds some), since
//!   that is the only place the SDK retries; reads never conflict.
//! * **Single documents only**, addressed by `_id`, as CloudBase allows inside transactions.
//! * A transaction lives at most [`TRANSACTION_LIFETIME`] (MongoDB's `transactionLifetimeLimitSeconds`
//!   default); later requests for it fail, and its writes are discarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cloud_protocol::{codes, limits};
use serde_json::Value;

use crate::error::{DbError, DbResult};
use crate::store::{id_key, with_id_first, DocKey, DocStore, Plan};
use crate::update::{apply_update, prepare_document, replace_document};

/// How long a transaction may stay open.
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(60);
/// Most transactions open at once.
pub const MAX_OPEN_TRANSACTIONS: usize = 1000;
/// Most distinct documents one transaction may write.
pub const MAX_TRANSACTION_WRITES: usize = 1000;

/// The state one write left a document in: `None` when removed.
struct Pending {
    collection: String,
    key: DocKey,
    doc: Option<Value>,
    /// Some write of the transaction replaced the whole document (`set()`).
    replaced: bool,
}

struct OpenTransaction {
    env: String,
    snapshot: u64,
    started: Instant,
    /// In first-write order, one entry per document.
    writes: Vec<Pending>,
    /// Set once committed, aborted or expired: later requests fail.
    finished: bool,
}

/// The open transactions of one store.
pub struct Transactions {
    open: Mutex<HashMap<String, Arc<Mutex<OpenTransaction>>>>,
    lifetime: Duration,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions::with_lifetime(TRANSACTION_LIFETIME)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn unknown(id: &str, lifetime: Duration) -> DbError {
    DbError {
        code: codes::DATABASE_REQUEST_FAILED,
        message: format!(
            "transaction {id} does not exist: it was committed, aborted or ran past {} seconds",
            lifetime.as_secs_f64()
        ),
    }
}

/// The error of a commit that lost a write conflict.
pub fn conflict() -> DbError {
    DbError {
        code: codes::DATABASE_TRANSACTION_CONFLICT,
        message: "WriteConflict: a document this transaction writes was changed by another commit \
                  after the transaction started; retry the transaction"
            .to_string(),
    }
}

impl Transactions {
    /// No open transactions; each may live [`TRANSACTION_LIFETIME`].
    pub fn new() -> Transactions {
        Transactions::default()
    }

    /// No open transactions; each may live `lifetime`.
    pub fn with_lifetime(lifetime: Duration) -> Transactions {
        Transactions {
            open: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    /// How many transactions are open.
    pub fn open_count(&self) -> usize {
        lock(&self.open).len()
    }

    /// Starts a transaction on `env` and returns its id.
    pub fn start(&self, store: &DocStore, env: &str) -> DbResult<String> {
        self.expire_stale(store);
        let mut open = lock(&self.open);
        if open.len() >= MAX_OPEN_TRANSACTIONS {
            return Err(DbError {
                code: codes::EXCEED_CONCURRENT_REQUEST_LIMIT,
                message: format!(
                    "at most {MAX_OPEN_TRANSACTIONS} transactions may be open at once"
                ),
            });
        }
        let id = format!("txn-{}", hex::encode(rand::random::<[u8; 8]>()));
        let snapshot = store.open_snapshot();
        open.insert(
            id.clone(),
            Arc::new(Mutex::new(OpenTransaction {
                env: env.to_string(),
                snapshot,
                started: Instant::now(),
                writes: Vec::new(),
                finished: false,
            })),
        );
        Ok(id)
    }

    /// Aborts the transactions past their lifetime (cheap when none is open). Call it on every request,
    /// so an abandoned transaction does not keep the store recording changes for long.
    pub fn expire_stale(&self, store: &DocStore) {
        let expired: Vec<Arc<Mutex<OpenTransaction>>> = {
            let mut open = lock(&self.open);
            if open.is_empty() {
                return;
            }
            let ids: Vec<String> = open
                .iter()
                .filter(|(_, t)| {
                    // A transaction busy with a request is not expired under its feet.
                    t.try_lock()
                        .is_ok_and(|t| t.started.elapsed() > self.lifetime)
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| open.remove(id)).collect()
        };
        for transaction in expired {
            finish(store, &mut lock(&transaction));
        }
    }

    /// Runs `f` on the open transaction `id` of `env`.
    fn with<T>(
        &self,
        store: &DocStore,
        id: &str,
        env: &str,
        f: impl FnOnce(&mut OpenTransaction) -> DbResult<T>,
    ) -> DbResult<T> {
        let transaction = lock(&self.open)
            .get(id)
            .cloned()
            .ok_or_else(|| unknown(id, self.lifetime))?;
        let mut transaction = lock(&transaction);
        if transaction.finished {
            return Err(unknown(id, self.lifetime));
        }
        if transaction.started.elapsed() > self.lifetime {
            lock(&self.open).remove(id);
            finish(store, &mut transaction);
            return Err(unknown(id, self.lifetime));
        }
        if transaction.env != env {
            return Err(DbError::invalid_param(format!(
                "transaction {id} belongs to env {}, not {env}",
                transaction.env
            )));
        }
        f(&mut transaction)
    }

    /// The document `doc_id` of `collection` as the transaction sees it.
    pub fn get(
        &self,
        store: &DocStore,
        id: &str,
        env: &str,
        collection: &str,
        doc_id: &Value,
    ) -> DbResult<Option<Value>> {
        let key = document_key(store, env, collection, doc_id)?;
        self.with(store, id, env, |t| visible(store, t, &key))
    }

    /// Inserts `doc` (an `_id` is generated when it has none); returns the `_id`.
    pub fn insert(
        &self,
        store: &DocStore,
        id: &str,
        env: &str,
        collection: &str,
        doc: &Value,
        now_ms: i64,
    ) -> DbResult<Value> {
        let Value::Object(map) = prepare_document(doc, now_ms)? else {
            return Err(DbError::invalid_param("data must be an object"));
        };
        let doc_id = match map.get("_id") {
            Some(doc_id) => doc_id.clone(),
            None => Value::String(crate::store::new_id()),
        };
        let doc = with_id_first(map, doc_id.clone());
        check_size(&doc)?;
        let key = document_key(store, env, collection, &doc_id)?;
        self.with(store, id, env, |t| {
            if visible(store, t, &key)?.is_some() {
                return Err(DbError::invalid_param(format!(
                    "E11000 duplicate key error collection: {collection} index: _id_ dup key: {{ _id: {} }}",
                    key.1
                )));
            }
            record(t, collection, key, Some(doc), false)?;
            Ok(doc_id)
        })
    }

    /// Updates (`merge`) or replaces the document `doc_id`; with `upsert`, creates it when missing.
    /// Returns how many documents changed and the `_id` of a created one.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        store: &DocStore,
        id: &str,
        env: &str,
        collection: &str,
        doc_id: &Value,
        data: &Value,
        merge: bool,
        upsert: bool,
        now_ms: i64,
    ) -> DbResult<(u64, Option<Value>)> {
        let key = document_key(store, env, collection, doc_id)?;
        self.with(store, id, env, |t| {
            let current = visible(store, t, &key)?;
            let new = match (&current, merge) {
                (Some(old), true) => apply_update(old, data, now_ms)?,
                (Some(old), false) => replace_document(old, data, now_ms)?,
                (None, _) if !upsert => return Ok((0, None)),
                (None, true) => {
                    let seed = serde_json::json!({ "_id": doc_id });
                    crate::update::apply_upsert_insert(&seed, data, now_ms)?
                }
                (None, false) => {
                    let Value::Object(map) = prepare_document(data, now_ms)? else {
                        return Err(DbError::invalid_param("data must be an object"));
                    };
                    with_id_first(map, doc_id.clone())
                }
            };
            check_size(&new)?;
            match current {
                Some(old) if old == new => Ok((0, None)),
                Some(_) => {
                    record(t, collection, key, Some(new), !merge)?;
                    Ok((1, None))
                }
                None => {
                    record(t, collection, key, Some(new), false)?;
                    Ok((0, Some(doc_id.clone())))
                }
            }
        })
    }

    /// Removes the document `doc_id`; returns how many were removed (0 or 1).
    pub fn remove(
        &self,
        store: &DocStore,
        id: &str,
        env: &str,
        collection: &str,
        doc_id: &Value,
    ) -> DbResult<u64> {
        let key = document_key(store, env, collection, doc_id)?;
        self.with(store, id, env, |t| {
            if visible(store, t, &key)?.is_none() {
                return Ok(0);
            }
            record(t, collection, key, None, false)?;
            Ok(1)
        })
    }

    /// Commits: applies every write in one store transaction, or fails with [`conflict`] (applying
    /// nothing) when another commit changed one of the written documents since the start. Either way
    /// the transaction is over.
    pub fn commit(&self, store: &DocStore, id: &str, env: &str) -> DbResult<()> {
        self.with(store, id, env, |t| {
            lock(&self.open).remove(id);
            let result = apply(store, t);
            finish(store, t);
            result
        })
    }

    /// Aborts: discards the writes.
    pub fn abort(&self, store: &DocStore, id: &str, env: &str) -> DbResult<()> {
        self.with(store, id, env, |t| {
            lock(&self.open).remove(id);
            finish(store, t);
            Ok(())
        })
    }
}

fn finish(store: &DocStore, transaction: &mut OpenTransaction) {
    if !transaction.finished {
        transaction.finished = true;
        transaction.writes.clear();
        store.close_snapshot(transaction.snapshot);
    }
}

fn check_size(doc: &Value) -> DbResult<()> {
    if doc.to_string().len() > limits::MAX_RECORD_BYTES {
        return Err(DbError::invalid_param(
            "record size must be less than 512 KB",
        ));
    }
    Ok(())
}

/// The key of document `doc_id` in `collection` of `env` (which must exist).
fn document_key(store: &DocStore, env: &str, collection: &str, doc_id: &Value) -> DbResult<DocKey> {
    let key = id_key(doc_id)?;
    let meta = store.read(|t| t.collection(env, collection))?;
    Ok((meta.cid, key))
}

/// The document as the transaction sees it: its own latest write, else the snapshot.
fn visible(store: &DocStore, t: &OpenTransaction, key: &DocKey) -> DbResult<Option<Value>> {
    match t.writes.iter().find(|w| w.key == *key) {
        Some(write) => Ok(write.doc.clone()),
        None => store.read_at(t.snapshot, key),
    }
}

fn record(
    t: &mut OpenTransaction,
    collection: &str,
    key: DocKey,
    doc: Option<Value>,
    replaced: bool,
) -> DbResult<()> {
    if let Some(write) = t.writes.iter_mut().find(|w| w.key == key) {
        write.doc = doc;
        write.replaced |= replaced;
        return Ok(());
    }
    if t.writes.len() >= MAX_TRANSACTION_WRITES {
        return Err(DbError::invalid_param(format!(
            "a transaction may write at most {MAX_TRANSACTION_WRITES} documents"
        )));
    }
    t.writes.push(Pending {
        collection: collection.to_string(),
        key,
        doc,
        replaced,
    });
    Ok(())
}

fn apply(store: &DocStore, t: &OpenTransaction) -> DbResult<()> {
    if t.writes.is_empty() {
        return Ok(());
    }
    let keys: Vec<DocKey> = t.writes.iter().map(|w| w.key.clone()).collect();
    store.write(|txn| {
        // Inside the write transaction no other commit can slip in between the check and the writes.
        if store.changed_since(t.snapshot, &keys) {
            return Err(conflict());
        }
        for write in &t.writes {
            let meta = txn.collection(&t.env, &write.collection)?;
            if meta.cid != write.key.0 {
                // The collection was dropped and created again since the transaction read it.
                return Err(conflict());
            }
            let mut seq = None;
            txn.scan(
                meta.cid,
                &Plan::Ids(vec![write.key.1.clone()]),
                &mut |stored| {
                    seq = Some(stored.seq);
                    Ok(false)
                },
            )?;
            match (seq, &write.doc) {
                (Some(seq), Some(doc)) if write.replaced => txn.replace_whole(&meta, seq, doc)?,
                (Some(seq), Some(doc)) => txn.replace(&meta, seq, doc)?,
                (None, Some(doc)) => {
                    txn.insert(&meta, doc)?;
                }
                (Some(seq), None) => txn.delete(&meta, seq)?,
                (None, None) => {}
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with(docs: &[Value]) -> (tempfile::TempDir, DocStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = DocStore::open(dir.path()).unwrap();
        let meta = store
            .write(|t| t.create_collection("e", "c", &json!("ADMINWRITE"), &[], 0))
            .unwrap();
        store
            .write(|t| {
                for doc in docs {
                    t.insert(&meta, doc)?;
                }
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    fn current(store: &DocStore, id: &str) -> Option<Value> {
        let meta = store.read(|t| t.collection("e", "c")).unwrap();
        store
            .read(|t| {
                let mut found = None;
                t.scan(meta.cid, &Plan::Ids(vec![id_key(&json!(id))?]), &mut |s| {
                    found = Some(s.doc);
                    Ok(false)
                })?;
                Ok(found)
            })
            .unwrap()
    }

    #[test]
    fn reads_see_the_snapshot_and_own_writes() {
        let (_dir, store) = store_with(&[json!({"_id": "a", "n": 1})]);
        let txns = Transactions::new();
        let t = txns.start(&store, "e").unwrap();
        // A plain write after the start is invisible to the transaction…
        let meta = store.read(|t| t.collection("e", "c")).unwrap();
        store
            .write(|w| {
                w.replace(&meta, 1, &json!({"_id": "a", "n": 5}))?;
                w.insert(&meta, &json!({"_id": "b", "n": 9}))
            })
            .unwrap();
        let a = txns.get(&store, &t, "e", "c", &json!("a")).unwrap();
        assert_eq!(a, Some(json!({"_id": "a", "n": 1})));
        assert_eq!(txns.get(&store, &t, "e", "c", &json!("b")).unwrap(), None);
        // …its own writes are visible to it, and to nobody else before commit.
        txns.insert(&store, &t, "e", "c", &json!({"_id": "z", "k": 1}), 0)
            .unwrap();
        assert!(txns
            .get(&store, &t, "e", "c", &json!("z"))
            .unwrap()
            .is_some());
        assert_eq!(current(&store, "z"), None);
        txns.commit(&store, &t, "e").unwrap();
        assert_eq!(current(&store, "z"), Some(json!({"_id": "z", "k": 1})));
        assert!(txns.get(&store, &t, "e", "c", &json!("a")).is_err());
        assert_eq!(txns.open_count(), 0);
    }

    #[test]
    fn a_committed_set_reaches_the_feed_as_a_replacement() {
        let (_dir, store) = store_with(&[json!({"_id": "a", "n": 1}), json!({"_id": "b", "n": 1})]);
        let seen: Arc<Mutex<Vec<Arc<crate::feed::CommitBatch>>>> = Arc::default();
        let sink = seen.clone();
        store.set_change_listener(Arc::new(move |batch| lock(&sink).push(batch)));
        let txns = Transactions::new();
        let t = txns.start(&store, "e").unwrap();
        let update = json!({"$set": {"n": 2}});
        txns.update(&store, &t, "e", "c", &json!("a"), &update, true, false, 0)
            .unwrap();
        // An update after the set keeps it a whole-document replacement.
        let set = json!({"m": 2});
        txns.update(&store, &t, "e", "c", &json!("b"), &set, false, false, 0)
            .unwrap();
        txns.update(&store, &t, "e", "c", &json!("b"), &update, true, false, 0)
            .unwrap();
        txns.commit(&store, &t, "e").unwrap();
        let batches = lock(&seen).clone();
        let changes: Vec<(Value, bool, Option<Value>)> = batches[0]
            .changes
            .iter()
            .map(|c| (c.id.clone(), c.replaced, c.after.clone()))
            .collect();
        assert_eq!(
            changes,
            vec![
                (json!("a"), false, Some(json!({"_id": "a", "n": 2}))),
                (json!("b"), true, Some(json!({"_id": "b", "m": 2, "n": 2}))),
            ]
        );
    }

    #[test]
    fn a_set_in_a_transaction_keeps_the_owner() {
        let (_dir, store) = store_with(&[json!({"_id": "o", "_openid": "A", "n": 1})]);
        let txns = Transactions::new();
        let t = txns.start(&store, "e").unwrap();
        let set = json!({"m": 2});
        txns.update(&store, &t, "e", "c", &json!("o"), &set, false, false, 0)
            .unwrap();
        let seen = txns.get(&store, &t, "e", "c", &json!("o")).unwrap();
        assert_eq!(seen, Some(json!({"_id": "o", "_openid": "A", "m": 2})));
        txns.commit(&store, &t, "e").unwrap();
        assert_eq!(
            current(&store, "o"),
            Some(json!({"_id": "o", "_openid": "A", "m": 2}))
        );
    }

    #[test]
    fn first_committer_wins_and_abort_discards() {
        let (_dir, store) = store_with(&[json!({"_id": "n", "v": 0})]);
        let txns = Transactions::new();
        let one = txns.start(&store, "e").unwrap();
        let two = txns.start(&store, "e").unwrap();
        let inc = json!({"$inc": {"v": 1}});
        for t in [&one, &two] {
            let (updated, _) = txns
                .update(&store, t, "e", "c", &json!("n"), &inc, true, false, 0)
                .unwrap();
            assert_eq!(updated, 1);
        }
        txns.commit(&store, &one, "e").unwrap();
        let err = txns.commit(&store, &two, "e").unwrap_err();
        assert_eq!(err.code, codes::DATABASE_TRANSACTION_CONFLICT);
        assert_eq!(current(&store, "n"), Some(json!({"_id": "n", "v": 1})));
        // A retry starts after the winner's commit and succeeds.
        let retry = txns.start(&store, "e").unwrap();
        txns.update(&store, &retry, "e", "c", &json!("n"), &inc, true, false, 0)
            .unwrap();
        txns.commit(&store, &retry, "e").unwrap();
        assert_eq!(current(&store, "n"), Some(json!({"_id": "n", "v": 2})));
        // Rolled-back writes are never seen.
        let rolled = txns.start(&store, "e").unwrap();
        txns.remove(&store, &rolled, "e", "c", &json!("n")).unwrap();
        txns.update(
            &store,
            &rolled,
            "e",
            "c",
            &json!("new"),
            &json!({"x": 1}),
            false,
            true,
            0,
        )
        .unwrap();
        txns.abort(&store, &rolled, "e").unwrap();
        assert_eq!(current(&store, "n"), Some(json!({"_id": "n", "v": 2})));
        assert_eq!(current(&store, "new"), None);
        assert!(txns.commit(&store, &rolled, "e").is_err());
    }

    #[test]
    fn expired_transactions_end_and_stop_the_change_log() {
        let (_dir, store) = store_with(&[json!({"_id": "a", "n": 1})]);
        let txns = Transactions::with_lifetime(Duration::from_millis(1));
        let t = txns.start(&store, "e").unwrap();
        txns.remove(&store, &t, "e", "c", &json!("a")).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        txns.expire_stale(&store);
        assert_eq!(txns.open_count(), 0);
        assert!(txns.commit(&store, &t, "e").is_err());
        assert_eq!(current(&store, "a"), Some(json!({"_id": "a", "n": 1})));
        let meta = store.read(|t| t.collection("e", "c")).unwrap();
        store
            .write(|w| w.replace(&meta, 1, &json!({"_id": "a", "n": 2})))
            .unwrap();
        assert!(
            !store.changed_since(0, &[(meta.cid, "\"a\"".to_string())]),
            "with no snapshot open, writes record nothing"
        );
    }

    #[test]
    fn plain_writes_conflict_with_open_transactions_and_the_log_empties() {
        let (_dir, store) = store_with(&[json!({"_id": "a", "n": 1})]);
        let txns = Transactions::new();
        let t = txns.start(&store, "e").unwrap();
        txns.remove(&store, &t, "e", "c", &json!("a")).unwrap();
        let meta = store.read(|t| t.collection("e", "c")).unwrap();
        store.write(|w| w.delete(&meta, 1)).unwrap();
        assert_eq!(
            txns.commit(&store, &t, "e").unwrap_err().code,
            codes::DATABASE_TRANSACTION_CONFLICT
        );
        // With no transaction open nothing is recorded.
        assert!(!store.changed_since(0, &[(meta.cid, "\"a\"".to_string())]));
        let dup = txns.start(&store, "e").unwrap();
        store
            .write(|w| w.insert(&meta, &json!({"_id": "q"})))
            .unwrap();
        let err = txns
            .insert(&store, &dup, "e", "c", &json!({"_id": "q"}), 0)
            .map(|_| ())
            .and_then(|_| txns.commit(&store, &dup, "e"))
            .unwrap_err();
        assert_eq!(err.code, codes::DATABASE_TRANSACTION_CONFLICT, "{err}");
    }
}
