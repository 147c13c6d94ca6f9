//! Uploads to the object URL `/cos/{env}/{path}`: presigned PUT (→ 200) and the COS POST form
//! (→ 201 with `success_action_status=201`, else 204). Bodies stream to a fresh blob while being hashed;
//! nothing is held in memory and nothing is left behind by a refused, oversized or broken upload.
//! Failures are COS XML errors (403 `AccessDenied` / `SignatureDoesNotMatch`, 400 `EntityTooLarge`, …).

use std::io;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::ops::{self, blocking, key_candidates, split_object_path};
use super::signing::{verify_upload, SignatureError, UploadCredentials, UploadGrant};
use super::store::{new_blob_id, ObjectMeta, WriteOutcome};
use super::{xml, Storage};
use crate::auth::tokens::now_ms;
use crate::server::AppState;

/// How much of a refused body is still read (and dropped) so the client gets to read the answer.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// Largest non-file form field.
const MAX_FORM_FIELD_BYTES: usize = 64 * 1024;
/// Write buffer in front of the blob file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// Longest content type stored.
const MAX_CONTENT_TYPE_LEN: usize = 255;

/// The object an object URL names.
pub(super) struct Target {
    pub(super) env: String,
    /// The keys the encoded path may stand for (see [`key_candidates`]).
    pub(super) keys: Vec<String>,
    /// The request path, for XML `<Resource>`.
    pub(super) resource: String,
}

/// Parses `/cos/{env}/{path}`; a COS XML error for a bad URL or env (boxed: responses are large).
pub(super) fn target(state: &AppState, uri: &Uri) -> Result<Target, Box<Response>> {
    let resource = uri.path().to_string();
    let Some((env, encoded)) = split_object_path(uri.path()) else {
        return Err(Box::new(xml::bad_request(
            "InvalidURI",
            "expected /cos/{env}/{path}",
            &resource,
        )));
    };
    let env = match state.check_env(Some(env)) {
        Ok(env) => env,
        Err(err) => {
            return Err(Box::new(xml::error(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                &err.message,
                &resource,
            )))
        }
    };
    let keys = key_candidates(encoded);
    if keys.is_empty() {
        return Err(Box::new(xml::bad_request(
            "InvalidURI",
            "the object path is not valid percent-encoded UTF-8",
            &resource,
        )));
    }
    Ok(Target {
        env,
        keys,
        resource,
    })
}

/// Verifies the credentials against each reading of the path; the key and grant of the first that
/// verifies, else the first reading's error.
fn verify(
    state: &AppState,
    target: &Target,
    credentials: &UploadCredentials<'_>,
    header: impl Fn(&str) -> Option<String>,
) -> Result<(String, UploadGrant), SignatureError> {
    let mut first_error = None;
    for key in &target.keys {
        match verify_upload(state.signer(), &target.env, key, credentials, &header) {
            Ok(grant) => return Ok((key.clone(), grant)),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| SignatureError::AccessDenied("no key".into())))
}

/// The content type to store: the upload's own unless missing or generic, else by extension.
pub fn effective_content_type(given: Option<&str>, path: &str) -> String {
    let given = given
        .map(str::trim)
        .filter(|ct| !ct.is_empty() && ct.len() <= MAX_CONTENT_TYPE_LEN)
        .filter(|ct| HeaderValue::from_str(ct).is_ok())
        .filter(|ct| {
            !ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/octet-stream")
        });
    match given {
        Some(ct) => ct.to_string(),
        None => mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string(),
    }
}

/// A blob being written: hashed and counted as it goes; removed on drop unless finished.
struct BlobWriter {
    blob_id: String,
    path: PathBuf,
    blobs_dir: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    limit: u64,
    finished: bool,
}

/// Why writing a body stopped.
enum WriteError {
    /// The body is larger than the limit.
    TooLarge,
    /// Reading the body failed (client went away, malformed multipart).
    Body(String),
    /// Writing the blob failed.
    Disk(io::Error),
}

impl BlobWriter {
    async fn create(storage: &Storage) -> io::Result<BlobWriter> {
        let blob_id = new_blob_id();
        let path = storage.store().blob_path(&blob_id);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(BlobWriter {
            blob_id,
            path,
            blobs_dir: storage.store().blobs_dir().to_path_buf(),
            file: tokio::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            hasher: Sha256::new(),
            size: 0,
            limit: storage.max_upload_bytes(),
            finished: false,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        self.size = self.size.saturating_add(chunk.len() as u64);
        if self.size > self.limit {
            return Err(WriteError::TooLarge);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await.map_err(WriteError::Disk)
    }

    /// Flushes and fsyncs the blob (and the folder entry); its id, size and sha256.
    async fn finish(mut self) -> io::Result<(String, u64, String)> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        let dir = self.blobs_dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(io::Error::other)??;
        self.finished = true;
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok((self.blob_id.clone(), self.size, sha256))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads and drops what is left of a refused body (up to [`DRAIN_LIMIT`]) so the client reads our answer.
async fn drain<S, E>(stream: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// Like [`drain`] for a form whose reading was interrupted.
async fn drain_multipart(multipart: &mut multer::Multipart<'_>) {
    let mut seen = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            seen = seen.saturating_add(chunk.len() as u64);
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}

fn too_large(storage: &Storage, resource: &str) -> Response {
    xml::bad_request(
        "EntityTooLarge",
        &format!(
            "Your proposed upload exceeds the maximum allowed object size ({} bytes).",
            storage.max_upload_bytes()
        ),
        resource,
    )
}

/// Checks the rule before any byte is stored (it is checked again when committing).
async fn check_rule(
    state: &AppState,
    env: &str,
    key: &str,
    openid: &str,
    resource: &str,
) -> Result<(), Response> {
    let storage = state.storage().clone();
    let rule = storage.rules().rule_for(env);
    let (env_owned, key_owned) = (env.to_string(), key.to_string());
    let existing = blocking(move || storage.store().get(&env_owned, &key_owned))
        .await
        .map_err(|err| xml::internal(&err.message, resource))?;
    if rule.may_write(existing.as_ref().map(|m| m.owner_openid.as_str()), openid) {
        Ok(())
    } else {
        Err(xml::access_denied(
            &format!("the storage rule ({rule}) does not let you write {key}"),
            resource,
        ))
    }
}

/// What a finished blob becomes.
struct Finished {
    env: String,
    key: String,
    openid: String,
    content_type: String,
    blob: (String, u64, String),
}

/// Commits a finished blob under the rule; the stored row or an error response.
async fn commit(
    state: &AppState,
    finished: Finished,
    resource: &str,
) -> Result<ObjectMeta, Response> {
    let storage = state.storage().clone();
    let rule = storage.rules().rule_for(&finished.env);
    let (blob_id, size, sha256) = finished.blob;
    let now = now_ms();
    let meta = ObjectMeta {
        env: finished.env,
        path: finished.key.clone(),
        blob_id,
        size,
        content_type: finished.content_type,
        etag: format!("\"{sha256}\""),
        sha256,
        owner_openid: finished.openid.clone(),
        created_ms: now,
        updated_ms: now,
    };
    let openid = finished.openid;
    let outcome = blocking(move || {
        storage.store().commit(meta, |existing| {
            rule.may_write(existing.map(|m| m.owner_openid.as_str()), &openid)
        })
    })
    .await
    .map_err(|err| xml::internal(&err.message, resource))?;
    match outcome {
        WriteOutcome::Committed { meta, .. } => Ok(meta),
        WriteOutcome::Denied(_) => Err(xml::access_denied(
            &format!("the storage rule does not let you write {}", finished.key),
            resource,
        )),
    }
}

fn with_etag(mut response: Response, meta: &ObjectMeta) -> Response {
    if let Ok(value) = HeaderValue::from_str(&meta.etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// `PUT /cos/{env}/{path}`: headers `authorization`, `x-cos-security-token`, `x-cos-meta-fileid`,
/// `content-type`; body = the object.
pub async fn put_object(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut stream = body.into_data_stream();
    let target = match target(&state, &uri) {
        Ok(target) => target,
        Err(response) => {
            drain(&mut stream).await;
            return *response;
        }
    };
    let resource = target.resource.clone();
    let authorization = header_text(&headers, "authorization");
    let token = header_text(&headers, "x-cos-security-token");
    let cos_file_id = header_text(&headers, "x-cos-meta-fileid");
    let credentials = UploadCredentials {
        authorization: authorization.as_deref(),
        token: token.as_deref(),
        cos_file_id: cos_file_id.as_deref(),
    };
    let (key, grant) = match verify(&state, &target, &credentials, |name| {
        header_text(&headers, name)
    }) {
        Ok(verified) => verified,
        Err(err) => {
            drain(&mut stream).await;
            return xml::signature_error(&err, &resource);
        }
    };
    if let Err(err) = ops::check_path(&key) {
        drain(&mut stream).await;
        return xml::bad_request("InvalidArgument", &err.message, &resource);
    }
    if let Err(response) = check_rule(&state, &target.env, &key, &grant.openid, &resource).await {
        drain(&mut stream).await;
        return response;
    }
    let storage = state.storage().clone();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > storage.max_upload_bytes()) {
        if declared.is_some_and(|length| length <= storage.max_upload_bytes() + DRAIN_LIMIT) {
            drain(&mut stream).await;
        }
        return too_large(&storage, &resource);
    }
    let mut writer = match BlobWriter::create(&storage).await {
        Ok(writer) => writer,
        Err(err) => return xml::internal(&format!("cannot create a blob: {err}"), &resource),
    };
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        let result = match chunk {
            Ok(chunk) => writer.write(&chunk).await,
            Err(err) => Err(WriteError::Body(err.to_string())),
        };
        if let Err(err) = result {
            failure = Some(err);
            break;
        }
    }
    if let Some(err) = failure {
        drop(writer);
        return match err {
            WriteError::TooLarge => {
                drain(&mut stream).await;
                too_large(&storage, &resource)
            }
            WriteError::Body(message) => xml::bad_request("IncompleteBody", &message, &resource),
            WriteError::Disk(err) => xml::internal(&format!("writing the blob: {err}"), &resource),
        };
    }
    let blob = match writer.finish().await {
        Ok(blob) => blob,
        Err(err) => return xml::internal(&format!("syncing the blob: {err}"), &resource),
    };
    let content_type =
        effective_content_type(header_text(&headers, "content-type").as_deref(), &key);
    let finished = Finished {
        env: target.env.clone(),
        key,
        openid: grant.openid,
        content_type,
        blob,
    };
    match commit(&state, finished, &resource).await {
        Ok(meta) => with_etag(xml::xml_response(StatusCode::OK, String::new()), &meta),
        Err(response) => response,
    }
}

/// The non-file fields of a POST form, as far as we use them.
#[derive(Default)]
struct FormFields {
    keys: Vec<String>,
    signature: Option<String>,
    token: Option<String>,
    cos_file_id: Option<String>,
    success_action_status: Option<String>,
    content_type: Option<String>,
}

impl FormFields {
    fn set(&mut self, name: &str, value: String) {
        match name {
            "key" => self.keys.push(value),
            "signature" | "Signature" => self.signature = Some(value),
            "x-cos-security-token" => self.token = Some(value),
            "x-cos-meta-fileid" => self.cos_file_id = Some(value),
            "success_action_status" => self.success_action_status = Some(value),
            _ if name.eq_ignore_ascii_case("content-type") => self.content_type = Some(value),
            // seqId, policy, acl, …: not ours to check.
            _ => {}
        }
    }
}

async fn read_text_field(field: &mut multer::Field<'_>) -> Result<String, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|err| err.to_string())? {
        if bytes.len() + chunk.len() > MAX_FORM_FIELD_BYTES {
            return Err(format!(
                "form field {:?} is longer than {MAX_FORM_FIELD_BYTES} bytes",
                field.name().unwrap_or("")
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8".to_string())
}

/// `POST /cos/{env}/{path}`: a multipart form, fields in the order of protocol.md §4.2 (`key` possibly
/// twice, `signature`/`Signature`, `x-cos-meta-fileid`, `success_action_status`, `x-cos-security-token`,
/// `seqId`), `file` last.
pub async fn post_object(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let resource = uri.path().to_string();
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok());
    let Some(boundary) = boundary else {
        let mut stream = body.into_data_stream();
        drain(&mut stream).await;
        return xml::bad_request(
            "MalformedPOSTRequest",
            "the body must be multipart/form-data",
            &resource,
        );
    };
    let target = match target(&state, &uri) {
        Ok(target) => target,
        Err(response) => {
            let mut stream = body.into_data_stream();
            drain(&mut stream).await;
            return *response;
        }
    };
    let storage = state.storage().clone();
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut fields = FormFields::default();
    let mut stored: Option<ObjectMeta> = None;
    let outcome: Result<(), Response> = async {
        loop {
            let mut field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(err) => {
                    return Err(xml::bad_request(
                        "MalformedPOSTRequest",
                        &err.to_string(),
                        &resource,
                    ))
                }
            };
            let name = field.name().unwrap_or("").to_string();
            if stored.is_some() {
                // Fields after `file` are ignored, as COS does; read them to reach the end.
                while let Ok(Some(_)) = field.chunk().await {}
                continue;
            }
            if name != "file" {
                let value = read_text_field(&mut field).await.map_err(|message| {
                    xml::bad_request("MalformedPOSTRequest", &message, &resource)
                })?;
                fields.set(&name, value);
                continue;
            }
            let credentials = UploadCredentials {
                authorization: fields.signature.as_deref(),
                token: fields.token.as_deref(),
                cos_file_id: fields.cos_file_id.as_deref(),
            };
            let (key, grant) = verify(&state, &target, &credentials, |_| None)
                .map_err(|err| xml::signature_error(&err, &resource))?;
            if let Some(other) = fields.keys.iter().find(|form_key| **form_key != key) {
                return Err(xml::bad_request(
                    "InvalidArgument",
                    &format!("form key {other:?} does not match the upload URL's {key:?}"),
                    &resource,
                ));
            }
            ops::check_path(&key)
                .map_err(|err| xml::bad_request("InvalidArgument", &err.message, &resource))?;
            check_rule(&state, &target.env, &key, &grant.openid, &resource).await?;
            let part_type = field.content_type().map(|mime| mime.to_string());
            let mut writer = BlobWriter::create(&storage)
                .await
                .map_err(|err| xml::internal(&format!("cannot create a blob: {err}"), &resource))?;
            loop {
                let chunk = match field.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(err) => {
                        return Err(xml::bad_request(
                            "IncompleteBody",
                            &err.to_string(),
                            &resource,
                        ))
                    }
                };
                match writer.write(&chunk).await {
                    Ok(()) => {}
                    Err(WriteError::TooLarge) => return Err(too_large(&storage, &resource)),
                    Err(WriteError::Body(message)) => {
                        return Err(xml::bad_request("IncompleteBody", &message, &resource))
                    }
                    Err(WriteError::Disk(err)) => {
                        return Err(xml::internal(
                            &format!("writing the blob: {err}"),
                            &resource,
                        ))
                    }
                }
            }
            let blob = writer
                .finish()
                .await
                .map_err(|err| xml::internal(&format!("syncing the blob: {err}"), &resource))?;
            let given = fields.content_type.clone().or(part_type);
            let finished = Finished {
                env: target.env.clone(),
                content_type: effective_content_type(given.as_deref(), &key),
                key,
                openid: grant.openid,
                blob,
            };
            stored = Some(commit(&state, finished, &resource).await?);
        }
        Ok(())
    }
    .await;
    if let Err(response) = outcome {
        drain_multipart(&mut multipart).await;
        return response;
    }
    let Some(meta) = stored else {
        return xml::bad_request("InvalidArgument", "the form has no file field", &resource);
    };
    let response = match fields.success_action_status.as_deref().map(str::trim) {
        Some("201") => {
            let location = format!("{}{}", super::base_url(&state, &headers), uri.path());
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                xml::escape(&location),
                xml::escape(&super::bucket(&meta.env)),
                xml::escape(&meta.path),
                xml::escape(&meta.etag),
            );
            xml::xml_response(StatusCode::CREATED, body)
        }
        Some("200") => xml::xml_response(StatusCode::OK, String::new()),
        _ => xml::xml_response(StatusCode::NO_CONTENT, String::new()),
    };
    with_etag(response, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_upload_else_the_extension() {
        assert_eq!(
            effective_content_type(Some("image/webp"), "a.png"),
            "image/webp"
        );
        assert_eq!(effective_content_type(None, "a.png"), "image/png");
        assert_eq!(
            effective_content_type(Some("application/octet-stream"), "a.txt"),
            "text/plain"
        );
        assert_eq!(
            effective_content_type(Some(""), "noext"),
            "application/octet-stream"
        );
        assert_eq!(
            effective_content_type(Some("bad\nvalue"), "a.json"),
            "application/json"
        );
    }
}
