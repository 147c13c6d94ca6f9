//! The change feed: committed write transactions reach the listener once each, in commit order, with
//! before/after images; rolled-back ones never do; a read sees the sequence number of the last commit.

use std::sync::{Arc, Mutex};

use cloud_engine::feed::CommitBatch;
use cloud_engine::store::DocStore;
use cloud_engine::DbError;
use serde_json::json;

/// One change as `(_id, n before, n after)`.
type Summary = (String, Option<i64>, Option<i64>);

#[test]
fn committed_writes_are_published_in_order_and_rollbacks_never() {
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::open(dir.path()).unwrap();
    let seen: Arc<Mutex<Vec<Arc<CommitBatch>>>> = Arc::default();
    let sink = seen.clone();
    store.set_change_listener(Arc::new(move |batch| sink.lock().unwrap().push(batch)));

    // A write without document changes publishes nothing.
    let meta = store
        .write(|t| t.create_collection("e", "c", &json!("READONLY"), &[], 0))
        .unwrap();
    let seq_a = store
        .write(|t| t.insert(&meta, &json!({"_id": "a", "n": 1})))
        .unwrap();
    store
        .write(|t| {
            t.insert(&meta, &json!({"_id": "b", "n": 1}))?;
            t.replace(&meta, seq_a, &json!({"_id": "a", "n": 2}))
        })
        .unwrap();
    // A failed transaction is rolled back and publishes nothing.
    let failed = store.write(|t| {
        t.delete(&meta, seq_a)?;
        Err::<(), _>(DbError::invalid_param("abort"))
    });
    assert!(failed.is_err());
    store.write(|t| t.delete(&meta, seq_a)).unwrap();

    let batches = seen.lock().unwrap().clone();
    assert_eq!(
        batches.iter().map(|b| b.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let summary: Vec<Vec<Summary>> = batches
        .iter()
        .map(|b| {
            b.changes
                .iter()
                .map(|c| {
                    assert_eq!((c.env.as_str(), c.collection.as_str()), ("e", "c"));
                    (
                        c.id.as_str().unwrap().to_string(),
                        c.before.as_ref().map(|d| d["n"].as_i64().unwrap()),
                        c.after.as_ref().map(|d| d["n"].as_i64().unwrap()),
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            vec![("a".to_string(), None, Some(1))],
            vec![
                ("b".to_string(), None, Some(1)),
                ("a".to_string(), Some(1), Some(2))
            ],
            vec![("a".to_string(), Some(2), None)],
        ]
    );
    // A read transaction knows which commit it sees.
    assert_eq!(store.read_consistent(|t| Ok(t.commit_seq())).unwrap(), 3);
}

#[test]
fn whole_document_replacements_are_marked_in_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::open(dir.path()).unwrap();
    let seen: Arc<Mutex<Vec<Arc<CommitBatch>>>> = Arc::default();
    let sink = seen.clone();
    store.set_change_listener(Arc::new(move |batch| sink.lock().unwrap().push(batch)));
    let meta = store
        .write(|t| t.create_collection("e", "c", &json!("READONLY"), &[], 0))
        .unwrap();
    let seq = store
        .write(|t| t.insert(&meta, &json!({"_id": "a", "n": 1})))
        .unwrap();
    store
        .write(|t| t.replace(&meta, seq, &json!({"_id": "a", "n": 2})))
        .unwrap();
    store
        .write(|t| t.replace_whole(&meta, seq, &json!({"_id": "a", "m": 3})))
        .unwrap();
    store.write(|t| t.delete(&meta, seq)).unwrap();
    let replaced: Vec<bool> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.changes.iter().map(|c| c.replaced))
        .collect();
    assert_eq!(replaced, vec![false, false, true, false]);
    let batches = seen.lock().unwrap().clone();
    assert_eq!(
        batches[2].changes[0].after,
        Some(json!({"_id": "a", "m": 3}))
    );
}
