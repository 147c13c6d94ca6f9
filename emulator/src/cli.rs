//! The `cloud-emulator` command line: `start` and `exec`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitStatus;

use clap::{Args, Parser, Subcommand};
use tokio::process::Command as ChildCommand;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{Config, DEFAULT_PORT, DEFAULT_TOKEN_TTL_SECS};
use crate::container::{parse_container_arg, ContainerTarget};
use crate::security::validate_origin;
use crate::server::{start, RunningServer};
use crate::storage::rules::parse_rule_arg;
use crate::storage::{DEFAULT_MAX_UPLOAD_BYTES, RULES_FILE};
use cloud_protocol::limits::CONTAINER_TIMEOUT_SECS;

/// A local server speaking the CloudBase web protocol (functions, auth, hosting).
#[derive(Debug, Parser)]
#[command(name = "cloud-emulator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the emulator and serve until SIGINT/SIGTERM.
    Start(ServerArgs),
    /// Start the emulator on a free port, run a command with CLOUD_EMULATOR_URL set, stop, and exit
    /// with the command's exit code.
    Exec {
        #[command(flatten)]
        server: ServerArgs,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Port to listen on (`start`: 8787 when not given; 0 picks a free one). `exec` always picks a
    /// free one.
    #[arg(long)]
    port: Option<u16>,
    /// Where the emulator keeps its state; created if missing.
    #[arg(long, default_value = ".emulator-data")]
    data_dir: PathBuf,
    /// Folder of cloud functions (`<name>/index.js`).
    #[arg(long, default_value = "cloudfunctions")]
    functions: PathBuf,
    /// Serve static files from this folder on the same port.
    #[arg(long)]
    hosting: Option<PathBuf>,
    /// Accept this env id only (others get INVALID_ENV).
    #[arg(long)]
    env: Option<String>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Extra CORS origin (repeatable), e.g. https://example.com:8443, or * for any.
    #[arg(long = "allow-origin")]
    allow_origins: Vec<String>,
    /// Access token lifetime, in seconds.
    #[arg(long = "token-ttl", default_value_t = DEFAULT_TOKEN_TTL_SECS)]
    token_ttl: u64,
    /// Largest upload accepted, in bytes (52428800 = 50 MiB).
    #[arg(long = "max-upload-bytes", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// Storage permission rule of an env, ENV=RULE (repeatable; * for every other env). RULE is
    /// all_write, creator_write (default: everyone reads, the creator writes), read_only or private.
    /// Overrides <data-dir>/storage-rules.json.
    #[arg(long = "storage-rule", value_parser = parse_rule_arg)]
    storage_rules: Vec<(String, crate::storage::StorageRule)>,
    /// Load DIR/database/<collection>.json (JSON Lines) and <collection>.rules.json at start (needs --env).
    #[arg(long = "import", value_name = "DIR")]
    import: Option<PathBuf>,
    /// Write the database to DIR/database/ in the --import layout on clean shutdown (needs --env).
    #[arg(long = "export-on-exit", value_name = "DIR")]
    export_on_exit: Option<PathBuf>,
    /// Bound of each realtime (watch) socket's send queue, in bytes; a client reading slower is
    /// disconnected with close code 1013 and resumes its watches.
    #[arg(long = "ws-send-queue-bytes", default_value_t = crate::realtime::DEFAULT_SEND_QUEUE_BYTES)]
    ws_send_queue_bytes: usize,
    /// The wx-server-sdk package folder for functions without their own node_modules/wx-server-sdk
    /// (default: $CLOUD_EMULATOR_WX_SERVER_SDK_DIR, else the pinned 4.0.2 that scripts/setup.sh installs).
    #[arg(long = "wx-server-sdk", value_name = "DIR")]
    wx_server_sdk: Option<PathBuf>,
    /// A service for callContainer, NAME=URL (repeatable): /v1/cloudrun/NAME/PATH is proxied to URL/PATH,
    /// e.g. --container api=http://127.0.0.1:3000 (your own service, started as you usually start it).
    #[arg(long = "container", value_name = "NAME=URL", value_parser = parse_container_arg)]
    containers: Vec<(String, ContainerTarget)>,
    /// How long callContainer waits for a service's response headers, in seconds.
    #[arg(long = "container-timeout", value_name = "SECS", default_value_t = CONTAINER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    container_timeout: u64,
}

impl ServerArgs {
    fn into_config(self) -> Result<Config, String> {
        for origin in &self.allow_origins {
            validate_origin(origin)?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (name, _) in &self.containers {
            if !names.insert(name) {
                return Err(format!("--container {name}=… is given twice"));
            }
        }
        if (self.import.is_some() || self.export_on_exit.is_some()) && self.env.is_none() {
            return Err(
                "--import and --export-on-exit need --env (the env the collections belong to)"
                    .into(),
            );
        }
        Ok(Config {
            host: self.host,
            port: self.port.unwrap_or(DEFAULT_PORT),
            data_dir: self.data_dir,
            functions_dir: self.functions,
            hosting_dir: self.hosting,
            env: self.env,
            allow_origins: self.allow_origins,
            token_ttl_secs: self.token_ttl,
            max_upload_bytes: self.max_upload_bytes,
            storage_rules: self.storage_rules.into_iter().collect(),
            upload_grant_ttl_secs: crate::storage::UPLOAD_GRANT_TTL_SECS,
            admin_token: crate::config::new_admin_token(),
            import_dir: self.import,
            export_on_exit: self.export_on_exit,
            ws_send_queue_bytes: self.ws_send_queue_bytes,
            wx_server_sdk: self.wx_server_sdk,
            containers: self.containers.into_iter().collect(),
            container_timeout_secs: self.container_timeout,
        })
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cloud-emulator: cannot start the async runtime: {err}");
            return 1;
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Start(args) => run_start(args).await,
            Command::Exec { server, command } => run_exec(server, command).await,
        };
        result.unwrap_or_else(|err| {
            eprintln!("cloud-emulator: {err}");
            1
        })
    });
    // Do not wait for stray blocking tasks (a function worker being reaped, say).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

fn describe_start(config: &Config, server: &RunningServer) {
    eprintln!("cloud-emulator: data dir {}", config.data_dir.display());
    if config.functions_dir.is_dir() {
        eprintln!(
            "cloud-emulator: functions from {}",
            config.functions_dir.display()
        );
    } else {
        eprintln!(
            "cloud-emulator: functions dir {} does not exist; calls will answer FUNCTION_NOT_FOUND",
            config.functions_dir.display()
        );
    }
    let sdk = crate::admin::pinned_sdk_dir(config);
    if sdk.join("package.json").is_file() {
        eprintln!(
            "cloud-emulator: functions without their own node_modules/wx-server-sdk get {} (admin protocol on /admin)",
            sdk.display()
        );
    } else {
        eprintln!(
            "cloud-emulator: no wx-server-sdk at {}: functions need their own node_modules/wx-server-sdk \
             (scripts/setup.sh installs the pinned {}; or --wx-server-sdk DIR)",
            sdk.display(),
            crate::admin::WX_SERVER_SDK_VERSION
        );
    }
    if let Some(dir) = &config.hosting_dir {
        eprintln!(
            "cloud-emulator: hosting {} at {}/",
            dir.display(),
            server.url()
        );
    }
    eprintln!(
        "cloud-emulator: storage in {}/blobs (uploads up to {} bytes; rules: {}, --storage-rule)",
        config.data_dir.display(),
        config.max_upload_bytes,
        config.data_dir.join(RULES_FILE).display(),
    );
    eprintln!(
        "cloud-emulator: database in {} (admin endpoint /admin/v1/*)",
        config
            .data_dir
            .join(crate::database::store::DATABASE_FILE)
            .display()
    );
    for line in crate::container::describe(&config.containers) {
        eprintln!("{line}");
    }
    eprintln!(
        "cloud-emulator: realtime watch on {}/ws (auth.wsWebSign; send queue {} bytes per socket)",
        server.url().replacen("http", "ws", 1),
        config.ws_send_queue_bytes
    );
    eprintln!("admin token: {}", config.admin_token);
    match &config.env {
        Some(env) => eprintln!("cloud-emulator: env {env} only"),
        None => eprintln!("cloud-emulator: any env id accepted"),
    }
    let url = server.url();
    match server.dashboard_login_url() {
        Some(login) => eprintln!(
            "cloud-emulator: dashboard {url}/_/ — open this one-time link to sign in: {login}"
        ),
        None => eprintln!("cloud-emulator: dashboard {url}/_/"),
    }
    let env = config.env.as_deref().unwrap_or("local");
    eprintln!("cloud-emulator: in your app: cloud.init({{ env: '{env}', endpoint: '{url}' }})");
}

async fn start_server(args: ServerArgs) -> Result<(Config, RunningServer), String> {
    let config = args.into_config()?;
    let server = start(config.clone()).await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot start: port {} on {} is already in use (another cloud-emulator?); choose another with --port PORT, or --port 0 for a free one",
                config.port, config.host
            )
        } else {
            format!("cannot start: {err}")
        }
    })?;
    Ok((config, server))
}

async fn run_start(args: ServerArgs) -> Result<i32, String> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
    let (config, server) = start_server(args).await?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {}", server.url());
        let _ = stdout.flush();
    }
    describe_start(&config, &server);
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("cloud-emulator: stopping");
    server.stop().await.map_err(|err| err.to_string())?;
    Ok(0)
}

/// The shell convention: the exit code, or 128 + the signal that killed the process.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}

async fn run_exec(mut args: ServerArgs, command: Vec<String>) -> Result<i32, String> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
    if let Some(port) = args.port.filter(|port| *port != 0) {
        eprintln!("cloud-emulator: exec picks a free port; --port {port} ignored");
    }
    args.port = Some(0);
    let (config, server) = start_server(args).await?;
    eprintln!("listening on {}", server.url());
    describe_start(&config, &server);
    let (program, arguments) = command
        .split_first()
        .ok_or("exec needs a command after --")?;
    let spawned = ChildCommand::new(program)
        .args(arguments)
        .env("CLOUD_EMULATOR_URL", server.url())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            eprintln!("cloud-emulator: cannot run {program}: {err}");
            let _ = server.stop().await;
            return Ok(if err.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = interrupt.recv() => forward(&child, libc::SIGINT),
            _ = terminate.recv() => forward(&child, libc::SIGTERM),
        }
    };
    let stopped = server.stop().await;
    let status = status.map_err(|err| format!("waiting for {program}: {err}"))?;
    stopped.map_err(|err| err.to_string())?;
    Ok(exit_code(status))
}

fn forward(child: &tokio::process::Child, signal: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) has no memory effects; the pid is our own child's, still unreaped.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}
