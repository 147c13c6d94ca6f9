//! The one error type of the SDK and its conversion to the JS `Error { errCode, errMsg, requestID, code }`.

use cloud_protocol::{codes, err_code_for, errcode, fail_message};

/// A failed API call, already rendered for one API (`errMsg` carries the `<api>:fail` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudError {
    /// The numeric `errCode` `wx.cloud` reports.
    pub err_code: i32,
    /// The full `errMsg`, also the JS `message`.
    pub err_msg: String,
    /// The CloudBase string code of a server error (`FUNCTION_NOT_FOUND`, …), or of a local failure.
    pub code: Option<String>,
    /// The server's request id, when one is known.
    pub request_id: Option<String>,
}

/// What went wrong below the API layer, before it is rendered for a particular API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered `{code, message, requestId}`.
    Server {
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The request did not complete within the configured timeout.
    Timeout,
    /// The request never reached the server or its answer was unreadable.
    Network(String),
    /// The server answered this HTTP status without a CloudBase error body.
    Http(u16),
    /// The caller aborted the call through its `AbortSignal`.
    Aborted,
    /// Anonymous sign-in or token refresh was refused (`error`, `error_description`).
    Auth { error: String, description: String },
    /// A failure whose errCode and detail are already known (validation, missing env, …).
    Local { err_code: i32, detail: String },
}

impl Failure {
    /// A parameter type error (-401003).
    pub fn type_error(detail: impl Into<String>) -> Self {
        Failure::Local {
            err_code: errcode::PARAMETER_TYPE_ERROR,
            detail: detail.into(),
        }
    }

    /// A parameter value error (-401002).
    pub fn parameter_error(detail: impl Into<String>) -> Self {
        Failure::Local {
            err_code: errcode::PARAMETER_ERROR,
            detail: detail.into(),
        }
    }

    /// Renders the failure as the error of `api` (e.g. `cloud.callFunction`).
    pub fn into_error(self, api: &str) -> CloudError {
        match self {
            Failure::Server {
                code,
                message,
                request_id,
            } => {
                let mapped = err_code_for(&code);
                // A function that ran and failed is reported as wx does: -404011 with the service's detail.
                let (err_code, detail) = if mapped == err_code_for(codes::FUNCTIONS_EXECUTE_FAIL) {
                    let detail = format!(
                        "requestID {}, cloud function service error code {mapped}, error message {message}",
                        request_id.as_deref().unwrap_or("")
                    );
                    (errcode::FUNCTION_EXECUTION_ERROR, detail)
                } else {
                    (mapped, message)
                };
                CloudError {
                    err_code,
                    err_msg: fail_message(api, err_code, &detail),
                    code: Some(code),
                    request_id,
                }
            }
            Failure::Timeout => local(
                api,
                errcode::SERVER_TIMEOUT,
                "request timed out",
                "SERVER_TIMEOUT",
            ),
            Failure::Network(detail) => {
                local(api, errcode::NETWORK_ERROR, &detail, "NETWORK_ERROR")
            }
            Failure::Http(status) => local(
                api,
                errcode::NETWORK_ERROR,
                &format!("network request error (HTTP {status})"),
                "NETWORK_ERROR",
            ),
            Failure::Aborted => local(api, errcode::GENERIC, "abort", "ABORTED"),
            Failure::Auth { error, description } => CloudError {
                err_code: errcode::SYSTEM_ERROR,
                err_msg: fail_message(
                    api,
                    errcode::SYSTEM_ERROR,
                    &format!("anonymous sign-in failed: {error}: {description}"),
                ),
                code: Some(error),
                request_id: None,
            },
            Failure::Local { err_code, detail } => CloudError {
                err_code,
                err_msg: fail_message(api, err_code, &detail),
                code: None,
                request_id: None,
            },
        }
    }
}

fn local(api: &str, err_code: i32, detail: &str, code: &str) -> CloudError {
    CloudError {
        err_code,
        err_msg: fail_message(api, err_code, detail),
        code: Some(code.to_owned()),
        request_id: None,
    }
}

/// The error every service API throws synchronously before `init` (errCode -1, no `<api>:fail` prefix, as wx).
pub fn not_initialised() -> CloudError {
    CloudError {
        err_code: errcode::GENERIC,
        err_msg: "Cloud API isn't enabled, please call init first".to_owned(),
        code: None,
        request_id: None,
    }
}

impl CloudError {
    /// The JS `Error` callers receive: `message == errMsg`, plus `errCode`, `errMsg`, `requestID`, `code`.
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        use crate::js::set;
        use wasm_bindgen::JsValue;
        let error: JsValue = js_sys::Error::new(&self.err_msg).into();
        set(&error, "errCode", &JsValue::from(self.err_code));
        set(&error, "errMsg", &JsValue::from_str(&self.err_msg));
        if let Some(request_id) = &self.request_id {
            set(&error, "requestID", &JsValue::from_str(request_id));
        }
        if let Some(code) = &self.code {
            set(&error, "code", &JsValue::from_str(code));
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "cloud.callFunction";

    #[test]
    fn function_not_found_is_501000() {
        let error = Failure::Server {
            code: "FUNCTION_NOT_FOUND".into(),
            message: "FunctionName parameter could not be found.".into(),
            request_id: Some("r1".into()),
        }
        .into_error(API);
        assert_eq!(error.err_code, -501000);
        assert_eq!(
            error.err_msg,
            "cloud.callFunction:fail -501000 FunctionName parameter could not be found."
        );
        assert_eq!(error.code.as_deref(), Some("FUNCTION_NOT_FOUND"));
        assert_eq!(error.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn function_execution_failure_is_404011_with_the_service_detail() {
        let error = Failure::Server {
            code: "FUNCTIONS_EXECUTE_FAIL".into(),
            message: "Error: boom\n    at main (index.js:2)".into(),
            request_id: Some("req-9".into()),
        }
        .into_error(API);
        assert_eq!(error.err_code, -404011);
        assert_eq!(
            error.err_msg,
            "cloud.callFunction:fail -404011 cloud function execution error. requestID req-9, cloud function \
             service error code -504002, error message Error: boom\n    at main (index.js:2)"
        );
    }

    #[test]
    fn local_failures_have_their_codes() {
        assert_eq!(Failure::Timeout.into_error(API).err_code, -501002);
        assert_eq!(
            Failure::Network("x".into()).into_error(API).err_code,
            -601003
        );
        let abort = Failure::Aborted.into_error(API);
        assert_eq!(
            (abort.err_code, abort.err_msg.as_str()),
            (-1, "cloud.callFunction:fail abort")
        );
        let size = Failure::parameter_error("callFunction data size must be less than 5120 KB")
            .into_error(API);
        assert_eq!(
            size.err_msg,
            "cloud.callFunction:fail -401002 api parameter error. callFunction data size must be less than 5120 KB"
        );
    }

    #[test]
    fn unknown_server_codes_fall_back_to_system_error() {
        let error = Failure::Server {
            code: "SOMETHING".into(),
            message: "m".into(),
            request_id: None,
        }
        .into_error(API);
        assert_eq!(error.err_code, -501001);
        assert_eq!(
            error.err_msg,
            "cloud.callFunction:fail -501001 resource system error. m"
        );
    }
}
