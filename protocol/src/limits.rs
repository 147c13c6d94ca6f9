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
