//! The pure core of realtime `watch()` (protocol.md §5.6, captures/ws-capture.jsonl): the client frames,
//! the event-id discipline (apply the next id, drop duplicates, rebuild on a gap), the snapshot window
//! (`docs` after each change, as @cloudbase/realtime's virtual client builds it) and the reconnect backoff.
//!
//! Documents are a type parameter: the wasm keeps `JsValue`s (parsed JSON, never decoded in place), the
//! native tests plain strings. The socket and the watchers live in `super::realtime`.

use super::request::Order;
use crate::transport::envelope::{write_json_string, JsonObject};

/// Client → server frames, byte for byte in the official client's key order.
pub mod frame {
    use super::*;

    /// `LOGIN` with the `auth.wsWebSign` answer.
    pub fn login(request_id: &str, env: &str, sign: &str, secret_version: &str) -> String {
        let data = JsonObject::new()
            .string("envId", env)
            .string("accessToken", "")
            .string("referrer", "web")
            .string("sdkVersion", "")
            .string("dataVersion", "")
            .finish();
        let extra = JsonObject::new()
            .string("runtime", "web")
            .string("signStr", sign)
            .raw("secretVersion", secret_version)
            .finish();
        JsonObject::new()
            .string("requestId", request_id)
            .string("msgType", "LOGIN")
            .raw("msgData", &data)
            .raw("exMsgData", &extra)
            .finish()
    }

    fn with_watch(watch_id: &str, request_id: &str, kind: &str, data: &str) -> String {
        JsonObject::new()
            .string("watchId", watch_id)
            .string("requestId", request_id)
            .string("msgType", kind)
            .raw("msgData", data)
            .finish()
    }

    /// `INIT_WATCH`: `query` is the encoded `where` as JSON text (sent as a string), `orderBy` an object
    /// `{field: "asc"|"desc"}` in the order of the `orderBy()` calls.
    pub fn init_watch(
        watch_id: &str,
        request_id: &str,
        env: &str,
        collection: &str,
        query: &str,
        limit: Option<u32>,
        orders: &[Order],
    ) -> String {
        let mut data = JsonObject::new()
            .string("envId", env)
            .string("collName", collection)
            .string("query", query);
        if let Some(limit) = limit {
            data = data.raw("limit", &limit.to_string());
        }
        if !orders.is_empty() {
            let mut order_by = JsonObject::new();
            for order in orders {
                order_by =
                    order_by.string(&order.field, if order.descending { "desc" } else { "asc" });
            }
            data = data.raw("orderBy", &order_by.finish());
        }
        with_watch(watch_id, request_id, "INIT_WATCH", &data.finish())
    }

    /// `REBUILD_WATCH` from the last event id applied.
    pub fn rebuild_watch(
        watch_id: &str,
        request_id: &str,
        env: &str,
        collection: &str,
        query_id: &str,
        event_id: u64,
    ) -> String {
        let data = JsonObject::new()
            .string("envId", env)
            .string("collName", collection)
            .string("queryID", query_id)
            .raw("eventID", &event_id.to_string())
            .finish();
        with_watch(watch_id, request_id, "REBUILD_WATCH", &data)
    }

    /// `CHECK_LAST`: asks the server for its latest event id of this query.
    pub fn check_last(watch_id: &str, request_id: &str, query_id: &str, event_id: u64) -> String {
        let data = JsonObject::new()
            .string("queryID", query_id)
            .raw("eventID", &event_id.to_string())
            .finish();
        with_watch(watch_id, request_id, "CHECK_LAST", &data)
    }

    /// `CLOSE_WATCH` (msgData null).
    pub fn close_watch(watch_id: &str, request_id: &str) -> String {
        with_watch(watch_id, request_id, "CLOSE_WATCH", "null")
    }

    /// `PING` (no watchId, msgData null).
    pub fn ping(request_id: &str) -> String {
        let mut out = String::from("{\"requestId\":");
        write_json_string(&mut out, request_id);
        out.push_str(",\"msgType\":\"PING\",\"msgData\":null}");
        out
    }
}

/// `QueueType`: what the change does to the result window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueType {
    Init,
    Update,
    Enqueue,
    Dequeue,
}

impl QueueType {
    /// The wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "init" => QueueType::Init,
            "update" => QueueType::Update,
            "enqueue" => QueueType::Enqueue,
            "dequeue" => QueueType::Dequeue,
            _ => return None,
        })
    }
}

/// One server event: `ID`, `QueueType`, `DocID`, the full document when the server sent one, and
/// whether its `DataType` needs the client's copy of the document (`update` without a document is a
/// partial update; `remove` / `limit` dequeues name the document only).
#[derive(Clone, Debug, PartialEq)]
pub struct Event<D> {
    pub id: u64,
    pub queue_type: QueueType,
    pub doc_id: String,
    pub doc: Option<D>,
    /// `DataType` is `update` and no full document came: patch the local copy.
    pub partial_update: bool,
}

/// Why a batch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An event id beyond the next one: ask the server again from the last applied id.
    Gap { last_applied: u64 },
    /// A change that adds a document without sending it (-402011, as the official client).
    MissingDocument(String),
}

/// A change ready for the user, and the window after the event it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<D> {
    pub id: u64,
    /// Indexes into the batch's events (those of this id, in order).
    pub changes: Vec<usize>,
    pub docs: Vec<D>,
}

/// One watcher's view: the last applied event id and the current result window.
#[derive(Clone, Debug)]
pub struct Window<D> {
    pub last_applied: u64,
    pub docs: Vec<(String, D)>,
}

impl<D> Default for Window<D> {
    fn default() -> Self {
        Window {
            last_applied: 0,
            docs: Vec::new(),
        }
    }
}

impl<D: Clone> Window<D> {
    fn position(&self, doc_id: &str) -> Option<usize> {
        self.docs.iter().position(|(id, _)| id == doc_id)
    }

    /// Applies a batch (INIT_EVENT after its ids were set to `currEvent`, or NEXT_EVENT): events at or
    /// below the last applied id are duplicates and skipped; the next id is applied; anything beyond is a
    /// gap. Events missing their document get the local copy (`patch` applies a partial update to it).
    /// Returns one snapshot per event id, in order; on a fault the snapshots before it stand.
    pub fn apply(
        &mut self,
        events: &mut [Event<D>],
        mut patch: impl FnMut(&D, usize) -> D,
        mut order: impl FnMut(&mut Vec<(String, D)>),
    ) -> (Vec<Snapshot<D>>, Option<Fault>) {
        let mut snapshots = Vec::new();
        let mut init_seen = false;
        let mut index = 0;
        while index < events.len() {
            let id = events[index].id;
            if id <= self.last_applied {
                index += 1; // a duplicate (a rebuild may resend what a push already delivered)
                continue;
            }
            if id != self.last_applied + 1 {
                return (
                    snapshots,
                    Some(Fault::Gap {
                        last_applied: self.last_applied,
                    }),
                );
            }
            let mut changes = Vec::new();
            while index < events.len() && events[index].id == id {
                if let Err(fault) =
                    self.apply_one(&mut events[index], index, &mut init_seen, &mut patch)
                {
                    return (snapshots, Some(fault));
                }
                changes.push(index);
                index += 1;
            }
            order(&mut self.docs);
            self.last_applied = id;
            snapshots.push(Snapshot {
                id,
                changes,
                docs: self.docs.iter().map(|(_, doc)| doc.clone()).collect(),
            });
        }
        (snapshots, None)
    }

    fn apply_one(
        &mut self,
        event: &mut Event<D>,
        index: usize,
        init_seen: &mut bool,
        patch: &mut impl FnMut(&D, usize) -> D,
    ) -> Result<(), Fault> {
        let local = self.position(&event.doc_id);
        if event.doc.is_none() {
            let local_doc = local.map(|at| &self.docs[at].1);
            event.doc = match (event.partial_update, local_doc) {
                (true, Some(doc)) => Some(patch(doc, index)),
                (_, doc) => doc.cloned(),
            };
        }
        let doc = event.doc.clone();
        match event.queue_type {
            QueueType::Init | QueueType::Enqueue => {
                let doc = doc.ok_or_else(|| {
                    Fault::MissingDocument(format!(
                        "no document sent for the added document {}",
                        event.doc_id
                    ))
                })?;
                if event.queue_type == QueueType::Init && !*init_seen {
                    *init_seen = true;
                    self.docs.clear();
                }
                match self.position(&event.doc_id) {
                    Some(at) => self.docs[at].1 = doc,
                    None => self.docs.push((event.doc_id.clone(), doc)),
                }
            }
            QueueType::Dequeue => {
                if let Some(at) = local {
                    self.docs.remove(at);
                }
            }
            QueueType::Update => {
                if let (Some(at), Some(doc)) = (local, doc) {
                    self.docs[at].1 = doc;
                }
            }
        }
        Ok(())
    }
}

/// The watch spec of a query, as `init_watch` sends it and the window orders documents.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub collection: String,
    /// The encoded `where` as JSON text (`{}` for the whole collection).
    pub query: String,
    pub limit: Option<u32>,
    pub orders: Vec<Order>,
}

/// Reconnect attempts after a dropped socket before every watcher gets `onError` (wx: max reconnect 5).
pub const MAX_RECONNECTS: u32 = 5;

/// The wait before reconnect attempt `attempt` (1-based): 250 ms doubling up to 4 s, with "full
/// jitter" between half and all of it (`random` in 0..1) so clients dropped together do not return
/// together.
pub fn reconnect_delay_ms(attempt: u32, random: f64) -> u32 {
    let ceiling = 250u32 << attempt.saturating_sub(1).min(4);
    let half = ceiling / 2;
    half + (f64::from(half) * random.clamp(0.0, 1.0)) as u32
}

/// The errCode of a server `ERROR` frame's code: sign problems are retried by logging in again
/// (`None`); the rest end the watcher with -402006 (server error message).
pub fn is_sign_error(code: &str) -> bool {
    matches!(
        code,
        "CHECK_LOGIN_FAILED" | "SIGN_EXPIRED_ERROR" | "SIGN_INVALID_ERROR" | "SIGN_PARAM_INVALID"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, queue: QueueType, doc_id: &str, doc: Option<&str>) -> Event<String> {
        Event {
            id,
            queue_type: queue,
            doc_id: doc_id.into(),
            doc: doc.map(str::to_owned),
            partial_update: false,
        }
    }

    fn no_order(_: &mut Vec<(String, String)>) {}

    fn patch_marker(doc: &String, index: usize) -> String {
        format!("{doc}+patch{index}")
    }

    /// The frames the official client sent (ws-capture.jsonl), rebuilt byte for byte.
    #[test]
    fn frames_match_the_captured_ones() {
        let capture = include_str!("../../tests/fixtures/ws-capture.jsonl");
        // The recorded frames as the official client wrote them, byte for byte.
        let sent: Vec<&str> = capture
            .lines()
            .filter_map(|line| line.strip_prefix("{\"dir\":\"c2s\",\"msg\":"))
            .map(|msg| msg.strip_suffix('}').unwrap())
            .collect();
        let parsed: Vec<serde_json::Value> = sent
            .iter()
            .map(|msg| serde_json::from_str(msg).unwrap())
            .collect();
        let text = |i: usize| sent[i].to_owned();
        let req = |i: usize| parsed[i]["requestId"].as_str().unwrap().to_owned();
        let watch_id = parsed[1]["watchId"].as_str().unwrap();
        assert_eq!(frame::login(&req(0), "envx", "sig", "1"), text(0));
        let orders = [Order {
            field: "n".into(),
            descending: false,
        }];
        assert_eq!(
            frame::init_watch(
                watch_id,
                &req(1),
                "envx",
                "todos",
                "{\"done\":false}",
                Some(10),
                &orders
            ),
            text(1)
        );
        assert_eq!(frame::close_watch(watch_id, &req(2)), text(2));
    }

    #[test]
    fn other_frames_have_the_protocol_shape() {
        assert_eq!(
            frame::rebuild_watch("w", "r", "e", "c", "q-1", 7),
            r#"{"watchId":"w","requestId":"r","msgType":"REBUILD_WATCH","msgData":{"envId":"e","collName":"c","queryID":"q-1","eventID":7}}"#
        );
        assert_eq!(
            frame::check_last("w", "r", "q-1", 3),
            r#"{"watchId":"w","requestId":"r","msgType":"CHECK_LAST","msgData":{"queryID":"q-1","eventID":3}}"#
        );
        assert_eq!(
            frame::ping("r\"1"),
            r#"{"requestId":"r\"1","msgType":"PING","msgData":null}"#
        );
        let plain = frame::init_watch("w", "r", "e", "c", "{}", None, &[]);
        assert_eq!(
            plain,
            r#"{"watchId":"w","requestId":"r","msgType":"INIT_WATCH","msgData":{"envId":"e","collName":"c","query":"{}"}}"#
        );
    }

    #[test]
    fn init_then_updates_build_the_window() {
        let mut window = Window::default();
        // INIT_EVENT: every event carries currEvent (the client rewrites the ids, as the official one).
        let mut init = vec![
            event(4, QueueType::Init, "a", Some("A")),
            event(4, QueueType::Init, "b", Some("B")),
        ];
        window.last_applied = 3;
        let (snapshots, fault) = window.apply(&mut init, patch_marker, no_order);
        assert_eq!(fault, None);
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].changes, vec![0, 1]);
        assert_eq!(snapshots[0].docs, vec!["A", "B"]);

        let mut next = vec![
            Event {
                partial_update: true,
                ..event(5, QueueType::Update, "a", None)
            },
            event(6, QueueType::Enqueue, "c", Some("C")),
            event(7, QueueType::Dequeue, "b", None),
        ];
        let (snapshots, fault) = window.apply(&mut next, patch_marker, no_order);
        assert_eq!(fault, None);
        let docs: Vec<_> = snapshots.iter().map(|s| s.docs.join(",")).collect();
        assert_eq!(docs, ["A+patch0,B", "A+patch0,B,C", "A+patch0,C"]);
        // The partial update got its full document; the dequeue got the removed one.
        assert_eq!(next[0].doc.as_deref(), Some("A+patch0"));
        assert_eq!(next[2].doc.as_deref(), Some("B"));
        assert_eq!(window.last_applied, 7);
    }

    #[test]
    fn duplicates_are_skipped_and_gaps_stop_the_batch() {
        let mut window = Window {
            last_applied: 2,
            docs: vec![("a".to_owned(), "A".to_owned())],
        };
        let mut events = vec![
            event(2, QueueType::Update, "a", Some("old")),
            event(3, QueueType::Update, "a", Some("A3")),
            event(5, QueueType::Update, "a", Some("A5")),
        ];
        let (snapshots, fault) = window.apply(&mut events, patch_marker, no_order);
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].docs, vec!["A3"]);
        assert_eq!(fault, Some(Fault::Gap { last_applied: 3 }));
        assert_eq!(window.last_applied, 3);
        // The rebuild resends 4 and 5 (and maybe 3 again): exactly 4 and 5 are applied.
        let mut resent = vec![
            event(3, QueueType::Update, "a", Some("A3")),
            event(4, QueueType::Update, "a", Some("A4")),
            event(5, QueueType::Update, "a", Some("A5")),
        ];
        let (snapshots, fault) = window.apply(&mut resent, patch_marker, no_order);
        assert_eq!(fault, None);
        let ids: Vec<u64> = snapshots.iter().map(|s| s.id).collect();
        assert_eq!(ids, [4, 5]);
    }

    #[test]
    fn an_enqueue_without_its_document_is_a_fault() {
        let mut window: Window<String> = Window::default();
        let mut events = vec![event(1, QueueType::Enqueue, "x", None)];
        let (_, fault) = window.apply(&mut events, patch_marker, no_order);
        assert!(matches!(fault, Some(Fault::MissingDocument(_))));
    }

    #[test]
    fn the_order_hook_sorts_the_window() {
        let mut window = Window::default();
        let mut events = vec![
            event(1, QueueType::Init, "b", Some("2")),
            event(1, QueueType::Init, "a", Some("1")),
        ];
        let (snapshots, _) = window.apply(&mut events, patch_marker, |docs| {
            docs.sort_by(|x, y| x.1.cmp(&y.1))
        });
        assert_eq!(snapshots[0].docs, vec!["1", "2"]);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(reconnect_delay_ms(1, 0.0), 125);
        assert_eq!(reconnect_delay_ms(1, 1.0), 250);
        assert_eq!(reconnect_delay_ms(2, 0.5), 375);
        assert_eq!(reconnect_delay_ms(5, 1.0), 4000);
        assert_eq!(reconnect_delay_ms(30, 1.0), 4000);
    }
}
