//! kerox-core: the pure-Rust kernels and training engine behind kerox.
//!
//! No Python here: the `kerox-py` crate binds this to `kerox._core`.

pub mod dispatch;
pub mod engine;
pub mod error;
pub mod gemm;
#[macro_use]
pub mod kernels;
pub mod losses;
pub mod metrics;
pub mod optim;
pub mod pool;
pub mod regularizers;
pub mod settings;
pub mod team;
pub mod tune;

pub use dispatch::Level;
pub use engine::{Engine, LayerSpec};
pub use error::{Error, Result};
pub use losses::LossSpec;
pub use metrics::MetricSpec;
pub use optim::{Clip, OptimizerSpec, Rule};
