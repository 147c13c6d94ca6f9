//! Uploads: presigned PUT and the COS POST form (0 B, 1 B, 5 MB, past the /web body limit), bytes and
//! sha256 on the way back, the size limit (nothing left behind), refused and expired authorizations
//! (403 COS XML), signed headers, and getUploadMetadata's answer shape.

mod common;
mod storage_common;

use common::*;
use serde_json::json;
use storage_common::*;

#[tokio::test]
async fn put_and_post_uploads_round_trip_byte_for_byte() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    for (index, size) in [0usize, 1, 5 * 1024 * 1024].into_iter().enumerate() {
        let body = pattern(size, index as u8);

        // PUT, as js-sdk 3.x does by default.
        let path = format!("put/{size}.bin");
        let meta = upload_meta(&server, &user, &path, "put").await;
        let response = put(&server, &meta, body.clone(), "application/octet-stream").await;
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", sha256_hex(&body)));
        let (status, got) = fetch(
            &server,
            &temp_url(&server, &user, meta["fileId"].as_str().unwrap()).await,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(got.len(), size);
        assert_eq!(sha256_hex(&got), sha256_hex(&body));

        // POST form, as js-sdk 1.x does (and 3.x with method: 'post'): 201 exactly.
        let path = format!("post/{size}.bin");
        let meta = upload_meta(&server, &user, &path, "post").await;
        let response = post_form(
            &server,
            &meta,
            &path,
            body.clone(),
            "application/octet-stream",
            "signature",
            Some("201"),
        )
        .await;
        assert_eq!(response.status(), 201);
        let xml = response.text().await.unwrap();
        assert!(
            xml.contains("<PostResponse>") && xml.contains(&format!("<Key>{path}</Key>")),
            "{xml}"
        );
        let (status, got) = fetch(
            &server,
            &temp_url(&server, &user, meta["fileId"].as_str().unwrap()).await,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(sha256_hex(&got), sha256_hex(&body));
    }
    assert_eq!(blob_count(&server), 6);
    server.stop().await;
}

#[tokio::test]
async fn server_sdk_style_forms_get_204_and_the_web_body_limit_does_not_apply() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    // tcb-admin-node: `Signature` with a capital S and no success_action_status → COS's default 204.
    let meta = upload_meta(&server, &user, "admin/a.txt", "post").await;
    let response = post_form(
        &server,
        &meta,
        "admin/a.txt",
        b"admin".to_vec(),
        "text/plain",
        "Signature",
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    let url = temp_url(&server, &user, meta["fileId"].as_str().unwrap()).await;
    assert_eq!(fetch(&server, &url).await, (200, b"admin".to_vec()));

    // 9 MiB is past /web's 8 MiB body limit; uploads have their own (50 MiB by default).
    let big = pattern(9 * 1024 * 1024, 7);
    let file_id = upload(&server, &user, "big.bin", &big).await;
    let (status, got) = fetch(&server, &temp_url(&server, &user, &file_id).await).await;
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&got), sha256_hex(&big));
    server.stop().await;
}

#[tokio::test]
async fn upload_metadata_has_every_spelling_and_a_signed_bound_url() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let meta = upload_meta(&server, &user, "dir/hello world.txt", "put").await;
    assert_eq!(
        meta["url"],
        format!("{}/cos/{ENV}/dir/hello%20world.txt", server.url)
    );
    assert_eq!(
        meta["fileId"],
        "cloud://envx.656e-envx-1250000000/dir/hello world.txt"
    );
    assert_eq!(meta["fileID"], meta["fileId"]);
    assert_eq!(meta["cosFileID"], meta["cosFileId"]);
    let authorization = meta["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("q-sign-algorithm=hmac-sha256&"));
    assert!(authorization.contains("&q-signature="));
    assert!(!meta["token"].as_str().unwrap().is_empty());
    assert!(meta["download_url"].as_str().unwrap().contains("?sign="));

    // Without a token: CHECK_LOGIN_FAILED, like every other action.
    let answer = server
        .web(
            ENV,
            json!({"action": "storage.getUploadMetadata", "env": ENV, "path": "a.txt"}),
        )
        .await;
    assert_eq!(answer["code"], "CHECK_LOGIN_FAILED");
    server.stop().await;
}

#[tokio::test]
async fn over_the_limit_is_refused_and_leaves_nothing() {
    let server = start_with(|config| config.max_upload_bytes = 1024 * 1024).await;
    let user = user(&server, ENV).await;
    let limit = 1024 * 1024;

    // Exactly at the limit is fine.
    upload(&server, &user, "exact.bin", &pattern(limit, 1)).await;
    assert_eq!(blob_count(&server), 1);

    // PUT with a Content-Length one byte over.
    let meta = upload_meta(&server, &user, "over-put.bin", "put").await;
    let response = put(
        &server,
        &meta,
        pattern(limit + 1, 2),
        "application/octet-stream",
    )
    .await;
    assert_xml_error(response, 400, "EntityTooLarge").await;

    // PUT streamed without a Content-Length (chunked): caught while streaming.
    let meta_chunked = upload_meta(&server, &user, "over-chunked.bin", "put").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..17).map(|i| Ok(pattern(64 * 1024, i))).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = put(&server, &meta_chunked, body, "application/octet-stream").await;
    assert_xml_error(response, 400, "EntityTooLarge").await;

    // POST form one byte over.
    let meta_post = upload_meta(&server, &user, "over-post.bin", "post").await;
    let response = post_form(
        &server,
        &meta_post,
        "over-post.bin",
        pattern(limit + 1, 3),
        "application/octet-stream",
        "signature",
        Some("201"),
    )
    .await;
    assert_xml_error(response, 400, "EntityTooLarge").await;

    // An oversized overwrite leaves the old object whole.
    let meta_overwrite = upload_meta(&server, &user, "exact.bin", "put").await;
    let response = put(
        &server,
        &meta_overwrite,
        pattern(limit + 10, 4),
        "application/octet-stream",
    )
    .await;
    assert_xml_error(response, 400, "EntityTooLarge").await;

    assert_eq!(blob_count(&server), 1, "no partial blob is left behind");
    for meta in [&meta, &meta_chunked, &meta_post] {
        let item = temp_url_item(&server, &user, meta["fileId"].as_str().unwrap(), None).await;
        assert_eq!(item["code"], "STORAGE_FILE_NONEXIST", "{item}");
    }
    let url = temp_url(&server, &user, meta_overwrite["fileId"].as_str().unwrap()).await;
    let (status, got) = fetch(&server, &url).await;
    assert_eq!(status, 200);
    assert_eq!(got, pattern(limit, 1));
    server.stop().await;
}

#[tokio::test]
async fn bad_missing_and_expired_authorizations_get_403_xml() {
    let server = start_with(|config| config.upload_grant_ttl_secs = 1).await;
    let user = user(&server, ENV).await;
    let meta = upload_meta(&server, &user, "a.txt", "put").await;
    let url = meta["url"].as_str().unwrap();

    // No authorization at all.
    let response = server.client.put(url).body("x").send().await.unwrap();
    assert_xml_error(response, 403, "AccessDenied").await;

    // A tampered signature.
    let mut tampered = meta.clone();
    let auth = meta["authorization"].as_str().unwrap();
    let flipped = if auth.ends_with('0') { "1" } else { "0" };
    tampered["authorization"] = json!(format!("{}{flipped}", &auth[..auth.len() - 1]));
    assert_xml_error(
        put(&server, &tampered, "x", "text/plain").await,
        403,
        "SignatureDoesNotMatch",
    )
    .await;

    // Another path's authorization.
    let other = upload_meta(&server, &user, "b.txt", "put").await;
    let mut wrong_path = other.clone();
    wrong_path["url"] = meta["url"].clone();
    assert_xml_error(
        put(&server, &wrong_path, "x", "text/plain").await,
        403,
        "SignatureDoesNotMatch",
    )
    .await;

    // A wrong security token.
    let mut wrong_token = meta.clone();
    wrong_token["token"] = json!("0000");
    assert_xml_error(
        put(&server, &wrong_token, "x", "text/plain").await,
        403,
        "AccessDenied",
    )
    .await;

    // A POST form with a bad signature.
    let mut bad_form = upload_meta(&server, &user, "c.txt", "post").await;
    bad_form["authorization"] = json!("q-sign-algorithm=sha1&q-ak=AK&q-signature=xx");
    let response = post_form(
        &server,
        &bad_form,
        "c.txt",
        b"x".to_vec(),
        "text/plain",
        "signature",
        Some("201"),
    )
    .await;
    assert_xml_error(response, 403, "AccessDenied").await;

    // Expired (the grant lives 1 s here).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_xml_error(
        put(&server, &meta, "x", "text/plain").await,
        403,
        "AccessDenied",
    )
    .await;
    assert_eq!(blob_count(&server), 0);
    server.stop().await;
}

#[tokio::test]
async fn signed_headers_bind_the_put() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let answer = action(
        &server,
        &user,
        "storage.getUploadMetadata",
        json!({"path": "signed.txt", "method": "put", "headers": {"content-type": "text/plain", "x-custom": "1"}}),
    )
    .await;
    let meta = answer["data"].clone();
    assert!(meta["authorization"]
        .as_str()
        .unwrap()
        .contains("q-header-list=content-type;x-custom&"));

    // Missing the signed custom header → mismatch.
    assert_xml_error(
        put(&server, &meta, "hello", "text/plain").await,
        403,
        "SignatureDoesNotMatch",
    )
    .await;
    // A different content type → mismatch.
    let response = server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("content-type", "image/png")
        .header("x-custom", "1")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_xml_error(response, 403, "SignatureDoesNotMatch").await;
    // The signed values (a charset parameter does not matter).
    let response = server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("x-cos-meta-fileid", meta["cosFileId"].as_str().unwrap())
        .header("content-type", "text/plain;charset=UTF-8")
        .header("x-custom", "1")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_form_key_must_match_the_url() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let meta = upload_meta(&server, &user, "mine.txt", "post").await;
    let response = post_form(
        &server,
        &meta,
        "elsewhere.txt",
        b"x".to_vec(),
        "text/plain",
        "signature",
        Some("201"),
    )
    .await;
    assert_xml_error(response, 400, "InvalidArgument").await;

    // A form without a file.
    let form = reqwest::multipart::Form::new()
        .text("key", "mine.txt")
        .text(
            "signature",
            meta["authorization"].as_str().unwrap().to_string(),
        );
    let response = server
        .client
        .post(meta["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_xml_error(response, 400, "InvalidArgument").await;
    // Not a form at all.
    let response = server
        .client
        .post(meta["url"].as_str().unwrap())
        .body("raw")
        .send()
        .await
        .unwrap();
    assert_xml_error(response, 400, "MalformedPOSTRequest").await;
    assert_eq!(blob_count(&server), 0);
    server.stop().await;
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let meta = upload_meta(&server, &user, "cut/off.bin", "put").await;
    // Three chunks, then the client fails: the request is aborted mid-body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(pattern(256 * 1024, 1)),
        Ok(pattern(256 * 1024, 2)),
        Ok(pattern(256 * 1024, 3)),
        Err(std::io::Error::other("client gave up")),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let sent = server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("content-length", (4 * 256 * 1024).to_string())
        .body(body)
        .send()
        .await;
    assert!(sent.is_err() || !sent.unwrap().status().is_success());
    // The server notices the broken body and removes the partial blob.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while blob_count(&server) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(blob_count(&server), 0);
    let item = temp_url_item(&server, &user, meta["fileId"].as_str().unwrap(), None).await;
    assert_eq!(item["code"], "STORAGE_FILE_NONEXIST");
    server.stop().await;
}
