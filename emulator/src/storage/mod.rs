//! The object store: uploads (COS-style POST form and presigned PUT), signed temp URLs, delete and copy,
//! per-env permission rules; reached through the P1 `storage.*` actions, the P3 `/v1/storages/*` routes
//! and the `/cos/{env}/{path}` object URLs.
//!
//! Layout on disk (under `--data-dir`):
//! * `blobs/<32 hex digits>`: object bodies under generated ids — a user's path never becomes a file path;
//! * `storage.sqlite3` (WAL): one row per object `(env, path) → blob id, size, content type, sha256,
//!   etag, owner openid, created/updated ms`;
//! * `storage-rules.json` (optional): `{"<env>" | "*": "all_write" | "creator_write" | "read_only" | "private"}`.
//!
//! Choices worth knowing:
//! * URLs: uploads and downloads both use `{base}/cos/{env}/{percent-encoded path}` (`base` = the
//!   `Host` the request came on); downloads add `?sign=…&t=<expiry ms>`. A URL that went through
//!   `encodeURI` once more (js-sdk's `downloadFile` does that) still works: the path is tried decoded
//!   once and twice, and only a reading the signature verifies for is served.
//! * Upload authorizations live 15 minutes (`Config::upload_grant_ttl_secs`) and bind env, path,
//!   uploader openid and any signed headers (`headers` of getUploadMetadata, P3 `signedHeader`).
//! * Temp URLs: `max_age` in seconds; absent → 600 s (wx's 10 minutes for private files; js-sdk 3.x
//!   sends 7200 itself); capped at one day. Every URL is signed, whatever the rule.
//! * Content-Type served: the upload's own (PUT header, POST part or `Content-Type` field) unless it is
//!   missing or `application/octet-stream`, else guessed from the extension.
//! * The admin (the per-run admin token as `access_token`, or `wx-server-sdk` in a function over `/admin`) may use
//!   the P1 actions: it passes every rule and owns what it creates ([`rules::ADMIN_OWNER`]), so users
//!   see those files as someone else's.
//! * Limits: `--max-upload-bytes` (default 50 MiB) → 400 `EntityTooLarge`; the 8 MiB `/web` limit does
//!   not apply to uploads. Batches: at most 1000 items (the SDKs send at most 50).
//!
//! Modules: `store` (SQLite + blobs), `signing` (upload grants and temp-URL signatures), `rules`
//! (permissions), `ops` (the operations shared by P1 and P3), `actions` (P1), `gateway` (P3),
//! `upload` and `download` (the object URL), `xml` (COS-style error bodies).

pub mod actions;
pub mod download;
pub mod gateway;
pub mod ops;
pub mod rules;
pub mod signing;
pub mod store;
pub mod upload;
pub mod xml;

use std::io;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;

use crate::config::Config;
use crate::server::AppState;

pub use rules::{StorageRule, StorageRules};
pub use store::{ObjectMeta, ObjectStore};

/// Name of the metadata database inside the data dir.
pub const DATABASE_FILE: &str = "storage.sqlite3";
/// Name of the blob folder inside the data dir.
pub const BLOBS_DIR: &str = "blobs";
/// Name of the optional per-env rules file inside the data dir.
pub const RULES_FILE: &str = "storage-rules.json";
/// Default largest upload, in bytes (`--max-upload-bytes`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;
/// How long an upload authorization from `getUploadMetadata` stays valid by default, in seconds.
pub const UPLOAD_GRANT_TTL_SECS: u64 = 15 * 60;
/// Temp URL lifetime when a request names no `max_age`, in seconds: wx's 10 minutes for private files.
pub const DEFAULT_TEMP_URL_MAX_AGE_SECS: u64 = 600;
/// Longest temp URL lifetime accepted, in seconds (one day, as the older wx docs state).
pub const MAX_TEMP_URL_MAX_AGE_SECS: u64 = 24 * 3600;
/// The TencentCloud app number used in emulated bucket names and fileIDs.
pub const APP_NUMBER: &str = "1250000000";
/// Most items one batch request (P1 or P3) may carry.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// The storage service: the object store, the rules and the upload limit; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<StorageInner>,
}

struct StorageInner {
    store: ObjectStore,
    rules: StorageRules,
    max_upload_bytes: u64,
    upload_grant_ttl_secs: u64,
}

impl Storage {
    /// Opens (or creates) the store in `config.data_dir` and loads the rules file plus the CLI rules.
    pub fn open(config: &Config) -> io::Result<Storage> {
        let store = ObjectStore::open(&config.data_dir)?;
        let rules = StorageRules::load(&config.data_dir.join(RULES_FILE), &config.storage_rules)?;
        Ok(Storage {
            inner: Arc::new(StorageInner {
                store,
                rules,
                max_upload_bytes: config.max_upload_bytes,
                upload_grant_ttl_secs: config.upload_grant_ttl_secs,
            }),
        })
    }

    /// The metadata and blob store.
    pub fn store(&self) -> &ObjectStore {
        &self.inner.store
    }

    /// The permission rules.
    pub fn rules(&self) -> &StorageRules {
        &self.inner.rules
    }

    /// The largest upload accepted, in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.inner.max_upload_bytes
    }

    /// How long upload authorizations stay valid, in seconds.
    pub fn upload_grant_ttl_secs(&self) -> u64 {
        self.inner.upload_grant_ttl_secs
    }
}

/// The bucket name of `env` (`{hex}-{env}-1250000000`).
pub fn bucket(env: &str) -> String {
    cloud_protocol::storage::bucket_for(env, APP_NUMBER)
}

/// The fileID of `path` on `env`.
pub fn file_id(env: &str, path: &str) -> String {
    cloud_protocol::storage::format_file_id(env, &bucket(env), path)
}

/// The base URL clients reached this request on (`http://` + its already checked `Host`).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| state.host_allowed(host))
        .map(|host| format!("http://{host}"))
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", state.port()))
}

/// The storage routes: the object URL (`/cos/{env}/{*path}`: GET/HEAD download, PUT/POST upload) and the
/// P3 `/v1/storages/{op}` gateway.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/cos/{env}/{*path}",
            get(download::get_object)
                .head(download::get_object)
                .put(upload::put_object)
                .post(upload::post_object),
        )
        .route("/v1/storages/{op}", post(gateway::gateway))
}
