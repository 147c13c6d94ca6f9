//! The SDK in real Chromium against a running cloud-emulator:
//!   cloud-emulator exec --functions tests/functions -- wasm-pack test --headless --chrome
//! (scripts/test-wasm.sh). The emulator URL is read at build time; without it every test fails.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Promise, Reflect, JSON};
use taro_cloud_wasm::CloudHandle;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    // Named apart from the SDK's own AbortController binding (same-shaped imports would clash at link time).
    #[wasm_bindgen(js_name = AbortController)]
    type TestAbortController;
    #[wasm_bindgen(constructor, js_class = AbortController)]
    fn new() -> TestAbortController;
    #[wasm_bindgen(method, getter, js_class = AbortController, js_name = signal)]
    fn test_signal(this: &TestAbortController) -> JsValue;
    #[wasm_bindgen(method, js_class = AbortController, js_name = abort)]
    fn test_abort(this: &TestAbortController);

    #[wasm_bindgen(js_name = setTimeout)]
    fn test_set_timeout(callback: &Function, ms: i32) -> JsValue;

    #[wasm_bindgen(js_namespace = sessionStorage, js_name = getItem)]
    fn session_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_namespace = sessionStorage, js_name = setItem)]
    fn session_set(key: &str, value: &str);
}

fn emulator_url() -> &'static str {
    // Read at build time; a build without it must fail every test, not skip them.
    match option_env!("CLOUD_EMULATOR_URL") {
        Some(url) => url,
        None => panic!("CLOUD_EMULATOR_URL was not set at build time: run under `cloud-emulator exec -- wasm-pack test`"),
    }
}

/// A fresh env per test so credentials and results never leak between tests.
fn fresh_env(tag: &str) -> String {
    format!("wasm-{tag}-{}", (js_sys::Math::random() * 1e9) as u64)
}

fn json(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn set(target: &JsValue, key: &str, value: &JsValue) {
    Reflect::set(target, &JsValue::from_str(key), value).unwrap();
}

fn init_default(env: &str, extra: &str) -> CloudHandle {
    let cloud = CloudHandle::create_default();
    let config = json(&format!(
        r#"{{"env":"{env}","endpoint":"{}","persistence":"session"{extra}}}"#,
        emulator_url()
    ));
    let _ = cloud.init(config);
    cloud
}

async fn call(cloud: &CloudHandle, options: JsValue) -> Result<JsValue, JsValue> {
    let promise: Promise = cloud.call_function(options)?.dyn_into()?;
    JsFuture::from(promise).await
}

fn sleep(ms: i32) -> JsFuture {
    JsFuture::from(Promise::new(&mut |resolve, _| {
        test_set_timeout(&resolve, ms);
    }))
}

fn assert_error(error: &JsValue, err_code: i32) {
    assert!(
        error.is_instance_of::<js_sys::Error>(),
        "not an Error: {error:?}"
    );
    assert_eq!(
        get(error, "errCode").as_f64(),
        Some(err_code as f64),
        "{:?}",
        get(error, "errMsg")
    );
    assert_eq!(get(error, "errMsg"), get(error, "message"));
}

#[wasm_bindgen_test]
async fn anonymous_sign_in_then_call_function() {
    let env = fresh_env("ok");
    let cloud = init_default(&env, "");
    let res = call(
        &cloud,
        json(r#"{"name":"echo","data":{"a":1,"s":"\"x\"\n"}}"#),
    )
    .await
    .unwrap();
    assert_eq!(
        get(&res, "errMsg").as_string().as_deref(),
        Some("cloud.callFunction:ok")
    );
    assert!(!get(&res, "requestID")
        .as_string()
        .unwrap_or_default()
        .is_empty());
    let result = get(&res, "result");
    assert_eq!(
        JSON::stringify(&get(&result, "data")).unwrap(),
        r#"{"a":1,"s":"\"x\"\n"}"#
    );
    assert_eq!(get(&result, "env").as_string(), Some(env.clone()));
    assert_eq!(get(&result, "hasOpenId").as_bool(), Some(true));

    // Credentials are persisted like @cloudbase/js-sdk 3.x (persistence 'session' → sessionStorage).
    let stored = json(&session_get(&format!("credentials_{env}")).expect("credentials stored"));
    assert_eq!(
        get(&stored, "token_type").as_string().as_deref(),
        Some("Bearer")
    );
    assert_eq!(
        get(&stored, "scope").as_string().as_deref(),
        Some("anonymous")
    );
    assert!(!get(&stored, "refresh_token")
        .as_string()
        .unwrap()
        .is_empty());
    let expires_at = js_sys::Date::parse(&get(&stored, "expires_at").as_string().unwrap());
    assert!(expires_at > js_sys::Date::now());
    assert_eq!(session_get("device_id").map(|id| id.len()), Some(32));

    // Per-call config.env overrides the init env on the default instance.
    let other = fresh_env("other");
    let options = json(&format!(
        r#"{{"name":"echo","config":{{"env":"{other}"}}}}"#
    ));
    let res = call(&cloud, options).await.unwrap();
    assert_eq!(get(&get(&res, "result"), "env").as_string(), Some(other));
}

#[wasm_bindgen_test]
async fn function_error_is_404011_with_message_and_stack() {
    let cloud = init_default(&fresh_env("throws"), "");
    let error = call(&cloud, json(r#"{"name":"throws","data":{"tag":"t-42"}}"#))
        .await
        .unwrap_err();
    assert_error(&error, -404011);
    let err_msg = get(&error, "errMsg").as_string().unwrap();
    assert!(
        err_msg.starts_with(
            "cloud.callFunction:fail -404011 cloud function execution error. requestID "
        ),
        "{err_msg}"
    );
    assert!(err_msg.contains("boom: t-42"), "{err_msg}");
    assert!(err_msg.contains("index.js"), "stack missing: {err_msg}");
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("FUNCTIONS_EXECUTE_FAIL")
    );
    assert!(get(&error, "requestID").is_string());
}

#[wasm_bindgen_test]
async fn missing_function_is_501000() {
    let cloud = init_default(&fresh_env("missing"), "");
    let error = call(&cloud, json(r#"{"name":"no-such-function"}"#))
        .await
        .unwrap_err();
    assert_error(&error, -501000);
    assert_eq!(
        get(&error, "errMsg").as_string().as_deref(),
        Some("cloud.callFunction:fail -501000 FunctionName parameter could not be found.")
    );
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("FUNCTION_NOT_FOUND")
    );
}

#[wasm_bindgen_test]
async fn callback_style_returns_undefined_and_calls_success_then_complete() {
    let cloud = init_default(&fresh_env("cb"), "");
    let log = Array::new();
    let mut done = None;
    let finished = Promise::new(&mut |resolve, _| done = Some(resolve));
    let done = done.unwrap();
    let options = json(r#"{"name":"echo","data":{"k":"v"}}"#);
    let success = Closure::once_into_js({
        let log = log.clone();
        move |res: JsValue| -> () {
            log.push(&"success".into());
            log.push(&get(&get(&get(&res, "result"), "data"), "k"));
            // A throwing callback must not reach fail (it is logged instead).
            wasm_bindgen::throw_str("user callback bug");
        }
    });
    let fail = Closure::once_into_js({
        let log = log.clone();
        move |_: JsValue| {
            log.push(&"fail".into());
        }
    });
    let complete = Closure::once_into_js({
        let log = log.clone();
        move |res: JsValue| {
            log.push(&"complete".into());
            done.call1(&JsValue::UNDEFINED, &res).unwrap();
        }
    });
    set(&options, "success", &success);
    set(&options, "fail", &fail);
    set(&options, "complete", &complete);
    let returned = cloud.call_function(options).unwrap();
    assert!(returned.is_undefined());
    log.push(&"returned".into());
    let completed_with = JsFuture::from(finished).await.unwrap();
    assert_eq!(
        get(&completed_with, "errMsg").as_string().as_deref(),
        Some("cloud.callFunction:ok")
    );
    assert_eq!(
        JSON::stringify(&log).unwrap(),
        r#"["returned","success","v","complete"]"#
    );

    // Failures (here validation) go to fail then complete, still asynchronously.
    let log = Array::new();
    let mut done = None;
    let finished = Promise::new(&mut |resolve, _| done = Some(resolve));
    let done = done.unwrap();
    let options = json(r#"{"name":""}"#);
    let fail = Closure::once_into_js({
        let log = log.clone();
        move |error: JsValue| {
            log.push(&get(&error, "errCode"));
        }
    });
    let complete = Closure::once_into_js(move |error: JsValue| {
        done.call1(&JsValue::UNDEFINED, &error).unwrap();
    });
    set(&options, "fail", &fail);
    set(&options, "complete", &complete);
    assert!(cloud.call_function(options).unwrap().is_undefined());
    log.push(&"returned".into());
    let error = JsFuture::from(finished).await.unwrap();
    assert_error(&error, -401002);
    assert_eq!(JSON::stringify(&log).unwrap(), r#"["returned",-401002]"#);
}

#[wasm_bindgen_test]
async fn abort_through_signal_cancels_the_call() {
    let cloud = init_default(&fresh_env("abort"), "");
    // Sign in first so the abort lands on the function call itself.
    call(&cloud, json(r#"{"name":"echo"}"#)).await.unwrap();
    let controller = TestAbortController::new();
    let options = json(r#"{"name":"slow","data":{"ms":3000}}"#);
    set(&options, "signal", &controller.test_signal());
    let started = js_sys::Date::now();
    let pending = call(&cloud, options);
    let abort = Closure::once_into_js(move || controller.test_abort());
    test_set_timeout(abort.unchecked_ref(), 150);
    let error = pending.await.unwrap_err();
    assert_error(&error, -1);
    assert_eq!(
        get(&error, "errMsg").as_string().as_deref(),
        Some("cloud.callFunction:fail abort")
    );
    assert!(
        js_sys::Date::now() - started < 2000.0,
        "abort did not end the call early"
    );

    // An already-aborted signal fails at once.
    let controller = TestAbortController::new();
    controller.test_abort();
    let options = json(r#"{"name":"echo"}"#);
    set(&options, "signal", &controller.test_signal());
    assert_error(&call(&cloud, options).await.unwrap_err(), -1);
}

#[wasm_bindgen_test]
async fn request_timeout_is_501002() {
    let cloud = init_default(&fresh_env("timeout"), r#","timeout":1000"#);
    call(&cloud, json(r#"{"name":"echo"}"#)).await.unwrap();
    let error = call(&cloud, json(r#"{"name":"slow","data":{"ms":3000}}"#))
        .await
        .unwrap_err();
    assert_error(&error, -501002);
}

#[wasm_bindgen_test]
async fn unreachable_server_is_601003() {
    let cloud = CloudHandle::create_default();
    // Port 9 (discard) on loopback is closed on test machines.
    let _ = cloud.init(json(
        r#"{"env":"nowhere","endpoint":"http://127.0.0.1:9","persistence":"none"}"#,
    ));
    let error = call(&cloud, json(r#"{"name":"echo"}"#)).await.unwrap_err();
    assert_error(&error, -601003);
}

#[wasm_bindgen_test]
async fn uninitialised_use_throws_synchronously() {
    let cloud = CloudHandle::create_default();
    let thrown = cloud.call_function(json(r#"{"name":"echo"}"#)).unwrap_err();
    assert_error(&thrown, -1);
    assert_eq!(
        get(&thrown, "errMsg").as_string().as_deref(),
        Some("Cloud API isn't enabled, please call init first")
    );
    // Options that are not an object throw synchronously too (once initialised).
    let _ = cloud.init(json(r#"{"env":"e","endpoint":"http://127.0.0.1:9"}"#));
    assert_error(&cloud.call_function(JsValue::from(5)).unwrap_err(), -401003);
}

#[wasm_bindgen_test]
async fn instances_use_their_resource_env() {
    let env = fresh_env("inst");
    let options = json(&format!(
        r#"{{"resourceEnv":"{env}","endpoint":"{}","persistence":"session"}}"#,
        emulator_url()
    ));
    let instance = CloudHandle::create_instance(options).unwrap();
    assert_error(
        &instance
            .call_function(json(r#"{"name":"echo"}"#))
            .unwrap_err(),
        -1,
    );
    JsFuture::from(instance.init(JsValue::UNDEFINED))
        .await
        .unwrap();
    // config.env is ignored on instances.
    let res = call(
        &instance,
        json(r#"{"name":"echo","config":{"env":"elsewhere"}}"#),
    )
    .await
    .unwrap();
    assert_eq!(get(&get(&res, "result"), "env").as_string(), Some(env));
}

#[wasm_bindgen_test]
async fn expired_access_token_is_refreshed() {
    let env = fresh_env("refresh");
    let key = format!("credentials_{env}");
    let first = init_default(&env, "");
    call(&first, json(r#"{"name":"echo"}"#)).await.unwrap();
    let stored = json(&session_get(&key).unwrap());
    let old_token = get(&stored, "access_token").as_string().unwrap();
    set(
        &stored,
        "expires_at",
        &JsValue::from_str("2000-01-01T00:00:00.000Z"),
    );
    session_set(
        &key,
        &JSON::stringify(&stored).unwrap().as_string().unwrap(),
    );

    // A second client (other timeout → its own session) loads the expired credentials and refreshes them.
    let second = init_default(&env, r#","timeout":14000"#);
    call(&second, json(r#"{"name":"echo"}"#)).await.unwrap();
    let refreshed = json(&session_get(&key).unwrap());
    assert_ne!(
        get(&refreshed, "access_token").as_string().unwrap(),
        old_token
    );
    assert!(
        js_sys::Date::parse(&get(&refreshed, "expires_at").as_string().unwrap())
            > js_sys::Date::now()
    );
}

#[wasm_bindgen_test]
async fn rejected_credentials_lead_to_a_new_anonymous_sign_in() {
    // Stored credentials the server never issued: the call gets CHECK_LOGIN_FAILED, signs in and retries;
    // an expired one with an unknown refresh token gets invalid_grant and signs in again.
    for (tag, expires_at) in [
        ("bogus", "2999-01-01T00:00:00.000Z"),
        ("badrefresh", "2000-01-01T00:00:00.000Z"),
    ] {
        let env = fresh_env(tag);
        let key = format!("credentials_{env}");
        session_set(
            &key,
            &format!(
                r#"{{"token_type":"Bearer","access_token":"AT-bogus","refresh_token":"RT-bogus","expires_in":7200,"scope":"anonymous","sub":"x","expires_at":"{expires_at}"}}"#
            ),
        );
        let cloud = init_default(&env, "");
        let res = call(&cloud, json(r#"{"name":"echo"}"#)).await.unwrap();
        assert_eq!(get(&get(&res, "result"), "env").as_string(), Some(env));
        let stored = json(&session_get(&key).unwrap());
        assert_ne!(
            get(&stored, "access_token").as_string().as_deref(),
            Some("AT-bogus"),
            "{tag}"
        );
    }
    sleep(1).await.unwrap();
}

#[wasm_bindgen_test]
async fn concurrent_calls_share_one_anonymous_sign_in() {
    let env = fresh_env("shared");
    // Count sign-in requests for this env by wrapping the global fetch the SDK calls.
    let install = Function::new_with_args(
        "env",
        "const original = globalThis.fetch; let count = 0;
         globalThis.fetch = function (url, init) {
           if (String(url).includes('/auth/v1/signin/anonymously?client_id=' + env)) count++;
           return original.call(this, url, init);
         };
         return { count: () => count, restore: () => { globalThis.fetch = original; } };",
    );
    let probe = install
        .call1(&JsValue::UNDEFINED, &JsValue::from_str(&env))
        .unwrap();
    let cloud = init_default(&env, "");
    // All three calls start (synchronously) before any of them has a token.
    let promises: Vec<Promise> = (0..3)
        .map(|i| {
            let options = json(&format!(r#"{{"name":"echo","data":{{"i":{i}}}}}"#));
            cloud.call_function(options).unwrap().dyn_into().unwrap()
        })
        .collect();
    let mut results = Vec::new();
    for promise in promises {
        results.push(JsFuture::from(promise).await);
    }
    let count = get(&probe, "count")
        .dyn_into::<Function>()
        .unwrap()
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    get(&probe, "restore")
        .dyn_into::<Function>()
        .unwrap()
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    for (i, result) in results.into_iter().enumerate() {
        let res = result.unwrap();
        assert_eq!(
            get(&get(&get(&res, "result"), "data"), "i").as_f64(),
            Some(i as f64)
        );
    }
    assert_eq!(
        count.as_f64(),
        Some(1.0),
        "one sign-in for concurrent calls"
    );
}

// ---- storage (uploadFile / downloadFile / getTempFileURL through XHR and fetch in Chromium) ----

#[cfg(feature = "storage")]
/// Options with `success`/`fail` wired to a Promise; returns (options, promise).
fn callback_options(options: JsValue) -> (JsValue, Promise) {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    let (resolve, reject) = slots.unwrap();
    set(&options, "success", &resolve);
    set(&options, "fail", &reject);
    (options, promise)
}

#[cfg(feature = "storage")]
fn call_method(target: &JsValue, name: &str, argument: &JsValue) {
    get(target, name)
        .dyn_into::<Function>()
        .unwrap()
        .call1(target, argument)
        .unwrap();
}

#[cfg(feature = "storage")]
#[wasm_bindgen_test]
async fn storage_upload_reports_progress_and_downloads_equal_bytes() {
    let cloud = init_default(&fresh_env("store"), "");
    // Chromium fires upload progress at most every 50 ms: the body must take longer than that to send
    // over loopback for intermediate events to exist (6 MB sometimes went in one event).
    let bytes: Vec<u8> = (0..40_000_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
    let options = json(r#"{"cloudPath":"wasm/progress.bin"}"#);
    set(&options, "file", &js_sys::Uint8Array::from(&bytes[..]));
    let (options, finished) = callback_options(options);
    let task = cloud.upload_file(options).unwrap();
    let events = Array::new();
    let on_progress = Closure::<dyn FnMut(JsValue)>::new({
        let events = events.clone();
        move |event: JsValue| {
            events.push(&event);
        }
    });
    call_method(&task, "onProgressUpdate", on_progress.as_ref());
    let res = JsFuture::from(finished).await.unwrap();
    assert_eq!(
        get(&res, "errMsg").as_string().as_deref(),
        Some("cloud.uploadFile:ok")
    );
    assert_eq!(get(&res, "statusCode").as_f64(), Some(200.0));

    assert!(
        events.length() >= 2,
        "XHR progress events: {}",
        events.length()
    );
    let sent = |i: u32| get(&events.get(i), "totalBytesSent").as_f64().unwrap();
    for i in 1..events.length() {
        assert!(sent(i) >= sent(i - 1), "monotone at {i}");
    }
    let last = events.get(events.length() - 1);
    assert_eq!(get(&last, "progress").as_f64(), Some(100.0));
    assert_eq!(
        get(&last, "totalBytesSent").as_f64(),
        Some(bytes.len() as f64)
    );
    assert_eq!(
        get(&last, "totalBytesExpectedToSend").as_f64(),
        Some(bytes.len() as f64)
    );

    let download = json("{}");
    set(&download, "fileID", &get(&res, "fileID"));
    let promise: Promise = cloud.download_file(download).unwrap().dyn_into().unwrap();
    let downloaded = JsFuture::from(promise).await.unwrap();
    assert_eq!(
        get(&downloaded, "errMsg").as_string().as_deref(),
        Some("downloadFile:ok")
    );
    let data = js_sys::Uint8Array::new(&get(&downloaded, "data")).to_vec();
    assert!(data == bytes, "downloaded bytes differ");
    assert!(get(&downloaded, "tempFilePath")
        .as_string()
        .unwrap()
        .starts_with("blob:"));
}

#[cfg(feature = "storage")]
#[wasm_bindgen_test]
async fn storage_abort_mid_upload_leaves_no_object() {
    let env = fresh_env("abortup");
    let cloud = init_default(&env, "");
    let size = 40 * 1024 * 1024;
    let options = json(r#"{"cloudPath":"wasm/aborted.bin"}"#);
    set(&options, "file", &js_sys::Uint8Array::new_with_length(size));
    let (options, finished) = callback_options(options);
    let task = cloud.upload_file(options).unwrap();
    let aborted_at = std::rc::Rc::new(std::cell::Cell::new(0.0));
    let on_progress = Closure::<dyn FnMut(JsValue)>::new({
        let task = task.clone();
        let aborted_at = aborted_at.clone();
        move |event: JsValue| {
            let sent = get(&event, "totalBytesSent").as_f64().unwrap();
            if aborted_at.get() == 0.0 && sent > 0.0 && sent < f64::from(size) {
                aborted_at.set(sent);
                call_method(&task, "abort", &JsValue::UNDEFINED);
            }
        }
    });
    call_method(&task, "onProgressUpdate", on_progress.as_ref());
    let error = JsFuture::from(finished).await.unwrap_err();
    assert_error(&error, -1);
    assert_eq!(
        get(&error, "errMsg").as_string().as_deref(),
        Some("cloud.uploadFile:fail abort")
    );
    assert!(aborted_at.get() > 0.0, "aborted mid-way");

    sleep(300).await.unwrap();
    let probe = json(&format!(
        r#"{{"fileList":["cloud://{env}.b/wasm/aborted.bin"]}}"#
    ));
    let promise: Promise = cloud.get_temp_file_url(probe).unwrap().dyn_into().unwrap();
    let res = JsFuture::from(promise).await.unwrap();
    let item = get(&get(&res, "fileList"), "0");
    assert_eq!(get(&item, "status").as_f64(), Some(-503003.0), "no object");
}

// ---- database: JsValue ↔ value-model conversions in a real browser (no emulator needed: a recording
// `fetch` stands in for the network, restored afterwards; wasm-bindgen-test runs tests one at a time).

#[cfg(feature = "database")]
fn db_command(name: &str, args: &[JsValue]) -> JsValue {
    let array: Array = args.iter().collect();
    taro_cloud_wasm::db::make_command(name, array).unwrap()
}

#[cfg(feature = "database")]
fn chain(command: &JsValue, name: &str, args: &[JsValue]) -> JsValue {
    let method: Function = get(command, "_chain").dyn_into().unwrap();
    let array: Array = args.iter().collect();
    method
        .call2(command, &JsValue::from_str(name), &array)
        .unwrap()
}

#[cfg(feature = "database")]
#[wasm_bindgen_test]
fn database_commands_and_geo_convert_from_js() {
    let range = chain(&db_command("gt", &[18.into()]), "lt", &[60.into()]);
    let to_json: Function = get(&range, "toJSON").dyn_into().unwrap();
    assert_eq!(
        JSON::stringify(&to_json.call0(&range).unwrap()).unwrap(),
        r#"{"$gt":18,"$lt":60}"#
    );
    let point: JsValue = taro_cloud_wasm::db::GeoValue::new("Point", 113.5.into(), (-23.25).into())
        .unwrap()
        .into();
    assert_eq!(get(&point, "longitude").as_f64(), Some(113.5));
    let text: Function = get(&point, "toString").dyn_into().unwrap();
    assert_eq!(
        text.call0(&point).unwrap().as_string().as_deref(),
        Some(r#"{"type":"Point","coordinates":[113.5,-23.25]}"#)
    );
    let error = taro_cloud_wasm::db::GeoValue::new("Point", 181.into(), 0.into())
        .err()
        .expect("longitude 181 is refused");
    assert_error(&error, -401002);
    let ring: Array = [(0, 0), (1, 0), (1, 1)]
        .iter()
        .map(|(x, y)| -> JsValue {
            taro_cloud_wasm::db::GeoValue::new("Point", (*x).into(), (*y).into())
                .unwrap()
                .into()
        })
        .collect();
    let line: JsValue =
        taro_cloud_wasm::db::GeoValue::new("LineString", ring.into(), JsValue::UNDEFINED)
            .unwrap()
            .into();
    let open =
        taro_cloud_wasm::db::GeoValue::new("Polygon", Array::of1(&line).into(), JsValue::UNDEFINED);
    assert_error(&open.err().expect("an open ring is refused"), -401002);
    // A circular structure is refused like JSON.stringify would.
    let cyclic = json(r#"{"a":1}"#);
    set(&cyclic, "self", &cyclic);
    let error = taro_cloud_wasm::db::make_command("eq", Array::of1(&cyclic)).unwrap_err();
    assert_error(&error, -402001);
}

#[cfg(feature = "database")]
#[wasm_bindgen_test]
async fn database_where_encodes_dates_regexps_geo_and_chains() {
    let global = js_sys::global();
    let original_fetch = get(&global, "fetch");
    let recorder = Function::new_with_args(
        "url, init",
        r#"const u = String(url);
           const token = {token_type:'Bearer',access_token:'AT',refresh_token:'RT',expires_in:7200,scope:'anonymous',sub:'s',groups:['anonymous']};
           if (u.includes('/auth/v1/')) return Promise.resolve(new Response(JSON.stringify(token)));
           (globalThis.__dbBodies ||= []).push(init.body);
           return Promise.resolve(new Response(JSON.stringify({requestId:'r',data:{list:[
             {_id:'a', when:{$date:1700000000000}, loc:{type:'Point',coordinates:[113.3,23.1]}, n:{k:[{$date:0}]}}]}})));"#,
    );
    set(&global, "fetch", &recorder);

    let cloud = CloudHandle::create_default();
    let _ = cloud.init(json(
        r#"{"env":"db-convert","endpoint":"http://db.stub.invalid","persistence":"none"}"#,
    ));
    let db = cloud.database(JsValue::UNDEFINED).unwrap();
    let condition = js_sys::Object::new();
    set(
        &condition,
        "when",
        &db_command("lt", &[js_sys::Date::new(&1700000000000.0.into()).into()]),
    );
    set(&condition, "name", &js_sys::RegExp::new("^ab", "i"));
    set(
        &condition,
        "age",
        &chain(
            &db_command("gt", &[18.into()]),
            "and",
            &[db_command("lt", &[60.into()])],
        ),
    );
    let point: JsValue = taro_cloud_wasm::db::GeoValue::new("Point", 113.into(), 23.into())
        .unwrap()
        .into();
    let near = js_sys::Object::new();
    set(&near, "geometry", &point);
    set(&near, "maxDistance", &1000.into());
    set(&condition, "loc", &db_command("geoNear", &[near.into()]));
    set(&condition, "nested", &json(r#"{"deep":{"x":1}}"#));
    let query = db
        .collection("t".into())
        .unwrap()
        .where_(condition.into())
        .unwrap();
    let result: Result<JsValue, JsValue> = async {
        let promise: Promise = query.get(JsValue::UNDEFINED)?.dyn_into()?;
        JsFuture::from(promise).await
    }
    .await;
    set(&global, "fetch", &original_fetch);
    let result = result.unwrap();

    let bodies = get(&global, "__dbBodies");
    let body = json(&get(&bodies, "0").as_string().unwrap());
    assert_eq!(
        JSON::stringify(&get(&body, "query")).unwrap(),
        concat!(
            r#"{"when":{"$lt":{"$date":1700000000000}},"name":{"$regex":"^ab","$options":"i"},"#,
            r#""loc":{"$nearSphere":{"$geometry":{"type":"Point","coordinates":[113,23]},"$maxDistance":1000}},"#,
            r#""nested.deep.x":1,"$and":[{"age":{"$gt":18}},{"age":{"$lt":60}}]}"#
        )
    );
    assert_eq!(get(&body, "limit").as_f64(), Some(20.0));
    let doc = get(&get(&result, "data"), "0");
    assert!(get(&doc, "when").is_instance_of::<js_sys::Date>());
    assert_eq!(
        get(&doc, "when")
            .unchecked_into::<js_sys::Date>()
            .get_time(),
        1700000000000.0
    );
    let loc = get(&doc, "loc");
    assert_eq!(get(&loc, "longitude").as_f64(), Some(113.3));
    assert_eq!(get(&loc, "latitude").as_f64(), Some(23.1));
    let nested_date = get(&get(&get(&doc, "n"), "k"), "0");
    assert!(
        nested_date.is_instance_of::<js_sys::Date>(),
        "nested $date decoded"
    );
    assert_eq!(
        get(&result, "errMsg").as_string().as_deref(),
        Some("collection.get:ok")
    );
}
