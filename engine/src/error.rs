//! The one error type of the document engine: a CloudBase string code plus a human message.

use cloud_protocol::codes;
use std::fmt;

/// An engine failure, carrying the CloudBase `code` the HTTP layer reports (`{"code","message"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// `DATABASE_INVALID_OPERRATOR` (unknown or unsupported operator) or `INVALID_PARAM` (bad operand,
    /// type error, conflicting update paths, `_id` change).
    pub code: &'static str,
    /// What went wrong, in MongoDB's words where it has them.
    pub message: String,
}

impl DbError {
    /// An operator the engine does not know or does not support.
    pub fn invalid_operator(message: impl Into<String>) -> Self {
        DbError {
            code: codes::DATABASE_INVALID_OPERRATOR,
            message: message.into(),
        }
    }

    /// A malformed operand, a type error or any other invalid request.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        DbError {
            code: codes::INVALID_PARAM,
            message: message.into(),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for DbError {}

/// Result alias of the engine.
pub type DbResult<T> = Result<T, DbError>;
