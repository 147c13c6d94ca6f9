//! Sign-in sessions: one per anonymous sign-in, named by the `sid` claim of every token it issues.
//!
//! * Revoking a session (`/auth/v1/revoke` with any of its tokens, or the dashboard's "sign out")
//!   refuses every access token it issued — before or after refreshes — and its refresh token, while
//!   other sessions of the same user keep working.
//! * Refresh tokens rotate: a refresh answers a new refresh token and the session forgets the old one,
//!   so a refresh token buys at most one refresh (the legacy P1 protocol, which has no rotation,
//!   keeps its refresh token).
//! * Sessions live in `<data dir>/sessions.sqlite` (WAL, `synchronous=FULL`), so revocations survive a
//!   restart like the tokens do. The revoked ids are also kept in memory: checking a token costs a
//!   hash lookup, not a query. "Last seen" is kept in memory and written at refresh, revocation and
//!   shutdown, so ordinary calls never write.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::tokens::now_ms;

/// File name of the sessions database inside the data dir.
pub const SESSIONS_FILE: &str = "sessions.sqlite";

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// The session is unknown (tokens of another data dir) or was revoked.
    Revoked,
    /// The token was already used for a refresh (rotation).
    Superseded,
}

/// One user as the dashboard lists it: its sessions folded together.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    /// The env the user signed in on.
    pub env: String,
    /// The user id.
    pub uid: String,
    /// Login scope of its latest session.
    pub scope: String,
    /// Device ids its sessions signed in from (anonymous sign-in sends one).
    pub devices: Vec<String>,
    /// First sign-in, ms since the epoch.
    pub created: u64,
    /// Last authenticated call, ms since the epoch.
    pub last_seen: u64,
    /// Sessions not revoked.
    pub active_sessions: u64,
    /// Sessions revoked.
    pub revoked_sessions: u64,
}

/// The session store.
pub struct Sessions {
    connection: Mutex<Connection>,
    revoked: RwLock<HashSet<String>>,
    last_seen: Mutex<HashMap<String, u64>>,
}

fn to_io(err: rusqlite::Error) -> std::io::Error {
    std::io::Error::other(format!("sessions database: {err}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sessions {
    /// Opens (or creates) `<data_dir>/sessions.sqlite` and loads the revoked session ids.
    pub fn open(data_dir: &Path) -> std::io::Result<Sessions> {
        std::fs::create_dir_all(data_dir)?;
        let connection = Connection::open(data_dir.join(SESSIONS_FILE)).map_err(to_io)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
                 CREATE TABLE IF NOT EXISTS sessions (
                   sid TEXT PRIMARY KEY,
                   env TEXT NOT NULL,
                   uid TEXT NOT NULL,
                   scope TEXT NOT NULL,
                   device_id TEXT NOT NULL DEFAULT '',
                   created_ms INTEGER NOT NULL,
                   last_seen_ms INTEGER NOT NULL,
                   refresh_jti TEXT NOT NULL,
                   revoked_ms INTEGER
                 );
                 CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(env, uid);",
            )
            .map_err(to_io)?;
        let revoked = {
            let mut statement = connection
                .prepare("SELECT sid FROM sessions WHERE revoked_ms IS NOT NULL")
                .map_err(to_io)?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(to_io)?;
            rows.collect::<Result<HashSet<_>, _>>().map_err(to_io)?
        };
        Ok(Sessions {
            connection: Mutex::new(connection),
            revoked: RwLock::new(revoked),
            last_seen: Mutex::new(HashMap::new()),
        })
    }

    /// A new random session id.
    pub fn new_sid() -> String {
        hex::encode(rand::random::<[u8; 12]>())
    }

    /// Records a new session whose refresh token has id `refresh_jti`.
    pub fn begin(
        &self,
        sid: &str,
        env: &str,
        uid: &str,
        scope: &str,
        device_id: &str,
        refresh_jti: &str,
    ) -> std::io::Result<()> {
        let now = now_ms() as i64;
        lock(&self.connection)
            .execute(
                "INSERT INTO sessions (sid, env, uid, scope, device_id, created_ms, last_seen_ms, refresh_jti)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                params![sid, env, uid, scope, device_id, now, refresh_jti],
            )
            .map_err(to_io)?;
        Ok(())
    }

    /// Whether a token of session `sid` must be refused: revoked, or minted without a session.
    pub fn is_revoked(&self, sid: &str) -> bool {
        sid.is_empty()
            || self
                .revoked
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(sid)
    }

    /// Notes an authenticated call of session `sid` (in memory only).
    pub fn touch(&self, sid: &str) {
        lock(&self.last_seen).insert(sid.to_string(), now_ms());
    }

    /// Checks that `jti` is the current refresh token of `sid`; with `rotate_to`, makes that the
    /// current one (in the same transaction, so two refreshes with one token cannot both succeed).
    pub fn use_refresh_token(
        &self,
        sid: &str,
        jti: &str,
        rotate_to: Option<&str>,
    ) -> Result<(), RefreshRefusal> {
        if self.is_revoked(sid) {
            return Err(RefreshRefusal::Revoked);
        }
        let mut connection = lock(&self.connection);
        let outcome = (|| -> rusqlite::Result<Result<(), RefreshRefusal>> {
            let transaction = connection.transaction()?;
            let current: Option<(String, Option<i64>)> = transaction
                .query_row(
                    "SELECT refresh_jti, revoked_ms FROM sessions WHERE sid = ?1",
                    params![sid],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            match current {
                None | Some((_, Some(_))) => return Ok(Err(RefreshRefusal::Revoked)),
                Some((current, None)) if current != jti => {
                    return Ok(Err(RefreshRefusal::Superseded))
                }
                Some(_) => {}
            }
            let next = rotate_to.unwrap_or(jti);
            transaction.execute(
                "UPDATE sessions SET refresh_jti = ?2, last_seen_ms = MAX(last_seen_ms, ?3) WHERE sid = ?1",
                params![sid, next, now_ms() as i64],
            )?;
            transaction.commit()?;
            Ok(Ok(()))
        })();
        // A storage failure refuses the refresh: the client signs in again, nothing is lost.
        outcome.unwrap_or(Err(RefreshRefusal::Revoked))
    }

    /// Revokes session `sid`; whether it existed and was not revoked yet.
    pub fn revoke_session(&self, sid: &str) -> std::io::Result<bool> {
        self.flush_last_seen();
        let changed = lock(&self.connection)
            .execute(
                "UPDATE sessions SET revoked_ms = ?2 WHERE sid = ?1 AND revoked_ms IS NULL",
                params![sid, now_ms() as i64],
            )
            .map_err(to_io)?;
        // Also refuse a session this data dir never recorded (its tokens are refused anyway).
        self.revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(sid.to_string());
        Ok(changed > 0)
    }

    /// Revokes every session of user `uid` on `env` ("sign out"); how many were revoked.
    pub fn revoke_user(&self, env: &str, uid: &str) -> std::io::Result<usize> {
        self.flush_last_seen();
        let connection = lock(&self.connection);
        let sids: Vec<String> = {
            let mut statement = connection
                .prepare(
                    "SELECT sid FROM sessions WHERE env = ?1 AND uid = ?2 AND revoked_ms IS NULL",
                )
                .map_err(to_io)?;
            let rows = statement
                .query_map(params![env, uid], |row| row.get::<_, String>(0))
                .map_err(to_io)?;
            rows.collect::<Result<_, _>>().map_err(to_io)?
        };
        connection
            .execute(
                "UPDATE sessions SET revoked_ms = ?3 WHERE env = ?1 AND uid = ?2 AND revoked_ms IS NULL",
                params![env, uid, now_ms() as i64],
            )
            .map_err(to_io)?;
        let mut revoked = self
            .revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        revoked.extend(sids.iter().cloned());
        Ok(sids.len())
    }

    /// Writes the in-memory "last seen" times (at revocation, for the dashboard, and at shutdown).
    pub fn flush_last_seen(&self) {
        let seen: Vec<(String, u64)> = lock(&self.last_seen).drain().collect();
        if seen.is_empty() {
            return;
        }
        let mut connection = lock(&self.connection);
        let written = (|| -> rusqlite::Result<()> {
            let transaction = connection.transaction()?;
            {
                let mut statement = transaction.prepare(
                    "UPDATE sessions SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE sid = ?1",
                )?;
                for (sid, at) in &seen {
                    statement.execute(params![sid, *at as i64])?;
                }
            }
            transaction.commit()
        })();
        if let Err(err) = written {
            eprintln!("cloud-emulator: could not record last-seen times: {err}");
        }
    }

    /// Every user seen, most recently active first, optionally on one env.
    pub fn users(&self, env: Option<&str>) -> std::io::Result<Vec<UserSummary>> {
        self.flush_last_seen();
        let connection = lock(&self.connection);
        let mut statement = connection
            .prepare(
                "SELECT env, uid, scope, device_id, created_ms, last_seen_ms, revoked_ms IS NOT NULL
                 FROM sessions WHERE ?1 IS NULL OR env = ?1 ORDER BY created_ms",
            )
            .map_err(to_io)?;
        let rows = statement
            .query_map(params![env], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, bool>(6)?,
                ))
            })
            .map_err(to_io)?;
        let mut users: Vec<UserSummary> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for row in rows {
            let (env, uid, scope, device, created, last_seen, revoked) = row.map_err(to_io)?;
            let at = *index.entry((env.clone(), uid.clone())).or_insert_with(|| {
                users.push(UserSummary {
                    env,
                    uid,
                    scope: String::new(),
                    devices: Vec::new(),
                    created: created as u64,
                    last_seen: 0,
                    active_sessions: 0,
                    revoked_sessions: 0,
                });
                users.len() - 1
            });
            let user = &mut users[at];
            user.scope = scope;
            if !device.is_empty() && !user.devices.contains(&device) {
                user.devices.push(device);
            }
            user.last_seen = user.last_seen.max(last_seen as u64);
            if revoked {
                user.revoked_sessions += 1;
            } else {
                user.active_sessions += 1;
            }
        }
        users.sort_by_key(|user| std::cmp::Reverse(user.last_seen));
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_and_rotation_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::open(dir.path()).unwrap();
        sessions
            .begin("s1", "e", "u1", "anonymous", "d1", "r1")
            .unwrap();
        sessions
            .begin("s2", "e", "u1", "anonymous", "d2", "r2")
            .unwrap();
        assert!(!sessions.is_revoked("s1"));
        assert!(sessions.is_revoked(""));

        assert_eq!(sessions.use_refresh_token("s1", "r1", Some("r1b")), Ok(()));
        assert_eq!(
            sessions.use_refresh_token("s1", "r1", Some("r1c")),
            Err(RefreshRefusal::Superseded)
        );
        assert_eq!(sessions.use_refresh_token("s1", "r1b", None), Ok(()));
        assert!(sessions.revoke_session("s1").unwrap());
        assert!(!sessions.revoke_session("s1").unwrap());
        assert_eq!(
            sessions.use_refresh_token("s1", "r1b", None),
            Err(RefreshRefusal::Revoked)
        );
        drop(sessions);

        let reopened = Sessions::open(dir.path()).unwrap();
        assert!(reopened.is_revoked("s1"));
        assert!(!reopened.is_revoked("s2"));
        let users = reopened.users(None).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].devices, vec!["d1", "d2"]);
        assert_eq!(
            (users[0].active_sessions, users[0].revoked_sessions),
            (1, 1)
        );
        assert_eq!(reopened.revoke_user("e", "u1").unwrap(), 1);
        assert!(reopened.is_revoked("s2"));
        assert_eq!(
            reopened.use_refresh_token("unknown", "x", None),
            Err(RefreshRefusal::Revoked)
        );
    }
}
