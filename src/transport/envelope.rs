//! The `/web` action envelope, built byte for byte as the official SDK builds it (protocol.md §1.2):
//! `{action, dataVersion, env, <params in the SDK's order>, access_token, seqId}`.
//!
//! Pure Rust so the golden tests can compare our bytes with the captured ones natively.

use cloud_protocol::DATA_VERSION;

/// A JSON object written in insertion order, the way `JSON.stringify` writes a JS object literal.
#[derive(Default)]
pub struct JsonObject {
    text: String,
}

impl JsonObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        write_json_string(&mut self.text, key);
        self.text.push(':');
    }

    /// Adds `"key":"value"` with the value escaped as a JSON string.
    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        write_json_string(&mut self.text, value);
        self
    }

    /// Adds `"key":<json>` where `json` is already JSON text (e.g. from `JSON.stringify`).
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.text.push_str(json);
        self
    }

    /// The finished JSON text.
    pub fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push('}');
        self.text
    }
}

/// Appends `value` as a JSON string literal, escaping exactly as `JSON.stringify` does.
///
/// Runs of bytes that need no escape are copied whole: pushing char by char was a tenth of the SDK's
/// per-call CPU (bench/overhead.mjs). Bytes of multi-byte UTF-8 sequences are all ≥ 0x80, so a run
/// never splits a character. Runs are taken with `str::get`, not `&value[..]`: the panicking slice
/// pulls core's slice-error formatting into the wasm (~4.6 KB, bench/size.mjs) for a case that cannot
/// happen.
pub fn write_json_string(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    let bytes = value.as_bytes();
    let mut run_start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(value.get(run_start..index).unwrap_or_default());
        run_start = index + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(value.get(run_start..).unwrap_or_default());
    out.push('"');
}

/// One action parameter, written in the order given (the official SDK's order).
pub enum Param<'a> {
    /// A string value (escaped when written).
    Str(&'static str, &'a str),
    /// A value that is already JSON text (an array or object built with [`JsonObject`]).
    // Only storage and database send one; the functions-only build (no features) never does.
    #[cfg_attr(not(any(feature = "storage", feature = "database")), allow(dead_code))]
    Raw(&'static str, &'a str),
}

/// Builds the envelope of one `/web` action.
pub fn envelope(
    action: &str,
    env: &str,
    params: &[Param],
    access_token: &str,
    seq_id: &str,
) -> String {
    // Sized once: the envelope is the parts plus at most ~150 bytes of keys and punctuation
    // (escapes are rare and just grow it).
    let capacity = action.len()
        + env.len()
        + access_token.len()
        + seq_id.len()
        + params
            .iter()
            .map(|param| match param {
                Param::Str(key, value) | Param::Raw(key, value) => key.len() + value.len() + 6,
            })
            .sum::<usize>()
        + 160;
    let mut object = JsonObject {
        text: String::with_capacity(capacity),
    }
    .string("action", action)
    .string("dataVersion", DATA_VERSION)
    .string("env", env);
    for param in params {
        object = match *param {
            Param::Str(key, value) => object.string(key, value),
            Param::Raw(key, json) => object.raw(key, json),
        };
    }
    object
        .string("access_token", access_token)
        .string("seqId", seq_id)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_json_stringify() {
        let mut out = String::new();
        write_json_string(&mut out, "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}é中/<>\u{7f}");
        assert_eq!(
            out,
            r#""a\"b\\c\n\r\t\b\f\u0001\u001fé中/<>"#.to_owned() + "\u{7f}\""
        );
    }

    #[test]
    fn empty_object_is_braces() {
        assert_eq!(JsonObject::new().finish(), "{}");
    }

    #[test]
    fn envelope_keeps_the_sdk_key_order() {
        // protocol.md §1.2, verbatim capture of @cloudbase/js-sdk 1.7.2.
        let params = [
            Param::Str("function_name", "echo"),
            Param::Str("request_data", r#"{"a":1}"#),
        ];
        assert_eq!(
            envelope(
                "functions.invokeFunction",
                "envx",
                &params,
                "AT-legacy-1",
                "7bfa64d0c4a56"
            ),
            r#"{"action":"functions.invokeFunction","dataVersion":"2020-01-10","env":"envx","function_name":"echo","request_data":"{\"a\":1}","access_token":"AT-legacy-1","seqId":"7bfa64d0c4a56"}"#
        );
    }
}
