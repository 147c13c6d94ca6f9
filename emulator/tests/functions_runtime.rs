//! The functions runtime against real Node.js workers and the fixtures in tests/fixtures/functions/.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloud_emulator::functions::{FunctionsRuntime, InvokeContext, InvokeError, RuntimeOptions};
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions")
}

fn ctx(request_id: &str) -> InvokeContext {
    InvokeContext {
        request_id: request_id.to_owned(),
        env: "test-env".to_owned(),
        openid: "openid-123".to_owned(),
        appid: "wx-app-1".to_owned(),
    }
}

async fn call(runtime: &FunctionsRuntime, name: &str, data: Value) -> Result<Value, InvokeError> {
    let text = runtime.invoke(name, data, &ctx("req-1")).await?;
    Ok(serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON: {text:?}: {err}")))
}

#[tokio::test]
async fn echo_returns_event_with_user_info_and_context() {
    let runtime = FunctionsRuntime::new(fixtures());
    let text = runtime
        .invoke(
            "echo",
            json!({"a": 1, "nested": {"b": [1, 2]}}),
            &ctx("req-echo"),
        )
        .await
        .unwrap();
    let result: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        result["event"],
        json!({"a": 1, "nested": {"b": [1, 2]}, "userInfo": {"appId": "wx-app-1", "openId": "openid-123"}})
    );
    assert_eq!(
        result["context"],
        json!({
            "request_id": "req-echo",
            "function_name": "echo",
            "namespace": "test-env",
            "function_version": "$LATEST",
            "memory_limit_in_mb": 256,
            "time_limit_in_ms": 3000,
        })
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn non_object_data_gives_an_empty_event_and_user_info_cannot_be_forged() {
    let runtime = FunctionsRuntime::new(fixtures());
    let result = call(&runtime, "echo", json!([1, 2, 3])).await.unwrap();
    assert_eq!(
        result["event"],
        json!({"userInfo": {"appId": "wx-app-1", "openId": "openid-123"}})
    );
    let result = call(&runtime, "echo", json!({"userInfo": {"openId": "forged"}}))
        .await
        .unwrap();
    assert_eq!(result["event"]["userInfo"]["openId"], "openid-123");
    runtime.shutdown().await;
}

#[tokio::test]
async fn sync_main_package_json_main_and_es_modules() {
    let runtime = FunctionsRuntime::new(fixtures());
    assert_eq!(
        call(&runtime, "sync", json!({"n": 21})).await.unwrap(),
        json!({"sync": true, "doubled": 42})
    );
    assert_eq!(
        call(&runtime, "pkgmain", json!({"who": "taro"}))
            .await
            .unwrap(),
        json!({"from": "lib/entry.js", "greeting": "hello taro"})
    );
    assert_eq!(
        call(&runtime, "esm", json!({"n": 7})).await.unwrap(),
        json!({"esm": true, "n": 7})
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn throws_and_rejects_report_message_and_stack() {
    let runtime = FunctionsRuntime::new(fixtures());
    let err = call(&runtime, "throws", json!({})).await.unwrap_err();
    let InvokeError::Threw(message) = &err else {
        panic!("expected Threw, got {err:?}");
    };
    println!("thrown: {message}");
    assert!(message.starts_with("boom from throws\n"), "{message}");
    assert!(
        message.contains("throws/index.js:2"),
        "stack missing: {message}"
    );
    assert!(
        !message.contains("[eval]"),
        "worker frames leaked: {message}"
    );
    assert_eq!(err.code(), "FUNCTIONS_EXECUTE_FAIL");

    let err = call(&runtime, "rejects", json!({})).await.unwrap_err();
    let InvokeError::Threw(message) = &err else {
        panic!("expected Threw, got {err:?}");
    };
    assert!(
        message.starts_with("rejected on purpose\nTypeError: rejected on purpose"),
        "{message}"
    );
    assert!(message.contains("rejects/index.js:1"), "{message}");

    // A worker whose function threw stays warm and keeps working.
    let err = call(&runtime, "badmain", json!({})).await.unwrap_err();
    assert!(
        matches!(&err, InvokeError::Threw(m) if m.contains("exports.main is not a function")),
        "{err:?}"
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn timeout_kills_the_worker_and_the_next_call_gets_a_fresh_one() {
    let runtime = FunctionsRuntime::new(fixtures());
    let first = call(&runtime, "slow", json!({"ms": 10})).await.unwrap();
    assert_eq!(first["limit"], 1000);

    let started = Instant::now();
    let err = call(&runtime, "slow", json!({"ms": 5000}))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, InvokeError::Timeout(secs) if secs == 1.0),
        "{err:?}"
    );
    assert_eq!(err.message(), "Task timed out after 1.00 seconds");
    assert_eq!(err.code(), "FUNCTIONS_EXECUTE_FAIL");
    assert!(elapsed < Duration::from_secs(4), "timeout took {elapsed:?}");

    let next = call(&runtime, "slow", json!({"ms": 10})).await.unwrap();
    assert_eq!(next["slept"], 10);
    assert_ne!(
        next["pid"], first["pid"],
        "the timed-out worker must have been replaced"
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn process_exit_is_a_crash_and_the_worker_is_replaced() {
    let runtime = FunctionsRuntime::new(fixtures());
    let before = call(&runtime, "crash", json!({})).await.unwrap();

    let err = call(&runtime, "crash", json!({"exit": true}))
        .await
        .unwrap_err();
    let InvokeError::Crashed(message) = &err else {
        panic!("expected Crashed, got {err:?}");
    };
    println!("crashed: {message}");
    assert!(message.contains("exited with code 3"), "{message}");
    assert_eq!(err.code(), "FUNCTIONS_EXECUTE_FAIL");

    let after = call(&runtime, "crash", json!({})).await.unwrap();
    assert_eq!(after["alive"], true);
    assert_ne!(after["pid"], before["pid"]);
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_uncaught_error_in_a_timer_is_a_crash_with_its_message() {
    let runtime = FunctionsRuntime::new(fixtures());
    let err = call(&runtime, "crash", json!({"timer": true}))
        .await
        .unwrap_err();
    let InvokeError::Crashed(message) = &err else {
        panic!("expected Crashed, got {err:?}");
    };
    assert!(message.contains("late failure in a timer"), "{message}");
    assert_eq!(
        call(&runtime, "crash", json!({})).await.unwrap()["alive"],
        true
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn non_json_results_are_reported_clearly() {
    let runtime = FunctionsRuntime::new(fixtures());
    for (kind, needle) in [
        ("bigint", "BigInt"),
        ("circular", "circular"),
        ("function", "function"),
    ] {
        let err = call(&runtime, "nonjson", json!({"kind": kind}))
            .await
            .unwrap_err();
        match &err {
            InvokeError::NonJson(message) => {
                println!("non-JSON: {message}");
                assert!(message.contains("cannot be converted to JSON"), "{message}");
                assert!(message.contains(needle), "{kind}: {message}");
            }
            other => panic!("{kind}: expected NonJson, got {other:?}"),
        }
    }
    assert_eq!(
        call(&runtime, "nonjson", json!({})).await.unwrap(),
        json!({"fine": true})
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn undefined_result_is_null() {
    let runtime = FunctionsRuntime::new(fixtures());
    let text = runtime.invoke("undef", json!({}), &ctx("r")).await.unwrap();
    assert_eq!(text, "null");
    runtime.shutdown().await;
}

#[tokio::test]
async fn console_output_does_not_corrupt_the_channel() {
    let runtime = FunctionsRuntime::new(fixtures());
    for _ in 0..3 {
        assert_eq!(
            call(&runtime, "console", json!({})).await.unwrap(),
            json!({"printed": true})
        );
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn unknown_and_path_like_names_are_not_found() {
    let runtime = FunctionsRuntime::new(fixtures());
    for name in [
        "nope",
        "../x",
        "a/b",
        "..",
        "",
        "echo/../echo",
        "/etc",
        "functions/echo",
    ] {
        let err = call(&runtime, name, json!({})).await.unwrap_err();
        assert!(matches!(err, InvokeError::NotFound), "{name}: {err:?}");
        assert_eq!(err.code(), "FUNCTION_NOT_FOUND");
        assert_eq!(err.message(), "FunctionName parameter could not be found.");
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn folder_without_a_main_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/readme.txt"), "no code").unwrap();
    let runtime = FunctionsRuntime::new(dir.path().to_path_buf());
    let err = call(&runtime, "empty", json!({})).await.unwrap_err();
    assert!(matches!(err, InvokeError::NotFound), "{err:?}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn edited_code_is_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let function = dir.path().join("hot");
    std::fs::create_dir(&function).unwrap();
    std::fs::write(
        function.join("index.js"),
        "exports.main = async () => ({ version: 1, pid: process.pid });\n",
    )
    .unwrap();
    let runtime = FunctionsRuntime::new(dir.path().to_path_buf());
    let first = call(&runtime, "hot", json!({})).await.unwrap();
    assert_eq!(first["version"], 1);
    assert_eq!(
        call(&runtime, "hot", json!({})).await.unwrap()["pid"],
        first["pid"]
    );

    std::fs::write(
        function.join("index.js"),
        "exports.main = async () => ({ version: 2, edited: true, pid: process.pid });\n",
    )
    .unwrap();
    let second = call(&runtime, "hot", json!({})).await.unwrap();
    assert_eq!(second["version"], 2);
    assert_ne!(
        second["pid"], first["pid"],
        "the old worker must be retired"
    );

    // A helper module required by the main file counts as the function's code too.
    std::fs::write(function.join("helper.js"), "exports.v = 3;\n").unwrap();
    std::fs::write(
        function.join("index.js"),
        "const { v } = require('./helper');\nexports.main = async () => ({ version: v });\n",
    )
    .unwrap();
    assert_eq!(
        call(&runtime, "hot", json!({})).await.unwrap()["version"],
        3
    );
    std::fs::write(function.join("helper.js"), "exports.v = 4; // edited\n").unwrap();
    assert_eq!(
        call(&runtime, "hot", json!({})).await.unwrap()["version"],
        4
    );

    // config.json changes the time limit.
    std::fs::write(function.join("config.json"), r#"{"timeout": 7}"#).unwrap();
    std::fs::write(
        function.join("index.js"),
        "exports.main = async (e, context) => context.time_limit_in_ms;\n",
    )
    .unwrap();
    assert_eq!(call(&runtime, "hot", json!({})).await.unwrap(), json!(7000));

    // Deleting the function makes it unknown.
    std::fs::remove_dir_all(&function).unwrap();
    assert!(matches!(
        call(&runtime, "hot", json!({})).await,
        Err(InvokeError::NotFound)
    ));
    runtime.shutdown().await;
}

#[tokio::test]
async fn hundred_concurrent_calls_share_a_pool_of_four() {
    let runtime = FunctionsRuntime::with_options(
        fixtures(),
        RuntimeOptions {
            max_workers_per_function: 4,
            ..RuntimeOptions::default()
        },
    );
    let started = Instant::now();
    let calls = (0..100).map(|i| {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let text = runtime
                .invoke(
                    "counter",
                    json!({"ms": 5, "i": i}),
                    &ctx(&format!("req-{i}")),
                )
                .await
                .unwrap();
            serde_json::from_str::<Value>(&text).unwrap()
        })
    });
    let results = futures_util::future::join_all(calls).await;
    let mut pids = HashSet::new();
    for result in results {
        let result = result.unwrap();
        pids.insert(result["pid"].as_u64().unwrap());
    }
    println!(
        "100 concurrent calls took {:?} on {} workers",
        started.elapsed(),
        pids.len()
    );
    assert!(
        (1..=4).contains(&pids.len()),
        "pool exceeded: {} workers",
        pids.len()
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn warm_calls_reuse_the_worker_and_are_fast() {
    let runtime = FunctionsRuntime::new(fixtures());
    let started = Instant::now();
    let first = call(&runtime, "counter", json!({})).await.unwrap();
    let cold = started.elapsed();
    assert_eq!(first["calls"], 1);

    let warm_calls = 50;
    let started = Instant::now();
    let mut last = first.clone();
    for _ in 0..warm_calls {
        last = call(&runtime, "counter", json!({})).await.unwrap();
    }
    let warm = started.elapsed() / warm_calls;
    assert_eq!(
        last["pid"], first["pid"],
        "sequential calls must reuse the warm worker"
    );
    assert_eq!(last["calls"], warm_calls + 1);
    println!(
        "cold call {cold:?}, warm call {warm:?} on average ({:.1}x faster)",
        cold.as_secs_f64() / warm.as_secs_f64()
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn missing_node_is_a_runtime_error() {
    let runtime = FunctionsRuntime::with_options(
        fixtures(),
        RuntimeOptions {
            node_binary: Some(PathBuf::from("/nonexistent/bin/node")),
            ..RuntimeOptions::default()
        },
    );
    let err = call(&runtime, "echo", json!({})).await.unwrap_err();
    assert!(
        matches!(&err, InvokeError::Runtime(m) if m.contains("/nonexistent/bin/node")),
        "{err:?}"
    );
    assert_eq!(err.code(), "FUNCTIONS_REQUEST_FAIL");
    // An unknown function is still reported as such.
    assert!(matches!(
        call(&runtime, "nope", json!({})).await,
        Err(InvokeError::NotFound)
    ));
    runtime.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_calls_in_flight_and_refuses_new_ones() {
    let runtime = FunctionsRuntime::new(fixtures());
    let in_flight = {
        let runtime = runtime.clone();
        tokio::spawn(async move { call(&runtime, "counter", json!({"ms": 2000})).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    runtime.shutdown().await;
    let result = in_flight.await.unwrap();
    assert!(matches!(result, Err(InvokeError::Runtime(_))), "{result:?}");
    // The call would take 2 s; shutdown cuts it short.
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(matches!(
        call(&runtime, "echo", json!({})).await,
        Err(InvokeError::Runtime(_))
    ));
}

#[tokio::test]
async fn out_of_memory_is_a_crash_and_other_calls_keep_working() {
    let runtime = FunctionsRuntime::with_options(
        fixtures(),
        RuntimeOptions {
            memory_limit_mb: 48,
            ..RuntimeOptions::default()
        },
    );
    let started = Instant::now();
    let err = call(&runtime, "oom", json!({})).await.unwrap_err();
    let InvokeError::Crashed(message) = &err else {
        panic!("expected Crashed, got {err:?}");
    };
    println!("out of memory after {:?}: {message}", started.elapsed());
    assert!(message.contains("heap out of memory"), "{message}");
    assert_eq!(
        call(&runtime, "sync", json!({"n": 1})).await.unwrap()["doubled"],
        2
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn large_payloads_round_trip() {
    let runtime = FunctionsRuntime::new(fixtures());
    let big = "x".repeat(3 * 1024 * 1024);
    let result = call(
        &runtime,
        "echo",
        json!({"big": big, "unicode": "云函数 ✓ \u{2028}"}),
    )
    .await
    .unwrap();
    assert_eq!(
        result["event"]["big"].as_str().map(str::len),
        Some(big.len())
    );
    assert_eq!(result["event"]["unicode"], "云函数 ✓ \u{2028}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn idle_workers_are_stopped_after_the_idle_timeout() {
    let runtime = FunctionsRuntime::with_options(
        fixtures(),
        RuntimeOptions {
            idle_timeout: Some(Duration::from_millis(500)),
            ..RuntimeOptions::default()
        },
    );
    let first = call(&runtime, "counter", json!({})).await.unwrap();
    let again = call(&runtime, "counter", json!({})).await.unwrap();
    assert_eq!(again["pid"], first["pid"]);
    assert_eq!(again["calls"], 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = call(&runtime, "counter", json!({})).await.unwrap();
    assert_ne!(
        fresh["pid"], first["pid"],
        "the idle worker should have been stopped"
    );
    assert_eq!(fresh["calls"], 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_relative_functions_dir_works() {
    // Integration tests run in the crate folder.
    let runtime = FunctionsRuntime::new(PathBuf::from("tests/fixtures/functions"));
    assert!(runtime.functions_dir().is_absolute());
    assert_eq!(
        call(&runtime, "pkgmain", json!({"who": "relative"}))
            .await
            .unwrap()["greeting"],
        "hello relative"
    );
    assert_eq!(
        call(&runtime, "sync", json!({"n": 2})).await.unwrap()["doubled"],
        4
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn config_env_variables_and_call_environment_reach_the_function() {
    let runtime = FunctionsRuntime::new(fixtures());
    let result = call(&runtime, "envvars", json!({})).await.unwrap();
    assert_eq!(result["greeting"], "ni hao");
    assert_eq!(result["retries"], "3");
    assert_eq!(result["tcbEnv"], "test-env");
    assert_eq!(result["scfNamespace"], "test-env");
    assert_eq!(result["openid"], "openid-123");
    assert_eq!(result["appid"], "wx-app-1");
    let cwd = PathBuf::from(result["cwd"].as_str().unwrap());
    assert_eq!(
        cwd.canonicalize().unwrap(),
        fixtures().join("envvars").canonicalize().unwrap()
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn loading_the_code_does_not_count_against_the_time_limit() {
    let runtime = FunctionsRuntime::new(fixtures());
    let started = Instant::now();
    let first = call(&runtime, "slow_load", json!({})).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the cold start loaded the code"
    );
    let again = call(&runtime, "slow_load", json!({})).await.unwrap();
    assert_eq!(again, first, "the warm worker did not load the code again");
    runtime.shutdown().await;
}
