//! Test-only: requests of the official SDK as captured on the wire (JSON lines `{"i","method","url",
//! "headers","body"}`), copied from ../shared/reference/captures into the committed tests/fixtures/ so
//! the golden tests run without that folder.

use serde_json::Value;

/// functions.invokeFunction from js-sdk 1.7.2 and 3.7.0.
pub(crate) const INVOKE_FUNCTION: &str = include_str!("../tests/fixtures/invoke-function.jsonl");
/// storage.getUploadMetadata (PUT and POST), batchGetDownloadUrl and batchDeleteFile from js-sdk 3.7.0.
#[cfg(feature = "storage")]
pub(crate) const STORAGE: &str = include_str!("../tests/fixtures/storage-3.7.0.jsonl");
/// database.* requests from js-sdk 3.7.0, one per scenario of the `database::request` tests.
#[cfg(feature = "database")]
pub(crate) const DATABASE: &str = include_str!("../tests/fixtures/database-3.7.0.jsonl");

/// One captured request with a JSON body.
pub(crate) struct Capture {
    /// The whole record.
    pub record: Value,
    /// The body as sent, byte for byte.
    pub body: String,
    /// The body parsed.
    pub json: Value,
}

impl Capture {
    fn parse(line: &str) -> Option<Capture> {
        let record: Value = serde_json::from_str(line).ok()?;
        let body = record["body"].as_str()?.to_owned();
        let json = serde_json::from_str(&body).ok()?;
        Some(Capture { record, body, json })
    }

    /// The body's `action`.
    pub fn action(&self) -> Option<&str> {
        self.json["action"].as_str()
    }

    /// A string field of the body (panics when it is missing).
    pub fn field(&self, key: &str) -> String {
        self.json[key]
            .as_str()
            .unwrap_or_else(|| panic!("capture i={} has no {key}", self.record["i"]))
            .to_owned()
    }
}

/// Every request of a committed fixture, in order; each line must be a record with a JSON body.
pub(crate) fn fixture(text: &str) -> Vec<Capture> {
    text.lines()
        .map(|line| {
            Capture::parse(line).unwrap_or_else(|| panic!("fixture line is no request: {line}"))
        })
        .collect()
}
