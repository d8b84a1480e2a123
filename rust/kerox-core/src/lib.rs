//! kerox-core: the pure-Rust kernels and training engine behind kerox.
//!
//! No Python here: the `kerox-py` crate binds this to `kerox._core`.

pub mod dispatch;
pub mod engine;
pub mod error;
pub mod gemm;
#[macro_use]
pub mod kernels;
pub mod optim;
pub mod pool;
pub mod team;
pub mod tune;

pub use dispatch::Level;
pub use engine::{Engine, LayerSpec, LossSpec, MetricSpec};
pub use error::{Error, Result};
pub use optim::{Clip, OptimizerSpec, Rule};
