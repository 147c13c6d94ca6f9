//! When a request is sent again. Only requests that change nothing are retried — reads (`get`, `count`,
//! `aggregate`), temp URLs and downloads, anonymous sign-in and token refresh — and only after a
//! transient failure: the connection failed or broke, the answer was unreadable (truncated, not JSON),
//! or the HTTP status was 408, 429 or 5xx without a CloudBase error code. Writes, `callFunction` and
//! `callContainer` are never retried: the first failure is the caller's to handle.
//!
//! Attempts wait a jittered, exponentially growing delay ("full jitter": uniform in 0..min(2 s,
//! 100 ms·2^n)), at most [`MAX_RETRIES`] retries, and all attempts together stay within the call's
//! timeout (one deadline aborts whichever attempt or wait is running). The loop itself is JS, next to
//! the fetch it repeats (`fetchJson` in http.rs, `download` in transfer.js): in Rust it cost ~2.5 KB of wasm.

/// Retries after the first attempt, at most.
pub const MAX_RETRIES: u32 = 3;
