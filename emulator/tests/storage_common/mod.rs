//! Storage test helpers on top of `common`: signed-in users, upload metadata, PUT and POST-form uploads,
//! temp URLs, deletes, and a look at what the data dir holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::common::{Api, TestServer};

pub const ENV: &str = "envx";

/// A signed-in user of `env`.
pub struct User {
    pub env: String,
    pub token: String,
}

pub async fn user(server: &Api, env: &str) -> User {
    User {
        env: env.to_string(),
        token: server.access_token(env).await,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes that differ from position to position (so a shifted or truncated read is caught).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect()
}

/// Calls a P1 action as `user`; the whole answer.
pub async fn action(server: &Api, user: &User, action: &str, fields: Value) -> Value {
    let mut body = json!({
        "action": action, "dataVersion": "2020-01-10", "env": user.env,
        "access_token": user.token, "seqId": "5eed",
    });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    server.web(&user.env, body).await
}

/// `storage.getUploadMetadata`; the `data` object (panics on an error answer).
pub async fn upload_meta(server: &Api, user: &User, path: &str, method: &str) -> Value {
    let answer = action(
        server,
        user,
        "storage.getUploadMetadata",
        json!({ "path": path, "method": method }),
    )
    .await;
    assert!(
        answer.get("code").is_none(),
        "getUploadMetadata failed: {answer}"
    );
    answer["data"].clone()
}

/// PUTs `body` to the metadata's URL the way js-sdk 3.x does.
pub async fn put(
    server: &Api,
    meta: &Value,
    body: impl Into<reqwest::Body>,
    content_type: &str,
) -> reqwest::Response {
    server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-meta-fileid", meta["cosFileId"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("x-sdk-version", "@cloudbase/js-sdk/3.7.0")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// POSTs the COS form in the exact field order of protocol.md §4.2 (duplicate `key`, `seqId`, `file` last).
pub async fn post_form(
    server: &Api,
    meta: &Value,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
    signature_field: &str,
    success_status: Option<&str>,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new()
        .text("key", path.to_string())
        .text(
            signature_field.to_string(),
            meta["authorization"].as_str().unwrap().to_string(),
        )
        .text(
            "x-cos-meta-fileid",
            meta["cosFileId"].as_str().unwrap().to_string(),
        );
    if let Some(status) = success_status {
        form = form.text("success_action_status", status.to_string());
    }
    form = form
        .text(
            "x-cos-security-token",
            meta["token"].as_str().unwrap().to_string(),
        )
        .text("seqId", "8637826cc7303")
        .text("key", path.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(body)
                .file_name("blob")
                .mime_str(content_type)
                .unwrap(),
        );
    server
        .client
        .post(meta["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// `storage.batchGetDownloadUrl` for one fileID; its item.
pub async fn temp_url_item(
    server: &Api,
    user: &User,
    file_id: &str,
    max_age: Option<u64>,
) -> Value {
    let item = match max_age {
        Some(max_age) => json!({ "fileid": file_id, "max_age": max_age }),
        None => json!({ "fileid": file_id }),
    };
    let answer = action(
        server,
        user,
        "storage.batchGetDownloadUrl",
        json!({ "file_list": [item] }),
    )
    .await;
    answer["data"]["download_list"][0].clone()
}

/// A temp URL for `file_id` (panics unless the item succeeded).
pub async fn temp_url(server: &Api, user: &User, file_id: &str) -> String {
    let item = temp_url_item(server, user, file_id, None).await;
    assert_eq!(item["code"], "SUCCESS", "{item}");
    item["tempFileURL"].as_str().unwrap().to_string()
}

/// GETs `url`; status, body.
pub async fn fetch(server: &Api, url: &str) -> (u16, Vec<u8>) {
    let response = server.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// `storage.batchDeleteFile`; the `delete_list`.
pub async fn delete(server: &Api, user: &User, file_ids: &[&str]) -> Vec<Value> {
    let answer = action(
        server,
        user,
        "storage.batchDeleteFile",
        json!({ "fileid_list": file_ids }),
    )
    .await;
    answer["data"]["delete_list"]
        .as_array()
        .unwrap_or_else(|| panic!("no delete_list in {answer}"))
        .clone()
}

/// Uploads `body` at `path` with PUT; the fileID.
pub async fn upload(server: &Api, user: &User, path: &str, body: &[u8]) -> String {
    let meta = upload_meta(server, user, path, "put").await;
    let response = put(server, &meta, body.to_vec(), "application/octet-stream").await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    meta["fileId"].as_str().unwrap().to_string()
}

/// The `<Code>` of a COS XML error body.
pub fn xml_code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("")
}

/// Asserts a COS XML error response with `status` and `code`.
pub async fn assert_xml_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert!(response
        .headers()
        .get("content-type")
        .is_some_and(|ct| ct.to_str().unwrap().contains("xml")));
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(
        body.contains("<Error>") && body.contains("<Message>"),
        "{body}"
    );
    assert_eq!(xml_code(&body), code, "{body}");
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// How many blobs the data dir holds.
pub fn blob_count(server: &TestServer) -> usize {
    std::fs::read_dir(server.dir.path().join("data/blobs"))
        .unwrap()
        .count()
}
