//! `Cloud` instances: the default one (`cloud.init`) and `new cloud.Cloud({resourceEnv})`, their web
//! options, and which env each service call goes to.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use cloud_protocol::{default_endpoint, errcode, limits, DEFAULT_REGION};
use wasm_bindgen::JsValue;

use crate::error::{not_initialised, CloudError, Failure};
use crate::js;
use crate::transport::auth::Session;
use crate::transport::storage::Persistence;

/// The services that pick an env from an object-form `init({ env: { … } })`.
// Storage and Database are resolved (and tested) already; their APIs come with later issues.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Functions,
    Storage,
    Database,
    /// `callContainer`: an object-form env has no `container` key in wx's docs, so it takes `config.env`
    /// (or a string env).
    Container,
}

/// `init`'s `env`: absent, one env for everything, or one per service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EnvConfig {
    #[default]
    Unset,
    All(String),
    PerService {
        functions: Option<String>,
        storage: Option<String>,
        database: Option<String>,
    },
}

/// The web-only options of `init` / `new Cloud`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebOptions {
    /// Base URL (`http://127.0.0.1:PORT`); `None` means the CloudBase default for the env and region.
    pub endpoint: Option<String>,
    /// The region; `X-TCB-Region` is sent only when given.
    pub region: Option<String>,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u32,
    /// Where credentials are kept.
    pub persistence: Persistence,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            endpoint: None,
            region: None,
            timeout_ms: limits::DEFAULT_TIMEOUT_MS,
            persistence: Persistence::Local,
        }
    }
}

impl WebOptions {
    /// Reads `endpoint`, `region`, `timeout`, `persistence` from a JS options object; unusable values
    /// keep their defaults.
    pub fn from_js(options: &JsValue) -> Self {
        let defaults = WebOptions::default();
        let timeout = js::get(options, "timeout")
            .as_f64()
            .filter(|ms| *ms >= 1.0 && *ms <= u32::MAX as f64);
        WebOptions {
            endpoint: js::get_string(options, "endpoint").filter(|e| !e.is_empty()),
            region: js::get_string(options, "region").filter(|r| !r.is_empty()),
            timeout_ms: timeout.map(|ms| ms as u32).unwrap_or(defaults.timeout_ms),
            persistence: js::get_string(options, "persistence")
                .and_then(|p| Persistence::parse(&p))
                .unwrap_or(defaults.persistence),
        }
    }

    /// The base URL for `env`.
    pub fn base_url(&self, env: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => default_endpoint(env, self.region.as_deref().unwrap_or(DEFAULT_REGION)),
        }
    }
}

/// The env a call goes to: an instance's `resourceEnv` (per-call `config.env` ignored, as in wx); on
/// the default instance the per-call env, else the init env for the service.
pub fn resolve_env(
    instance_env: Option<&str>,
    init_env: &EnvConfig,
    service: Service,
    per_call_env: Option<&str>,
) -> Option<String> {
    if let Some(env) = instance_env {
        return Some(env.to_owned());
    }
    if let Some(env) = per_call_env {
        return Some(env.to_owned());
    }
    match init_env {
        EnvConfig::Unset => None,
        EnvConfig::All(env) => Some(env.clone()),
        EnvConfig::PerService {
            functions,
            storage,
            database,
        } => match service {
            Service::Functions => functions.clone(),
            Service::Storage => storage.clone(),
            Service::Database => database.clone(),
            Service::Container => None,
        },
    }
}

enum Kind {
    /// `cloud` itself: configured by the first `init`.
    Default {
        config: RefCell<Option<(EnvConfig, WebOptions)>>,
    },
    /// `new cloud.Cloud(options)`: usable once `init()` was called.
    Instance {
        env: String,
        options: WebOptions,
        inited: Cell<bool>,
    },
}

/// One `Cloud` (default or instance).
pub struct CloudCore {
    kind: Kind,
}

impl CloudCore {
    /// The default instance, not yet initialised.
    pub fn new_default() -> Rc<Self> {
        Rc::new(CloudCore {
            kind: Kind::Default {
                config: RefCell::new(None),
            },
        })
    }

    /// `new cloud.Cloud({ resourceAppid?, resourceEnv, ...web options })`.
    pub fn new_instance(options: &JsValue) -> Result<Rc<Self>, CloudError> {
        let env = js::get_string(options, "resourceEnv").filter(|env| !env.is_empty());
        let Some(env) = env else {
            return Err(CloudError {
                err_code: errcode::PARAMETER_ERROR,
                err_msg: "resourceEnv must be provided".to_owned(),
                code: None,
                request_id: None,
            });
        };
        let options = WebOptions::from_js(options);
        Ok(Rc::new(CloudCore {
            kind: Kind::Instance {
                env,
                options,
                inited: Cell::new(false),
            },
        }))
    }

    /// `init(config?)`: the default instance keeps its first config (later calls are ignored); an instance
    /// just becomes usable (its env came from the constructor).
    pub fn init(&self, config: &JsValue) {
        match &self.kind {
            Kind::Default { config: slot } => {
                if slot.borrow().is_some() {
                    return;
                }
                let env = js::get(config, "env");
                let env_config = if let Some(env) = env.as_string() {
                    EnvConfig::All(env)
                } else if env.is_object() {
                    EnvConfig::PerService {
                        functions: js::get_string(&env, "functions"),
                        storage: js::get_string(&env, "storage"),
                        database: js::get_string(&env, "database"),
                    }
                } else {
                    EnvConfig::Unset
                };
                *slot.borrow_mut() = Some((env_config, WebOptions::from_js(config)));
            }
            Kind::Instance { inited, .. } => inited.set(true),
        }
    }

    /// Whether per-call `config.env` is honoured (default instance only).
    pub fn is_default(&self) -> bool {
        matches!(self.kind, Kind::Default { .. })
    }

    /// The session for a call to `service`. The outer error (not initialised) is thrown synchronously;
    /// the inner one (no env) goes to `fail` / the rejection.
    pub fn session(
        &self,
        service: Service,
        per_call_env: Option<&str>,
    ) -> Result<Result<Rc<Session>, Failure>, CloudError> {
        let (env, options) = match &self.kind {
            Kind::Default { config } => {
                let config = config.borrow();
                let Some((env_config, options)) = config.as_ref() else {
                    return Err(not_initialised());
                };
                (
                    resolve_env(None, env_config, service, per_call_env),
                    options.clone(),
                )
            }
            Kind::Instance {
                env,
                options,
                inited,
            } => {
                if !inited.get() {
                    return Err(not_initialised());
                }
                (Some(env.clone()), options.clone())
            }
        };
        Ok(match env.filter(|env| !env.is_empty()) {
            Some(env) => Ok(Session::get(
                &options.base_url(&env),
                &env,
                options.region.as_deref(),
                options.timeout_ms,
                options.persistence,
            )),
            None => Err(Failure::Local {
                err_code: -501005,
                detail: "envId must be provided".to_owned(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_env_wins_over_per_call_env() {
        let init = EnvConfig::All("a".into());
        assert_eq!(
            resolve_env(Some("inst"), &init, Service::Functions, Some("call")),
            Some("inst".into())
        );
        assert_eq!(
            resolve_env(None, &init, Service::Functions, Some("call")),
            Some("call".into())
        );
        assert_eq!(
            resolve_env(None, &init, Service::Functions, None),
            Some("a".into())
        );
        assert_eq!(
            resolve_env(None, &EnvConfig::Unset, Service::Functions, None),
            None
        );
    }

    #[test]
    fn object_env_picks_the_service() {
        let init = EnvConfig::PerService {
            functions: Some("f".into()),
            storage: Some("s".into()),
            database: None,
        };
        assert_eq!(
            resolve_env(None, &init, Service::Functions, None),
            Some("f".into())
        );
        assert_eq!(
            resolve_env(None, &init, Service::Storage, None),
            Some("s".into())
        );
        assert_eq!(resolve_env(None, &init, Service::Database, None), None);
        assert_eq!(resolve_env(None, &init, Service::Container, None), None);
        assert_eq!(
            resolve_env(None, &init, Service::Container, Some("c")),
            Some("c".into())
        );
    }

    #[test]
    fn endpoint_defaults_to_cloudbase() {
        let mut options = WebOptions::default();
        assert_eq!(
            options.base_url("e1"),
            "https://e1.ap-shanghai.tcb-api.tencentcloudapi.com"
        );
        options.region = Some("ap-guangzhou".into());
        assert_eq!(
            options.base_url("e1"),
            "https://e1.ap-guangzhou.tcb-api.tencentcloudapi.com"
        );
        options.endpoint = Some("http://127.0.0.1:9/".into());
        assert_eq!(options.base_url("e1"), "http://127.0.0.1:9");
        assert_eq!(options.timeout_ms, 15_000);
    }
}
