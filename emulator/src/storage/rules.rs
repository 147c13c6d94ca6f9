//! Storage permission rules per env, like the wx console's simple storage permissions.
//!
//! | rule | read | create a new path | overwrite / delete |
//! |---|---|---|---|
//! | `all_write` | everyone | everyone | everyone |
//! | `creator_write` (default, wx's default) | everyone | everyone | the creator only |
//! | `read_only` | everyone | nobody (from clients) | nobody |
//! | `private` | the creator only | everyone | the creator only |
//!
//! "Everyone" means every signed-in user; every storage call needs a token. The creator is the openid
//! that first wrote the path; overwrites keep it, a delete ends it.
//!
//! The admin (cloud functions through `wx-server-sdk` over `/admin`, or the per-run admin token) passes every rule,
//! as wx's server SDK does; what it creates is owned by [`ADMIN_OWNER`], so to users it is someone
//! else's file (readable unless `private`, never theirs to overwrite or delete).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;

/// The owner openid of objects the admin writes, and the admin's caller openid: a value no user openid
/// takes (those are `o` followed by 27 base64url characters).
pub const ADMIN_OWNER: &str = "admin";

/// One env's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageRule {
    /// Everyone reads and writes.
    AllWrite,
    /// Everyone reads; only the creator overwrites or deletes (wx's default).
    #[default]
    CreatorWrite,
    /// Everyone reads; clients write nothing.
    ReadOnly,
    /// Only the creator reads, overwrites or deletes.
    Private,
}

impl StorageRule {
    /// The rule's name as written in the rules file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StorageRule::AllWrite => "all_write",
            StorageRule::CreatorWrite => "creator_write",
            StorageRule::ReadOnly => "read_only",
            StorageRule::Private => "private",
        }
    }

    /// Whether `caller` may read an object owned by `owner`.
    pub fn may_read(self, owner: &str, caller: &str) -> bool {
        if caller == ADMIN_OWNER {
            return true;
        }
        match self {
            StorageRule::Private => owner == caller,
            _ => true,
        }
    }

    /// Whether `caller` may write the path: create it (`owner` `None`) or overwrite it.
    pub fn may_write(self, owner: Option<&str>, caller: &str) -> bool {
        if caller == ADMIN_OWNER {
            return true;
        }
        match (self, owner) {
            (StorageRule::ReadOnly, _) => false,
            (StorageRule::AllWrite, _) | (_, None) => true,
            (_, Some(owner)) => owner == caller,
        }
    }

    /// Whether `caller` may delete an object owned by `owner`.
    pub fn may_delete(self, owner: &str, caller: &str) -> bool {
        self.may_write(Some(owner), caller)
    }
}

impl fmt::Display for StorageRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StorageRule {
    type Err = String;

    fn from_str(text: &str) -> Result<StorageRule, String> {
        match text.trim() {
            "all_write" => Ok(StorageRule::AllWrite),
            "creator_write" => Ok(StorageRule::CreatorWrite),
            "read_only" => Ok(StorageRule::ReadOnly),
            "private" => Ok(StorageRule::Private),
            other => Err(format!(
                "unknown storage rule {other:?} (use all_write, creator_write, read_only or private)"
            )),
        }
    }
}

/// Parses a `--storage-rule` value: `ENV=RULE` (`*=RULE` for every env without its own rule).
pub fn parse_rule_arg(arg: &str) -> Result<(String, StorageRule), String> {
    let (env, rule) = arg
        .split_once('=')
        .ok_or_else(|| format!("--storage-rule {arg:?} is not ENV=RULE"))?;
    let env = env.trim();
    if env != "*" && !crate::server::valid_env_id(env) {
        return Err(format!(
            "--storage-rule {arg:?}: {env:?} is not an env id or *"
        ));
    }
    Ok((env.to_string(), rule.parse()?))
}

/// The rules of every env: the rules file, overridden by the command line; `*` is the fallback,
/// `creator_write` the default.
#[derive(Debug, Clone, Default)]
pub struct StorageRules {
    by_env: HashMap<String, StorageRule>,
}

impl StorageRules {
    /// Rules from `file` (if it exists) with `overrides` on top.
    pub fn load(file: &Path, overrides: &HashMap<String, StorageRule>) -> io::Result<StorageRules> {
        let mut by_env = match std::fs::read(file) {
            Ok(bytes) => parse_rules_file(&bytes).map_err(|message| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {message}", file.display()),
                )
            })?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(err) => return Err(err),
        };
        by_env.extend(overrides.iter().map(|(env, rule)| (env.clone(), *rule)));
        Ok(StorageRules { by_env })
    }

    /// The rule in force on `env`.
    pub fn rule_for(&self, env: &str) -> StorageRule {
        self.by_env
            .get(env)
            .or_else(|| self.by_env.get("*"))
            .copied()
            .unwrap_or_default()
    }
}

/// Parses the rules file: a JSON object of env id (or `*`) → rule name.
fn parse_rules_file(bytes: &[u8]) -> Result<HashMap<String, StorageRule>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| format!("not JSON: {err}"))?;
    let object = value
        .as_object()
        .ok_or("must be a JSON object of env id → rule")?;
    object
        .iter()
        .map(|(env, rule)| {
            let rule = rule
                .as_str()
                .ok_or_else(|| format!("the rule of {env:?} must be a string"))?
                .parse()?;
            if env != "*" && !crate::server::valid_env_id(env) {
                return Err(format!("{env:?} is not an env id or *"));
            }
            Ok((env.clone(), rule))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_grant_what_their_table_says() {
        use StorageRule::*;
        assert!(CreatorWrite.may_read("a", "b"));
        assert!(CreatorWrite.may_write(None, "b"));
        assert!(CreatorWrite.may_write(Some("b"), "b"));
        assert!(!CreatorWrite.may_write(Some("a"), "b"));
        assert!(!CreatorWrite.may_delete("a", "b"));
        assert!(AllWrite.may_write(Some("a"), "b"));
        assert!(AllWrite.may_delete("a", "b"));
        assert!(!ReadOnly.may_write(None, "b"));
        assert!(!ReadOnly.may_delete("b", "b"));
        assert!(ReadOnly.may_read("a", "b"));
        assert!(!Private.may_read("a", "b"));
        assert!(Private.may_read("b", "b"));
        assert!(Private.may_write(None, "b"));
        assert!(!Private.may_write(Some("a"), "b"));
        for rule in [AllWrite, CreatorWrite, ReadOnly, Private] {
            assert!(rule.may_read("a", ADMIN_OWNER), "{rule}");
            assert!(rule.may_write(None, ADMIN_OWNER), "{rule}");
            assert!(rule.may_write(Some("a"), ADMIN_OWNER), "{rule}");
            assert!(rule.may_delete("a", ADMIN_OWNER), "{rule}");
        }
        assert!(!CreatorWrite.may_delete(ADMIN_OWNER, "b"));
        assert!(!Private.may_read(ADMIN_OWNER, "b"));
        assert!(CreatorWrite.may_read(ADMIN_OWNER, "b"));
    }

    #[test]
    fn file_then_overrides_then_wildcard_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.json");
        let none = StorageRules::load(&file, &HashMap::new()).unwrap();
        assert_eq!(none.rule_for("e"), StorageRule::CreatorWrite);

        std::fs::write(
            &file,
            r#"{"e1": "private", "e2": "read_only", "*": "all_write"}"#,
        )
        .unwrap();
        let overrides = HashMap::from([("e2".to_string(), StorageRule::CreatorWrite)]);
        let rules = StorageRules::load(&file, &overrides).unwrap();
        assert_eq!(rules.rule_for("e1"), StorageRule::Private);
        assert_eq!(rules.rule_for("e2"), StorageRule::CreatorWrite);
        assert_eq!(rules.rule_for("other"), StorageRule::AllWrite);

        std::fs::write(&file, r#"{"e1": "everyone"}"#).unwrap();
        assert!(StorageRules::load(&file, &HashMap::new()).is_err());
        std::fs::write(&file, r#"["e1"]"#).unwrap();
        assert!(StorageRules::load(&file, &HashMap::new()).is_err());
    }

    #[test]
    fn rule_args_parse() {
        assert_eq!(
            parse_rule_arg("envx=private").unwrap(),
            ("envx".to_string(), StorageRule::Private)
        );
        assert_eq!(parse_rule_arg("*=read_only").unwrap().0, "*");
        assert!(parse_rule_arg("envx").is_err());
        assert!(parse_rule_arg("envx=bogus").is_err());
        assert!(parse_rule_arg("a/b=private").is_err());
    }
}
