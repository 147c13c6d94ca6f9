//! Shared definitions of the CloudBase web protocol as used by `wx.cloud` / `Taro.cloud` on the web.
//!
//! One definition serves both sides: the `taro-cloud-wasm` SDK (compiled to wasm32) and `cloud-emulator`
//! (native). This crate has no dependencies so that it adds nothing but its own tables to the wasm.
//!
//! * [`codes`]: the CloudBase string codes the service answers with (`{"code": "...", "message": "..."}`).
//! * [`err_code_for`]: string code → the numeric `errCode` that `wx.cloud` reports.
//! * [`describe`] and [`fail_message`]: the `errMsg` text `"<api>:fail <errCode> <description>. <detail>"`.
//! * [`limits`]: the documented client and server limits.
//! * [`storage`]: `cloudPath` naming rules and the `cloud://` fileID format.
#![deny(missing_docs)]

pub mod codes;
pub mod limits;
pub mod storage;

/// The constant `dataVersion` every `/web` action envelope carries.
pub const DATA_VERSION: &str = "2020-01-10";

/// The region used when `init` names none.
pub const DEFAULT_REGION: &str = "ap-shanghai";

/// How every default CloudBase endpoint ends (see [`default_endpoint`]).
pub const DEFAULT_ENDPOINT_SUFFIX: &str = ".tcb-api.tencentcloudapi.com";

/// The CloudBase endpoint an env is reached at when `init` names no `endpoint`.
pub fn default_endpoint(env: &str, region: &str) -> String {
    format!("https://{env}.{region}{DEFAULT_ENDPOINT_SUFFIX}")
}

/// The CloudBase HTTP API gateway of an env (`/v1/cloudrun/…` for callContainer), used when `init` names
/// no `endpoint` (@cloudbase/js-sdk 3.x `setGatewayEndPointWithEnv`).
pub fn default_gateway_endpoint(env: &str) -> String {
    format!("https://{env}.api.tcloudbasegateway.com")
}

/// The numeric `errCode`s that the SDK itself produces (as opposed to ones mapped from a server string code).
pub mod errcode {
    /// Generic failure: a thrown error, an abort.
    pub const GENERIC: i32 = -1;
    /// `api permission denied`.
    pub const API_PERMISSION_DENIED: i32 = -401001;
    /// `api parameter error`: a value that is out of range or otherwise invalid.
    pub const PARAMETER_ERROR: i32 = -401002;
    /// `api parameter type error`: a value of the wrong type.
    pub const PARAMETER_TYPE_ERROR: i32 = -401003;
    /// `cloud function execution error`: the function ran and failed (threw, timed out, crashed).
    pub const FUNCTION_EXECUTION_ERROR: i32 = -404011;
    /// Seen in the wild for `FUNCTION_NOT_FOUND` and "Environment not found".
    pub const RESOURCE_NOT_FOUND: i32 = -501000;
    /// `resource system error`: the default for a server code the table does not know.
    pub const SYSTEM_ERROR: i32 = -501001;
    /// `resource server timeout`: the request did not complete in time.
    pub const SERVER_TIMEOUT: i32 = -501002;
    /// `system network error`: the request never reached the server or its answer never arrived.
    pub const NETWORK_ERROR: i32 = -601003;
}

/// The `wx.cloud` `ERR_CODE` description of a numeric `errCode`, or `""` when it has none.
pub fn describe(err_code: i32) -> &'static str {
    match err_code {
        -401001 => "api permission denied",
        -401002 => "api parameter error",
        -401003 => "api parameter type error",
        -402001 => "circular reference detected",
        -402002 => "realtime listener init watch fail",
        -402003 => "realtime listener reconnect watch fail",
        -402004 => "realtime listener rebuild watch fail",
        -402005 => "realtime listener close watch fail",
        -402006 => "realtime listener receive server error msg",
        -402007 => "realtime listener receive invalid server data",
        -402008 => "realtime listener websocket connection error",
        -402009 => "realtime listener websocket connection closed",
        -402010 => "realtime listener check last fail",
        -402011 => "realtime listener unexpected fatal error",
        -402012 => "realtime listener init websocket fail",
        -403001 => "max upload file size exceeded",
        -403002 => "empty upload url",
        -403003 => "empty download url",
        -404011 => "cloud function execution error",
        -501001 => "resource system error",
        -501002 => "resource server timeout",
        -501003 => "exceed request limit",
        -501004 => "exceed concurrent request limit",
        -501005 => "invalid env",
        -501006 => "invalid common parameters",
        -501007 => "invalid parameters",
        -501008 => "invalid request source",
        -501009 => "resource not initialized",
        -501012 => "invalid api name",
        -501013 => "request data size exceeds limit (5M)",
        -501014 => "upload file size exceeds limit (5M)",
        -501023 => "permission denied",
        -502001 => "database request fail",
        -502002 => "database invalid command",
        -502003 => "database permission denied",
        -502004 => "database exceed collection limit",
        -502005 => "database collection not exists",
        -503001 => "storage request fail",
        -503002 => "storage permission denied",
        -503003 => "storage file not exists",
        -503004 => "storage invalid sign parameter",
        -504001 => "functions request fail",
        -504002 => "functions execute fail",
        -601001 => "system error",
        -601002 => "system args error",
        -601003 => "system network error",
        _ => "",
    }
}

/// Maps a CloudBase string code (the `code` of an error body) to the `errCode` `wx.cloud` reports.
///
/// The table is `wx-server-sdk`'s `TCB_ERR_CODE` plus the codes it lacks that the service is known to send;
/// anything else is `-501001`, as in `wx-server-sdk`.
pub fn err_code_for(code: &str) -> i32 {
    use codes::*;
    match code {
        // BAD_GATEWAY: the gateway could not reach the container service (refused, reset).
        SYS_ERR | BAD_GATEWAY => -501001,
        SERVER_TIMEOUT | SERVICE_TIMEOUT => -501002,
        EXCEED_REQUEST_LIMIT | EXCEED_RATELIMIT => -501003,
        EXCEED_CONCURRENT_REQUEST_LIMIT => -501004,
        INVALID_ENV | "INVALIID_ENV" => -501005,
        INVALID_COMMON_PARAM => -501006,
        INVALID_PARAM => -501007,
        INVALID_REQUEST_SOURCE => -501008,
        RESOURCE_NOT_INITIAL => -501009,
        INVALID_ACTION => -501012,
        EXCEED_REQUEST_SIZE_LIMIT => -501013,
        PERMISSION_DENIED | EXCEED_AUTHORITY | ACTION_FORBIDDEN => -501023,
        FUNCTION_NOT_FOUND | RESOURCE_NOT_FOUND | SERVICE_NOT_FOUND => -501000,
        DATABASE_REQUEST_FAILED => -502001,
        DATABASE_INVALID_OPERRATOR => -502002,
        DATABASE_PERMISSION_DENIED => -502003,
        DATABASE_COLLECTION_EXCEED_LIMIT => -502004,
        DATABASE_COLLECTION_NOT_EXIST => -502005,
        STORAGE_REQUEST_FAIL => -503001,
        STORAGE_EXCEED_AUTHORITY => -503002,
        STORAGE_FILE_NONEXIST => -503003,
        STORAGE_SIGN_PARAM_INVALID => -503004,
        FUNCTIONS_REQUEST_FAIL => -504001,
        FUNCTIONS_EXECUTE_FAIL | FUNCTION_TIME_LIMIT_EXCEEDED | FUNCTION_INVOCATION_FAILED => {
            -504002
        }
        _ => -501001,
    }
}

/// The success `errMsg` of an API: `"<api>:ok"`.
pub fn ok_message(api: &str) -> String {
    format!("{api}:ok")
}

/// The failure `errMsg` of an API, as `wx.cloud`'s `toSDKError` renders it:
/// `"<api>:fail <errCode> <description>. <detail>"`.
///
/// Where the code has no description (`-1`, `-501000`) the text is `"<api>:fail <errCode> <detail>"`,
/// and for `-1` simply `"<api>:fail <detail>"` (what `wx.cloud` prints for a thrown error or an abort).
pub fn fail_message(api: &str, err_code: i32, detail: &str) -> String {
    let description = describe(err_code);
    match (err_code, description.is_empty()) {
        (errcode::GENERIC, _) => format!("{api}:fail {detail}"),
        (_, true) => format!("{api}:fail {err_code} {detail}"),
        (_, false) => format!("{api}:fail {err_code} {description}. {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_message_matches_wx_format() {
        assert_eq!(
            fail_message("collection.get", -502005, "[ResourceNotFound] Db or Table not exist: todos"),
            "collection.get:fail -502005 database collection not exists. [ResourceNotFound] Db or Table not exist: todos"
        );
        assert_eq!(
            fail_message("cloud.callFunction", -501000, "Environment not found"),
            "cloud.callFunction:fail -501000 Environment not found"
        );
        assert_eq!(
            fail_message("cloud.callFunction", -1, "abort"),
            "cloud.callFunction:fail abort"
        );
    }

    #[test]
    fn string_codes_map_to_wx_err_codes() {
        assert_eq!(err_code_for(codes::DATABASE_COLLECTION_NOT_EXIST), -502005);
        assert_eq!(err_code_for(codes::FUNCTIONS_EXECUTE_FAIL), -504002);
        assert_eq!(err_code_for(codes::FUNCTION_NOT_FOUND), -501000);
        assert_eq!(err_code_for(codes::STORAGE_FILE_NONEXIST), -503003);
        assert_eq!(err_code_for("SOMETHING_NEW"), -501001);
        assert_eq!(err_code_for(codes::SERVICE_NOT_FOUND), -501000);
        assert_eq!(err_code_for(codes::SERVICE_TIMEOUT), -501002);
        assert_eq!(err_code_for(codes::BAD_GATEWAY), -501001);
    }

    #[test]
    fn every_mapped_code_but_not_found_has_a_description() {
        for code in codes::ALL {
            let err_code = err_code_for(code);
            assert!(
                err_code == errcode::RESOURCE_NOT_FOUND || !describe(err_code).is_empty(),
                "{code} maps to {err_code} which has no description"
            );
        }
    }

    #[test]
    fn default_endpoint_uses_env_and_region() {
        assert_eq!(
            default_endpoint("env-1", DEFAULT_REGION),
            "https://env-1.ap-shanghai.tcb-api.tencentcloudapi.com"
        );
    }
}
