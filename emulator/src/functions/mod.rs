//! Cloud functions: `<functions dir>/<name>/index.js` run in warm Node.js worker processes.
//!
//! The HTTP layer calls [`FunctionsRuntime::invoke`] and maps an [`InvokeError`] to the CloudBase
//! string code and message with [`InvokeError::code`] and [`InvokeError::message`].
//!
//! How a call runs:
//! * the name must match `^[A-Za-z0-9_-]{1,60}$`; the folder is read afresh on every call (`resolve`):
//!   package.json `main` or index.js, config.json `timeout` (default 3 s) and `envVariables`, and a
//!   fingerprint of the code's sizes and mtimes; a new fingerprint retires the function's warm workers;
//! * each function has a pool of at most `max_workers_per_function` workers (`worker`), one call at a
//!   time each; further calls queue in FIFO order;
//! * the time limit counts from when the function's code is loaded: a cold start's `require`s (the real
//!   wx-server-sdk takes about a second) are the platform's init phase, bounded separately (30 s);
//! * a timeout or a crash kills the worker and the next call starts a fresh one; a throw, a rejection or
//!   a non-JSON result leaves it warm; workers idle past `idle_timeout` are stopped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use cloud_protocol::codes;
use tokio::sync::{watch, Semaphore};

pub mod invocations;
mod resolve;
mod worker;

use invocations::{ConsoleLine, Invocation, InvocationLog};
pub use resolve::is_valid_name;
use resolve::FunctionSpec;
use worker::{CallOutcome, SpawnConfig, Worker};

/// Who calls and on which env; becomes `event.userInfo` and the `context` argument.
#[derive(Debug, Clone)]
pub struct InvokeContext {
    /// The request id reported to the caller and given to the function as `context.request_id`.
    pub request_id: String,
    /// The env id the call was made on.
    pub env: String,
    /// The caller's openid (`event.userInfo.openId`).
    pub openid: String,
    /// The app id (`event.userInfo.appId`).
    pub appid: String,
}

/// Why an invocation produced no result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No function of that name (or the name is not a valid function name).
    #[error("FunctionName parameter could not be found.")]
    NotFound,
    /// The function threw or rejected: its message and stack.
    #[error("{0}")]
    Threw(String),
    /// The function ran past its time limit and its worker was killed.
    #[error("Task timed out after {0:.2} seconds")]
    Timeout(f64),
    /// The worker process died during the call (exit, crash, out of memory).
    #[error("{0}")]
    Crashed(String),
    /// The function returned a value that cannot be sent as JSON.
    #[error("{0}")]
    NonJson(String),
    /// The runtime could not start a worker (node missing, spawn failure).
    #[error("{0}")]
    Runtime(String),
}

impl InvokeError {
    /// The CloudBase string code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::NotFound => codes::FUNCTION_NOT_FOUND,
            InvokeError::Runtime(_) => codes::FUNCTIONS_REQUEST_FAIL,
            _ => codes::FUNCTIONS_EXECUTE_FAIL,
        }
    }

    /// The message sent to the caller with [`InvokeError::code`].
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Tuning of a [`FunctionsRuntime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Warm workers per function; calls beyond that wait in a FIFO queue. Default 4.
    pub max_workers_per_function: usize,
    /// The Node.js binary; `None` finds `node` on PATH.
    pub node_binary: Option<PathBuf>,
    /// `context.memory_limit_in_mb`, also the worker's V8 heap limit (`--max-old-space-size`). Default 256.
    pub memory_limit_mb: u32,
    /// Forward the functions' console output to the emulator's stderr, prefixed `[fn <name>]`. Default on.
    pub log_output: bool,
    /// Warm workers unused for this long are stopped; `None` keeps them until shutdown. Default 10 minutes.
    pub idle_timeout: Option<Duration>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            max_workers_per_function: 4,
            node_binary: None,
            memory_limit_mb: 256,
            log_output: true,
            idle_timeout: Some(Duration::from_secs(600)),
        }
    }
}

/// Runs the cloud functions of one folder in warm Node.js workers; cheap to clone (shared inside).
#[derive(Clone)]
pub struct FunctionsRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    functions_dir: PathBuf,
    options: RuntimeOptions,
    /// The Node binary, or why there is none.
    node: Result<PathBuf, String>,
    pools: Mutex<HashMap<String, Arc<FunctionPool>>>,
    shutdown: watch::Sender<bool>,
    /// Whether the idle-worker reaper task runs (started by the first call, inside the Tokio runtime).
    reaper_started: AtomicBool,
    /// Extra environment of every call (what `wx-server-sdk` needs to reach the emulator's `/admin`).
    worker_env: Mutex<Vec<(String, String)>>,
    /// The calls in progress by request id (`TCB_SEQID`), so requests a function makes can be traced
    /// back to the invocation (and the user) they come from.
    running: Mutex<HashMap<String, InvokeContext>>,
    invocations: InvocationLog,
}

/// The workers of one function: at most `max_workers_per_function` exist, idle ones wait in `idle`.
struct FunctionPool {
    permits: Arc<Semaphore>,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// Fingerprint of the code the current generation runs.
    fingerprint: Option<u64>,
    /// Bumped when the code changes; workers of older generations are retired.
    generation: u64,
    idle: Vec<Worker>,
}

impl FunctionPool {
    /// Records the code version seen by a call and returns its generation; a change retires idle workers.
    fn observe(&self, fingerprint: u64) -> (u64, Vec<Worker>) {
        let mut state = lock(&self.state);
        if state.fingerprint == Some(fingerprint) {
            return (state.generation, Vec::new());
        }
        let retired = if state.fingerprint.is_some() {
            state.generation += 1;
            std::mem::take(&mut state.idle)
        } else {
            Vec::new()
        };
        state.fingerprint = Some(fingerprint);
        (state.generation, retired)
    }

    /// An idle worker of `generation` that is still alive, if any.
    fn take_idle(&self, generation: u64) -> (Option<Worker>, Vec<Worker>) {
        let mut state = lock(&self.state);
        let mut dead = Vec::new();
        while let Some(mut worker) = state.idle.pop() {
            if worker.generation == generation && !worker.has_exited() {
                return (Some(worker), dead);
            }
            dead.push(worker);
        }
        (None, dead)
    }

    /// Puts a worker back for the next call, unless its code has changed since; else hands it back.
    fn give_back(&self, mut worker: Worker) -> Option<Worker> {
        let mut state = lock(&self.state);
        if worker.generation == state.generation {
            worker.idle_since = Instant::now();
            state.idle.push(worker);
            None
        } else {
            Some(worker)
        }
    }

    /// Takes out the workers idle for longer than `limit`.
    fn expire_idle(&self, limit: Duration) -> Vec<Worker> {
        let mut state = lock(&self.state);
        let (expired, kept) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|worker| worker.idle_since.elapsed() > limit);
        state.idle = kept;
        expired
    }

    fn drain(&self) -> Vec<Worker> {
        std::mem::take(&mut lock(&self.state).idle)
    }
}

/// A poisoned lock only means another call panicked; the pool data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills retired workers without holding up the call that retired them.
fn retire(workers: Vec<Worker>) {
    if workers.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for mut worker in workers {
            worker.kill().await;
        }
    });
}

impl FunctionsRuntime {
    /// A runtime for the functions in `functions_dir`, with default options.
    pub fn new(functions_dir: PathBuf) -> FunctionsRuntime {
        FunctionsRuntime::with_options(functions_dir, RuntimeOptions::default())
    }

    /// A runtime with explicit options (pool size, Node binary, memory limit, logging).
    pub fn with_options(functions_dir: PathBuf, options: RuntimeOptions) -> FunctionsRuntime {
        // Workers run in the function's own folder, so every path handed to them must be absolute.
        let functions_dir = std::path::absolute(&functions_dir).unwrap_or(functions_dir);
        let node = match &options.node_binary {
            Some(path) => Ok(path.clone()),
            None => worker::find_node().ok_or_else(|| {
                "Node.js was not found on PATH: install Node.js (node) to run cloud functions"
                    .to_owned()
            }),
        };
        let (shutdown, _) = watch::channel(false);
        FunctionsRuntime {
            inner: Arc::new(Inner {
                functions_dir,
                options,
                node,
                pools: Mutex::new(HashMap::new()),
                shutdown,
                reaper_started: AtomicBool::new(false),
                worker_env: Mutex::new(Vec::new()),
                running: Mutex::new(HashMap::new()),
                invocations: InvocationLog::default(),
            }),
        }
    }

    /// Sets extra environment variables every call sees (replacing earlier ones).
    pub fn set_worker_env(&self, vars: Vec<(String, String)>) {
        *lock(&self.inner.worker_env) = vars;
    }

    /// The context of the call in progress whose request id (`TCB_SEQID`) is `request_id`.
    pub fn running_call(&self, request_id: &str) -> Option<InvokeContext> {
        lock(&self.inner.running).get(request_id).cloned()
    }

    /// The folder the functions are read from.
    pub fn functions_dir(&self) -> &std::path::Path {
        &self.inner.functions_dir
    }

    /// Calls function `name` with `data` (the event; a non-object becomes `{}`) on behalf of `ctx`.
    ///
    /// Returns the JSON text of the return value (`undefined` gives `"null"`). Every call of an
    /// existing function is recorded in [`FunctionsRuntime::invocations`] with its console output.
    pub async fn invoke(
        &self,
        name: &str,
        data: serde_json::Value,
        ctx: &InvokeContext,
    ) -> Result<String, InvokeError> {
        let started_at = invocations::now_ms();
        let started = Instant::now();
        let event = invocations::truncate(&data.to_string(), invocations::MAX_TEXT_BYTES);
        let mut logs = Vec::new();
        let result = self.invoke_collecting(name, data, ctx, &mut logs).await;
        if !matches!(result, Err(InvokeError::NotFound)) {
            let cut = |text: &str| invocations::truncate(text, invocations::MAX_TEXT_BYTES);
            self.inner.invocations.record(Invocation {
                id: 0,
                function: name.to_owned(),
                env: ctx.env.clone(),
                request_id: ctx.request_id.clone(),
                openid: ctx.openid.clone(),
                started: started_at,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                status: if result.is_ok() { "ok" } else { "error" },
                event,
                result: result.as_ref().ok().map(|text| cut(text)),
                error_code: result.as_ref().err().map(InvokeError::code),
                error: result.as_ref().err().map(|err| cut(&err.message())),
                logs,
            });
        }
        result
    }

    /// The recent calls, for the dashboard.
    pub fn invocations(&self) -> &InvocationLog {
        &self.inner.invocations
    }

    async fn invoke_collecting(
        &self,
        name: &str,
        data: serde_json::Value,
        ctx: &InvokeContext,
        logs: &mut Vec<ConsoleLine>,
    ) -> Result<String, InvokeError> {
        let mut shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return Err(shut_down());
        }
        if !is_valid_name(name) {
            return Err(InvokeError::NotFound);
        }
        let dir = self.inner.functions_dir.join(name);
        let spec = tokio::task::spawn_blocking(move || resolve::load(&dir))
            .await
            .map_err(|err| InvokeError::Runtime(format!("reading the function failed: {err}")))?;
        let Some(spec) = spec else {
            if let Some(pool) = lock(&self.inner.pools).remove(name) {
                retire(pool.drain());
            }
            return Err(InvokeError::NotFound);
        };
        let node = self.inner.node.clone().map_err(InvokeError::Runtime)?;
        self.start_reaper();

        let pool = self.pool(name);
        let (generation, retired) = pool.observe(spec.fingerprint);
        retire(retired);

        let permit = tokio::select! {
            permit = Arc::clone(&pool.permits).acquire_owned() => {
                permit.map_err(|_| shut_down())?
            }
            _ = until_shut_down(&mut shutdown) => return Err(shut_down()),
        };
        let (idle, dead) = pool.take_idle(generation);
        retire(dead);
        let mut worker = match idle {
            Some(worker) => worker,
            None => {
                let config = SpawnConfig {
                    node,
                    memory_limit_mb: self.inner.options.memory_limit_mb,
                    log_output: self.inner.options.log_output,
                };
                Worker::spawn(&config, name, &spec, generation)
                    .await
                    .map_err(InvokeError::Runtime)?
            }
        };

        let request = self.request(name, data, ctx, &spec);
        let limit = Duration::from_secs_f64(spec.timeout_secs);
        let running = RunningCall::register(&self.inner, ctx);
        let outcome = tokio::select! {
            outcome = worker.call(request, limit) => {
                *logs = worker.take_logs();
                outcome
            }
            _ = until_shut_down(&mut shutdown) => {
                worker.kill().await;
                return Err(shut_down());
            }
        };
        drop(running);
        if outcome.keeps_worker() && !*shutdown.borrow() {
            if let Some(stale) = pool.give_back(worker) {
                retire(vec![stale]);
            }
        } else {
            worker.kill().await;
        }
        drop(permit);

        match outcome {
            CallOutcome::Ok(text) => Ok(text),
            CallOutcome::Threw(message) => Err(InvokeError::Threw(message)),
            CallOutcome::NonJson(message) => Err(InvokeError::NonJson(message)),
            CallOutcome::TimedOut => Err(InvokeError::Timeout(spec.timeout_secs)),
            CallOutcome::Crashed(message) => Err(InvokeError::Crashed(message)),
        }
    }

    /// Stops every worker; calls in flight fail with [`InvokeError::Runtime`], later calls too.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let pools: Vec<Arc<FunctionPool>> =
            lock(&self.inner.pools).drain().map(|(_, p)| p).collect();
        for pool in pools {
            pool.permits.close();
            for mut worker in pool.drain() {
                worker.kill().await;
            }
        }
    }

    /// Starts the task that stops workers idle past `idle_timeout`; it ends with the runtime.
    fn start_reaper(&self) {
        let Some(limit) = self.inner.options.idle_timeout else {
            return;
        };
        if self.inner.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let runtime: Weak<Inner> = Arc::downgrade(&self.inner);
        let period = (limit / 2).clamp(Duration::from_millis(50), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let Some(inner) = runtime.upgrade() else {
                    return;
                };
                if *inner.shutdown.borrow() {
                    return;
                }
                let pools: Vec<Arc<FunctionPool>> = lock(&inner.pools).values().cloned().collect();
                drop(inner);
                for pool in pools {
                    retire(pool.expire_idle(limit));
                }
            }
        });
    }

    fn pool(&self, name: &str) -> Arc<FunctionPool> {
        let mut pools = lock(&self.inner.pools);
        let pool = pools.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(FunctionPool {
                permits: Arc::new(Semaphore::new(
                    self.inner.options.max_workers_per_function.max(1),
                )),
                state: Mutex::new(PoolState::default()),
            })
        });
        Arc::clone(pool)
    }

    /// The request line for the worker: `event`, `context`, and the per-call environment.
    fn request(
        &self,
        name: &str,
        data: serde_json::Value,
        ctx: &InvokeContext,
        spec: &FunctionSpec,
    ) -> serde_json::Value {
        let mut event = match data {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        event.insert(
            "userInfo".to_owned(),
            serde_json::json!({ "appId": ctx.appid, "openId": ctx.openid }),
        );
        let context = serde_json::json!({
            "request_id": ctx.request_id,
            "function_name": name,
            "namespace": ctx.env,
            "function_version": "$LATEST",
            "memory_limit_in_mb": self.inner.options.memory_limit_mb,
            "time_limit_in_ms": (spec.timeout_secs * 1000.0).round() as u64,
        });
        // What a WeChat cloud function's environment holds per call: wx-server-sdk reads
        // DYNAMIC_CURRENT_ENV and getWXContext() from it, node-sdk the seqId prefix and source.
        let mut env = serde_json::json!({
            "TCB_ENV": ctx.env,
            "SCF_NAMESPACE": ctx.env,
            "TCB_SEQID": ctx.request_id,
            "TCB_SOURCE": "wx_client",
            "TCB_CONTEXT_KEYS": "TCB_ENV,TCB_SEQID,TCB_SOURCE",
            "WX_OPENID": ctx.openid,
            "WX_APPID": ctx.appid,
            "WX_UNIONID": "",
            "WX_CLIENTIP": "",
            "WX_CLIENTIPV6": "",
            "WX_CONTEXT_KEYS": "WX_OPENID,WX_APPID,WX_UNIONID,WX_CLIENTIP,WX_CLIENTIPV6",
        });
        for (key, value) in lock(&self.inner.worker_env).iter() {
            env[key.as_str()] = serde_json::Value::String(value.clone());
        }
        serde_json::json!({ "event": event, "context": context, "env": env })
    }
}

/// A call listed in the runtime's running calls for as long as it lives.
struct RunningCall<'a> {
    inner: &'a Inner,
    request_id: String,
}

impl<'a> RunningCall<'a> {
    fn register(inner: &'a Inner, ctx: &InvokeContext) -> RunningCall<'a> {
        lock(&inner.running).insert(ctx.request_id.clone(), ctx.clone());
        RunningCall {
            inner,
            request_id: ctx.request_id.clone(),
        }
    }
}

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        lock(&self.inner.running).remove(&self.request_id);
    }
}

/// Resolves once [`FunctionsRuntime::shutdown`] has been called (never holding the non-Send watch guard).
async fn until_shut_down(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn shut_down() -> InvokeError {
    InvokeError::Runtime("the functions runtime has shut down".to_owned())
}
