//! The server: shared state, the router, and the library entry points [`serve`] and [`start`].

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use cloud_protocol::codes;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;

use crate::auth::tokens::TokenSigner;
use crate::config::Config;
use crate::database::Database;
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions::FunctionsRuntime;
use crate::storage::Storage;
use crate::{auth, container, functions_api, secret, security, storage, web};

/// How long a stopping server waits for open requests before it stops anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    config: Config,
    port: u16,
    signer: TokenSigner,
    functions: FunctionsRuntime,
    storage: Storage,
    database: Database,
}

/// Whether `env` is a plausible env id (letters, digits, `-`, `_`; at most 64).
pub fn valid_env_id(env: &str) -> bool {
    !env.is_empty()
        && env.len() <= 64
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AppState {
    /// State for a server on `port`: loads (or creates) the token secret in the data dir and sets up
    /// the functions runtime.
    pub fn new(config: Config, port: u16) -> io::Result<AppState> {
        let functions = FunctionsRuntime::new(config.functions_dir.clone());
        AppState::with_functions(config, port, functions)
    }

    /// Like [`AppState::new`] with a functions runtime built by the caller.
    pub fn with_functions(
        config: Config,
        port: u16,
        functions: FunctionsRuntime,
    ) -> io::Result<AppState> {
        let secret = secret::load_or_create(&config.data_dir)?;
        let storage = Storage::open(&config)?;
        let database = Database::open(&config)?;
        functions.set_worker_env(crate::database::service::worker_env(&config, port)?);
        Ok(AppState {
            inner: Arc::new(StateInner {
                config,
                port,
                signer: TokenSigner::new(secret),
                functions,
                storage,
                database,
            }),
        })
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Issues and checks tokens.
    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    /// The cloud functions runtime.
    pub fn functions(&self) -> &FunctionsRuntime {
        &self.inner.functions
    }

    /// The object store and its rules.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The document database.
    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// The env a request is on: the one it names (which must be valid and match `--env`), else the pinned one.
    pub fn check_env(&self, env: Option<&str>) -> Result<String, ApiError> {
        let env = env.map(str::trim).filter(|env| !env.is_empty());
        match (env, &self.config().env) {
            (None, Some(pinned)) => Ok(pinned.clone()),
            (None, None) => Err(ApiError::new(
                codes::INVALID_ENV,
                "missing env id (?env= on /web, ?client_id= on /auth/v1)",
            )),
            (Some(env), _) if !valid_env_id(env) => Err(ApiError::new(
                codes::INVALID_ENV,
                format!("invalid env id {env:?}"),
            )),
            (Some(env), Some(pinned)) if env != pinned => Err(ApiError::new(
                codes::INVALID_ENV,
                format!("Environment not found: {env} (this emulator serves env {pinned})"),
            )),
            (Some(env), _) => Ok(env.to_string()),
        }
    }
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let body =
        ApiError::new(codes::SYS_ERR, "internal error in the emulator").body(&new_request_id());
    json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
}

async fn not_found(request: Request) -> Response {
    let body = ApiError::new(
        codes::RESOURCE_NOT_FOUND,
        format!("no route for {}", request.uri().path()),
    )
    .body(&new_request_id());
    json_response(StatusCode::NOT_FOUND, &body)
}

/// The complete router: `/web`, `/auth/v1/*`, `/v1/functions/*`, `/v1/cloudrun/*` (callContainer),
/// `/v1/storages/*`, `/cos/*` (objects),
/// static hosting, with CORS and the Host check around everything.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/web", post(web::web))
        .merge(auth::oauth::routes())
        .merge(functions_api::routes())
        .merge(container::routes(&state))
        .merge(storage::routes())
        .merge(crate::database::admin::routes());
    app = match &state.config().hosting_dir {
        Some(dir) => {
            app.fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
        }
        None => app.fallback(not_found),
    };
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        security::cors,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        security::check_host,
    ))
    // A bug in a handler answers 500 instead of dropping the connection.
    .layer(CatchPanicLayer::custom(panic_response))
    .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then drains open requests (for a few
/// seconds at most) and stops the functions runtime.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    });
    let mut graceful_rx = stopping_rx.clone();
    let mut grace_rx = stopping_rx;
    // No Nagle delay: a streamed response (callContainer's proxy, downloads) is written as headers, then
    // body chunks; with Nagle the second write waits for the client's delayed ACK (~40 ms per call).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(async move {
        let _ = graceful_rx.wait_for(|stopping| *stopping).await;
    });
    let result = tokio::select! {
        result = server => result,
        _ = async {
            if grace_rx.wait_for(|stopping| *stopping).await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            eprintln!("cloud-emulator: requests still open after {SHUTDOWN_GRACE:?}; stopping anyway");
            Ok(())
        }
    };
    signal.abort();
    state.functions().shutdown().await;
    if let Err(err) = state.database().export_on_exit() {
        eprintln!("cloud-emulator: --export-on-exit failed: {err}");
    }
    result
}

/// A server running in the background (see [`start`]).
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:40123` (loopback for a server bound to all interfaces).
    pub fn url(&self) -> String {
        let port = self.addr.port();
        match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{port}"),
            IpAddr::V6(ip) if ip.is_unspecified() => format!("http://[::1]:{port}"),
            IpAddr::V4(ip) => format!("http://{ip}:{port}"),
            IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
        }
    }

    /// Stops it gracefully and waits until it has stopped.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(err) => Err(io::Error::other(format!("server task failed: {err}"))),
        }
    }
}

/// Binds `config.host:config.port` and serves in a background task.
pub async fn start(config: Config) -> io::Result<RunningServer> {
    if let Some(dir) = &config.hosting_dir {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("--hosting {} is not a directory", dir.display()),
            ));
        }
    }
    if let Some(env) = &config.env {
        if !valid_env_id(env) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--env {env:?} is not a valid env id"),
            ));
        }
    }
    let host = config
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let listener = TcpListener::bind((host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config, addr.port())?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    Ok(RunningServer {
        addr,
        stop: Some(stop_tx),
        task,
    })
}
