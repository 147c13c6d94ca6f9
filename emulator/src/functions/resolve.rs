//! Finding a function on disk: name rules, its main file, its config.json, and a fingerprint of its code.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cloud_protocol::limits;

/// Longest cloud function timeout accepted from config.json, in seconds (the cloud's own maximum).
pub const MAX_TIMEOUT_SECS: f64 = 900.0;
/// At most this many files of a function folder are fingerprinted; more (a vendored tree) is not walked.
const MAX_FINGERPRINT_FILES: usize = 256;

/// Whether `name` is a valid cloud function name: `^[A-Za-z0-9_-]{1,60}$`, so never a path.
pub fn is_valid_name(name: &str) -> bool {
    (1..=60).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What one invocation needs to know about a function, read fresh from disk on every call.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The folder of the function (the worker's working directory).
    pub dir: PathBuf,
    /// The resolved main file (package.json `main`, else index.js).
    pub main: PathBuf,
    /// The time limit from config.json, or the default.
    pub timeout_secs: f64,
    /// `envVariables` from config.json, set in the worker's environment.
    pub env_vars: BTreeMap<String, String>,
    /// Changes whenever the function's code or config changes (paths, sizes and mtimes).
    pub fingerprint: u64,
}

/// Reads the function in `dir`; `None` when there is no such function (no folder or no main file).
pub fn load(dir: &Path) -> Option<FunctionSpec> {
    if !dir.is_dir() {
        return None;
    }
    let main = resolve_main(dir)?;
    let config = read_json(&dir.join("config.json"));
    let timeout_secs = config
        .as_ref()
        .and_then(|c| c.get("timeout"))
        .and_then(serde_json::Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| t.min(MAX_TIMEOUT_SECS))
        .unwrap_or(f64::from(limits::DEFAULT_FUNCTION_TIMEOUT_SECS));
    let env_vars = config
        .as_ref()
        .and_then(|c| c.get("envVariables"))
        .and_then(serde_json::Value::as_object)
        .map(|vars| {
            vars.iter()
                .map(|(key, value)| {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    let fingerprint = fingerprint(dir, &main);
    Some(FunctionSpec {
        dir: dir.to_path_buf(),
        main,
        timeout_secs,
        env_vars,
        fingerprint,
    })
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Node's resolution of a package folder: package.json `main` (as a file, with `.js`/`.cjs`/`.mjs`, or
/// as a folder with index.js), falling back to index.js.
fn resolve_main(dir: &Path) -> Option<PathBuf> {
    let declared = read_json(&dir.join("package.json")).and_then(|package| {
        package
            .get("main")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    });
    if let Some(main) = declared.filter(|m| !m.is_empty()) {
        let base = dir.join(&main);
        // package.json `main` must stay inside the function folder.
        if !escapes(&main) {
            let candidates = [
                base.clone(),
                with_suffix(&base, ".js"),
                with_suffix(&base, ".cjs"),
                with_suffix(&base, ".mjs"),
                base.join("index.js"),
            ];
            if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
                return Some(found);
            }
        }
    }
    let index = dir.join("index.js");
    index.is_file().then_some(index)
}

fn escapes(relative: &str) -> bool {
    let path = Path::new(relative);
    path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    PathBuf::from(text)
}

/// Hash of (path, size, mtime) of the main file, package.json, config.json and the function's other
/// files outside node_modules: editing any of them retires the warm workers.
fn fingerprint(dir: &Path, main: &Path) -> u64 {
    let mut files = vec![
        main.to_path_buf(),
        dir.join("package.json"),
        dir.join("config.json"),
    ];
    collect_files(dir, &mut files);
    let mut hasher = DefaultHasher::new();
    for file in &files {
        file.hash(&mut hasher);
        match std::fs::metadata(file) {
            Ok(meta) => {
                meta.len().hash(&mut hasher);
                meta.modified()
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .hash(&mut hasher);
            }
            Err(_) => 0u8.hash(&mut hasher),
        }
    }
    hasher.finish()
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if files.len() >= MAX_FINGERPRINT_FILES {
                return;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        for good in ["echo", "a", "my-func_2", &"x".repeat(60)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "a\\b",
            ".",
            "..",
            "a.b",
            "a b",
            "é",
            &"x".repeat(61),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn main_escaping_the_folder_is_refused() {
        assert!(escapes("../other/index.js"));
        assert!(escapes("/etc/passwd"));
        assert!(!escapes("lib/main.js"));
        assert!(!escapes("./main"));
    }
}
