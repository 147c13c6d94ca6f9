//! Objects on disk: bodies in `blobs/<generated id>`, metadata in SQLite (WAL, `synchronous=FULL`).
//!
//! Write discipline: a new body goes to a fresh blob, is fsynced, then one transaction points the row
//! at it; only after the commit is the replaced blob removed. A reader resolves the row, then opens the
//! blob; if the blob vanished between the two (an overwrite or delete committed meanwhile) it resolves
//! again, so it always streams one whole committed body. Blobs no row points at (a crash between the
//! blob write and the commit) are removed when the store opens.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{BLOBS_DIR, DATABASE_FILE};

/// What the store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The env the object belongs to.
    pub env: String,
    /// Its cloudPath (an opaque key).
    pub path: String,
    /// The blob holding its body.
    pub blob_id: String,
    /// Body length in bytes.
    pub size: u64,
    /// `Content-Type` served on download.
    pub content_type: String,
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
    /// The `ETag` served on download (quoted).
    pub etag: String,
    /// openid of the user who created the path.
    pub owner_openid: String,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
    /// Last write time, ms since the epoch.
    pub updated_ms: u64,
}

/// A failure of the store itself (disk, database): answered as an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
    /// A database operation failed.
    #[error("storage database error: {0}")]
    Database(#[from] rusqlite::Error),
}

/// The outcome of a write that checks permissions inside its transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed; the blob it replaced (already unreferenced, removed by the store) if any.
    Committed {
        /// The row as stored.
        meta: ObjectMeta,
        /// Whether an existing object was replaced.
        replaced: bool,
    },
    /// The permission check refused it; nothing changed. Carries the existing object, if any.
    Denied(Option<ObjectMeta>),
}

/// The outcome of a delete.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// No such object.
    Missing,
    /// The permission check refused it.
    Denied,
}

/// The metadata database and the blob folder.
pub struct ObjectStore {
    blobs_dir: PathBuf,
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    env TEXT NOT NULL,
    path TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    etag TEXT NOT NULL,
    owner_openid TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (env, path)
) WITHOUT ROWID;
";

const COLUMNS: &str =
    "env, path, blob_id, size, content_type, sha256, etag, owner_openid, created_ms, updated_ms";

fn row_to_meta(row: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectMeta> {
    Ok(ObjectMeta {
        env: row.get(0)?,
        path: row.get(1)?,
        blob_id: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        content_type: row.get(4)?,
        sha256: row.get(5)?,
        etag: row.get(6)?,
        owner_openid: row.get(7)?,
        created_ms: row.get::<_, i64>(8)? as u64,
        updated_ms: row.get::<_, i64>(9)? as u64,
    })
}

/// Whether `name` is a blob id we generate (32 lowercase hex digits).
fn is_blob_id(name: &str) -> bool {
    name.len() == 32
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh blob id.
pub fn new_blob_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn get_row(db: &Connection, env: &str, path: &str) -> rusqlite::Result<Option<ObjectMeta>> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM objects WHERE env = ?1 AND path = ?2"),
        params![env, path],
        row_to_meta,
    )
    .optional()
}

fn put_row(db: &Connection, meta: &ObjectMeta) -> rusqlite::Result<()> {
    db.execute(
        &format!(
            "INSERT INTO objects ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (env, path) DO UPDATE SET blob_id = excluded.blob_id, size = excluded.size,
               content_type = excluded.content_type, sha256 = excluded.sha256, etag = excluded.etag,
               owner_openid = excluded.owner_openid, updated_ms = excluded.updated_ms"
        ),
        params![
            meta.env,
            meta.path,
            meta.blob_id,
            meta.size as i64,
            meta.content_type,
            meta.sha256,
            meta.etag,
            meta.owner_openid,
            meta.created_ms as i64,
            meta.updated_ms as i64,
        ],
    )?;
    Ok(())
}

impl ObjectStore {
    /// Opens the store in `data_dir` (creating `blobs/` and the database), then removes orphan blobs.
    pub fn open(data_dir: &Path) -> io::Result<ObjectStore> {
        let blobs_dir = data_dir.join(BLOBS_DIR);
        fs::create_dir_all(&blobs_dir)?;
        let to_io = |err: rusqlite::Error| io::Error::other(format!("storage database: {err}"));
        let db = Connection::open(data_dir.join(DATABASE_FILE)).map_err(to_io)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(to_io)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(to_io)?;
        // FULL: a commit is on disk before the upload is acknowledged.
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(to_io)?;
        db.execute_batch(SCHEMA).map_err(to_io)?;
        let store = ObjectStore {
            blobs_dir,
            db: Mutex::new(db),
        };
        store.remove_orphans().map_err(|err| match err {
            StoreError::Io(err) => err,
            StoreError::Database(err) => to_io(err),
        })?;
        Ok(store)
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (every write is one transaction).
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The file of blob `blob_id`.
    pub fn blob_path(&self, blob_id: &str) -> PathBuf {
        debug_assert!(is_blob_id(blob_id));
        self.blobs_dir.join(blob_id)
    }

    /// The blob folder (fsynced after a new blob is written).
    pub fn blobs_dir(&self) -> &Path {
        &self.blobs_dir
    }

    /// Removes blob files that no row points at.
    fn remove_orphans(&self) -> Result<usize, StoreError> {
        let referenced: HashSet<String> = {
            let db = self.db();
            let mut statement = db.prepare("SELECT blob_id FROM objects")?;
            let ids = statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids
        };
        let mut removed = 0;
        for entry in fs::read_dir(&self.blobs_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !referenced.contains(name.as_ref()) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The object at `path` on `env`.
    pub fn get(&self, env: &str, path: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(get_row(&self.db(), env, path)?)
    }

    /// The objects of `env` whose path starts with `prefix`, in path order, at most `limit` (the
    /// dashboard's file browser).
    pub fn list(
        &self,
        env: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        let db = self.db();
        let mut statement = db.prepare(&format!(
            "SELECT {COLUMNS} FROM objects WHERE env = ?1 AND substr(path, 1, length(?2)) = ?2
             ORDER BY path LIMIT ?3"
        ))?;
        let rows = statement
            .query_map(params![env, prefix, limit as i64], row_to_meta)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many objects every env holds, and their total size in bytes.
    pub fn totals(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.db().query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Opens the body of the object at `path`: its metadata and an open blob file that stays readable
    /// whatever writes follow.
    pub fn open_object(
        &self,
        env: &str,
        path: &str,
    ) -> Result<Option<(ObjectMeta, File)>, StoreError> {
        for _ in 0..8 {
            let Some(meta) = self.get(env, path)? else {
                return Ok(None);
            };
            match File::open(self.blob_path(&meta.blob_id)) {
                Ok(file) => return Ok(Some((meta, file))),
                // Replaced or deleted between the lookup and the open: look again.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Io(io::Error::other(format!(
            "blob of {path:?} keeps changing; try again"
        ))))
    }

    /// Points `(meta.env, meta.path)` at `meta.blob_id` (already written and fsynced) if `allowed`
    /// approves, given the object currently there; then removes the replaced blob. A refused or failed
    /// write removes the new blob instead. An existing path keeps its creator and creation time.
    pub fn commit(
        &self,
        mut meta: ObjectMeta,
        allowed: impl FnOnce(Option<&ObjectMeta>) -> bool,
    ) -> Result<WriteOutcome, StoreError> {
        let result = (|| {
            let mut db = self.db();
            let transaction = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing = get_row(&transaction, &meta.env, &meta.path)?;
            if !allowed(existing.as_ref()) {
                return Ok((WriteOutcome::Denied(existing), None));
            }
            if let Some(existing) = &existing {
                meta.created_ms = existing.created_ms;
                meta.owner_openid = existing.owner_openid.clone();
            }
            put_row(&transaction, &meta)?;
            transaction.commit()?;
            let replaced = existing.map(|existing| existing.blob_id);
            Ok::<_, StoreError>((
                WriteOutcome::Committed {
                    meta: meta.clone(),
                    replaced: replaced.is_some(),
                },
                replaced,
            ))
        })();
        match result {
            Ok((outcome @ WriteOutcome::Committed { .. }, replaced)) => {
                if let Some(old) = replaced.filter(|old| *old != meta.blob_id) {
                    self.remove_blob(&old);
                }
                Ok(outcome)
            }
            Ok((outcome, _)) => {
                self.remove_blob(&meta.blob_id);
                Ok(outcome)
            }
            Err(err) => {
                self.remove_blob(&meta.blob_id);
                Err(err)
            }
        }
    }

    /// Deletes the object at `path` if `allowed` approves it, then its blob.
    pub fn delete(
        &self,
        env: &str,
        path: &str,
        allowed: impl FnOnce(&ObjectMeta) -> bool,
    ) -> Result<DeleteOutcome, StoreError> {
        let blob_id = {
            let mut db = self.db();
            let transaction = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(existing) = get_row(&transaction, env, path)? else {
                return Ok(DeleteOutcome::Missing);
            };
            if !allowed(&existing) {
                return Ok(DeleteOutcome::Denied);
            }
            transaction.execute(
                "DELETE FROM objects WHERE env = ?1 AND path = ?2",
                params![env, path],
            )?;
            transaction.commit()?;
            existing.blob_id
        };
        self.remove_blob(&blob_id);
        Ok(DeleteOutcome::Deleted)
    }

    /// Removes a blob file; a missing one is fine (failures only leave an orphan for the next sweep).
    pub fn remove_blob(&self, blob_id: &str) {
        if !is_blob_id(blob_id) {
            return;
        }
        if let Err(err) = fs::remove_file(self.blob_path(blob_id)) {
            if err.kind() != io::ErrorKind::NotFound {
                eprintln!("cloud-emulator: could not remove blob {blob_id}: {err}");
            }
        }
    }

    /// A new blob holding the same bytes as `blob_id` (a hard link: blobs never change once written).
    pub fn clone_blob(&self, blob_id: &str) -> Result<String, StoreError> {
        let id = new_blob_id();
        let source = self.blob_path(blob_id);
        let target = self.blob_path(&id);
        if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target)?;
            File::open(&target)?.sync_all()?;
        }
        File::open(&self.blobs_dir)?.sync_all()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn meta(store: &ObjectStore, path: &str, body: &[u8], owner: &str) -> ObjectMeta {
        let blob_id = new_blob_id();
        let mut file = File::create(store.blob_path(&blob_id)).unwrap();
        file.write_all(body).unwrap();
        file.sync_all().unwrap();
        ObjectMeta {
            env: "e".into(),
            path: path.into(),
            blob_id,
            size: body.len() as u64,
            content_type: "text/plain".into(),
            sha256: String::new(),
            etag: String::new(),
            owner_openid: owner.into(),
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn blob_count(dir: &Path) -> usize {
        fs::read_dir(dir.join(BLOBS_DIR)).unwrap().count()
    }

    #[test]
    fn overwrite_swaps_the_row_and_removes_the_old_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).unwrap();
        let first = meta(&store, "a/b", b"one", "u1");
        store.commit(first.clone(), |_| true).unwrap();
        let (_, mut open_old) = store.open_object("e", "a/b").unwrap().unwrap();

        let second = meta(&store, "a/b", b"two!", "u2");
        let outcome = store.commit(second.clone(), |_| true).unwrap();
        let WriteOutcome::Committed {
            meta: stored,
            replaced,
        } = outcome
        else {
            panic!("not committed");
        };
        assert!(replaced);
        assert_eq!(stored.owner_openid, "u1", "the creator is kept");
        assert_eq!(stored.created_ms, 1);
        assert!(!store.blob_path(&first.blob_id).exists());
        assert_eq!(blob_count(dir.path()), 1);

        // A reader that opened the old body before the swap still reads it whole.
        let mut old = String::new();
        open_old.read_to_string(&mut old).unwrap();
        assert_eq!(old, "one");
        let (now, mut file) = store.open_object("e", "a/b").unwrap().unwrap();
        let mut body = String::new();
        file.read_to_string(&mut body).unwrap();
        assert_eq!((now.size, body.as_str()), (4, "two!"));
    }

    #[test]
    fn denied_writes_and_deletes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).unwrap();
        store
            .commit(meta(&store, "p", b"x", "u1"), |_| true)
            .unwrap();
        let refused = meta(&store, "p", b"y", "u2");
        let outcome = store.commit(refused.clone(), |_| false).unwrap();
        assert!(matches!(outcome, WriteOutcome::Denied(Some(_))));
        assert!(!store.blob_path(&refused.blob_id).exists());
        assert_eq!(
            store.delete("e", "p", |_| false).unwrap(),
            DeleteOutcome::Denied
        );
        assert_eq!(store.get("e", "p").unwrap().unwrap().size, 1);
        assert_eq!(
            store.delete("e", "p", |_| true).unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(
            store.delete("e", "p", |_| true).unwrap(),
            DeleteOutcome::Missing
        );
        assert_eq!(blob_count(dir.path()), 0);
    }

    #[test]
    fn orphans_are_swept_and_rows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ObjectStore::open(dir.path()).unwrap();
            store
                .commit(meta(&store, "kept", b"k", "u"), |_| true)
                .unwrap();
            // A blob written but never committed, as after a crash mid-upload.
            meta(&store, "lost", b"l", "u");
            assert_eq!(blob_count(dir.path()), 2);
        }
        let store = ObjectStore::open(dir.path()).unwrap();
        assert_eq!(blob_count(dir.path()), 1);
        assert!(store.get("e", "kept").unwrap().is_some());
        assert!(store.get("e", "lost").unwrap().is_none());
    }

    #[test]
    fn cloned_blobs_outlive_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).unwrap();
        let source = meta(&store, "src", b"same", "u");
        store.commit(source.clone(), |_| true).unwrap();
        let copy = store.clone_blob(&source.blob_id).unwrap();
        store.remove_blob(&source.blob_id);
        assert_eq!(fs::read(store.blob_path(&copy)).unwrap(), b"same");
    }
}
