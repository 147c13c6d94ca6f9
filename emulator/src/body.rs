//! Reading request bodies: a size limit, a nesting-depth limit, JSON whatever the content-type.

use axum::body::Body;
use cloud_protocol::codes;
use futures_util::StreamExt;
use serde_json::Value;

use crate::config::MAX_JSON_DEPTH;
use crate::error::ApiError;

/// How much of an oversized body is still read (and dropped) so the client gets to read the answer.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads the whole body, failing with `EXCEED_REQUEST_SIZE_LIMIT` past `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::invalid_param(format!("could not read the request body: {err}"))
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if seen > limit {
        return Err(ApiError::new(
            codes::EXCEED_REQUEST_SIZE_LIMIT,
            format!("request body exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Whether `json` nests objects/arrays deeper than `max` (a byte scan, so no deep recursion happens).
pub fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON text after checking its depth; `what` names it in error messages.
pub fn parse_json(json: &[u8], what: &str) -> Result<Value, ApiError> {
    if nests_deeper_than(json, MAX_JSON_DEPTH) {
        return Err(ApiError::invalid_param(format!(
            "{what} nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    serde_json::from_slice(json)
        .map_err(|err| ApiError::invalid_param(format!("{what} is not valid JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!nests_deeper_than(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(!nests_deeper_than(br#"{"a":"[[[[[[\"[[["}"#, 1));
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(nests_deeper_than(deep.as_bytes(), 64));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(!nests_deeper_than(ok.as_bytes(), 64));
    }

    #[test]
    fn parse_json_reports_invalid_param() {
        assert_eq!(
            parse_json(b"{", "body").unwrap_err().code,
            codes::INVALID_PARAM
        );
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert_eq!(
            parse_json(deep.as_bytes(), "body").unwrap_err().code,
            codes::INVALID_PARAM
        );
        assert_eq!(parse_json(br#"{"a":1}"#, "body").unwrap()["a"], 1);
    }

    #[tokio::test]
    async fn read_limited_rejects_oversized_bodies() {
        let ok = read_limited(Body::from(vec![1u8; 10]), 10).await.unwrap();
        assert_eq!(ok.len(), 10);
        let err = read_limited(Body::from(vec![1u8; 11]), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::EXCEED_REQUEST_SIZE_LIMIT);
    }
}
