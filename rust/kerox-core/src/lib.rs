//! kerox-core: the pure-Rust kernels and training engine behind kerox.
//!
//! No Python here: the `kerox-py` crate binds this to `kerox._core`.

pub mod dispatch;
pub mod gemm;
pub mod kernels;
