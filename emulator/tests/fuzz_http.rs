//! Fuzzing the emulator's HTTP parsers on stable Rust (the driver is engine/tests/fuzzing): the `/web`
//! envelope (mutations of real envelopes and random bytes) and the POST-form (multipart) upload parser,
//! against a server running in this process. Every input must get an answer below 500 — no panic
//! (tower's catch-panic would turn one into a 500), no dropped connection — within the hang limit, and the
//! server must still serve a normal request afterwards. `FUZZ_SECONDS` sets the budget per target.

mod common;
#[path = "../../engine/tests/fuzzing/mod.rs"]
mod fuzzing;

use common::start_default;
use fuzzing::{bytes_from, fuzz};
use serde_json::json;

const ENVELOPES: &[&str] = &[
    r#"{"action":"functions.invokeFunction","dataVersion":"2020-01-10","env":"e","function_name":"f","request_data":"{\"a\":1}","access_token":"x","seqId":"1"}"#,
    r#"{"action":"database.queryDocument","dataVersion":"2020-01-10","env":"e","collectionName":"c","query":{"a":{"$gt":1}},"queryType":"WHERE","limit":10,"offset":0,"access_token":"x"}"#,
    r#"{"action":"database.updateDocument","env":"e","collectionName":"c","query":{"_id":"1"},"data":{"$set":{"a.b":[1,{"$date":5}]}},"merge":true,"multi":false}"#,
    r#"{"action":"database.aggregate","env":"e","collectionName":"c","stages":[{"stageKey":"$match","stageValue":"{\"a\":1}"}]}"#,
    r#"{"action":"storage.getUploadMetadata","env":"e","path":"a/b.txt","method":"post"}"#,
    r#"{"action":"storage.batchGetDownloadUrl","env":"e","file_list":[{"fileid":"cloud://e.b/a.txt","max_age":60}]}"#,
    r#"{"action":"auth.signInAnonymously","env":"e"}"#,
];

#[test]
fn fuzz_web_envelope() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start_default());
    let client = reqwest::Client::new();
    let url = format!("{}/web?env=e", server.url);
    let seeds = ENVELOPES.iter().map(|s| s.as_bytes().to_vec()).collect();
    fuzz("web_envelope", bytes_from(seeds), |body| {
        let response = runtime
            .block_on(
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send(),
            )
            .expect("the emulator answers");
        assert!(
            response.status().as_u16() < 500,
            "HTTP {}",
            response.status()
        );
    });
    let answer = runtime.block_on(server.web("e", json!({"action": "nope"})));
    assert_eq!(answer["code"], "INVALID_ACTION", "the server still serves");
    runtime.block_on(server.stop());
}

#[test]
fn fuzz_post_form_parser() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start_default());
    let client = reqwest::Client::new();
    let url = format!("{}/cos/e/fuzz.txt", server.url);
    let form = |fields: &[(&str, &str)], file: &str| {
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n{file}\r\n--XyZ--\r\n"
        ));
        body.into_bytes()
    };
    let seeds = vec![
        form(
            &[
                ("key", "fuzz.txt"),
                ("signature", "q-sign"),
                ("x-cos-security-token", "t"),
                ("x-cos-meta-fileid", "id"),
            ],
            "hello",
        ),
        form(&[("key", "fuzz.txt")], ""),
        form(&[], "x"),
        b"--XyZ--\r\n".to_vec(),
    ];
    fuzz("post_form", bytes_from(seeds), |body| {
        let response = runtime
            .block_on(
                client
                    .post(&url)
                    .header("content-type", "multipart/form-data; boundary=XyZ")
                    .body(body.clone())
                    .send(),
            )
            .expect("the emulator answers");
        assert!(
            response.status().as_u16() < 500,
            "HTTP {}",
            response.status()
        );
    });
    let answer = runtime.block_on(server.web("e", json!({"action": "nope"})));
    assert_eq!(answer["code"], "INVALID_ACTION", "the server still serves");
    runtime.block_on(server.stop());
}
