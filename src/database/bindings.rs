//! The exported classes: `Database`, `Query` (also the collection), `DocumentReference`, `Aggregate`,
//! `Command`, `ServerDate`, `DbRegExp` and the six Geo classes, plus `makeCommand`. The shim
//! (pkg-template/index.js) only spreads variadic arguments and lets Geo classes be called without `new`.
//!
//! Builders are immutable (each call returns a new object) and are freed by JS's GC (wasm-bindgen weak
//! refs). Argument errors throw synchronously with wx errCodes; everything after validation runs as one
//! future delivered through `call_style::dispatch` (Promise or callbacks).

use std::rc::Rc;

use cloud_protocol::{codes, errcode, limits, ok_message};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::command::{self, ArgError, Internal};
use super::convert::{self, ConvertError};
use super::encode::{contains_update_command, encode_projection, encode_query, encode_update};
use super::geo::{self, GeoError, Geometry, Kind, Position};
use super::realtime::{self, Spec};
use super::registry::Registered;
use super::request::{self, Body, Order};
use super::value::{to_json, EncodeError, Value};
use crate::call_style;
use crate::cloud::{CloudCore, Service};
use crate::error::{CloudError, Failure};
use crate::js::{self, AbortSignal};
use crate::transport::abort::Abortable;
use crate::transport::auth::Session;
use crate::transport::{call_action, call_idempotent_action};

/// wx's client-side page size: default and maximum of `get()` (api-surface.md §6).
const CLIENT_MAX_LIMIT: u32 = 20;
const NOT_FOUND_HINT: &str =
    "please make sure that the document exists and you have the corresponding access permission";

fn arg_failure(error: ArgError) -> Failure {
    if error.type_error {
        Failure::type_error(error.message)
    } else {
        Failure::parameter_error(error.message)
    }
}

fn geo_failure(error: GeoError) -> Failure {
    arg_failure(ArgError {
        type_error: error.type_error,
        message: error.message,
    })
}

fn convert_failure(error: ConvertError) -> Failure {
    match error {
        ConvertError::Circular => Failure::Local {
            err_code: -402001,
            detail: "Cannot convert circular structure to JSON".to_owned(),
        },
        ConvertError::Unsupported(message) => Failure::type_error(message),
        ConvertError::TooDeep => too_deep(),
        ConvertError::TooLarge => Failure::parameter_error(format!(
            "parameter is larger than {} MB",
            limits::MAX_ARGUMENT_BYTES >> 20
        )),
    }
}

fn too_deep() -> Failure {
    Failure::parameter_error(format!(
        "parameter is nested deeper than {} levels",
        limits::MAX_NESTING_DEPTH
    ))
}

/// A new SDK value, refused when chaining or nesting commands made it deeper than the limit (its depth
/// is then known to be bounded wherever it is used).
fn checked_depth(internal: Internal) -> Result<Internal, Failure> {
    if internal.depth() > limits::MAX_NESTING_DEPTH {
        return Err(too_deep());
    }
    Ok(internal)
}

fn encode_failure(error: EncodeError) -> Failure {
    Failure::parameter_error(error.0)
}

fn throw(api: &str, failure: Failure) -> JsValue {
    failure.into_error(api).to_js()
}

/// A `_call` index the shim never sends (only reachable by calling `_call` by hand).
fn unknown_method(api: &str, method: u32) -> JsValue {
    throw(api, Failure::type_error(format!("no method #{method}")))
}

fn value_of(value: &JsValue) -> Result<Value, Failure> {
    convert::to_value_or_null(value).map_err(convert_failure)
}

fn args_of(args: &Array) -> Result<Vec<Value>, Failure> {
    args.iter().map(|arg| value_of(&arg)).collect()
}

/// The JS value of a new command / SDK object.
fn command_js(internal: Internal) -> JsValue {
    Command {
        reg: Registered::new(internal),
    }
    .into()
}

/// `db.command.<name>(...args)` (the shim passes the arguments as one array). Also serves
/// `aggregate.<op>`, `project.slice` and `expr`, which the official SDK makes plain objects.
#[wasm_bindgen(js_name = makeCommand)]
pub fn make_command(name: &str, args: Array) -> Result<JsValue, JsValue> {
    let api = "db.command";
    if name == "expr" || name == "project.slice" {
        let out = Object::new();
        let key = if name == "expr" { "$expr" } else { "$slice" };
        js::set(&out, key, &args.get(0));
        return Ok(out.into());
    }
    let values = args_of(&args).map_err(|f| throw(api, f))?;
    if let Some(op) = name.strip_prefix("aggregate.") {
        let param = values.into_iter().next().unwrap_or(Value::Null);
        return checked_depth(command::aggregate_op(op, param))
            .map(command_js)
            .map_err(|f| throw(api, f));
    }
    match command::make(name, values) {
        Some(Ok(internal)) => checked_depth(internal)
            .map(command_js)
            .map_err(|f| throw(api, f)),
        Some(Err(error)) => Err(throw(api, arg_failure(error))),
        None => Err(throw(
            api,
            Failure::type_error(format!("db.command.{name} is not a function")),
        )),
    }
}

/// A query, logic or update command (`_.gt(1)`, `_.or(…)`, `_.inc(1)`), or an aggregate operator.
#[wasm_bindgen]
pub struct Command {
    reg: Registered,
}

#[wasm_bindgen]
impl Command {
    /// The registry token the encoder uses to find this command.
    #[wasm_bindgen(getter, js_name = __tcw)]
    pub fn token(&self) -> u32 {
        self.reg.token()
    }

    /// `cmd.<name>(...args)`: `and`/`or`/`nor` and the query operators chain on a query or logic command.
    #[wasm_bindgen(js_name = _chain)]
    pub fn chain(&self, name: &str, args: Array) -> Result<Command, JsValue> {
        let api = "db.command";
        let values = args_of(&args).map_err(|f| throw(api, f))?;
        command::chain(self.reg.value(), name, values)
            .map_err(arg_failure)
            .and_then(checked_depth)
            .map(|internal| Command {
                reg: Registered::new(internal),
            })
            .map_err(|failure| throw(api, failure))
    }

    /// The wire form (`{"$gt":1}`, …), for debugging and `JSON.stringify`.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> JsValue {
        match self.reg.value().wire_value() {
            Ok(value) => convert::to_js(&value),
            Err(_) => JsValue::NULL,
        }
    }
}

/// `db.serverDate({ offset })`.
#[wasm_bindgen]
pub struct ServerDate {
    reg: Registered,
}

#[wasm_bindgen]
impl ServerDate {
    /// The registry token.
    #[wasm_bindgen(getter, js_name = __tcw)]
    pub fn token(&self) -> u32 {
        self.reg.token()
    }

    /// `{ offset }` in milliseconds.
    #[wasm_bindgen(getter)]
    pub fn options(&self) -> JsValue {
        let out = Object::new();
        if let Internal::ServerDate { offset } = &**self.reg.value() {
            js::set(&out, "offset", &JsValue::from_f64(offset.value));
        }
        out.into()
    }
}

/// `db.RegExp({ regexp, options })`.
#[wasm_bindgen]
pub struct DbRegExp {
    reg: Registered,
}

#[wasm_bindgen]
impl DbRegExp {
    /// The registry token.
    #[wasm_bindgen(getter, js_name = __tcw)]
    pub fn token(&self) -> u32 {
        self.reg.token()
    }

    /// The pattern.
    #[wasm_bindgen(getter)]
    pub fn regexp(&self) -> String {
        match &**self.reg.value() {
            Internal::RegExp { regexp, .. } => regexp.to_string(),
            _ => String::new(),
        }
    }

    /// The flags (`i`, `m`, `s`).
    #[wasm_bindgen(getter)]
    pub fn options(&self) -> String {
        match &**self.reg.value() {
            Internal::RegExp { options, .. } => options.to_string(),
            _ => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------- Geo

fn geometry_of(value: &JsValue) -> Option<Geometry> {
    match convert::to_value(value).ok()?? {
        Value::Internal(internal) => match &*internal {
            Internal::Geo(geometry) => Some(geometry.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Builds a geometry from constructor arguments: `(lng, lat)` / instances / GeoJSON.
fn geometry_from_args(kind: Kind, first: &JsValue, second: &JsValue) -> Result<Geometry, Failure> {
    let geojson = first.is_object() && !Array::is_array(first);
    if geojson {
        let declared = js::get_string(first, "type");
        if declared.as_deref() != Some(kind.name()) {
            return Err(Failure::type_error(format!(
                "GeoJSON of type {} expected",
                kind.name()
            )));
        }
        let coordinates = value_of(&js::get(first, "coordinates"))?;
        // Validate once more to report the precise reason.
        return geo::from_geojson(kind, &coordinates).ok_or_else(|| {
            Failure::parameter_error(format!("invalid {} coordinates", kind.name()))
        });
    }
    if kind == Kind::Point {
        let position = geo::position(&value_of(first)?, &value_of(second)?).map_err(geo_failure)?;
        return Ok(Geometry::Point(position));
    }
    if !Array::is_array(first) {
        return Err(Failure::type_error(format!(
            "{} requires an array or GeoJSON",
            kind.name()
        )));
    }
    let items: Vec<Geometry> = first
        .unchecked_ref::<Array>()
        .iter()
        .map(|item| geometry_of(&item))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            let member = match kind {
                Kind::LineString | Kind::MultiPoint => "Point",
                Kind::Polygon | Kind::MultiLineString => "LineString",
                _ => "Polygon",
            };
            Failure::type_error(format!("{} requires an array of {member}", kind.name()))
        })?;
    let points = |items: Vec<Geometry>| -> Option<Vec<Position>> {
        items
            .into_iter()
            .map(|g| match g {
                Geometry::Point(p) => Some(p),
                _ => None,
            })
            .collect()
    };
    let lines = |items: Vec<Geometry>| -> Option<Vec<Vec<Position>>> {
        items
            .into_iter()
            .map(|g| match g {
                Geometry::LineString(l) => Some(l),
                _ => None,
            })
            .collect()
    };
    let geometry = match kind {
        Kind::LineString => points(items).map(Geometry::LineString),
        Kind::MultiPoint => points(items).map(Geometry::MultiPoint),
        Kind::Polygon => lines(items).map(Geometry::Polygon),
        Kind::MultiLineString => lines(items).map(Geometry::MultiLineString),
        Kind::MultiPolygon => items
            .into_iter()
            .map(|g| match g {
                Geometry::Polygon(p) => Some(p),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Geometry::MultiPolygon),
        Kind::Point => None,
    }
    .ok_or_else(|| Failure::type_error(format!("{} got members of the wrong type", kind.name())))?;
    geo::validate(&geometry).map_err(geo_failure)?;
    Ok(geometry)
}

/// A `db.Geo.*` value. One class serves the six kinds (each exported class and method costs wasm and glue
/// size); the shim gives each kind its own callable with `instanceof` by kind.
#[wasm_bindgen]
pub struct GeoValue {
    reg: Registered,
}

#[wasm_bindgen]
impl GeoValue {
    /// `db.Geo.<kind>(first, second)`: validates and builds the value (throws -401002 / -401003 like wx).
    #[wasm_bindgen(constructor)]
    pub fn new(kind: &str, first: JsValue, second: JsValue) -> Result<GeoValue, JsValue> {
        let api = "db.Geo";
        let kind = Kind::parse(kind).ok_or_else(|| {
            throw(
                api,
                Failure::type_error(format!("db.Geo.{kind} is not a function")),
            )
        })?;
        let geometry = geometry_from_args(kind, &first, &second).map_err(|f| throw(api, f))?;
        Ok(GeoValue {
            reg: Registered::new(Internal::Geo(geometry)),
        })
    }

    /// The registry token.
    #[wasm_bindgen(getter, js_name = __tcw)]
    pub fn token(&self) -> u32 {
        self.reg.token()
    }

    /// The GeoJSON type (`Point`, …), for `instanceof db.Geo.<kind>`.
    #[wasm_bindgen(getter, js_name = _type)]
    pub fn kind(&self) -> String {
        self.geometry().kind().name().to_owned()
    }

    /// GeoJSON.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> JsValue {
        convert::to_js(&self.geometry().to_value())
    }

    /// `JSON.stringify(this.toJSON())`.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_string_js(&self) -> String {
        to_json(&self.geometry().to_value()).unwrap_or_default()
    }

    /// A Point's longitude.
    #[wasm_bindgen(getter)]
    pub fn longitude(&self) -> Option<f64> {
        match self.geometry() {
            Geometry::Point(p) => Some(p.lng.value),
            _ => None,
        }
    }

    /// A Point's latitude.
    #[wasm_bindgen(getter)]
    pub fn latitude(&self) -> Option<f64> {
        match self.geometry() {
            Geometry::Point(p) => Some(p.lat.value),
            _ => None,
        }
    }

    /// The points of a LineString or MultiPoint (Point values).
    #[wasm_bindgen(getter)]
    pub fn points(&self) -> Option<Array> {
        match self.geometry() {
            Geometry::LineString(points) | Geometry::MultiPoint(points) => Some(
                points
                    .iter()
                    .map(|p| geo_to_js(Geometry::Point(p.clone())))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The lines of a Polygon or MultiLineString (LineString values).
    #[wasm_bindgen(getter)]
    pub fn lines(&self) -> Option<Array> {
        match self.geometry() {
            Geometry::Polygon(lines) | Geometry::MultiLineString(lines) => Some(
                lines
                    .iter()
                    .map(|l| geo_to_js(Geometry::LineString(l.clone())))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The polygons of a MultiPolygon (Polygon values).
    #[wasm_bindgen(getter)]
    pub fn polygons(&self) -> Option<Array> {
        match self.geometry() {
            Geometry::MultiPolygon(polygons) => Some(
                polygons
                    .iter()
                    .map(|p| geo_to_js(Geometry::Polygon(p.clone())))
                    .collect(),
            ),
            _ => None,
        }
    }
}

impl GeoValue {
    fn geometry(&self) -> &Geometry {
        match &**self.reg.value() {
            Internal::Geo(geometry) => geometry,
            _ => unreachable!("a GeoValue always holds a geometry"),
        }
    }
}

/// A JS Geo value for `geometry` (result decoding, `points` / `lines` / `polygons`).
pub fn geo_to_js(geometry: Geometry) -> JsValue {
    GeoValue {
        reg: Registered::new(Internal::Geo(geometry)),
    }
    .into()
}

// ----------------------------------------------------------------------------------------- Database

struct DbCore {
    cloud: Rc<CloudCore>,
    env: Option<String>,
    config: JsValue,
}

impl DbCore {
    /// The outer error (not initialised) is thrown synchronously, the inner one (no env) is delivered.
    fn session(&self) -> Result<Result<Rc<Session>, Failure>, CloudError> {
        let per_call = if self.cloud.is_default() {
            self.env.as_deref()
        } else {
            None
        };
        self.cloud.session(Service::Database, per_call)
    }
}

/// `cloud.database(config?)`: `config.env` must be a string when given (asserted synchronously).
pub fn open(cloud: &Rc<CloudCore>, config: JsValue) -> Result<Database, JsValue> {
    let env = js::get(&config, "env");
    if !env.is_undefined() && env.as_string().is_none() {
        return Err(throw(
            "cloud.database",
            Failure::type_error("config.env should be string"),
        ));
    }
    let config = if config.is_object() {
        config
    } else {
        Object::new().into()
    };
    Ok(Database {
        core: Rc::new(DbCore {
            cloud: cloud.clone(),
            env: env.as_string().filter(|env| !env.is_empty()),
            config,
        }),
    })
}

/// `cloud.database()`: `collection`, `serverDate`, `RegExp`; `command` and `Geo` come from the shim.
#[wasm_bindgen]
pub struct Database {
    core: Rc<DbCore>,
}

/// Database's JS methods in `_call` index order (pkg-template/index.js defines them from it).
pub const DATABASE_METHODS: &str = "collection serverDate RegExp";

#[wasm_bindgen]
impl Database {
    /// The config passed to `database()` (or `{}`).
    #[wasm_bindgen(getter)]
    pub fn config(&self) -> JsValue {
        self.core.config.clone()
    }

    /// `db.<method>(argument)` for the methods of [`DATABASE_METHODS`], by index (one export, not three).
    #[wasm_bindgen(js_name = _call)]
    pub fn call(&self, method: u32, argument: JsValue) -> Result<JsValue, JsValue> {
        match method {
            0 => self.collection(argument).map(Into::into),
            1 => self.server_date(argument).map(Into::into),
            2 => self.reg_exp(argument).map(Into::into),
            _ => Err(unknown_method("db", method)),
        }
    }
}

impl Database {
    /// `db.collection(name)`: throws -401003 when the name is missing or empty.
    pub fn collection(&self, name: JsValue) -> Result<Query, JsValue> {
        let name = name.as_string().filter(|n| !n.is_empty()).ok_or_else(|| {
            throw(
                "db.collection",
                Failure::type_error("collectionName must be provided"),
            )
        })?;
        Ok(Query {
            state: QueryState {
                db: self.core.clone(),
                collection: name.into(),
                query: None,
                orders: Rc::new(Vec::new()),
                offset: 0,
                limit: None,
                projection: None,
            },
        })
    }

    /// `db.serverDate({ offset })` (offset in ms, default 0).
    pub fn server_date(&self, options: JsValue) -> Result<ServerDate, JsValue> {
        let offset = js::get(&options, "offset");
        let offset = if offset.is_undefined() {
            0.0
        } else {
            offset.as_f64().ok_or_else(|| {
                throw(
                    "db.serverDate",
                    Failure::type_error("offset should be a number"),
                )
            })?
        };
        Ok(ServerDate {
            reg: Registered::new(Internal::ServerDate {
                offset: convert::number(offset),
            }),
        })
    }

    /// `db.RegExp({ regexp, options })`.
    pub fn reg_exp(&self, options: JsValue) -> Result<DbRegExp, JsValue> {
        let api = "db.RegExp";
        let regexp = js::get_string(&options, "regexp")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| throw(api, Failure::type_error("regexp must be a string")))?;
        let flags = js::get(&options, "options");
        let flags = if flags.is_undefined() {
            String::new()
        } else {
            flags
                .as_string()
                .ok_or_else(|| throw(api, Failure::type_error("options must be a string")))?
        };
        Ok(DbRegExp {
            reg: Registered::new(Internal::RegExp {
                regexp: regexp.into(),
                options: flags.into(),
            }),
        })
    }
}

// ------------------------------------------------------------------------------- execution (shared)

type Finish = Box<dyn FnOnce(JsValue) -> Result<JsValue, Failure>>;

/// Runs one action after validation: a Promise, or callbacks when `options` has them.
fn execute(
    db: &DbCore,
    api: &'static str,
    options: &JsValue,
    prepared: Result<(&'static str, Body), Failure>,
    finish: Finish,
) -> Result<JsValue, JsValue> {
    let session = db.session().map_err(|error| error.to_js())?;
    let signal = js::get(options, "signal");
    let signal = signal
        .is_object()
        .then(|| signal.unchecked_into::<AbortSignal>());
    let call = async move {
        let session = session.map_err(|f| f.into_error(api))?;
        let (action, body) = prepared.map_err(|f| f.into_error(api))?;
        let request = async move {
            // Reads change nothing, so transient failures are retried (transport::retry); writes are not.
            let response = if matches!(action, request::QUERY | request::COUNT | request::AGGREGATE)
            {
                call_idempotent_action(&session, action, &body.params()).await?
            } else {
                call_action(&session, action, &body.params()).await?
            };
            finish(response)
        };
        Abortable::new(request, signal)
            .await
            .map_err(|f| f.into_error(api))
    };
    Ok(call_style::dispatch(api, options, call))
}

/// Validates `{ onChange, onError }` (both functions, as wx asserts) and starts the watcher; errors that
/// come later (no env, no socket, server errors after retries) go to `onError`.
fn start_watch(
    db: &DbCore,
    api: &'static str,
    options: &JsValue,
    spec: Spec,
) -> Result<JsValue, JsValue> {
    let on_change = js::get(options, "onChange");
    let on_error = js::get(options, "onError");
    let (Some(on_change), Some(on_error)) = (
        on_change.dyn_ref::<js_sys::Function>(),
        on_error.dyn_ref::<js_sys::Function>(),
    ) else {
        return Err(throw(
            api,
            Failure::type_error("onChange and onError must be functions"),
        ));
    };
    let session = db.session().map_err(|error| error.to_js())?;
    let session = session.map_err(|f| throw(api, f))?;
    Ok(realtime::watch(&session, api, &spec, on_change, on_error))
}

/// `{ ...fields, errMsg: '<api>:ok' }`.
fn ok_result(api: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let out = Object::new();
    for (key, value) in fields {
        js::set(&out, key, value);
    }
    js::set(&out, "errMsg", &JsValue::from_str(&ok_message(api)));
    out.into()
}

fn stats(key: &str, value: JsValue) -> JsValue {
    let out = Object::new();
    js::set(&out, key, &value);
    out.into()
}

fn data_of(response: &JsValue, key: &str) -> JsValue {
    js::get(&js::get(response, "data"), key)
}

fn number_or_zero(value: JsValue) -> JsValue {
    if value.as_f64().is_some() {
        value
    } else {
        JsValue::from_f64(0.0)
    }
}

/// `options.data` as an object (not an array), converted.
fn data_object(options: &JsValue) -> Result<Value, Failure> {
    let data = js::get(options, "data");
    if !data.is_object() || Array::is_array(&data) || data.is_function() {
        return Err(Failure::type_error("parameter.data should be object"));
    }
    value_of(&data)
}

fn check_size(json: &str, what: &str) -> Result<(), Failure> {
    if json.len() > limits::MAX_RECORD_BYTES {
        return Err(Failure::parameter_error(format!(
            "{what} size must be less than 512 KB"
        )));
    }
    Ok(())
}

fn has_id(data: &Value) -> bool {
    matches!(data, Value::Object(obj) if super::value::get(obj, "_id").is_some())
}

fn id_failure() -> Failure {
    Failure::parameter_error("不能更新_id的值")
}

/// The encoded update document of `options.data` (non-empty, no `_id`, ≤ 512 KB).
fn update_json(options: &JsValue) -> Result<String, Failure> {
    let data = data_object(options)?;
    if has_id(&data) {
        return Err(id_failure());
    }
    let Value::Object(data) = data else {
        unreachable!()
    };
    if data.is_empty() {
        return Err(Failure::parameter_error("data must not be empty"));
    }
    let encoded = encode_update(&data).map_err(encode_failure)?;
    let json = to_json(&Value::Object(encoded)).map_err(encode_failure)?;
    check_size(&json, "update expression")?;
    Ok(json)
}

// ------------------------------------------------------------------------------------------- Query

#[derive(Clone)]
struct QueryState {
    db: Rc<DbCore>,
    collection: Rc<str>,
    /// The encoded `where`, as JSON text.
    query: Option<Rc<str>>,
    orders: Rc<Vec<Order>>,
    offset: u32,
    limit: Option<u32>,
    projection: Option<Rc<str>>,
}

fn count_arg(api: &str, value: &JsValue, name: &str) -> Result<u32, JsValue> {
    if value.is_undefined() {
        return Err(throw(
            api,
            Failure::parameter_error(format!("{name} must be provided")),
        ));
    }
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && n >= 0.0 && n <= u32::MAX as f64 => Ok(n as u32),
        _ => Err(throw(
            api,
            Failure::type_error(format!("{name} must be a non-negative integer")),
        )),
    }
}

impl QueryState {
    fn where_(&self, condition: JsValue) -> Result<QueryState, JsValue> {
        let api = "collection.where";
        if condition.is_undefined() || condition.is_null() {
            return Err(throw(
                api,
                Failure::parameter_error("query condition must be provided"),
            ));
        }
        if !condition.is_object() || Array::is_array(&condition) {
            return Err(throw(
                api,
                Failure::type_error("query condition must be an object"),
            ));
        }
        let value = value_of(&condition).map_err(|f| throw(api, f))?;
        // `where({ _id: undefined })` must not become `{}` (which matches, or removes, everything).
        if matches!(&value, Value::Object(obj) if obj.is_empty())
            && Object::keys(condition.unchecked_ref::<Object>()).length() > 0
        {
            return Err(throw(
                api,
                Failure::parameter_error("query condition values must not all be undefined"),
            ));
        }
        let encoded = encode_query(&value)
            .and_then(|query| to_json(&query))
            .map_err(|e| throw(api, encode_failure(e)))?;
        // A second where() is AND-ed with the first, as wx does (`_.and(previous, next)`).
        let query = match &self.query {
            Some(previous) => format!("{{\"$and\":[{previous},{encoded}]}}"),
            None => encoded,
        };
        Ok(QueryState {
            query: Some(query.into()),
            ..self.clone()
        })
    }

    fn order_by(&self, field: JsValue, direction: JsValue) -> Result<QueryState, JsValue> {
        let api = "collection.orderBy";
        let field = field
            .as_string()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| throw(api, Failure::parameter_error("fieldPath must be provided")))?;
        let direction = direction
            .as_string()
            .ok_or_else(|| throw(api, Failure::parameter_error("order must be provided")))?;
        let mut orders = (*self.orders).clone();
        orders.push(Order {
            field,
            descending: direction == "desc",
        });
        Ok(QueryState {
            orders: Rc::new(orders),
            ..self.clone()
        })
    }

    fn limit(&self, value: JsValue) -> Result<QueryState, JsValue> {
        let limit = count_arg("collection.limit", &value, "limit")?;
        Ok(QueryState {
            limit: Some(limit),
            ..self.clone()
        })
    }

    fn skip(&self, value: JsValue) -> Result<QueryState, JsValue> {
        let offset = count_arg("collection.skip", &value, "offset")?;
        Ok(QueryState {
            offset,
            ..self.clone()
        })
    }

    fn field(&self, projection: JsValue) -> Result<QueryState, JsValue> {
        let projection = projection_json("collection.field", &projection)?;
        Ok(QueryState {
            projection: Some(projection.into()),
            ..self.clone()
        })
    }

    fn get(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.get";
        let limit = match self.limit {
            Some(limit) if limit > 0 => limit.min(CLIENT_MAX_LIMIT),
            _ => CLIENT_MAX_LIMIT,
        };
        let body = request::query(
            &self.collection,
            self.query.as_deref(),
            &self.orders,
            self.offset,
            limit,
            self.projection.as_deref(),
        );
        execute(
            &self.db,
            api,
            &options,
            Ok((request::QUERY, body)),
            Box::new(move |response| {
                let list = data_of(&response, "list");
                let list = if Array::is_array(&list) {
                    convert::decode(list)
                } else {
                    Array::new().into()
                };
                Ok(ok_result(api, &[("data", list)]))
            }),
        )
    }

    fn count(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.count";
        let body = request::count(&self.collection, self.query.as_deref());
        execute(
            &self.db,
            api,
            &options,
            Ok((request::COUNT, body)),
            Box::new(move |response| {
                let total = number_or_zero(data_of(&response, "total"));
                Ok(ok_result(api, &[("total", total)]))
            }),
        )
    }

    fn update(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.update";
        let prepared = match &self.query {
            None => Err(Failure::parameter_error("query condition must be provided")),
            Some(query) => update_json(&options).map(|data| {
                (
                    request::UPDATE,
                    request::where_update(&self.collection, query, &data),
                )
            }),
        };
        execute(
            &self.db,
            api,
            &options,
            prepared,
            Box::new(move |response| {
                let updated = number_or_zero(data_of(&response, "updated"));
                Ok(ok_result(api, &[("stats", stats("updated", updated))]))
            }),
        )
    }

    fn remove(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.remove";
        let prepared = match self.query.as_deref() {
            Some(query) if query != "{}" => Ok((
                request::DELETE,
                request::where_remove(&self.collection, query),
            )),
            _ => Err(Failure::parameter_error(
                "query condition must be provided and not be empty",
            )),
        };
        execute(
            &self.db,
            api,
            &options,
            prepared,
            Box::new(move |response| {
                let removed = number_or_zero(data_of(&response, "deleted"));
                Ok(ok_result(api, &[("stats", stats("removed", removed))]))
            }),
        )
    }
}

fn projection_json(api: &str, projection: &JsValue) -> Result<String, JsValue> {
    if projection.is_undefined() || projection.is_null() {
        return Err(throw(
            api,
            Failure::parameter_error("projection must be provided"),
        ));
    }
    match value_of(projection).map_err(|f| throw(api, f))? {
        Value::Object(obj) => to_json(&Value::Object(encode_projection(&obj)))
            .map_err(|e| throw(api, encode_failure(e))),
        _ => Err(throw(
            api,
            Failure::type_error("projection must be an object"),
        )),
    }
}

/// `db.collection(name)` and what `where` / `orderBy` / `limit` / `skip` / `field` return. One class
/// serves both (each exported method costs wasm size); `doc`/`add`/`aggregate` act on the collection.
#[wasm_bindgen]
pub struct Query {
    state: QueryState,
}

/// Query's JS methods in `_call` index order; pkg-template/index.js defines them from this very list.
pub const QUERY_METHODS: &str =
    "where orderBy limit skip field get count update remove doc add aggregate watch";

#[wasm_bindgen]
impl Query {
    /// `query.<method>(first, second)` for the methods of [`QUERY_METHODS`], by index: one export instead
    /// of twelve (each export costs wasm shim code and JS glue).
    #[wasm_bindgen(js_name = _call)]
    pub fn call(&self, method: u32, first: JsValue, second: JsValue) -> Result<JsValue, JsValue> {
        match method {
            0 => self.where_(first).map(Into::into),
            1 => self.order_by(first, second).map(Into::into),
            2 => self.limit(first).map(Into::into),
            3 => self.skip(first).map(Into::into),
            4 => self.field(first).map(Into::into),
            5 => self.get(first),
            6 => self.count(first),
            7 => self.update(first),
            8 => self.remove(first),
            9 => self.doc(first).map(Into::into),
            10 => self.add(first),
            11 => Ok(self.aggregate().into()),
            12 => self.watch(first),
            _ => Err(unknown_method("collection", method)),
        }
    }

    /// The collection name.
    #[wasm_bindgen(getter, js_name = collectionName)]
    pub fn collection_name(&self) -> String {
        self.state.collection.to_string()
    }
}

impl Query {
    /// `where(condition)`: a new Query; a second `where` is AND-ed with the first.
    pub fn where_(&self, condition: JsValue) -> Result<Query, JsValue> {
        self.state.where_(condition).map(|state| Query { state })
    }

    /// `orderBy(fieldPath, 'asc' | 'desc')`: a new Query.
    pub fn order_by(&self, field: JsValue, direction: JsValue) -> Result<Query, JsValue> {
        self.state
            .order_by(field, direction)
            .map(|state| Query { state })
    }

    /// `limit(n)`: a new Query (the client sends at most 20).
    pub fn limit(&self, value: JsValue) -> Result<Query, JsValue> {
        self.state.limit(value).map(|state| Query { state })
    }

    /// `skip(n)`: a new Query.
    pub fn skip(&self, value: JsValue) -> Result<Query, JsValue> {
        self.state.skip(value).map(|state| Query { state })
    }

    /// `field(projection)`: a new Query.
    pub fn field(&self, projection: JsValue) -> Result<Query, JsValue> {
        self.state.field(projection).map(|state| Query { state })
    }

    /// `get(options?)` → `{ data, errMsg: 'collection.get:ok' }`.
    pub fn get(&self, options: JsValue) -> Result<JsValue, JsValue> {
        self.state.get(options)
    }

    /// `count(options?)` → `{ total, errMsg: 'collection.count:ok' }`.
    pub fn count(&self, options: JsValue) -> Result<JsValue, JsValue> {
        self.state.count(options)
    }

    /// `update({ data })` on every matching document → `{ stats: { updated } }`.
    pub fn update(&self, options: JsValue) -> Result<JsValue, JsValue> {
        self.state.update(options)
    }

    /// `remove()` of every matching document → `{ stats: { removed } }`.
    pub fn remove(&self, options: JsValue) -> Result<JsValue, JsValue> {
        self.state.remove(options)
    }

    /// `doc(id)`: throws when `id` is missing (`collection.doc:fail … docId must not be empty`).
    pub fn doc(&self, id: JsValue) -> Result<DocumentReference, JsValue> {
        let api = "collection.doc";
        let valid = id.as_string().is_some_and(|id| !id.is_empty()) || id.as_f64().is_some();
        if !valid {
            let failure = if id.is_undefined() || id.is_null() || id.as_string().is_some() {
                Failure::parameter_error("docId must not be empty")
            } else {
                Failure::type_error("docId should be string or number")
            };
            return Err(throw(api, failure));
        }
        let id_json = to_json(&value_of(&id).map_err(|f| throw(api, f))?)
            .map_err(|e| throw(api, encode_failure(e)))?;
        Ok(DocumentReference {
            db: self.state.db.clone(),
            collection: self.state.collection.clone(),
            id,
            id_json: id_json.into(),
            projection: None,
        })
    }

    /// `add({ data })` → `{ _id, errMsg: 'collection.add:ok' }`.
    pub fn add(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.add";
        let prepared = data_object(&options).and_then(|data| {
            let json = to_json(&data).map_err(encode_failure)?;
            check_size(&json, "record")?;
            Ok((request::ADD, request::add(&self.state.collection, &json)))
        });
        execute(
            &self.state.db,
            api,
            &options,
            prepared,
            Box::new(move |response| Ok(ok_result(api, &[("_id", data_of(&response, "_id"))]))),
        )
    }

    /// `watch({ onChange, onError })`: a live view of `where` / `orderBy` / `limit` (not `field`, as wx).
    pub fn watch(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let spec = Spec {
            collection: self.state.collection.to_string(),
            query: self.state.query.as_deref().unwrap_or("{}").to_owned(),
            limit: self.state.limit,
            orders: (*self.state.orders).clone(),
        };
        start_watch(&self.state.db, "collection.watch", &options, spec)
    }

    /// `aggregate()`: an empty pipeline.
    pub fn aggregate(&self) -> Aggregate {
        Aggregate {
            db: self.state.db.clone(),
            collection: self.state.collection.clone(),
            stages: Rc::new(Vec::new()),
        }
    }
}

// ---------------------------------------------------------------------------------------- Document

/// `collection.doc(id)`.
#[wasm_bindgen]
pub struct DocumentReference {
    db: Rc<DbCore>,
    collection: Rc<str>,
    id: JsValue,
    id_json: Rc<str>,
    projection: Option<Rc<str>>,
}

impl DocumentReference {
    fn id_text(&self) -> String {
        self.id
            .as_string()
            .unwrap_or_else(|| self.id_json.to_string())
    }
}

/// DocumentReference's JS methods in `_call` index order (pkg-template/index.js defines them from it).
pub const DOCUMENT_METHODS: &str = "field get set update remove watch";

#[wasm_bindgen]
impl DocumentReference {
    /// The document id.
    #[wasm_bindgen(getter, js_name = _id)]
    pub fn id(&self) -> JsValue {
        self.id.clone()
    }

    /// `doc.<method>(options)` for the methods of [`DOCUMENT_METHODS`], by index (one export, not five).
    #[wasm_bindgen(js_name = _call)]
    pub fn call(&self, method: u32, options: JsValue) -> Result<JsValue, JsValue> {
        match method {
            0 => self.field(options).map(Into::into),
            1 => self.get(options),
            2 => self.set(options),
            3 => self.update(options),
            4 => self.remove(options),
            5 => self.watch(options),
            _ => Err(unknown_method("document", method)),
        }
    }
}

impl DocumentReference {
    /// `field(projection)`: the projection for the following `get`.
    pub fn field(&self, projection: JsValue) -> Result<DocumentReference, JsValue> {
        let projection = projection_json("document.field", &projection)?;
        Ok(DocumentReference {
            db: self.db.clone(),
            collection: self.collection.clone(),
            id: self.id.clone(),
            id_json: self.id_json.clone(),
            projection: Some(projection.into()),
        })
    }

    /// `get()` → `{ data: <document>, errMsg: 'document.get:ok' }`; fails when there is no such document.
    pub fn get(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "document.get";
        let body = request::doc_get(&self.collection, &self.id_json, self.projection.as_deref());
        let id = self.id_text();
        execute(
            &self.db,
            api,
            &options,
            Ok((request::QUERY, body)),
            Box::new(move |response| {
                let list = data_of(&response, "list");
                let first = if Array::is_array(&list) {
                    list.unchecked_ref::<Array>().get(0)
                } else {
                    JsValue::UNDEFINED
                };
                if !first.is_object() {
                    return Err(Failure::Local {
                        err_code: errcode::GENERIC,
                        detail: format!("cannot find document with _id {id}, {NOT_FOUND_HINT}"),
                    });
                }
                Ok(ok_result(api, &[("data", convert::decode(first))]))
            }),
        )
    }

    /// `set({ data })`: replaces (or creates) the document → `{ _id, stats: { updated, created } }`.
    pub fn set(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "document.set";
        let prepared = data_object(&options).and_then(|data| {
            if has_id(&data) {
                return Err(id_failure());
            }
            if contains_update_command(&data) {
                return Err(Failure::Server {
                    code: codes::DATABASE_REQUEST_FAILED.to_owned(),
                    message: "update operator complicit".to_owned(),
                    request_id: None,
                });
            }
            let json = to_json(&data).map_err(encode_failure)?;
            check_size(&json, "record")?;
            Ok((
                request::UPDATE,
                request::doc_set(&self.collection, &self.id_json, &json),
            ))
        });
        let id = self.id.clone();
        execute(
            &self.db,
            api,
            &options,
            prepared,
            Box::new(move |response| {
                let upserted = data_of(&response, "upserted_id");
                let created = upserted.is_truthy();
                let stats_value = Object::new();
                js::set(
                    &stats_value,
                    "updated",
                    &number_or_zero(data_of(&response, "updated")),
                );
                js::set(
                    &stats_value,
                    "created",
                    &JsValue::from_f64(if created { 1.0 } else { 0.0 }),
                );
                let id = if created { upserted } else { id };
                Ok(ok_result(
                    api,
                    &[("_id", id), ("stats", stats_value.into())],
                ))
            }),
        )
    }

    /// `update({ data })` → `{ stats: { updated } }`.
    pub fn update(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "document.update";
        let prepared = update_json(&options).map(|data| {
            (
                request::UPDATE,
                request::doc_update(&self.collection, &self.id_json, &data),
            )
        });
        execute(
            &self.db,
            api,
            &options,
            prepared,
            Box::new(move |response| {
                let updated = number_or_zero(data_of(&response, "updated"));
                Ok(ok_result(api, &[("stats", stats("updated", updated))]))
            }),
        )
    }

    /// `watch({ onChange, onError })` on this one document (`{ _id }`).
    pub fn watch(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let spec = Spec {
            collection: self.collection.to_string(),
            query: request::id_query(&self.id_json),
            limit: None,
            orders: Vec::new(),
        };
        start_watch(&self.db, "document.watch", &options, spec)
    }

    /// `remove()` → `{ stats: { removed } }`; fails when nothing was removed (as wx).
    pub fn remove(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "document.remove";
        let body = request::doc_remove(&self.collection, &self.id_json);
        let id = self.id_text();
        execute(
            &self.db,
            api,
            &options,
            Ok((request::DELETE, body)),
            Box::new(move |response| {
                let removed = number_or_zero(data_of(&response, "deleted"));
                if removed.as_f64() == Some(0.0) {
                    return Err(Failure::Local {
                        err_code: errcode::GENERIC,
                        detail: format!("cannot remove document with _id {id}, {NOT_FOUND_HINT}"),
                    });
                }
                Ok(ok_result(api, &[("stats", stats("removed", removed))]))
            }),
        )
    }
}

// --------------------------------------------------------------------------------------- Aggregate

/// `collection.aggregate()`: each stage returns a new Aggregate; `end()` runs it.
#[wasm_bindgen]
pub struct Aggregate {
    db: Rc<DbCore>,
    collection: Rc<str>,
    stages: Rc<Vec<(String, String)>>,
}

const STAGES: [&str; 16] = [
    "addFields",
    "bucket",
    "bucketAuto",
    "count",
    "geoNear",
    "group",
    "limit",
    "lookup",
    "match",
    "project",
    "replaceRoot",
    "sample",
    "skip",
    "sort",
    "sortByCount",
    "unwind",
];

/// One stage's value as JSON text, encoded as the official SDK does (`match` and `geoNear`'s `query`
/// query-encoded). Serves `aggregate().<stage>(param)` and `db.command.aggregate.pipeline().<stage>(param)`
/// (whose `done()` the shim builds from these texts, for `lookup({ let, pipeline })`).
#[wasm_bindgen(js_name = stageValue)]
pub fn stage_value(name: &str, param: JsValue) -> Result<String, JsValue> {
    let api = "collection.aggregate";
    if !STAGES.contains(&name) {
        return Err(throw(
            api,
            Failure::type_error(format!("aggregate stage {name} is not supported")),
        ));
    }
    if param.is_undefined() {
        return Err(throw(
            api,
            Failure::parameter_error(format!("{name} requires an argument")),
        ));
    }
    let value = value_of(&param).map_err(|f| throw(api, f))?;
    request::stage_value(name, &value).map_err(|e| throw(api, encode_failure(e)))
}

#[wasm_bindgen]
impl Aggregate {
    /// `aggregate().<stage>(param)`: a new Aggregate with the stage appended (the shim defines one method
    /// per stage).
    #[wasm_bindgen(js_name = _stage)]
    pub fn stage(&self, name: &str, param: JsValue) -> Result<Aggregate, JsValue> {
        let text = stage_value(name, param)?;
        let mut stages = (*self.stages).clone();
        stages.push((name.to_owned(), text));
        Ok(Aggregate {
            db: self.db.clone(),
            collection: self.collection.clone(),
            stages: Rc::new(stages),
        })
    }
}

#[wasm_bindgen]
impl Aggregate {
    /// `end(options?)` → `{ list, errMsg: 'collection.aggregate:ok' }`.
    pub fn end(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let api = "collection.aggregate";
        let body = request::aggregate(&self.collection, &self.stages);
        execute(
            &self.db,
            api,
            &options,
            Ok((request::AGGREGATE, body)),
            Box::new(move |response| {
                // `data.list` is a JSON string of an array of EJSON strings (protocol.md §5.5); accept
                // plain arrays too.
                let mut list = data_of(&response, "list");
                if let Some(text) = list.as_string() {
                    list = js_sys::JSON::parse(&text)
                        .map_err(|_| Failure::Network("invalid aggregate result".to_owned()))?;
                }
                let list: Array = if Array::is_array(&list) {
                    list.unchecked_into()
                } else {
                    Array::new()
                };
                for i in 0..list.length() {
                    let item = list.get(i);
                    let item = match item.as_string() {
                        Some(text) => js_sys::JSON::parse(&text).unwrap_or(item),
                        None => item,
                    };
                    list.set(i, convert::decode(item));
                }
                Ok(ok_result(api, &[("list", list.into())]))
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim defines the `_call` methods from the same lists: an index means the same method on both
    /// sides.
    #[test]
    fn shim_lists_the_call_methods_in_index_order() {
        let shim = include_str!("../../pkg-template/index.js");
        for (name, list) in [
            ("DATABASE_METHODS", DATABASE_METHODS),
            ("QUERY_METHODS", QUERY_METHODS),
            ("DOCUMENT_METHODS", DOCUMENT_METHODS),
        ] {
            let line = format!("const {name} = '{list}';");
            assert!(shim.contains(&line), "pkg-template/index.js lacks {line}");
        }
    }
}
