//! Where a configurable unit (an optimizer rule, a loss, a metric) reads its settings from:
//! the bindings' dict in Python, a table in tests. Each unit reads its own keys (Keras's
//! argument names), so the bindings need no arm per kind.

use crate::error::{Error, Result};

/// A unit's settings by Keras argument name.
pub trait Settings {
    /// A number, as Python holds it (units cast to f32 where Keras casts).
    fn f64(&self, key: &str) -> Result<f64>;
    fn flag(&self, key: &str) -> Result<bool>;
    /// A name (a metric's loss, an activation). Sources without text settings refuse every
    /// key.
    fn text(&self, key: &str) -> Result<String> {
        Err(Error::Value(format!("no text setting {key:?}")))
    }
    /// A non-negative integer (units, a seed), exact to 64 bits.
    fn uint(&self, key: &str) -> Result<u64> {
        Err(Error::Value(format!("no integer setting {key:?}")))
    }
    /// An optional list of numbers (a layer's constants).
    fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        Err(Error::Value(format!("no list setting {key:?}")))
    }
}
