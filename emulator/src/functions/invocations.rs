//! The recent calls of every function, with their console output: what the dashboard's Functions page
//! shows. In memory only, bounded ([`MAX_INVOCATIONS`] calls, long texts cut).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use super::worker::ConsoleLine;

/// How many calls are kept (over all functions).
pub const MAX_INVOCATIONS: usize = 500;
/// Longest event, result or error text kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// One finished call.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// Increasing id (a live tail asks for the calls after the last id it has).
    pub id: u64,
    /// The function.
    pub function: String,
    /// The env it ran on.
    pub env: String,
    /// The request id the caller got.
    pub request_id: String,
    /// The caller's openid (empty for admin calls without one).
    pub openid: String,
    /// Start, ms since the epoch.
    pub started: u64,
    /// How long it took, in ms.
    pub duration_ms: f64,
    /// `ok` or `error`.
    pub status: &'static str,
    /// The event (JSON), cut to [`MAX_TEXT_BYTES`].
    pub event: String,
    /// The return value (JSON) of a successful call, cut.
    pub result: Option<String>,
    /// The error code of a failed call.
    pub error_code: Option<&'static str>,
    /// The error message (with the stack for a throw), cut.
    pub error: Option<String>,
    /// Console output of the call.
    pub logs: Vec<ConsoleLine>,
}

/// The log of recent calls.
#[derive(Default)]
pub struct InvocationLog {
    entries: Mutex<VecDeque<Arc<Invocation>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl InvocationLog {
    /// Records a call (its `id` is assigned here).
    pub fn record(&self, mut invocation: Invocation) {
        invocation.id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == MAX_INVOCATIONS {
            entries.pop_front();
        }
        entries.push_back(Arc::new(invocation));
    }

    /// The calls of `function` (all when `None`) with an id above `after`, newest first, at most `limit`.
    pub fn recent(&self, function: Option<&str>, after: u64, limit: usize) -> Vec<Arc<Invocation>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .rev()
            .take_while(|entry| entry.id > after)
            .filter(|entry| function.is_none_or(|name| entry.function == name))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(function: &str) -> Invocation {
        Invocation {
            id: 0,
            function: function.into(),
            env: "e".into(),
            request_id: "r".into(),
            openid: String::new(),
            started: 0,
            duration_ms: 1.0,
            status: "ok",
            event: "{}".into(),
            result: None,
            error_code: None,
            error: None,
            logs: Vec::new(),
        }
    }

    #[test]
    fn keeps_the_newest_calls_and_filters_them() {
        let log = InvocationLog::default();
        for index in 0..MAX_INVOCATIONS + 3 {
            log.record(call(if index % 2 == 0 { "even" } else { "odd" }));
        }
        let all = log.recent(None, 0, usize::MAX);
        assert_eq!(all.len(), MAX_INVOCATIONS);
        assert_eq!(all[0].id, MAX_INVOCATIONS as u64 + 3);
        let odd = log.recent(Some("odd"), 0, 2);
        assert_eq!(odd.len(), 2);
        assert!(odd.iter().all(|entry| entry.function == "odd"));
        assert_eq!(log.recent(None, all[1].id, 10).len(), 1);
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
