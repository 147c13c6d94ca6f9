//! cloud-emulator: a local server speaking the CloudBase web protocol.
//!
//! Library entry points: [`start`] binds and serves in the background (what tests and `exec` use),
//! [`serve`] runs on a listener you bound, [`router`] is the bare axum router; [`cli::main`] is the binary.
//!
//! Layout: `web` (P1 `/web` envelope and action dispatch), `auth` (tokens, P2 `/auth/v1`, legacy
//! `auth.*`), `functions_api` (invokeFunction and the P3 `/v1/functions` route), `container`
//! (callContainer's `/v1/cloudrun` reverse proxy to `--container` services), `functions` (the
//! Node.js runtime), `storage` (object store, uploads, temp URLs, P1 and P3 storage), `security` (Host
//! check, CORS), `body` (size and depth limits), `secret`, `config`.
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod container;
pub mod database;
pub mod error;
pub mod functions;
pub mod functions_api;
pub mod secret;
pub mod security;
pub mod server;
pub mod storage;
pub mod web;

pub use config::Config;
pub use server::{router, serve, start, AppState, RunningServer};
