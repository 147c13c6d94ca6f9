//! Documented limits (api-surface.md §6), enforced by the SDK before any I/O and again by the emulator.

/// Serialized `callFunction` `data` may be at most this many bytes (`call_function_max_req_data_size`).
pub const CALL_FUNCTION_MAX_DATA_BYTES: usize = 5 * 1024 * 1024;
/// Default request timeout of the web SDK, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
/// Default execution time limit of a cloud function, in seconds (as in the cloud).
pub const DEFAULT_FUNCTION_TIMEOUT_SECS: u32 = 3;
/// `getTempFileURL` / `deleteFile` accept at most this many file IDs per call.
pub const MAX_FILES_PER_CALL: usize = 50;
/// A record or update expression may be at most this many bytes of JSON (`db_doc_size_limit`).
pub const MAX_RECORD_BYTES: usize = 512 * 1024;
/// A `callContainer` request body given as text (a string or JSON) may be at most this many bytes (wx
/// cloud hosting: "request 100 KiB text").
pub const CONTAINER_MAX_TEXT_REQUEST_BYTES: usize = 100 * 1024;
/// Any `callContainer` request body may be at most this many bytes (wx cloud hosting: "20 MiB binary");
/// the emulator's gateway refuses larger bodies with `EXCEED_REQUEST_SIZE_LIMIT`.
pub const CONTAINER_MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;
/// How long the cloudrun gateway waits for a service's response headers, in seconds (wx: "60 s max").
pub const CONTAINER_TIMEOUT_SECS: u64 = 60;
