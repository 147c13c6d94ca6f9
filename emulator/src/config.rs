//! Everything the server needs to know at start, filled by the CLI or by a test.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::container::ContainerTarget;
use crate::storage::{StorageRule, DEFAULT_MAX_UPLOAD_BYTES, UPLOAD_GRANT_TTL_SECS};

/// Default lifetime of an access token, in seconds (as in CloudBase: 2 hours).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 7200;
/// Lifetime of a refresh token, in seconds (CloudBase: 30 days).
pub const REFRESH_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;
/// Largest request body accepted on `/web` and `/v1/functions/*` (uploads have their own limit).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest request body accepted on the `/auth/v1/*` routes (they carry a few tokens at most).
pub const MAX_AUTH_REQUEST_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting accepted in a request (objects and arrays).
pub const MAX_JSON_DEPTH: usize = 64;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; loopback by default.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Where the emulator keeps its state (token secret, …). Created if missing.
    pub data_dir: PathBuf,
    /// `<functions_dir>/<name>/index.js` are the cloud functions.
    pub functions_dir: PathBuf,
    /// Static files served on the same port (`index.html` for `/`).
    pub hosting_dir: Option<PathBuf>,
    /// When set, the only env id accepted; others get `INVALID_ENV`.
    pub env: Option<String>,
    /// Origins allowed by CORS besides the loopback ones (`*` allows any).
    pub allow_origins: Vec<String>,
    /// Access token lifetime, in seconds.
    pub token_ttl_secs: u64,
    /// Largest upload accepted, in bytes (`--max-upload-bytes`).
    pub max_upload_bytes: u64,
    /// Storage rules per env id (`*` for the rest), on top of `<data_dir>/storage-rules.json`.
    pub storage_rules: HashMap<String, StorageRule>,
    /// Lifetime of an upload authorization from `getUploadMetadata`, in seconds (15 minutes).
    pub upload_grant_ttl_secs: u64,
    /// The per-run admin token (admin endpoint, database access from functions); random by default.
    pub admin_token: String,
    /// `--import DIR`: load `DIR/database/` at start (into the `--env` env).
    pub import_dir: Option<PathBuf>,
    /// `--export-on-exit DIR`: write `DIR/database/` on clean shutdown.
    pub export_on_exit: Option<PathBuf>,
    /// `--container NAME=URL`: the services `callContainer` reaches through `/v1/cloudrun/NAME/…`.
    pub containers: BTreeMap<String, ContainerTarget>,
    /// `--container-timeout`: how long the gateway waits for a service's response headers, in seconds.
    pub container_timeout_secs: u64,
}

impl Config {
    /// A loopback configuration on a free port with the default token lifetime.
    pub fn new(data_dir: impl Into<PathBuf>, functions_dir: impl Into<PathBuf>) -> Config {
        Config {
            host: "127.0.0.1".to_string(),
            port: 0,
            data_dir: data_dir.into(),
            functions_dir: functions_dir.into(),
            hosting_dir: None,
            env: None,
            allow_origins: Vec::new(),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            storage_rules: HashMap::new(),
            upload_grant_ttl_secs: UPLOAD_GRANT_TTL_SECS,
            admin_token: new_admin_token(),
            import_dir: None,
            export_on_exit: None,
            containers: BTreeMap::new(),
            container_timeout_secs: cloud_protocol::limits::CONTAINER_TIMEOUT_SECS,
        }
    }
}

/// A fresh admin token: 24 random bytes as hex.
pub fn new_admin_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}
