//! When a request is sent again. Only requests that change nothing are retried — reads (`get`, `count`,
//! `aggregate`), temp URLs and downloads, anonymous sign-in and token refresh — and only after a
//! transient failure: the connection failed or broke, the answer was unreadable (truncated, not JSON),
//! or the HTTP status was 408, 429 or 5xx without a CloudBase error code. Writes, `callFunction` and
//! `callContainer` are never retried: the first failure is the caller's to handle.
//!
//! Attempts wait a jittered, exponentially growing delay ("full jitter": uniform in 0..=min(cap,
//! base·2^n)) and all attempts together stay within the call's timeout; at most [`MAX_RETRIES`] retries.

use wasm_bindgen::prelude::*;

use crate::error::Failure;

/// Retries after the first attempt, at most.
pub const MAX_RETRIES: u32 = 3;
/// The first retry waits up to this long; each further one up to twice as long as the previous.
pub const BASE_DELAY_MS: f64 = 100.0;
/// No retry waits longer than this.
pub const MAX_DELAY_MS: f64 = 2_000.0;
/// A retry is only worth starting with at least this much of the timeout left after its delay.
const MIN_ATTEMPT_MS: f64 = 250.0;

/// Whether `failure` may be gone on the next attempt.
pub fn is_transient(failure: &Failure) -> bool {
    match failure {
        Failure::Network(_) => true,
        Failure::Http(status) => matches!(status, 408 | 429 | 500..=599),
        _ => false,
    }
}

/// The upper bound of the delay before retry number `attempt` (0-based).
pub fn delay_cap_ms(attempt: u32) -> f64 {
    (BASE_DELAY_MS * f64::from(1u32 << attempt.min(16))).min(MAX_DELAY_MS)
}

/// The time left to one call's attempts.
pub struct Budget {
    deadline_ms: f64,
}

impl Budget {
    /// A budget of `timeout_ms` from now.
    pub fn new(timeout_ms: u32) -> Self {
        Budget {
            deadline_ms: js_sys::Date::now() + f64::from(timeout_ms),
        }
    }

    /// The time left, for the next attempt's own timeout (at least 1 ms).
    pub fn remaining_ms(&self) -> u32 {
        // `as` saturates at u32::MAX; max() instead of clamp(), whose assertion would add panic code.
        (self.deadline_ms - js_sys::Date::now()).max(1.0) as u32
    }

    /// After failed attempt number `attempt`: waits the jittered delay and returns true when another
    /// attempt should follow; false at once when the failure is final or no time is left for one.
    pub async fn retry_after(&self, failure: &Failure, attempt: u32) -> bool {
        if attempt >= MAX_RETRIES || !is_transient(failure) {
            return false;
        }
        let delay = (js_sys::Math::random() * delay_cap_ms(attempt)).floor();
        if self.deadline_ms - js_sys::Date::now() < delay + MIN_ATTEMPT_MS {
            return false;
        }
        sleep(delay as u32).await;
        true
    }
}

// A plain (ref'd) timer: the caller is awaiting the retry, so Node must not exit meanwhile.
#[wasm_bindgen(inline_js = "export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}")]
extern "C" {
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_promise(ms: u32) -> js_sys::Promise;
}

/// Resolves after `ms`.
async fn sleep(ms: u32) {
    let _ = wasm_bindgen_futures::JsFuture::from(sleep_promise(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(is_transient(&Failure::Network("reset".into())));
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&Failure::Http(status)), "{status}");
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(!is_transient(&Failure::Http(status)), "{status}");
        }
        assert!(!is_transient(&Failure::Timeout));
        assert!(!is_transient(&Failure::Aborted));
        assert!(!is_transient(&Failure::Server {
            code: "DATABASE_PERMISSION_DENIED".into(),
            message: String::new(),
            request_id: None,
        }));
    }

    #[test]
    fn delays_grow_then_cap() {
        assert_eq!(delay_cap_ms(0), 100.0);
        assert_eq!(delay_cap_ms(1), 200.0);
        assert_eq!(delay_cap_ms(3), 800.0);
        assert_eq!(delay_cap_ms(5), MAX_DELAY_MS);
        assert_eq!(delay_cap_ms(40), MAX_DELAY_MS);
    }
}
