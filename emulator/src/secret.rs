//! The HMAC key that signs tokens: created once in the data dir (mode 0600) so tokens survive restarts.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// File name of the secret inside the data dir.
pub const SECRET_FILE: &str = "token-secret";
const SECRET_BYTES: usize = 32;

/// Reads the secret from `data_dir`, creating the dir and the secret if missing.
pub fn load_or_create(data_dir: &Path) -> io::Result<Vec<u8>> {
    fs::create_dir_all(data_dir)?;
    let path = data_dir.join(SECRET_FILE);
    let fresh: [u8; SECRET_BYTES] = rand::random();
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(hex::encode(fresh).as_bytes())?;
            file.sync_all()?;
            return Ok(fresh.to_vec());
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    // Tighten a secret someone made readable by others.
    let mode = fs::metadata(&path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    }
    let mut text = String::new();
    fs::File::open(&path)?.read_to_string(&mut text)?;
    match hex::decode(text.trim()) {
        Ok(bytes) if bytes.len() >= 16 => Ok(bytes),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a hex secret of at least 16 bytes; delete it to make a new one",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested/data");
        let first = load_or_create(&data_dir).unwrap();
        let second = load_or_create(&data_dir).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), SECRET_BYTES);
        let mode = fs::metadata(data_dir.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_garbled_secret_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRET_FILE), "not hex").unwrap();
        assert!(load_or_create(dir.path()).is_err());
    }
}
