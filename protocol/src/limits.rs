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
/// A value may nest objects and arrays at most this many levels deep (MongoDB's BSON limit, which
/// CloudBase's database inherits). The SDK refuses deeper `data` / queries / `callFunction` data
/// before any I/O, with a parameter error instead of exhausting a stack.
pub const MAX_NESTING_DEPTH: usize = 100;
/// A single `where` / `update` / `add` / aggregate-stage argument may be at most this many bytes of
/// JSON (estimated while converting it, before anything is encoded); larger input fails that one call.
pub const MAX_ARGUMENT_BYTES: usize = 16 * 1024 * 1024;
/// A `callContainer` request body given as text (a string or JSON) may be at most this many bytes (wx
/// cloud hosting: "request 100 KiB text").
pub const CONTAINER_MAX_TEXT_REQUEST_BYTES: usize = 100 * 1024;
/// Any `callContainer` request body may be at most this many bytes (wx cloud hosting: "20 MiB binary");
/// the emulator's gateway refuses larger bodies with `EXCEED_REQUEST_SIZE_LIMIT`.
pub const CONTAINER_MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;
/// How long the cloudrun gateway waits for a service's response headers, in seconds (wx: "60 s max").
pub const CONTAINER_TIMEOUT_SECS: u64 = 60;

/// How deeply the JSON text `json` nests objects and arrays (`1` for `{}` and `[1]`, `0` for a scalar).
/// A byte scan that skips strings, so it needs no parse and no recursion.
pub fn json_nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(json_nesting_depth("1"), 0);
        assert_eq!(json_nesting_depth("{}"), 1);
        assert_eq!(json_nesting_depth(r#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(json_nesting_depth(r#"["\"[[", [[]]]"#), 3);
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(json_nesting_depth(&deep), 5000);
    }
}
