//! Errors the engine reports to its caller (the bindings map them to Python exceptions).

use thiserror::Error;

/// What went wrong, with a message that names the argument and the shapes involved.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument had the wrong shape or size (maps to `ValueError`).
    #[error("{0}")]
    Shape(String),
    /// An argument had an invalid value (maps to `ValueError`).
    #[error("{0}")]
    Value(String),
    /// An argument had an unsupported type or dtype (maps to `TypeError`).
    #[error("{0}")]
    Type(String),
    /// The engine was used in the wrong order (maps to `RuntimeError`).
    #[error("{0}")]
    State(String),
}

/// Result alias for engine operations.
pub type Result<T> = std::result::Result<T, Error>;
