//! The dashboard's access rules — a request from another origin, with a wrong Host, or without the
//! cookie or admin token changes nothing — and what its API reports: the request log with the rule
//! behind a denial, function calls with their console output, users and their sign-out.

mod common;

use common::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

const ENV: &str = "dash-env";

/// A client that follows no redirects (the login answers one with the cookie).
fn manual_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Redeems the one-time login URL; the `name=value` cookie it sets.
async fn login(server: &TestServer) -> String {
    let url = server
        .server
        .dashboard_login_url()
        .expect("an unused login URL");
    let response = manual_client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        server.server.dashboard_login_url().is_none(),
        "the link is one-time"
    );
    let again = manual_client().get(&url).send().await.unwrap();
    assert!(
        again.headers().get("set-cookie").is_none(),
        "a used link signs nobody in"
    );
    cookie.split(';').next().unwrap().to_string()
}

fn origin(server: &TestServer) -> String {
    server.url.clone()
}

/// The headers of a dashboard write from its own page.
fn page_headers(server: &TestServer, cookie: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    headers.insert("origin", HeaderValue::from_str(&origin(server)).unwrap());
    headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    headers.insert("x-cloud-emulator-dashboard", HeaderValue::from_static("1"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

async fn create_collection(server: &TestServer, headers: HeaderMap, name: &str) -> u16 {
    server
        .post("/_/api/database/collections")
        .headers(headers)
        .body(json!({"env": ENV, "name": name}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn collection_names(server: &TestServer) -> Vec<String> {
    let (_, list) = send_json(
        server
            .get(&format!("/admin/v1/database/collections?env={ENV}"))
            .header("authorization", bearer(ADMIN_TOKEN)),
    )
    .await;
    list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

const ADMIN_TOKEN: &str = "dashboard-test-admin-token-0123456789";

async fn start() -> TestServer {
    start_with(|config| {
        config.env = Some(ENV.to_string());
        config.admin_token = ADMIN_TOKEN.to_string();
    })
    .await
}

#[tokio::test]
async fn only_the_dashboards_own_page_changes_anything() {
    let server = start().await;
    let cookie = login(&server).await;

    // No cookie, no token: refused, for reads too.
    let anonymous = server.get("/_/api/overview").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let mut headers = page_headers(&server, &cookie);
    headers.remove("cookie");
    assert_eq!(
        create_collection(&server, headers, "c_no_cookie").await,
        401
    );
    let mut headers = page_headers(&server, &cookie);
    headers.insert(
        "cookie",
        HeaderValue::from_static("cloud_emulator_dashboard_1=forged"),
    );
    assert_eq!(create_collection(&server, headers, "c_forged").await, 401);

    // Another origin — another site, or another port of this host (same-site for cookies) — is refused.
    for other in [
        "http://evil.example",
        "http://localhost:5173",
        "http://127.0.0.1:1",
    ] {
        let mut headers = page_headers(&server, &cookie);
        headers.insert("origin", HeaderValue::from_str(other).unwrap());
        assert_eq!(
            create_collection(&server, headers, "c_other_origin").await,
            403,
            "{other}"
        );
    }
    let mut headers = page_headers(&server, &cookie);
    headers.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
    assert_eq!(
        create_collection(&server, headers, "c_same_site").await,
        403
    );
    // A write without an Origin, or without the CSRF header (what a cross-site form sends), is refused.
    let mut headers = page_headers(&server, &cookie);
    headers.remove("origin");
    assert_eq!(
        create_collection(&server, headers, "c_no_origin").await,
        403
    );
    let mut headers = page_headers(&server, &cookie);
    headers.remove("x-cloud-emulator-dashboard");
    assert_eq!(create_collection(&server, headers, "c_no_csrf").await, 403);
    // A wrong Host (DNS rebinding) is refused before the dashboard sees it.
    let mut headers = page_headers(&server, &cookie);
    headers.insert("host", HeaderValue::from_static("rebind.example:80"));
    assert_eq!(
        create_collection(&server, headers, "c_wrong_host").await,
        403
    );

    assert!(
        collection_names(&server).await.is_empty(),
        "nothing was created"
    );

    // The page itself, and a client with the admin token, may.
    assert_eq!(
        create_collection(&server, page_headers(&server, &cookie), "c_page").await,
        200
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&bearer(ADMIN_TOKEN)).unwrap(),
    );
    assert_eq!(create_collection(&server, headers, "c_token").await, 200);
    assert_eq!(collection_names(&server).await, vec!["c_page", "c_token"]);

    // The login form takes the admin token, from the dashboard's own origin only.
    let form = |origin: &str, token: &str| {
        manual_client()
            .post(format!("{}/_/login", server.url))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
    };
    let wrong = form(&server.url, "nope").send().await.unwrap();
    assert!(wrong.headers().get("set-cookie").is_none());
    let elsewhere = form("http://evil.example", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    let right = form(&server.url, ADMIN_TOKEN).send().await.unwrap();
    assert!(right.headers().get("set-cookie").is_some());
    server.stop().await;
}

#[tokio::test]
async fn pages_and_assets_are_served_without_a_cdn() {
    let server = start().await;
    let login_page = server.get("/_/").send().await.unwrap();
    assert_eq!(login_page.status(), 200);
    let csp = login_page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = login_page.text().await.unwrap();
    assert!(
        html.contains("Admin token"),
        "signed-out visitors get the login form"
    );
    let cookie = login(&server).await;
    let page = server
        .get("/_/")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("/_/app.js") && !html.contains("https://"));
    let script = server.get("/_/app.js").send().await.unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(!script.text().await.unwrap().contains("https://"));
    server.stop().await;
}

async fn dashboard_get(server: &TestServer, path: &str) -> Value {
    let (status, body) = send_json(
        server
            .get(path)
            .header("authorization", bearer(ADMIN_TOKEN)),
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn dashboard_post(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, answer) = send_json(
        server
            .post(path)
            .header("authorization", bearer(ADMIN_TOKEN))
            .body(body.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

#[tokio::test]
async fn denials_name_their_rule_and_sign_out_revokes_sessions() {
    let server = start().await;
    dashboard_post(
        &server,
        "/_/api/database/collections",
        json!({"env": ENV, "name": "notes", "rules": {"read": "doc._openid == auth.openid", "write": false}}),
    )
    .await;
    // Custom rules are validated.
    let (status, bad) = send_json(
        server
            .post("/_/api/database/rules")
            .header("authorization", bearer(ADMIN_TOKEN))
            .body(json!({"env": ENV, "name": "notes", "rules": {"read": "doc.x =="}}).to_string()),
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    let credentials = server.sign_in(ENV, "dashboard-device-01").await;
    let token = credentials["access_token"].clone();
    let denied = server
        .web(
            ENV,
            json!({"action": "database.queryDocument", "collectionName": "notes", "query": {}, "access_token": token}),
        )
        .await;
    assert_eq!(denied["code"], "DATABASE_PERMISSION_DENIED");

    let mut rule = Value::Null;
    for _ in 0..50 {
        let log = dashboard_get(&server, "/_/api/requests?errors=1").await;
        rule = log["requests"][0]["rule"].clone();
        if !rule.is_null() {
            assert_eq!(log["requests"][0]["action"], "database.queryDocument");
            assert_eq!(log["requests"][0]["uid"], credentials["sub"]);
            assert_eq!(log["requests"][0]["target"], "notes");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rule, "notes: \"read\": \"doc._openid == auth.openid\"");

    let users = dashboard_get(&server, "/_/api/users").await;
    assert_eq!(users["users"][0]["uid"], credentials["sub"]);
    assert_eq!(users["users"][0]["devices"], json!(["dashboard-device-01"]));
    assert!(users["users"][0]["openid"]
        .as_str()
        .unwrap()
        .starts_with('o'));
    let signed_out = dashboard_post(
        &server,
        "/_/api/users/sign-out",
        json!({"env": ENV, "uid": credentials["sub"]}),
    )
    .await;
    assert_eq!(signed_out["revokedSessions"], 1);
    let refused = server
        .web(
            ENV,
            json!({"action": "auth.getUserInfo", "access_token": token}),
        )
        .await;
    assert_eq!(refused["code"], "CHECK_LOGIN_FAILED");
    server.stop().await;
}

#[tokio::test]
async fn function_calls_keep_their_console_output() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        &dir,
        "chatty",
        "exports.main = async (event) => { console.log('got', event.n); console.error('oops %d', 7); \
         if (event.fail) throw new Error('asked to fail'); return { n: event.n }; };",
    );
    let mut config = config_in(&dir);
    config.env = Some(ENV.to_string());
    config.admin_token = ADMIN_TOKEN.to_string();
    let server = start_in(dir, config).await;
    let ran = dashboard_post(
        &server,
        "/_/api/functions/run",
        json!({"env": ENV, "name": "chatty", "event": {"n": 5}}),
    )
    .await;
    assert_eq!(ran["result"], json!({"n": 5}));
    let token = server.access_token(ENV).await;
    let failed = server
        .invoke(ENV, &token, "chatty", json!({"n": 6, "fail": true}))
        .await;
    assert_eq!(failed["code"], "FUNCTIONS_EXECUTE_FAIL");

    let calls = dashboard_get(&server, "/_/api/functions/invocations?function=chatty").await;
    let calls = calls["invocations"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let (last, first) = (&calls[0], &calls[1]);
    assert_eq!(first["status"], "ok");
    assert_eq!(first["result"], "{\"n\":5}");
    assert_eq!(
        first["logs"],
        json!([{"level": "log", "text": "got 5"}, {"level": "error", "text": "oops 7"}])
    );
    assert_eq!(last["status"], "error");
    assert!(last["error"].as_str().unwrap().contains("asked to fail"));
    assert_eq!(last["logs"][0]["text"], "got 6");
    assert!(last["openid"].as_str().unwrap().starts_with('o'));
    assert!(last["duration_ms"].as_f64().unwrap() > 0.0);
    let functions = dashboard_get(&server, "/_/api/functions").await;
    assert_eq!(functions["functions"][0]["name"], "chatty");
    assert_eq!(functions["functions"][0]["calls"], 2);
    assert_eq!(functions["functions"][0]["errors"], 1);
    server.stop().await;
}

#[tokio::test]
async fn documents_and_files_round_trip_through_the_api() {
    let server = start().await;
    dashboard_post(
        &server,
        "/_/api/database/collections",
        json!({"env": ENV, "name": "todos"}),
    )
    .await;
    let added = dashboard_post(
        &server,
        "/_/api/database/documents",
        json!({"env": ENV, "collection": "todos", "document": {"title": "a", "due": {"$date": "2026-01-02T03:04:05.006Z"}}}),
    )
    .await;
    let id = added["_id"].clone();
    let (status, _) = send_json(
        server
            .request(reqwest::Method::PUT, "/_/api/database/documents")
            .header("authorization", bearer(ADMIN_TOKEN))
            .body(json!({"env": ENV, "collection": "todos", "id": id, "document": {"_id": id, "title": "b", "due": {"$date": "2026-01-02T03:04:05.006Z"}}}).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let page = dashboard_get(
        &server,
        &format!("/_/api/database/documents?env={ENV}&collection=todos&where=%7B%22title%22%3A%22b%22%7D"),
    )
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(
        page["documents"][0]["due"],
        json!({"$date": 1767323045006i64})
    );

    let export = server
        .get(&format!(
            "/_/api/database/export?env={ENV}&collection=todos"
        ))
        .header("authorization", bearer(ADMIN_TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(export.lines().count(), 1);
    let imported = server
        .post(&format!("/_/api/database/import?env={ENV}&collection=copy"))
        .header("authorization", bearer(ADMIN_TOKEN))
        .body(export)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    let copy = dashboard_get(
        &server,
        &format!("/_/api/database/documents?env={ENV}&collection=copy"),
    )
    .await;
    assert_eq!(copy["documents"], page["documents"]);

    // A page served from storage never runs in the dashboard's origin.
    for (path, body) in [
        ("a/page.html", "<script>alert(1)</script>"),
        ("a/note.txt", "hello"),
    ] {
        let response = server
            .post(&format!("/_/api/storage/file?env={ENV}&path={path}"))
            .header("authorization", bearer(ADMIN_TOKEN))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let html = server
        .get(&format!("/_/api/storage/file?env={ENV}&path=a/page.html"))
        .header("authorization", bearer(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert!(html.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    let text = server
        .get(&format!("/_/api/storage/file?env={ENV}&path=a/note.txt"))
        .header("authorization", bearer(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(text.text().await.unwrap(), "hello");
    let files = dashboard_get(
        &server,
        &format!("/_/api/storage/files?env={ENV}&prefix=a/"),
    )
    .await;
    assert_eq!(files["files"].as_array().unwrap().len(), 2);
    assert_eq!(files["rule"], "creator_write");

    // Deletes: a file, a document, a whole collection.
    let delete = |path: String| {
        server
            .request(reqwest::Method::DELETE, &path)
            .header("authorization", bearer(ADMIN_TOKEN))
            .send()
    };
    assert_eq!(
        delete(format!("/_/api/storage/file?env={ENV}&path=a/note.txt"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        delete(format!("/_/api/storage/file?env={ENV}&path=a/note.txt"))
            .await
            .unwrap()
            .status(),
        404
    );
    let id_param =
        percent_encoding::utf8_percent_encode(&id.to_string(), percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let deleted = delete(format!(
        "/_/api/database/documents?env={ENV}&collection=todos&id={id_param}"
    ))
    .await
    .unwrap();
    assert_eq!(deleted.json::<Value>().await.unwrap()["deleted"], 1);
    assert_eq!(
        delete(format!("/_/api/database/collections?env={ENV}&name=copy"))
            .await
            .unwrap()
            .status(),
        200
    );
    let left = dashboard_get(&server, &format!("/_/api/database/collections?env={ENV}")).await;
    assert_eq!(
        left["collections"],
        json!([{"name": "todos", "rules": "PRIVATE", "indexes": [], "count": 0}])
    );
    let files = dashboard_get(
        &server,
        &format!("/_/api/storage/files?env={ENV}&prefix=a/"),
    )
    .await;
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    server.stop().await;
}
