//! The change feed: what each committed write transaction did to documents, in commit order.
//!
//! Every writer (the `/web` actions, the admin endpoint, import, functions through either) goes through
//! [`DocStore::write`](crate::store::DocStore::write), so the feed is fed at that one place: the store
//! records the document changes a transaction makes and, once `COMMIT` has returned and while it still
//! holds the connection lock, hands them to the listener as one [`CommitBatch`] (also when it set a
//! collection's rules, which can change what watchers may see). A rolled-back
//! transaction publishes nothing; batches arrive in commit order with consecutive [`CommitBatch::seq`].
//!
//! The listener runs under the store lock, so it must only hand the batch on (e.g. push it into a
//! channel), never call back into the store.

use std::sync::Arc;

use serde_json::Value;

/// One document changed by a committed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct DocChange {
    /// The env of the collection.
    pub env: String,
    /// The collection name.
    pub collection: String,
    /// The document's `_id`.
    pub id: Value,
    /// The document before the transaction's write (`None`: it was inserted).
    pub before: Option<Value>,
    /// The document after it (`None`: it was deleted).
    pub after: Option<Value>,
    /// The write replaced the whole document (`set()`), rather than updating some of its fields: a
    /// watch reports it as `replace` with the new document, not as `update` with field changes.
    pub replaced: bool,
}

/// The document changes of one committed write transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitBatch {
    /// Commit sequence number: 1 for the first commit with changes after the store opened, then +1.
    pub seq: u64,
    /// The changes, in the order the transaction made them.
    pub changes: Vec<DocChange>,
    /// Collections (`(env, name)`) whose rules or indexes the transaction set: what a reader may see
    /// of them can have changed.
    pub reconfigured: Vec<(String, String)>,
}

/// Receives every [`CommitBatch`]; called under the store lock, so it must return quickly.
pub type ChangeListener = Arc<dyn Fn(Arc<CommitBatch>) + Send + Sync>;
