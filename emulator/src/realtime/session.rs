//! One watch: its query, its current result window, the events it produced, and the events a committed
//! change produces for it. Pure: the database is reached only through the `refill` closure.
//!
//! Event kinds (what the official realtime server sends and both SDKs understand):
//! * `add`/`enqueue`: a new document entered the result (full `Doc`);
//! * `update`/`update`: a document of the result changed (`UpdatedFields`, `removedFields`, no `Doc`);
//! * `replace`/`update`: a document of the result was replaced whole by `set()` (full `Doc`, no field
//!   changes);
//! * `update`/`enqueue`: a changed document entered the result (full `Doc` and the field changes);
//! * `update`/`dequeue`: a changed document left the result (field changes, no `Doc`);
//! * `remove`/`dequeue`: a document of the result was deleted;
//! * `limit`/`enqueue` and `limit`/`dequeue`: an untouched document entered or left a `limit` window
//!   because another one left or entered it.
//!
//! All changes one commit makes to a watch share one event id, so they reach the user as one snapshot.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::database::rules::{Operation, Rules, UserCtx};
use crate::database::sort::SortKey;
use crate::database::{DbResult, Matcher, SortSpec};

/// Most event ids a watch keeps for `REBUILD_WATCH` / `CHECK_LAST` after a short disconnect.
pub const RESUME_EVENT_IDS: usize = 1024;
/// Most bytes of event frames a watch keeps for resuming.
pub const RESUME_BYTES: usize = 4 * 1024 * 1024;

/// A watch's result, in order. Watches of one query that hold the same documents share one (copied
/// when one of them changes it alone): a commit then updates it once for all of them.
pub type Window = Arc<Vec<Arc<Value>>>;

/// What a watch selects.
pub struct WatchSpec {
    /// The env of the collection.
    pub env: String,
    /// The collection.
    pub collection: String,
    /// The query with the permission filter ANDed in.
    pub matcher: Matcher,
    /// The effective query (for the planner when the window is read from the store).
    pub query: Value,
    /// `orderBy` then `_id` (as a tie-break), or `_id` descending when no order is given.
    pub order: SortSpec,
    /// The `limit`, if any.
    pub limit: Option<usize>,
    /// Custom rules that must admit each document (when the query alone does not prove them).
    pub check_each: Option<(Rules, UserCtx)>,
}

impl WatchSpec {
    /// Whether `doc` belongs to the result (ignoring the limit).
    pub fn admits(&self, doc: &Value) -> bool {
        self.matcher.matches(doc).unwrap_or(false)
            && self
                .check_each
                .as_ref()
                .is_none_or(|(rules, user)| rules.allows_document(Operation::Read, user, doc))
    }

    /// The sort order of the result: `orderBy` (`{"field": "asc"|"desc"}`) then `_id` ascending, or
    /// `_id` descending without an `orderBy` (wx: "默认按 id 降序排列").
    pub fn order_from(order_by: &[(String, bool)]) -> SortSpec {
        let mut keys: Vec<SortKey> = order_by
            .iter()
            .map(|(field, descending)| SortKey {
                path: field.split('.').map(str::to_string).collect(),
                descending: *descending,
            })
            .collect();
        if !keys.iter().any(|k| k.path == ["_id"]) {
            keys.push(SortKey {
                path: vec!["_id".to_string()],
                descending: order_by.is_empty(),
            });
        }
        SortSpec { keys }
    }

    /// The window of `matching` documents: sorted and cut to the limit.
    pub fn window_of(&self, mut matching: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        matching.retain(|doc| self.admits(doc));
        matching.sort_by(|a, b| self.order.compare(a, b));
        if let Some(limit) = self.limit {
            matching.truncate(limit);
        }
        matching
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        self.order.compare(a, b)
    }

    /// A text equal for two specs exactly when they select the same documents in the same order and
    /// limit (so their watches can share a window); `None` with custom rules, which depend on the user.
    pub fn share_key(&self) -> Option<String> {
        if self.check_each.is_some() {
            return None;
        }
        let order: Vec<Value> = self
            .order
            .keys
            .iter()
            .map(|key| Value::from(vec![Value::from(key.path.join(".")), key.descending.into()]))
            .collect();
        let limit = self.limit.map_or(Value::Null, Value::from);
        let key = vec![
            Value::from(self.env.as_str()),
            Value::from(self.collection.as_str()),
            self.query.clone(),
            Value::from(order),
            limit,
        ];
        Some(Value::from(key).to_string())
    }
}

/// One change of a watch's result, before it gets its event id.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `add`, `update`, `replace`, `remove`, `limit` (`init` for snapshots).
    pub data_type: &'static str,
    /// `init`, `update`, `enqueue`, `dequeue`.
    pub queue_type: &'static str,
    /// The document's `_id`.
    pub doc_id: Value,
    /// The full document, when the client needs it.
    pub doc: Option<Arc<Value>>,
    /// For `update`: changed fields (dotted paths) and removed fields.
    pub fields: Option<Arc<FieldChanges>>,
}

impl Change {
    /// The event object of the wire protocol, with its id.
    pub fn to_event(&self, id: u64) -> Value {
        let doc_text = self
            .doc
            .as_ref()
            .map(|doc| doc.to_string())
            .unwrap_or_default();
        Value::Object(self.to_event_with(id, doc_text))
    }

    /// The event object with `doc_text` as its `Doc` (the document's JSON text, or empty).
    pub fn to_event_with(&self, id: u64, doc_text: String) -> Map<String, Value> {
        let mut event = Map::new();
        event.insert("ID".into(), id.into());
        event.insert("DataType".into(), self.data_type.into());
        event.insert("QueueType".into(), self.queue_type.into());
        event.insert("DocID".into(), self.doc_id.clone());
        event.insert("Doc".into(), doc_text.into());
        if let Some(fields) = &self.fields {
            event.insert("UpdatedFields".into(), fields.updated_text.clone().into());
            // The SDKs parse lowercase `removedFields` (protocol.md §5.6 quirk).
            event.insert("removedFields".into(), fields.removed_text.clone().into());
        }
        event
    }
}

/// The field changes of an `update` event, with their wire texts (made once, shared by every watch
/// that reports the same change).
#[derive(Debug, PartialEq)]
pub struct FieldChanges {
    /// Changed or added fields (dotted paths) and their new values.
    pub updated: Map<String, Value>,
    /// Removed fields (dotted paths).
    pub removed: Vec<String>,
    /// `updated` as JSON text (the event's `UpdatedFields`).
    pub updated_text: String,
    /// `removed` as JSON text (the event's `removedFields`).
    pub removed_text: String,
    /// The two as the tail of an event object: `,"UpdatedFields":"…","removedFields":"…"`.
    pub wire: String,
}

impl FieldChanges {
    /// The changes from `old` to `new` (see [`field_changes`]).
    pub fn between(old: &Value, new: &Value) -> Arc<FieldChanges> {
        let (updated, removed) = field_changes(old, new);
        let updated_text = Value::Object(updated.clone()).to_string();
        let removed_text = Value::from(removed.clone()).to_string();
        let wire = format!(
            ",\"UpdatedFields\":{},\"removedFields\":{}",
            Value::from(updated_text.as_str()),
            Value::from(removed_text.as_str())
        );
        Arc::new(FieldChanges {
            updated_text,
            removed_text,
            wire,
            updated,
            removed,
        })
    }
}

/// Compares and diffs two versions of a document, once per pair of versions: the watches of a
/// collection hold one shared copy of each document (the hub interns them), so one commit asks every
/// watch the same question. Pairs are keyed by address; the memo holds both versions, so an address
/// cannot be reused while it lives (one commit).
#[derive(Default)]
pub struct Versions {
    pairs: HashMap<(usize, usize), VersionPair>,
}

struct VersionPair {
    _versions: (Arc<Value>, Arc<Value>),
    same: bool,
    fields: Arc<FieldChanges>,
}

impl Versions {
    fn pair(&mut self, old: &Arc<Value>, new: &Arc<Value>) -> &VersionPair {
        let key = (Arc::as_ptr(old) as usize, Arc::as_ptr(new) as usize);
        self.pairs.entry(key).or_insert_with(|| VersionPair {
            _versions: (old.clone(), new.clone()),
            same: Arc::ptr_eq(old, new) || **old == **new,
            fields: FieldChanges::between(old, new),
        })
    }

    /// The field changes from `old` to `new`, or `None` when the two versions are equal.
    pub fn changes(&mut self, old: &Arc<Value>, new: &Arc<Value>) -> Option<Arc<FieldChanges>> {
        let pair = self.pair(old, new);
        (!pair.same).then(|| pair.fields.clone())
    }

    /// The field changes from `old` to `new` (none when they are equal).
    pub fn diff(&mut self, old: &Arc<Value>, new: &Arc<Value>) -> Arc<FieldChanges> {
        self.pair(old, new).fields.clone()
    }
}

/// The fields that differ between `old` and `new`: changed or added ones as dotted paths with their
/// new values, removed ones as dotted paths. Sub-documents present on both sides are compared field by
/// field; any other changed value (arrays included) is reported whole.
pub fn field_changes(old: &Value, new: &Value) -> (Map<String, Value>, Vec<String>) {
    let mut updated = Map::new();
    let mut removed = Vec::new();
    diff_into("", old, new, &mut updated, &mut removed);
    (updated, removed)
}

fn diff_into(
    prefix: &str,
    old: &Value,
    new: &Value,
    updated: &mut Map<String, Value>,
    removed: &mut Vec<String>,
) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return;
    };
    let path = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    for (key, new_value) in new {
        match old.get(key) {
            Some(old_value) if old_value == new_value => {}
            Some(old_value @ Value::Object(_))
                if new_value.is_object() && !is_special(new_value) =>
            {
                diff_into(&path(key), old_value, new_value, updated, removed)
            }
            _ => {
                updated.insert(path(key), new_value.clone());
            }
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            removed.push(path(key));
        }
    }
}

/// EJSON values (`{"$date": …}`, `{"$regex": …}`, …) change as a whole.
fn is_special(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.keys().any(|k| k.starts_with('$')))
}

fn id_of(doc: &Value) -> &Value {
    // Stored documents have `_id` first (`with_id_first`): no hashing of "_id" when looking one up
    // in a window, which every watch does for every change.
    let first = doc.as_object().and_then(|map| map.iter().next());
    match first {
        Some((key, id)) if key == "_id" => id,
        _ => doc.get("_id").unwrap_or(&Value::Null),
    }
}

/// A watch's state on the server.
pub struct Session {
    /// What it selects (shared by watches of the same query).
    pub spec: Arc<WatchSpec>,
    /// The current result, in order.
    pub window: Window,
    /// The id of the last event (the `currEvent` of the protocol).
    pub current_event: u64,
    /// Commits up to this sequence number are already reflected in `window`.
    pub seen_commit: u64,
    /// Recent events for resuming: `(event id, event object)`, oldest first (an id's events together;
    /// one entry per event, not a list per id: no allocation per watch and commit).
    log: VecDeque<(u64, Arc<str>)>,
    /// How many event ids `log` holds.
    log_ids: usize,
    log_bytes: usize,
    /// Event ids before this one are no longer in `log`.
    log_start: u64,
}

/// How a `REBUILD_WATCH` can be served.
#[derive(Debug, PartialEq)]
pub enum Resume {
    /// These events (ids after the client's, in order) bring the client up to date.
    Events(Vec<Arc<str>>),
    /// The client is too far behind (or ahead): it must start over from a fresh snapshot.
    TooOld,
}

impl Session {
    /// A session whose result is `window`, read at commit `seen_commit`; its first event id is 1.
    pub fn new(spec: Arc<WatchSpec>, window: Window, seen_commit: u64) -> Session {
        Session {
            spec,
            window,
            current_event: 1,
            seen_commit,
            log: VecDeque::new(),
            log_ids: 0,
            log_bytes: 0,
            log_start: 2,
        }
    }

    /// The `init` changes of the current window.
    pub fn init_changes(&self) -> Vec<Change> {
        self.window
            .iter()
            .map(|doc| Change {
                data_type: "init",
                queue_type: "init",
                doc_id: id_of(doc).clone(),
                doc: Some(doc.clone()),
                fields: None,
            })
            .collect()
    }

    /// Restarts the event sequence at `event_id` with the current window (a re-initialisation).
    pub fn restart_at(&mut self, event_id: u64) {
        self.current_event = event_id;
        self.log.clear();
        self.log_ids = 0;
        self.log_bytes = 0;
        self.log_start = event_id + 1;
    }

    /// The changes one committed document change makes to this watch (and applies them to the
    /// window). `replaced`: the change replaced the whole document (`set()`). `refill` reads the window
    /// afresh from the store when a full `limit` window lost a document and something outside it may
    /// move up.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        id: &Value,
        before_exists: bool,
        after: Option<&Arc<Value>>,
        replaced: bool,
        refill: &mut dyn FnMut(&WatchSpec) -> DbResult<Vec<Arc<Value>>>,
        versions: &mut Versions,
    ) -> Vec<Change> {
        let position = self.window.iter().position(|doc| id_of(doc) == id);
        let admitted = after.filter(|doc| self.spec.admits(doc));
        // A member that changed and stays in the result (`fields`: its changes, not empty).
        let stayed = |new: &Arc<Value>, fields: Arc<FieldChanges>| {
            if replaced {
                Change {
                    data_type: "replace",
                    queue_type: "update",
                    doc_id: id.clone(),
                    doc: Some(new.clone()),
                    fields: None,
                }
            } else {
                Change {
                    data_type: "update",
                    queue_type: "update",
                    doc_id: id.clone(),
                    doc: None,
                    fields: Some(fields),
                }
            }
        };
        match self.spec.limit {
            None => self.apply_unlimited(
                id,
                position,
                before_exists,
                after,
                admitted,
                versions,
                stayed,
            ),
            Some(limit) => self.apply_limited(
                id,
                limit,
                position,
                before_exists,
                after,
                admitted,
                refill,
                versions,
                stayed,
            ),
        }
    }

    /// Without a limit the window's order is not kept up to date (nothing depends on it: the
    /// client places documents itself, and a re-init reads the window afresh, in order).
    #[allow(clippy::too_many_arguments)]
    fn apply_unlimited(
        &mut self,
        id: &Value,
        position: Option<usize>,
        before_exists: bool,
        after: Option<&Arc<Value>>,
        admitted: Option<&Arc<Value>>,
        versions: &mut Versions,
        stayed: impl Fn(&Arc<Value>, Arc<FieldChanges>) -> Change,
    ) -> Vec<Change> {
        match (position, admitted) {
            (Some(index), Some(new)) => {
                let changes = versions.changes(&self.window[index], new);
                if !Arc::ptr_eq(&self.window[index], new) {
                    Arc::make_mut(&mut self.window)[index] = new.clone();
                }
                match changes {
                    Some(fields) => vec![stayed(new, fields)],
                    None => Vec::new(),
                }
            }
            (Some(index), None) => {
                let old = Arc::make_mut(&mut self.window).swap_remove(index);
                vec![left(id, &old, after, versions)]
            }
            (None, Some(new)) => {
                Arc::make_mut(&mut self.window).push(new.clone());
                vec![entered(id, before_exists, new)]
            }
            (None, None) => Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_limited(
        &mut self,
        id: &Value,
        limit: usize,
        position: Option<usize>,
        before_exists: bool,
        after: Option<&Arc<Value>>,
        admitted: Option<&Arc<Value>>,
        refill: &mut dyn FnMut(&WatchSpec) -> DbResult<Vec<Arc<Value>>>,
        versions: &mut Versions,
        stayed: impl Fn(&Arc<Value>, Arc<FieldChanges>) -> Change,
    ) -> Vec<Change> {
        let old_window = self.window.clone();
        let mut new_window: Vec<Arc<Value>> = old_window.to_vec();
        if let Some(index) = position {
            new_window.remove(index);
        }
        if let Some(new) = admitted {
            let at = new_window
                .partition_point(|other| self.spec.compare(other, new) != Ordering::Greater);
            new_window.insert(at, new.clone());
        }
        new_window.truncate(limit);
        // A full window that lost a document, or whose changed member sank to the last place, may
        // now rank documents it does not hold above that place: only the store knows them.
        let sank_to_last = position.is_some()
            && new_window.len() == limit
            && new_window.last().is_some_and(|last| id_of(last) == id);
        if old_window.len() == limit && (new_window.len() < limit || sank_to_last) {
            // Keep the versions the client has for documents that stay, so later commits still diff.
            if let Ok(fresh) = refill(&self.spec) {
                new_window = fresh
                    .into_iter()
                    .map(|doc| {
                        old_window
                            .iter()
                            .find(|old| id_of(old) == id_of(&doc) && id_of(&doc) != id)
                            .cloned()
                            .unwrap_or(doc)
                    })
                    .collect();
            }
        }
        let mut changes = Vec::new();
        for old in old_window.iter() {
            let old_id = id_of(old);
            if new_window.iter().any(|doc| id_of(doc) == old_id) {
                continue;
            }
            if old_id == id {
                changes.push(left(id, old, after, versions));
            } else {
                changes.push(Change {
                    data_type: "limit",
                    queue_type: "dequeue",
                    doc_id: old_id.clone(),
                    doc: None,
                    fields: None,
                });
            }
        }
        for new in &new_window {
            let new_id = id_of(new);
            match old_window.iter().find(|doc| id_of(doc) == new_id) {
                None if new_id == id => changes.push(entered(id, before_exists, new)),
                None => changes.push(Change {
                    data_type: "limit",
                    queue_type: "enqueue",
                    doc_id: new_id.clone(),
                    doc: Some(new.clone()),
                    fields: None,
                }),
                Some(old) if new_id == id => {
                    if let Some(fields) = versions.changes(old, new) {
                        changes.push(stayed(new, fields));
                    }
                }
                Some(_) => {}
            }
        }
        self.window = Arc::new(new_window);
        changes
    }

    /// Records the events of one event id for resuming, dropping the oldest beyond the bounds.
    pub fn log_events(&mut self, id: u64, events: &[Arc<str>]) {
        self.log_ids += 1;
        for event in events {
            self.log_bytes += event.len();
            self.log.push_back((id, event.clone()));
        }
        while self.log_ids > RESUME_EVENT_IDS || self.log_bytes > RESUME_BYTES {
            let Some(&(dropped, _)) = self.log.front() else {
                break;
            };
            while self.log.front().is_some_and(|(id, _)| *id == dropped) {
                if let Some((_, event)) = self.log.pop_front() {
                    self.log_bytes -= event.len();
                }
            }
            self.log_ids -= 1;
            self.log_start = dropped + 1;
        }
    }

    /// The events after `client_event` (the last id the client handled), if still known.
    pub fn resume_from(&self, client_event: u64) -> Resume {
        if client_event > self.current_event || client_event + 1 < self.log_start {
            return Resume::TooOld;
        }
        Resume::Events(
            self.log
                .iter()
                .filter(|(id, _)| *id > client_event)
                .map(|(_, event)| event.clone())
                .collect(),
        )
    }
}

/// The change for a document that left the result (deleted, or changed so it no longer matches).
fn left(
    id: &Value,
    old: &Arc<Value>,
    after: Option<&Arc<Value>>,
    versions: &mut Versions,
) -> Change {
    match after {
        None => Change {
            data_type: "remove",
            queue_type: "dequeue",
            doc_id: id.clone(),
            doc: None,
            fields: None,
        },
        Some(new) => Change {
            data_type: "update",
            queue_type: "dequeue",
            doc_id: id.clone(),
            doc: None,
            fields: Some(versions.diff(old, new)),
        },
    }
}

/// The change for a document that entered the result (inserted, or changed so it now matches).
fn entered(id: &Value, before_exists: bool, new: &Arc<Value>) -> Change {
    Change {
        data_type: if before_exists { "update" } else { "add" },
        queue_type: "enqueue",
        doc_id: id.clone(),
        doc: Some(new.clone()),
        fields: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(query: Value, order_by: &[(&str, bool)], limit: Option<usize>) -> WatchSpec {
        let order: Vec<(String, bool)> =
            order_by.iter().map(|(f, d)| (f.to_string(), *d)).collect();
        WatchSpec {
            env: "e".into(),
            collection: "c".into(),
            matcher: Matcher::new(&query).unwrap(),
            query,
            order: WatchSpec::order_from(&order),
            limit,
            check_each: None,
        }
    }

    fn session(spec: WatchSpec, window: Vec<Arc<Value>>, seen_commit: u64) -> Session {
        Session::new(Arc::new(spec), Arc::new(window), seen_commit)
    }

    fn doc(v: Value) -> Arc<Value> {
        Arc::new(v)
    }

    fn no_refill(_: &WatchSpec) -> DbResult<Vec<Arc<Value>>> {
        panic!("no refill expected")
    }

    /// `s.apply` for a change that needs no refill, with a version memo of its own.
    fn step(
        s: &mut Session,
        id: &str,
        before_exists: bool,
        after: Option<&Arc<Value>>,
        replaced: bool,
    ) -> Vec<Change> {
        s.apply(
            &json!(id),
            before_exists,
            after,
            replaced,
            &mut no_refill,
            &mut Versions::default(),
        )
    }

    fn kinds(changes: &[Change]) -> Vec<(&str, &str, Value)> {
        changes
            .iter()
            .map(|c| (c.data_type, c.queue_type, c.doc_id.clone()))
            .collect()
    }

    #[test]
    fn field_changes_are_dotted_and_removals_listed() {
        let (updated, removed) = field_changes(
            &json!({"_id": "a", "n": 1, "sub": {"x": 1, "y": 2}, "gone": true, "arr": [1]}),
            &json!({"_id": "a", "n": 2, "sub": {"x": 1, "y": 3, "z": 0}, "arr": [1, 2], "d": {"$date": 5}}),
        );
        assert_eq!(
            Value::Object(updated),
            json!({"n": 2, "sub.y": 3, "sub.z": 0, "arr": [1, 2], "d": {"$date": 5}})
        );
        assert_eq!(removed, vec!["gone".to_string()]);
    }

    #[test]
    fn unlimited_watch_sees_add_update_leave_and_remove() {
        let mut s = session(spec(json!({"done": false}), &[], None), vec![], 0);
        let a = doc(json!({"_id": "a", "done": false, "n": 1}));
        let changes = step(&mut s, "a", false, Some(&a), false);
        assert_eq!(kinds(&changes), vec![("add", "enqueue", json!("a"))]);
        let a2 = doc(json!({"_id": "a", "done": false, "n": 2}));
        let changes = step(&mut s, "a", true, Some(&a2), false);
        assert_eq!(kinds(&changes), vec![("update", "update", json!("a"))]);
        assert_eq!(
            changes[0].fields.as_ref().unwrap().updated,
            json!({"n": 2}).as_object().unwrap().clone()
        );
        // An identical write changes nothing.
        assert!(step(&mut s, "a", true, Some(&a2), false).is_empty());
        let a3 = doc(json!({"_id": "a", "done": true, "n": 2}));
        let changes = step(&mut s, "a", true, Some(&a3), false);
        assert_eq!(kinds(&changes), vec![("update", "dequeue", json!("a"))]);
        let changes = step(&mut s, "a", true, Some(&a2), false);
        assert_eq!(kinds(&changes), vec![("update", "enqueue", json!("a"))]);
        let changes = step(&mut s, "a", true, None, false);
        assert_eq!(kinds(&changes), vec![("remove", "dequeue", json!("a"))]);
        assert!(s.window.is_empty());
        // Documents outside the query never show.
        let b = doc(json!({"_id": "b", "done": true}));
        assert!(step(&mut s, "b", false, Some(&b), false).is_empty());
    }

    #[test]
    fn a_replaced_member_is_a_replace_with_its_document() {
        let mut s = session(
            spec(json!({"done": false}), &[], None),
            vec![doc(json!({"_id": "a", "done": false, "n": 1}))],
            0,
        );
        let a2 = doc(json!({"_id": "a", "done": false, "m": 2}));
        let changes = step(&mut s, "a", true, Some(&a2), true);
        assert_eq!(kinds(&changes), vec![("replace", "update", json!("a"))]);
        assert_eq!(changes[0].doc.as_deref(), Some(&*a2));
        assert!(changes[0].fields.is_none());
        // Replaced so it no longer matches: it leaves as an update, as any change that leaves.
        let a3 = doc(json!({"_id": "a", "done": true}));
        let changes = step(&mut s, "a", true, Some(&a3), true);
        assert_eq!(kinds(&changes), vec![("update", "dequeue", json!("a"))]);
        // In a limit window too.
        let d = |id: &str, n: i64| doc(json!({"_id": id, "n": n}));
        let mut s = session(
            spec(json!({}), &[("n", false)], Some(2)),
            vec![d("a", 1), d("b", 2)],
            0,
        );
        let changes = step(&mut s, "a", true, Some(&d("a", 0)), true);
        assert_eq!(kinds(&changes), vec![("replace", "update", json!("a"))]);
    }

    #[test]
    fn limit_windows_enqueue_and_dequeue() {
        let d = |id: &str, n: i64| doc(json!({"_id": id, "n": n}));
        let mut s = session(
            spec(json!({}), &[("n", false)], Some(2)),
            vec![d("a", 1), d("b", 2)],
            0,
        );
        // A smaller n enters at the front and pushes b out.
        let changes = step(&mut s, "c", false, Some(&d("c", 0)), false);
        assert_eq!(
            kinds(&changes),
            vec![
                ("limit", "dequeue", json!("b")),
                ("add", "enqueue", json!("c"))
            ]
        );
        // A larger n never enters a full window.
        assert!(step(&mut s, "x", false, Some(&d("x", 9)), false).is_empty());
        // Removing a member of a full window pulls the next one from the store.
        let changes = s.apply(
            &json!("a"),
            true,
            None,
            false,
            &mut |_| Ok(vec![d("c", 0), d("b", 2)]),
            &mut Versions::default(),
        );
        assert_eq!(
            kinds(&changes),
            vec![
                ("remove", "dequeue", json!("a")),
                ("limit", "enqueue", json!("b"))
            ]
        );
        assert_eq!(
            s.window
                .iter()
                .map(|d| d["_id"].clone())
                .collect::<Vec<_>>(),
            vec![json!("c"), json!("b")]
        );
        // Moving a member out by sort order dequeues it as an update and enqueues the next.
        let changes = s.apply(
            &json!("c"),
            true,
            Some(&d("c", 10)),
            false,
            &mut |_| Ok(vec![d("b", 2), d("x", 9)]),
            &mut Versions::default(),
        );
        assert_eq!(
            kinds(&changes),
            vec![
                ("update", "dequeue", json!("c")),
                ("limit", "enqueue", json!("x"))
            ]
        );
    }

    #[test]
    fn default_order_is_id_descending() {
        let s = spec(json!({}), &[], None);
        let w = s.window_of(vec![
            doc(json!({"_id": "a"})),
            doc(json!({"_id": "c"})),
            doc(json!({"_id": "b"})),
        ]);
        assert_eq!(
            w.iter().map(|d| d["_id"].clone()).collect::<Vec<_>>(),
            vec![json!("c"), json!("b"), json!("a")]
        );
    }

    #[test]
    fn resume_serves_logged_events_or_asks_for_a_restart() {
        let mut s = session(spec(json!({}), &[], None), vec![], 0);
        for id in 2..=4u64 {
            s.current_event = id;
            s.log_events(id, &[Arc::from(format!("e{id}").as_str())]);
        }
        assert_eq!(
            s.resume_from(2),
            Resume::Events(vec![Arc::from("e3"), Arc::from("e4")])
        );
        assert_eq!(s.resume_from(4), Resume::Events(vec![]));
        assert_eq!(
            s.resume_from(1),
            Resume::Events(vec![Arc::from("e2"), Arc::from("e3"), Arc::from("e4")])
        );
        assert_eq!(s.resume_from(5), Resume::TooOld);
        for id in 5..(6 + RESUME_EVENT_IDS as u64) {
            s.current_event = id;
            s.log_events(id, &[Arc::from("x")]);
        }
        assert_eq!(s.resume_from(2), Resume::TooOld);
        assert!(matches!(s.resume_from(s.current_event - 3), Resume::Events(e) if e.len() == 3));

        // The bounds count event ids, not events; an id's events leave together.
        let mut s = session(spec(json!({}), &[], None), vec![], 0);
        for id in 2..(2 + RESUME_EVENT_IDS as u64) {
            s.current_event = id;
            s.log_events(id, &[Arc::from(format!("{id}a").as_str()), Arc::from("b")]);
        }
        assert!(matches!(s.resume_from(1), Resume::Events(e) if e.len() == 2 * RESUME_EVENT_IDS));
        s.current_event += 1;
        s.log_events(s.current_event, &[Arc::from("last")]);
        assert_eq!(s.resume_from(1), Resume::TooOld);
        assert!(
            matches!(s.resume_from(2), Resume::Events(e) if e.len() == 2 * RESUME_EVENT_IDS - 1 && *e[0] == *"3a")
        );
        // A single id larger than the byte bound is not kept.
        s.current_event += 1;
        let huge: Arc<str> = Arc::from("x".repeat(RESUME_BYTES + 1).as_str());
        s.log_events(s.current_event, &[huge]);
        assert_eq!(s.resume_from(s.current_event - 1), Resume::TooOld);
        assert_eq!(s.resume_from(s.current_event), Resume::Events(vec![]));
    }

    #[test]
    fn versions_compare_and_diff_each_pair_once() {
        let mut versions = Versions::default();
        let old = doc(json!({"_id": "a", "n": 1, "gone": true}));
        let new = doc(json!({"_id": "a", "n": 2}));
        let fields = versions.changes(&old, &new).unwrap();
        assert_eq!(
            (fields.updated_text.as_str(), fields.removed_text.as_str()),
            ("{\"n\":2}", "[\"gone\"]")
        );
        assert!(Arc::ptr_eq(&fields, &versions.changes(&old, &new).unwrap()));
        // Equal versions, at one address or two, make no change (and an empty diff).
        assert!(versions.changes(&new, &new).is_none());
        let copy = doc((*new).clone());
        assert!(versions.changes(&new, &copy).is_none());
        assert!(versions.diff(&new, &copy).updated.is_empty());
    }
}
