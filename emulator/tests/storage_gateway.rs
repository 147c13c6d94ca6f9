//! P3 gateway storage routes, as js-sdk 3.x calls them by default (protocol.md §4.6, A.4): JSON array
//! bodies, Bearer token, per-item results; then the PUT with the signed headers. Also P1 batchCopyFile.

mod common;
mod storage_common;

use common::*;
use serde_json::{json, Value};
use storage_common::*;

async fn gateway(server: &TestServer, token: Option<&str>, op: &str, body: Value) -> (u16, Value) {
    let mut request = server
        .post(&format!("/v1/storages/{op}"))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", "c2d31344-f8ff-4d3c-d4c8-7c03d241cb34")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", bearer(token));
    }
    send_json(request).await
}

#[tokio::test]
async fn upload_download_copy_and_delete_through_the_gateway() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let token = Some(user.token.as_str());

    let (status, answer) = gateway(
        &server,
        token,
        "get-objects-upload-info",
        json!([{"objectId": "dir/hello.txt", "signedHeader": {"content-length": ["11"], "content-type": ["text/plain"]}},
               {"objectId": "../bad"}]),
    )
    .await;
    assert_eq!(status, 200);
    let info = &answer[0];
    assert_eq!(info["objectId"], "dir/hello.txt");
    assert_eq!(
        info["cloudObjectId"],
        "cloud://envx.656e-envx-1250000000/dir/hello.txt"
    );
    for field in [
        "uploadUrl",
        "authorization",
        "token",
        "cloudObjectMeta",
        "downloadUrl",
        "downloadUrlEncoded",
    ] {
        assert!(
            info[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} in {info}"
        );
    }
    assert_eq!(answer[1]["code"], "INVALID_PARAM");

    // The PUT js-sdk 3.x then sends (capitalised header names, the signed content-type).
    let put = |content_type: &'static str, body: &'static str| {
        server
            .client
            .put(info["uploadUrl"].as_str().unwrap())
            .header("Authorization", info["authorization"].as_str().unwrap())
            .header("X-Cos-Security-Token", info["token"].as_str().unwrap())
            .header(
                "X-Cos-Meta-Fileid",
                info["cloudObjectMeta"].as_str().unwrap(),
            )
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_xml_error(
        put("text/html", "hello world").await.unwrap(),
        403,
        "SignatureDoesNotMatch",
    )
    .await;
    assert_xml_error(
        put("text/plain", "hello world!").await.unwrap(),
        403,
        "SignatureDoesNotMatch",
    )
    .await;
    assert_eq!(
        put("text/plain", "hello world").await.unwrap().status(),
        200
    );

    let file_id = info["cloudObjectId"].as_str().unwrap();
    let missing = "cloud://envx.656e-envx-1250000000/nope.txt";
    let (status, answer) = gateway(
        &server,
        token,
        "get-objects-download-info",
        json!([{"cloudObjectId": file_id}, {"cloudObjectId": missing}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["cloudObjectId"], file_id);
    let url = answer[0]["downloadUrl"].as_str().unwrap();
    assert_eq!(fetch(&server, url).await, (200, b"hello world".to_vec()));
    assert_eq!(answer[1]["code"], "STORAGE_FILE_NONEXIST");
    assert_eq!(answer[1]["cloudObjectId"], missing);

    let copy_id = "cloud://envx.656e-envx-1250000000/copy/hello.txt";
    let (status, answer) = gateway(
        &server,
        token,
        "copy-objects",
        json!([{"srcPath": file_id, "dstPath": copy_id, "overwrite": false, "removeOriginal": false},
               {"srcPath": file_id, "dstPath": copy_id, "overwrite": false, "removeOriginal": false},
               {"srcPath": missing, "dstPath": "copy/x.txt"}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer[0], json!({"cloudObjectId": copy_id}));
    assert_eq!(
        answer[1]["code"], "INVALID_OPERATION",
        "no overwrite: {answer}"
    );
    assert_eq!(answer[2]["code"], "STORAGE_FILE_NONEXIST");
    let url = temp_url(&server, &user, copy_id).await;
    assert_eq!(fetch(&server, &url).await, (200, b"hello world".to_vec()));

    let (status, answer) = gateway(
        &server,
        token,
        "delete-objects",
        json!([{"cloudObjectId": file_id}, {"cloudObjectId": file_id}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer[0], json!({"cloudObjectId": file_id}));
    assert_eq!(answer[1]["code"], "STORAGE_FILE_NONEXIST");
    // The copy outlives its source.
    assert_eq!(fetch(&server, &url).await, (200, b"hello world".to_vec()));
    assert_eq!(blob_count(&server), 1);
    server.stop().await;
}

#[tokio::test]
async fn gateway_request_errors_are_non_2xx_json() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let (status, answer) = gateway(&server, None, "delete-objects", json!([])).await;
    assert_eq!(status, 401);
    assert_eq!(answer["code"], "CHECK_LOGIN_FAILED");
    assert_eq!(answer["requestId"], "c2d31344-f8ff-4d3c-d4c8-7c03d241cb34");
    let (status, answer) = gateway(
        &server,
        Some(&user.token),
        "delete-objects",
        json!({"x": 1}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], "INVALID_PARAM");
    let (status, answer) = gateway(&server, Some(&user.token), "rename-objects", json!([])).await;
    assert_eq!(status, 404);
    assert_eq!(answer["code"], "RESOURCE_NOT_FOUND");
    // Gateway answers carry the same per-item permission codes as P1.
    let other = storage_common::user(&server, ENV).await;
    let file_id = upload(&server, &user, "g/own.txt", b"x").await;
    let (_, answer) = gateway(
        &server,
        Some(&other.token),
        "delete-objects",
        json!([{"cloudObjectId": file_id}]),
    )
    .await;
    assert_eq!(answer[0]["code"], "STORAGE_EXCEED_AUTHORITY");
    let (_, answer) = gateway(
        &server,
        Some(&other.token),
        "get-objects-upload-info",
        json!([{"objectId": "g/own.txt"}]),
    )
    .await;
    assert_eq!(answer[0]["code"], "STORAGE_EXCEED_AUTHORITY");
    server.stop().await;
}

#[tokio::test]
async fn p1_batch_copy_moves_with_remove_original() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let src = upload(&server, &user, "m/src.txt", b"moving").await;
    let answer = action(
        &server,
        &user,
        "storage.batchCopyFile",
        json!({"file_list": [{"src_path": src, "dst_path": "m/dst.txt", "overwrite": true, "remove_original": true}]}),
    )
    .await;
    let item = &answer["data"]["copy_list"][0];
    assert_eq!(item["code"], "SUCCESS", "{answer}");
    let dst = item["fileID"].as_str().unwrap();
    assert_eq!(dst, "cloud://envx.656e-envx-1250000000/m/dst.txt");
    assert_eq!(
        fetch(&server, &temp_url(&server, &user, dst).await).await.1,
        b"moving"
    );
    assert_eq!(
        temp_url_item(&server, &user, &src, None).await["code"],
        "STORAGE_FILE_NONEXIST"
    );
    assert_eq!(blob_count(&server), 1);
    server.stop().await;
}
