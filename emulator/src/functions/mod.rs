//! Cloud functions: `<functions dir>/<name>/index.js` run in warm Node.js worker processes.
//!
//! The HTTP layer calls [`FunctionsRuntime::invoke`] and maps an [`InvokeError`] to the CloudBase
//! string code and message with [`InvokeError::code`] and [`InvokeError::message`].

use cloud_protocol::codes;

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
