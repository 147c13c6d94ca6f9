//! Collection permissions: the four wx presets (简易权限) and custom security rules (安全规则).
//!
//! Semantics implemented (CloudBase / wx documentation):
//! * The admin credential (functions through `wx-server-sdk`, the admin endpoint) bypasses all rules.
//! * Presets filter implicitly, as wx's basic permissions do: a client query on a 仅创建者可读写
//!   (`PRIVATE`) collection returns only the caller's own documents (the server ANDs
//!   `_openid == caller` into it) and a multi-document update or remove only touches the caller's own;
//!   a `doc(id)` call on someone else's document finds nothing.
//!   - `PRIVATE` 仅创建者可读写: read/update/delete own documents; create allowed. **Default for new
//!     collections** (what the wx console proposes for a new collection).
//!   - `READONLY` 所有用户可读，仅创建者可写: read all; update/delete own; create allowed.
//!   - `ADMINWRITE` 所有用户可读: read all; every client write is `DATABASE_PERMISSION_DENIED`.
//!   - `ADMINONLY` 仅管理端可读写: every client call is `DATABASE_PERMISSION_DENIED`.
//! * Custom rules `{"read","write","create","update","delete"}` (booleans or expressions; `create`,
//!   `update` and `delete` fall back to `write`; a missing rule denies) are *checked*, never applied as
//!   filters: a query (read, multi-document update/remove) must be a subset of the rule — the rule is
//!   evaluated with three-valued logic over the query's top-level equality constraints (`{f: v}`,
//!   `{f: {$eq: v}}`, inside top-level `$and`), and only a rule that is then provably true lets it run;
//!   otherwise `DATABASE_PERMISSION_DENIED`. A `doc(id)` call whose query does not prove the rule is
//!   checked against the stored document itself. `create` is checked against the new document.
//!   The placeholder string `'{openid}'` in a client query stands for the caller's openid.
//! * Expressions: `auth.openid`, `auth.uid`, `doc.<path>`, string/number/boolean/null literals,
//!   `== != < <= > >=`, `&& || !`, parentheses. Not implemented: `get()`, `request.data`, `in`.

use serde_json::{Map, Value};

use crate::error::{DbError, DbResult};
use crate::value::{compare_values, get_path, values_equal};
use cloud_protocol::codes;

/// The four presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// 仅创建者可读写.
    Private,
    /// 所有用户可读，仅创建者可写.
    ReadOnly,
    /// 所有用户可读 (only the admin writes).
    AdminWrite,
    /// 仅管理端可读写.
    AdminOnly,
}

impl Preset {
    /// The name used in rules files (`PRIVATE`, …).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Private => "PRIVATE",
            Preset::ReadOnly => "READONLY",
            Preset::AdminWrite => "ADMINWRITE",
            Preset::AdminOnly => "ADMINONLY",
        }
    }

    fn parse(name: &str) -> Option<Preset> {
        Some(match name {
            "PRIVATE" | "仅创建者可读写" => Preset::Private,
            "READONLY" | "所有用户可读仅创建者可写" | "所有用户可读，仅创建者可写" => {
                Preset::ReadOnly
            }
            "ADMINWRITE" | "所有用户可读" => Preset::AdminWrite,
            "ADMINONLY" | "仅管理端可读写" => Preset::AdminOnly,
            _ => return None,
        })
    }
}

/// The operation being authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Query, count, aggregate.
    Read,
    /// Add.
    Create,
    /// Update, set.
    Update,
    /// Remove.
    Delete,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin credential: no rules apply.
    Admin,
    /// A signed-in client.
    User(UserCtx),
}

/// A client caller.
#[derive(Debug, Clone)]
pub struct UserCtx {
    /// The caller's openid.
    pub openid: String,
    /// The caller's uid.
    pub uid: String,
}

/// What a rule decides about a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run the query as is.
    Allow,
    /// Run it with this condition ANDed in (presets).
    Filter(Value),
    /// Run it, then check every matched document with [`Rules::allows_document`] (custom rules on a
    /// `doc(id)` call whose query did not prove the rule).
    CheckEach,
    /// Refuse it.
    Deny,
}

/// A collection's permissions.
#[derive(Debug, Clone)]
pub enum Rules {
    /// A wx preset.
    Preset(Preset),
    /// Custom security rules.
    Custom(Box<CustomRules>),
}

/// Compiled custom rules; `None` denies.
#[derive(Debug, Clone)]
pub struct CustomRules {
    read: Option<Expr>,
    write: Option<Expr>,
    create: Option<Expr>,
    update: Option<Expr>,
    delete: Option<Expr>,
}

fn invalid(message: impl Into<String>) -> DbError {
    DbError::invalid_param(message)
}

/// The default rules of a new collection, as stored JSON.
pub fn default_rules() -> Value {
    Value::String(Preset::Private.name().to_string())
}

impl Rules {
    /// Parses stored or imported rules: `null`/`{}` (the default, `PRIVATE`), a preset name as a string
    /// or as `{"aclTag": name}` / `{"preset": name}`, or `{"read": …, "write": …, …}`.
    pub fn parse(value: &Value) -> DbResult<Rules> {
        match value {
            Value::Null => Ok(Rules::Preset(Preset::Private)),
            Value::String(name) => Preset::parse(name)
                .map(Rules::Preset)
                .ok_or_else(|| invalid(format!("unknown permission preset {name:?}"))),
            Value::Object(map) if map.is_empty() => Ok(Rules::Preset(Preset::Private)),
            Value::Object(map) => {
                if let Some(name) = map.get("aclTag").or_else(|| map.get("preset")) {
                    return Rules::parse(name);
                }
                let mut custom = CustomRules {
                    read: None,
                    write: None,
                    create: None,
                    update: None,
                    delete: None,
                };
                for (key, rule) in map {
                    let expr = match rule {
                        Value::Bool(b) => Expr::Literal(Value::Bool(*b)),
                        Value::String(text) => Expr::parse(text)?,
                        _ => {
                            return Err(invalid(format!(
                                "rule {key} must be a boolean or an expression string"
                            )))
                        }
                    };
                    let slot = match key.as_str() {
                        "read" => &mut custom.read,
                        "write" => &mut custom.write,
                        "create" => &mut custom.create,
                        "update" => &mut custom.update,
                        "delete" => &mut custom.delete,
                        other => return Err(invalid(format!("unknown rule key {other:?}"))),
                    };
                    *slot = Some(expr);
                }
                Ok(Rules::Custom(Box::new(custom)))
            }
            _ => Err(invalid("rules must be a preset name or an object")),
        }
    }

    fn custom_rule(custom: &CustomRules, op: Operation) -> Option<&Expr> {
        match op {
            Operation::Read => custom.read.as_ref(),
            Operation::Create => custom.create.as_ref().or(custom.write.as_ref()),
            Operation::Update => custom.update.as_ref().or(custom.write.as_ref()),
            Operation::Delete => custom.delete.as_ref().or(custom.write.as_ref()),
        }
    }

    /// The decision for a query-driven operation (`op` ≠ Create). `by_id` is a `doc(id)` call.
    pub fn decide(&self, op: Operation, user: &UserCtx, query: &Value, by_id: bool) -> Decision {
        match self {
            Rules::Preset(preset) => {
                let own = || Decision::Filter(serde_json::json!({ "_openid": user.openid }));
                match (preset, op) {
                    (Preset::AdminOnly, _) => Decision::Deny,
                    (Preset::AdminWrite, Operation::Read) | (Preset::ReadOnly, Operation::Read) => {
                        Decision::Allow
                    }
                    (Preset::AdminWrite, _) => Decision::Deny,
                    (_, Operation::Create) => Decision::Allow,
                    (Preset::Private, _) | (Preset::ReadOnly, _) => own(),
                }
            }
            Rules::Custom(custom) => {
                let Some(rule) = Rules::custom_rule(custom, op) else {
                    return Decision::Deny;
                };
                let constraints = equality_constraints(query);
                match rule.eval(&Env {
                    user,
                    doc: DocView::Constraints(&constraints),
                }) {
                    Tri::True => Decision::Allow,
                    _ if by_id => Decision::CheckEach,
                    _ => Decision::Deny,
                }
            }
        }
    }

    /// Whether the rule for `op` holds for a concrete document (creates, and [`Decision::CheckEach`]).
    pub fn allows_document(&self, op: Operation, user: &UserCtx, doc: &Value) -> bool {
        match self {
            Rules::Preset(preset) => match (preset, op) {
                (Preset::AdminOnly, _) => false,
                (Preset::AdminWrite, Operation::Read) | (Preset::ReadOnly, Operation::Read) => true,
                (Preset::AdminWrite, _) => false,
                (_, Operation::Create) => true,
                _ => doc.get("_openid").and_then(Value::as_str) == Some(user.openid.as_str()),
            },
            Rules::Custom(custom) => Rules::custom_rule(custom, op).is_some_and(|rule| {
                rule.eval(&Env {
                    user,
                    doc: DocView::Document(doc),
                }) == Tri::True
            }),
        }
    }
}

/// The permission error.
pub fn denied() -> DbError {
    DbError {
        code: codes::DATABASE_PERMISSION_DENIED,
        message: "Permission denied".to_string(),
    }
}

/// Top-level equality constraints of a query: `path → value`.
pub fn equality_constraints(query: &Value) -> Map<String, Value> {
    fn collect(query: &Value, out: &mut Map<String, Value>) {
        let Value::Object(map) = query else { return };
        for (key, value) in map {
            if key == "$and" {
                if let Value::Array(items) = value {
                    items.iter().for_each(|item| collect(item, out));
                }
                continue;
            }
            if key.starts_with('$') {
                continue;
            }
            let literal = match value {
                Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                    if crate::ejson::is_literal_object(value)
                        && crate::ejson::regex_literal(value).is_none()
                    {
                        Some(value)
                    } else if ops.len() == 1 {
                        ops.get("$eq")
                    } else {
                        None
                    }
                }
                Value::Array(_) => None,
                other => Some(other),
            };
            if let Some(literal) = literal {
                out.insert(key.clone(), literal.clone());
            }
        }
    }
    let mut out = Map::new();
    collect(query, &mut out);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn from(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

enum DocView<'a> {
    Document(&'a Value),
    Constraints(&'a Map<String, Value>),
}

struct Env<'a> {
    user: &'a UserCtx,
    doc: DocView<'a>,
}

/// A rule expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// `auth.x` or `doc.x.y`.
    Path(String, Vec<String>),
    /// `!e`.
    Not(Box<Expr>),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
    /// `a <op> b`.
    Compare(CompareOp, Box<Expr>, Box<Expr>),
}

/// Comparison operators of rule expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

fn tokenize(text: &str) -> DbResult<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(invalid("unterminated string in rule")),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        i += 1;
                        s.extend(chars.get(i));
                    }
                    Some(&other) => s.push(other),
                }
                i += 1;
            }
            i += 1;
            out.push(Token::Str(s));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                text.parse()
                    .map_err(|_| invalid(format!("bad number {text} in rule")))?,
            ));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '.'))
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = ["==", "!=", "<=", ">=", "&&", "||"]
            .into_iter()
            .find(|op| two == *op)
            .or_else(|| {
                ["<", ">", "!", "(", ")"]
                    .into_iter()
                    .find(|op| op.starts_with(c))
            })
            .ok_or_else(|| invalid(format!("unexpected character {c:?} in rule")))?;
        i += op.len();
        out.push(Token::Op(op));
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Op(o)) if *o == op)
    }

    fn or(&mut self) -> DbResult<Expr> {
        let mut left = self.and()?;
        while self.peek_op("||") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> DbResult<Expr> {
        let mut left = self.unary()?;
        while self.peek_op("&&") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> DbResult<Expr> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(invalid("rule expression nests too deeply"));
        }
        let out = if self.peek_op("!") {
            self.pos += 1;
            Ok(Expr::Not(Box::new(self.unary()?)))
        } else {
            self.comparison()
        };
        self.depth -= 1;
        out
    }

    fn comparison(&mut self) -> DbResult<Expr> {
        let left = self.primary()?;
        let op = match self.tokens.get(self.pos) {
            Some(Token::Op("==")) => CompareOp::Eq,
            Some(Token::Op("!=")) => CompareOp::Ne,
            Some(Token::Op("<")) => CompareOp::Lt,
            Some(Token::Op("<=")) => CompareOp::Le,
            Some(Token::Op(">")) => CompareOp::Gt,
            Some(Token::Op(">=")) => CompareOp::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.primary()?;
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn primary(&mut self) -> DbResult<Expr> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| invalid("rule expression ends early"))?;
        self.pos += 1;
        match token {
            Token::Op("(") => {
                let inner = self.or()?;
                if !self.peek_op(")") {
                    return Err(invalid("missing ) in rule expression"));
                }
                self.pos += 1;
                Ok(inner)
            }
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Num(n) => Ok(Expr::Literal(serde_json::json!(n))),
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                _ => {
                    let mut parts = name.split('.');
                    let root = parts.next().unwrap_or_default().to_string();
                    if root != "auth" && root != "doc" {
                        return Err(invalid(format!(
                            "unknown name {name:?} in rule (auth.*, doc.*)"
                        )));
                    }
                    let rest: Vec<String> = parts.map(str::to_string).collect();
                    if rest.is_empty() || rest.iter().any(String::is_empty) {
                        return Err(invalid(format!("incomplete path {name:?} in rule")));
                    }
                    Ok(Expr::Path(root, rest))
                }
            },
            Token::Op(op) => Err(invalid(format!("unexpected {op} in rule expression"))),
        }
    }
}

impl Expr {
    /// Parses a rule expression.
    pub fn parse(text: &str) -> DbResult<Expr> {
        if text.len() > 4096 {
            return Err(invalid("rule expression longer than 4096 characters"));
        }
        let mut parser = Parser {
            tokens: tokenize(text)?,
            pos: 0,
            depth: 0,
        };
        let expr = parser.or()?;
        if parser.pos != parser.tokens.len() {
            return Err(invalid(format!(
                "unexpected trailing input in rule {text:?}"
            )));
        }
        Ok(expr)
    }

    fn value(&self, env: &Env<'_>) -> Option<Value> {
        match self {
            Expr::Literal(v) => Some(v.clone()),
            Expr::Path(root, rest) if root == "auth" => match rest.as_slice() {
                [field] if field == "openid" => Some(Value::String(env.user.openid.clone())),
                [field] if field == "uid" => Some(Value::String(env.user.uid.clone())),
                [field] if field == "loginType" => Some(Value::String("ANONYMOUS".into())),
                _ => Some(Value::Null),
            },
            Expr::Path(_, rest) => match &env.doc {
                DocView::Document(doc) => Some(get_path(doc, rest).cloned().unwrap_or(Value::Null)),
                DocView::Constraints(map) => map.get(&rest.join(".")).cloned(),
            },
            other => match other.eval(env) {
                Tri::True => Some(Value::Bool(true)),
                Tri::False => Some(Value::Bool(false)),
                Tri::Unknown => None,
            },
        }
    }

    fn eval(&self, env: &Env<'_>) -> Tri {
        match self {
            Expr::Not(inner) => match inner.eval(env) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            },
            Expr::And(a, b) => match (a.eval(env), b.eval(env)) {
                (Tri::False, _) | (_, Tri::False) => Tri::False,
                (Tri::True, Tri::True) => Tri::True,
                _ => Tri::Unknown,
            },
            Expr::Or(a, b) => match (a.eval(env), b.eval(env)) {
                (Tri::True, _) | (_, Tri::True) => Tri::True,
                (Tri::False, Tri::False) => Tri::False,
                _ => Tri::Unknown,
            },
            Expr::Compare(op, a, b) => {
                let (Some(a), Some(b)) = (a.value(env), b.value(env)) else {
                    return Tri::Unknown;
                };
                let ordering = compare_values(&a, &b);
                Tri::from(match op {
                    CompareOp::Eq => values_equal(&a, &b),
                    CompareOp::Ne => !values_equal(&a, &b),
                    CompareOp::Lt => ordering.is_lt(),
                    CompareOp::Le => ordering.is_le(),
                    CompareOp::Gt => ordering.is_gt(),
                    CompareOp::Ge => ordering.is_ge(),
                })
            }
            other => match other.value(env) {
                None => Tri::Unknown,
                Some(Value::Null) | Some(Value::Bool(false)) => Tri::False,
                Some(_) => Tri::True,
            },
        }
    }
}

/// Replaces the placeholder string `'{openid}'` anywhere in a client query by the caller's openid.
pub fn substitute_openid(query: &mut Value, openid: &str) {
    match query {
        Value::String(s) if s == "{openid}" => *s = openid.to_string(),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_openid(v, openid)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute_openid(v, openid)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(openid: &str) -> UserCtx {
        UserCtx {
            openid: openid.into(),
            uid: "u".into(),
        }
    }

    #[test]
    fn presets_filter_or_deny() {
        let private = Rules::parse(&Value::Null).unwrap();
        assert_eq!(
            private.decide(Operation::Read, &user("A"), &json!({}), false),
            Decision::Filter(json!({"_openid": "A"}))
        );
        let admin_only = Rules::parse(&json!("仅管理端可读写")).unwrap();
        assert_eq!(
            admin_only.decide(Operation::Read, &user("A"), &json!({}), false),
            Decision::Deny
        );
        let all_read = Rules::parse(&json!({"aclTag": "ADMINWRITE"})).unwrap();
        assert_eq!(
            all_read.decide(Operation::Read, &user("A"), &json!({}), false),
            Decision::Allow
        );
        assert!(!all_read.allows_document(Operation::Create, &user("A"), &json!({})));
    }

    #[test]
    fn custom_rules_require_subset_queries() {
        let rules =
            Rules::parse(&json!({"read": "auth.openid == doc._openid", "write": false})).unwrap();
        let a = user("A");
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"_openid": "A"}), false),
            Decision::Allow
        );
        assert_eq!(
            rules.decide(
                Operation::Read,
                &a,
                &json!({"$and": [{"_openid": {"$eq": "A"}}], "x": 1}),
                false
            ),
            Decision::Allow
        );
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"_openid": "B"}), false),
            Decision::Deny
        );
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"x": 1}), false),
            Decision::Deny
        );
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"_id": "d"}), true),
            Decision::CheckEach
        );
        assert_eq!(
            rules.decide(Operation::Update, &a, &json!({"_openid": "A"}), false),
            Decision::Deny
        );
        assert!(rules.allows_document(Operation::Read, &a, &json!({"_openid": "A"})));
        assert!(!rules.allows_document(Operation::Read, &a, &json!({"_openid": "B"})));
    }

    #[test]
    fn expressions_parse_and_evaluate() {
        let rules = Rules::parse(&json!({
            "read": "doc.status == 'published' || (auth.openid == doc._openid && !(doc.locked == true))",
            "create": "doc.n >= 1 && doc.n < 10"
        }))
        .unwrap();
        let a = user("A");
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"status": "published"}), false),
            Decision::Allow
        );
        assert_eq!(
            rules.decide(Operation::Read, &a, &json!({"_openid": "A"}), false),
            Decision::Deny
        );
        assert_eq!(
            rules.decide(
                Operation::Read,
                &a,
                &json!({"_openid": "A", "locked": false}),
                false
            ),
            Decision::Allow
        );
        assert!(rules.allows_document(Operation::Create, &a, &json!({"n": 5})));
        assert!(!rules.allows_document(Operation::Create, &a, &json!({"n": 10})));
        assert!(!rules.allows_document(Operation::Delete, &a, &json!({"n": 5})));
        assert!(Rules::parse(&json!({"read": "auth.openid =="})).is_err());
        assert!(Rules::parse(&json!({"read": "foo.bar == 1"})).is_err());
        assert!(Rules::parse(&json!({"reed": true})).is_err());
    }
}
