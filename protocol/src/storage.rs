//! Cloud storage names: `cloudPath` validation and the `cloud://` fileID format.
//!
//! Both sides use these: the SDK rejects a bad `cloudPath` before any I/O (errCode −401002) and the
//! emulator rejects it again (`INVALID_PARAM`), so the two never disagree about what a valid name is.

/// Longest `cloudPath`, in bytes of UTF-8 ("编码长度最大为850个字节").
pub const MAX_CLOUD_PATH_BYTES: usize = 850;

/// The scheme every fileID starts with.
pub const FILE_ID_SCHEME: &str = "cloud://";

/// Why a `cloudPath` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudPathError {
    /// The path is empty.
    Empty,
    /// The path starts with `/`.
    LeadingSlash,
    /// The path contains `//` (an empty segment).
    DoubleSlash,
    /// The path is longer than [`MAX_CLOUD_PATH_BYTES`].
    TooLong,
    /// The path contains an ASCII control character (0x00–0x1F or 0x7F).
    ControlCharacter,
    /// A segment is `.` or `..`: URL normalisation would rewrite it, so the object could not be
    /// addressed by URL.
    DotSegment,
}

impl CloudPathError {
    /// A human-readable reason, used in `errMsg` and in the emulator's error messages.
    pub fn message(self) -> &'static str {
        match self {
            CloudPathError::Empty => "cloudPath must not be empty",
            CloudPathError::LeadingSlash => "cloudPath must not start with /",
            CloudPathError::DoubleSlash => "cloudPath must not contain consecutive slashes (//)",
            CloudPathError::TooLong => "cloudPath must be at most 850 bytes long",
            CloudPathError::ControlCharacter => {
                "cloudPath must not contain control characters (0x00-0x1F, 0x7F)"
            }
            CloudPathError::DotSegment => "cloudPath must not contain . or .. path segments",
        }
    }
}

impl core::fmt::Display for CloudPathError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// Checks `path` against the storage naming rules (api-surface.md §6).
///
/// The documented rules are: not empty, no leading `/`, no `//`, at most 850 bytes, and none of
/// CAN/EM/SUB/ESC. Two stricter rules are added because the names end up in URLs and headers: no ASCII
/// control character at all, and no `.` / `..` segment (browsers rewrite those in URLs). Everything
/// else — `%`, `\`, spaces, non-ASCII — is allowed and kept as an opaque key.
pub fn validate_cloud_path(path: &str) -> Result<(), CloudPathError> {
    if path.is_empty() {
        return Err(CloudPathError::Empty);
    }
    if path.len() > MAX_CLOUD_PATH_BYTES {
        return Err(CloudPathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(CloudPathError::LeadingSlash);
    }
    // A byte scan, not `contains("//")`: a `&str` pattern search brings core's panicking slice code
    // (~4 KB) into the SDK's wasm.
    if path.as_bytes().windows(2).any(|pair| pair == b"//") {
        return Err(CloudPathError::DoubleSlash);
    }
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(CloudPathError::ControlCharacter);
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(CloudPathError::DotSegment);
    }
    Ok(())
}

/// A parsed `cloud://{env}.{bucket}/{path}` fileID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId<'a> {
    /// The env id (the text before the first `.` of the authority).
    pub env: &'a str,
    /// The bucket (the rest of the authority); informative only.
    pub bucket: &'a str,
    /// The object's cloudPath, exactly as written after the authority's `/`.
    pub path: &'a str,
}

/// Parses a fileID. `None` when it is not `cloud://{env}.{bucket}/{path}` with all three parts
/// non-empty. The path is not validated here; see [`validate_cloud_path`].
pub fn parse_file_id(file_id: &str) -> Option<FileId<'_>> {
    let rest = file_id.strip_prefix(FILE_ID_SCHEME)?;
    let (authority, path) = rest.split_once('/')?;
    let (env, bucket) = authority.split_once('.')?;
    if env.is_empty() || bucket.is_empty() || path.is_empty() {
        return None;
    }
    Some(FileId { env, bucket, path })
}

/// Formats `cloud://{env}.{bucket}/{path}`.
pub fn format_file_id(env: &str, bucket: &str, path: &str) -> String {
    format!("{FILE_ID_SCHEME}{env}.{bucket}/{path}")
}

/// The bucket name CloudBase gives an env: `{hex of the env's first two bytes}-{env}-{app number}`,
/// e.g. `7465-test2-4a89da-1258717764` for env `test2-4a89da`.
pub fn bucket_for(env: &str, app_number: &str) -> String {
    let mut prefix = String::with_capacity(4);
    for byte in env.bytes().take(2) {
        prefix.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        prefix.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    format!("{prefix}-{env}-{app_number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rules_are_enforced() {
        assert_eq!(validate_cloud_path("a/b.png"), Ok(()));
        assert_eq!(validate_cloud_path(""), Err(CloudPathError::Empty));
        assert_eq!(
            validate_cloud_path("/etc/passwd"),
            Err(CloudPathError::LeadingSlash)
        );
        assert_eq!(
            validate_cloud_path("a//b"),
            Err(CloudPathError::DoubleSlash)
        );
        assert_eq!(
            validate_cloud_path(&"a".repeat(851)),
            Err(CloudPathError::TooLong)
        );
        assert_eq!(validate_cloud_path(&"a".repeat(850)), Ok(()));
        // 283 three-byte characters = 849 bytes; 284 = 852.
        assert_eq!(validate_cloud_path(&"中".repeat(283)), Ok(()));
        assert_eq!(
            validate_cloud_path(&"中".repeat(284)),
            Err(CloudPathError::TooLong)
        );
        for bad in ["a\u{18}b", "a\u{1b}", "a\nb", "a\0b", "a\u{7f}"] {
            assert_eq!(
                validate_cloud_path(bad),
                Err(CloudPathError::ControlCharacter)
            );
        }
    }

    #[test]
    fn dot_segments_are_refused_but_other_oddities_are_opaque_keys() {
        for bad in ["..", ".", "../x", "a/../b", "a/./b", "a/.."] {
            assert_eq!(validate_cloud_path(bad), Err(CloudPathError::DotSegment));
        }
        for fine in [
            "..a",
            "a..",
            "a/.hidden",
            "%2e%2e%2fetc",
            "..\\windows",
            "a\\b",
            "中文 名.png",
            "a?b#c",
            "trailing/",
        ] {
            assert_eq!(validate_cloud_path(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn file_ids_round_trip() {
        let id = format_file_id("envx", "6162-envx-1250000000", "a/b.png");
        assert_eq!(id, "cloud://envx.6162-envx-1250000000/a/b.png");
        let parsed = parse_file_id(&id).unwrap();
        assert_eq!(parsed.env, "envx");
        assert_eq!(parsed.bucket, "6162-envx-1250000000");
        assert_eq!(parsed.path, "a/b.png");
        assert_eq!(
            parse_file_id("cloud://test2-4a89da.7465-test2-4a89da/A.png")
                .unwrap()
                .path,
            "A.png"
        );
        for bad in [
            "",
            "a/b.png",
            "https://x/y",
            "cloud://envx/a.png",
            "cloud://envx.b/",
            "cloud://.b/a",
            "cloud://envx./a",
        ] {
            assert_eq!(parse_file_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_are_named_like_cloudbase_ones() {
        assert_eq!(
            bucket_for("test2-4a89da", "1258717764"),
            "7465-test2-4a89da-1258717764"
        );
        assert_eq!(bucket_for("envx", "1250000000"), "656e-envx-1250000000");
    }
}
