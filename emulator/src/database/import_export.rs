//! `--import DIR` and `--export-on-exit DIR`: one layout both ways, for the env pinned with `--env`.
//!
//! * `DIR/database/<collection>.json`: JSON Lines, one document per line, in extended JSON — relaxed
//!   (`{"$date": ms}`, as the P1 wire) or canonical (`{"$numberInt":"5"}`, `{"$date":{"$numberLong":…}}`,
//!   `{"$oid":…}`, as CloudBase's console exports) on import; the P1 form on export.
//! * `DIR/database/<collection>.rules.json`: the permission rules (a preset name such as `"PRIVATE"` or
//!   a custom rules object, see [`super::rules`]).
//! * `DIR/database/<collection>.indexes.json` (optional, an emulator extension): `["field", …]`, the
//!   declared single-field indexes.
//!
//! Import creates missing collections and upserts documents by `_id` (a document without `_id` gets a
//! generated one); it runs at start, before the server answers. Export writes each file to a temporary
//! name and renames it into place.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::ejson;
use super::error::DbError;
use super::service::{ensure_collection, now_ms, valid_collection_name};
use super::store::{id_key, new_id, plan_query, with_id_first, DocStore};

fn io_err(err: DbError) -> io::Error {
    io::Error::other(err.to_string())
}

/// Canonical extended JSON numbers and ids to plain values; dates to `{"$date": ms}`.
pub fn relax(value: &mut Value) {
    if let Value::Object(map) = value {
        if map.len() == 1 {
            let (key, inner) = map.iter().next().expect("one entry");
            let replacement = match (key.as_str(), inner) {
                ("$numberInt" | "$numberLong", Value::String(s)) => {
                    s.parse::<i64>().ok().map(Value::from)
                }
                ("$numberDouble", Value::String(s)) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number),
                ("$numberDecimal", Value::String(s)) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number),
                ("$oid", Value::String(s)) => Some(Value::String(s.clone())),
                ("$date", Value::String(iso)) => parse_iso_ms(iso).map(ejson::date_value),
                _ => None,
            };
            if let Some(replacement) = replacement {
                *value = replacement;
                return;
            }
        }
    }
    match value {
        Value::Array(items) => items.iter_mut().for_each(relax),
        Value::Object(map) => map.values_mut().for_each(relax),
        _ => {}
    }
}

/// `YYYY-MM-DDTHH:MM:SS(.fff)Z` → epoch ms (UTC only, as exports write it).
fn parse_iso_ms(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

/// Loads `dir/database/` into `env` (the pinned env; required).
pub fn import(store: &DocStore, dir: &Path, env: Option<&str>) -> io::Result<()> {
    let env = env.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "--import needs --env: the imported collections belong to that env",
        )
    })?;
    let folder = dir.join("database");
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("--import: {} is not a directory", folder.display()),
        ));
    }
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(&folder)? {
        let file = entry?.file_name().to_string_lossy().to_string();
        let name = file
            .strip_suffix(".rules.json")
            .or_else(|| file.strip_suffix(".indexes.json"))
            .or_else(|| file.strip_suffix(".json"));
        if let Some(name) = name {
            if valid_collection_name(name) {
                names.insert(name.to_string());
            }
        }
    }
    for name in names {
        let read_json = |suffix: &str| -> io::Result<Option<Value>> {
            let path = folder.join(format!("{name}{suffix}"));
            if !path.is_file() {
                return Ok(None);
            }
            let text = fs::read_to_string(&path)?;
            serde_json::from_str(&text).map(Some).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {err}", path.display()),
                )
            })
        };
        let rules = read_json(".rules.json")?;
        let indexes: Option<Vec<String>> = match read_json(".indexes.json")? {
            Some(value) => Some(serde_json::from_value(value).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name}.indexes.json: {err}"),
                )
            })?),
            None => None,
        };
        let meta = ensure_collection(store, env, &name, rules.as_ref(), indexes.as_deref())
            .map_err(io_err)?;
        let docs_path = folder.join(format!("{name}.json"));
        if !docs_path.is_file() {
            continue;
        }
        let text = fs::read_to_string(&docs_path)?;
        let now = now_ms();
        let mut docs = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut doc: Value = serde_json::from_str(line).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: {err}", docs_path.display(), line_no + 1),
                )
            })?;
            relax(&mut doc);
            let Value::Object(map) = super::prepare_document(&doc, now).map_err(io_err)? else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "document must be an object",
                ));
            };
            let id = map
                .get("_id")
                .cloned()
                .unwrap_or_else(|| Value::String(new_id()));
            id_key(&id).map_err(io_err)?;
            docs.push(with_id_first(map, id));
        }
        store
            .write(|t| {
                for doc in &docs {
                    let query = json!({ "_id": doc["_id"] });
                    let mut existing = None;
                    t.scan(meta.cid, &plan_query(&query, &[]), &mut |stored| {
                        existing = Some(stored.seq);
                        Ok(false)
                    })?;
                    match existing {
                        Some(seq) => t.replace_whole(&meta, seq, doc)?,
                        None => {
                            t.insert(&meta, doc)?;
                        }
                    }
                }
                Ok(())
            })
            .map_err(io_err)?;
        eprintln!(
            "cloud-emulator: imported {} documents into {env}/{name}",
            docs.len()
        );
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Writes every collection of every env to `dir/database/` (collections of one env only are expected:
/// the pinned one; with several envs, later envs' files of the same name would overwrite, so each env
/// other than the first goes to `dir/<env>/database/`).
pub fn export(store: &DocStore, dir: &Path) -> io::Result<()> {
    let collections = store.read(|t| t.collections(None)).map_err(io_err)?;
    let first_env = collections.first().map(|c| c.env.clone());
    for meta in collections {
        let folder = if Some(&meta.env) == first_env.as_ref() {
            dir.join("database")
        } else {
            dir.join(&meta.env).join("database")
        };
        fs::create_dir_all(&folder)?;
        let docs = store.read(|t| t.documents(&meta)).map_err(io_err)?;
        let mut lines = String::new();
        for doc in docs {
            lines.push_str(&doc.to_string());
            lines.push('\n');
        }
        write_atomically(
            &folder.join(format!("{}.json", meta.name)),
            lines.as_bytes(),
        )?;
        let mut rules = serde_json::to_string_pretty(&meta.rules).map_err(io::Error::other)?;
        rules.push('\n');
        write_atomically(
            &folder.join(format!("{}.rules.json", meta.name)),
            rules.as_bytes(),
        )?;
        if !meta.indexes.is_empty() {
            let indexes = Value::from(meta.indexes.clone()).to_string();
            write_atomically(
                &folder.join(format!("{}.indexes.json", meta.name)),
                indexes.as_bytes(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_are_relaxed() {
        let mut v = json!({"a": {"$numberInt": "5"}, "b": [{"$numberDouble": "1.5"}], "_id": {"$oid": "abc"},
                           "d": {"$date": "2023-11-14T22:13:20.000Z"}, "e": {"$date": {"$numberLong": "7"}}});
        relax(&mut v);
        assert_eq!(
            v,
            json!({"a": 5, "b": [1.5], "_id": "abc", "d": {"$date": 1_700_000_000_000i64},
                             "e": {"$date": 7}})
        );
        assert_eq!(parse_iso_ms("1970-01-01T00:00:01Z"), Some(1000));
    }
}
