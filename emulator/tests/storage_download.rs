//! Temp URLs and serving: headers (Content-Type, Content-Length, ETag), Range (206/416), HEAD,
//! If-None-Match, expiry (max_age 1) and tampering (403 XML), CORS for another loopback origin, URLs
//! that went through `encodeURI` again, and batchGetDownloadUrl's per-item answers.

mod common;
mod storage_common;

use common::*;
use serde_json::json;
use storage_common::*;

#[tokio::test]
async fn served_with_type_length_etag_and_ranges() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let body = pattern(1000, 9);

    // Typed by the upload's content type…
    let meta = upload_meta(&server, &user, "pics/a.bin", "put").await;
    assert_eq!(
        put(&server, &meta, body.clone(), "image/webp")
            .await
            .status(),
        200
    );
    let url = temp_url(&server, &user, meta["fileId"].as_str().unwrap()).await;
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/webp");
    assert_eq!(headers["content-length"], "1000");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&body)));
    assert!(headers.contains_key("last-modified"));
    assert_eq!(response.bytes().await.unwrap().to_vec(), body);

    // …else by extension.
    let file_id = upload(&server, &user, "pics/b.png", b"\x89PNG").await;
    let response = server
        .client
        .get(temp_url(&server, &user, &file_id).await)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "image/png");

    // Ranges.
    let ranged = |range: &'static str| {
        let request = server.client.get(&url).header("range", range);
        async move { request.send().await.unwrap() }
    };
    let response = ranged("bytes=10-19").await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(response.bytes().await.unwrap().to_vec(), body[10..20]);
    let response = ranged("bytes=-5").await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap().to_vec(), body[995..]);
    let response = ranged("bytes=990-").await;
    assert_eq!(response.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(response.bytes().await.unwrap().to_vec(), body[990..]);
    let response = ranged("bytes=1000-").await;
    assert_eq!(response.status(), 416);
    assert_eq!(response.headers()["content-range"], "bytes */1000");
    assert_eq!(xml_code(&response.text().await.unwrap()), "InvalidRange");
    // Several ranges: the whole body.
    let response = ranged("bytes=0-1,5-6").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), 1000);

    // HEAD: the headers, no body.
    let response = server.client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert!(response.bytes().await.unwrap().is_empty());

    // If-None-Match: 304.
    let response = server
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    server.stop().await;
}

#[tokio::test]
async fn temp_urls_expire_and_tampering_is_refused() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let file_id = upload(&server, &user, "t/x.txt", b"secret-ish").await;

    let item = temp_url_item(&server, &user, &file_id, Some(1)).await;
    assert_eq!(item["code"], "SUCCESS");
    assert_eq!(item["fileID"], file_id);
    assert_eq!(item["fileid"], file_id);
    assert_eq!(item["download_url"], item["tempFileURL"]);
    let url = item["tempFileURL"].as_str().unwrap().to_string();
    assert_eq!(fetch(&server, &url).await, (200, b"secret-ish".to_vec()));

    // Tampered: another expiry, another signature, another path, no signature.
    let (base, query) = url.split_once('?').unwrap();
    let t: u64 = query.split("t=").nth(1).unwrap().parse().unwrap();
    let later = url.replace(&format!("t={t}"), &format!("t={}", t + 3_600_000));
    let response = server.client.get(&later).send().await.unwrap();
    assert_xml_error(response, 403, "SignatureDoesNotMatch").await;
    let sign = query
        .split("sign=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = url.replace(sign, &"0".repeat(sign.len()));
    assert_xml_error(
        server.client.get(&forged).send().await.unwrap(),
        403,
        "SignatureDoesNotMatch",
    )
    .await;
    let other_path = url.replace("/t/x.txt", "/t/y.txt");
    assert_xml_error(
        server.client.get(&other_path).send().await.unwrap(),
        403,
        "SignatureDoesNotMatch",
    )
    .await;
    assert_xml_error(
        server.client.get(base).send().await.unwrap(),
        403,
        "AccessDenied",
    )
    .await;

    // Expired after max_age (1 s).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_xml_error(
        server.client.get(&url).send().await.unwrap(),
        403,
        "AccessDenied",
    )
    .await;

    // A deleted object's URL: 404 NoSuchKey.
    let fresh = temp_url(&server, &user, &file_id).await;
    assert_eq!(
        delete(&server, &user, &[&file_id]).await[0]["code"],
        "SUCCESS"
    );
    assert_xml_error(
        server.client.get(&fresh).send().await.unwrap(),
        404,
        "NoSuchKey",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn batch_items_succeed_or_fail_one_by_one() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let file_id = upload(&server, &user, "a/b.png", b"png").await;
    let answer = action(
        &server,
        &user,
        "storage.batchGetDownloadUrl",
        json!({"file_list": [
            {"fileid": file_id, "max_age": 600},
            file_id,
            {"fileid": "cloud://envx.656e-envx-1250000000/missing.png"},
            {"fileid": "not-a-file-id//x"},
            {"fileid": file_id, "max_age": -5},
            {"fileid": "cloud://otherenv.6f74-otherenv-1250000000/a/b.png"},
        ]}),
    )
    .await;
    let list = answer["data"]["download_list"].as_array().unwrap();
    let codes: Vec<&str> = list
        .iter()
        .map(|item| item["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "SUCCESS",
            "SUCCESS",
            "STORAGE_FILE_NONEXIST",
            "INVALID_PARAM",
            "INVALID_PARAM",
            "STORAGE_FILE_NONEXIST"
        ]
    );
    assert!(list[2]["message"].as_str().unwrap().contains("missing.png"));
    assert_eq!(
        list[2]["fileID"],
        "cloud://envx.656e-envx-1250000000/missing.png"
    );
    // Not an array: the whole call fails.
    let answer = action(
        &server,
        &user,
        "storage.batchGetDownloadUrl",
        json!({"file_list": "x"}),
    )
    .await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    server.stop().await;
}

#[tokio::test]
async fn another_loopback_origin_may_fetch_and_upload() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let meta = upload_meta(&server, &user, "cors/pic.png", "put").await;
    let origin = "http://127.0.0.1:5173";

    // The browser's preflight for the PUT.
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, meta["url"].as_str().unwrap())
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-cos-meta-fileid,x-cos-security-token,x-sdk-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], origin);
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for name in [
        "authorization",
        "x-cos-meta-fileid",
        "x-cos-security-token",
        "content-type",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));

    let response = server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("origin", origin)
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(b"\x89PNG\r\n".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], origin);

    // What an <img> or fetch() from that page does.
    let url = temp_url(&server, &user, meta["fileId"].as_str().unwrap()).await;
    let response = server
        .client
        .get(&url)
        .header("origin", "http://localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
    assert_eq!(response.headers()["content-type"], "image/png");

    // A foreign origin is refused.
    let response = server
        .client
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn urls_survive_encode_uri_and_odd_names() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    for (index, path) in [
        "中文/照片 1.png",
        "a?b#c&d=e.txt",
        "100%.txt",
        "sp ace/+plus.txt",
    ]
    .into_iter()
    .enumerate()
    {
        let body = pattern(100 + index, index as u8);
        let file_id = upload(&server, &user, path, &body).await;
        assert!(file_id.ends_with(path), "{file_id}");
        let url = temp_url(&server, &user, &file_id).await;
        assert_eq!(fetch(&server, &url).await, (200, body.clone()), "{path}");
        // js-sdk's downloadFile runs encodeURI over download_url: % becomes %25.
        let (base, query) = url.split_once('?').unwrap();
        let twice = format!("{}?{query}", base.replace('%', "%25"));
        assert_eq!(
            fetch(&server, &twice).await,
            (200, body),
            "{path} after encodeURI"
        );
    }
    server.stop().await;
}
