//! Dense-network element-wise kernels (activation, loss, batch norm, sparse input, ...).
//!
//! Every kernel takes a [`Level`](crate::dispatch::Level) first. SIMD levels run the same
//! `#[inline(always)]` body compiled inside a `#[target_feature]` wrapper (see `simd.rs`), so
//! all levels compute the same expression tree (no fast-math, no FMA contraction: results are
//! bit-identical across levels in practice); float reductions use many independent lanes so
//! that the compiler can vectorise them without reassociating.
//! No kernel allocates, and all are single-threaded and deterministic.

#[macro_use]
pub(crate) mod simd;
pub(crate) mod math;

pub mod activation;
pub mod batchnorm;
pub mod dropout;
pub mod rect;
pub mod reduce;
pub mod sparse;

pub use activation::{act_backward, bias_act_forward, bias_act_inplace, Activation};
pub use batchnorm::{
    bn_backward_infer, bn_backward_train, bn_forward_infer, bn_forward_train, bn_update_moving,
};
pub use dropout::{dropout_backward, dropout_forward};
pub use rect::Rect;
pub use reduce::{col_sums, gram_rows, sum_f64, sum_squares, GRAM_MAX_ROWS};
pub use sparse::{
    add_into, all_finite, combine_many, combine_many_grad, combine_many_sgd, combine_rows,
    compress, Lists,
};

#[cfg(test)]
pub(crate) mod testutil;
