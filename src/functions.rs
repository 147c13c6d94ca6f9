//! `callFunction` (api-surface.md §2.6): validation at the door, then `functions.invokeFunction`.

use std::rc::Rc;

use cloud_protocol::{limits, ok_message};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::call_style::{self, Callbacks};
use crate::cloud::{CloudCore, Service};
use crate::error::{CloudError, Failure};
use crate::js::{self, AbortSignal};
use crate::transport::abort::Abortable;
use crate::transport::auth::Session;
use crate::transport::envelope::Param;
use crate::transport::{self, call_action, OwnedParam};

/// The API name in `errMsg`.
pub const API: &str = "cloud.callFunction";
/// The `/web` action.
pub const ACTION: &str = "functions.invokeFunction";

/// The action parameters, in the official SDK's order.
pub fn invoke_params<'a>(name: &'a str, request_data: &'a str) -> [Param<'a>; 2] {
    [
        Param::Str("function_name", name),
        Param::Str("request_data", request_data),
    ]
}

/// The JS type of an argument, as far as validation cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Undefined,
    Null,
    Str(String),
    Object,
    Array,
    Other(String),
}

impl Arg {
    /// Classifies a JS value.
    pub fn of(value: &JsValue) -> Self {
        if value.is_undefined() {
            Arg::Undefined
        } else if value.is_null() {
            Arg::Null
        } else if let Some(text) = value.as_string() {
            Arg::Str(text)
        } else if js_sys::Array::is_array(value) {
            Arg::Array
        } else if value.is_object() && !value.is_function() {
            Arg::Object
        } else {
            Arg::Other(value.js_typeof().as_string().unwrap_or_default())
        }
    }

    fn type_name(&self) -> &str {
        match self {
            Arg::Undefined => "undefined",
            Arg::Null => "null",
            Arg::Str(_) => "string",
            Arg::Object => "object",
            Arg::Array => "array",
            Arg::Other(name) => name,
        }
    }
}

/// A -401003 `parameter.<field> should be <expected> instead of <type>;`.
pub(crate) fn type_error(field: &str, expected: &str, got: &Arg) -> Failure {
    Failure::type_error(format!(
        "parameter.{field} should be {expected} instead of {};",
        got.type_name()
    ))
}

/// Checks `name`, `data` and `config.env` (all before any I/O); returns the function name.
pub fn validate(name: &Arg, data: &Arg, config_env: &Arg) -> Result<String, Failure> {
    let name = match name {
        Arg::Str(name) if name.is_empty() => {
            return Err(Failure::parameter_error(
                "parameter.name should not be empty;",
            ))
        }
        Arg::Str(name) => name.clone(),
        other => return Err(type_error("name", "string", other)),
    };
    if !matches!(data, Arg::Undefined | Arg::Object) {
        return Err(type_error("data", "object", data));
    }
    if !matches!(config_env, Arg::Undefined | Arg::Str(_)) {
        return Err(type_error("config.env", "string", config_env));
    }
    Ok(name)
}

/// Checks the size of the serialized `data`.
pub fn check_data_size(request_data: &str) -> Result<(), Failure> {
    if request_data.len() > limits::CALL_FUNCTION_MAX_DATA_BYTES {
        return Err(Failure::parameter_error(format!(
            "callFunction data size must be less than {} KB",
            limits::CALL_FUNCTION_MAX_DATA_BYTES / 1024
        )));
    }
    Ok(())
}

/// The fields of `callFunction` options (`callContainer` reads its `config.env`, `signal` and callbacks
/// the same way).
pub(crate) struct CallOptions {
    name: JsValue,
    data: JsValue,
    pub(crate) config_env: JsValue,
    pub(crate) signal: JsValue,
    pub(crate) callbacks: Option<Callbacks>,
}

impl CallOptions {
    /// Reads every field in one crossing into JS (a `Reflect.get` per field was a measurable share
    /// of a call); field by field when a getter throws (a throwing getter reads as `undefined`).
    pub(crate) fn read(options: &JsValue) -> Self {
        let Ok(fields) = read_call_options(options) else {
            let config = js::get(options, "config");
            return CallOptions {
                name: js::get(options, "name"),
                data: js::get(options, "data"),
                config_env: js::get(&config, "env"),
                signal: js::get(options, "signal"),
                callbacks: Callbacks::of(options),
            };
        };
        let callbacks = fields.get(4);
        CallOptions {
            name: fields.get(0),
            data: fields.get(1),
            config_env: fields.get(2),
            signal: fields.get(3),
            callbacks: callbacks.is_object().then(|| {
                let callbacks: &js_sys::Array = callbacks.unchecked_ref();
                Callbacks {
                    success: callbacks.get(0),
                    fail: callbacks.get(1),
                    complete: callbacks.get(2),
                }
            }),
        }
    }
}

// `[name, data, config.env, signal, [success, fail, complete] when one is truthy]`; property reads
// only, every decision stays in Rust.
#[wasm_bindgen(inline_js = "export function readCallOptions(o) {
  if (o === null || (typeof o !== 'object' && typeof o !== 'function')) return [];
  const config = o.config;
  const success = o.success, fail = o.fail, complete = o.complete;
  return [o.name, o.data, config === null || config === undefined ? undefined : config.env, o.signal,
    success || fail || complete ? [success, fail, complete] : undefined];
}
export function invokeResult(errMsg, body) {
  const data = body.data;
  let result = data !== null && typeof data === 'object' ? data.response_data : undefined;
  if (typeof result === 'string') {
    try { result = JSON.parse(result); } catch (_) {}
  }
  return { errMsg, result, requestID: body.requestId };
}")]
extern "C" {
    #[wasm_bindgen(catch, js_name = readCallOptions)]
    fn read_call_options(options: &JsValue) -> Result<js_sys::Array, JsValue>;

    // `{ errMsg, result, requestID }` from a success body in one crossing: `result` is the decoded
    // `data.response_data` when it is JSON text, else the raw value (as wx does).
    #[wasm_bindgen(js_name = invokeResult)]
    fn invoke_result(err_msg: &JsValue, body: &JsValue) -> JsValue;
}

thread_local! {
    static OK_MESSAGE: JsValue = JsValue::from_str(&ok_message(API));
}

/// `cloud.callFunction(options)`: throws synchronously when not initialised or when `options` is not
/// an object; everything else is delivered through the callbacks or the returned Promise.
pub fn call_function(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let fields = CallOptions::read(&options);
    let config_env = Arg::of(&fields.config_env);
    let per_call_env = match (&config_env, cloud.is_default()) {
        (Arg::Str(env), true) => Some(env.as_str()),
        _ => None,
    };
    let session = cloud.session(Service::Functions, per_call_env)?;
    if !options.is_object() || js_sys::Array::is_array(&options) {
        return Err(type_error("options", "object", &Arg::of(&options)).into_error(API));
    }
    let prepared = prepare(&fields, &config_env).and_then(|request| Ok((session?, request)));
    let signal = fields
        .signal
        .is_object()
        .then(|| fields.signal.unchecked_into::<AbortSignal>());
    let (prepared, signal) = match (prepared, signal) {
        (Ok((session, (name, request_data))), None) => {
            // No signal to honour: the request goes out now and its promise is returned as it is.
            let params = vec![
                OwnedParam("function_name", name),
                OwnedParam("request_data", request_data),
            ];
            let call = transport::action_promise(session, ACTION, params, API, finish_invoke);
            return Ok(call_style::dispatch_promise(API, fields.callbacks, call));
        }
        other => other,
    };
    let call = async move {
        let (session, (name, request_data)) =
            prepared.map_err(|failure| failure.into_error(API))?;
        Abortable::new(invoke(session, name, request_data), signal)
            .await
            .map_err(|failure| failure.into_error(API))
    };
    Ok(call_style::dispatch_with(API, fields.callbacks, call))
}

/// Validates the options and serializes `data` (`{}` when absent) as `JSON.stringify` does.
fn prepare(fields: &CallOptions, config_env: &Arg) -> Result<(String, String), Failure> {
    let data = &fields.data;
    let name = validate(&Arg::of(&fields.name), &Arg::of(data), config_env)?;
    let request_data = if data.is_undefined() {
        "{}".to_owned()
    } else {
        let text = js_sys::JSON::stringify(data).map_err(|error| {
            Failure::type_error(format!(
                "parameter.data cannot be serialized: {}",
                describe(&error)
            ))
        })?;
        text.as_string().unwrap_or_else(|| "{}".to_owned())
    };
    check_data_size(&request_data)?;
    Ok((name, request_data))
}

fn describe(error: &JsValue) -> String {
    crate::transport::http::describe_js_error(error)
}

/// Invokes the function and builds `{ errMsg, result, requestID }`.
async fn invoke(
    session: Rc<Session>,
    name: String,
    request_data: String,
) -> Result<JsValue, Failure> {
    let body = call_action(&session, ACTION, &invoke_params(&name, &request_data)).await?;
    finish_invoke(body)
}

/// `{ errMsg, result, requestID }` from the success body of `functions.invokeFunction`.
fn finish_invoke(body: JsValue) -> Result<JsValue, Failure> {
    Ok(OK_MESSAGE.with(|err_msg| invoke_result(err_msg, &body)))
}

/// errCode of a failure in this module, for tests.
#[cfg(test)]
fn err_code(failure: Failure) -> i32 {
    failure.into_error(API).err_code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_captures;
    use crate::transport::envelope::envelope;

    #[test]
    fn validation_matches_wx() {
        let name = Arg::Str("echo".into());
        assert_eq!(
            validate(&name, &Arg::Object, &Arg::Str("e".into())),
            Ok("echo".into())
        );
        assert_eq!(
            validate(&name, &Arg::Undefined, &Arg::Undefined),
            Ok("echo".into())
        );
        assert_eq!(
            err_code(validate(&Arg::Undefined, &Arg::Object, &Arg::Undefined).unwrap_err()),
            -401003
        );
        assert_eq!(
            err_code(
                validate(&Arg::Str(String::new()), &Arg::Object, &Arg::Undefined).unwrap_err()
            ),
            -401002
        );
        assert_eq!(
            err_code(validate(&name, &Arg::Array, &Arg::Undefined).unwrap_err()),
            -401003
        );
        assert_eq!(
            err_code(validate(&name, &Arg::Null, &Arg::Undefined).unwrap_err()),
            -401003
        );
        assert_eq!(
            err_code(validate(&name, &Arg::Object, &Arg::Other("number".into())).unwrap_err()),
            -401003
        );
        let error = validate(&Arg::Other("number".into()), &Arg::Object, &Arg::Undefined)
            .unwrap_err()
            .into_error(API);
        assert_eq!(
            error.err_msg,
            "cloud.callFunction:fail -401003 api parameter type error. parameter.name should be string instead of number;"
        );
    }

    #[test]
    fn data_over_5_mb_is_refused() {
        let limit = limits::CALL_FUNCTION_MAX_DATA_BYTES;
        assert!(check_data_size(&"x".repeat(limit)).is_ok());
        let error = check_data_size(&"x".repeat(limit + 1))
            .unwrap_err()
            .into_error(API);
        assert_eq!(error.err_code, cloud_protocol::errcode::PARAMETER_ERROR);
        assert!(error
            .err_msg
            .ends_with("callFunction data size must be less than 5120 KB"));
    }

    /// The envelope equals the captured bodies of the official SDK, byte for byte, once the captured
    /// access_token and seqId are used.
    #[test]
    fn golden_invoke_function_envelopes() {
        let mut checked = 0;
        for capture in test_captures::fixture(test_captures::INVOKE_FUNCTION) {
            assert_eq!(capture.action(), Some(ACTION));
            let ours = envelope(
                ACTION,
                &capture.field("env"),
                &invoke_params(
                    &capture.field("function_name"),
                    &capture.field("request_data"),
                ),
                &capture.field("access_token"),
                &capture.field("seqId"),
            );
            assert_eq!(ours, capture.body);
            checked += 1;
        }
        assert!(checked >= 2, "golden fixtures missing");
    }
}
